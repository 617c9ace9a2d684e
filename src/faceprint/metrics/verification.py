"""Verification metrics on similarity scores (higher = more likely the same person).

Vocabulary follows NIST / bob.measure:

* FMR(t):  false match rate, the fraction of impostor scores ``>= t``;
* FNMR(t): false non-match rate, the fraction of genuine scores ``< t``;
* TAR(t):  true accept rate, ``1 - FNMR(t)``.

Everything is vectorised: a function sorts each input at most once and then
answers with ``np.searchsorted``, so tens of millions of impostor scores take
seconds.  float32 input stays float32 (half the memory).  Thresholds come back
as Python floats that are exactly representable in the scores' dtype, so
``scores >= t`` means the same in float32 and float64.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from faceprint.errors import CalibrationError, InputError

__all__ = [
    "DEFAULT_FMR_GRID",
    "CalibrationTable",
    "auc",
    "best_accuracy_threshold",
    "build_calibration",
    "det_curve",
    "eer",
    "error_versus_reject",
    "fmr_at_threshold",
    "fnmr_at_threshold",
    "kfold_accuracy",
    "roc",
    "tar_at_far",
    "threshold_at_fmr",
]

#: FMR operating points of a calibration table: 1, 2, 5 per decade, 1e-1 .. 1e-6.
DEFAULT_FMR_GRID: tuple[float, ...] = (
    1e-1, 5e-2, 2e-2,
    1e-2, 5e-3, 2e-3,
    1e-3, 5e-4, 2e-4,
    1e-4, 5e-5, 2e-5,
    1e-5, 5e-6, 2e-6,
    1e-6,
)  # fmt: skip

_FORMAT = "faceprint.calibration"
_VERSION = 1


# --------------------------------------------------------------------------- helpers


def _scores(x: npt.ArrayLike, what: str) -> np.ndarray:
    """``x`` as a non-empty 1-D float32/float64 array of finite values."""
    a = np.asarray(x)
    if a.ndim != 1:
        raise InputError(f"{what} scores must be a 1-D array, got shape {a.shape}")
    if a.size == 0:
        raise InputError(f"{what} scores are empty")
    if a.dtype.kind not in "iuf":
        raise InputError(f"{what} scores must be real numbers, got dtype {a.dtype}")
    if a.dtype.kind in "iu" or a.dtype.itemsize > 8:
        a = a.astype(np.float64)
    elif a.dtype.itemsize < 4:
        a = a.astype(np.float32)
    if not np.isfinite(a).all():
        bad = int(np.count_nonzero(~np.isfinite(a)))
        raise InputError(f"{what} scores contain {bad} non-finite value(s) (NaN or inf)")
    return a


def _labels(y: npt.ArrayLike, n: int) -> np.ndarray:
    """``y`` as a bool array of length ``n`` (accepts bool or 0/1 numbers)."""
    a = np.asarray(y)
    if a.ndim != 1 or a.size != n:
        raise InputError(f"labels must be a 1-D array of {n} values, got shape {a.shape}")
    if a.dtype == np.bool_:
        return a
    if a.dtype.kind not in "iuf" or not np.isin(a, (0, 1)).all():
        raise InputError("labels must be booleans or 0/1 (1 = same person)")
    return a.astype(bool)


def _rate(value: float, what: str) -> float:
    """A rate in (0, 1] as a Python float."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, got {value!r}") from None
    if not 0.0 < v <= 1.0:  # also rejects NaN
        raise InputError(f"{what} must be in (0, 1], got {value!r}")
    return v


def _threshold(value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"threshold must be a number, got {value!r}") from None
    if math.isnan(v):
        raise InputError("threshold is NaN")
    return v


def _allowed_count(fmr: float, n: int) -> int:
    """Largest k with ``k / n <= fmr``: how many impostors may score at or above t."""
    k = min(int(math.floor(fmr * n)), n)
    while k < n and (k + 1) / n <= fmr:
        k += 1
    while k > 0 and k / n > fmr:
        k -= 1
    return k


def _needed(fmr: float) -> int:
    """Smallest n with ``1 / n <= fmr``."""
    n = max(1, math.ceil(1.0 / fmr))
    while n > 1 and 1.0 / (n - 1) <= fmr:
        n -= 1
    while 1.0 / n > fmr:
        n += 1
    return n


