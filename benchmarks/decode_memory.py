"""Peak memory of decoding (and detecting on) large pictures: ``faceprint.imaging.load_image``
alone, and load + YuNet detection (``Engine().detect``), for the inputs an untrusted upload
can be.

Every case runs in a fresh subprocess: the models are loaded and warmed up first, the idle
RSS is read (``/proc/self/statm``) and the kernel's peak RSS is reset to it (``clear_refs``,
where allowed), then the picture is decoded; the figure is ``ru_maxrss`` (the peak) minus the
idle RSS, the median of ``--runs`` runs.  The test pictures are generated (Pillow / NumPy,
compressible content, so the files stay small) in a temporary folder and deleted afterwards.

``--sweep`` decodes + detects the formats that cost the most per pixel at a few sizes, and
reports the largest ``max_pixels`` whose every format stayed under ``--budget-mb`` (above
idle): the cap for the REST server's uploads.

    .venv/bin/python benchmarks/decode_memory.py [--runs 3] [--cases png_cap,tiff_float,...] [--no-detect] [--sweep] [--budget-mb 300]
    .venv/bin/python benchmarks/decode_memory.py --src /tmp/old/src   # the same, against another checkout's faceprint

Prints JSON: per case the file, its size, pixels, and load / load+detect peak MB above idle
(median, all runs) and bytes per pixel; with ``--sweep`` the sweep and the recommended cap.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


# -- test pictures ------------------------------------------------------------------------


def _pattern(width: int, height: int, channels: int = 3):
    """Smooth gradients with hard-edged blocks: compresses well, is not one flat colour."""
    import numpy as np

    y = (np.arange(height, dtype=np.uint32)[:, None] * 255 // max(1, height - 1)).astype(np.uint8)
    x = (np.arange(width, dtype=np.uint32)[None, :] * 255 // max(1, width - 1)).astype(np.uint8)
    out = np.empty((height, width, channels), np.uint8)
    out[..., 0] = x
    if channels > 1:
        out[..., 1] = y
    if channels > 2:
        out[..., 2] = ((np.arange(height)[:, None] // 256 + np.arange(width)[None, :] // 256) % 2 * 160).astype(np.uint8)
    if channels > 3:
        out[..., 3] = 255
    return out


def _rgb(width: int, height: int):
    from PIL import Image

    return Image.fromarray(_pattern(width, height))


def _blocks(width: int, height: int, values: list[float], dtype: str):
    """A chequer of 256-pixel blocks over ``values``: deflate (TIFF) squeezes it to almost nothing."""
    import numpy as np

    v = np.asarray(values, dtype=dtype)
    row_a = v[(np.arange(width) // 256) % len(v)]
    row_b = v[(np.arange(width) // 256 + 1) % len(v)]
    out = np.empty((height, width), dtype=dtype)
    for y0 in range(0, height, 256):
        out[y0 : y0 + 256] = row_a if (y0 // 256) % 2 == 0 else row_b
    return out


def _grey16(width: int, height: int):
    from PIL import Image

    return Image.fromarray(_blocks(width, height, [0, 9000, 30000, 65535], "uint16"))


def _float(width: int, height: int):
    from PIL import Image

    return Image.fromarray(_blocks(width, height, [-1.0, 0.25, 3.0, float("nan")], "float32"))  # outside [0, 1] and [0, 255]: stretched


def _heic(path: Path, width: int, height: int) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    _rgb(width, height).save(path, "HEIF", quality=50)


def _gif(path: Path, width: int, height: int, frames: int) -> None:
    base = _rgb(width, height).quantize(64)
    seq = [base]
    for i in range(1, frames):  # each frame changes a small square: a long GIF, most of it skipped by Pillow
        f = base.copy()
        f.paste(i % 64, (i * 8 % max(1, width - 8), 0, i * 8 % max(1, width - 8) + 8, 8))
        seq.append(f)
    base.save(path, save_all=True, append_images=seq[1:], duration=40, loop=0, optimize=False)


def _cap_side(pixels: int) -> int:
    import math

    return math.isqrt(pixels)


CAP = 120_000_000
SIDE = _cap_side(CAP)

#: name -> (description, width, height, writer(path, width, height))
CASES: dict[str, tuple[str, int, int, Callable[[Path, int, int], None]]] = {
    "png_cap": ("RGB PNG at the default cap (120 MP)", SIDE, SIDE, lambda p, w, h: _rgb(w, h).save(p, "PNG", compress_level=6)),
    "png_10000x11900": ("RGB PNG 10000x11900", 10000, 11900, lambda p, w, h: _rgb(w, h).save(p, "PNG", compress_level=6)),
    "jpeg_10000x11900": ("RGB baseline JPEG 4:2:0, 10000x11900", 10000, 11900, lambda p, w, h: _rgb(w, h).save(p, "JPEG", quality=90)),
    "jpeg_progressive_444": (
        "RGB progressive JPEG 4:4:4, 10000x11900",
        10000,
        11900,
        lambda p, w, h: _rgb(w, h).save(p, "JPEG", quality=90, progressive=True, subsampling=0),
    ),
    "png16_grey": ("16-bit grey PNG (I;16), 10000x11900", 10000, 11900, lambda p, w, h: _grey16(w, h).save(p, "PNG", compress_level=6)),
    "tiff16_grey": ("16-bit grey TIFF (I;16, deflate), 10000x11900", 10000, 11900, lambda p, w, h: _grey16(w, h).save(p, "TIFF", compression="tiff_deflate")),
    "tiff_float": ("32-bit float TIFF (F, deflate), 10000x11900", 10000, 11900, lambda p, w, h: _float(w, h).save(p, "TIFF", compression="tiff_deflate")),
    "heic": ("HEIC 8192x4320 (x265's largest frame)", 8192, 4320, _heic),
    "gif_frames": ("GIF 6000x5000, 200 frames (palette)", 6000, 5000, lambda p, w, h: _gif(p, w, h, 200)),
    "webp": ("lossless WebP 10000x11900", 10000, 11900, lambda p, w, h: _rgb(w, h).save(p, "WEBP", lossless=True, method=0, quality=0)),
}
SUFFIX = {
    name: {"png": ".png", "jpeg": ".jpg", "tiff": ".tif", "heic": ".heic", "gif": ".gif", "webp": ".webp"}[name.split("_")[0].removesuffix("16")]
    for name in CASES
}
DEFAULT_CASES = ["png_cap", "png_10000x11900", "jpeg_10000x11900", "jpeg_progressive_444", "tiff_float", "png16_grey", "tiff16_grey", "heic", "gif_frames"]
#: the sweep: the formats that cost the most per pixel, at these sizes (megapixels)
SWEEP_CASES = ["jpeg_progressive_444", "png_10000x11900", "tiff_float", "png16_grey", "heic"]
SWEEP_MP = [16, 24, 32, 40, 50]


def make(case: str, folder: Path, width: int | None = None, height: int | None = None) -> Path:
    """The picture of ``case`` (written by a subprocess: this process stays small, as the
    measuring children inherit its peak RSS through vfork + exec)."""
    _, w, h, _ = CASES[case]
    w, h = width or w, height or h
    path = folder / f"{case}-{w}x{h}{SUFFIX[case]}"
    if not path.exists():
        subprocess.run([sys.executable, __file__, "--make", case, str(path), str(w), str(h)], check=True, timeout=900)
    return path


# -- one measurement (child process) ------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _hwm() -> int:
    """The kernel's peak RSS of this process (VmHWM), in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0  # pragma: no cover


