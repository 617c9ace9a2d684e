"""Fuzzing the decoders: mutated pictures and clips must give a valid result or a faceprint
``InputError`` -- no other exception, no hang, no allocation past a bound.

Seeds are small files generated here (never the shared face data, so that a failing input
may be kept in the repository): JPEG (baseline with EXIF orientation, progressive 4:4:4,
CMYK), PNG (RGBA, 16-bit, palette with transparency, interlaced), GIF (3 frames), TIFF (RGB,
float, 16-bit), WebP, HEIC, AVIF, BMP, PGM, and clips (H.264 MP4, HEVC MP4, MPEG-4 AVI, VP8
WebM, MJPEG MOV).  Mutations, one to four per example: bit flips, byte writes (biased to the
header), truncation, insertion and deletion of bytes, and the width / height fields set to
0, 1 or huge values (the fields are found by searching each seed for its own size, in
16 / 32-bit big / little endian and MP4's 16.16 fixed point; PNG chunk CRCs are recomputed
half the time so the change reaches the decoder).

Targets: ``decode_bytes`` / ``load_image`` (bytes and streams) under ``ImageLimits(max_pixels=4 MP)``,
and the clip reader ``timed_frames`` under ``VideoLimits(max_pixels=4 MP)``.  The oracle:
an ``Image`` of (H, W, 3) C-contiguous uint8 within the cap (frames likewise), or an
``InputError`` subclass; the process's peak RSS may not grow past a bound per example
(``clear_refs`` / ``VmHWM``); Hypothesis's deadline flags a slow example and a watchdog
(``faulthandler``) ends the run on a hang.

Smoke size in the suite: ``FACEPRINT_FUZZ_EXAMPLES`` examples per target (default 40),
derandomised (the same examples every run).  Full size, random::

    FACEPRINT_FUZZ_EXAMPLES=5000 FACEPRINT_FUZZ_RANDOM=1 FACEPRINT_FUZZ_SAVE=/tmp/fuzz-failures \\
        .venv/bin/python -m pytest -q tests/test_fuzz_decoders.py

``FACEPRINT_FUZZ_SAVE`` keeps every failing input there; copy the shrunk ones into
``tests/fuzz_corpus/`` (``image-<what>.bin`` / ``video-<what>.bin``): ``test_corpus_replays``
runs each of them through the same oracle, in a subprocess under ``RLIMIT_AS``.
"""

from __future__ import annotations

import faulthandler
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from faceprint.errors import InputError
from faceprint.imaging import ImageLimits, decode_bytes, load_image
from faceprint.types import Image

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"
EXAMPLES = int(os.environ.get("FACEPRINT_FUZZ_EXAMPLES", "40"))
RANDOM = os.environ.get("FACEPRINT_FUZZ_RANDOM", "") not in ("", "0")
SAVE = os.environ.get("FACEPRINT_FUZZ_SAVE")
MAX_PIXELS = 4_000_000
LIMITS = ImageLimits(max_bytes=4 * 1024 * 1024, max_pixels=MAX_PIXELS)
MB = 1024 * 1024
# peak RSS growth allowed for one example: the costliest decode (progressive CMYK JPEG, ~12
# bytes a pixel) at the cap, plus room for the plugins' first use; a clip may also hold a
# decoder's reference frames
IMAGE_GROWTH = 12 * MAX_PIXELS + 64 * MB
VIDEO_GROWTH = 40 * MAX_PIXELS + 64 * MB
HANG_SECONDS = 60

