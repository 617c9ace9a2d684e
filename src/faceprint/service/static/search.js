// The search page's drop zone (served as a file: the UI's Content-Security-Policy allows no inline script).
const drop = document.getElementById("drop"), input = document.getElementById("search-file");
["dragenter", "dragover"].forEach(e => drop.addEventListener(e, ev => { ev.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach(e => drop.addEventListener(e, ev => { ev.preventDefault(); drop.classList.remove("over"); }));
drop.addEventListener("drop", ev => { if (ev.dataTransfer.files.length) { input.files = ev.dataTransfer.files; document.getElementById("search-form").submit(); } });
