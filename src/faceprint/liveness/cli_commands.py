"""``faceprint liveness | synthetic | train-pad | train-synthetic`` and ``faceprint eval pad |
synthetic``: registered by :func:`register`.  Logic lives in :mod:`faceprint.liveness`; these
add I/O only."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

from faceprint.liveness.video import VIDEO_SUFFIXES, video_liveness


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    from faceprint.cli import FaceOpt, JsonOpt

    _eval_synthetic_register(eval_app)

    @app.command()
    def liveness(
        source: Path = typer.Argument(..., help="Image file, or a video clip (mp4, mov, avi, mkv, webm)."),
        face: str = FaceOpt,
        challenge: Optional[str] = typer.Option(None, "--challenge", help="Video only: the head turns asked of the person, in order, e.g. 'left,right' (the person's own left)."),
        turn_angle: float = typer.Option(15.0, "--turn-angle", help="--challenge: degrees the head must turn from its starting pose."),
        within: float = typer.Option(4.0, "--within", help="--challenge: seconds allowed for each request (from the previous one met, or the clip's start)."),
        step: int = typer.Option(2, "--step", help="Video: use every N-th frame."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Is this a live person?  Image: the presentation-attack detectors (print, screen) with
        their evidence.  Video: also whether the face moves like a 3-D head or a flat picture;
        with --challenge, whether the head turns as asked, in order and in time."""
        from faceprint.cli import _engine, _errors, _print_json, escape, out
        from faceprint.errors import InputError

        with _errors(as_json):
            engine = _engine()
            if not source.exists():
                raise InputError("file not found", source=str(source))
            if source.suffix.lower() in VIDEO_SUFFIXES:
                res = video_liveness(engine, source, step=step, challenge=challenge, turn_angle=turn_angle, within=within)
            else:
                if challenge:
                    raise InputError("--challenge needs a video")
                image, det = engine.pick(source, face=face)
                lv = engine.liveness_of(image, det)
                res = {"input": str(source), "kind": "image", **lv.to_dict(), "face": det.to_dict()}
            if as_json:
                _print_json(res)
                return
            verdict = "[bold green]LIVE[/]" if res["live"] else "[bold red]NOT LIVE[/]"
            out.print(f"{verdict}  score {res['score']:.3f} (threshold {res['threshold']:g}; higher = more likely live)")
            if res["kind"] == "video":
                m = res["motion"]
                out.print(f"motion: {escape(res['reason'])}; planar residual {m['score'] if m['score'] is not None else '—'} % of face width "
                          f"(threshold {m['threshold']}), {m['informative_pairs']} informative frame pairs")
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

    @app.command()
    def synthetic(
        image: Path = typer.Argument(..., help="Image file."),
        face: str = FaceOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Is this face generated (GAN / diffusion) rather than photographed?  Score 0-1, higher
        = more likely synthetic.  Measured on two generators only: see the README."""
        from faceprint.cli import _engine, _errors, _print_json, escape, out

        with _errors(as_json):
            engine = _engine()
            img, det = engine.pick(image, face=face)
            res = {"input": str(image), **engine.synthetic_of(img, det).to_dict(), "face": det.to_dict()}
            if as_json:
                _print_json(res)
                return
            verdict = "[bold red]SYNTHETIC[/]" if res["synthetic"] else "[bold green]NOT FLAGGED AS SYNTHETIC[/]"
            out.print(f"{verdict}  score {res['score']:.3f} (threshold {res['threshold']:g}; higher = more likely generated; model {res['model']})")
            for e in res["evidence"]:
                out.print(f"  - {escape(e)}")

    @app.command("train-pad")
    def train_pad(
        labels: Path = typer.Option(..., "--labels", help="CSV with columns path, label (live, or the attack type e.g. spoof_print) and optionally subject."),
        out_path: Path = typer.Option(..., "--out", help="Where to write the model JSON (use it with FACEPRINT_PAD_MODEL)."),
        one_class: bool = typer.Option(False, "--one-class", help="Train on the bona fide faces only (no attack samples needed)."),
        group_column: Optional[str] = typer.Option(None, "--group-column", help="Column naming each face's subject (default: subject if present, else the image's folder)."),
        c: float = typer.Option(0.3, "--c", help="Inverse L2 regularisation of the logistic detectors."),
        components: int = typer.Option(20, "--components", help="One-class: PCA dimensions of the bona fide model."),
        version: str = typer.Option("pad-custom", "--version", help="Version string recorded in the model."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Train a presentation-attack model on your own labelled captures, measured
        leave-one-subject-out (a subject's faces are never in both training and test)."""
        import json

        from faceprint.cli import _engine, _errors, _print_json, _progress, out
        from faceprint.errors import InputError
        from faceprint.evaluation.pad import read_labels
        from faceprint.liveness.pad import features_of, train

        with _errors(as_json):
            if c <= 0 or components < 1:
                raise InputError("--c must be positive and --components at least 1")
            engine = _engine(min_face_score=0.5)
            items = read_labels(labels, group_column=group_column)
            with _progress(len(items), "features", not as_json) as step:
                feats, kept, failed = features_of(engine, items, progress=step)
            with _progress(len({it.group for it in kept}), "leave-one-subject-out", not as_json) as step:
                model, ev = train(feats, [it.label for it in kept], [it.group for it in kept], one_class=one_class, c=c, components=components, version=version, progress=step)
            model["training"]["labels"] = str(labels)
            model["training"]["measured_on"] = f"{labels}: " + model["training"]["measured_on"]
            model["training"]["no_face"] = len(failed)
            try:
                out_path.parent.mkdir(parents=True, exist_ok=True)
                out_path.write_text(json.dumps(model, indent=None, separators=(",", ":")))
            except OSError as exc:
                raise InputError(f"cannot write the model: {exc.strerror or exc}", source=str(out_path)) from None
            res = {"model": str(out_path), "mode": model["mode"], "faces": len(kept), "no_face": len(failed), **{k: ev.get(k) for k in ("groups", "apcer", "bpcer", "acer", "bpcer_at_apcer", "auc")}}
            if as_json:
                _print_json(res)
                return
            out.print(f"wrote {out_path} ({model['mode']}, {len(kept)} faces, {len(failed)} without a face)")
            if "acer" in ev:
                out.print(f"leave-one-subject-out over {ev['groups']} subjects: APCER {ev['apcer']:.4f}  BPCER {ev['bpcer']:.4f}  ACER {ev['acer']:.4f}  "
                          f"BPCER@APCER10% {ev['bpcer_at_apcer']['10%']:.4f}  AUC {ev['auc']:.4f}")

    @app.command("train-synthetic")
    def train_synthetic(
        synthetic_sets: list[Path] = typer.Option(..., "--synthetic", help="Labels CSV (column path) of generated faces; repeat for several generators."),
        real: list[Path] = typer.Option(..., "--real", help="Real face photos: a folder (searched recursively) or a labels CSV (its live / real rows); repeatable."),
        real_limit: Optional[int] = typer.Option(None, "--real-limit", help="Use at most N real photos per folder or CSV (an even, deterministic spread)."),
        out_path: Path = typer.Option(..., "--out", help="Where to write the model JSON (use it with FACEPRINT_SYNTHETIC_MODEL)."),
        detectors: str = typer.Option("layout", "--detectors", help="Detectors to fit, comma-separated: layout, texture (texture learns your real photos' sources: add it only when your inputs come from them)."),
        c: float = typer.Option(0.01, "--c", help="Inverse L2 regularisation of the texture detector."),
        version: str = typer.Option("synthetic-custom", "--version", help="Version string recorded in the model."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Train the synthetic-face detector: generated faces against real photos, measured by
        5-fold cross-validation over files."""
        import json

        from faceprint.cli import _engine, _errors, _print_json, _progress, out
        from faceprint.errors import InputError
        from faceprint.liveness.synthetic import synthetic_set_features, train

        with _errors(as_json):
            paths, is_syn = collect_synthetic_training(synthetic_sets, real, real_limit)
            engine = _engine()
            with _progress(len(paths), "features", not as_json) as step:
                x, ok, failed = synthetic_set_features(engine, paths, progress=step)
            y = [s for s, k in zip(is_syn, ok) if k]
            model, ev = train(x, y, c=c, version=version, detectors=[d.strip() for d in detectors.split(",") if d.strip()])
            ev.pop("oof")
            model["training"].update({"synthetic_sets": [str(p) for p in synthetic_sets], "real_sources": [str(p) for p in real], "no_face": len(failed)})
            try:
                out_path.parent.mkdir(parents=True, exist_ok=True)
                out_path.write_text(json.dumps(model, separators=(",", ":")))
            except OSError as exc:
                raise InputError(f"cannot write the model: {exc.strerror or exc}", source=str(out_path)) from None
            res = {"model": str(out_path), **ev, "no_face": len(failed)}
            if as_json:
                _print_json(res)
                return
            out.print(f"wrote {out_path}: {ev['synthetic']} synthetic, {ev['real']} real faces ({len(failed)} without a face); "
                      f"5-fold AUC {ev['auc']:.4f}, accuracy {ev['accuracy']:.4f}; per detector AUC " + ", ".join(f"{k} {v:.4f}" for k, v in ev["per_detector_auc"].items()))

    @eval_app.command("pad")
    def eval_pad(
        labels: Path = typer.Option(..., "--labels", help="CSV with columns path and label (live, or the attack type)."),
        out_dir: Path = typer.Option(Path("eval-results/pad"), "--out", help="Folder for results.json, plots and report.html."),
        model: Optional[Path] = typer.Option(None, "--model", help="PAD model JSON (default: the configured / shipped one)."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Presentation-attack detection in ISO/IEC 30107-3 terms: APCER per attack type, BPCER,
        ACER, BPCER at APCER 10% / 1%, DET curve, score distributions, the misclassified images."""
        from faceprint.cli import _engine, _errors, _progress
        from faceprint.errors import InputError
        from faceprint.evaluation.cli_commands import summary
        from faceprint.evaluation.pad import pad_report, read_labels
        from faceprint.liveness.pad import features_of

        with _errors(as_json):
            if out_dir.exists() and not out_dir.is_dir():
                raise InputError("--out must be a folder, and a file of that name exists", source=str(out_dir))
            engine = _engine(pad_model=str(model) if model else None, min_face_score=0.5)
            items = read_labels(labels)
            with _progress(len(items), "scoring", not as_json) as step:
                feats, kept, failed = features_of(engine, items, progress=step)
            pm = engine.pad_model
            scores = np.array([pm.score_features(f) for f in feats])
            res = pad_report(scores, [it.label for it in kept], [str(it.path) for it in kept], out_dir, threshold=engine.settings.pad_threshold,
                             title=f"Presentation-attack detection: {labels.name}", failures=failed,
                             extra={"labels": str(labels), "model": pm.version, "mode": pm.mode})
            summary(res, [("bona fide / attacks", f"{res['bona_fide']} / {res['attacks']}"), ("APCER", res["apcer"]), ("BPCER", res["bpcer"]), ("ACER", res["acer"]),
                          ("BPCER at APCER 10%", res["bpcer_at_apcer"]["10%"]), ("BPCER at APCER 1%", res["bpcer_at_apcer"]["1%"])], as_json)


def _eval_synthetic_register(eval_app: typer.Typer) -> None:
    from faceprint.cli import JsonOpt

    @eval_app.command("synthetic")
    def eval_synthetic(
        synthetic_sets: list[Path] = typer.Option(..., "--synthetic", help="Labels CSV (column path) of one generator's faces; repeat per generator (named by the CSV's folder)."),
        real: list[Path] = typer.Option(..., "--real", help="Real face photos: a folder (searched recursively) or a labels CSV (its live / real rows); repeatable."),
        real_limit: Optional[int] = typer.Option(None, "--real-limit", help="Use at most N real photos per folder or CSV (an even, deterministic spread)."),
        out_dir: Path = typer.Option(Path("eval-results/synthetic"), "--out", help="Folder for results.json, plots and report.html."),
        model: Optional[Path] = typer.Option(None, "--model", help="Synthetic-face model JSON (default: the configured / shipped one)."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Synthetic-face detection: ROC AUC, detection rate and accuracy per generator against
        real photos, ROC curves and score distributions."""
        from faceprint.cli import _engine, _errors, _progress
        from faceprint.errors import InputError
        from faceprint.evaluation.cli_commands import summary
        from faceprint.evaluation.pad import read_labels, synthetic_report
        from faceprint.liveness.synthetic import synthetic_set_features

        with _errors(as_json):
            if out_dir.exists() and not out_dir.is_dir():
                raise InputError("--out must be a folder, and a file of that name exists", source=str(out_dir))
            engine = _engine(synthetic_model=str(model) if model else None)
            sm = engine.synthetic_model
            real_paths, _ = collect_synthetic_training([], real, real_limit, need_synthetic=False)
            sets = {}
            for csv_path in synthetic_sets:
                name = csv_path.resolve().parent.name
                sets[name if name not in sets else str(csv_path)] = [it.path for it in read_labels(csv_path)]
            total = len(real_paths) + sum(len(v) for v in sets.values())
            with _progress(total, "scoring", not as_json) as step:
                xr, _, failed = synthetic_set_features(engine, real_paths, progress=step)
                scores = {}
                for g, paths in sets.items():
                    x, _, f2 = synthetic_set_features(engine, paths, progress=step)
                    failed += f2
                    scores[g] = _scores(sm, x)
            if xr["layout"].shape[0] == 0 or any(s.size == 0 for s in scores.values()):
                raise InputError("no face found in the real photos or in one of the generated sets")
            res = synthetic_report(scores, _scores(sm, xr), out_dir, threshold=engine.settings.synthetic_threshold,
                                   extra={"model": sm.version, "no_face": len(failed)})
            summary(res, [("real faces flagged", res["real_flagged"])] + [(f"{g}: ROC AUC / detected", f"{v['auc']:.4f} / {v['detected']:.4f}") for g, v in res["generators"].items()], as_json)


def collect_synthetic_training(synthetic_sets: list[Path], real: list[Path], real_limit: int | None, *, need_synthetic: bool = True) -> tuple[list[Path], list[bool]]:
    """(paths, is-synthetic) from labels CSVs of generated faces and folders of real photos."""
    from faceprint.errors import InputError
    from faceprint.evaluation.pad import read_labels
    from faceprint.imaging import IMAGE_EXTENSIONS

    paths: list[Path] = []
    flags: list[bool] = []
    for s in synthetic_sets:
        for it in read_labels(s):
            paths.append(it.path)
            flags.append(True)
    from faceprint.liveness.pad import is_bona_fide

    for folder in real:
        if folder.is_file() and folder.suffix.lower() == ".csv":
            files = [it.path for it in read_labels(folder) if is_bona_fide(it.label)]
        elif folder.is_dir():
            files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            raise InputError("not a folder of real photos nor a labels CSV", source=str(folder))
        if real_limit and len(files) > real_limit:
            files = [files[int(i)] for i in np.floor(np.arange(real_limit) * (len(files) / real_limit))]
        paths += files
        flags += [False] * len(files)
    if all(flags) or (need_synthetic and not any(flags)):
        raise InputError("both synthetic faces (--synthetic) and real photos (--real) are needed")
    return paths, flags



def _scores(model: Any, feats: dict[str, np.ndarray]) -> np.ndarray:
    n = next(iter(feats.values())).shape[0]
    return np.array([model.score_features({k: v[i] for k, v in feats.items()}) for i in range(n)])