def _trim() -> None:
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # pragma: no cover - not glibc
        pass


def child(path: str, detect: bool, max_pixels: int) -> dict[str, Any]:
    import numpy as np

    from faceprint.errors import FaceprintError
    from faceprint.imaging import ImageLimits, load_image
    from faceprint.types import Image

    engine = None
    if detect:
        from faceprint import Engine

        engine = Engine()
        engine.detect(Image(np.zeros((480, 640, 3), np.uint8)))  # models loaded, OpenCV's buffers in place
    _trim()
    idle = _rss()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # peak RSS := current RSS, so the imports' own peak does not hide the decode's
        reset = True
    except OSError:
        reset = False
    t0 = time.perf_counter()
    error = None
    try:
        img = load_image(path, limits=ImageLimits(max_pixels=max_pixels))
        if engine is not None:
            engine.detect(img)
    except FaceprintError as exc:
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    import faceprint

    return {
        "idle_mb": idle / MB,
        "peak_mb": peak / MB,
        "delta_mb": (peak - idle) / MB,
        "vmhwm_delta_mb": (_hwm() - idle) / MB,
        "seconds": seconds,
        "peak_reset": reset,
        "error": error,
        "faceprint": faceprint.__file__,
    }


def measure(path: Path, *, detect: bool, runs: int, src: str, max_pixels: int) -> dict[str, Any]:
    results = []
    for _ in range(runs):
        cmd = [sys.executable, __file__, "--child", str(path), "--src", src, "--max-pixels", str(max_pixels)] + (["--detect-child"] if detect else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}"}
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    deltas = [r["delta_mb"] for r in results]
    return {
        "delta_mb": round(statistics.median(deltas), 1),
        "runs_mb": [round(d, 1) for d in deltas],
        "seconds": round(statistics.median(r["seconds"] for r in results), 2),
        "idle_mb": round(results[0]["idle_mb"], 1),
        "vmhwm_delta_mb": round(statistics.median(r["vmhwm_delta_mb"] for r in results), 1),
        "error": results[0]["error"],
        "peak_reset": results[0]["peak_reset"],
        "faceprint": results[0]["faceprint"],
    }


