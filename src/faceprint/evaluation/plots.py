"""ROC, DET and score-histogram figures as image files.

Uses ``matplotlib.figure.Figure`` with the Agg canvas directly: no pyplot, no
global backend switch, safe in servers and threads.  The file format follows
the path's suffix (.png, .pdf, .svg).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from faceprint.errors import InputError
from faceprint.metrics.verification import _scores

__all__ = ["plot_det", "plot_distributions", "plot_erc", "plot_group_rates", "plot_lines", "plot_roc", "plot_score_histogram"]

Curves = Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]]

_MAX_POINTS = 5000  # curves with more points are thinned for drawing


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=(6.4, 4.8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    return p


def _curves(curves: Curves) -> list[tuple[str, np.ndarray, np.ndarray]]:
    if not curves:
        raise InputError("no curves to plot")
    out = []
    for name, pair in curves.items():
        try:
            x, y = pair
        except (TypeError, ValueError):
            raise InputError(f"curve {name!r} must be a pair of arrays (x, y)") from None
        x = np.asarray(x, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        if x.size == 0 or x.size != y.size:
            raise InputError(f"curve {name!r}: x and y must be non-empty and of equal length, got {x.size}, {y.size}")
        out.append((str(name), x, y))
    return out


def _key(v: np.ndarray, log: bool) -> np.ndarray:
    if log:
        return np.floor(np.log10(np.maximum(v, 1e-300)) * 200.0)
    return np.floor(v * 1000.0)


def _thin(x: np.ndarray, y: np.ndarray, *, ylog: bool) -> tuple[np.ndarray, np.ndarray]:
    """Drop points that would land on the same pixel (keeps each run's ends)."""
    if x.size <= _MAX_POINTS:
        return x, y
    kx, ky = _key(x, True), _key(y, ylog)
    change = (kx[1:] != kx[:-1]) | (ky[1:] != ky[:-1])
    keep = np.zeros(x.size, dtype=bool)
    keep[0] = keep[-1] = True
    keep[1:] |= change
    keep[:-1] |= change
    return x[keep], y[keep]


def _decade_below(v: float) -> float:
    return 10.0 ** math.floor(math.log10(v))


def _fmr_axis_min(data: list[tuple[str, np.ndarray, np.ndarray]], fmr_min: float | None) -> float:
    """Left end of a log FMR axis: ``fmr_min`` if given, else the decade of the smallest
    positive FMR in the curves (what the impostor sample can state)."""
    if fmr_min is not None:
        return fmr_min
    positive = [float(x[x > 0].min()) for _, x, _ in data if np.any(x > 0)]
    return min([_decade_below(v) for v in positive] or [1e-6])


def plot_roc(
    curves: Curves,
    path: str | os.PathLike[str],
    *,
    title: str = "ROC",
    fmr_min: float | None = None,
    mark_fmr: float | None = 1e-3,
    xlabel: str = "False match rate (FMR)",
    ylabel: str = "True accept rate (TAR = 1 - FNMR)",
) -> Path:
    """ROC curves, ``name -> (fmr, tar)``: log FMR on x, TAR on y.

    The x axis starts at ``fmr_min``, by default the decade of the smallest
    positive FMR (what the impostor sample can state); the y axis starts just
    below the lowest TAR shown.  A dotted line marks FMR = ``mark_fmr``.
    """
    data = _curves(curves)
    fig, ax = _figure()
    lo = _fmr_axis_min(data, fmr_min)
    y_lo = 1.0
    for name, x, y in data:
        keep = x > 0
        xs, ys = _thin(x[keep], y[keep], ylog=False)
        ax.plot(xs, ys, label=name, linewidth=1.5)
        if len(ys):
            y_lo = min(y_lo, float(np.min(ys)))
    # zoom in on accurate models (a curve hugging TAR=1 tells nothing at full scale)
    y_lo = max(0.0, np.floor((y_lo - 0.01) * 20) / 20)
    if mark_fmr is not None:
        ax.axvline(mark_fmr, linestyle=":", color="0.3", linewidth=1.2, label=f"FMR = {mark_fmr:g}")
    ax.set_xscale("log")
    ax.set_xlim(lo, 1.0)
    ax.set_ylim(y_lo, 1.0 + (1.0 - y_lo) * 0.005)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.5)
    ax.grid(True, which="minor", alpha=0.15)
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_det(
    curves: Curves,
    path: str | os.PathLike[str],
    *,
    title: str = "DET",
    fmr_min: float | None = None,
    xlabel: str = "False match rate (FMR)",
    ylabel: str = "False non-match rate (FNMR)",
) -> Path:
    """DET curves, ``name -> (fmr, fnmr)``, both axes logarithmic (zeros are not drawn)."""
    data = _curves(curves)
    fig, ax = _figure()
    pos_y = [float(y[y > 0].min()) for _, _, y in data if np.any(y > 0)]
    lo_x = _fmr_axis_min(data, fmr_min)
    lo_y = min([1e-3] + [_decade_below(v) for v in pos_y])
    for name, x, y in data:
        keep = (x > 0) & (y > 0)
        xs, ys = _thin(x[keep], y[keep], ylog=True)
        ax.plot(xs, ys, label=name, linewidth=1.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo_x, 1.0)
    ax.set_ylim(lo_y, 1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.5)
    ax.grid(True, which="minor", alpha=0.15)
    ax.legend(loc="upper right")
    return _save(fig, path)


