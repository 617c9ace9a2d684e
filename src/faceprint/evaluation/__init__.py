"""Evaluation reports over :mod:`faceprint.metrics` (re-exported here), and plots.

The plot functions import Matplotlib, so they load on first use.
"""

from __future__ import annotations

from typing import Any

from faceprint.metrics.verification import *  # noqa: F403 (the metrics, under their old home too)
from faceprint.metrics.verification import __all__ as _METRICS

_PLOTS = ("plot_det", "plot_roc", "plot_score_histogram")

__all__ = [*_METRICS, *_PLOTS]


def __getattr__(name: str) -> Any:
    if name in _PLOTS:
        from faceprint.evaluation import plots

        return getattr(plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
