"""Liveness of a video clip: the motion check, the single-image PAD detectors on a few frames
and, on request, a challenge of head turns -- one answer for every surface."""

from __future__ import annotations

import math
from pathlib import Path
from typing import IO, Any

import numpy as np

from faceprint.errors import InputError
from faceprint.liveness.limits import VideoLimits
from faceprint.media import VIDEO_EXTENSIONS
from faceprint.media import is_video as _video_by_name
from faceprint.settings import Settings

__all__ = ["PAD_FRAMES", "VIDEO_SUFFIXES", "VideoLimits", "is_video", "video_liveness"]

VIDEO_SUFFIXES = VIDEO_EXTENSIONS  # the old name of faceprint.media.VIDEO_EXTENSIONS, kept for its importers
PAD_FRAMES = 8  # frames of a video the single-image PAD detectors score (median)


def is_video(name: str, head: bytes) -> bool:
    """A video by its file name, or by its first bytes (MP4/MOV ``ftyp``, Matroska/WebM, AVI)."""
    if _video_by_name(name):
        return True
    return head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3" or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")


def _shrink(frame: np.ndarray, side: int) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    if max(h, w) <= side:
        return frame
    f = side / max(h, w)
    return cv2.resize(frame, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def video_liveness(
    engine: Any,
    source: str | Path | IO[bytes],
    *,
    step: int = 2,
    max_frames: int = 90,
    challenge: str | None = None,
    turn_angle: float = 15.0,
    within: float = 4.0,
    max_pixels: int | None = None,
    max_seconds: float | None = None,
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """Liveness of a clip (a path or a binary file object): the motion check and the
    single-image PAD detectors on a few frames; live only when both say so (a screen
    replaying a real head moves like one; a still print held steady shows no motion to
    judge).  ``score`` (0-1, higher = more likely live) is the smaller of the two scores, each
    mapped so its threshold sits at 0.5.  With ``challenge`` ('left,right'),
    the head must also turn as asked (:mod:`faceprint.liveness.challenge`).

    ``max_pixels`` (per frame), ``max_seconds`` and ``max_bytes`` default to the engine's
    settings (``video_max_*``); a clip over one is refused (:class:`ImageTooLargeError`)
    before any frame is decoded."""
    from faceprint.liveness.challenge import challenge_response, parse_challenge
    from faceprint.liveness.motion import MAX_SIDE, clip_name, motion_liveness, video_frames
    from faceprint.types import Image

    requests = parse_challenge(challenge) if challenge else None  # refuse a bad request before the slow part
    if requests and (turn_angle <= 0 or within <= 0):
        raise InputError("the challenge's turn angle and time window must be positive")
    settings = getattr(engine, "settings", None)
    limits = (VideoLimits.from_settings(settings) if isinstance(settings, Settings) else VideoLimits()).replace(
        max_pixels=max_pixels, max_seconds=max_seconds, max_bytes=max_bytes
    )
    name = clip_name(source)
    frames = [
        _shrink(f, MAX_SIDE) for f in video_frames(source, step=step, max_frames=max_frames, limits=limits)
    ]  # held at the motion check's scale, not full HD
    motion = motion_liveness(engine, frames)
    idx = np.linspace(0, len(frames) - 1, min(PAD_FRAMES, len(frames))).round().astype(int) if frames else []
    pad_scores, low_reasons = [], []
    for i in sorted(set(int(j) for j in idx)):
        img = Image(np.ascontiguousarray(frames[i]), source=f"{name}#frame{i * step}")
        dets = engine.detector.detect(img)
        if dets:
            one = engine.liveness_of(img, max(dets, key=lambda d: d.area))
            pad_scores.append(one.score)
            if one.confidence == "low":
                low_reasons.append(one.confidence_reasons)
    pad = float(np.median(pad_scores)) if pad_scores else None
    mostly_low = 2 * len(low_reasons) > len(pad_scores)  # most scored frames lie outside the PAD model's training captures
    thr = engine.pad_threshold
    m_score = None if motion.score is None else 1.0 / (1.0 + (motion.threshold / max(motion.score, 1e-9)) ** 4)
    # the frames' median PAD score, mapped (a shift of its logit) so that its threshold sits at 0.5 too
    p_score = None if pad is None else 1.0 / (1.0 + math.exp(-(_logit(pad) - _logit(thr))))
    scores = [s for s in (m_score, p_score) if s is not None]
    score = min(scores) if scores else 0.0
    live = bool(motion.live is True and pad is not None and pad >= thr)
    if motion.live is None:
        reason = f"cannot judge: {motion.reason}"
    elif not motion.live:
        reason = motion.reason
    elif pad is None or pad < thr:
        reason = "the head moves in 3-D, but the frames look recaptured (a screen replay?)"
    else:
        reason = motion.reason
    res: dict[str, Any] = {
        "input": name,
        "kind": "video",
        "live": live,
        "score": round(score, 4),
        "threshold": 0.5,
        "reason": reason,
        "motion": motion.to_dict(),
        "pad": {"median_score": None if pad is None else round(pad, 4), "frames_scored": len(pad_scores), "threshold": thr},
        "confidence": "low" if mostly_low else "high",
        "confidence_reasons": sorted({r for rs in low_reasons for r in rs}) if mostly_low else [],
    }
    if requests:
        ch = challenge_response(engine, source, requests, min_angle=turn_angle, window_s=within, step=step, limits=limits)
        res["challenge"] = ch.to_dict()
        res["live"] = bool(live and ch.passed)
        if not ch.passed and live:
            res["reason"] = ch.reason
    return res
