"""Moved to :mod:`faceprint.metrics.verification` (a leaf package the runtime and the detectors
import without the evaluation package); this module keeps the old import path working."""

from faceprint.metrics.verification import *  # noqa: F403
from faceprint.metrics.verification import __all__  # noqa: F401
