// The suggestion queue from the keyboard: y / ↑ yes, n / ↓ no, s / → skip (not while typing).
// One answer per question: a key pressed twice (or held down) or a double click sends the first
// answer only -- a second one, sent before the next question is shown, would answer this question
// again (a "yes" merged twice is an error; "y" then "n" would place a face and take it out again).
(() => {
  const form = document.querySelector("#question form");
  let sent = false;
  if (form) form.addEventListener("submit", ev => { if (sent) ev.preventDefault(); sent = true; });
  window.addEventListener("pageshow", ev => { if (ev.persisted) sent = false; });  // back to this page: answer again
  document.addEventListener("keydown", ev => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.target.matches("input, textarea, select")) return;
    const id = {y: "answer-yes", ArrowUp: "answer-yes", n: "answer-no", ArrowDown: "answer-no", s: "answer-skip", ArrowRight: "answer-skip"}[ev.key];
    const button = id && document.getElementById(id);
    if (button) { ev.preventDefault(); if (!ev.repeat && !sent) button.click(); }
  });
})();
