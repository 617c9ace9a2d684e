"""Liveness from motion: does the face in a clip move like a 3-D head or like a flat picture?

A photo or a screen held in front of the camera is a plane: however it is moved, tilted or
turned, the image motion of every point on it between two frames is explained by one
homography.  A real head is not a plane -- the nose moves against the cheeks when the head
turns, the mouth and eyes move on their own -- so one homography leaves a residual.

Per pair of sampled frames: corner points inside the face box are tracked with pyramidal
Lucas-Kanade and one homography is fitted with RANSAC; then the previous frame is warped by
that homography and the points are tracked again (LK windows model translation only, and
would read a strong perspective change of a tilted photo as residual); the median
reprojection error of a second homography fit, divided by the face width, is the pair's
*planar residual*.  Pairs where
the face hardly moved tell nothing (a still head and a still photo look alike) and are left
out; a face that jumps (a cut) starts a new segment.  The clip's ``score`` is the 90th
percentile of the residuals in percent of the face width; it is live at ``threshold`` and
above.  With fewer than ``min_pairs`` informative pairs the answer is ``live=None``.

Measured on the shared clips (``tests/test_liveness_motion.py``): the two talking-head clips
and the Hamilton clip score 0.85, 1.76 and 1.03; flat videos made from seven stills (LFW,
Hamilton and deepface photos up to 1868 x 1382; moved, rotated, scaled, perspective-warped,
blurred, noisy) score 0.016-0.054.  Not measured: a screen replaying a video of a moving head
(that is 3-D motion shown on a plane, and a plane's homography only explains the screen's own
motion, not the content's) -- the single-image PAD detectors are for that.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from faceprint.errors import ImageTooLargeError, InputError
from faceprint.liveness.limits import VideoLimits

__all__ = ["MotionLiveness", "motion_liveness", "timed_frames", "video_frames"]

THRESHOLD = 0.2  # % of the face width: about the geometric middle of the flat (<= 0.054) and live (>= 0.85) clips measured
MIN_MOTION = 0.002  # median point displacement / face width under which a pair tells nothing
MAX_SIDE = 640


@dataclass(frozen=True)
class MotionLiveness:
    live: bool | None  # None: not enough head motion (or face) to judge
    score: float | None  # 90th percentile planar residual, % of the face width; higher = more likely live
    threshold: float
    informative_pairs: int
    frames: int
    frames_with_face: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "live": self.live,
            "score": None if self.score is None else round(self.score, 4),
            "threshold": self.threshold,
            "informative_pairs": self.informative_pairs,
            "frames": self.frames,
            "frames_with_face": self.frames_with_face,
            "reason": self.reason,
        }


def timed_frames(
    path: str | Path | IO[bytes], *, step: int = 2, max_frames: int = 90, limits: VideoLimits | None = None, interval: float | None = None
) -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds, RGB uint8 frame) of every ``step``-th frame of a video (a path, or a
    binary file object read from its start) -- or, with ``interval``, of the first frame at or
    after every ``interval`` seconds -- at most ``max_frames``.

    The clip is checked against ``limits`` (default :class:`VideoLimits`: the settings'
    defaults) before any frame is decoded: its size in bytes, the frame size (width x
    height) and the duration its video stream declares; over one, :class:`ImageTooLargeError`.
    ffmpeg is told the same frame cap (``max_pixels``: a stream that grows later is refused
    frame by frame) and decodes on ``limits.threads`` threads."""
    import av

    limits = limits or VideoLimits()
    name = clip_name(path)
    size = _clip_bytes(path)
    if size is not None and size > limits.max_bytes:
        raise ImageTooLargeError(f"the clip is {size:,} bytes, over the limit of {limits.max_bytes:,} bytes", source=name)
    if hasattr(path, "seek"):
        path.seek(0)  # type: ignore[union-attr]
    # for the decoders ffmpeg opens while probing the streams: decode no frame (the size comes
    # from the headers), and refuse one over the cap should they try
    options = {"max_pixels": str(limits.max_pixels), "threads": str(limits.threads), "skip_frame": "all"}
    try:
        container = av.open(path if hasattr(path, "read") else str(path), options=options)
    except Exception as exc:  # PyAV raises its own error types
        raise InputError(f"cannot open the video: {exc}", source=name) from None
    try:
        if not container.streams.video:
            raise InputError("the file has no video stream", source=name)
        stream = container.streams.video[0]
        _check_stream(stream, container, limits, name)
        stream.codec_context.thread_count = limits.threads
        stream.codec_context.options = {"max_pixels": str(limits.max_pixels)}
        frames = container.decode(stream)
        n = i = 0
        next_t = 0.0
        while n < max_frames:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except Exception as exc:  # a corrupt or truncated stream: PyAV's own error types
                if n == 0:
                    raise InputError(f"cannot decode the video: {exc}", source=name) from None
                break  # keep the frames decoded before the damage
            t = float(frame.time or 0.0)
            if frame.width * frame.height > limits.max_pixels:
                raise ImageTooLargeError(f"frame at {t:.2f} s is {frame.width}x{frame.height}, over the limit of {limits.max_pixels:,} pixels", source=name)
            if t > limits.max_seconds:
                break  # the stream runs past what its header declared
            if (interval is None and i % step == 0) or (interval is not None and t + 1e-6 >= next_t):
                yield t, frame.to_ndarray(format="rgb24")
                n += 1
                next_t = t + (interval or 0.0)
            i += 1
    finally:
        container.close()


