"""Decode pictures into RGB uint8 :class:`~faceprint.types.Image` objects.

One entry point, :func:`load_image`, takes a path, bytes, a binary stream, a
NumPy array or a Pillow image.  Files are checked against :class:`ImageLimits`
(file size, then the pixel count declared in the header) before any pixels
are decoded, EXIF orientation is applied, and every Pillow mode is normalised
to C-contiguous ``(H, W, 3)`` uint8.  Every failure is an
:class:`~faceprint.errors.InputError` subclass whose message names the input.
"""

from __future__ import annotations

import functools
import io
import os
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, ImageCms, ImageOps, UnidentifiedImageError
from PIL import Image as PILImage

from .errors import FaceprintError, ImageDecodeError, ImageTooLargeError, InputError
from .types import Image

#: File name suffixes of the image formats faceprint reads (folders are searched for these).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".pgm", ".ppm", ".pnm", ".heic", ".heif", ".avif"})

try:
    import pillow_heif
except ImportError:  # pragma: no cover - depends on the environment
    pillow_heif = None  # type: ignore[assignment]
else:
    pillow_heif.register_heif_opener()

SUPPORTED_FORMATS: tuple[str, ...] = (
    "JPEG",
    "PNG",
    "WebP",
    "BMP",
    "TIFF",
    "GIF",
    "PGM/PPM",
    *(("HEIC/HEIF",) if pillow_heif is not None else ()),
)

# ISO-BMFF brands of HEIF files, used to give a useful message when pillow-heif is missing.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"})
_HIGH_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})

ImageSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO | np.ndarray | PILImage.Image


@dataclass(frozen=True)
class ImageLimits:
    """Input limits: file size in bytes and declared pixel count (width * height)."""

    max_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 120_000_000


def load_image(source: ImageSource, *, limits: ImageLimits | None = None, name: str | None = None) -> Image:
    """Load ``source`` as an RGB uint8 image; ``name`` replaces the input's name in messages."""
    limits = limits or ImageLimits()
    if isinstance(source, np.ndarray):
        return from_array(source, source=name or "<array>")
    if isinstance(source, PILImage.Image):
        return _from_pil(source, name or _name_of(source, "filename", "<PIL image>"), limits, owned=False)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_bytes(bytes(source), source=name or "<bytes>", limits=limits)
    if isinstance(source, (str, os.PathLike)):
        return _load_path(source, name or os.fsdecode(source), limits)
    if hasattr(source, "read"):
        return _load_stream(source, name or _name_of(source, "name", "<stream>"), limits)
    raise InputError(f"cannot load an image from a {type(source).__name__}", source=name)


def decode_bytes(data: bytes, *, source: str = "<bytes>", limits: ImageLimits | None = None) -> Image:
    """Decode an encoded image file held in memory."""
    limits = limits or ImageLimits()
    _check_file_size(len(data), source, limits)
    if pillow_heif is None and data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        raise ImageDecodeError("HEIC/HEIF image, but pillow-heif is not installed (pip install pillow-heif)", source=source)
    with _pillow_errors(source):
        im = PILImage.open(io.BytesIO(data))
    with im:
        return _from_pil(im, source, limits, owned=True)


def from_array(arr: np.ndarray, *, source: str = "<array>", bgr: bool = False) -> Image:
    """Wrap pixels: (H, W) grey, (H, W, 3) or (H, W, 4); uint8, uint16 or float in [0, 1].

    ``bgr=True`` reads the channels as OpenCV's BGR(A).  Alpha is composited onto white.
    The pixels are always copied.
    """
    a = np.asarray(arr)
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise InputError(f"expected an array of shape (H, W), (H, W, 3) or (H, W, 4), got {a.shape}", source=source)
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(f"image has zero width or height ({a.shape[1]}x{a.shape[0]})", source=source)
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype.kind == "f":
        if not np.isfinite(a).all() or a.min() < 0.0 or a.max() > 1.0:
            raise InputError("float pixels must be finite and in [0, 1]", source=source)
        a = np.rint(a.astype(np.float32) * 255.0).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise InputError(f"unsupported pixel dtype {a.dtype} (use uint8, uint16 or float in [0, 1])", source=source)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif bgr:
        a = a[:, :, [2, 1, 0, 3][: a.shape[2]]]
    if a.shape[2] == 4:
        a = _composite_on_white(a)
    return Image(pixels=np.array(a, dtype=np.uint8, order="C"), source=source)


def _load_path(path: str | os.PathLike[str], source: str, limits: ImageLimits) -> Image:
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise ImageDecodeError("file not found", source=source) from None
    except (OSError, ValueError) as exc:
        raise ImageDecodeError(f"cannot read file: {_reason(exc)}", source=source) from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageDecodeError("is a directory, not an image file", source=source)
    _check_file_size(info.st_size, source, limits)
    try:
        with open(path, "rb") as fh:
            data = fh.read(limits.max_bytes + 1)
    except OSError as exc:
        raise ImageDecodeError(f"cannot read file: {_reason(exc)}", source=source) from None
    return decode_bytes(data, source=source, limits=limits)


