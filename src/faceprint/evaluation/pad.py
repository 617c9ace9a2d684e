"""Presentation-attack detection measured in ISO/IEC 30107-3 terms, and the report of
``faceprint eval pad``.

Scores are liveness scores (higher = more likely bona fide); a presentation is accepted as
bona fide at ``score >= threshold``.

* APCER (per attack type, i.e. PAI species): share of that type's attack presentations
  accepted as bona fide.  The overall APCER is the worst type's (30107-3 clause 13.1.1).
* BPCER: share of bona fide presentations rejected as attacks.
* ACER = (APCER + BPCER) / 2 (an average the standard has since deprecated; reported
  because the literature compares on it).
* BPCER at APCER = 10% / 1%: the BPCER at the strictest threshold where no attack type's
  APCER exceeds the target.
* DET: APCER (pooled attacks) against BPCER over all thresholds.

Also ROC AUC / accuracy for two-class detectors (the synthetic-face report uses them).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import InputError
from faceprint.evaluation.html import HtmlReport, fmt
from faceprint.metrics.pad import APCER_TARGETS, auc, is_bona_fide, iso_metrics, threshold_at_apcer  # noqa: F401 (re-exported: the old home)
from faceprint.metrics.verification import roc

__all__ = ["LabelledImage", "auc", "iso_metrics", "pad_report", "read_labels", "synthetic_report", "threshold_at_apcer"]


class LabelledImage:
    __slots__ = ("path", "label", "group")

    def __init__(self, path: Path, label: str, group: str) -> None:
        self.path, self.label, self.group = path, label, group


def read_labels(csv_path: str | Path, *, group_column: str | None = None) -> list[LabelledImage]:
    """Rows of a labels CSV with columns ``path`` and ``label`` (paths relative to the CSV's
    folder); the group (subject) of each row is ``group_column`` if given, else a ``subject``
    column if there is one, else the image's folder."""
    p = Path(csv_path)
    try:
        with p.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise InputError("labels file not found", source=str(p)) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"not a readable CSV: {exc}", source=str(p)) from None
    if not rows or "path" not in rows[0] or "label" not in rows[0]:
        raise InputError("the labels CSV needs a header with columns 'path' and 'label'", source=str(p))
    gcol = group_column or ("subject" if "subject" in rows[0] else None)
    if group_column and group_column not in rows[0]:
        raise InputError(f"the labels CSV has no column {group_column!r}", source=str(p))
    out = []
    for i, r in enumerate(rows, start=2):
        if not r.get("path") or not r.get("label"):
            raise InputError(f"line {i}: empty path or label", source=str(p))
        ip = Path(r["path"])
        ip = ip if ip.is_absolute() else p.parent / ip
        out.append(LabelledImage(ip, r["label"].strip(), (r.get(gcol) or "").strip() if gcol else ip.parent.name))
    return out


