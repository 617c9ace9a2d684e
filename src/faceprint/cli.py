"""The ``faceprint`` command.  Every command calls the Engine and adds only I/O;
``--json`` prints machine-readable output.  Exit codes: 0 ok, 1 unexpected error,
2 bad input (unreadable image, no face, bad argument), 3 model problem."""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from faceprint.errors import FaceprintError, InputError, NoFaceError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Offline face identity: detect, embed, verify at a stated false-match rate, evaluate.")
eval_app = typer.Typer(no_args_is_help=True, help="Measure accuracy on labelled data.")
app.add_typer(eval_app, name="eval")

out = Console()
err = Console(stderr=True)

JsonOpt = typer.Option(False, "--json", help="Print JSON instead of tables.")
CalOpt = typer.Option(None, "--calibration", help="Calibration table (JSON from `faceprint calibrate`); default: the one shipped for the model.")
MinScoreOpt = typer.Option(None, "--min-score", help="Detector score threshold (default 0.85).")
FaceOpt = typer.Option("largest", "--face", help="Which face to use when there are several: largest, center, single (error if several), or an index.")


def _engine(**overrides: Any):
    from faceprint.engine import Engine
    from faceprint.settings import Settings

    return Engine(Settings.load(**overrides))


@contextmanager
def _errors(as_json: bool) -> Iterator[None]:
    """Named faceprint errors become one clear line (or a JSON error object) and an exit code."""
    try:
        yield
    except FaceprintError as exc:
        reasons = getattr(exc, "reasons", None)
        if as_json:
            print(json.dumps({"error": {"code": exc.code, "message": str(exc), **({"reasons": reasons} if reasons else {})}}))
        else:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            for r in reasons or []:
                if r != str(exc):
                    err.print(f"  - {escape(r)}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=1, default=float))


@contextmanager
def _progress(total: int, what: str, enabled: bool = True) -> Iterator[Any]:
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=err, disable=not enabled, transient=False)
    with bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


