"""Decode pictures into RGB uint8 :class:`~faceprint.types.Image` objects.

One entry point, :func:`load_image`, takes a path, bytes, a binary stream, a
NumPy array or a Pillow image.  Files are checked against :class:`ImageLimits`
(file size, then the pixel count declared in the header) before any pixels
are decoded, EXIF orientation is applied, and every Pillow mode is normalised
to C-contiguous ``(H, W, 3)`` uint8.  Every failure is an
:class:`~faceprint.errors.InputError` subclass whose message names the input.

Memory is bounded by the declared size: only the formats in :data:`SUPPORTED_FORMATS`
are opened; RGB / RGBA files decode straight into the array that becomes the result
(4 bytes a pixel at the peak, 3 after); other modes are converted tile by tile from
Pillow's buffer (16-bit and float ones without any full-size float intermediate), and
EXIF orientation is written through a view, not a turned copy of Pillow's image.
Measured peaks above idle (``benchmarks/decode_memory.py``): 4.0 bytes a pixel for RGB
PNG / JPEG, 5.1 for 16-bit, 7.1 for float TIFF, 7.9 for HEIC, 10.1 for a progressive
4:4:4 JPEG (libjpeg's coefficient buffer).  ``ImageLimits.max_pixels`` is the cap that
bounds them; untrusted uploads should get a tighter one (``Settings.upload_max_pixels``).
"""

from __future__ import annotations

import functools
import io
import os
import stat
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, ImageCms, ImageFile, UnidentifiedImageError, features
from PIL import Image as PILImage

from . import media as _media
from .errors import FaceprintError, ImageDecodeError, ImageTooLargeError, InputError
from .types import Image

#: File name suffixes of the image formats faceprint reads (folders are searched for these);
#: their one home is :mod:`faceprint.media`, this name stays for the code that imports it here.
IMAGE_EXTENSIONS = _media.IMAGE_EXTENSIONS

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
    *(("AVIF",) if features.check_module("avif") else ()),
)

# ISO-BMFF brands of HEIF files, used to give a useful message when pillow-heif is missing.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"})
_HIGH_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
#: Pixels converted at a time (a tile): bounds every intermediate of the RGB conversion to a few MB.
_BLOCK_PIXELS = 1 << 18
#: Pillow format ids faceprint opens (Pillow reads many more; EPS would even run Ghostscript).
_OPEN_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "GIF", "PPM", "HEIF", "AVIF")
#: Formats whose RGB / RGBA pixels are decoded straight into the result's buffer (tested pixel for pixel).
_IN_PLACE_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "PPM", "HEIF", "AVIF"})

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
        im = PILImage.open(io.BytesIO(data), formats=_open_formats())
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


_truncation_lock = threading.Lock()
_truncation_users = 0
_truncation_saved = False


@contextmanager
def _truncated_images_refused() -> Iterator[None]:
    """Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES`` is one switch for the whole process, and
    other libraries turn it on (``face_recognition`` does, on import): a truncated file would
    then decode as if whole, its missing rows grey.  faceprint never does that, so the switch
    is off while any faceprint decode runs (counted, so concurrent decodes do not serialise)
    and put back as it was when the last one ends."""
    global _truncation_users, _truncation_saved
    with _truncation_lock:
        if _truncation_users == 0:
            _truncation_saved = ImageFile.LOAD_TRUNCATED_IMAGES
            ImageFile.LOAD_TRUNCATED_IMAGES = False
        _truncation_users += 1
    try:
        yield
    finally:
        with _truncation_lock:
            _truncation_users -= 1
            if _truncation_users == 0 and ImageFile.LOAD_TRUNCATED_IMAGES is False:
                ImageFile.LOAD_TRUNCATED_IMAGES = _truncation_saved


@contextmanager
def _pillow_errors(source: str) -> Iterator[None]:
    """Turn whatever Pillow (or a plugin) raises into faceprint errors; silence bomb warnings.

    The declared pixel count is checked against :class:`ImageLimits` instead, so
    Pillow's ``DecompressionBombWarning`` is ignored here (locally) and its
    ``DecompressionBombError`` becomes :class:`ImageTooLargeError`.
    """
    with _truncated_images_refused(), warnings.catch_warnings():
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")  # "Corrupt EXIF data" and the like
        try:
            yield
        except FaceprintError:
            raise
        except PILImage.DecompressionBombError as exc:
            raise ImageTooLargeError(f"too large to decode safely: {exc}", source=source) from None
        except UnidentifiedImageError:
            supported = ", ".join(SUPPORTED_FORMATS)
            raise ImageDecodeError(f"not a recognised image format (supported: {supported}), or its header is damaged", source=source) from None
        except MemoryError:
            raise ImageTooLargeError("not enough memory to decode the image", source=source) from None
        except Exception as exc:
            raise ImageDecodeError(f"truncated or corrupt image data: {exc}", source=source) from exc