def clip_name(path: str | Path | IO[bytes]) -> str:
    """What messages call a clip: its path, a file object's name, or ``<stream>``."""
    if hasattr(path, "read"):
        name = getattr(path, "name", None)
        return name if isinstance(name, str) and name else "<stream>"
    return str(path)


def _clip_bytes(path: str | Path | IO[bytes]) -> int | None:
    """Size of the clip in bytes (a file object: from its start to its end), or None if unknown."""
    if hasattr(path, "seek"):
        try:
            end = path.seek(0, 2)  # type: ignore[union-attr]
            path.seek(0)  # type: ignore[union-attr]
            return int(end)
        except (OSError, ValueError, AttributeError):
            return None
    try:
        return os.stat(path).st_size
    except (OSError, ValueError, TypeError):
        return None  # av.open says what is wrong with it


def _check_stream(stream: Any, container: Any, limits: VideoLimits, name: str) -> None:
    """Refuse a stream whose declared frame size or duration is over ``limits``, before decoding."""
    import av

    if stream.codec_context is None:  # PyAV has no decoder for it (or the header names none)
        raise InputError("the video stream's codec is unknown or cannot be decoded", source=name)
    width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(f"video frames are {width}x{height} ({width * height:,} pixels), over the limit of {limits.max_pixels:,} pixels", source=name)
    seconds = []
    if stream.duration and stream.time_base:
        seconds.append(float(stream.duration * stream.time_base))
    if container.duration:
        seconds.append(container.duration / av.time_base)
    if stream.frames and stream.average_rate:
        seconds.append(stream.frames / float(stream.average_rate))
    if seconds and max(seconds) > limits.max_seconds:
        raise ImageTooLargeError(f"the clip lasts {max(seconds):.1f} s, over the limit of {limits.max_seconds:g} s", source=name)


def video_frames(path: str | Path | IO[bytes], *, step: int = 2, max_frames: int = 90, limits: VideoLimits | None = None) -> Iterator[np.ndarray]:
    """Every ``step``-th frame of a video file as RGB uint8, at most ``max_frames`` (see :func:`timed_frames` for ``limits``)."""
    for _, frame in timed_frames(path, step=step, max_frames=max_frames, limits=limits):
        yield frame