def _too_few(fmr: float, n: int) -> CalibrationError:
    return CalibrationError(f"needs at least {_needed(fmr)} impostor scores to state FMR {fmr:g}, got {n}")


def _in_dtype(t: np.ndarray | float, dtype: np.dtype) -> np.ndarray:
    """Smallest value of ``dtype`` >= t: for x of that dtype, x >= t  <=>  x >= result."""
    if isinstance(t, np.ndarray) and t.dtype == dtype:
        return t
    t64 = np.asarray(t, dtype=np.float64)
    if dtype == np.float64:
        return t64
    with np.errstate(over="ignore"):
        r = t64.astype(dtype)
    low = r < t64
    if np.any(low):
        r = np.where(low, np.nextafter(r, np.asarray(np.inf, dtype=dtype)), r)
    return r


def _count_at_least(sorted_x: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """How many of ``sorted_x`` (ascending) are ``>= t``, for each t."""
    return sorted_x.size - np.searchsorted(sorted_x, _in_dtype(t, sorted_x.dtype), "left")


def _thresholds_for_counts(sorted_imp: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """For each k in [1, m]: the smallest t with at most k impostors ``>= t``.

    That is just above the (k+1)-th highest impostor score (the next value of
    the dtype), or the lowest impostor score when k = m.
    """
    m = sorted_imp.size
    ks = np.asarray(ks, dtype=np.int64)
    out = np.empty(ks.shape, dtype=sorted_imp.dtype)
    full = ks >= m
    out[full] = sorted_imp[0]
    inf = np.asarray(np.inf, dtype=sorted_imp.dtype)
    out[~full] = np.nextafter(sorted_imp[m - ks[~full] - 1], inf)
    return out


def _common(*arrays: np.ndarray) -> list[np.ndarray]:
    dtype = np.result_type(*arrays)
    return [a.astype(dtype, copy=False) for a in arrays]


# --------------------------------------------------------------------------- curves


def roc(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC as ``(fmr, tar, thresholds)``.

    One point per distinct score (genuine or impostor), thresholds descending,
    preceded by the point (0, 0) at threshold +inf.  ``fmr`` and ``tar`` are
    non-decreasing.
    """
    gen, imp = _common(_scores(genuine, "genuine"), _scores(impostor, "impostor"))
    g = np.sort(gen)
    i = np.sort(imp)
    both = np.sort(np.concatenate([g, i]), kind="stable")  # merges the two sorted runs
    distinct = np.empty(both.size, dtype=bool)
    distinct[0] = True
    np.not_equal(both[1:], both[:-1], out=distinct[1:])
    below = np.flatnonzero(distinct)  # scores below each distinct value, both kinds
    thr = both[below]  # ascending
    del both, distinct
    # Binary-search only the smaller sample; the other's count is the remainder.
    if g.size <= i.size:
        g_below = np.searchsorted(g, thr, "left")
        i_below = below - g_below
    else:
        i_below = np.searchsorted(i, thr, "left")
        g_below = below - i_below
    tar = (g.size - g_below[::-1]) / g.size
    fmr = (i.size - i_below[::-1]) / i.size
    thresholds = np.concatenate([[np.inf], thr[::-1].astype(np.float64)])
    return np.concatenate([[0.0], fmr]), np.concatenate([[0.0], tar]), thresholds


def det_curve(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DET as ``(fmr, fnmr, thresholds)``: the points of :func:`roc`, with FNMR = 1 - TAR."""
    fmr, tar, thr = roc(genuine, impostor)
    return fmr, 1.0 - tar, thr


def auc(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> float:
    """Area under the ROC: P(genuine > impostor) + P(genuine == impostor) / 2, exactly.

    Mann-Whitney U by one sort of the impostors and two binary searches per
    genuine score; O((n + m) log m).
    """
    gen, imp = _common(_scores(genuine, "genuine"), _scores(impostor, "impostor"))
    i = np.sort(imp)
    below = int(np.searchsorted(i, gen, "left").sum(dtype=np.int64))
    at_or_below = int(np.searchsorted(i, gen, "right").sum(dtype=np.int64))
    return (below + at_or_below) / (2 * gen.size * i.size)


def eer(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> tuple[float, float]:
    """Equal error rate and its threshold, as ``(eer, threshold)``.

    Walks the ROC points from the strictest threshold down to the first one
    where FMR >= FNMR and interpolates linearly between it and the point
    before; the threshold is interpolated with the same weight (the score
    itself when the crossing is at a point, or next to +inf).
    """
    fmr, tar, thr = roc(genuine, impostor)
    d = fmr - (1.0 - tar)  # -1 at +inf, +1 at the lowest score
    i = int(np.argmax(d >= 0.0))
    alpha = -d[i - 1] / (d[i] - d[i - 1])
    rate = fmr[i - 1] + alpha * (fmr[i] - fmr[i - 1])
    if alpha >= 1.0 or not np.isfinite(thr[i - 1]):
        t = thr[i]
    else:
        t = thr[i - 1] + alpha * (thr[i] - thr[i - 1])
    return float(rate), float(t)


# --------------------------------------------------------------------------- operating points


def threshold_at_fmr(impostor: npt.ArrayLike, fmr: float) -> float:
    """Smallest threshold t with ``fraction(impostor >= t) <= fmr``, exact on the sample.

    With k = floor(fmr * m) this is the next representable value above the
    (k+1)-th highest impostor score, so exactly k impostors (fewer if that
    score is tied) score at or above it.  For fmr = 1 it is the lowest
    impostor score.  O(m) (a partition, no full sort).

    Raises CalibrationError when fmr < 1/m: the sample cannot state it.
    """
    imp = _scores(impostor, "impostor")
    fmr = _rate(fmr, "fmr")
    m = imp.size
    k = _allowed_count(fmr, m)
    if k == 0:
        raise _too_few(fmr, m)
    if k == m:
        return float(imp.min())
    v = np.partition(imp, m - k - 1)[m - k - 1]
    return float(np.nextafter(v, imp.dtype.type(np.inf)))


def fmr_at_threshold(impostor: npt.ArrayLike, t: float) -> float:
    """Fraction of impostor scores ``>= t``."""
    imp = _scores(impostor, "impostor")
    return int(np.count_nonzero(imp >= _in_dtype(_threshold(t), imp.dtype))) / imp.size


def fnmr_at_threshold(genuine: npt.ArrayLike, t: float) -> float:
    """Fraction of genuine scores ``< t``."""
    gen = _scores(genuine, "genuine")
    return int(np.count_nonzero(gen < _in_dtype(_threshold(t), gen.dtype))) / gen.size


def tar_at_far(genuine: npt.ArrayLike, impostor: npt.ArrayLike, far: float) -> tuple[float, float]:
    """``(TAR, threshold)`` at ``threshold_at_fmr(impostor, far)``."""
    t = threshold_at_fmr(impostor, far)
    return 1.0 - fnmr_at_threshold(genuine, t), t


def error_versus_reject(
    genuine: npt.ArrayLike,
    quality: npt.ArrayLike,
    threshold: float,
    fractions: Sequence[float],
    *,
    tiebreak: npt.ArrayLike | None = None,
) -> np.ndarray:
    """Error-versus-reject curve (Grother & Tabassi): FNMR at ``threshold`` among the genuine
    comparisons left after rejecting the lowest-quality ``fraction`` of them, for each fraction.

    ``quality`` is the comparison's quality (usually the lower of its two faces); ties are
    broken by ``tiebreak`` (higher is better), then by position, so a coarse score cannot
    choose its own luck.  Exactly ``round(fraction * n)`` comparisons are rejected."""
    gen = _scores(genuine, "genuine").astype(np.float64)
    q = np.asarray(quality, np.float64)
    if q.shape != gen.shape:
        raise InputError(f"quality must have one value per genuine score: {q.shape} vs {gen.shape}")
    tb = np.zeros_like(q) if tiebreak is None else np.asarray(tiebreak, np.float64)
    order = np.lexsort((np.arange(gen.size), tb, q))  # worst first
    fails = (gen < _threshold(threshold))[order]
    n = gen.size
    out = []
    for f in fractions:
        if not 0.0 <= float(f) < 1.0:
            raise InputError(f"reject fractions must be in [0, 1), got {f}")
        k = int(round(float(f) * n))
        out.append(float(fails[k:].mean()) if k < n else float("nan"))
    return np.asarray(out)


# --------------------------------------------------------------------------- accuracy (LFW-style)


def best_accuracy_threshold(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Threshold maximising the accuracy of ``(scores >= t) == labels``.

    Candidates are the midpoints between adjacent distinct sorted scores, plus
    the lowest score (accept all) and the value just above the highest (reject
    all).  Ties go to the lowest threshold.
    """
    s = _scores(scores, "scores")
    y = _labels(labels, s.size)
    order = np.argsort(s, kind="stable")
    ss, yy = s[order], y[order]
    n = ss.size
    starts = np.flatnonzero(np.concatenate([[True], ss[1:] != ss[:-1]]))
    cut = np.append(starts, n)  # candidate j accepts ss[cut[j]:]
    pos_before = np.concatenate([[0], np.cumsum(yy, dtype=np.int64)])[cut]
    correct = (cut - pos_before) + (pos_before[-1] - pos_before)
    j = int(np.argmax(correct))
    one = ss.dtype.type
    if j == 0:
        return float(ss[0])
    if j == starts.size:
        return float(np.nextafter(ss[-1], one(np.inf)))
    lo, hi = ss[cut[j] - 1], ss[cut[j]]
    mid = lo + (hi - lo) / one(2)
    return float(mid if lo < mid <= hi else hi)


def kfold_accuracy(scores: npt.ArrayLike, labels: npt.ArrayLike, folds: npt.ArrayLike) -> dict[str, Any]:
    """Cross-validated verification accuracy (the LFW protocol).

    For each fold id, the threshold is chosen by :func:`best_accuracy_threshold`
    on the other folds only and applied to this fold.  Returns
    ``{"accuracy_mean", "accuracy_std" (population std), "fold_accuracies",
    "thresholds", "folds"}``, lists in sorted fold-id order.
    """
    s = _scores(scores, "scores")
    y = _labels(labels, s.size)
    f = np.asarray(folds)
    if f.ndim != 1 or f.size != s.size or f.dtype.kind not in "iu":
        raise InputError(f"folds must be a 1-D integer array of {s.size} fold ids, got {f.dtype} {f.shape}")
    ids = np.unique(f)
    if ids.size < 2:
        raise InputError(f"k-fold accuracy needs at least 2 folds, got {ids.size}")
    accuracies: list[float] = []
    thresholds: list[float] = []
    for fid in ids:
        test = f == fid
        t = best_accuracy_threshold(s[~test], y[~test])
        predicted = s[test] >= _in_dtype(t, s.dtype)
        accuracies.append(float(np.mean(predicted == y[test])))
        thresholds.append(t)
    return {
        "accuracy_mean": float(np.mean(accuracies)),
        "accuracy_std": float(np.std(accuracies)),
        "fold_accuracies": accuracies,
        "thresholds": thresholds,
        "folds": [int(v) for v in ids],
    }


# --------------------------------------------------------------------------- calibration table


def _float_tuple(values: Iterable[Any], what: str, *, allow_none: bool = False) -> tuple[float, ...]:
    out = []
    for v in values:
        if v is None and allow_none:
            out.append(math.nan)
        elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
            out.append(float(v))
        else:
            raise CalibrationError(f"{what} must hold numbers, found {v!r}")
    return tuple(out)


@dataclass(frozen=True)
class CalibrationTable:
    """Score thresholds at stated FMRs for one model on one impostor set.

    ``fmr_grid``/``thresholds``/``fnmr`` are exact operating points (FMR
    descending, so thresholds ascending).  ``tail_fmr``/``tail_scores``
    sample the same function, threshold_at_fmr, at ~200 FMR levels k/m
    log-spaced from 1 down to 1/m; lookups between points interpolate
    log(FMR) linearly in score.
    """

    name: str
    model_id: str
    n_impostor: int
    n_genuine: int
    fmr_grid: tuple[float, ...]
    thresholds: tuple[float, ...]
    fnmr: tuple[float, ...]
    tail_scores: tuple[float, ...]
    tail_fmr: tuple[float, ...]
    created: str
    source: str

    def __post_init__(self) -> None:
        for key in ("name", "model_id", "created", "source"):
            if not isinstance(getattr(self, key), str):
                raise CalibrationError(f"{key} must be a string, got {type(getattr(self, key)).__name__}")
        for key, low in (("n_impostor", 1), ("n_genuine", 0)):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise CalibrationError(f"{key} must be an integer >= {low}, got {v!r}")
            object.__setattr__(self, key, int(v))
        for key in ("fmr_grid", "thresholds", "fnmr", "tail_scores", "tail_fmr"):
            v = getattr(self, key)
            if isinstance(v, (str, bytes, Mapping)) or not isinstance(v, (Sequence, np.ndarray)):
                raise CalibrationError(f"{key} must be a list of numbers, got {type(v).__name__}")
            object.__setattr__(self, key, _float_tuple(v, key, allow_none=key == "fnmr"))
        n = len(self.fmr_grid)
        if len(self.thresholds) != n or len(self.fnmr) != n:
            raise CalibrationError(f"fmr_grid, thresholds and fnmr must have the same length, got {n}, {len(self.thresholds)}, {len(self.fnmr)}")
        if len(self.tail_scores) != len(self.tail_fmr) or not self.tail_fmr:
            raise CalibrationError(f"tail_scores and tail_fmr must be non-empty and of the same length, got {len(self.tail_scores)}, {len(self.tail_fmr)}")
        for fmr_key, thr_key in (("fmr_grid", "thresholds"), ("tail_fmr", "tail_scores")):
            f = np.asarray(getattr(self, fmr_key))
            t = np.asarray(getattr(self, thr_key))
            if not np.all((f > 0) & (f <= 1)):
                raise CalibrationError(f"{fmr_key} values must be in (0, 1]")
            if np.any(np.diff(f) >= 0):
                raise CalibrationError(f"{fmr_key} must be strictly decreasing")
            if not np.isfinite(t).all():
                raise CalibrationError(f"{thr_key} must be finite")
            if np.any(np.diff(t) < 0):
                raise CalibrationError(f"{thr_key} must not decrease as {fmr_key} decreases")
            too_small = [v for v in f.tolist() if _allowed_count(v, self.n_impostor) == 0]
            if too_small:
                raise CalibrationError(f"{fmr_key} holds FMR {min(too_small):g}, below 1/n_impostor ({self.n_impostor} impostor scores)")
        fn = np.asarray(self.fnmr)
        if np.any((fn < 0) | (fn > 1)):
            raise CalibrationError("fnmr values must be in [0, 1] (or null)")

    # -- lookups

    @cached_property
    def _knots(self) -> tuple[np.ndarray, np.ndarray]:
        """Grid and tail merged: (log FMR ascending, threshold descending)."""
        f = np.concatenate([self.fmr_grid, self.tail_fmr])
        t = np.concatenate([self.thresholds, self.tail_scores])
        order = np.lexsort((np.arange(f.size), f))  # by FMR; grid first on equal FMR
        f, t = f[order], t[order]
        keep = np.concatenate([[True], f[1:] != f[:-1]])
        return np.log(f[keep]), t[keep]

    @cached_property
    def _inverse_knots(self) -> tuple[np.ndarray, np.ndarray]:
        """(threshold ascending, strictly; log FMR): a tied threshold keeps its lowest FMR."""
        log_f, t = self._knots
        t, log_f = t[::-1], log_f[::-1]
        keep = np.concatenate([t[1:] != t[:-1], [True]])  # last of each run = lowest FMR
        return t[keep], log_f[keep]

    @property
    def min_fmr(self) -> float:
        """Smallest FMR this table can state (1/n_impostor)."""
        return float(min(min(self.tail_fmr), min(self.fmr_grid, default=1.0)))

    def threshold_for(self, fmr: float) -> float:
        """Threshold for an FMR: the grid value if ``fmr`` is on the grid, else
        log-linear interpolation between the grid and tail points.

        Raises CalibrationError outside (0, 1] or below :attr:`min_fmr`.
        """
        try:
            v = float(fmr)
        except (TypeError, ValueError):
            raise CalibrationError(f"fmr must be a number, got {fmr!r}") from None
        if not 0.0 < v <= 1.0:
            raise CalibrationError(f"fmr must be in (0, 1], got {fmr!r}")
        if v < self.min_fmr:
            raise CalibrationError(
                f"FMR {v:g} is below the smallest FMR calibration table {self.name!r} can state, {self.min_fmr:g} (1 in {self.n_impostor} impostor scores)"
            )
        if v in self.fmr_grid:
            return self.thresholds[self.fmr_grid.index(v)]
        log_f, t = self._knots
        return float(np.interp(math.log(v), log_f, t))

    def fmr_for(self, score: float) -> float:
        """FMR of a threshold set at ``score``, interpolated from the tail.

        Clamped at both ends: above the highest impostor score the sample can
        only say "< 1/n_impostor", and 1/n_impostor is returned; below the
        lowest impostor score it is 1.0.
        """
        s = _threshold(score)
        t, log_f = self._inverse_knots
        return float(np.exp(np.interp(s, t, log_f)))

    # -- serialisation

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN FNMR as null)."""
        d: dict[str, Any] = {"format": _FORMAT, "version": _VERSION}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = [None if math.isnan(x) else x for x in v]
            d[f.name] = v
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CalibrationTable:
        """Inverse of :meth:`to_dict`; CalibrationError naming what is wrong."""
        if not isinstance(d, Mapping):
            raise CalibrationError(f"calibration table must be a JSON object, got {type(d).__name__}")
        if d.get("format", _FORMAT) != _FORMAT:
            raise CalibrationError(f"format is {d.get('format')!r}, expected {_FORMAT!r}")
        if d.get("version", _VERSION) != _VERSION:
            raise CalibrationError(f"version {d.get('version')!r} is not supported (expected {_VERSION})")
        names = [f.name for f in fields(cls)]
        missing = [k for k in names if k not in d]
        if missing:
            raise CalibrationError(f"calibration table lacks key(s): {', '.join(missing)}")
        unknown = sorted(set(d) - set(names) - {"format", "version"})
        if unknown:
            raise CalibrationError(f"calibration table has unknown key(s): {', '.join(map(str, unknown))}")
        for k in ("fmr_grid", "thresholds", "fnmr", "tail_scores", "tail_fmr"):
            if not isinstance(d[k], (list, tuple)):
                raise CalibrationError(f"{k} must be a list of numbers, got {type(d[k]).__name__}")
        return cls(**{k: d[k] for k in names})

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write as indented JSON; returns the path."""
        p = Path(path)
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CalibrationTable:
        """Read a table written by :meth:`save`."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise CalibrationError(f"cannot read calibration table: {e.strerror or e}", source=str(p)) from None
        except UnicodeDecodeError:
            raise CalibrationError("calibration table is not UTF-8 text", source=str(p)) from None
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise CalibrationError(f"calibration table is not valid JSON: {e}", source=str(p)) from None
        try:
            return cls.from_dict(d)
        except CalibrationError as e:
            raise CalibrationError(str(e), source=str(p)) from None


def build_calibration(
    genuine: npt.ArrayLike | None,
    impostor: npt.ArrayLike,
    *,
    name: str,
    model_id: str,
    source: str,
    fmr_grid: Sequence[float] | None = None,
    tail_points: int = 200,
) -> CalibrationTable:
    """Calibrate thresholds on impostor scores (and FNMR on genuine scores, if any).

    The default grid keeps only the FMRs the sample can state (>= 1/m); an
    explicit grid with an FMR below 1/m raises CalibrationError.  One sort of
    the impostors; genuine may be None or empty (FNMR is then NaN).
    """
    imp = np.sort(_scores(impostor, "impostor"))
    m = imp.size
    if fmr_grid is None:
        grid = [g for g in DEFAULT_FMR_GRID if _allowed_count(g, m) > 0]
        if not grid:
            raise _too_few(DEFAULT_FMR_GRID[0], m)
    else:
        grid = sorted({_rate(g, "fmr_grid value") for g in fmr_grid}, reverse=True)
        for g in grid:
            if _allowed_count(g, m) == 0:
                raise _too_few(g, m)
    ks = np.array([_allowed_count(g, m) for g in grid], dtype=np.int64)
    thresholds = _thresholds_for_counts(imp, ks)

    gen = None if genuine is None or np.size(genuine) == 0 else np.sort(_scores(genuine, "genuine"))
    if gen is None:
        fnmr = np.full(len(grid), np.nan)
    else:
        fnmr = np.searchsorted(gen, _in_dtype(thresholds, gen.dtype), "left") / gen.size

    if tail_points < 2:
        raise InputError(f"tail_points must be at least 2, got {tail_points}")
    tail_k = np.unique(np.clip(np.rint(np.geomspace(1, m, tail_points)), 1, m).astype(np.int64))[::-1]
    tail_scores = _thresholds_for_counts(imp, tail_k)

    return CalibrationTable(
        name=name,
        model_id=model_id,
        n_impostor=int(m),
        n_genuine=0 if gen is None else int(gen.size),
        fmr_grid=tuple(grid),
        thresholds=tuple(float(t) for t in thresholds),
        fnmr=tuple(float(v) for v in fnmr),
        tail_scores=tuple(float(t) for t in tail_scores),
        tail_fmr=tuple(float(k) / m for k in tail_k),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        source=source,
    )