def _from_pil(im: PILImage.Image, source: str, limits: ImageLimits, *, owned: bool) -> Image:
    """Check the declared size, decode, apply EXIF orientation, normalise to RGB uint8.

    ``owned=False`` leaves a caller's image untouched (it is read, never transposed or
    converted in place).  ``owned=True`` (a file faceprint opened) lets the decoder write
    RGB / RGBA straight into the array that becomes the result, and closes ``im``.

    Memory: the decoder's own buffer (1-4 bytes a pixel by mode; 4 for RGB) plus the
    3-byte RGB result, converted in blocks of :data:`_BLOCK_PIXELS` -- no full-size
    float or 16-bit intermediate of any mode.
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
        pixels = _decode_in_place(im) if owned else None
        if pixels is None:
            im.load()
        if im.size[0] * im.size[1] > limits.max_pixels:  # a plugin (pillow-heif) may set the size the decoder found
            raise ImageTooLargeError(f"decoded size {im.size[0]}x{im.size[1]} is over the limit of {limits.max_pixels:,} pixels", source=source)
        orientation = _exif_orientation(im)
        transpose = _transpose_of(im)
        mode = im.mode
        if pixels is None:
            pixels = _to_rgb(im, transpose)
            if owned:
                im.close()  # the decoder's buffer goes now, not when the caller lets go of ``im``
        else:
            im.close()  # drops Pillow's view of the array, so it can shrink
            pixels = _compact_rgb(pixels, width, height, mode, transpose)
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


def _transpose_of(im: PILImage.Image) -> int:
    """The orientation (2..8) that :func:`PIL.ImageOps.exif_transpose` would apply, or 1 for none."""
    value = im.getexif().get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) and 2 <= value <= 8 else 1


def _oriented(out: np.ndarray, transpose: int) -> np.ndarray:
    """A view of ``out`` (the upright picture) indexed like the stored picture: writing the
    stored pixel (y, x) at view[y, x] puts it where EXIF orientation ``transpose`` says."""
    if transpose == 2:
        return out[:, ::-1]
    if transpose == 3:
        return out[::-1, ::-1]
    if transpose == 4:
        return out[::-1]
    if transpose == 5:
        return out.transpose(1, 0, 2)
    if transpose == 6:
        return np.rot90(out, 1)
    if transpose == 7:
        return out[::-1, ::-1].transpose(1, 0, 2)
    if transpose == 8:
        return np.rot90(out, -1)
    return out


def _tiles(width: int, height: int) -> Iterator[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1) of at most about :data:`_BLOCK_PIXELS` covering the picture, row by row."""
    cols = min(width, _BLOCK_PIXELS)
    rows = max(1, _BLOCK_PIXELS // cols)
    for y0 in range(0, height, rows):
        for x0 in range(0, width, cols):
            yield x0, y0, min(width, x0 + cols), min(height, y0 + rows)


def _to_rgb(im: PILImage.Image, transpose: int = 1) -> np.ndarray:
    """Normalise any Pillow mode to (H, W, 3) uint8 in EXIF orientation ``transpose``,
    compositing transparency onto white; converted tile by tile, so no full-size
    intermediate exists besides ``im`` and the result."""
    width, height = im.size
    shape = (width, height, 3) if transpose in (5, 6, 7, 8) else (height, width, 3)
    out = np.empty(shape, dtype=np.uint8)
    view = _oriented(out, transpose)
    convert = _block_converter(im)
    for x0, y0, x1, y1 in _tiles(width, height):
        view[y0:y1, x0:x1] = convert(im.crop((x0, y0, x1, y1)))
    return out


def _block_converter(im: PILImage.Image) -> Callable[[PILImage.Image], np.ndarray]:
    """A function turning one tile of ``im`` into (h, w, 3) uint8 (or (h, w, 1) grey)."""
    if im.mode in _HIGH_BIT_MODES:
        scale = _high_bit_scaler(im)
        return lambda block: scale(np.asarray(block))[:, :, None]
    if im.mode == "LAB":
        transform = _lab_to_srgb()
        return lambda block: np.asarray(transform.apply(block))
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        return lambda block: _composite_on_white(np.asarray(block.convert("RGBA")))
    if im.mode in ("L", "RGB"):
        return lambda block: np.asarray(block)[..., None] if block.mode == "L" else np.asarray(block)
    return lambda block: np.asarray(block.convert("RGB"))


def _high_bit_scaler(im: PILImage.Image) -> Callable[[np.ndarray], np.ndarray]:
    """Map one channel of 16-bit, 32-bit integer or float samples to uint8.

    16-bit keeps the top byte.  Integers that already fit 0..255 are kept and
    0..65535 is scaled as 16-bit; floats in [0, 1] are scaled by 255, floats in
    0..255 are kept; anything else is stretched over the picture's own range
    (NaN and infinities count as 0).  The range is found in a first pass over
    tiles; each tile is then scaled in float64 on its own.
    """
    if im.mode.startswith("I;16"):
        return lambda values: (values >> 8).astype(np.uint8)
    is_float = im.mode == "F"
    lo, hi = np.inf, -np.inf
    for box in _tiles(*im.size):
        v = np.asarray(im.crop(box))
        if is_float and not np.isfinite(v).all():
            v = np.where(np.isfinite(v), v, 0)
        lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
    offset, factor, divisor = 0.0, 1.0, 1.0
    if is_float and lo >= 0.0 and hi <= 1.0:
        factor = 255.0
    elif lo < 0.0 or hi > (255.0 if is_float else 65535.0):
        offset, factor = lo, (255.0 / (hi - lo) if hi > lo else 0.0)
    elif hi > 255.0:
        divisor = 257.0

    def scale(values: np.ndarray) -> np.ndarray:
        v = values.astype(np.float64)  # one tile: the same arithmetic as a whole-picture float64 pass
        if is_float:
            np.nan_to_num(v, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        if offset:
            v -= offset
        if factor != 1.0:
            v *= factor
        if divisor != 1.0:
            v /= divisor
        return np.clip(np.rint(v, out=v), 0, 255, out=v).astype(np.uint8)

    return scale


def _decode_in_place(im: PILImage.Image) -> np.ndarray | None:
    """Decode an RGB / RGBA file image straight into a NumPy buffer (4 bytes a pixel, as
    Pillow lays them out), so no second full-size copy is made; None where that does not
    apply (other modes, a colour key, an image already loaded), and the caller loads as usual."""
    if im.mode not in ("RGB", "RGBA") or "transparency" in im.info or getattr(im, "_im", None) is not None:
        return None
    if not isinstance(im, ImageFile.ImageFile) or im.format not in _IN_PLACE_FORMATS:
        return None
    if im.format == "TIFF" and getattr(im, "tag_v2", {}).get(ExifTags.Base.Orientation, 1) != 1:
        return None  # Pillow turns these itself while loading (into a new buffer)
    width, height = im.size
    buf = np.empty(width * height * 4, dtype=np.uint8)
    try:
        core = PILImage.core.map_buffer(buf, (width, height), "raw", 0, (im.mode, 0, 1))
    except Exception:  # pragma: no cover - a Pillow without map_buffer for this mode
        return None
    im.im = core
    im.load()
    if im._im is not core or im.mode not in ("RGB", "RGBA") or im.size != (width, height) or "transparency" in im.info:
        return None  # the plugin replaced the buffer: the caller converts ``im`` as loaded
    del core
    return buf


def _compact_rgb(buf: np.ndarray, width: int, height: int, mode: str, transpose: int) -> np.ndarray:
    """Turn a flat buffer of (H, W, 4) RGBX / RGBA pixels into (H, W, 3) RGB in place
    (alpha composited onto white), shrink it to 3 bytes a pixel, then orient it."""
    n = width * height
    _pack_rgb(buf, n, composite=mode == "RGBA")
    try:
        buf.resize(3 * n, refcheck=False)  # realloc: hands the freed quarter back
    except (ValueError, BufferError):  # pragma: no cover - someone else holds the buffer
        buf = buf[: 3 * n]
    stored = buf.reshape(height, width, 3)
    if transpose == 1:
        return stored
    shape = (width, height, 3) if transpose in (5, 6, 7, 8) else (height, width, 3)
    out = np.empty(shape, dtype=np.uint8)
    _oriented(out, transpose)[...] = stored
    return out


def _pack_rgb(buf: np.ndarray, n: int, *, composite: bool) -> None:
    """Pixel p's 4 bytes at 4p become 3 bytes at 3p, in chunks from the start: a chunk
    only overwrites bytes before its own (read first), never a later chunk's."""
    src = buf[: 4 * n].reshape(n, 4)
    dst = buf[: 3 * n].reshape(n, 3)
    for p0 in range(0, n, _BLOCK_PIXELS):
        p1 = min(n, p0 + _BLOCK_PIXELS)
        dst[p0:p1] = _composite_on_white(src[p0:p1]) if composite else src[p0:p1, :3]  # NumPy copies first where they overlap


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """Blend (..., 4) uint8 onto a white background, giving (..., 3) uint8."""
    rgb = rgba[..., :3].astype(np.uint16)
    alpha = rgba[..., 3:4].astype(np.uint16)
    rgb *= alpha
    rgb += 255 * (255 - alpha) + 127
    rgb //= 255
    return rgb.astype(np.uint8)


@functools.cache
def _open_formats() -> tuple[str, ...]:
    """The :data:`_OPEN_FORMATS` this Pillow can read (all plugins registered first)."""
    PILImage.init()
    return tuple(f for f in _OPEN_FORMATS if f in PILImage.OPEN)


@functools.cache
def _lab_to_srgb() -> ImageCms.ImageCmsTransform:
    return ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