def pad_report(
    scores: np.ndarray,
    labels: Sequence[str],
    paths: Sequence[str],
    out_dir: str | Path,
    *,
    threshold: float,
    title: str = "Presentation-attack detection",
    extra: dict[str, Any] | None = None,
    failures: Sequence[tuple[str, str]] = (),
    support: Sequence[list[str]] | None = None,
    model_figures: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """results.json + DET and score plots + report.html for one scored labelled set.
    ``support``: per face, why it lies outside the model's training captures ([] when it does
    not; :meth:`faceprint.liveness.pad.PadModel.support_of`) -- the report then says how far
    these captures are from the training sources, and how the model did inside and outside.
    ``model_figures``: the cross-source figures the model's training recorded, shown beside."""
    from faceprint.evaluation import plots
    from faceprint.evaluation.reports import write

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = iso_metrics(scores, labels, threshold=threshold)
    bona = np.array([is_bona_fide(lb) for lb in labels])
    det = {"pooled attacks": (np.asarray(m["det"]["apcer"]), np.asarray(m["det"]["bpcer"]))}
    files = {
        "det": str(
            plots.plot_det(
                det, out / "det.png", title="DET (APCER against BPCER)", xlabel="APCER (attacks accepted as bona fide)", ylabel="BPCER (bona fide rejected)"
            )
        ),
        "scores": str(
            plots.plot_score_histogram(
                scores[bona],
                scores[~bona],
                out / "scores.png",
                thresholds={"threshold": threshold},
                title="Liveness scores",
                bins=50,
                names=("bona fide", "attack"),
                xlabel="Liveness score (higher = more likely live)",
            )
        ),
    }
    wrong = [{"path": p, "label": lb, "score": round(float(sc), 4)} for p, lb, sc in zip(paths, labels, scores) if (sc >= threshold) != is_bona_fide(lb)]
    sup = None if support is None else support_summary(scores, labels, support, threshold)
    res = {
        "kind": "pad",
        **(extra or {}),
        **{k: v for k, v in m.items() if k != "det"},
        **({"support": sup} if sup else {}),
        **({"model_cross_source": model_figures} if model_figures else {}),
        "det_points": len(m["det"]["apcer"]),
        "errors": wrong[:200],
        "failures": [{"path": p, "error": e} for p, e in failures],
        "files": files,
    }
    r = HtmlReport(title, subtitle="ISO/IEC 30107-3 measures; a presentation counts as bona fide at score >= threshold")
    r.heading("Summary").table(
        ["measure", "value"],
        [
            ["bona fide presentations", m["bona_fide"]],
            ["attack presentations", m["attacks"]],
            ["threshold", fmt(threshold)],
            ["APCER (worst attack type)", fmt(m["apcer"])],
            ["BPCER", fmt(m["bpcer"])],
            ["ACER", fmt(m["acer"])],
            ["BPCER at APCER = 10%", fmt(m["bpcer_at_apcer"]["10%"])],
            ["BPCER at APCER = 1%", fmt(m["bpcer_at_apcer"]["1%"])],
            ["EER (pooled)", fmt(m["eer"])],
            ["ROC AUC", fmt(m["auc"])],
            ["faces not found", len(failures)],
        ],
    )
    r.heading("Per attack type").table(
        ["attack type", "presentations", "APCER"], [[t, v["presentations"], fmt(v["apcer"])] for t, v in m["attack_types"].items()]
    )
    r.heading("Operating points").table(
        ["APCER target", "threshold", "BPCER"], [[fmt(o["apcer"]), fmt(o["threshold"]), fmt(o["bpcer"])] for o in m["operating_points"]]
    )
    r.figure(files["det"], "DET: APCER against BPCER, pooled attacks").figure(files["scores"], "Liveness scores: bona fide (blue) and attacks (red)")
    if wrong:
        r.heading("Errors at the threshold").table(
            ["image", "label", "score"],
            [[w["path"], w["label"], w["score"]] for w in wrong[:50]],
            caption=f"{len(wrong)} misclassified" + (" (first 50)" if len(wrong) > 50 else ""),
        )
    if sup:
        r.heading("How far these captures are from the model's training").table(
            ["measure", "value"],
            [
                ["faces outside the training captures (answered with confidence: low)", f"{sup['outside']} of {len(scores)} ({fmt(sup['outside_share'])})"],
                ["errors among the faces inside", fmt(sup["error_inside"])],
                ["errors among the faces outside", fmt(sup["error_outside"])],
            ]
            + [[f"reason: {k}", v] for k, v in sup["reasons"].items()],
            caption="A model can only vouch for captures like those it was trained on; train-pad on your own captures when many fall outside.",
        )
    if model_figures:
        r.heading("The model on capture set-ups it never saw (its training's leave-one-source-out)").table(
            ["source", "APCER", "BPCER", "ACER", "faces"],
            [[k, fmt(v["apcer"]), fmt(v["bpcer"]), fmt(v["acer"]), v["faces"]] for k, v in (model_figures.get("per_source") or {}).items()],
            caption=f"mean ACER {fmt(model_figures.get('mean_acer'))}, worst {fmt(model_figures.get('max_acer'))}",
        )
    r.note("These figures hold for the attack types and capture conditions of this set only; an attack type absent here is not measured.")
    return write(out, res, r)


def support_summary(scores: np.ndarray, labels: Sequence[str], support: Sequence[list[str]], threshold: float) -> dict[str, Any]:
    """How many faces lie outside the model's training captures, why (the reasons' kinds,
    counted), and the error rate at ``threshold`` inside and outside."""
    outside = np.array([bool(r) for r in support])
    wrong = np.array([(sc >= threshold) != is_bona_fide(lb) for sc, lb in zip(scores, labels)])
    reasons: dict[str, int] = {}
    for rs in support:
        for r in rs:
            kind = r.split(";")[0]
            kind = " ".join(w for w in kind.split() if not any(ch.isdigit() for ch in w))  # the reason's kind, without this face's numbers
            reasons[kind] = reasons.get(kind, 0) + 1
    return {
        "outside": int(outside.sum()),
        "outside_share": round(float(outside.mean()), 4) if outside.size else 0.0,
        "error_inside": round(float(wrong[~outside].mean()), 4) if (~outside).any() else None,
        "error_outside": round(float(wrong[outside].mean()), 4) if outside.any() else None,
        "reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
    }


def synthetic_report(
    scores: dict[str, np.ndarray],
    real: np.ndarray,
    out_dir: str | Path,
    *,
    threshold: float,
    title: str = "Synthetic-face detection",
    extra: dict[str, Any] | None = None,
    verdicts: dict[str, dict[str, float]] | None = None,
    note: str = "",
) -> dict[str, Any]:
    """Per generator: ROC AUC against the real faces, share detected at ``threshold``,
    accuracy on that generator + the real faces; the real faces' false-flag rate; ROC curves
    and score distributions."""
    from faceprint.evaluation import plots
    from faceprint.evaluation.reports import write

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    flagged = float(np.mean(real >= threshold))
    gens = {}
    for g, s in scores.items():
        det = float(np.mean(s >= threshold))
        gens[g] = {
            "faces": int(s.size),
            "auc": auc(s, real),
            "detected": det,
            "accuracy": float((np.sum(s >= threshold) + np.sum(real < threshold)) / (s.size + real.size)),
        }
    pooled = np.concatenate(list(scores.values()))
    files = {
        "roc": str(
            plots.plot_roc(
                {g: roc(s, real)[:2] for g, s in scores.items()},
                out / "roc.png",
                title="ROC per generator",
                mark_fmr=None,
                xlabel="Real faces flagged (false positive rate)",
                ylabel="Generated faces detected (true positive rate)",
            )
        ),
        "scores": str(
            plots.plot_score_histogram(
                pooled,
                real,
                out / "scores.png",
                thresholds={"threshold": threshold},
                title="Synthetic scores",
                bins=40,
                names=("generated", "real"),
                xlabel="Synthetic score (higher = more likely generated)",
            )
        ),
    }
    res = {
        "kind": "synthetic",
        **(extra or {}),
        "threshold": threshold,
        "real_faces": int(real.size),
        "real_flagged": flagged,
        "generators": gens,
        "files": files,
    }
    r = HtmlReport(title, subtitle="Each generator's faces against the same real faces")
    r.heading("Per generator").table(
        ["generator", "faces", "ROC AUC", "detected at threshold", "accuracy (with the real faces)"],
        [[g, v["faces"], fmt(v["auc"]), fmt(v["detected"]), fmt(v["accuracy"])] for g, v in gens.items()],
    )
    r.table(["real faces", "flagged as generated"], [[int(real.size), fmt(flagged)]])
    r.figure(files["roc"], "ROC per generator").figure(files["scores"], "Scores: generated (blue) and real (red)")
    if verdicts:
        res["verdicts"] = verdicts
        r.heading("What the model answered").table(
            ["set", "synthetic", "cannot tell", "no evidence"],
            [[k, fmt(v["synthetic"]), fmt(v["cannot tell"]), fmt(v["no evidence"])] for k, v in verdicts.items()],
            caption="cannot tell: the face sits where FFHQ-aligned generators put faces and nothing else settles it; no evidence is not evidence of a real photo",
        )
    if note:
        res["note"] = note
        r.note(note)
    r.note("Generators absent here are not measured; a detector trained on some generators often misses others.")
    return write(out, res, r)
