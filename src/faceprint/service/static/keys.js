// The suggestion queue from the keyboard: y / ↑ yes, n / ↓ no, s / → skip (not while typing).
document.addEventListener("keydown", ev => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.target.matches("input, textarea, select")) return;
  const id = {y: "answer-yes", ArrowUp: "answer-yes", n: "answer-no", ArrowDown: "answer-no", s: "answer-skip", ArrowRight: "answer-skip"}[ev.key];
  const button = id && document.getElementById(id);
  if (button) { ev.preventDefault(); button.click(); }
});
