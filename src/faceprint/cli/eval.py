"""``faceprint eval ...``: the whole ``eval`` group.  Each report writes results.json, PNG plots
and (all but ``pairs``) a self-contained report.html into ``--out`` and prints a summary
(``--json``: the results).  The reports themselves are :mod:`faceprint.evaluation`'s."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from faceprint.cli._common import JsonOpt, RayOpt, cli_errors, make_engine, out, print_json, progress
from faceprint.errors import InputError

eval_app = typer.Typer(no_args_is_help=True, help="Measure accuracy on labelled data.")

_ROOT = "Folder of identity sub-folders: ROOT/<identity>/<images>."
_CACHE = "Keep the templates of ROOT in this .npz and reuse them next time (same images and model)."


def _summary(res: dict[str, Any], rows: list[tuple[str, Any]], as_json: bool) -> None:
    """Print an eval report's results: the JSON, or a table of ``rows`` and the files written."""
    from faceprint.evaluation.html import fmt

    if as_json:
        print_json(res)
        return
    t = Table(title=f"faceprint eval {res['kind']}")
    t.add_column("measure")
    t.add_column("value", justify="right")
    for k, v in rows:
        t.add_row(k, escape(fmt(v)))
    out.print(t)
    out.print(f"report: {escape(res['files']['report'])}   results: {escape(res['files']['results'])}")


