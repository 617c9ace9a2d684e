// The photo view: show the (downscaled) photo large enough to see faces, place each face's box
// over it, and let the user drag a box round a face the detector missed -- from anywhere on
// the photo, over other boxes too (a click that does not drag still opens a box's person).
// The box is sent in the photo's own pixels.
(() => {
  const stage = document.getElementById("stage"), img = document.getElementById("photo-img");
  const W = +stage.dataset.width, H = +stage.dataset.height;
  const drawn = document.getElementById("drawn"), button = document.getElementById("add-face-button");
  const size = () => {  // small photos (LFW's 250 px) are shown at least 640 px wide, as room and the window allow
    const room = stage.parentElement.clientWidth, tall = window.innerHeight * 0.8;
    img.style.width = Math.max(1, Math.min(room, Math.max(W, 640), tall * W / H)) + "px";
  };
  size();
  window.addEventListener("resize", size);
  const place = (el, x, y, w, h) => {
    el.style.left = (100 * x / W) + "%"; el.style.top = (100 * y / H) + "%";
    el.style.width = (100 * w / W) + "%"; el.style.height = (100 * h / H) + "%";
  };
  stage.querySelectorAll(".facebox").forEach(el => {
    const [x, y, w, h] = el.dataset.box.split(",").map(Number); place(el, x, y, w, h);
    el.setAttribute("draggable", "false");
  });
  let start = null, startPx = null, link = null;
  const at = ev => {
    const r = img.getBoundingClientRect();
    return [Math.min(W, Math.max(0, (ev.clientX - r.left) * W / r.width)), Math.min(H, Math.max(0, (ev.clientY - r.top) * H / r.height))];
  };
  const box = (a, b) => [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.abs(a[0] - b[0]), Math.abs(a[1] - b[1])];
  stage.addEventListener("click", ev => { if (ev.target.closest(".facebox")) ev.preventDefault(); });  // followed on pointerup, unless dragged
  stage.addEventListener("pointerdown", ev => {
    if (ev.button !== 0) return;
    ev.preventDefault();
    start = at(ev); startPx = [ev.clientX, ev.clientY];
    link = ev.target.closest(".facebox");
    stage.setPointerCapture(ev.pointerId);
  });
  stage.addEventListener("pointermove", ev => {
    if (!start) return;
    const [x, y, w, h] = box(start, at(ev));
    if (Math.hypot(ev.clientX - startPx[0], ev.clientY - startPx[1]) < 5) return;
    drawn.hidden = false; place(drawn, x, y, w, h);
  });
  stage.addEventListener("pointerup", ev => {
    if (!start) return;
    const moved = Math.hypot(ev.clientX - startPx[0], ev.clientY - startPx[1]);
    const [x, y, w, h] = box(start, at(ev)); start = null;
    if (moved < 5 && link) { window.location.href = link.href; return; }
    if (w < 8 || h < 8) { drawn.hidden = true; button.disabled = true; return; }
    [["box-x", x], ["box-y", y], ["box-w", w], ["box-h", h]].forEach(([id, v]) => { document.getElementById(id).value = v.toFixed(1); });
    button.disabled = false;
    document.getElementById("draw-hint").textContent = "Box drawn: " + Math.round(w) + " × " + Math.round(h) + " px. Name it (or not) and add it.";
  });
})();
