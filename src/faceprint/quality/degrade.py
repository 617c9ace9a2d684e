"""Deterministic image degradations: the bad captures quality assessment must catch.

Used to train the unified quality model (``scripts/train_quality.py``) and to
measure it (``benchmarks/quality.py``); also handy for testing how a deployment
copes with poor cameras.  Each takes RGB uint8 pixels and a strength in [0, 1]
and returns new pixels of the same size; the same (pixels, kind, strength, seed)
always gives the same result.

=========  ==============================================================
blur       Gaussian blur, sigma 0.5 ... 6.5 px
downscale  shrink by 1.5 ... 10x and enlarge back (a small, far face)
noise      Gaussian sensor noise, sigma 5 ... 50 grey levels
jpeg       JPEG quality 60 ... 5
dark       under-exposure: gamma 1.3 ... 4 and gain 0.9 ... 0.25
bright     over-exposure: gain 1.4 ... 3.5, clipped
crop       a band of 15 ... 45 % of the image cut off one side (the face partly out of frame)
=========  ==============================================================
"""

from __future__ import annotations

import cv2
import numpy as np

from faceprint.errors import InputError

__all__ = ["KINDS", "degrade"]

KINDS = ("blur", "downscale", "noise", "jpeg", "dark", "bright", "crop")


def degrade(pixels: np.ndarray, kind: str, strength: float, seed: int = 0) -> np.ndarray:
    """``pixels`` (H, W, 3) RGB uint8 degraded by ``kind`` at ``strength`` (0 mild ... 1 severe)."""
    if kind not in KINDS:
        raise InputError(f"unknown degradation {kind!r}; choose one of {', '.join(KINDS)}")
    if not 0.0 <= strength <= 1.0:
        raise InputError(f"strength must be between 0 and 1, got {strength}")
    img = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = img.shape[:2]
    s = float(strength)
    if kind == "blur":
        return cv2.GaussianBlur(img, (0, 0), 0.5 + 6.0 * s)
    if kind == "downscale":
        f = 1.5 + 8.5 * s
        small = cv2.resize(img, (max(4, round(w / f)), max(4, round(h / f))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if kind == "noise":
        rng = np.random.default_rng(seed)
        return np.clip(img + rng.normal(0.0, 5.0 + 45.0 * s, img.shape), 0, 255).astype(np.uint8)
    if kind == "jpeg":
        ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(round(60 - 55 * s))])
        if not ok:
            raise InputError("JPEG encoding failed")
        return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])
    if kind == "dark":
        gamma, gain = 1.3 + 2.7 * s, 0.9 - 0.65 * s
        lut = np.clip(255.0 * gain * (np.arange(256) / 255.0) ** gamma, 0, 255).astype(np.uint8)
        return cv2.LUT(img, lut)
    if kind == "bright":
        lut = np.clip(np.arange(256) * (1.4 + 2.1 * s), 0, 255).astype(np.uint8)
        return cv2.LUT(img, lut)
    # crop: cut a band off one side (chosen by the seed) and fill it with grey
    frac = 0.15 + 0.30 * s
    out = img.copy()
    side = seed % 4
    if side == 0:
        out[:, : int(w * frac)] = 127
    elif side == 1:
        out[:, w - int(w * frac) :] = 127
    elif side == 2:
        out[: int(h * frac)] = 127
    else:
        out[h - int(h * frac) :] = 127
    return out