def _load_stream(stream: BinaryIO, source: str, limits: ImageLimits) -> Image:
    try:
        data = stream.read(limits.max_bytes + 1)
    except (OSError, ValueError) as exc:
        raise ImageDecodeError(f"cannot read stream: {_reason(exc)}", source=source) from None
    if not isinstance(data, bytes):
        raise InputError("stream must be opened in binary mode", source=source)
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(f"file is over the limit of {limits.max_bytes:,} bytes", source=source)
    return decode_bytes(data, source=source, limits=limits)


def _check_file_size(size: int, source: str, limits: ImageLimits) -> None:
    if size == 0:
        raise ImageDecodeError("empty file (0 bytes)", source=source)
    if size > limits.max_bytes:
        raise ImageTooLargeError(f"file is {size:,} bytes, over the limit of {limits.max_bytes:,} bytes", source=source)


def _name_of(obj: object, attr: str, default: str) -> str:
    value = getattr(obj, attr, None)
    return value if isinstance(value, str) and value else default


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc)


@contextmanager
def _pillow_errors(source: str) -> Iterator[None]:
    """Turn whatever Pillow (or a plugin) raises into faceprint errors; silence bomb warnings.

    The declared pixel count is checked against :class:`ImageLimits` instead, so
    Pillow's ``DecompressionBombWarning`` is ignored here (locally) and its
    ``DecompressionBombError`` becomes :class:`ImageTooLargeError`.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        try:
            yield
        except FaceprintError:
            raise
        except PILImage.DecompressionBombError as exc:
            raise ImageTooLargeError(f"too large to decode safely: {exc}", source=source) from None
        except UnidentifiedImageError:
            supported = ", ".join(SUPPORTED_FORMATS)
            raise ImageDecodeError(
                f"not a recognised image format (supported: {supported}), or its header is damaged", source=source
            ) from None
        except MemoryError:
            raise ImageTooLargeError("not enough memory to decode the image", source=source) from None
        except Exception as exc:
            raise ImageDecodeError(f"truncated or corrupt image data: {exc}", source=source) from exc


def _from_pil(im: PILImage.Image, source: str, limits: ImageLimits, *, owned: bool) -> Image:
    """Check the declared size, decode, apply EXIF orientation, normalise to RGB uint8.

    ``owned=False`` leaves a caller's image untouched (orientation is applied to a copy).
    """
    with _pillow_errors(source):
        width, height = im.size
        if width <= 0 or height <= 0:
            raise ImageDecodeError(f"image has zero width or height ({width}x{height})", source=source)
        if width * height > limits.max_pixels:
            raise ImageTooLargeError(
                f"declared size {width}x{height} ({width * height:,} pixels) is over the limit of {limits.max_pixels:,} pixels",
                source=source,
            )
        fmt = im.format
        frames = int(getattr(im, "n_frames", 1))
        im.load()
        orientation = _exif_orientation(im)
        if owned:
            ImageOps.exif_transpose(im, in_place=True)
        else:
            im = ImageOps.exif_transpose(im)
        mode = im.mode
        pixels = _to_rgb(im)
    return Image(
        pixels=pixels,
        source=source,
        format=fmt,
        original_mode=mode,
        exif_orientation=orientation,
        frames=frames,
    )


def _exif_orientation(im: PILImage.Image) -> int | None:
    """The EXIF orientation tag (1..8), or None.  pillow-heif rotates HEIF itself and keeps the original tag in info."""
    value = im.info.get("original_orientation")
    if value is None:
        value = im.getexif().get(ExifTags.Base.Orientation)
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def _to_rgb(im: PILImage.Image) -> np.ndarray:
    """Normalise any Pillow mode to (H, W, 3) uint8, compositing transparency onto white."""
    if im.mode in _HIGH_BIT_MODES:
        grey = _scale_to_uint8(np.asarray(im))
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if im.mode == "LAB":
        im = _lab_to_srgb().apply(im)
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        return _composite_on_white(np.asarray(im.convert("RGBA")))
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im), dtype=np.uint8)


def _scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Map one channel of 16-bit, 32-bit integer or float samples to uint8.

    16-bit keeps the top byte.  Integers that already fit 0..255 are kept and
    0..65535 is scaled as 16-bit; floats in [0, 1] are scaled by 255, floats in
    0..255 are kept; anything else is stretched over its own range.
    """
    if values.dtype.kind == "u" and values.dtype.itemsize == 2:
        return (values >> 8).astype(np.uint8)
    is_float = values.dtype.kind == "f"
    v = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(v.min()), float(v.max())
    if is_float and lo >= 0.0 and hi <= 1.0:
        v = v * 255.0
    elif lo < 0.0 or hi > (255.0 if is_float else 65535.0):
        v = (v - lo) * (255.0 / (hi - lo) if hi > lo else 0.0)
    elif hi > 255.0:
        v = v / 257.0
    return np.clip(np.rint(v), 0, 255).astype(np.uint8)


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """Blend (H, W, 4) uint8 onto a white background, giving (H, W, 3) uint8."""
    rgb = rgba[:, :, :3].astype(np.uint16)
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    return np.ascontiguousarray((rgb * alpha + 255 * (255 - alpha) + 127) // 255, dtype=np.uint8)


@functools.cache
def _lab_to_srgb() -> ImageCms.ImageCmsTransform:
    return ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
