"""The checks of a face and the training of their models: ``liveness`` (print / screen attacks;
motion and head-turn challenges in video), ``synthetic`` (generated faces), ``train-pad`` and
``train-synthetic``; registered on the root command in :mod:`faceprint.cli` (their ``eval``
reports are in :mod:`faceprint.cli.eval`).  The logic is :mod:`faceprint.liveness`'s and
:mod:`faceprint.forensics`'s; these add I/O only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from faceprint.cli._common import FaceOpt, JsonOpt, cli_errors, make_engine, out, print_json, progress
from faceprint.errors import InputError


def liveness(
    source: Path = typer.Argument(..., help="Image file, or a video clip (mp4, mov, avi, mkv, webm)."),
    face: str = FaceOpt,
    challenge: str | None = typer.Option(
        None, "--challenge", help="Video only: the head turns asked of the person, in order, e.g. 'left,right' (the person's own left)."
    ),
    turn_angle: float = typer.Option(15.0, "--turn-angle", help="--challenge: degrees the head must turn from its starting pose."),
    within: float = typer.Option(4.0, "--within", help="--challenge: seconds allowed for each request (from the previous one met, or the clip's start)."),
    step: int = typer.Option(2, "--step", help="Video: use every N-th frame."),
    as_json: bool = JsonOpt,
) -> None:
    """Is this a live person?  Image: the presentation-attack detectors (print, screen) with
    their evidence.  Video: also whether the face moves like a 3-D head or a flat picture;
    with --challenge, whether the head turns as asked, in order and in time."""
    from faceprint.liveness.video import video_liveness
    from faceprint.media import is_video

    with cli_errors(as_json):
        engine = make_engine()
        if not source.exists():
            raise InputError("file not found", source=str(source))
        if is_video(source):
            res = video_liveness(engine, source, step=step, challenge=challenge, turn_angle=turn_angle, within=within)
        else:
            if challenge:
                raise InputError("--challenge needs a video")
            image, det = engine.pick(source, face=face)
            lv = engine.liveness_of(image, det)
            res = {"input": str(source), "kind": "image", **lv.to_dict(), "face": det.to_dict()}
        if as_json:
            print_json(res)
            return
        verdict = "[bold green]LIVE[/]" if res["live"] else "[bold red]NOT LIVE[/]"
        out.print(f"{verdict}  score {res['score']:.3f} (threshold {res['threshold']:g}; higher = more likely live)")
        if res["kind"] == "video":
            m = res["motion"]
            out.print(
                f"motion: {escape(res['reason'])}; planar residual {m['score'] if m['score'] is not None else '—'} % of face width "
                f"(threshold {m['threshold']}), {m['informative_pairs']} informative frame pairs"
            )
            out.print(f"single-image detectors: median score {res['pad']['median_score']} over {res['pad']['frames_scored']} frames")
            if "challenge" in res:
                out.print(f"challenge: {escape(res['challenge']['reason'])}")
        else:
            out.print("detectors: " + ", ".join(f"{k} {v:.3f}" for k, v in res["detectors"].items()) + f"  (model {res['model']}, {res['mode']})")
            op = res.get("operating_point")
            if op:
                out.print(f"at this threshold: APCER {op['apcer']:.2%}, BPCER {op['bpcer']:.2%} (measured on {escape(op['measured_on'])})")
            for e in res["evidence"]:
                out.print(f"  - {escape(e)}")
        if res.get("confidence") == "low":
            out.print("[bold yellow]low confidence[/]: this capture lies outside what the model was trained on; the error rates above do not cover it")
            for r in res["confidence_reasons"]:
                out.print(f"  - {escape(r)}")
            if res.get("retake_advice"):
                out.print("to retake: " + escape("; ".join(res["retake_advice"])))
            elif res.get("kind") != "video":
                out.print("a retake with this camera will not change that: train-pad on this deployment's own captures")


def synthetic(
    image: Path = typer.Argument(..., help="Image file."),
    face: str = FaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Is this face generated (GAN / diffusion) rather than photographed?  Verdict: synthetic
    (strong evidence), cannot tell (and why), or no evidence -- which is not evidence of a real
    photo.  Score 0-1, higher = more like the generated faces the model was fitted on; what it
    catches and misses is measured in the README."""

    with cli_errors(as_json):
        engine = make_engine()
        img, det = engine.pick(image, face=face)
        res = {"input": str(image), **engine.synthetic_of(img, det).to_dict(), "face": det.to_dict()}
        if as_json:
            print_json(res)
            return
        verdict = {"synthetic": "[bold red]SYNTHETIC[/]", "cannot tell": "[bold yellow]CANNOT TELL[/]"}.get(
            res["verdict"], "[bold]NO EVIDENCE OF GENERATION[/]"
        )
        out.print(f"{verdict}  score {res['score']:.3f} (threshold {res['threshold']:g}; higher = more like generated faces; model {res['model']})")
        for e in res["evidence"] if res["verdict"] != "cannot tell" else res["cannot_tell"]:
            out.print(f"  - {escape(e)}")
        if res.get("note"):
            out.print(f"[dim]{escape(res['note'])}[/]")


