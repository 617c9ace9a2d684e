"""The caps on a clip (:class:`VideoLimits`), apart from the readers that apply them, so that the
clip reader (:mod:`.motion`), the challenge and the video verdict (:mod:`.video`) all import
it without importing each other."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from faceprint.settings import Settings

__all__ = ["VideoLimits"]


@dataclass(frozen=True)
class VideoLimits:
    """Caps on a clip, checked before any frame is decoded: the file's size, the frame size
    its video stream declares (width x height; ffmpeg also refuses a frame over it should the
    stream change size later) and its declared duration (frames past it are not read).
    ``threads``: decoder threads (each holds frames of its own)."""

    max_pixels: int = Settings.video_max_pixels
    max_seconds: float = Settings.video_max_seconds
    max_bytes: int = Settings.video_max_bytes
    threads: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> VideoLimits:
        return cls(max_pixels=settings.video_max_pixels, max_seconds=settings.video_max_seconds, max_bytes=settings.video_max_bytes)

    def replace(self, **changes: Any) -> VideoLimits:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
