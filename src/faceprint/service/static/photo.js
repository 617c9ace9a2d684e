// The photo view: place each face's box over the (downscaled) photo, and let the user drag a
// box around a face the detector missed; the box is sent in the photo's own pixels.
(() => {
  const stage = document.getElementById("stage"), img = document.getElementById("photo-img");
  const W = +stage.dataset.width, H = +stage.dataset.height;
  const drawn = document.getElementById("drawn"), button = document.getElementById("add-face-button");
  const place = (el, x, y, w, h) => {
    el.style.left = (100 * x / W) + "%"; el.style.top = (100 * y / H) + "%";
    el.style.width = (100 * w / W) + "%"; el.style.height = (100 * h / H) + "%";
  };
  stage.querySelectorAll(".facebox").forEach(el => { const [x, y, w, h] = el.dataset.box.split(",").map(Number); place(el, x, y, w, h); });
  let start = null;
  const at = ev => {
    const r = img.getBoundingClientRect();
    return [Math.min(W, Math.max(0, (ev.clientX - r.left) * W / r.width)), Math.min(H, Math.max(0, (ev.clientY - r.top) * H / r.height))];
  };
  const box = (a, b) => [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.abs(a[0] - b[0]), Math.abs(a[1] - b[1])];
  img.addEventListener("pointerdown", ev => { ev.preventDefault(); start = at(ev); img.setPointerCapture(ev.pointerId); });
  img.addEventListener("pointermove", ev => {
    if (!start) return;
    const [x, y, w, h] = box(start, at(ev));
    drawn.hidden = false; place(drawn, x, y, w, h);
  });
  img.addEventListener("pointerup", ev => {
    if (!start) return;
    const [x, y, w, h] = box(start, at(ev)); start = null;
    if (w < 8 || h < 8) { drawn.hidden = true; button.disabled = true; return; }
    [["box-x", x], ["box-y", y], ["box-w", w], ["box-h", h]].forEach(([id, v]) => { document.getElementById(id).value = v.toFixed(1); });
    button.disabled = false;
    document.getElementById("draw-hint").textContent = "Box drawn: " + Math.round(w) + " × " + Math.round(h) + " px. Name it (or not) and add it.";
  });
})();
