"""Tests for faceprint.imaging: a generated bad-input corpus, every Pillow mode, and the shared sample photos."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageCms, ImageFile

from faceprint import imaging
from faceprint.errors import ImageDecodeError, ImageTooLargeError, InputError
from faceprint.imaging import ImageLimits, decode_bytes, from_array, load_image
from faceprint.types import Image

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
ORIENTATION = 0x0112


# --- helpers -----------------------------------------------------------------


def _check_rgb(img: Image, height: int, width: int) -> np.ndarray:
    """Assert the output contract (H, W, 3) C-contiguous uint8 and return the pixels."""
    assert img.pixels.shape == (height, width, 3)
    assert img.pixels.dtype == np.uint8
    assert img.pixels.flags.c_contiguous
    return img.pixels


def _expect(cls: type[Exception], call: Callable[[], object], *words: str) -> str:
    """Assert ``call`` raises exactly ``cls`` with every word in its message; return the message."""
    with pytest.raises(cls) as info:
        call()
    assert type(info.value) is cls
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


def _save(pil: PILImage.Image, path: Path, **kwargs: Any) -> Path:
    pil.save(path, **kwargs)
    return path


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _png(width: int, height: int, *, bit_depth: int, colour_type: int, raw: bytes) -> bytes:
    """A minimal PNG file built by hand: signature, IHDR, one IDAT of ``raw`` scanlines, IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b"")


