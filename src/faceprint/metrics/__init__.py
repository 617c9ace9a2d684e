"""Metrics at the ground floor (NumPy only; nothing here imports another faceprint package but
``errors``): verification curves and rates and the runtime :class:`CalibrationTable`
(:mod:`.verification`), ISO/IEC 30107-3 PAD metrics (:mod:`.pad`).  Detectors, the engine,
clustering and the evaluation reports import from here; it imports none of them."""

from faceprint.metrics.pad import APCER_TARGETS, BONA_FIDE, is_bona_fide, iso_metrics, threshold_at_apcer
from faceprint.metrics.verification import *  # noqa: F403
from faceprint.metrics.verification import __all__ as _verification

__all__ = [*_verification, "APCER_TARGETS", "BONA_FIDE", "is_bona_fide", "iso_metrics", "threshold_at_apcer"]