def train_pad(
    labels: list[Path] = typer.Option(
        ...,
        "--labels",
        help="CSV with columns path, label (live, or the attack type e.g. spoof_print) and optionally subject; give it once per source (capture set-up): "
        "with two or more, each is also scored by a model trained without it.",
    ),
    out_path: Path = typer.Option(..., "--out", help="Where to write the model JSON (use it with FACEPRINT_PAD_MODEL)."),
    one_class: bool = typer.Option(False, "--one-class", help="Train on the bona fide faces only (no attack samples needed)."),
    group_column: str | None = typer.Option(
        None, "--group-column", help="Column naming each face's subject (default: subject if present, else the image's folder)."
    ),
    c: float = typer.Option(0.01, "--c", help="Inverse L2 regularisation of the logistic detectors (0.01: chosen by the cross-source figure)."),
    texture_cues: str = typer.Option(
        "portable", "--texture-cues", help="Texture features the texture detector reads: portable (luma texture, spectrum, colour moments) or all."
    ),
    components: int = typer.Option(20, "--components", help="One-class: PCA dimensions of the bona fide model."),
    version: str = typer.Option("pad-custom", "--version", help="Version string recorded in the model."),
    as_json: bool = JsonOpt,
) -> None:
    """Train a presentation-attack model on your own labelled captures, measured
    leave-one-subject-out (a subject's faces are never in both training and test)."""
    import json

    from faceprint.evaluation.pad import LabelledImage, read_labels
    from faceprint.liveness.pad import features_of
    from faceprint.liveness.training import train_pad as train

    with cli_errors(as_json):
        if c <= 0 or components < 1:
            raise InputError("--c must be positive and --components at least 1")
        engine = make_engine(min_face_score=0.5)
        items, source_of = [], {}
        for csv in labels:
            name = csv.parent.name if len(labels) > 1 else "all"
            for it in read_labels(csv, group_column=group_column):
                it = LabelledImage(it.path, it.label, f"{name}/{it.group}") if len(labels) > 1 else it  # a subject is one source's
                items.append(it)
                source_of[it.group] = name
        with progress(len(items), "features", not as_json) as step:
            feats, kept, failed = features_of(engine, items, progress=step)
        with progress(len({it.group for it in kept}), "leave-one-subject-out", not as_json) as step:
            model, ev = train(
                feats,
                [it.label for it in kept],
                [it.group for it in kept],
                one_class=one_class,
                c=c,
                components=components,
                version=version,
                progress=step,
                sources=[source_of[it.group] for it in kept] if len(labels) > 1 else None,
                texture_cues=texture_cues,
            )
        names = ", ".join(str(x) for x in labels)
        model["training"]["labels"] = names
        model["training"]["measured_on"] = f"{names}: " + model["training"]["measured_on"]
        model["training"]["no_face"] = len(failed)
        try:
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(model, indent=None, separators=(",", ":")))
        except OSError as exc:
            raise InputError(f"cannot write the model: {exc.strerror or exc}", source=str(out_path)) from None
        res = {
            "model": str(out_path),
            "mode": model["mode"],
            "faces": len(kept),
            "no_face": len(failed),
            **{k: ev.get(k) for k in ("groups", "threshold", "apcer", "bpcer", "acer", "bpcer_at_apcer", "auc")},
            "leave_one_subject_out_per_source": ev.get("per_source"),
            "leave_one_source_out": ev.get("leave_one_source_out"),
        }
        if as_json:
            print_json(res)
            return
        out.print(f"wrote {out_path} ({model['mode']}, {len(kept)} faces, {len(failed)} without a face)")
        if "acer" in ev:
            out.print(
                f"leave-one-subject-out over {ev['groups']} subjects: APCER {ev['apcer']:.4f}  BPCER {ev['bpcer']:.4f}  ACER {ev['acer']:.4f}  "
                f"BPCER@APCER10% {ev['bpcer_at_apcer']['10%']:.4f}  AUC {ev['auc']:.4f}"
            )
        cross = ev.get("leave_one_source_out")
        if cross and cross["per_source"]:
            out.print(
                f"leave-one-source-out (each source scored by a model that never saw it): mean ACER {cross['mean_acer']:.4f}, worst {cross['max_acer']:.4f}; "
                f"threshold {ev['threshold']:g} (where the worst source's ACER is lowest)"
            )
            for name, m in cross["per_source"].items():
                out.print(
                    f"  {name}: APCER {m['apcer']:.4f}  BPCER {m['bpcer']:.4f}  ACER {m['acer']:.4f}  AUC {m['auc']:.4f}  ({m['faces']} faces, "
                    f"{m['low_confidence']:.0%} outside the support of the others)"
                )


