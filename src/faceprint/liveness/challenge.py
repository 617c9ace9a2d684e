"""Challenge-response liveness: the person was asked to turn the head ("turn your head left",
then "right" ...); does the measured head pose follow the requests, in order and in time?

The pose of each sampled frame is the yaw / pitch that :func:`faceprint.quality.components.head_pose`
reads from the 5 landmarks.  The neutral pose is the median of the first ``BASELINE_FRAMES``
frames with a face.  Request *k* is met at the first frame, after request *k-1* was met,
where the pose has moved ``min_angle`` degrees or more from neutral in the asked direction
(left / right: the person's own, read from yaw; up / down: pitch); it must be met within
``window_s`` seconds of the previous one (of the clip's start, for the first).  A repeat of the
same direction must first come back to within half the angle of neutral.

What it adds: a still photo cannot turn, and a video replayed from elsewhere follows an
unpredictable sequence only by chance -- provided the sequence is drawn at random when the
capture starts and the clip is judged against that sequence (the check here only compares
a clip with the sequence it is given).  What it does not: a photo tilted about its vertical
axis reads as a head turn to the landmarks (measured: a tilted LFW photo "turned left" 16
degrees), so a met challenge alone is not liveness -- ``faceprint liveness --challenge``
also requires the motion check (:mod:`faceprint.liveness.motion`), which sees that one plane
explains the motion; and a live attacker wearing a mask turns as asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from faceprint.errors import InputError
from faceprint.liveness.limits import VideoLimits
from faceprint.liveness.motion import timed_frames
from faceprint.settings import Settings

__all__ = ["DIRECTIONS", "ChallengeResult", "challenge_response", "parse_challenge"]

DIRECTIONS = ("left", "right", "up", "down")
BASELINE_FRAMES = 3
# yaw > 0: the face turns towards the viewer's right, i.e. the person's own left (the camera is not a mirror)
_AXIS = {"left": (0, 1.0), "right": (0, -1.0), "up": (1, 1.0), "down": (1, -1.0)}


def parse_challenge(text: str | Sequence[str]) -> list[str]:
    """'left,right' -> ['left', 'right']; unknown directions are refused by name."""
    parts = [p.strip().lower() for p in (text.split(",") if isinstance(text, str) else text) if p.strip()]
    bad = [p for p in parts if p not in DIRECTIONS]
    if bad or not parts:
        raise InputError(f"challenge directions must be among {', '.join(DIRECTIONS)}; got {', '.join(bad) or 'none'}")
    return parts


@dataclass(frozen=True)
class ChallengeResult:
    passed: bool
    requests: list[str]
    met_at: list[float | None]  # seconds into the clip when each request was met
    peaks: list[float]  # largest movement in each request's direction seen in its window (degrees)
    min_angle: float
    window_s: float
    frames_with_face: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "requests": self.requests,
            "met_at": [None if t is None else round(t, 2) for t in self.met_at],
            "peaks": [round(p, 1) for p in self.peaks],
            "min_angle": self.min_angle,
            "window_s": self.window_s,
            "frames_with_face": self.frames_with_face,
            "reason": self.reason,
        }


def challenge_response(
    engine: Any,
    source: str | Path | IO[bytes] | Iterable[tuple[float, np.ndarray]],
    requests: Sequence[str],
    *,
    min_angle: float = 15.0,
    window_s: float = 4.0,
    step: int = 2,
    limits: VideoLimits | None = None,
) -> ChallengeResult:
    """Judge a clip (a video path, or (time, RGB frame) pairs) against the requested head turns.
    A clip is read within ``limits`` (default: the engine's settings, see :class:`VideoLimits`)."""
    from faceprint.quality.components import head_pose
    from faceprint.types import Image

    reqs = parse_challenge(list(requests))
    if isinstance(source, (str, Path)) or hasattr(source, "read"):
        settings = getattr(engine, "settings", None)
        limits = limits or (VideoLimits.from_settings(settings) if isinstance(settings, Settings) else VideoLimits())
        frames: Iterable[tuple[float, np.ndarray]] = timed_frames(source, step=step, max_frames=300, limits=limits)
    else:
        frames = source
    poses: list[tuple[float, float, float]] = []
    for t, px in frames:
        img = Image(np.ascontiguousarray(px))
        dets = engine.detect(img)
        if dets:
            yaw, pitch, _ = head_pose(max(dets, key=lambda d: d.area), img.size)
            poses.append((t, yaw, pitch))
    if len(poses) <= BASELINE_FRAMES:
        return ChallengeResult(False, reqs, [None] * len(reqs), [0.0] * len(reqs), min_angle, window_s, len(poses), "too few frames with a face to judge")
    arr = np.array(poses)
    neutral = np.median(arr[:BASELINE_FRAMES, 1:], axis=0)
    rel = arr[:, 1:] - neutral
    times = arr[:, 0]
    met: list[float | None] = []
    peaks: list[float] = []
    i = 0
    start = float(times[0])
    prev: str | None = None
    reason = "the head turned as asked, in order and in time"
    for k, r in enumerate(reqs):
        axis, sign = _AXIS[r]
        if prev == r:  # the same turn again: first come back towards neutral
            while i < len(rel) and abs(rel[i, axis]) > min_angle / 2:
                i += 1
            start = float(times[i]) if i < len(times) else start
        window = (times >= start) & (times <= start + window_s) & (np.arange(len(times)) >= i)
        moved = sign * rel[:, axis]
        peaks.append(float(moved[window].max()) if window.any() else 0.0)
        hit = np.flatnonzero(window & (moved >= min_angle))
        if hit.size == 0:
            met.extend([None] * (len(reqs) - k))
            peaks.extend([0.0] * (len(reqs) - k - 1))
            reason = (
                f"request {k + 1} ('{r}') was not met within {window_s:g} s: the head moved at most {peaks[-1]:.1f} degrees that way ({min_angle:g} needed)"
            )
            return ChallengeResult(False, reqs, met, peaks, min_angle, window_s, len(poses), reason)
        i = int(hit[0])
        start = float(times[i])
        met.append(start)
        prev = r
    return ChallengeResult(True, reqs, met, peaks, min_angle, window_s, len(poses), reason)
