"""Bounded memory on every decode path: pictures and clips over a cap are refused before a
pixel is decoded, and what is decoded costs a few bytes a pixel, whatever the mode.

Memory is measured in a fresh subprocess (a test process's own heap says nothing): the
modules are imported, the kernel's peak RSS is reset to the current RSS (``clear_refs``),
the call is made, and the growth of the peak (``VmHWM``) is compared with a bound a little
above what was measured when the bounds were set (the figure before the fix in brackets).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageOps

from faceprint import imaging
from faceprint.errors import ImageTooLargeError, InputError
from faceprint.imaging import load_image
from faceprint.settings import Settings

REPO = Path(__file__).resolve().parents[1]
MB = 1024 * 1024

_PRELUDE = """
import ctypes, gc, json, sys
sys.path.insert(0, {src!r})
import numpy, PIL.Image, av, cv2
from faceprint import imaging
from faceprint.errors import FaceprintError
from faceprint.imaging import ImageLimits, load_image
from faceprint.liveness.motion import video_frames
from faceprint.liveness.video import VideoLimits
imaging._open_formats()  # Pillow's plugins registered before the baseline
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096
def hwm():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
gc.collect()
ctypes.CDLL("libc.so.6").malloc_trim(0)
try:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    base = rss()
except OSError:
    base = hwm()  # no reset allowed: growth over the imports' own peak
error = None
try:
{body}
except FaceprintError as exc:
    error = [type(exc).__name__, str(exc)]
