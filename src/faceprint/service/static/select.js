// Bulk selection on the people page and a person's page: count what is selected, enable the bulk buttons.
(() => {
  const bar = document.getElementById("bulkbar");
  if (!bar) return;
  const boxes = () => Array.from(document.querySelectorAll(".person-check, .face-check"));
  const update = () => {
    const n = boxes().filter(b => b.checked).length;
    document.getElementById("bulk-count").textContent = n + " selected";
    bar.classList.toggle("active", n > 0);
    bar.querySelectorAll("button").forEach(b => { b.disabled = n === 0 || (b.value === "merge" && n < 2); });
  };
  document.addEventListener("change", ev => { if (ev.target.matches(".person-check, .face-check")) update(); });
  update();
})();