IMG_W, IMG_H = 67, 45  # odd sizes, easy to find in the headers
VID_W, VID_H = 66, 46
INTERESTING = (0, 1, 2, 255, 256, 0x7FFF, 0x8000, 0xFFFF, 30000, 65500, 100_000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


class Blob(bytes):
    """Bytes whose repr is short (a failing example's report names it, the file keeps it)."""

    def __repr__(self) -> str:
        return f"<{len(self)} bytes, sha1 {hashlib.sha1(self).hexdigest()[:12]}>"


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes
    fields: tuple[tuple[int, str], ...]  # (offset, struct format or 'textN') of each place the width or height was found


# --- seeds -------------------------------------------------------------------------------------


def _size_fields(data: bytes, width: int, height: int) -> tuple[tuple[int, str], ...]:
    found: set[tuple[int, str]] = set()
    if data[:1] == b"P":  # PNM: the size is text in the header
        for value in (width, height):
            if (at := data.find(str(value).encode(), 0, 32)) >= 0:
                found.add((at, f"text{len(str(value))}"))
    for tag in (b"VP8L", b"VP8X"):  # WebP: (width - 1, height - 1) packed after the chunk header
        if (at := data.find(tag, 12)) >= 0:
            found.add((at + (9 if tag == b"VP8L" else 12), "<I"))
    for value in (width, height, width - 1, height - 1):
        for fmt in (">H", "<H", ">I", "<I"):
            needle = struct.pack(fmt, value)
            start = 0
            while (at := data.find(needle, start)) >= 0 and len(found) < 200:
                if fmt[1] == "I" or at < 1024:  # 16-bit matches past the headers are mostly chance
                    found.add((at, fmt))
                start = at + 1
        needle = struct.pack(">I", value << 16)  # MP4 tkhd: 16.16 fixed point
        if (at := data.find(needle)) >= 0:
            found.add((at, ">I"))
    return tuple(sorted(found))


def _image_seeds() -> dict[str, Seed]:
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:IMG_H, 0:IMG_W]
    rgb = np.dstack([x * 3, y * 5, (x + y) * 2]).astype(np.uint8)
    rgb[::7] = rng.integers(0, 256, rgb[::7].shape, dtype=np.uint8)
    pil = PILImage.fromarray(rgb)
    rgba = PILImage.fromarray(np.dstack([rgb, (x * 4).astype(np.uint8)]))
    exif = PILImage.Exif()
    exif[0x0112] = 6
    out: dict[str, Seed] = {}

    def add(name: str, image: PILImage.Image, fmt: str, **options: object) -> None:
        buf = io.BytesIO()
        image.save(buf, fmt, **options)
        data = buf.getvalue()
        out[name] = Seed(name, data, _size_fields(data, IMG_W, IMG_H))

    add("jpeg", pil, "JPEG", quality=80, exif=exif)
    add("jpeg-progressive", pil, "JPEG", quality=80, progressive=True, subsampling=0)
    add("jpeg-cmyk", pil.convert("CMYK"), "JPEG", quality=80)
    add("png-rgba", rgba, "PNG")
    add("png-16", PILImage.fromarray((x * 900 + y).astype(np.uint16)), "PNG")
    add("png-palette", pil.quantize(16), "PNG", transparency=2)
    add("png-interlaced", pil, "PNG", interlace=1)
    add("gif", pil.quantize(32), "GIF", save_all=True, append_images=[pil.quantize(32).rotate(180), pil.quantize(8)], duration=50, loop=0)
    add("tiff", pil, "TIFF", compression="tiff_deflate", exif=exif)
    add("tiff-float", PILImage.fromarray((x / 20.0 - y / 30.0).astype(np.float32)), "TIFF")
    add("tiff-16", PILImage.fromarray((x * 900 + y).astype(np.uint16)), "TIFF", compression="tiff_lzw")
    add("webp", rgba, "WEBP", lossless=True)
    add("webp-lossy", pil, "WEBP", quality=60)
    add("bmp", pil, "BMP")
    add("pgm", pil.convert("L"), "PPM")
    try:
        import pillow_heif  # noqa: F401 - registered by faceprint.imaging

        add("heic", pil, "HEIF", quality=60, exif=exif.tobytes())
    except (ImportError, KeyError, OSError):  # pragma: no cover
        pass
    try:
        add("avif", pil, "AVIF", quality=60)
    except (KeyError, OSError):  # pragma: no cover - a Pillow without AVIF
        pass
    return out


