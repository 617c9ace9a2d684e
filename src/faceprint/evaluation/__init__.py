"""Verification metrics, calibration tables and plots.

The plot functions import Matplotlib, so they load on first use.
"""

from __future__ import annotations

from typing import Any

from faceprint.metrics.verification import (
    DEFAULT_FMR_GRID,
    CalibrationTable,
    auc,
    best_accuracy_threshold,
    build_calibration,
    det_curve,
    eer,
    fmr_at_threshold,
    fnmr_at_threshold,
    kfold_accuracy,
    roc,
    tar_at_far,
    threshold_at_fmr,
)

_PLOTS = ("plot_det", "plot_roc", "plot_score_histogram")

__all__ = [
    "DEFAULT_FMR_GRID",
    "CalibrationTable",
    "auc",
    "best_accuracy_threshold",
    "build_calibration",
    "det_curve",
    "eer",
    "fmr_at_threshold",
    "fnmr_at_threshold",
    "kfold_accuracy",
    "roc",
    "tar_at_far",
    "threshold_at_fmr",
    *_PLOTS,
]


def __getattr__(name: str) -> Any:
    if name in _PLOTS:
        from faceprint.evaluation import plots

        return getattr(plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
