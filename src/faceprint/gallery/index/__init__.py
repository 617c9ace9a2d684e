"""Vector indexes for 1:N search (see :mod:`faceprint.gallery.index.base`)."""

from faceprint.gallery.index.base import *  # noqa: F403
from faceprint.gallery.index.base import __all__, _to_storage  # noqa: F401