def plot_score_histogram(
    genuine: npt.ArrayLike,
    impostor: npt.ArrayLike,
    path: str | os.PathLike[str],
    *,
    thresholds: Mapping[str, float] | None = None,
    title: str = "Score distributions",
    bins: int = 100,
    log_y: bool = False,
    names: tuple[str, str] = ("genuine", "impostor"),
    xlabel: str = "Similarity score",
) -> Path:
    """Density histograms of genuine and impostor scores on shared bins,
    with a vertical line per named threshold (``names``: the two classes' legend names)."""
    gen = _scores(genuine, "genuine")
    imp = _scores(impostor, "impostor")
    if bins < 1:
        raise InputError(f"bins must be at least 1, got {bins}")
    lo = float(min(gen.min(), imp.min()))
    hi = float(max(gen.max(), imp.max()))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    fig, ax = _figure()
    for what, s, color in ((names[1], imp, "tab:red"), (names[0], gen, "tab:blue")):
        h, _ = np.histogram(s, bins=edges, density=True)
        ax.stairs(h, edges, fill=True, alpha=0.35, color=color, label=f"{what} (n={s.size:,})")
        ax.stairs(h, edges, color=color, linewidth=1.0)
    styles = ["--", "-.", ":", (0, (5, 1, 1, 1))]
    colors = ["tab:green", "black", "tab:purple", "tab:orange", "tab:brown", "tab:olive"]
    for i, (name, t) in enumerate((thresholds or {}).items()):
        ax.axvline(float(t), color=colors[i % len(colors)], linestyle=styles[i % len(styles)], linewidth=1.3, label=f"{name}: {float(t):.4g}")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Density")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    return _save(fig, path)