def _video_seeds() -> dict[str, Seed]:
    import av

    out: dict[str, Seed] = {}
    for name, codec, fmt, options in (
        ("mp4-h264", "libx264", "mp4", {"preset": "ultrafast"}),
        ("mp4-hevc", "libx265", "mp4", {"x265-params": "log-level=none"}),
        ("avi-mpeg4", "mpeg4", "avi", {}),
        ("webm-vp8", "vp8", "webm", {}),
        ("mov-mjpeg", "mjpeg", "mov", {}),
    ):
        try:
            buf = io.BytesIO()
            with av.open(buf, "w", format=fmt) as container:
                stream = container.add_stream(codec, rate=10)
                stream.width, stream.height = VID_W, VID_H
                stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
                stream.options = options
                pixels = np.full((VID_H, VID_W, 3), 90, np.uint8)
                for i in range(8):
                    pixels[10:20, 5 + 3 * i : 15 + 3 * i] = 200
                    container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
                container.mux(stream.encode())
        except Exception:  # pragma: no cover - an encoder this PyAV build lacks
            continue
        data = buf.getvalue()
        out[name] = Seed(name, data, _size_fields(data, VID_W, VID_H))
    return out


@pytest.fixture(scope="module")
def image_seeds() -> dict[str, Seed]:
    return _image_seeds()


@pytest.fixture(scope="module")
def video_seeds() -> dict[str, Seed]:
    return _video_seeds()


# --- mutations ----------------------------------------------------------------------------------


def _fix_png_crcs(data: bytearray) -> None:
    """Recompute the CRC of every PNG chunk whose length still fits the data."""
    at = 8
    while at + 12 <= len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        end = at + 8 + length
        if end + 4 > len(data):
            return
        data[end : end + 4] = struct.pack(">I", zlib.crc32(bytes(data[at + 4 : end])))
        at = end + 4


@st.composite
def _mutated(draw: st.DrawFn, seeds: dict[str, Seed]) -> tuple[str, bytes]:
    seed = seeds[draw(st.sampled_from(sorted(seeds)))]
    data = bytearray(seed.data)

    def position() -> int:
        n = max(1, len(data))
        return draw(st.one_of(st.integers(0, min(n, 512) - 1), st.integers(0, n - 1)))

    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        kind = draw(st.sampled_from(("flip", "byte", "truncate", "insert", "delete", "size", "size", "size")))
        if kind == "flip":
            data[position()] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            data[position()] = draw(st.sampled_from((0, 0xFF, 0x7F, 0x80, 0x01))) if draw(st.booleans()) else draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[draw(st.integers(0, len(data) - 1)) :]
        elif kind == "insert":
            at = position()
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            at = position()
            del data[at : at + draw(st.integers(1, 64))]
        elif seed.fields:
            at, fmt = draw(st.sampled_from(seed.fields))
            if fmt.startswith("text"):
                data[at : at + int(fmt[4:])] = str(draw(st.sampled_from(INTERESTING))).encode()
                continue
            size = struct.calcsize(fmt)
            if at + size <= len(data):
                value = draw(st.sampled_from(INTERESTING)) & (0xFFFF if size == 2 else 0xFFFFFFFF)
                data[at : at + size] = struct.pack(fmt, value)
    if seed.name.startswith("png") and draw(st.booleans()):
        _fix_png_crcs(data)
    return seed.name, Blob(data)


# --- the oracles ----------------------------------------------------------------------------


def _hwm() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration):  # pragma: no cover - not Linux
        return None