def train_synthetic(
    synthetic_sets: list[Path] = typer.Option(..., "--synthetic", help="Labels CSV (column path) of generated faces; repeat for several generators."),
    real: list[Path] = typer.Option(
        ...,
        "--real",
        help="Real face photos: a folder (searched recursively) or a labels CSV (its live / real rows); repeat for each source (camera, site, "
        "collection): the re-framed design needs two at least.",
    ),
    real_limit: int | None = typer.Option(None, "--real-limit", help="Use at most N real photos per folder or CSV (an even, deterministic spread)."),
    out_path: Path = typer.Option(..., "--out", help="Where to write the model JSON (use it with FACEPRINT_SYNTHETIC_MODEL)."),
    design: str = typer.Option(
        "reframed",
        "--design",
        help="reframed (the shipped synthetic-v2's: noise residuals learned with every face also re-framed, real photos aligned like FFHQ "
        "as negatives, layout clipped, operating point on an unseen real source) or layout-texture (v1: layout Gaussian and texture "
        "logistic, max-fused, 5-fold cross-validated).",
    ),
    thumbnails: list[str] = typer.Option(
        [], "--thumbnails", help="reframed: a --synthetic set (by name) already stored as small twice-JPEG-saved thumbnails; repeatable."
    ),
    detectors: str | None = typer.Option(
        None,
        "--detectors",
        help="layout-texture: detectors to fit, comma-separated: layout (default), texture (texture learns your real photos' sources: add "
        "it only when your inputs come from them).",
    ),
    c: float | None = typer.Option(None, "--c", help="Inverse L2 regularisation of the logistic detector (reframed 0.001, layout-texture 0.01)."),
    version: str = typer.Option("synthetic-custom", "--version", help="Version string recorded in the model."),
    as_json: bool = JsonOpt,
) -> None:
    """Train the synthetic-face model on your generated and real faces.  ``reframed`` (default)
    reports each real source's share flagged by a model that never saw it and each generator
    held out in turn; ``layout-texture`` reports 5-fold cross-validation over files.  Each
    ``--synthetic`` CSV is one generator and each ``--real`` one source (named by its folder)."""
    import json

    from faceprint.evaluation.datasets import group_synthetic_training

    with cli_errors(as_json):
        if design not in ("reframed", "layout-texture"):
            raise InputError(f"unknown --design {design!r}: use reframed or layout-texture")
        if design == "reframed" and detectors is not None:
            raise InputError("--detectors belongs to --design layout-texture; the reframed design fits its own (residual and layout)")
        gen, reals = group_synthetic_training(synthetic_sets, real, real_limit)
        unknown = sorted(set(thumbnails) - set(gen))
        if unknown:
            raise InputError(f"--thumbnails names no --synthetic set: {', '.join(unknown)} (the sets are: {', '.join(gen)})")
        engine = make_engine()
        if design == "reframed":
            res, model = _train_reframed(engine, gen, reals, version=version, c=c, thumbnails=thumbnails, as_json=as_json)
        else:
            res, model = _train_layout_texture(engine, gen, reals, version=version, c=c, detectors=detectors or "layout", as_json=as_json)
        model["training"].update({"synthetic_sets": [str(p) for p in synthetic_sets], "real_sources": [str(p) for p in real]})
        try:
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(model, separators=(",", ":")))
        except OSError as exc:
            raise InputError(f"cannot write the model: {exc.strerror or exc}", source=str(out_path)) from None
        res = {"model": str(out_path), "design": design, **res}
        if as_json:
            print_json(res)
            return
        if design == "layout-texture":
            out.print(
                f"wrote {out_path}: {res['synthetic']} synthetic, {res['real']} real faces ({res['no_face']} without a face); "
                f"5-fold AUC {res['auc']:.4f}, accuracy {res['accuracy']:.4f}; per detector AUC "
                + ", ".join(f"{k} {v:.4f}" for k, v in res["per_detector_auc"].items())
            )
            return
        out.print(f"wrote {out_path}: faces per set " + ", ".join(f"{k} {v}" for k, v in res["faces"].items()))
        out.print(
            "real photos aligned like FFHQ, each source scored by a model that never saw it (the operating point keeps 1% of these "
            "flagged, pooled): " + ", ".join(f"{k} {v:.1%}" for k, v in res["unseen_real_source_flagged"].items())
        )
        for g, v in res.get("generator_held_out", {}).items():
            out.print(
                f"  {g} held out: AUC {v['auc']:.4f} against real photos as they come, {v['auc_vs_ffhq_aligned_real']:.4f} against real "
                f"photos aligned like FFHQ; detected {v['detected']:.1%}"
            )


