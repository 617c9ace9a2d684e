"""Demographic differentials: per-group FMR and FNMR at one global threshold, their ratios,
within- vs cross-group impostor scores, bootstrap confidence intervals resampled by identity,
and group-aware thresholds that equalise FMR (chosen on one half of the identities, checked
on the other).

Conventions (those of NIST FRTE's demographic reports):

* a group's **FMR** is over impostor pairs whose two images are both of that group (the
  hardest impostors: people who look alike demographically); cross-group impostor pairs
  are reported apart;
* a group's **FNMR** is over its genuine pairs;
* the **differential** of a rate is its max / min ratio across groups;
* confidence intervals resample *identities* (not pairs: the pairs of one person are not
  independent) with replacement within each group, 95 % percentile intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from faceprint.errors import InputError
from faceprint.metrics.verification import threshold_at_fmr

__all__ = ["PairTable", "all_pairs", "bias_report", "split_identities"]


@dataclass
class PairTable:
    """Every unordered pair of valid images: score, both identities, both group codes."""

    gen_score: np.ndarray
    gen_id: np.ndarray
    gen_group: np.ndarray
    imp_score: np.ndarray
    imp_a: np.ndarray  # identity indices
    imp_b: np.ndarray
    imp_ga: np.ndarray  # group codes
    imp_gb: np.ndarray


def all_pairs(vectors: np.ndarray, ids: np.ndarray, groups: np.ndarray, block: int = 1024) -> PairTable:
    """Scores of all pairs (i < j) of unit vectors, blockwise; ``groups`` are small int codes."""
    n = len(vectors)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("gs", "gi", "gg", "is", "ia", "ib", "iga", "igb")}
    for s in range(0, n, block):
        rows = np.arange(s, min(s + block, n))
        sims = vectors[rows] @ vectors.T
        upper = np.arange(n)[None, :] > rows[:, None]
        same = ids[rows][:, None] == ids[None, :]
        r, c = np.nonzero(upper & same)
        out["gs"].append(sims[r, c])
        out["gi"].append(ids[rows][r])
        out["gg"].append(groups[rows][r])
        r, c = np.nonzero(upper & ~same)
        out["is"].append(sims[r, c].astype(np.float32))
        out["ia"].append(ids[rows][r].astype(np.int32))
        out["ib"].append(ids[c].astype(np.int32))
        out["iga"].append(groups[rows][r].astype(np.int8))
        out["igb"].append(groups[c].astype(np.int8))
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}
    return PairTable(cat["gs"], cat["gi"], cat["gg"], cat["is"], cat["ia"], cat["ib"], cat["iga"], cat["igb"])


def split_identities(n_ids: int, seed: int = 0) -> np.ndarray:
    """A deterministic half of the identities (True = first half)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(n_ids, bool)
    mask[rng.permutation(n_ids)[: n_ids // 2]] = True
    return mask


def _rates(t: PairTable, g: int, thr: float, ids_mask: np.ndarray | None = None) -> dict[str, Any]:
    wi = (t.imp_ga == g) & (t.imp_gb == g)
    gm = t.gen_group == g
    if ids_mask is not None:
        wi &= ids_mask[t.imp_a] & ids_mask[t.imp_b]
        gm &= ids_mask[t.gen_id]
    n_imp, n_gen = int(wi.sum()), int(gm.sum())
    fm = int(np.count_nonzero(t.imp_score[wi] >= thr))
    fnm = int(np.count_nonzero(t.gen_score[gm] < thr))
    return {
        "fmr": fm / n_imp if n_imp else None,
        "fnmr": fnm / n_gen if n_gen else None,
        "false_matches": fm,
        "impostor_pairs": n_imp,
        "false_non_matches": fnm,
        "genuine_pairs": n_gen,
    }


def _bootstrap(t: PairTable, g: int, thr: float, n_ids: int, reps: int, seed: int) -> dict[str, list[float] | None]:
    """95 % intervals of the group's FMR and FNMR, resampling its identities."""
    wi = (t.imp_ga == g) & (t.imp_gb == g)
    members = np.unique(np.concatenate([t.imp_a[wi], t.imp_b[wi], t.gen_id[t.gen_group == g]]))
    if len(members) < 2:
        return {"fmr_ci95": None, "fnmr_ci95": None}
    where = np.full(n_ids, -1)
    where[members] = np.arange(len(members))
    m = len(members)
    a, b = where[t.imp_a[wi]], where[t.imp_b[wi]]
    flat = a.astype(np.int64) * m + b
    N = np.bincount(flat, minlength=m * m).reshape(m, m).astype(np.float32)
    M = np.bincount(flat, weights=(t.imp_score[wi] >= thr), minlength=m * m).reshape(m, m).astype(np.float32)
    N, M = N + N.T, M + M.T  # symmetric: w N w counts each pair twice, as does w M w
    gm = t.gen_group == g
    gi = where[t.gen_id[gm]]
    G = np.bincount(gi, minlength=m).astype(np.float64)
    F = np.bincount(gi, weights=(t.gen_score[gm] < thr).astype(np.float64), minlength=m)
    rng = np.random.default_rng(seed)
    fmr, fnmr = [], []
    for _ in range(reps):
        w = np.bincount(rng.integers(0, m, m), minlength=m).astype(np.float32)
        n = float(w @ N @ w)
        if n > 0:
            fmr.append(float(w @ M @ w) / n)
        wg = float(w @ G)
        if wg > 0:
            fnmr.append(float(w @ F) / wg)

    def ci(v: list[float]) -> list[float] | None:
        return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if v else None

    return {"fmr_ci95": ci(fmr), "fnmr_ci95": ci(fnmr)}


def _ratio(values: list[float | None]) -> float | None:
    """max / min across groups; None when it cannot be stated (fewer than two rates, or a
    rate of zero: too few pairs in that group for this threshold)."""
    v = [x for x in values if x is not None]
    if len(v) < 2 or min(v) == 0:
        return None
    return max(v) / min(v)


def bias_report(t: PairTable, group_names: list[str], n_ids: int, *, fmr: float = 1e-3, bootstrap: int = 500, seed: int = 0) -> dict[str, Any]:
    """Every figure of the bias report (see the module docstring)."""
    if len(t.imp_score) == 0 or len(t.gen_score) == 0:
        raise InputError("the bias report needs genuine and impostor pairs in the labelled images")
    thr = threshold_at_fmr(t.imp_score, fmr)
    groups: dict[str, Any] = {}
    for g, name in enumerate(group_names):
        r = _rates(t, g, thr)
        if bootstrap:
            r.update(_bootstrap(t, g, thr, n_ids, bootstrap, seed + g))
        groups[name] = r
    # impostor scores: within each group vs across groups
    within = t.imp_ga == t.imp_gb
    cross: dict[str, Any] = {}
    for ga in range(len(group_names)):
        for gb in range(ga + 1, len(group_names)):
            m = ((t.imp_ga == ga) & (t.imp_gb == gb)) | ((t.imp_ga == gb) & (t.imp_gb == ga))
            if m.any():
                cross[f"{group_names[ga]} x {group_names[gb]}"] = {"fmr": float(np.mean(t.imp_score[m] >= thr)), "impostor_pairs": int(m.sum())}

    def dist(x: np.ndarray) -> dict[str, float]:
        return {"mean": float(x.mean()), "p99": float(np.percentile(x, 99)), "p99_9": float(np.percentile(x, 99.9))} if len(x) else {}

    out: dict[str, Any] = {
        "fmr_target": fmr,
        "global_threshold": thr,
        "overall": {
            "fmr": float(np.mean(t.imp_score >= thr)),
            "fnmr": float(np.mean(t.gen_score < thr)),
            "impostor_pairs": int(len(t.imp_score)),
            "genuine_pairs": int(len(t.gen_score)),
        },
        "groups": groups,
        "fmr_differential": _ratio([groups[n]["fmr"] for n in group_names]),
        "fnmr_differential": _ratio([groups[n]["fnmr"] for n in group_names]),
        "cross_group": cross,
        "impostor_scores": {
            "within_group": dist(t.imp_score[within]),
            "cross_group": dist(t.imp_score[~within]),
            **{f"within {n}": dist(t.imp_score[(t.imp_ga == g) & (t.imp_gb == g)]) for g, n in enumerate(group_names)},
        },
    }
    out["group_thresholds"] = group_aware_thresholds(t, group_names, n_ids, fmr=fmr, seed=seed)
    return out


def group_aware_thresholds(t: PairTable, group_names: list[str], n_ids: int, *, fmr: float = 1e-3, seed: int = 0) -> dict[str, Any]:
    """Per-group thresholds for the target FMR chosen on half of the identities ("choose"),
    applied to the other half ("check"), against one global threshold chosen on the same half."""
    half = split_identities(n_ids, seed)
    choose_imp = half[t.imp_a] & half[t.imp_b]
    if not choose_imp.any():
        raise InputError("too few identities to split in two halves")
    global_thr = threshold_at_fmr(t.imp_score[choose_imp], fmr)
    per: dict[str, float] = {}
    for g, name in enumerate(group_names):
        m = choose_imp & (t.imp_ga == g) & (t.imp_gb == g)
        if m.sum() * fmr >= 1:
            per[name] = threshold_at_fmr(t.imp_score[m], fmr)
    halves: dict[str, Any] = {}
    for label, mask in (("choose", half), ("check", ~half)):
        rows = {}
        for g, name in enumerate(group_names):
            if name not in per:
                continue
            glob = _rates(t, g, global_thr, mask)
            own = _rates(t, g, per[name], mask)
            rows[name] = {
                "global": {"threshold": global_thr, "fmr": glob["fmr"], "fnmr": glob["fnmr"]},
                "group_aware": {"threshold": per[name], "fmr": own["fmr"], "fnmr": own["fnmr"]},
                "impostor_pairs": own["impostor_pairs"],
                "genuine_pairs": own["genuine_pairs"],
            }
        halves[label] = {
            "groups": rows,
            "fmr_ratio_global": _ratio([r["global"]["fmr"] for r in rows.values()]),
            "fmr_ratio_group_aware": _ratio([r["group_aware"]["fmr"] for r in rows.values()]),
            "fnmr_ratio_global": _ratio([r["global"]["fnmr"] for r in rows.values()]),
            "fnmr_ratio_group_aware": _ratio([r["group_aware"]["fnmr"] for r in rows.values()]),
            "identities": int(mask.sum()),
        }
    return {"fmr_target": fmr, "split_seed": seed, "thresholds": per, "global_threshold": global_thr, **halves}