# -- main -------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cases", default=",".join(DEFAULT_CASES), help=f"comma-separated, of {', '.join(CASES)}")
    ap.add_argument("--no-detect", action="store_true", help="only load_image, not load + detect")
    ap.add_argument("--sweep", action="store_true", help="find the max_pixels keeping load + detect under --budget-mb")
    ap.add_argument("--budget-mb", type=float, default=300.0)
    ap.add_argument("--max-pixels", type=int, default=CAP, help="ImageLimits.max_pixels used by the decodes")
    ap.add_argument("--src", default=str(REPO / "src"), help="the faceprint source folder to measure")
    ap.add_argument("--workdir", help="keep the generated pictures here (default: a temporary folder)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--make", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--detect-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, args.src)
    if args.make:
        case, path, w, h = args.make
        CASES[case][3](Path(path), int(w), int(h))
        return
    if args.child:
        print(json.dumps(child(args.child, args.detect_child, args.max_pixels)))
        return
    with tempfile.TemporaryDirectory(prefix="decode-memory-") as tmp:
        folder = Path(args.workdir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        out: dict[str, Any] = {"runs": args.runs, "max_pixels": args.max_pixels, "src": args.src, "cases": {}}
        for case in [c for c in args.cases.split(",") if c]:
            path = make(case, folder)
            _, w, h, _ = CASES[case]
            row: dict[str, Any] = {"what": CASES[case][0], "file_kb": round(path.stat().st_size / 1024), "megapixels": round(w * h / 1e6, 1)}
            row["load"] = measure(path, detect=False, runs=args.runs, src=args.src, max_pixels=args.max_pixels)
            if not args.no_detect:
                row["load_detect"] = measure(path, detect=True, runs=args.runs, src=args.src, max_pixels=args.max_pixels)
            for key in ("load", "load_detect"):
                if key in row and "delta_mb" in row[key]:
                    row[key]["bytes_per_pixel"] = round(row[key]["delta_mb"] * MB / (w * h), 2)
            out["cases"][case] = row
            print(f"{case}: " + json.dumps({k: row[k].get("delta_mb") if isinstance(row[k], dict) else row[k] for k in row}), file=sys.stderr)
        if args.sweep:
            out["sweep"] = sweep(folder, args)
        print(json.dumps(out, indent=1))


def sweep(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    table: dict[str, dict[str, float]] = {}
    ok_mp = 0
    for mp in SWEEP_MP:
        worst = 0.0
        for case in SWEEP_CASES:
            _, w0, h0, _ = CASES[case]
            f = (mp * 1e6 / (w0 * h0)) ** 0.5
            w, h = max(16, round(w0 * f)), max(16, round(h0 * f))
            if case == "heic":
                w, h = min(w, 8192), min(h, 8192)  # x265's limits; HEIC past them is a grid of tiles
            path = make(case, folder, w, h)
            res = measure(path, detect=True, runs=args.runs, src=args.src, max_pixels=max(args.max_pixels, w * h))
            table.setdefault(f"{mp} MP", {})[case] = res.get("delta_mb", float("nan"))
            worst = max(worst, res.get("delta_mb", float("inf")))
            path.unlink()
        table[f"{mp} MP"]["worst"] = worst
        print(f"sweep {mp} MP: " + json.dumps(table[f"{mp} MP"]), file=sys.stderr)
        if worst <= args.budget_mb:
            ok_mp = mp
    # where the worst case crosses the budget, between the two sizes around it (memory is linear in pixels)
    worst = [(mp, table[f"{mp} MP"]["worst"]) for mp in SWEEP_MP]
    crossing = None
    for (mp0, w0), (mp1, w1) in zip(worst, worst[1:]):
        if w0 <= args.budget_mb < w1:
            crossing = round((mp0 + (args.budget_mb - w0) * (mp1 - mp0) / (w1 - w0)) * 1e6, -5)
    return {
        "budget_mb": args.budget_mb,
        "load_detect_mb": table,
        "largest_measured_max_pixels_under_budget": ok_mp * 1_000_000 if ok_mp else None,
        "budget_reached_at_pixels": crossing,
    }


if __name__ == "__main__":
    main()