def _setup(out_dir: Path, as_json: bool) -> Any:
    """Refuse an ``--out`` that is a file; the engine for the report."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("--out must be a folder, and a file of that name exists", source=str(out_dir))
    return make_engine()


def _faceset(engine: Any, root: Path, identities: int | None, cache: Path | None, as_json: bool, face: str = "center", ray: str | None = None) -> Any:
    """The identity folders under ``root`` embedded (or read from ``cache``), with a progress bar."""
    from faceprint.evaluation.faceset import load_faceset
    from faceprint.evaluation.pairs import identity_folders

    paths, ids, _ = identity_folders(root)
    total = int((ids < identities).sum()) if identities else len(paths)
    with progress(total, "embedding", not as_json) as step:
        return load_faceset(engine, root, face=face, identities=identities, cache=cache, progress=step, ray=ray)


@eval_app.command("pairs")  # the first report; `eval verify --pairs` adds DET, the threshold table and report.html
def eval_pairs(
    pairs: Path = typer.Option(..., "--pairs", help="LFW-format pairs.txt (or CSV a,b,same)."),
    root: Path | None = typer.Option(None, "--root", help="Folder with <Name>/<Name>_NNNN.jpg."),
    out_dir: Path = typer.Option(Path("eval-results"), "--out", help="Folder for results.json, roc.png, scores.png."),
    face: str = typer.Option("center", "--face", help="Face to use in each image (LFW labels the central face)."),
    limit: int | None = typer.Option(None, "--limit", help="Use only the first N pairs of each fold and class (smoke runs)."),
    as_json: bool = JsonOpt,
) -> None:
    """k-fold accuracy, ROC AUC, EER, TAR at FAR 1e-2 / 1e-3, ROC plot."""
    from faceprint.evaluation.pairs import limit_pairs, read_pairs
    from faceprint.evaluation.protocol import score_pairs, verification_report, write_report

    with cli_errors(as_json):
        if out_dir.exists() and not out_dir.is_dir():
            raise InputError("--out must be a folder, and a file of that name exists", source=str(out_dir))
        plist = read_pairs(pairs, root)
        if limit:
            plist = limit_pairs(plist, limit)
        engine = make_engine()
        total = len({p.a for p in plist} | {p.b for p in plist})
        t0 = time.perf_counter()
        with progress(total, "embedding", not as_json) as step:
            ps = score_pairs(engine, plist, face=face, progress=step)
        report = verification_report(ps)
        report["model_id"] = engine.model_id
        report["seconds"] = round(time.perf_counter() - t0, 1)
        try:
            report["files"] = write_report(report, ps, out_dir, title=f"{pairs.name}: {engine.model_id}", label=engine.model_id)
        except OSError as exc:
            raise InputError(f"cannot write the results: {exc.strerror or exc}", source=str(out_dir)) from None
        if as_json:
            print_json(report)
            return
        t = Table(title=f"{escape(str(pairs))} — {report['pairs']} pairs, {report['folds']} folds, model {engine.model_id}")
        t.add_column("metric")
        t.add_column("value", justify="right")
        t.add_row("accuracy (k-fold)", f"{100 * report['accuracy_mean']:.2f}% ± {100 * report['accuracy_std']:.2f}")
        t.add_row("ROC AUC", f"{report['auc']:.5f}")
        t.add_row("EER", f"{100 * report['eer']:.2f}%")
        for k in ("1e-2", "1e-3"):
            v = report.get(f"tar_at_far_{k}")
            t.add_row(f"TAR @ FAR={k}", "n/a (too few impostor pairs)" if v is None else f"{100 * v:.2f}%")
        t.add_row("failures to enrol", str(report["failures_to_enrol"]))
        out.print(t)
        out.print(f"ROC plot: {escape(report['files']['roc'])}   results: {escape(report['files']['results'])}")


@eval_app.command("verify")
def verify_cmd(
    pairs: Path | None = typer.Option(None, "--pairs", help="LFW-format pairs.txt (or CSV a,b,same); without it, pairs come from --root's identity folders."),
    root: Path | None = typer.Option(None, "--root", help=_ROOT + " With --pairs: the folder the pairs' images are in."),
    out_dir: Path = typer.Option(Path("eval-results/verify"), "--out", help="Folder for results.json, plots and report.html."),
    impostors: int = typer.Option(200_000, "--impostors", help="Folder mode: how many different-identity pairs to sample."),
    identities: int | None = typer.Option(None, "--identities", help="Folder mode: only the first N identities (smoke runs)."),
    limit: int | None = typer.Option(None, "--limit", help="Pairs mode: only the first N pairs of each fold and class."),
    cache: Path | None = typer.Option(None, "--cache", help=_CACHE),
    face: str = typer.Option("center", "--face", help="Face to use in each image (LFW labels the central face)."),
    ray: str | None = RayOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Verification (1:1): ROC and DET, score histograms, k-fold accuracy, EER, TAR at FAR
    1e-2 / 1e-3 / 1e-4 and a threshold table (threshold, FMR, FNMR; and how the shipped
    calibration holds on this data)."""
    from faceprint.evaluation.pairs import limit_pairs, read_pairs
    from faceprint.evaluation.protocol import score_pairs
    from faceprint.evaluation.reports import verify_folders, verify_report

    with cli_errors(as_json):
        engine = _setup(out_dir, as_json)
        if pairs is not None:
            plist = read_pairs(pairs, root)
            if limit:
                plist = limit_pairs(plist, limit)
            with progress(len({p.a for p in plist} | {p.b for p in plist}), "embedding", not as_json) as step:
                ps = score_pairs(engine, plist, face=face, progress=step)
            res = verify_report(
                ps.scores[ps.labels],
                ps.scores[~ps.labels],
                (ps.scores, ps.labels, ps.folds),
                out_dir,
                title=f"Verification: {pairs.name}",
                label=engine.model_id,
                calibration=engine.calibration,
                extra={"source": str(pairs), "pairs": len(plist), "failures_to_enrol": len(ps.failures), "model_id": engine.model_id},
            )
        elif root is not None:
            fs = _faceset(engine, root, identities, cache, as_json, face, ray=ray)
            res = verify_folders(fs, out_dir, impostors=impostors, calibration=engine.calibration, title=f"Verification: {root.name}")
        else:
            raise InputError("give --pairs (with --root for LFW-format pairs) or --root with identity folders")
        _summary(
            res,
            [
                ("genuine / impostor pairs", f"{res['genuine_pairs']:,} / {res['impostor_pairs']:,}"),
                ("accuracy (k-fold)", res.get("accuracy_mean")),
                ("EER", res["eer"]),
                ("TAR at FAR 1e-3", res.get("tar_at_far_1e-3")),
                ("TAR at FAR 1e-4", res.get("tar_at_far_1e-4")),
            ],
            as_json,
        )