def _reset_peak() -> int | None:
    """Reset the kernel's peak RSS to the current RSS; the RSS, or None where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - a kernel / container that refuses
        return None


def check_image(data: bytes, how: int = 0) -> str:
    """The image oracle; returns what happened ('ok' or the error class) or raises AssertionError."""
    try:
        if how == 0:
            img = decode_bytes(data, source="fuzz", limits=LIMITS)
        else:
            img = load_image(io.BytesIO(data), limits=LIMITS, name="fuzz")
    except InputError as exc:
        assert str(exc).startswith("fuzz: "), exc
        assert "not enough memory" not in str(exc), exc  # a MemoryError: something allocated far past the declared size
        return type(exc).__name__
    assert isinstance(img, Image)
    px = img.pixels
    assert px.ndim == 3 and px.shape[2] == 3 and px.dtype == np.uint8 and px.flags.c_contiguous, (px.shape, px.dtype)
    assert 0 < px.shape[0] * px.shape[1] <= MAX_PIXELS, px.shape
    return "ok"


def check_video(data: bytes) -> str:
    from faceprint.liveness.motion import timed_frames
    from faceprint.liveness.video import VideoLimits

    limits = VideoLimits(max_pixels=MAX_PIXELS, max_seconds=60.0, max_bytes=4 * 1024 * 1024)
    n = 0
    try:
        for t, frame in timed_frames(io.BytesIO(data), step=1, max_frames=30, limits=limits):
            assert isinstance(t, float) and np.isfinite(t)
            assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8, (frame.shape, frame.dtype)
            assert 0 < frame.shape[0] * frame.shape[1] <= MAX_PIXELS, frame.shape
            n += 1
    except InputError as exc:
        assert str(exc).startswith("<stream>: "), exc
        return type(exc).__name__
    return f"ok ({n} frames)"


def _guarded(target: str, name: str, data: bytes, call, growth_bound: int) -> None:
    """Run one example under the watchdog and the memory bound; keep a failing input."""
    base = _reset_peak()
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    try:
        outcome = call(data)
        event(f"{name}: {outcome.split(' (')[0]}")  # --hypothesis-show-statistics tallies them
        if base is not None:
            grown = (_hwm() or base) - base
            assert grown <= growth_bound, f"peak RSS grew by {grown / MB:.0f} MB (bound {growth_bound / MB:.0f} MB)"
    except BaseException:
        if SAVE:
            folder = Path(SAVE)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{target}-{name}-{hashlib.sha1(data).hexdigest()[:12]}.bin").write_bytes(data)
        raise
    finally:
        faulthandler.cancel_dump_traceback_later()


_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=10),
    derandomize=not RANDOM,
    database=None,  # the corpus folder is the memory of failures, not .hypothesis/
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


def test_seeds_decode(image_seeds: dict[str, Seed], video_seeds: dict[str, Seed]) -> None:
    """The unmutated seeds decode (the mutations start from working files), and each has size fields to change."""
    assert len(image_seeds) >= 15 and len(video_seeds) >= 3
    for seed in image_seeds.values():
        assert check_image(seed.data) == "ok", seed.name
        assert seed.fields, seed.name
    for seed in video_seeds.values():
        assert check_video(seed.data) == "ok (8 frames)", seed.name
        assert seed.fields, seed.name


@_SETTINGS
@given(data=st.data())
def test_fuzz_images(image_seeds: dict[str, Seed], data: st.DataObject) -> None:
    name, blob = data.draw(_mutated(image_seeds))
    how = data.draw(st.integers(0, 1))
    _guarded("image", name, blob, lambda b: check_image(b, how), IMAGE_GROWTH)


@_SETTINGS
@given(data=st.data())
def test_fuzz_video(video_seeds: dict[str, Seed], data: st.DataObject) -> None:
    name, blob = data.draw(_mutated(video_seeds))
    _guarded("video", name, blob, check_video, VIDEO_GROWTH)


# --- the regression corpus -------------------------------------------------------------------

_REPLAY = """
import json, resource, sys
sys.path.insert(0, {tests!r}); sys.path.insert(0, {src!r})
import test_fuzz_decoders as fz
with open("/proc/self/status") as fh:
    vm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (vm + {headroom}, resource.RLIM_INFINITY))
out = {{}}
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    name = path.rsplit("/", 1)[-1]
    try:
        out[name] = fz.check_video(data) if name.startswith("video-") else fz.check_image(data)
    except AssertionError as exc:
        out[name] = "FAILED: " + str(exc)
print(json.dumps(out))
"""


def test_corpus_replays() -> None:
    """Every input that ever failed, through the same oracles, in a subprocess whose address
    space is capped at 1 GB over its size after imports (an allocation past it is an error)."""
    files = sorted(p for p in CORPUS.glob("*.bin"))
    assert files, f"no corpus in {CORPUS}"
    code = _REPLAY.format(tests=str(REPO / "tests"), src=str(REPO / "src"), headroom=1024 * MB)
    proc = subprocess.run([sys.executable, "-c", code, *map(str, files)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    failed = {k: v for k, v in results.items() if v.startswith("FAILED")}
    assert not failed, failed
    assert len(results) == len(files)
