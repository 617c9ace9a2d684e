"""Features of one detected face for presentation-attack detection (PAD), in two families.

*Face texture* (on the face region, scaled to a fixed size): a recaptured face -- printed on
paper or shown on a screen and photographed again -- has lost fine skin texture to the
printer's dots or the screen's pixel grid, carries moire and a flattened colour gamut, and
reflects light like paper or glass.  Measured as colour local binary patterns (LBP histograms
of the luma, chroma and HSV channels, after Boulkenafet et al. 2015), the face's Fourier
spectrum (radial energy profile, high-frequency share, the strongest periodic peak: print dot
pattern or moire), colour moments and the share of specular pixels.

*Context* (the face and its surround, about three face widths): a photo or a screen is an
object with edges held in front of the camera; its border or bezel shows as long straight
edges around the face.  Measured as the longest line segment framing the face on each side,
how many sides are framed and the total length of long straight edges in the surround.
(Surround sharpness, brightness and saturation were measured too and dropped: on NUAA they
lower the error, but they learn that data's capture set-up -- a print lit like NUAA's, a
background as sharp as NUAA's -- and rejected every frame of a film clip of live faces.)

Both are plain NumPy vectors with named blocks; :mod:`faceprint.liveness.pad` turns them into
scores.  Nothing here is learned.
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import cv2
import numpy as np

from faceprint.types import Detection, Image

__all__ = [
    "CAPTURE_NAMES",
    "CONTEXT_NAMES",
    "FACE_SIZE",
    "TEXTURE_NAMES",
    "context_features",
    "face_region",
    "capture_features",
    "lbp_histogram",
    "texture_features",
]

FACE_SIZE = 128  # the face region is scaled to this square before texture is measured
FACE_SCALE = 1.1  # face region side = FACE_SCALE x the larger side of the detection box
CONTEXT_SCALE = 3.0  # surround side = CONTEXT_SCALE x the larger side of the detection box
RADIAL_BINS = 16


@lru_cache(maxsize=1)
def _uniform_table() -> np.ndarray:
    """8-neighbour LBP code -> one of 59 bins (58 uniform patterns, one for all others)."""
    table = np.full(256, 58, np.int64)
    k = 0
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        transitions = sum(bits[i] != bits[(i + 1) % 8] for i in range(8))
        if transitions <= 2:
            table[code] = k
            k += 1
    return table


def lbp_histogram(channel: np.ndarray, radius: int = 1) -> np.ndarray:
    """Normalised 59-bin uniform LBP(8, radius) histogram of one 2-D channel."""
    c = channel.astype(np.int16)
    r = radius
    centre = c[r:-r, r:-r]
    h, w = centre.shape
    code = np.zeros(centre.shape, np.int64)
    offsets = [(-r, -r), (-r, 0), (-r, r), (0, r), (r, r), (r, 0), (r, -r), (0, -r)]
    for bit, (dy, dx) in enumerate(offsets):
        nb = c[r + dy : r + dy + h, r + dx : r + dx + w]
        code |= (nb >= centre).astype(np.int64) << bit
    hist = np.bincount(_uniform_table()[code].ravel(), minlength=59).astype(np.float64)
    return hist / max(hist.sum(), 1.0)


def _square(det: Detection, scale: float) -> tuple[float, float, float]:
    x, y, w, h = det.box
    cx, cy = x + w / 2.0, y + h / 2.0
    return cx, cy, scale * max(w, h)


def face_region(image: Image, det: Detection, size: int = FACE_SIZE, scale: float = FACE_SCALE) -> np.ndarray:
    """The square around the face (``scale`` x its box), scaled to ``size``, RGB uint8; parts
    outside the picture are filled by replicating its border."""
    cx, cy, side = _square(det, scale)
    s = size / max(side, 1.0)
    m = np.array([[s, 0.0, size / 2.0 - s * cx], [0.0, s, size / 2.0 - s * cy]])
    interp = cv2.INTER_AREA if s < 1.0 else cv2.INTER_LINEAR
    if s < 1.0:  # INTER_AREA only applies to resize: crop first, then resize
        x0, y0 = math.floor(cx - side / 2), math.floor(cy - side / 2)
        n = math.ceil(side)
        pad = max(0, -x0, -y0, x0 + n - image.width, y0 + n - image.height)
        px = cv2.copyMakeBorder(image.pixels, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else image.pixels
        crop = px[y0 + pad : y0 + pad + n, x0 + pad : x0 + pad + n]
        return cv2.resize(crop, (size, size), interpolation=interp)
    return cv2.warpAffine(image.pixels, m, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def _spectrum_features(gray: np.ndarray) -> list[float]:
    g = gray.astype(np.float64)
    g = g - g.mean()
    n = g.shape[0]
    win = np.outer(np.hanning(n), np.hanning(n))
    mag = np.abs(np.fft.fftshift(np.fft.fft2(g * win)))
    power = mag**2
    yy, xx = np.mgrid[0:n, 0:n]
    rr = np.hypot(yy - n / 2, xx - n / 2) / (n / 2)  # 0 at DC, 1 at Nyquist along the axes
    total = power[(rr > 0.02) & (rr <= 1.0)].sum() + 1e-12
    edges = np.linspace(0.02, 1.0, RADIAL_BINS + 1)
    profile = [float(np.log10(power[(rr > a) & (rr <= b)].mean() + 1e-12)) for a, b in itertools.pairwise(edges)]
    base = profile[0]
    profile = [p - base for p in profile]  # shape of the fall-off, not the image's contrast
    high = float(power[(rr > 0.5) & (rr <= 1.0)].sum() / total)
    mid = float(power[(rr > 0.25) & (rr <= 0.5)].sum() / total)
    ring = (rr > 0.3) & (rr <= 1.0)
    logm = np.log(mag[ring] + 1e-9)
    peak = float(np.max(logm) - np.median(logm))  # a periodic pattern (dots, moire) is a sharp peak
    top = float(np.mean(np.sort(logm)[-8:]) - np.median(logm))
    return profile + [high, mid, peak, top]


def _moments(x: np.ndarray) -> list[float]:
    x = x.astype(np.float64).ravel()
    m, s = float(x.mean()), float(x.std())
    skew = float(np.mean(((x - m) / (s + 1e-9)) ** 3))
    return [m / 255.0, s / 255.0, skew]


TEXTURE_NAMES: tuple[str, ...] = (
    tuple(f"lbp_{ch}_{i}" for ch in ("y", "cr", "cb", "h", "s", "v") for i in range(59))
    + tuple(f"spec_r{i}" for i in range(RADIAL_BINS))
    + ("spec_high", "spec_mid", "spec_peak", "spec_top8")
    + tuple(f"mom_{ch}_{m}" for ch in ("y", "cr", "cb", "h", "s", "v") for m in ("mean", "std", "skew"))
    + ("specular", "log_sharpness")
)


def texture_features(image: Image, det: Detection, region: np.ndarray | None = None) -> np.ndarray:
    """The face-texture vector (order: ``TEXTURE_NAMES``); ``region``: :func:`face_region` of
    the face when the caller has it already."""
    rgb = face_region(image, det) if region is None else region
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    chans = [ycc[..., 0], ycc[..., 1], ycc[..., 2], hsv[..., 0], hsv[..., 1], hsv[..., 2]]
    out: list[float] = []
    for ch in chans:
        out.extend(lbp_histogram(ch).tolist())
    out.extend(_spectrum_features(ycc[..., 0]))
    for ch in chans:
        out.extend(_moments(ch))
    v, s = hsv[..., 2].astype(np.float64), hsv[..., 1].astype(np.float64)
    out.append(float(np.mean((v > 0.92 * 255) & (s < 0.25 * 255))))
    out.append(math.log10(float(cv2.Laplacian(ycc[..., 0], cv2.CV_64F).var()) + 1.0))
    return np.asarray(out, np.float64)


CONTEXT_NAMES: tuple[str, ...] = ("frame_top", "frame_bottom", "frame_left", "frame_right", "frame_sides", "frame_total")


def context_features(image: Image, det: Detection, size: int = 192) -> np.ndarray:
    """The context vector (order: ``CONTEXT_NAMES``): long straight edges framing the face.
    Lengths are in face widths (capped at 3 per side), so scale does not matter."""
    region = face_region(image, det, size=size, scale=CONTEXT_SCALE)
    gray = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY)
    face_px = size / CONTEXT_SCALE  # the face box's larger side, in region pixels
    c0 = size / 2.0
    fh = face_px / 2.0
    edges = cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), 50, 150)
    segs = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=30, minLineLength=int(0.5 * face_px), maxLineGap=4)
    sides = {"top": 0.0, "bottom": 0.0, "left": 0.0, "right": 0.0}
    total = 0.0
    if segs is not None:
        for x1, y1, x2, y2 in segs.reshape(-1, 4).astype(np.float64):
            length = math.hypot(x2 - x1, y2 - y1) / face_px
            mx, my = (x1 + x2) / 2 - c0, (y1 + y2) / 2 - c0
            if max(abs(mx), abs(my)) < 0.55 * face_px:  # inside the face: features, hair, glasses
                continue
            angle = abs(math.degrees(math.atan2(y2 - y1, x2 - x1))) % 180
            total += length
            if (angle < 30 or angle > 150) and abs(mx) < fh * 1.5:
                side = "top" if my < 0 else "bottom"
            elif 60 < angle < 120 and abs(my) < fh * 1.5:
                side = "left" if mx < 0 else "right"
            else:
                continue
            sides[side] = max(sides[side], min(length, 3.0))
    framed = sum(1 for v in sides.values() if v > 0)
    return np.asarray([sides["top"], sides["bottom"], sides["left"], sides["right"], float(framed), min(total, 20.0)], np.float64)


CAPTURE_NAMES: tuple[str, ...] = ("log_picture_pixels", "log_face_pixels", "face_share", "jpeg_blockiness", "log_face_sharpness")


def capture_features(image: Image, det: Detection, region: np.ndarray | None = None) -> np.ndarray:
    """How the face was captured, not what it shows (order: ``CAPTURE_NAMES``): the picture's
    size, the face's size in pixels and as a share of the picture, the strength of an 8x8 JPEG
    block grid on the face (1 = none; compressed pictures are higher) and the face's sharpness.
    A PAD model can only judge captures like those it was trained on; these say how far an
    input lies from them (:meth:`faceprint.liveness.pad.PadModel.assess`).  ``region``: as for
    :func:`texture_features`."""
    x, y, w, h = det.box
    side = max(w, h)
    x0, y0 = max(int(x), 0), max(int(y), 0)
    x1, y1 = min(int(x + w), image.width), min(int(y + h), image.height)
    gray = cv2.cvtColor(image.pixels[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float64) if x1 - x0 > 17 and y1 - y0 > 17 else None
    block = 1.0
    if gray is not None:
        dx = np.abs(np.diff(gray, axis=1)).mean(axis=0)  # mean step between column j and j+1
        dy = np.abs(np.diff(gray, axis=0)).mean(axis=1)
        cols = (np.arange(dx.size) + x0) % 8 == 7  # steps across the picture's 8-pixel grid
        rows = (np.arange(dy.size) + y0) % 8 == 7
        on = np.concatenate([dx[cols], dy[rows]]).mean()
        off = np.concatenate([dx[~cols], dy[~rows]]).mean()
        block = float(on / max(off, 1e-6))
    gray_face = cv2.cvtColor(face_region(image, det) if region is None else region, cv2.COLOR_RGB2GRAY)
    sharp = math.log10(float(cv2.Laplacian(gray_face, cv2.CV_64F).var()) + 1.0)
    return np.asarray(
        [math.log10(image.width * image.height), math.log10(max(side, 1.0)), side / max(min(image.width, image.height), 1), block, sharp], np.float64
    )