@eval_app.command("identify")
def identify_cmd(
    root: Path = typer.Option(..., "--root", help=_ROOT),
    out_dir: Path = typer.Option(Path("eval-results/identify"), "--out", help="Folder for results.json, plots and report.html."),
    identities: int | None = typer.Option(None, "--identities", help="Only the first N identities (smoke runs)."),
    cache: Path | None = typer.Option(None, "--cache", help=_CACHE),
    errata: Path | None = typer.Option(
        None,
        "--errata",
        help="Known label errors ('same A B' lines: one person under two names; 'image FILE': a mislabelled picture), e.g. scripts/lfw_errata.txt.",
    ),
    ray: str | None = RayOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Identification (1:N): the first image of each identity enrolled, the others probes,
    single-image identities as distractors: CMC, rank-1/5, FNIR vs FPIR."""
    from faceprint.evaluation.datasets import without_errata
    from faceprint.evaluation.reports import identify_report

    with cli_errors(as_json):
        engine = _setup(out_dir, as_json)
        fs = _faceset(engine, root, identities, cache, as_json, ray=ray)
        alias = None
        if errata is not None:
            fs, alias = without_errata(fs, errata)
        res = identify_report(fs, out_dir, title=f"Identification: {root.name}" + (" (errata applied)" if errata else ""), alias=alias)
        _summary(
            res,
            [
                ("gallery identities", res["gallery_identities"]),
                ("mated probes", res["mated_probes"]),
                ("rank-1", res["rank1"]),
                ("rank-5", res["rank5"]),
                ("FNIR at FPIR 1e-2", res.get("fnir_at_fpir_1e-2")),
                ("FNIR at FPIR 1e-3", res.get("fnir_at_fpir_1e-3")),
            ],
            as_json,
        )


@eval_app.command("bias")
def bias_cmd(
    root: Path = typer.Option(..., "--root", help=_ROOT),
    groups: Path = typer.Option(..., "--groups", help="CSV with columns image, identity and one column per attribute (e.g. gender)."),
    attribute: str | None = typer.Option(None, "--attribute", help="Which attribute column (default: the first)."),
    out_dir: Path = typer.Option(Path("eval-results/bias"), "--out", help="Folder for results.json, plots and report.html."),
    fmr: float = typer.Option(1e-3, "--fmr", help="Overall FMR the global threshold is set for."),
    bootstrap: int = typer.Option(500, "--bootstrap", help="Bootstrap replicates for the 95 % intervals (0: none)."),
    max_per_identity: int = typer.Option(
        10, "--max-per-identity", help="At most this many images per identity (0: all), so heavily photographed people do not decide a group's rates."
    ),
    min_identities: int = typer.Option(10, "--min-identities", help="Groups with fewer identities are listed but left out of the comparison."),
    identities: int | None = typer.Option(None, "--identities", help="Only the first N identities (smoke runs)."),
    cache: Path | None = typer.Option(None, "--cache", help=_CACHE),
    errata: Path | None = typer.Option(
        None,
        "--errata",
        help="Known label errors ('same A B': one person under two names, never counted as impostors; 'image FILE': left out), e.g. scripts/lfw_errata.txt.",
    ),
    ray: str | None = RayOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Demographic differentials: per-group FMR and FNMR at one global threshold with
    bootstrap intervals (by identity), their ratios, within- vs cross-group impostors, and
    group-aware thresholds chosen on half of the identities and checked on the other."""
    from faceprint.evaluation.datasets import without_errata
    from faceprint.evaluation.faceset import read_groups
    from faceprint.evaluation.reports import bias_report

    with cli_errors(as_json):
        if not 0 < fmr < 1:
            raise InputError(f"--fmr must be between 0 and 1, got {fmr}")
        attr, by_image, by_identity = read_groups(groups, attribute)
        engine = _setup(out_dir, as_json)
        fs = _faceset(engine, root, identities, cache, as_json, ray=ray)
        if errata is not None:
            fs, alias = without_errata(fs, errata)
        labels = [by_image.get(p.name) or by_identity.get(fs.names[i]) for p, i in zip(fs.paths, fs.ids)]
        if errata is not None:  # one person under two names is one identity (after the labels are read by name)
            import dataclasses

            fs = dataclasses.replace(fs, ids=alias[fs.ids])
        res = bias_report(
            fs,
            labels,
            attr,
            out_dir,
            fmr=fmr,
            bootstrap=bootstrap,
            max_per_identity=max_per_identity or None,
            min_identities=min_identities,
            title=f"Demographic differentials: {root.name} by {attr}" + (" (errata applied)" if errata else ""),
        )
        rows: list[tuple[str, Any]] = [("global threshold", res["global_threshold"])]
        for g, v in res["groups"].items():
            rows += [(f"FMR {g}", v["fmr"]), (f"FNMR {g}", v["fnmr"])]
        gt = res["group_thresholds"]
        rows += [
            ("FMR differential", res["fmr_differential"]),
            ("FNMR differential", res["fnmr_differential"]),
            ("check half: FMR ratio, global threshold", gt["check"]["fmr_ratio_global"]),
            ("check half: FMR ratio, group thresholds", gt["check"]["fmr_ratio_group_aware"]),
        ]
        _summary(res, rows, as_json)


@eval_app.command("dataset")
def dataset_cmd(
    root: Path = typer.Option(..., "--root", help=_ROOT),
    reference: Path | None = typer.Option(
        None, "--reference", help="A reference gallery of identity folders to check for leakage (identities of ROOT too close to a real person)."
    ),
    out_dir: Path = typer.Option(Path("eval-results/dataset"), "--out", help="Folder for results.json, plots and report.html."),
    fmr: float = typer.Option(1e-3, "--fmr", help="FMR of the threshold for collisions and leakage (from the calibration)."),
    identities: int | None = typer.Option(None, "--identities", help="Only the first N identities (smoke runs)."),
    cache: Path | None = typer.Option(None, "--cache", help=_CACHE),
    ray: str | None = RayOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Audit a face dataset of identity folders (e.g. a synthetic training set): detection
    rate, quality, intra-identity consistency and diversity, identity collisions, and
    leakage against a reference gallery."""
    from faceprint.evaluation.reports import dataset_report

    with cli_errors(as_json):
        engine = _setup(out_dir, as_json)
        fs = _faceset(engine, root, identities, cache, as_json, face="largest", ray=ray)
        ref = _faceset(engine, reference, None, None, as_json, face="largest") if reference else None
        res = dataset_report(fs, out_dir, threshold=engine.calibration.threshold_for(fmr), fmr=fmr, reference=ref, title=f"Dataset audit: {root.name}")
        rows: list[tuple[str, Any]] = [
            ("detection rate", res["detection_rate"]),
            ("median quality", res["quality"]["median"]),
            ("intra-identity similarity (mean)", res["consistency"]["mean"]),
            ("identity collisions", res["separability"]["collisions"]),
        ]
        if "leakage" in res:
            rows.append(("identities leaking a reference identity", res["leakage"]["flagged"]))
        _summary(res, rows, as_json)


@eval_app.command("idsim")
def idsim_cmd(
    reference: Path | None = typer.Option(None, "--reference", help="Reference faces: files (paired with --generated by file name) or identity folders."),
    generated: Path | None = typer.Option(None, "--generated", help="Generated faces, laid out like --reference."),
    root: Path | None = typer.Option(
        None, "--root", help="Instead of the two: identity folders whose first image is the reference and the rest are 'generated'."
    ),
    out_dir: Path = typer.Option(Path("eval-results/idsim"), "--out", help="Folder for results.json, plots and report.html."),
    fmr: float = typer.Option(1e-3, "--fmr", help="FMR of the threshold the share above is counted at."),
    identities: int | None = typer.Option(None, "--identities", help="--root: only the first N identities."),
    as_json: bool = JsonOpt,
) -> None:
    """Identity similarity between reference and generated faces: mean and median cosine,
    share above the FMR threshold, worst cases as thumbnails."""
    from faceprint.evaluation.idsim import idsim_pairs, run_idsim

    with cli_errors(as_json):
        engine = _setup(out_dir, as_json)
        pairs = idsim_pairs(reference, generated, root, identities)
        with progress(len({a for a, _ in pairs} | {b for _, b in pairs}), "embedding", not as_json) as step:
            res = run_idsim(engine, pairs, out_dir, fmr=fmr, progress=step)
        _summary(
            res,
            [
                ("pairs", res["pairs"]),
                ("pairs without a face", res["pairs_without_face"]),
                ("mean cosine", res["mean"]),
                ("median cosine", res["median"]),
                (f"share above the FMR {fmr:g} threshold", res["share_above_threshold"]),
            ],
            as_json,
        )


@eval_app.command("budget")
def budget_cmd(
    pairs: Path = typer.Option(..., "--pairs", help="LFW-format pairs.txt (or CSV a,b,same)."),
    root: Path | None = typer.Option(None, "--root", help="The folder the pairs' images are in."),
    out_dir: Path = typer.Option(Path("eval-results/budget"), "--out", help="Folder for results.json, plots and report.html."),
    limit: int | None = typer.Option(100, "--limit", help="Only the first N pairs of each fold and class (0: all; the dlib embedder needs ~130 ms a face)."),
    config: list[str] | None = typer.Option(None, "--config", help="Only these configurations (repeat; default: all that are installed)."),
    as_json: bool = JsonOpt,
) -> None:
    """Accuracy against time per image across configurations: flip on/off, detector input
    size, each installed embedder, and the score fusion of SFace and dlib."""
    from contextlib import ExitStack

    from faceprint.evaluation.budget import budget_report
    from faceprint.evaluation.pairs import limit_pairs, read_pairs
    from faceprint.settings import Settings

    with cli_errors(as_json):
        _setup(out_dir, as_json)
        plist = read_pairs(pairs, root)
        if limit:
            plist = limit_pairs(plist, limit)
        with ExitStack() as stack:

            def bar(name: str, total: int) -> Any:
                return stack.enter_context(progress(total, name, not as_json))

            res = budget_report(Settings.load(), plist, out_dir, configs=config, progress=bar)
        rows: list[tuple[str, Any]] = [(f"{r['config']} ({r['ms_per_image']:.0f} ms/image)", r["accuracy"]) for r in res["configs"]]
        rows += [(f"best within {b['budget_ms']:g} ms", b["best"]) for b in res["best_within_budget"]]
        _summary(res, rows, as_json)


@eval_app.command("synthetic")
def eval_synthetic(
    synthetic_sets: list[Path] = typer.Option(
        ..., "--synthetic", help="Labels CSV (column path) of one generator's faces; repeat per generator (named by the CSV's folder)."
    ),
    real: list[Path] = typer.Option(
        ..., "--real", help="Real face photos: a folder (searched recursively) or a labels CSV (its live / real rows); repeatable."
    ),
    real_limit: int | None = typer.Option(None, "--real-limit", help="Use at most N real photos per folder or CSV (an even, deterministic spread)."),
    out_dir: Path = typer.Option(Path("eval-results/synthetic"), "--out", help="Folder for results.json, plots and report.html."),
    model: Path | None = typer.Option(None, "--model", help="Synthetic-face model JSON (default: the configured / shipped one)."),
    as_json: bool = JsonOpt,
) -> None:
    """Synthetic-face detection: ROC AUC, detection rate and accuracy per generator against
    real photos, ROC curves and score distributions, and what the model answered for each set
    (synthetic / cannot tell / no evidence)."""
    from faceprint.evaluation.datasets import collect_synthetic_training, score_rows
    from faceprint.evaluation.pad import read_labels, synthetic_report
    from faceprint.forensics.synthetic import synthetic_set_features, verdict_shares

    with cli_errors(as_json):
        if out_dir.exists() and not out_dir.is_dir():
            raise InputError("--out must be a folder, and a file of that name exists", source=str(out_dir))
        engine = make_engine(synthetic_model=str(model) if model else None)
        sm = engine.synthetic_model
        real_paths, _ = collect_synthetic_training([], real, real_limit, need_synthetic=False)
        sets = {}
        for csv_path in synthetic_sets:
            name = csv_path.resolve().parent.name
            sets[name if name not in sets else str(csv_path)] = [it.path for it in read_labels(csv_path)]
        total = len(real_paths) + sum(len(v) for v in sets.values())
        with progress(total, "scoring", not as_json) as step:
            xr, _, failed = synthetic_set_features(engine, real_paths, progress=step)
            scores, feats = {}, {}
            for g, paths in sets.items():
                x, _, f2 = synthetic_set_features(engine, paths, progress=step)
                failed += f2
                scores[g], feats[g] = score_rows(sm, x), x
        if xr["layout"].shape[0] == 0 or any(s.size == 0 for s in scores.values()):
            raise InputError("no face found in the real photos or in one of the generated sets")
        res = synthetic_report(
            scores,
            score_rows(sm, xr),
            out_dir,
            threshold=engine.settings.synthetic_threshold,
            extra={"model": sm.version, "no_face": len(failed)},
            verdicts={"real photos": verdict_shares(sm, xr), **{g: verdict_shares(sm, x) for g, x in feats.items()}},
            note=sm.note,
        )
        _summary(
            res,
            [("real faces flagged", res["real_flagged"])]
            + [(f"{g}: ROC AUC / detected", f"{v['auc']:.4f} / {v['detected']:.4f}") for g, v in res["generators"].items()],
            as_json,
        )


@eval_app.command("pad")
def eval_pad(
    labels: Path = typer.Option(..., "--labels", help="CSV with columns path and label (live, or the attack type)."),
    out_dir: Path = typer.Option(Path("eval-results/pad"), "--out", help="Folder for results.json, plots and report.html."),
    model: Path | None = typer.Option(None, "--model", help="PAD model JSON (default: the configured / shipped one)."),
    as_json: bool = JsonOpt,
) -> None:
    """Presentation-attack detection in ISO/IEC 30107-3 terms: APCER per attack type, BPCER,
    ACER, BPCER at APCER 10% / 1%, DET curve, score distributions, the misclassified images;
    and how far these captures are from the model's training captures (how many it answers
    with confidence: low, and why) beside its figures on set-ups it never saw."""
    import numpy as np

    from faceprint.evaluation.pad import pad_report, read_labels
    from faceprint.liveness.pad import features_of

    with cli_errors(as_json):
        if out_dir.exists() and not out_dir.is_dir():
            raise InputError("--out must be a folder, and a file of that name exists", source=str(out_dir))
        engine = make_engine(pad_model=str(model) if model else None, min_face_score=0.5)
        items = read_labels(labels)
        with progress(len(items), "scoring", not as_json) as step:
            feats, kept, failed = features_of(engine, items, progress=step)
        pm = engine.pad_model
        scores = np.array([pm.score_features(f) for f in feats])
        res = pad_report(
            scores,
            [it.label for it in kept],
            [str(it.path) for it in kept],
            out_dir,
            threshold=engine.pad_threshold,
            title=f"Presentation-attack detection: {labels.name}",
            failures=failed,
            extra={"labels": str(labels), "model": pm.version, "mode": pm.mode},
            support=[pm.support_of(f) for f in feats] if pm.support is not None else None,
            model_figures=pm.meta.get("leave_one_source_out"),
        )
        _summary(
            res,
            [
                ("bona fide / attacks", f"{res['bona_fide']} / {res['attacks']}"),
                ("APCER", res["apcer"]),
                ("BPCER", res["bpcer"]),
                ("ACER", res["acer"]),
                ("BPCER at APCER 10%", res["bpcer_at_apcer"]["10%"]),
                ("BPCER at APCER 1%", res["bpcer_at_apcer"]["1%"]),
                *([("outside the training captures", res["support"]["outside_share"])] if "support" in res else []),
            ],
            as_json,
        )