def motion_liveness(engine: Any, frames: Iterable[np.ndarray], *, threshold: float = THRESHOLD, min_pairs: int = 8) -> MotionLiveness:
    """Judge a sequence of RGB frames (see the module docstring)."""
    from faceprint.types import Image

    residuals: list[float] = []
    prev: tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]] | None = None
    n_frames = n_face = 0
    for pixels in frames:
        n_frames += 1
        # one working scale (long side <= 640 px): point tracking and the RANSAC tolerance are in pixels
        side = max(pixels.shape[:2])
        if side > MAX_SIDE:
            f = MAX_SIDE / side
            pixels = cv2.resize(pixels, (round(pixels.shape[1] * f), round(pixels.shape[0] * f)), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
        dets = engine.detect(Image(np.ascontiguousarray(pixels)))
        if not dets:
            prev = None
            continue
        n_face += 1
        d = max(dets, key=lambda x: x.area)
        x, y, w, h = d.box
        if prev is not None:
            pg, pts, (px, py, pw, ph) = prev
            jump = np.hypot((x + w / 2) - (px + pw / 2), (y + h / 2) - (py + ph / 2)) / max(pw, 1.0)
            if jump < 0.5:  # a bigger jump is a cut: a new segment starts here
                nxt, st, _ = cv2.calcOpticalFlowPyrLK(pg, grey, pts, None, winSize=(21, 21), maxLevel=3)
                ok = st.ravel() == 1
                if ok.sum() >= 12:
                    a, b = pts[ok].reshape(-1, 2), nxt[ok].reshape(-1, 2)
                    motion = float(np.median(np.linalg.norm(b - a, axis=1))) / max(pw, 1.0)
                    H, _ = cv2.findHomography(a, b, cv2.RANSAC, 2.0)
                    if H is not None and motion >= MIN_MOTION:
                        # second pass: undo the plane's motion first (warp the previous frame by H), so the
                        # tracker only sees what one plane does not explain -- LK windows model translation
                        # only and would read a strong perspective change as residual
                        warped = cv2.warpPerspective(pg, H, (grey.shape[1], grey.shape[0]))
                        a2 = cv2.perspectiveTransform(a[None].astype(np.float64), H)[0].astype(np.float32)
                        b2, st2, _ = cv2.calcOpticalFlowPyrLK(warped, grey, a2.reshape(-1, 1, 2), None, winSize=(21, 21), maxLevel=2)
                        ok2 = st2.ravel() == 1
                        if ok2.sum() >= 12:
                            c, d2 = a2[ok2], b2.reshape(-1, 2)[ok2]
                            H2, _ = cv2.findHomography(c, d2, cv2.RANSAC, 2.0)
                            if H2 is not None:
                                proj = cv2.perspectiveTransform(c[None].astype(np.float64), H2)[0]
                                residuals.append(float(np.median(np.linalg.norm(proj - d2, axis=1))) / max(pw, 1.0))
        mask = np.zeros_like(grey)
        x0, y0 = max(0, int(x)), max(0, int(y))
        mask[y0 : int(y + h), x0 : int(x + w)] = 255
        pts = cv2.goodFeaturesToTrack(grey, 200, 0.01, 5, mask=mask)
        prev = (grey, pts, (x, y, w, h)) if pts is not None and len(pts) >= 12 else None
    if n_frames == 0:
        raise InputError("no frames to judge")
    if len(residuals) < min_pairs:
        why = "no face found" if n_face == 0 else f"only {len(residuals)} frame pairs with enough face motion to judge ({min_pairs} needed)"
        return MotionLiveness(None, None, threshold, len(residuals), n_frames, n_face, why)
    score = 100.0 * float(np.percentile(residuals, 90))
    live = score >= threshold
    reason = (
        "the face moves like a 3-D head (motion not explained by one plane)" if live else "the face moves like a flat picture (one plane explains its motion)"
    )
    return MotionLiveness(live, score, threshold, len(residuals), n_frames, n_face, reason)