@app.command()
def detect(
    image: Path = typer.Argument(..., help="Image file (JPEG, PNG, WebP, BMP, TIFF, GIF, PGM, HEIC)."),
    draw: Optional[Path] = typer.Option(None, "--draw", help="Write a copy of the image with boxes and landmarks (PNG/JPEG)."),
    min_score: Optional[float] = MinScoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Find every face: box, 5 landmarks, score."""
    with _errors(as_json):
        engine = _engine(min_face_score=min_score)
        img = engine.load(image)
        t0 = time.perf_counter()
        faces = engine.detect(img)
        ms = (time.perf_counter() - t0) * 1000
        if draw:
            from faceprint.drawing import draw_detections

            draw_detections(img, faces, draw)
        if as_json:
            _print_json({"image": str(image), "width": img.width, "height": img.height, "faces": [f.to_dict() for f in faces], "ms": round(ms, 1), "drawn": str(draw) if draw else None})
            return
        table = Table(title=f"{escape(str(image))} — {img.width}x{img.height}, {len(faces)} face(s), {ms:.0f} ms")
        for col in ("#", "x", "y", "w", "h", "score", "eye distance px"):
            table.add_column(col, justify="right")
        for i, f in enumerate(faces):
            x, y, w, h = f.box
            table.add_row(str(i), f"{x:.0f}", f"{y:.0f}", f"{w:.0f}", f"{h:.0f}", f"{f.score:.3f}", f"{f.interocular:.0f}")
        out.print(table)
        if draw:
            out.print(f"drawn: {escape(str(draw))}")


@app.command()
def embed(
    image: Path = typer.Argument(..., help="Image file."),
    face: str = FaceOpt,
    all_faces: bool = typer.Option(False, "--all", help="Embed every face in the image."),
    no_flip: bool = typer.Option(False, "--no-flip", help="Turn off horizontal-flip fusion (a different model id)."),
    as_json: bool = JsonOpt,
) -> None:
    """Face template(s): unit-length vectors tagged with the model id."""
    with _errors(as_json):
        engine = _engine(flip=False if no_flip else None)
        templates = engine.embed_all(image) if all_faces else [engine.embed(image, face=face)]
        if all_faces and not templates:
            raise NoFaceError("no face found", source=str(image))
        if as_json:
            _print_json({"image": str(image), "templates": [t.to_dict() for t in templates]})
            return
        for i, t in enumerate(templates):
            vec = ", ".join(f"{v:+.3f}" for v in t.vector[:6])
            out.print(f"face {i}: model [bold]{t.model_id}[/], {t.vector.size}-d, box {tuple(round(v) for v in t.detection.box)}  [{vec}, …]")


@app.command()
def verify(
    a: Path = typer.Argument(..., help="First image."),
    b: Path = typer.Argument(..., help="Second image."),
    fmr: Optional[float] = typer.Option(None, "--fmr", help="False-match rate the decision threshold is chosen for (default 1e-3)."),
    face: str = FaceOpt,
    calibration: Optional[Path] = CalOpt,
    require_liveness: Optional[bool] = typer.Option(None, "--require-liveness/--no-require-liveness", help="Refuse a photo whose face looks like a print or a screen (default: FACEPRINT_REQUIRE_LIVENESS_VERIFY)."),
    as_json: bool = JsonOpt,
) -> None:
    """Are two faces the same person?  Reports score, threshold and the FMR it stands for."""
    with _errors(as_json):
        if fmr is not None and not 0 < fmr < 1:
            raise InputError(f"--fmr must be between 0 and 1, got {fmr}")
        engine = _engine(calibration=str(calibration) if calibration else None)
        result = engine.verify(a, b, fmr=fmr, face=face, require_liveness=require_liveness)
        d = result.decision
        if as_json:
            _print_json(result.to_dict())
            return
        verdict = "[bold green]SAME PERSON[/]" if d.match else "[bold red]DIFFERENT PEOPLE[/]"
        out.print(f"{verdict}  score {d.score:.4f}  threshold {d.threshold:.4f} (FMR {d.fmr:g}, calibration {d.calibration})")
        out.print(f"an impostor pair scores this high with probability ≈ {d.score_fmr:.2g}; model {d.model_id}")


@app.command()
def quality(
    image: Path = typer.Argument(..., help="Image file."),
    face: str = FaceOpt,
    all_faces: bool = typer.Option(False, "--all", help="Assess every face in the image."),
    as_json: bool = JsonOpt,
) -> None:
    """Face quality: every component (raw value and 0-100 score), the unified 0-100 score,
    and whether enrolment would accept the face (and why not)."""
    from faceprint.quality.gate import is_low, problems

    with _errors(as_json):
        engine = _engine()
        templates = engine.embed_all(image) if all_faces else [engine.embed(image, face=face)]
        if all_faces and not templates:
            raise NoFaceError("no face found", source=str(image))
        rows = []
        for t in templates:
            q = t.quality
            assert q is not None and t.detection is not None
            why = problems(q, engine.settings)
            rows.append({"face": t.detection.to_dict(), **q.to_dict(), "enrolable": not why, "reasons": why, "low_quality": is_low(q, engine.settings)})
        if as_json:
            _print_json({"image": str(image), "faces": rows} if all_faces else {"image": str(image), **rows[0]})
            return
        for i, (t, r) in enumerate(zip(templates, rows)):
            q = t.quality
            assert q is not None
            table = Table(title=f"{escape(str(image))} — face {i}: unified quality [bold]{q.unified}[/]/100 (model {q.model})")
            for col in ("component", "raw", "unit", "score"):
                table.add_column(col, justify="right" if col != "component" else "left")
            for name, c in q.components.items():
                raw = "—" if c.raw is None else (f"{c.raw:.3f}" if abs(c.raw) < 10 else f"{c.raw:.1f}")
                score = "—" if c.score is None else (f"[red]{c.score}[/]" if c.score < 50 else str(c.score))
                table.add_row(name, raw, c.unit, score)
            out.print(table)
            if r["enrolable"]:
                out.print("[green]enrolment would accept this face[/]")
            else:
                out.print("[red]enrolment would refuse this face:[/] " + escape("; ".join(r["reasons"])))


@app.command()
def models(as_json: bool = JsonOpt) -> None:
    """The models faceprint knows: id, version, file, sha256, licence, source package, availability."""
    from faceprint.models.registry import list_models

    rows = [s.to_dict() for s in list_models()]
    if as_json:
        _print_json(rows)
        return
    table = Table(title="faceprint models (faceprint models --json for paths and full checksums)")
    table.add_column("id", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("licence", no_wrap=True)
    table.add_column("installed by", overflow="fold")
    table.add_column("ok", no_wrap=True)
    table.add_column("sha256", no_wrap=True)
    for r in rows:
        pkg = escape(r["package"] + (f" [extra {r['extra']}]" if r["extra"] else ""))
        table.add_row(r["id"], r["kind"], r["licence"], pkg, "yes" if r["available"] else "[red]no[/]", (r["sha256"] or "—")[:8])
    out.print(table)


@app.command()
def calibrate(
    out_file: Path = typer.Option(..., "--out", help="Where to write the calibration table (JSON)."),
    folders: Optional[Path] = typer.Option(None, "--folders", help="Root of <identity>/<images> folders: all same-identity pairs are genuine, all others impostors."),
    pairs: Optional[Path] = typer.Option(None, "--pairs", help="Labelled pairs: LFW pairs.txt (needs --root) or CSV a,b,same."),
    root: Optional[Path] = typer.Option(None, "--root", help="Image root for --pairs."),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the table (default: the input folder/file name)."),
    as_json: bool = JsonOpt,
) -> None:
    """Recompute the score↔FMR table from your own labelled data."""
    from faceprint.evaluation.pairs import read_pairs
    from faceprint.evaluation.protocol import calibrate_folders, calibrate_pairs

    with _errors(as_json):
        if (folders is None) == (pairs is None):
            raise InputError("give exactly one of --folders DIR or --pairs FILE")
        if not out_file.parent.is_dir():
            raise InputError("the folder to write the calibration table into does not exist", source=str(out_file))
        engine = _engine()
        if folders is not None:
            from faceprint.evaluation.pairs import identity_folders

            total = len(identity_folders(folders)[0])
            with _progress(total, "embedding", not as_json) as step:
                table, stats = calibrate_folders(engine, folders, name=name or folders.name, progress=step)
        else:
            plist = read_pairs(pairs, root)
            total = len({p.a for p in plist} | {p.b for p in plist})
            with _progress(total, "embedding", not as_json) as step:
                table, stats = calibrate_pairs(engine, plist, name=name or pairs.stem, source=f"labelled pairs {pairs}", progress=step)
        try:
            table.save(out_file)
        except OSError as exc:
            raise InputError(f"cannot write the calibration table: {exc.strerror or exc}", source=str(out_file)) from None
        summary = {"out": str(out_file), "model_id": table.model_id, **stats, "thresholds": {f"{f:g}": t for f, t in zip(table.fmr_grid, table.thresholds) if f >= table.min_fmr}}
        if as_json:
            _print_json(summary)
            return
        t = Table(title=f"calibration {table.name} ({stats['impostor']:,} impostor / {stats['genuine']:,} genuine scores) → {escape(str(out_file))}")
        for col in ("FMR", "threshold", "FNMR"):
            t.add_column(col, justify="right")
        for f, thr, fn in zip(table.fmr_grid, table.thresholds, table.fnmr):
            if f >= table.min_fmr:
                t.add_row(f"{f:g}", f"{thr:.4f}", "—" if fn != fn else f"{fn:.4f}")
        out.print(t)


@eval_app.command("pairs")  # the first report; `eval verify --pairs` adds DET, the threshold table and report.html
def eval_pairs(
    pairs: Path = typer.Option(..., "--pairs", help="LFW-format pairs.txt (or CSV a,b,same)."),
    root: Optional[Path] = typer.Option(None, "--root", help="Folder with <Name>/<Name>_NNNN.jpg."),
    out_dir: Path = typer.Option(Path("eval-results"), "--out", help="Folder for results.json, roc.png, scores.png."),
    face: str = typer.Option("center", "--face", help="Face to use in each image (LFW labels the central face)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use only the first N pairs of each fold and class (smoke runs)."),
    as_json: bool = JsonOpt,
) -> None:
    """k-fold accuracy, ROC AUC, EER, TAR at FAR 1e-2 / 1e-3, ROC plot."""
    from faceprint.evaluation.pairs import limit_pairs, read_pairs
    from faceprint.evaluation.protocol import score_pairs, verification_report, write_report

    with _errors(as_json):
        if out_dir.exists() and not out_dir.is_dir():
            raise InputError("--out must be a folder, and a file of that name exists", source=str(out_dir))
        plist = read_pairs(pairs, root)
        if limit:
            plist = limit_pairs(plist, limit)
        engine = _engine()
        total = len({p.a for p in plist} | {p.b for p in plist})
        t0 = time.perf_counter()
        with _progress(total, "embedding", not as_json) as step:
            ps = score_pairs(engine, plist, face=face, progress=step)
        report = verification_report(ps)
        report["model_id"] = engine.model_id
        report["seconds"] = round(time.perf_counter() - t0, 1)
        try:
            report["files"] = write_report(report, ps, out_dir, title=f"{pairs.name}: {engine.model_id}", label=engine.model_id)
        except OSError as exc:
            raise InputError(f"cannot write the results: {exc.strerror or exc}", source=str(out_dir)) from None
        if as_json:
            _print_json(report)
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


# --- gallery ---------------------------------------------------------------------
subjects_app = typer.Typer(no_args_is_help=True, help="List, show, rename and delete enrolled subjects.")
app.add_typer(subjects_app, name="subjects")
DbOpt = typer.Option(None, "--db", help="Gallery database (default $FACEPRINT_DB or gallery.db in your data directory).")


def _gallery(db: Optional[Path]):
    from faceprint.gallery import Gallery

    return Gallery(db, _engine())


@app.command()
def enroll(
    name: str = typer.Argument(..., help="Subject name (created if new)."),
    images: list[Path] = typer.Argument(..., help="One or more photos of the subject."),
    face: str = typer.Option("single", "--face", help="Photos with several faces are refused unless you choose: largest, center, or an index."),
    keep_images: bool = typer.Option(False, "--keep-images", help="Also store the photos, so `subjects reembed` can remake templates for a new model."),
    no_quality_check: bool = typer.Option(False, "--no-quality-check", help="Enrol faces even when they fail the quality gate (see `faceprint quality`)."),
    require_liveness: Optional[bool] = typer.Option(None, "--require-liveness/--no-require-liveness", help="Refuse faces that look like a print or a screen (default: FACEPRINT_REQUIRE_LIVENESS_ENROL)."),
    db: Optional[Path] = DbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Enrol a subject from photos (one template per photo).  Faces that fail the quality
    gate (too small, turned away, too poor overall) are refused with the reason."""
    with _errors(as_json):
        with _gallery(db) as gallery:
            res = gallery.enroll(name, list(images), face=face, keep_images=keep_images, check_quality=not no_quality_check, check_liveness=require_liveness)
        if as_json:
            _print_json(res.to_dict())
            return
        out.print(f"enrolled [bold]{escape(res.subject.name)}[/]: {len(res.template_ids)} template(s) added, {res.subject.templates} in total")
        for src, exc in res.rejected:
            err.print(f"[yellow]skipped[/] {escape(str(exc))}", highlight=False, soft_wrap=True)


@app.command()
def identify(
    image: Path = typer.Argument(..., help="Photo of the person to look up."),
    k: int = typer.Option(5, "--k", help="How many candidates to list."),
    fpir: float = typer.Option(1e-3, "--fpir", help="False-positive identification rate the open-set threshold is chosen for."),
    face: str = FaceOpt,
    db: Optional[Path] = DbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Who is this?  Top-k enrolled subjects and an open-set decision at a stated FPIR."""
    with _errors(as_json):
        with _gallery(db) as gallery:
            res = gallery.identify(image, k=k, fpir=fpir, face=face)
        if as_json:
            _print_json(res.to_dict())
            return
        if res.match:
            out.print(f"[bold green]{escape(res.match.name)}[/]  score {res.match.score:.4f} ≥ threshold {res.threshold:.4f} (FPIR {fpir:g}, {res.gallery_templates:,} templates)")
        else:
            out.print(f"[bold red]not enrolled[/]: no subject reaches threshold {res.threshold:.4f} (FPIR {fpir:g}, {res.gallery_templates:,} templates)")
        if res.note:
            err.print(f"[yellow]note:[/] {escape(res.note)}", soft_wrap=True)
        t = Table()
        for col in ("rank", "subject", "score"):
            t.add_column(col, justify="right")
        for i, c in enumerate(res.candidates, 1):
            t.add_row(str(i), escape(c.name), f"{c.score:.4f}")
        out.print(t)


@subjects_app.command("consistency")
def subjects_consistency(
    name: str = typer.Argument(..., help="Enrolled subject."),
    image: Path = typer.Argument(..., help="New photo claimed to be this subject."),
    face: str = FaceOpt,
    z: float = typer.Option(-3.0, "--z", help="Flag the face when its z-score is below this."),
    db: Optional[Path] = DbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Identity-aware check: does a new photo agree with the subject's enrolled references as
    well as they agree with each other?  A face far below (another person, or a face generated
    to resemble them) is flagged as an outlier."""
    with _errors(as_json):
        with _gallery(db) as gallery:
            res = gallery.consistency(image, name, face=face, z_threshold=z)
        if as_json:
            _print_json({"subject": name, "image": str(image), **res.to_dict()})
            return
        verdict = "[bold red]OUTLIER[/]" if res.outlier else "[bold green]CONSISTENT[/]"
        out.print(f"{verdict}  z = {res.z:.2f} (flagged below {z:g}); best similarity {res.best:.3f} against the references' own {res.reference_mean:.3f} ± {res.reference_std:.3f} "
                  f"({res.references} references)")


@subjects_app.command("list")
def subjects_list(db: Optional[Path] = DbOpt, as_json: bool = JsonOpt) -> None:
    """Every enrolled subject with its template count."""
    with _errors(as_json):
        with _gallery(db) as gallery:
            rows = gallery.subjects()
        if as_json:
            _print_json([s.to_dict() for s in rows])
            return
        t = Table(title=f"{len(rows)} subject(s)")
        for col in ("name", "templates", "models", "updated"):
            t.add_column(col)
        for s in rows:
            t.add_row(escape(s.name), str(s.templates), ", ".join(s.models), s.updated)
        out.print(t)


@subjects_app.command("show")
def subjects_show(name: str, db: Optional[Path] = DbOpt, as_json: bool = JsonOpt) -> None:
    """One subject and its templates (where each came from)."""
    with _errors(as_json):
        with _gallery(db) as gallery:
            subject = gallery.subject(name)
            templates = gallery.store.templates(subject_id=subject.id)
        if as_json:
            _print_json({**subject.to_dict(), "template_list": [t.to_dict() for t in templates]})
            return
        out.print(f"[bold]{escape(subject.name)}[/]  id {subject.id}, {subject.templates} template(s), created {subject.created}")
        for t in templates:
            out.print(f"  #{t.id} {t.model_id}  {escape(t.source or '')}  face score {t.face_score or 0:.2f}")


@subjects_app.command("rename")
def subjects_rename(old: str, new: str, db: Optional[Path] = DbOpt, as_json: bool = JsonOpt) -> None:
    """Rename a subject."""
    with _errors(as_json):
        with _gallery(db) as gallery:
            subject = gallery.rename(old, new)
        if as_json:
            _print_json(subject.to_dict())
            return
        out.print(f"renamed {escape(old)} → [bold]{escape(subject.name)}[/]")


@subjects_app.command("reembed")
def subjects_reembed(db: Optional[Path] = DbOpt, as_json: bool = JsonOpt) -> None:
    """After a model change: remake templates from kept photos; list subjects that need new photos."""
    with _errors(as_json):
        with _gallery(db) as gallery:
            res = gallery.reembed()
            model = gallery.model_id
        if as_json:
            _print_json({**res, "model_id": model})
            return
        out.print(f"model {model}: re-embedded {len(res['reembedded'])} subject(s) from kept photos")
        if res["need_new_photos"]:
            out.print("need new photos (enrolled without --keep-images): " + ", ".join(escape(n) for n in res["need_new_photos"]))


@subjects_app.command("delete")
def subjects_delete(name: str, db: Optional[Path] = DbOpt, as_json: bool = JsonOpt) -> None:
    """Erase a subject from every file: database rows zeroed, kept photos and audit details
    gone, write-ahead log truncated, index saved without its templates."""
    with _errors(as_json):
        with _gallery(db) as gallery:
            erased = gallery.erase(name)
        if as_json:
            _print_json({"deleted": name, **erased})
            return
        out.print(
            f"erased {escape(name)}: {erased['templates']} template(s), {erased['kept_photos']} kept photo(s), "
            f"{erased['audit_entries_redacted']} audit entr{'y' if erased['audit_entries_redacted'] == 1 else 'ies'} redacted; "
            f"index saved; write-ahead log {'truncated' if erased['wal_truncated'] else 'to be truncated when other readers close'}"
        )


@app.command()
def demo(
    data: Path = typer.Option(Path(os.environ.get("FACEPRINT_DATA", "../shared/data")), "--data", help="The shared data folder (env FACEPRINT_DATA)."),
    as_json: bool = JsonOpt,
) -> None:
    """End-to-end demo on the sample photos: detect faces, verify pairs, print tables."""
    from faceprint.demo import run_demo

    with _errors(as_json):
        run_demo(_engine(), data, console=out, as_json=as_json)


encryption_app = typer.Typer(no_args_is_help=True, help="Encryption at rest of templates, thumbnails and kept photos: status, enable, rotate the key.")
app.add_typer(encryption_app, name="encryption")
LibOpt = typer.Option(None, "--library", help="Photo library (default $FACEPRINT_LIBRARY or library.db in your data directory).")


def _stores(db: Optional[Path], library: Optional[Path]) -> list[tuple[str, Path]]:
    """The databases a command acts on: those given, else the default gallery and library that exist."""
    from faceprint.gallery.gallery import default_db_path
    from faceprint.library.store import default_library_path

    if db is None and library is None:
        found = [("gallery", default_db_path()), ("library", default_library_path())]
        return [(k, p) for k, p in found if p.is_file()]
    for p in (db, library):
        if p is not None and not p.is_file():
            raise InputError("no such database", source=str(p))
    return [(k, p) for k, p in (("gallery", db), ("library", library)) if p is not None]


def _open_store(kind: str, path: Path) -> Any:
    from faceprint.gallery.store import Store
    from faceprint.library.store import LibraryStore

    return (Store if kind == "gallery" else LibraryStore)(path, encrypt=False)


def _forget_index(kind: str, path: Path) -> bool:
    """Shred a gallery's saved index (rebuilt, sealed with the current key, on the next open)."""
    from faceprint.crypto import shred
    from faceprint.gallery.gallery import index_path_for
    from faceprint.gallery.index import header_path

    if kind != "gallery":
        return False
    index = index_path_for(path)
    shred(header_path(index))
    return shred(index)


@encryption_app.command("status")
def encryption_status(db: Optional[Path] = DbOpt, library: Optional[Path] = LibOpt, as_json: bool = JsonOpt) -> None:
    """Which databases are encrypted, and with which master key (its id, never the key)."""
    from faceprint.crypto import current_master_key, default_key_file

    with _errors(as_json):
        rows = []
        for kind, path in _stores(db, library):
            with _open_store(kind, path) as store:
                rec = store.read("SELECT value FROM meta WHERE key='encryption'")
                rows.append({"kind": kind, "path": str(path), "encrypted": store.encrypted,
                             "master_key_id": json.loads(rec[0][0])["master_key_id"] if rec else None})
        key = current_master_key(create=False) if (os.environ.get("FACEPRINT_KEY") or default_key_file().exists()) else None
        data = {"key": {"source": key.source if key else str(default_key_file()), "id": key.id if key else None}, "databases": rows}
        if as_json:
            _print_json(data)
            return
        out.print(f"master key: {escape(data['key']['source'])}  id {data['key']['id'] or '(none yet)'}")
        for r in rows:
            state = f"encrypted (master key {r['master_key_id']})" if r["encrypted"] else "[yellow]not encrypted[/]: faceprint encryption enable"
            out.print(f"{r['kind']} {escape(r['path'])}: {state}")


@encryption_app.command("enable")
def encryption_enable(db: Optional[Path] = DbOpt, library: Optional[Path] = LibOpt, as_json: bool = JsonOpt) -> None:
    """Encrypt an existing clear database in place: every template, thumbnail and kept photo is
    sealed in one transaction, the log truncated, the file vacuumed, a gallery's clear index
    shredded (rebuilt sealed on the next open).  Stop servers using it first."""
    with _errors(as_json):
        done = []
        for kind, path in _stores(db, library):
            with _open_store(kind, path) as store:
                was = store.encrypted
                counts = store.encrypt_now()
            shredded = _forget_index(kind, path) if not was else False
            done.append({"kind": kind, "path": str(path), "already_encrypted": was, "sealed": counts, "index_shredded": shredded})
        if as_json:
            _print_json(done)
            return
        for d in done:
            if d["already_encrypted"]:
                out.print(f"{d['kind']} {escape(d['path'])}: already encrypted")
            else:
                sealed = ", ".join(f"{n} {c}" for c, n in d["sealed"].items())
                out.print(f"{d['kind']} {escape(d['path'])}: encrypted ({sealed}){'; clear index shredded' if d['index_shredded'] else ''}")


@encryption_app.command("rotate")
def encryption_rotate(
    db: Optional[Path] = DbOpt,
    library: Optional[Path] = LibOpt,
    reencrypt: bool = typer.Option(False, "--reencrypt", help="Also give each database a new data key and re-seal everything under it (slower)."),
    as_json: bool = JsonOpt,
) -> None:
    """New master key in the key file (the old one kept as key.previous); the databases given
    (default: the default gallery and library) are re-wrapped now, others when next opened --
    as long as key.previous is kept (a second rotation replaces it)."""
    from faceprint.crypto import rotate_master_key

    with _errors(as_json):
        targets = _stores(db, library)
        old, new = rotate_master_key()
        done = []
        for kind, path in targets:
            with _open_store(kind, path) as store:  # opening re-wraps a data key under the new master key
                counts = store.encrypt_now(new_data_key=True) if reencrypt else {}
            done.append({"kind": kind, "path": str(path), "resealed": counts, "index_shredded": _forget_index(kind, path) if reencrypt else False})
        data = {"old_key_id": old.id, "new_key_id": new.id, "databases": done}
        if as_json:
            _print_json(data)
            return
        out.print(f"master key {old.id} -> {new.id} (the old one is kept as key.previous)")
        for d in done:
            out.print(f"{d['kind']} {escape(d['path'])}: re-wrapped{' and re-sealed under a new data key' if d['resealed'] else ''}")


def _register_service() -> None:
    from faceprint.evaluation.cli_commands import register as register_eval
    from faceprint.library.cli_commands import register as register_library
    from faceprint.liveness.cli_commands import register as register_liveness
    from faceprint.service.cli_commands import register

    register_eval(eval_app)
    register_library(app)
    register_liveness(app, eval_app)
    register(app)


_register_service()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