def _block_colour(pixels: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    return pixels[rows, cols].reshape(-1, 3).mean(axis=0)


@pytest.fixture
def photo() -> PILImage.Image:
    """A 40x20 RGB picture: grey, red block top-left, green block top-right."""
    pil = PILImage.new("RGB", (40, 20), (128, 128, 128))
    pil.paste(RED, (0, 0, 8, 8))
    pil.paste(GREEN, (32, 0, 40, 8))
    return pil


# --- the bad-input corpus -------------------------------------------------------


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    _expect(ImageDecodeError, lambda: load_image(path), str(path), "empty file")


def test_truncated_jpeg(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(noise).save(buf, "JPEG", quality=95)
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    _expect(ImageDecodeError, lambda: load_image(path), str(path), "truncated or corrupt image data")
    assert not ImageFile.LOAD_TRUNCATED_IMAGES


def test_truncated_jpeg_refused_even_when_another_library_allows_them(tmp_path: Path, monkeypatch) -> None:
    """face_recognition (and others) set Pillow's process-wide LOAD_TRUNCATED_IMAGES on import;
    faceprint still refuses a truncated file, and leaves the switch as that library set it."""
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(noise).save(buf, "JPEG", quality=95)
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with PILImage.open(path) as im:
        im.load()  # what the switch does to Pillow alone: the cut file "decodes"
    _expect(ImageDecodeError, lambda: load_image(path), str(path), "truncated or corrupt image data")
    _expect(ImageDecodeError, lambda: decode_bytes(path.read_bytes()), "<bytes>", "truncated or corrupt image data")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True


def test_text_file_renamed_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n" * 20)
    _expect(ImageDecodeError, lambda: load_image(path), str(path), "not a recognised image format", "JPEG", "PNG")


def test_one_pixel_image(tmp_path: Path) -> None:
    img = load_image(_save(PILImage.new("RGB", (1, 1), (10, 20, 30)), tmp_path / "dot.png"))
    assert _check_rgb(img, 1, 1)[0, 0].tolist() == [10, 20, 30]
    assert (img.format, img.original_mode, img.frames, img.exif_orientation) == ("PNG", "RGB", 1, None)


@pytest.mark.parametrize(
    ("width", "height", "limits", "words"),
    [
        (30000, 30000, ImageLimits(), ("pixels",)),  # over Pillow's own bomb limit too
        (10000, 10000, ImageLimits(max_pixels=50_000_000), ("10000x10000", "50,000,000")),  # ours only
    ],
)
def test_declared_size_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int, height: int, limits: ImageLimits, words: tuple[str, ...]
) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png(width, height, bit_depth=8, colour_type=2, raw=b"\x00" * 16))
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("pixels were decoded"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning must not escape either
        _expect(ImageTooLargeError, lambda: load_image(path, limits=limits), str(path), *words)


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = _save(PILImage.new("RGB", (16, 16), (200, 50, 30)).convert("CMYK"), tmp_path / "cmyk.jpg", quality=95)
    img = load_image(path)
    assert img.original_mode == "CMYK"
    assert np.abs(_check_rgb(img, 16, 16).astype(int) - (200, 50, 30)).max() <= 8


def test_16bit_grey_png_gradient(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 256).astype(np.uint16)
    path = _save(PILImage.fromarray(np.tile(ramp, (4, 1))), tmp_path / "grey16.png")
    img = load_image(path)
    assert img.original_mode == "I;16"
    pixels = _check_rgb(img, 4, 256)
    row = pixels[0, :, 0]
    assert np.array_equal(row, (ramp >> 8).astype(np.uint8))
    assert row[0] == 0 and row[-1] == 255 and np.all(np.diff(row.astype(int)) >= 0)
    assert len(np.unique(row)) == 256  # neither clipped to white nor collapsed
    assert np.array_equal(pixels[..., 0], pixels[..., 2])


def test_16bit_rgb_png(tmp_path: Path) -> None:
    # Pillow cannot write 48-bit RGB, so the file is built by hand.
    samples = np.zeros((2, 4, 3), dtype=">u2")
    samples[..., 0] = 65535
    samples[..., 1] = np.arange(4) * 20000
    samples[..., 2] = 0x1234
    raw = b"".join(b"\x00" + row.tobytes() for row in samples)
    path = tmp_path / "rgb16.png"
    path.write_bytes(_png(4, 2, bit_depth=16, colour_type=2, raw=raw))
    pixels = _check_rgb(load_image(path), 2, 4)
    assert pixels[0].tolist() == [[255, 0, 0x12], [255, 78, 0x12], [255, 156, 0x12], [255, 234, 0x12]]


def test_animated_gif_first_frame(tmp_path: Path) -> None:
    frames = [PILImage.new("RGB", (8, 8), colour) for colour in (RED, GREEN, BLUE)]
    path = _save(frames[0], tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    img = load_image(path)
    assert (img.format, img.frames) == ("GIF", 3)
    assert np.all(_check_rgb(img, 8, 8) == RED)


def test_heic_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("pillow_heif")
    path = _save(PILImage.new("RGB", (64, 48), (200, 60, 40)), tmp_path / "photo.heic", format="HEIF", quality=90)
    img = load_image(path)
    assert img.format == "HEIF"
    assert np.abs(_check_rgb(img, 48, 64).astype(int) - (200, 60, 40)).mean(axis=(0, 1)).max() <= 6


def test_heic_orientation_applied_once(tmp_path: Path, photo: PILImage.Image) -> None:
    pytest.importorskip("pillow_heif")
    exif = PILImage.Exif()
    exif[ORIENTATION] = 6
    img = load_image(_save(photo, tmp_path / "turned.heic", format="HEIF", quality=90, exif=exif.tobytes()))
    pixels = _check_rgb(img, 40, 20)
    assert img.exif_orientation == 6
    assert np.abs(_block_colour(pixels, slice(2, 6), slice(14, 18)) - RED).max() <= 30


def test_heic_without_pillow_heif(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pillow_heif")
    path = _save(PILImage.new("RGB", (16, 16)), tmp_path / "photo.heic", format="HEIF")
    monkeypatch.setattr(imaging, "pillow_heif", None)
    _expect(ImageDecodeError, lambda: load_image(path), str(path), "pillow-heif")


def test_palette_png_with_transparency(tmp_path: Path) -> None:
    pil = PILImage.new("P", (4, 2))
    pil.putpalette([*RED, *BLUE])
    pil.paste(1, (2, 0, 4, 2))
    img = load_image(_save(pil, tmp_path / "palette.png", transparency=0))
    pixels = _check_rgb(img, 2, 4)
    assert img.original_mode == "P"
    assert np.all(pixels[:, :2] == WHITE) and np.all(pixels[:, 2:] == BLUE)


def test_rgba_png_composited_on_white(tmp_path: Path) -> None:
    rgba = np.array([[[255, 0, 0, 0], [255, 0, 0, 255], [0, 0, 0, 128]]], dtype=np.uint8)
    img = load_image(_save(PILImage.fromarray(rgba), tmp_path / "alpha.png"))
    pixels = _check_rgb(img, 1, 3)
    assert img.original_mode == "RGBA"
    assert pixels[0, 0].tolist() == list(WHITE) and pixels[0, 1].tolist() == list(RED)
    assert np.all(np.abs(pixels[0, 2].astype(int) - 127) <= 1)


def test_jpeg_exif_orientation_6(tmp_path: Path, photo: PILImage.Image) -> None:
    exif = PILImage.Exif()
    exif[ORIENTATION] = 6
    img = load_image(_save(photo, tmp_path / "rotated.jpg", quality=95, exif=exif))
    pixels = _check_rgb(img, 40, 20)  # 40x20 stored, shown as 20 wide and 40 high
    assert img.exif_orientation == 6
    # Orientation 6 turns the picture 90 degrees clockwise: top-left -> top-right, top-right -> bottom-right.
    assert np.abs(_block_colour(pixels, slice(2, 6), slice(14, 18)) - RED).max() <= 20
    assert np.abs(_block_colour(pixels, slice(34, 38), slice(14, 18)) - GREEN).max() <= 20
    assert np.abs(_block_colour(pixels, slice(2, 6), slice(2, 6)) - 128).max() <= 20


@pytest.mark.parametrize(
    ("fmt", "suffix", "options"),
    [("WEBP", ".webp", {"lossless": True}), ("BMP", ".bmp", {}), ("TIFF", ".tif", {}), ("PPM", ".ppm", {})],
)
def test_lossless_formats(tmp_path: Path, photo: PILImage.Image, fmt: str, suffix: str, options: dict[str, Any]) -> None:
    img = load_image(_save(photo, tmp_path / f"photo{suffix}", format=fmt, **options))
    assert img.format == fmt
    assert np.array_equal(_check_rgb(img, 20, 40), np.asarray(photo))


# --- Pillow modes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("pil", "expected"),
    [
        (PILImage.new("L", (2, 2), 77), (77, 77, 77)),
        (PILImage.new("1", (2, 2), 1), WHITE),
        (PILImage.new("LA", (2, 2), (0, 0)), WHITE),
        (PILImage.new("RGBX", (2, 2), (1, 2, 3, 0)), (1, 2, 3)),
        (PILImage.new("YCbCr", (2, 2), (128, 128, 128)), (128, 128, 128)),
        (PILImage.new("CMYK", (2, 2), (0, 255, 255, 0)), RED),
        (PILImage.new("I;16B", (2, 2), 0x8000), (128, 128, 128)),
        (PILImage.new("I", (2, 2), 200), (200, 200, 200)),  # fits 8 bits: kept
        (PILImage.new("I", (2, 2), 65535), WHITE),  # 16-bit range: scaled
        (PILImage.new("F", (2, 2), 0.5), (128, 128, 128)),  # [0, 1]: scaled by 255
        (PILImage.new("F", (2, 2), 100.0), (100, 100, 100)),  # 0..255: kept
    ],
    ids=lambda value: getattr(value, "mode", ""),
)
def test_modes_normalised(pil: PILImage.Image, expected: tuple[int, int, int]) -> None:
    img = load_image(pil)
    assert img.original_mode == pil.mode and img.source == "<PIL image>"
    assert np.all(_check_rgb(img, 2, 2) == expected)


def test_lab_mode() -> None:
    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    lab = ImageCms.applyTransform(PILImage.new("RGB", (2, 2), RED), to_lab)
    assert lab is not None and lab.mode == "LAB"
    assert np.abs(_check_rgb(load_image(lab), 2, 2).astype(int) - RED).max() <= 8


def test_wide_range_integer_and_float_are_stretched() -> None:
    ints = PILImage.fromarray(np.array([[-1000, 0, 1000]], dtype=np.int32))
    floats = PILImage.fromarray(np.array([[-1.0, 0.0, np.nan, 3.0]], dtype=np.float32))
    assert load_image(ints).pixels[0, :, 0].tolist() == [0, 128, 255]
    assert load_image(floats).pixels[0, :, 0].tolist() == [0, 64, 64, 255]


def test_pil_input_is_not_modified(photo: PILImage.Image) -> None:
    exif = photo.getexif()
    exif[ORIENTATION] = 6
    img = load_image(photo, name="upload")
    assert img.size == (20, 40) and img.source == "upload" and img.exif_orientation == 6
    assert photo.size == (40, 20) and photo.getexif()[ORIENTATION] == 6


def test_zero_size_pil_image() -> None:
    _expect(ImageDecodeError, lambda: load_image(PILImage.new("RGB", (0, 5)), name="blank"), "blank: ", "zero width")


# --- other inputs -----------------------------------------------------------------


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_bytes_input(photo: PILImage.Image, wrap: Callable[[bytes], object]) -> None:
    buf = io.BytesIO()
    photo.save(buf, "PNG")
    img = load_image(wrap(buf.getvalue()))
    assert img.source == "<bytes>" and img.format == "PNG"
    assert np.array_equal(_check_rgb(img, 20, 40), np.asarray(photo))
    assert decode_bytes(buf.getvalue(), source="mem.png").source == "mem.png"


def test_stream_input(tmp_path: Path, photo: PILImage.Image) -> None:
    path = _save(photo, tmp_path / "photo.png")
    with path.open("rb") as fh:
        assert load_image(fh).source == str(path)
    assert load_image(io.BytesIO(path.read_bytes())).source == "<stream>"
    stream = io.BytesIO(b"\x00" * 200)
    _expect(ImageTooLargeError, lambda: load_image(stream, limits=ImageLimits(max_bytes=100)), "<stream>: ", "100")
    _expect(InputError, lambda: load_image(io.StringIO("text"), name="t"), "t: ", "binary mode")


def test_numpy_grey() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    img = load_image(grey)
    pixels = _check_rgb(img, 3, 4)
    assert img.source == "<array>"
    assert all(np.array_equal(pixels[..., c], grey) for c in range(3))


def test_numpy_bgr_and_copy() -> None:
    bgr = np.zeros((2, 2, 3), dtype=np.uint8)
    bgr[..., 0] = 255  # blue in OpenCV order
    img = from_array(bgr, bgr=True)
    assert np.all(_check_rgb(img, 2, 2) == BLUE)
    assert np.all(from_array(bgr).pixels == RED)
    bgr[:] = 0
    assert np.all(img.pixels == BLUE)  # pixels were copied


@pytest.mark.parametrize(
    ("arr", "bgr", "expected"),
    [
        (np.full((2, 2), 0x8000, dtype=np.uint16), False, (128, 128, 128)),
        (np.full((2, 2, 3), 0.5, dtype=np.float32), False, (128, 128, 128)),
        (np.tile(np.array([255, 0, 0, 0], dtype=np.uint8), (2, 2, 1)), False, WHITE),
        (np.tile(np.array([255, 0, 0, 255], dtype=np.uint8), (2, 2, 1)), True, BLUE),
    ],
    ids=["uint16", "float", "rgba", "bgra"],
)
def test_numpy_dtypes(arr: np.ndarray, bgr: bool, expected: tuple[int, int, int]) -> None:
    assert np.all(_check_rgb(from_array(arr, bgr=bgr), 2, 2) == expected)


@pytest.mark.parametrize(
    ("arr", "words"),
    [
        (np.zeros((2, 2, 2), dtype=np.uint8), ("shape",)),
        (np.zeros((0, 2, 3), dtype=np.uint8), ("zero width",)),
        (np.full((2, 2), 2.0), ("[0, 1]",)),
        (np.zeros((2, 2), dtype=np.int64), ("int64",)),
    ],
    ids=["channels", "empty", "float-range", "dtype"],
)
def test_numpy_rejected(arr: np.ndarray, words: tuple[str, ...]) -> None:
    _expect(InputError, lambda: from_array(arr, source="cam"), "cam: ", *words)


def test_unsupported_input_type() -> None:
    _expect(InputError, lambda: load_image(42, name="answer"), "answer: ", "int")  # type: ignore[arg-type]


# --- limits and file-system errors --------------------------------------------------


def test_file_size_limit(tmp_path: Path, photo: PILImage.Image) -> None:
    path = _save(photo, tmp_path / "photo.bmp")
    size = path.stat().st_size
    limits = ImageLimits(max_bytes=1000)
    _expect(ImageTooLargeError, lambda: load_image(path, limits=limits), str(path), f"{size:,} bytes", "1,000")
    _expect(ImageTooLargeError, lambda: decode_bytes(path.read_bytes(), limits=limits), "<bytes>: ", "1,000")


def test_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "face.jpg"
    _expect(ImageDecodeError, lambda: load_image(path), str(path), "file not found")
    _expect(ImageDecodeError, lambda: load_image(str(path)), str(path), "file not found")


def test_directory(tmp_path: Path) -> None:
    _expect(ImageDecodeError, lambda: load_image(tmp_path), str(tmp_path), "directory")


def test_name_replaces_path_in_messages(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(b"garbage")
    message = _expect(ImageDecodeError, lambda: load_image(path, name="upload.png"), "upload.png: ")
    assert str(tmp_path) not in message


# --- the shared sample photos ---------------------------------------------------------


def test_orl_pgm_faces(data_dir: Path) -> None:
    files = sorted((data_dir / "samples" / "orl" / "att_faces" / "s1").glob("*.pgm"))
    assert len(files) == 10
    for path in files:
        img = load_image(path)
        pixels = _check_rgb(img, 112, 92)
        assert (img.format, img.original_mode) == ("PPM", "L")
        assert np.array_equal(pixels[..., 0], pixels[..., 1])


def test_largest_group_photo(data_dir: Path) -> None:
    def header(path: Path) -> tuple[int, int, int]:
        with PILImage.open(path) as pil:
            return pil.width, pil.height, pil.getexif().get(ORIENTATION, 1)

    photos = {path: header(path) for path in (data_dir / "samples" / "group-photos").glob("*.jpg")}
    path = max(photos, key=lambda p: photos[p][0] * photos[p][1])
    width, height, orientation = photos[path]
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    img = load_image(path)
    assert img.size == (width, height) and img.format == "JPEG"
    _check_rgb(img, height, width)
