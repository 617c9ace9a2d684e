"""The evaluation reports behind ``faceprint eval <kind>``: each writes ``results.json``, its
plots (PNG) and one self-contained ``report.html`` into an output folder.

* :func:`verify_report`   -- ROC, DET, score histograms, k-fold accuracy, EER, TAR at FAR
  1e-2/1e-3/1e-4 and a threshold table, from LFW-style pairs or identity folders.
* :func:`identify_report` -- CMC, rank-1/5, FNIR vs FPIR from identity folders
  (first image of each identity enrolled, the rest probes, single-image identities as
  distractors).
* :func:`bias_report`     -- demographic differentials (see :mod:`faceprint.evaluation.bias`).
* :func:`dataset_report`  -- audit of a (synthetic) face dataset of identity folders.
* :func:`idsim_report`    -- identity similarity of generated faces to their references.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import CalibrationError, InputError
from faceprint.evaluation.faceset import FaceSet
from faceprint.evaluation.html import HtmlReport, fmt
from faceprint.evaluation.protocol import tar_entries
from faceprint.metrics import verification as metrics

__all__ = ["bias_report", "cap_per_identity", "dataset_report", "idsim_report", "identify_report", "threshold_table", "verify_report", "write"]

FMR_TABLE = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


def write(out_dir: str | Path, results: dict[str, Any], report: HtmlReport) -> dict[str, Any]:
    """results.json + report.html in ``out_dir`` (created); returns results with the file paths."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        files = {**results.get("files", {}), "report": str(out / "report.html"), "results": str(out / "results.json")}
        results = {**results, "files": files}
        report.raw_json(results)
        report.write(out / "report.html")
        (out / "results.json").write_text(json.dumps(results, indent=1, default=float))
    except OSError as exc:
        raise InputError(f"cannot write the report: {exc.strerror or exc}", source=str(out)) from None
    return results


def _key(rate: float) -> str:
    return f"{rate:.0e}".replace("e-0", "e-")


def threshold_table(gen: np.ndarray, imp: np.ndarray, calibration: Any | None = None, fmrs: Sequence[float] = FMR_TABLE) -> list[dict[str, Any]]:
    """Threshold <-> FMR <-> FNMR on this data, and what the shipped calibration's threshold
    for the same FMR gives here (does the calibration hold on this data?)."""
    rows = []
    for f in fmrs:
        row: dict[str, Any] = {"fmr": f}
        try:
            t = metrics.threshold_at_fmr(imp, f)
            row.update(threshold=t, fnmr=metrics.fnmr_at_threshold(gen, t))
        except CalibrationError:
            row.update(threshold=None, fnmr=None, note=f"{len(imp):,} impostor pairs cannot state FMR {f:g}")
        if calibration is not None:
            try:
                tc = calibration.threshold_for(f)
                row.update(calibrated_threshold=tc, fmr_at_calibrated=metrics.fmr_at_threshold(imp, tc), fnmr_at_calibrated=metrics.fnmr_at_threshold(gen, tc))
            except Exception:  # the table does not reach this FMR
                row.update(calibrated_threshold=None)
        rows.append(row)
    return rows


def _verify_figures(gen: np.ndarray, imp: np.ndarray, out: Path, label: str, title: str, eer_thr: float, auc: float) -> dict[str, str]:
    from faceprint.evaluation.plots import plot_det, plot_roc, plot_score_histogram

    fmr, tar, _ = metrics.roc(gen, imp)
    return {
        "roc": str(plot_roc({f"{label} (AUC {auc:.4f})": (fmr, tar)}, out / "roc.png", title=title)),
        "det": str(plot_det({label: (fmr, 1.0 - tar)}, out / "det.png", title=title)),
        "histogram": str(plot_score_histogram(gen, imp, out / "scores.png", thresholds={"EER": eer_thr}, title=title)),
        "histogram_log": str(plot_score_histogram(gen, imp, out / "scores-log.png", thresholds={"EER": eer_thr}, title=title + " (log density)", log_y=True)),
    }


