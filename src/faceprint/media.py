"""The media files faceprint reads, told apart by the file name's suffix: one list of image and
one of video suffixes for every folder walk and upload check (the library indexer, liveness,
the CLI's folder commands).

A leaf module: the standard library only, so anything may import it.  A suffix says what a
file claims to be, not what it is: decoding (:mod:`faceprint.imaging`, PyAV for videos) is
what checks the bytes.
"""

from __future__ import annotations

import os
from pathlib import PurePath

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "is_image", "is_media", "is_video", "suffix"]

#: Suffixes (lower case, with the dot) of the image formats :mod:`faceprint.imaging` decodes.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".png",
        ".webp",
        ".bmp",
        ".tif",
        ".tiff",
        ".gif",
        ".pgm",
        ".ppm",
        ".pnm",
        ".heic",
        ".heif",
        ".avif",
    }
)

#: Suffixes (lower case, with the dot) of the video containers read through PyAV (ffmpeg).
VIDEO_EXTENSIONS: frozenset[str] = frozenset({".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg"})


def suffix(path: str | os.PathLike[str]) -> str:
    """The lower-case suffix of ``path``'s file name, with its dot (``""`` when it has none)."""
    return PurePath(os.fspath(path)).suffix.lower()


def is_image(path: str | os.PathLike[str]) -> bool:
    """Whether the file name says image (by its suffix, case-insensitively)."""
    return suffix(path) in IMAGE_EXTENSIONS


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether the file name says video (by its suffix, case-insensitively)."""
    return suffix(path) in VIDEO_EXTENSIONS


def is_media(path: str | os.PathLike[str], *, videos: bool = True) -> bool:
    """An image, or (with ``videos``) a video, by the file name."""
    ext = suffix(path)
    return ext in IMAGE_EXTENSIONS or (videos and ext in VIDEO_EXTENSIONS)