def plot_erc(
    fractions: npt.ArrayLike,
    curves: Mapping[str, npt.ArrayLike],
    path: str | os.PathLike[str],
    *,
    title: str = "Error versus reject",
    highlight: str | None = None,
    baseline: str | None = None,
    ylabel: str = "FNMR (%)",
) -> Path:
    """Error-versus-reject curves, ``name -> FNMR`` at each rejected fraction (x, in %).
    ``highlight`` is drawn bold, ``baseline`` (e.g. random rejection) dashed."""
    x = 100.0 * np.asarray(fractions, np.float64)
    if not curves:
        raise InputError("nothing to plot: no curves given")
    fig, ax = _figure()
    for name, y in curves.items():
        y = np.asarray(y, np.float64)
        if y.shape != x.shape:
            raise InputError(f"curve {name!r} has {y.size} points for {x.size} fractions")
        style: dict[str, object] = {"linewidth": 1.0, "alpha": 0.8}
        if name == highlight:
            style = {"linewidth": 2.6, "color": "black"}
        elif name == baseline:
            style = {"linewidth": 1.6, "linestyle": "--", "color": "0.4"}
        ax.plot(x, 100.0 * y, marker="o", markersize=2.5, label=name, **style)
    ax.set_xlabel("Lowest-quality comparisons rejected (%)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.grid(True, alpha=0.4)
    ax.legend(fontsize="small", ncol=2)
    return _save(fig, path)


def plot_lines(
    curves: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]],
    path: str | os.PathLike[str],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    xlog: bool = False,
    ylog: bool = False,
    marker: str | None = None,
) -> Path:
    """Plain line curves ``name -> (x, y)`` (CMC, FNIR vs FPIR, ...)."""
    if not curves:
        raise InputError("nothing to plot: no curves given")
    fig, ax = _figure()
    plotted = 0
    for name, (x, y) in curves.items():
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        keep = np.isfinite(x) & np.isfinite(y) & ((x > 0) if xlog else True) & ((y > 0) if ylog else True)
        plotted += int(keep.sum())
        ax.plot(x[keep], y[keep], label=name, linewidth=1.5, marker=marker, markersize=3)
    if plotted:  # a log axis needs a positive value (a tiny evaluation may have none: an empty, linear plot then)
        if xlog:
            ax.set_xscale("log")
        if ylog:
            ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no point to plot (too few searches)", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.5)
    ax.grid(True, which="minor", alpha=0.15)
    ax.legend(loc="best")
    return _save(fig, path)


def plot_group_rates(
    rates: Mapping[str, Mapping[str, tuple[float | None, list[float] | None]]],
    path: str | os.PathLike[str],
    *,
    title: str,
    ylabel: str = "rate",
) -> Path:
    """Grouped bars with 95 % intervals: ``metric -> group -> (value, [lo, hi])``."""
    metrics_ = list(rates)
    groups = sorted({g for m in rates.values() for g in m})
    fig, ax = _figure()
    width = 0.8 / max(1, len(groups))
    for k, g in enumerate(groups):
        vals = [rates[m].get(g, (None, None))[0] for m in metrics_]
        cis = [rates[m].get(g, (None, None))[1] for m in metrics_]
        xs = np.arange(len(metrics_)) + (k - (len(groups) - 1) / 2) * width
        v = np.array([np.nan if x is None else x for x in vals])
        lo = np.array([0 if (c is None or x is None) else max(0.0, x - c[0]) for x, c in zip(vals, cis)])
        hi = np.array([0 if (c is None or x is None) else max(0.0, c[1] - x) for x, c in zip(vals, cis)])
        ax.bar(xs, v, width, label=g, yerr=[lo, hi], capsize=4)
    ax.set_xticks(np.arange(len(metrics_)), metrics_)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.4)
    ax.legend(loc="best")
    return _save(fig, path)


def plot_distributions(
    samples: Mapping[str, npt.ArrayLike],
    path: str | os.PathLike[str],
    *,
    title: str,
    xlabel: str,
    bins: int = 80,
    lines: Mapping[str, float] | None = None,
    log_y: bool = False,
) -> Path:
    """Density histograms of several samples on shared bins, with optional vertical lines."""
    data = {k: np.asarray(v, np.float64) for k, v in samples.items()}
    data = {k: v[np.isfinite(v)] for k, v in data.items() if np.isfinite(v).any()}
    if not data:
        raise InputError("nothing to plot: every sample is empty")
    lo = min(float(v.min()) for v in data.values())
    hi = max(float(v.max()) for v in data.values())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    fig, ax = _figure()
    for name, v in data.items():
        h, _ = np.histogram(v, bins=edges, density=True)
        ax.stairs(h, edges, fill=True, alpha=0.3, label=f"{name} (n={v.size:,})")
    for name, t in (lines or {}).items():
        ax.axvline(float(t), color="black", linestyle="--", linewidth=1.2, label=f"{name}: {float(t):.3g}")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Density")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return _save(fig, path)