def verify_report(
    gen: np.ndarray,
    imp: np.ndarray,
    folds: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    out_dir: str | Path,
    *,
    title: str,
    label: str,
    calibration: Any | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The verification report from genuine and impostor scores.  ``folds`` = (scores, labels,
    fold per pair) of the pairs to run k-fold accuracy on (None: not reported)."""
    if len(gen) == 0 or len(imp) == 0:
        raise InputError("a verification report needs genuine and impostor pairs")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    e, e_thr = metrics.eer(gen, imp)
    auc = metrics.auc(gen, imp)
    res: dict[str, Any] = {
        "kind": "verify",
        **(extra or {}),
        "genuine_pairs": int(len(gen)),
        "impostor_pairs": int(len(imp)),
        "auc": auc,
        "eer": e,
        "eer_threshold": e_thr,
    }
    if folds is not None:
        kf = metrics.kfold_accuracy(*folds)
        res.update(accuracy_mean=kf["accuracy_mean"], accuracy_std=kf["accuracy_std"], fold_accuracies=kf["fold_accuracies"])
    res.update(tar_entries(gen, imp, (1e-2, 1e-3, 1e-4)))
    res["threshold_table"] = threshold_table(gen, imp, calibration)
    res["files"] = _verify_figures(gen, imp, out, label, title, e_thr, auc)

    r = HtmlReport(title, subtitle=f"verification · {label}")
    r.heading("Summary")
    rows = [["genuine pairs", len(gen)], ["impostor pairs", len(imp)], ["ROC AUC", auc], ["EER", f"{100 * e:.3f} %"], ["EER threshold", e_thr]]
    if folds is not None:
        rows.insert(0, ["accuracy (k-fold, threshold chosen on the other folds)", f"{100 * res['accuracy_mean']:.2f} % ± {100 * res['accuracy_std']:.2f}"])
    for far in (1e-2, 1e-3, 1e-4):
        v = res[f"tar_at_far_{_key(far)}"]
        rows.append([f"TAR at FAR {far:g}", "— (too few impostor pairs)" if v is None else f"{100 * v:.2f} %"])
    r.table(["metric", "value"], rows)
    r.heading("Threshold table")
    r.para("Thresholds measured on this data for each FMR, the FNMR there, and what the shipped calibration's threshold for the same FMR gives on this data.")
    r.table(
        ["FMR", "threshold here", "FNMR here", "calibrated threshold", "FMR at it here", "FNMR at it here"],
        [
            [t["fmr"], t.get("threshold"), t.get("fnmr"), t.get("calibrated_threshold"), t.get("fmr_at_calibrated"), t.get("fnmr_at_calibrated")]
            for t in res["threshold_table"]
        ],
    )
    r.heading("Curves")
    for key, cap in (
        ("roc", "ROC (log FMR)"),
        ("det", "DET (log-log)"),
        ("histogram", "Score distributions"),
        ("histogram_log", "Score distributions, log density"),
    ):
        r.figure(res["files"][key], cap)
    return write(out, res, r)


def verify_folders(
    fs: FaceSet, out_dir: str | Path, *, impostors: int = 200_000, seed: int = 0, calibration: Any | None = None, title: str = "Verification"
) -> dict[str, Any]:
    """All genuine pairs and ``impostors`` sampled different-identity pairs of a face set;
    k-fold accuracy over 5 identity folds on all genuine pairs plus as many impostors."""
    ok = np.flatnonzero(fs.ok)
    if len(ok) < 2:
        raise InputError("fewer than two images with a face")
    V, ids = fs.vectors[ok], fs.ids[ok]
    gen_parts = []
    gen_fold = []
    for s in np.unique(ids):
        m = np.flatnonzero(ids == s)
        if len(m) > 1:
            S = V[m] @ V[m].T
            iu = np.triu_indices(len(m), 1)
            gen_parts.append(S[iu])
            gen_fold.append(np.full(len(iu[0]), int(s) % 5))
    if not gen_parts:
        raise InputError("no identity has two images with a face: no genuine pairs")
    gen = np.concatenate(gen_parts)
    rng = np.random.default_rng(seed)
    n = len(ok)
    counts = np.bincount(ids)
    all_imp = (n * n - int((counts**2).sum())) // 2
    if all_imp <= impostors:  # few enough: every different-identity pair, once
        iu = np.triu_indices(n, 1)
        keep = ids[iu[0]] != ids[iu[1]]
        order = rng.permutation(int(keep.sum()))  # shuffled: the k-fold set takes the first ones
        a, b = iu[0][keep][order], iu[1][keep][order]
        sampling = f"all {len(a):,} different-identity pairs"
    else:
        a = rng.integers(0, n, impostors * 2)
        b = rng.integers(0, n, impostors * 2)
        keep = ids[a] != ids[b]
        a, b = a[keep][:impostors], b[keep][:impostors]
        sampling = f"{len(a):,} random different-identity pairs (seed {seed})"
    imp = np.einsum("ij,ij->i", V[a], V[b])
    # k-fold accuracy on a balanced set: every genuine pair and as many impostors
    k = min(len(gen), len(imp))
    pick = rng.permutation(len(gen))[:k]
    scores = np.concatenate([gen[pick], imp[:k]])
    labels = np.concatenate([np.ones(k, bool), np.zeros(k, bool)])
    fold = np.concatenate([np.concatenate(gen_fold)[pick], ids[a[:k]] % 5])
    extra = {
        "source": "identity folders",
        "images": len(fs.paths),
        "images_without_face": int((~fs.ok).sum()),
        "identities": len(np.unique(fs.ids)),
        "impostor_sampling": sampling,
        "model_id": fs.model_id,
    }
    return verify_report(gen, imp, (scores, labels, fold), out_dir, title=title, label=fs.model_id, calibration=calibration, extra=extra)


# -------------------------------------------------------------------------------- identification
def identify_report(fs: FaceSet, out_dir: str | Path, *, title: str = "Identification", max_rank: int = 20, alias: np.ndarray | None = None) -> dict[str, Any]:
    """Closed- and open-set identification: gallery = the first image of every identity with a
    face (single-image identities are distractors: enrolled, never searched for), probes = the
    other images.  CMC; FNIR vs FPIR with non-mated searches made by leaving each probe's own
    identity out (NIST FRTE style)."""
    from faceprint.evaluation.plots import plot_lines

    ok = fs.ok
    first = np.zeros(len(fs.ids), bool)
    seen: set[int] = set()
    for i, s in enumerate(fs.ids):
        if ok[i] and int(s) not in seen:
            first[i] = True
            seen.add(int(s))
    probes = np.flatnonzero(~first & ok)
    gal = np.flatnonzero(first)
    if len(probes) == 0 or len(gal) < 2:
        raise InputError("identification needs identities with two or more images (probes) and at least two enrolled identities")
    G = fs.vectors[gal]
    gid = fs.ids[gal]
    S = fs.vectors[probes] @ G.T  # (probes, gallery): one template per identity
    mate = np.array([np.flatnonzero(gid == fs.ids[p])[0] for p in probes])
    mate_score = S[np.arange(len(probes)), mate]
    rank = (S > mate_score[:, None]).sum(axis=1)  # 0 = first
    S[np.arange(len(probes)), mate] = -np.inf
    if alias is not None:  # identities known to be one person under two names are not each other's non-mates
        same_person = alias[gid][None, :] == alias[fs.ids[probes]][:, None]
        S[same_person] = -np.inf
    nonmate_top = S.max(axis=1)  # the search as if the probe's identity were not enrolled
    ranks = np.arange(1, max_rank + 1)
    cmc = [float(np.mean(rank < r)) for r in ranks]
    fpir_grid = np.logspace(-3, 0, 31)
    fnir_curve = []
    for f in fpir_grid:
        try:
            t = metrics.threshold_at_fmr(nonmate_top, float(f))
            fnir_curve.append(float(np.mean(~((rank == 0) & (mate_score >= t)))))
        except CalibrationError:
            fnir_curve.append(float("nan"))
    res: dict[str, Any] = {
        "kind": "identify",
        "model_id": fs.model_id,
        "gallery_identities": int(len(gal)),
        "distractors": int(sum(1 for s in np.unique(fs.ids[ok]) if (fs.ids[ok] == s).sum() == 1)),
        "mated_probes": int(len(probes)),
        "non_mated_searches": int(len(probes)),
        "images_without_face": int((~ok).sum()),
        "rank1": cmc[0],
        "rank5": cmc[4] if len(cmc) > 4 else None,
        "cmc": dict(zip(ranks.tolist(), cmc)),
        "fnir_vs_fpir": [{"fpir": float(f), "fnir": v} for f, v in zip(fpir_grid, fnir_curve)],
    }
    for f in (1e-2, 1e-3):
        try:
            t = metrics.threshold_at_fmr(nonmate_top, f)
            res[f"fnir_at_fpir_{_key(f)}"] = float(np.mean(~((rank == 0) & (mate_score >= t))))
            res[f"threshold_at_fpir_{_key(f)}"] = t
        except CalibrationError as exc:
            res[f"fnir_at_fpir_{_key(f)}"] = None
            res[f"note_fpir_{_key(f)}"] = str(exc)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res["files"] = {
        "cmc": str(plot_lines({fs.model_id: (ranks, cmc)}, out / "cmc.png", title="CMC", xlabel="rank", ylabel="identification rate", marker="o")),
        "fnir_fpir": str(
            plot_lines(
                {fs.model_id: (fpir_grid, fnir_curve)},
                out / "fnir-fpir.png",
                title="FNIR vs FPIR (open set)",
                xlabel="FPIR",
                ylabel="FNIR",
                xlog=True,
                ylog=True,
            )
        ),
    }
    r = HtmlReport(title, subtitle=f"identification · {fs.model_id}")
    r.heading("Summary")
    r.table(
        ["metric", "value"],
        [
            ["gallery (one template per identity)", len(gal)],
            ["of which distractors (never searched for)", res["distractors"]],
            ["mated probes", len(probes)],
            ["rank-1", f"{100 * res['rank1']:.2f} %"],
            ["rank-5", f"{100 * (res['rank5'] or 0):.2f} %"],
            ["FNIR at FPIR 1e-2", res["fnir_at_fpir_1e-2"]],
            ["FNIR at FPIR 1e-3", res["fnir_at_fpir_1e-3"]],
        ],
    )
    r.para("Non-mated searches: each probe searched with its own identity left out of the gallery; FPIR thresholds are set on those.")
    r.figure(res["files"]["cmc"], "CMC").figure(res["files"]["fnir_fpir"], "FNIR vs FPIR")
    return write(out, res, r)


# -------------------------------------------------------------------------------- bias
def cap_per_identity(ids: np.ndarray, valid: np.ndarray, cap: int | None) -> np.ndarray:
    """``valid`` keeping at most ``cap`` images per identity (the first ones, in path order)."""
    if not cap:
        return valid
    out = valid.copy()
    count: dict[int, int] = {}
    for i in np.flatnonzero(valid):
        c = count.get(int(ids[i]), 0)
        out[i] = c < cap
        count[int(ids[i])] = c + 1
    return out


def bias_report(
    fs: FaceSet,
    groups_of_image: Sequence[str | None],
    attribute: str,
    out_dir: str | Path,
    *,
    fmr: float = 1e-3,
    bootstrap: int = 500,
    seed: int = 0,
    max_per_identity: int | None = 10,
    min_identities: int = 10,
    title: str = "Demographic differentials",
) -> dict[str, Any]:
    """The bias report (see :mod:`faceprint.evaluation.bias`) over the images with a group."""
    from faceprint.evaluation.bias import all_pairs, group_aware_thresholds
    from faceprint.evaluation.bias import bias_report as compute
    from faceprint.evaluation.plots import plot_det, plot_distributions, plot_group_rates

    # groups with too few people cannot give a rate worth comparing: listed, left out
    members: dict[str, set[int]] = {}
    for g, i, ok in zip(groups_of_image, fs.ids.tolist(), fs.ok.tolist()):
        if g and ok:
            members.setdefault(g, set()).add(i)
    names = sorted(g for g, m in members.items() if len(m) >= min_identities)
    too_small = {g: len(m) for g, m in members.items() if len(m) < min_identities}
    if len(names) < 2:
        raise InputError(
            f"fewer than two groups of {attribute!r} have {min_identities} or more identities with a face (groups: "
            + ", ".join(f"{g} {len(m)}" for g, m in sorted(members.items()))
            + ")"
        )
    code = {g: i for i, g in enumerate(names)}
    G = np.array([code.get(g, -1) if g else -1 for g in groups_of_image])
    valid = cap_per_identity(fs.ids, fs.ok & (G >= 0), max_per_identity)
    t = all_pairs(fs.vectors[valid], fs.ids[valid], G[valid])
    res = compute(t, names, len(fs.names), fmr=fmr, bootstrap=bootstrap, seed=seed)
    robustness = []
    for s in range(seed, seed + 5):
        gt = group_aware_thresholds(t, names, len(fs.names), fmr=fmr, seed=s)
        robustness.append(
            {"seed": s, "check_fmr_ratio_global": gt["check"]["fmr_ratio_global"], "check_fmr_ratio_group_aware": gt["check"]["fmr_ratio_group_aware"]}
        )
    res.update(
        kind="bias",
        attribute=attribute,
        model_id=fs.model_id,
        images_used=int(valid.sum()),
        images_without_face=int((~fs.ok).sum()),
        images_without_group=int((fs.ok & (G < 0)).sum()),
        max_per_identity=max_per_identity,
        bootstrap_replicates=bootstrap,
        groups_left_out={g: f"{n} identities (fewer than {min_identities})" for g, n in too_small.items()},
        group_images={n: int((valid & (G == g)).sum()) for g, n in enumerate(names)},
        split_robustness=robustness,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gr = res["groups"]
    files = {
        "rates": str(
            plot_group_rates(
                {"FMR": {n: (gr[n]["fmr"], gr[n].get("fmr_ci95")) for n in names}, "FNMR": {n: (gr[n]["fnmr"], gr[n].get("fnmr_ci95")) for n in names}},
                out / "group-rates.png",
                title=f"FMR and FNMR by {attribute} at one threshold ({res['global_threshold']:.3f})",
            )
        ),
        "impostors": str(
            plot_distributions(
                {"within group": t.imp_score[t.imp_ga == t.imp_gb], "cross group": t.imp_score[t.imp_ga != t.imp_gb]},
                out / "impostor-scores.png",
                title="Impostor scores: within vs across groups",
                xlabel="similarity",
                lines={"threshold": res["global_threshold"]},
                log_y=True,
            )
        ),
    }
    det = {}
    for g, n in enumerate(names):
        gi = t.imp_score[(t.imp_ga == g) & (t.imp_gb == g)]
        gg = t.gen_score[t.gen_group == g]
        if len(gi) and len(gg):
            x, y, _ = metrics.roc(gg, gi)
            det[n] = (x, 1.0 - y)
    if det:
        files["det"] = str(plot_det(det, out / "det-by-group.png", title=f"DET by {attribute} (within-group impostors)"))
    res["files"] = files

    r = HtmlReport(title, subtitle=f"bias · {attribute} · {fs.model_id}")
    r.heading("At one global threshold")
    r.para(
        f"Threshold {res['global_threshold']:.4f} gives FMR {fmr:g} over all {res['overall']['impostor_pairs']:,} impostor pairs "
        f"(at most {max_per_identity} images per identity). A group's FMR is over impostor pairs within the group; 95 % intervals resample identities ({bootstrap} replicates)."
    )
    r.table(
        [attribute, "images", "FMR", "FMR 95 % CI", "FNMR", "FNMR 95 % CI", "impostor pairs", "genuine pairs"],
        [
            [
                n,
                res["group_images"][n],
                gr[n]["fmr"],
                _ci(gr[n].get("fmr_ci95")),
                gr[n]["fnmr"],
                _ci(gr[n].get("fnmr_ci95")),
                gr[n]["impostor_pairs"],
                gr[n]["genuine_pairs"],
            ]
            for n in names
        ],
    )
    r.table(["differential (max / min)", "value"], [["FMR", res["fmr_differential"]], ["FNMR", res["fnmr_differential"]]])
    if too_small:
        r.note("Left out (too few identities to state a rate): " + ", ".join(f"{g} ({v})" for g, v in res["groups_left_out"].items()))
    r.table(["cross-group impostors", "FMR", "pairs"], [[k, v["fmr"], v["impostor_pairs"]] for k, v in res["cross_group"].items()])
    r.figure(files["rates"], "FMR and FNMR by group, 95 % intervals").figure(files["impostors"], "Impostor scores within and across groups")
    if "det" in files:
        r.figure(files["det"], "DET by group")
    gt = res["group_thresholds"]
    r.heading("Group-aware thresholds")
    r.para(f"One threshold per group, chosen for FMR {fmr:g} on a random half of the identities (seed {gt['split_seed']}), then applied to the other half.")
    for half in ("choose", "check"):
        h = gt[half]
        r.table(
            [f"{half} half ({h['identities']} identities)", "global threshold", "FMR", "FNMR", "group threshold", "FMR", "FNMR"],
            [
                [
                    n,
                    v["global"]["threshold"],
                    v["global"]["fmr"],
                    v["global"]["fnmr"],
                    v["group_aware"]["threshold"],
                    v["group_aware"]["fmr"],
                    v["group_aware"]["fnmr"],
                ]
                for n, v in h["groups"].items()
            ],
        )
        r.table(
            ["ratio (max / min)", "global", "group-aware"],
            [["FMR", h["fmr_ratio_global"], h["fmr_ratio_group_aware"]], ["FNMR", h["fnmr_ratio_global"], h["fnmr_ratio_group_aware"]]],
        )
    r.table(
        ["split seed", "check-half FMR ratio, global", "group-aware"],
        [[x["seed"], x["check_fmr_ratio_global"], x["check_fmr_ratio_group_aware"]] for x in robustness],
        caption="How much the check half's figures move with the split",
    )
    return write(out, res, r)


def _ci(ci: list[float] | None) -> str:
    return "—" if not ci else f"{fmt(ci[0])} – {fmt(ci[1])}"


# -------------------------------------------------------------------------------- dataset audit
def _centres(fs: FaceSet) -> tuple[np.ndarray, np.ndarray]:
    """(identity indices with a face, their normalised mean templates)."""
    idx = np.unique(fs.ids[fs.ok])
    C = np.stack([fs.vectors[fs.ok & (fs.ids == s)].mean(axis=0) for s in idx]) if len(idx) else np.zeros((0, fs.vectors.shape[1]))
    C /= np.maximum(np.linalg.norm(C, axis=1, keepdims=True), 1e-12)
    return idx, C.astype(np.float32)


def dataset_report(
    fs: FaceSet, out_dir: str | Path, *, threshold: float, fmr: float = 1e-3, reference: FaceSet | None = None, title: str = "Dataset audit"
) -> dict[str, Any]:
    """Audit a dataset of identity folders (e.g. a synthetic training set): detection rate,
    quality, intra-identity consistency and diversity, inter-identity collisions, and
    leakage against a reference gallery."""
    from faceprint.evaluation.plots import plot_distributions

    ok = fs.ok
    per_id_gen: list[np.ndarray] = []
    spread_yaw, spread_gen = [], []
    for s in np.unique(fs.ids[ok]):
        m = np.flatnonzero(ok & (fs.ids == s))
        if len(m) > 1:
            S = fs.vectors[m] @ fs.vectors[m].T
            g = S[np.triu_indices(len(m), 1)]
            per_id_gen.append(g)
            spread_gen.append(float(np.std(g)))
            spread_yaw.append(float(np.nanstd(fs.yaw[m])))
    gen = np.concatenate(per_id_gen) if per_id_gen else np.zeros(0)
    idx, C = _centres(fs)
    collisions = 0
    close_pairs: list[tuple[float, str, str]] = []
    if len(C) > 1:
        for s in range(0, len(C), 1024):
            S = C[s : s + 1024] @ C.T
            rows = np.arange(s, min(s + 1024, len(C)))
            S[np.arange(len(rows)), rows] = -np.inf
            S[np.arange(C.shape[0])[None, :] <= rows[:, None]] = -np.inf  # each unordered pair once
            r, c = np.nonzero(S >= threshold)
            collisions += len(r)
            close_pairs += [(float(S[i, j]), fs.names[idx[rows[i]]], fs.names[idx[j]]) for i, j in zip(r, c)]
    n_id = len(C)
    q = fs.quality[ok]
    res: dict[str, Any] = {
        "kind": "dataset",
        "model_id": fs.model_id,
        "images": len(fs.paths),
        "identities": len(fs.names),
        "detection_rate": float(ok.mean()) if len(ok) else 0.0,
        "quality": {
            "mean": float(np.nanmean(q)) if len(q) else None,
            "p10": float(np.nanpercentile(q, 10)) if len(q) else None,
            "median": float(np.nanmedian(q)) if len(q) else None,
            "share_below_30": float(np.mean(q < 30)) if len(q) else None,
        },
        "consistency": {
            "genuine_pairs": int(len(gen)),
            "mean": float(gen.mean()) if len(gen) else None,
            "median": float(np.median(gen)) if len(gen) else None,
            "share_below_threshold": float(np.mean(gen < threshold)) if len(gen) else None,
        },
        "separability": {
            "threshold": threshold,
            "fmr": fmr,
            "identity_pairs": n_id * (n_id - 1) // 2,
            "collisions": collisions,
            "collision_rate": collisions / max(1, n_id * (n_id - 1) // 2),
            "closest": [list(x) for x in sorted(close_pairs, reverse=True)[:20]],
        },
        "diversity": {
            "yaw_std_mean": float(np.mean(spread_yaw)) if spread_yaw else None,
            "genuine_std_mean": float(np.mean(spread_gen)) if spread_gen else None,
        },
    }
    if reference is not None:
        ridx, R = _centres(reference)
        if len(R) and len(C):
            S = C @ R.T
            best = S.argmax(axis=1)
            top = S[np.arange(len(C)), best]
            leaks = [{"identity": fs.names[idx[i]], "reference": reference.names[ridx[best[i]]], "score": float(top[i])} for i in np.argsort(-top)]
            res["leakage"] = {"reference_identities": len(R), "flagged": int(np.sum(top >= threshold)), "closest": leaks[:20], "threshold": threshold}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    if len(q):
        files["quality"] = str(
            plot_distributions({"unified quality": q}, out / "quality.png", title="Quality of the dataset's faces", xlabel="unified quality (0-100)", bins=50)
        )
    if len(gen):
        files["consistency"] = str(
            plot_distributions(
                {"same identity": gen}, out / "consistency.png", title="Intra-identity similarity", xlabel="cosine", lines={f"FMR {fmr:g} threshold": threshold}
            )
        )
    res["files"] = files
    r = HtmlReport(title, subtitle=f"dataset audit · {fs.model_id}")
    r.heading("Summary")
    r.table(
        ["measure", "value"],
        [
            ["images / identities", f"{len(fs.paths):,} / {len(fs.names):,}"],
            ["detection rate", res["detection_rate"]],
            ["quality: median / 10th percentile", f"{fmt(res['quality']['median'])} / {fmt(res['quality']['p10'])}"],
            ["share of faces under quality 30", res["quality"]["share_below_30"]],
            ["intra-identity similarity: mean / median", f"{fmt(res['consistency']['mean'])} / {fmt(res['consistency']['median'])}"],
            [f"same-identity pairs under the FMR {fmr:g} threshold ({threshold:.3f})", res["consistency"]["share_below_threshold"]],
            ["identity collisions (centres above the threshold)", f"{collisions:,} of {res['separability']['identity_pairs']:,} identity pairs"],
            ["diversity: mean per-identity yaw spread (deg)", res["diversity"]["yaw_std_mean"]],
            ["diversity: mean per-identity similarity spread", res["diversity"]["genuine_std_mean"]],
        ],
    )
    if res["separability"]["closest"]:
        r.table(["closest identity pairs", "", "similarity"], [[a, b, s] for s, a, b in res["separability"]["closest"][:10]])
    if "leakage" in res:
        lk = res["leakage"]
        r.heading("Leakage against the reference gallery")
        r.para(f"{lk['flagged']} of {len(C)} identities have a reference identity above the threshold ({threshold:.3f}).")
        r.table(["identity", "closest reference", "similarity"], [[x["identity"], x["reference"], x["score"]] for x in lk["closest"][:10]])
    for k, cap in (("quality", "Quality distribution"), ("consistency", "Intra-identity similarity")):
        if k in files:
            r.figure(files[k], cap)
    return write(out, res, r)


# -------------------------------------------------------------------------------- identity similarity
def idsim_report(
    ref_vectors: np.ndarray,
    gen_vectors: np.ndarray,
    labels: list[str],
    thumbs: list[tuple[bytes | None, bytes | None]],
    out_dir: str | Path,
    *,
    threshold: float,
    fmr: float = 1e-3,
    failures: int = 0,
    model_id: str = "",
    title: str = "Identity similarity",
) -> dict[str, Any]:
    """How well generated faces keep the identity of their reference: one cosine per pair."""
    from faceprint.evaluation.plots import plot_distributions

    if len(ref_vectors) == 0:
        raise InputError("no reference / generated pair had a face in both images")
    s = np.einsum("ij,ij->i", ref_vectors, gen_vectors)
    order = np.argsort(s)
    res: dict[str, Any] = {
        "kind": "idsim",
        "model_id": model_id,
        "pairs": int(len(s)),
        "pairs_without_face": failures,
        "mean": float(s.mean()),
        "median": float(np.median(s)),
        "std": float(s.std()),
        "threshold": threshold,
        "fmr": fmr,
        "share_above_threshold": float(np.mean(s >= threshold)),
        "worst": [{"pair": labels[i], "score": float(s[i])} for i in order[:10]],
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res["files"] = {
        "scores": str(
            plot_distributions(
                {"reference vs generated": s}, out / "idsim.png", title="Identity similarity", xlabel="cosine", lines={f"FMR {fmr:g} threshold": threshold}
            )
        )
    }
    r = HtmlReport(title, subtitle=f"identity similarity · {model_id}")
    r.table(
        ["measure", "value"],
        [
            ["pairs", len(s)],
            ["pairs without a face", failures],
            ["mean cosine", res["mean"]],
            ["median cosine", res["median"]],
            [f"share above the FMR {fmr:g} threshold ({threshold:.3f})", res["share_above_threshold"]],
        ],
    )
    r.figure(res["files"]["scores"], "Distribution of reference-vs-generated similarity")
    r.heading("Worst cases")
    for i in order[:6]:
        a, b = thumbs[i]
        r.images([x for x in ((a, "reference"), (b, "generated")) if x[0]], caption=f"{labels[i]}: {s[i]:.3f}")
    return write(out, res, r)