def _train_reframed(
    engine: Any, gen: dict[str, list[Path]], reals: dict[str, list[Path]], *, version: str, c: float | None, thumbnails: list[str], as_json: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    from faceprint.forensics.training import V2_C, train_reframed

    total = sum(map(len, gen.values())) + sum(map(len, reals.values()))
    with progress(total, "faces (and their re-framed copies)", not as_json) as step:
        model, report = train_reframed(engine, gen, reals, version=version, c=V2_C if c is None else c, thumbnails=thumbnails, progress=step)
    return report, model


def _train_layout_texture(
    engine: Any, gen: dict[str, list[Path]], reals: dict[str, list[Path]], *, version: str, c: float | None, detectors: str, as_json: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    from faceprint.forensics.synthetic import synthetic_set_features
    from faceprint.forensics.training import train_synthetic as train

    paths = [p for v in gen.values() for p in v] + [p for v in reals.values() for p in v]
    is_syn = [True] * sum(map(len, gen.values())) + [False] * sum(map(len, reals.values()))
    with progress(len(paths), "features", not as_json) as step:
        x, ok, failed = synthetic_set_features(engine, paths, progress=step)
    y = [s for s, k in zip(is_syn, ok) if k]
    model, ev = train(x, y, c=0.01 if c is None else c, version=version, detectors=[d.strip() for d in detectors.split(",") if d.strip()])
    ev.pop("oof")
    model["training"]["no_face"] = len(failed)
    return {**ev, "no_face": len(failed)}, model