print(json.dumps({{"growth": hwm() - base, "error": error}}))
"""


def _growth(body: str) -> dict[str, Any]:
    """Run ``body`` in a fresh interpreter; its peak RSS growth in bytes and any faceprint error."""
    code = _PRELUDE.format(src=str(REPO / "src"), body=textwrap.indent(textwrap.dedent(body), "    "))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _clip(path: Path, width: int, height: int, frames: int, rate: int = 10) -> Path:
    """A small H.264 (or MPEG-4) clip of flat frames with a moving square."""
    import av

    try:
        av.Codec("libx264", "w")
        codec = "libx264"
    except Exception:  # pragma: no cover - a PyAV build without x264
        codec = "mpeg4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        pixels = np.full((height, width, 3), 90, np.uint8)
        for i in range(frames):
            pixels[:8, :8] = 20 * i % 256
            out.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        out.mux(stream.encode())
    return path


# --- pictures: refused before decoding ----------------------------------------------------


def _png_header_only(path: Path, width: int, height: int) -> Path:
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


def test_pictures_over_the_cap_cost_nothing(tmp_path: Path) -> None:
    """A PNG declaring 10000x11900 under a 40 MP cap, and one of 60000x60000 under the default
    one: refused from the header, the process grows by under 10 MB."""
    small_cap = _png_header_only(tmp_path / "bomb.png", 10000, 11900)
    huge = _png_header_only(tmp_path / "huge.png", 60000, 60000)
    for path, limits in ((small_cap, "ImageLimits(max_pixels=40_000_000)"), (huge, "ImageLimits()")):
        res = _growth(f"load_image({str(path)!r}, limits={limits})")
        assert res["error"] and res["error"][0] == "ImageTooLargeError", res
        assert str(path) in res["error"][1] and "pixels" in res["error"][1]
        assert res["growth"] < 10 * MB, res


# --- pictures: what a decode costs ----------------------------------------------------------

W, H = 4000, 3000  # 12 MP: large enough to dwarf the noise, small enough to be quick


def _write(kind: str, path: Path) -> Path:
    rng = np.random.default_rng(0)
    base = np.zeros((H, W, 3), np.uint8)
    base[..., 0] = (np.arange(W) * 255 // W)[None, :]
    base[..., 1] = (np.arange(H) * 255 // H)[:, None]
    base[::64] = rng.integers(0, 256, (base[::64].shape), dtype=np.uint8)
    if kind == "rgb_png":
        PILImage.fromarray(base).save(path, compress_level=1)
    elif kind == "rgba_png":
        PILImage.fromarray(np.dstack([base, base[..., :1]])).save(path, compress_level=1)
    elif kind == "jpeg_rotated":
        exif = PILImage.Exif()
        exif[0x0112] = 6
        PILImage.fromarray(base).save(path, quality=80, exif=exif)
    elif kind == "grey16_png":
        PILImage.fromarray(base[..., 0].astype(np.uint16) * 257).save(path, compress_level=1)
    elif kind == "float_tiff":
        values = base[..., 0].astype(np.float32) / 64.0 - 1.0  # -1 .. 3: the stretched path
        PILImage.fromarray(values).save(path, compression="tiff_deflate")
    elif kind == "palette_gif":
        PILImage.fromarray(base).quantize(64).save(path)
    return path


# bytes a pixel above idle, measured at 12 MP (before the fix): the decoder's buffer plus the
# 3-byte result; RGB decodes into the result itself
BOUNDS = {
    "rgb_png": 4.7,  # 4.15 (10.2)
    "rgba_png": 4.9,  # 4.4 (30.3)
    "jpeg_rotated": 6.7,  # 6.2 (10.3): the turned copy
    "grey16_png": 5.7,  # 5.2 (7.2)
    "float_tiff": 8.0,  # 7.5 (32.5)
    "palette_gif": 4.8,  # 4.25 (11.1)
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(BOUNDS))
def test_decode_costs_a_few_bytes_a_pixel(tmp_path: Path, kind: str) -> None:
    path = _write(kind, tmp_path / f"{kind}.{kind.rsplit('_', 1)[1].replace('rotated', 'jpg')}")
    res = _growth(f"img = load_image({str(path)!r}); assert img.pixels.shape[2] == 3")
    assert res["error"] is None, res
    per_pixel = res["growth"] / (W * H)
    print(f"{kind}: {per_pixel:.2f} bytes a pixel")
    assert per_pixel < BOUNDS[kind], f"{kind} took {per_pixel:.2f} bytes a pixel (bound {BOUNDS[kind]})"


# --- pictures: the tiled / in-place conversions give the plain conversion's pixels -------------


def _reference(path: Path) -> np.ndarray:
    """What faceprint returned before tiling: exif_transpose, then convert, on whole pictures."""
    with PILImage.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
            rgba = np.asarray(im.convert("RGBA")).astype(np.uint16)
            return ((rgba[..., :3] * rgba[..., 3:] + 255 * (255 - rgba[..., 3:]) + 127) // 255).astype(np.uint8)
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_in_place_and_tiled_decodes_match_pillow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, orientation: int) -> None:
    monkeypatch.setattr(imaging, "_BLOCK_PIXELS", 97)  # many tiles, overlapping moves in the in-place packing
    rng = np.random.default_rng(orientation)
    rgb = rng.integers(0, 256, (23, 41, 3), dtype=np.uint8)
    rgba = np.dstack([rgb, rng.integers(0, 256, (23, 41, 1), dtype=np.uint8)])
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    files = {
        "a.jpg": (PILImage.fromarray(rgb), {"exif": exif, "quality": 90}),
        "b.png": (PILImage.fromarray(rgba), {"exif": exif}),
        "c.webp": (PILImage.fromarray(rgba), {"exif": exif, "lossless": True}),
        "d.tif": (PILImage.fromarray(rgb), {"compression": "tiff_deflate"}),
        "e.png": (PILImage.fromarray(rgb).quantize(16), {"exif": exif, "transparency": 3}),
        "f.heic": (PILImage.fromarray(rgb), {"exif": exif.tobytes(), "quality": 90}),
    }
    for name, (pil, options) in files.items():
        path = tmp_path / name
        pil.save(path, **options)
        got = load_image(path).pixels
        assert got.flags.c_contiguous and got.dtype == np.uint8
        assert np.array_equal(got, _reference(path)), name


def test_high_bit_modes_match_a_whole_picture_float64_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imaging, "_BLOCK_PIXELS", 5)

    def whole(values: np.ndarray, is_float: bool) -> np.ndarray:  # the formula before tiling
        v = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(v.min()), float(v.max())
        if is_float and lo >= 0.0 and hi <= 1.0:
            v = v * 255.0
        elif lo < 0.0 or hi > (255.0 if is_float else 65535.0):
            v = (v - lo) * (255.0 / (hi - lo) if hi > lo else 0.0)
        elif hi > 255.0:
            v = v / 257.0
        return np.clip(np.rint(v), 0, 255).astype(np.uint8)

    rng = np.random.default_rng(3)
    floats = (rng.random((7, 9)) * 5 - 2).astype(np.float32)
    floats[1, 2], floats[3, 4], floats[5, 6] = np.nan, np.inf, -np.inf
    cases = [
        (floats, True),
        (rng.random((7, 9)).astype(np.float32), True),
        ((rng.random((7, 9)) * 255).astype(np.float32), True),
        (rng.integers(-70000, 70000, (7, 9)).astype(np.int32), False),
        (rng.integers(0, 65536, (7, 9)).astype(np.int32), False),
        (rng.integers(0, 256, (7, 9)).astype(np.int32), False),
    ]
    for values, is_float in cases:
        got = load_image(PILImage.fromarray(values)).pixels
        assert np.array_equal(got[..., 0], whole(values, is_float)) and np.array_equal(got[..., 2], got[..., 0])
    sixteen = rng.integers(0, 65536, (7, 9)).astype(np.uint16)
    assert np.array_equal(load_image(PILImage.fromarray(sixteen)).pixels[..., 1], (sixteen >> 8).astype(np.uint8))


def test_only_the_supported_formats_are_opened(tmp_path: Path) -> None:
    """Pillow reads dozens of formats (EPS through Ghostscript); faceprint opens its own list."""
    for fmt, suffix in (("ICO", ".ico"), ("TGA", ".tga"), ("PCX", ".pcx")):
        buf = io.BytesIO()
        PILImage.new("RGB", (16, 16), (9, 9, 9)).save(buf, fmt)
        with pytest.raises(InputError, match="not a recognised image format"):
            load_image(buf.getvalue(), name=f"x{suffix}")


# --- clips -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_clip_frames_over_the_cap_refused_before_decoding(tmp_path: Path) -> None:
    """6000x6000 frames (a 100 KB file): refused from the stream's header; the process grows by
    under 20 MB (decoding the first frame took 262 MB, a 12000x12000 clip 1.4 GB)."""
    clip = _clip(tmp_path / "big.mov", 6000, 6000, 2)
    res = _growth(f"list(video_frames({str(clip)!r}))")
    assert res["error"] and res["error"][0] == "ImageTooLargeError", res
    assert "6000x6000" in res["error"][1] and "8,847,360" in res["error"][1] and str(clip) in res["error"][1]
    assert res["growth"] < 20 * MB, res


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _clip(tmp_path_factory.mktemp("clips") / "small.mp4", 64, 48, 30)  # 3 s at 10 fps


def test_clip_caps(small_clip: Path) -> None:
    from faceprint.liveness.motion import timed_frames, video_frames
    from faceprint.liveness.video import VideoLimits

    assert len(list(video_frames(small_clip, step=1, max_frames=100))) == 30
    with pytest.raises(ImageTooLargeError, match="64x48"):
        list(video_frames(small_clip, limits=VideoLimits(max_pixels=64 * 48 - 1)))
    with pytest.raises(ImageTooLargeError, match=r"lasts 3\.0 s, over the limit of 2 s"):
        list(video_frames(small_clip, limits=VideoLimits(max_seconds=2)))
    size = small_clip.stat().st_size
    with pytest.raises(ImageTooLargeError, match=f"{size:,} bytes, over the limit of 100 bytes"):
        list(video_frames(small_clip, limits=VideoLimits(max_bytes=100)))
    stream = io.BytesIO(small_clip.read_bytes())
    with pytest.raises(ImageTooLargeError, match="<stream>: the clip is"):
        list(timed_frames(stream, limits=VideoLimits(max_bytes=100)))
    assert len(list(timed_frames(stream, step=3, max_frames=100))) == 10  # read from the start again


def test_clip_caps_come_from_the_settings(small_clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceprint.liveness.challenge import challenge_response
    from faceprint.liveness.video import VideoLimits, video_liveness

    monkeypatch.setenv("FACEPRINT_VIDEO_MAX_PIXELS", "1000")
    monkeypatch.setenv("FACEPRINT_VIDEO_MAX_SECONDS", "2.5")
    monkeypatch.setenv("FACEPRINT_VIDEO_MAX_BYTES", "5000000")
    settings = Settings.load()
    assert VideoLimits.from_settings(settings) == VideoLimits(max_pixels=1000, max_seconds=2.5, max_bytes=5_000_000)
    engine = SimpleNamespace(settings=settings)  # refused before any model is needed
    with pytest.raises(ImageTooLargeError, match="over the limit of 1,000 pixels"):
        video_liveness(engine, small_clip)
    with pytest.raises(ImageTooLargeError, match="over the limit of 2 s"):
        video_liveness(engine, small_clip, max_pixels=10_000, max_seconds=2)
    with pytest.raises(ImageTooLargeError, match="over the limit of 1,000 pixels"):
        challenge_response(engine, small_clip, ["left"])


def test_clip_without_a_video_stream(tmp_path: Path) -> None:
    import av

    from faceprint.liveness.motion import video_frames

    path = tmp_path / "voice.mka"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    with pytest.raises(InputError, match="no video stream"):
        list(video_frames(path))
