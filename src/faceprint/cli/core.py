"""The core commands: ``detect``, ``embed``, ``verify``, ``quality``, ``models``, ``calibrate`` and
``demo``.  Each calls the Engine and adds only I/O; they are registered on the root command in
:mod:`faceprint.cli`."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from faceprint.cli._common import CalOpt, FaceOpt, JsonOpt, MinScoreOpt, cli_errors, make_engine, out, print_json, progress
from faceprint.errors import InputError, NoFaceError


def detect(
    image: Path = typer.Argument(..., help="Image file (JPEG, PNG, WebP, BMP, TIFF, GIF, PGM, HEIC)."),
    draw: Path | None = typer.Option(None, "--draw", help="Write a copy of the image with boxes and landmarks (PNG/JPEG)."),
    min_score: float | None = MinScoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Find every face: box, 5 landmarks, score."""
    with cli_errors(as_json):
        engine = make_engine(min_face_score=min_score)
        img = engine.load(image)
        t0 = time.perf_counter()
        faces = engine.detect(img)
        ms = (time.perf_counter() - t0) * 1000
        if draw:
            from faceprint.drawing import draw_detections

            draw_detections(img, faces, draw)
        if as_json:
            print_json(
                {
                    "image": str(image),
                    "width": img.width,
                    "height": img.height,
                    "faces": [f.to_dict() for f in faces],
                    "ms": round(ms, 1),
                    "drawn": str(draw) if draw else None,
                }
            )
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


def embed(
    image: Path = typer.Argument(..., help="Image file."),
    face: str = FaceOpt,
    all_faces: bool = typer.Option(False, "--all", help="Embed every face in the image."),
    no_flip: bool = typer.Option(False, "--no-flip", help="Turn off horizontal-flip fusion (a different model id)."),
    as_json: bool = JsonOpt,
) -> None:
    """Face template(s): unit-length vectors tagged with the model id."""
    with cli_errors(as_json):
        engine = make_engine(flip=False if no_flip else None)
        templates = engine.embed_all(image) if all_faces else [engine.embed(image, face=face)]
        if all_faces and not templates:
            raise NoFaceError("no face found", source=str(image))
        if as_json:
            print_json({"image": str(image), "templates": [t.to_dict() for t in templates]})
            return
        for i, t in enumerate(templates):
            vec = ", ".join(f"{v:+.3f}" for v in t.vector[:6])
            out.print(f"face {i}: model [bold]{t.model_id}[/], {t.vector.size}-d, box {tuple(round(v) for v in t.detection.box)}  [{vec}, …]")


def verify(
    a: Path = typer.Argument(..., help="First image."),
    b: Path = typer.Argument(..., help="Second image."),
    fmr: float | None = typer.Option(None, "--fmr", help="False-match rate the decision threshold is chosen for (default 1e-3)."),
    face: str = FaceOpt,
    calibration: Path | None = CalOpt,
    require_liveness: bool | None = typer.Option(
        None,
        "--require-liveness/--no-require-liveness",
        help="Refuse a photo whose face looks like a print or a screen (default: FACEPRINT_REQUIRE_LIVENESS_VERIFY).",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Are two faces the same person?  Reports score, threshold and the FMR it stands for."""
    with cli_errors(as_json):
        if fmr is not None and not 0 < fmr < 1:
            raise InputError(f"--fmr must be between 0 and 1, got {fmr}")
        engine = make_engine(calibration=str(calibration) if calibration else None)
        result = engine.verify(a, b, fmr=fmr, face=face, require_liveness=require_liveness)
        d = result.decision
        if as_json:
            print_json(result.to_dict())
            return
        verdict = "[bold green]SAME PERSON[/]" if d.match else "[bold red]DIFFERENT PEOPLE[/]"
        out.print(f"{verdict}  score {d.score:.4f}  threshold {d.threshold:.4f} (FMR {d.fmr:g}, calibration {d.calibration})")
        out.print(f"an impostor pair scores this high with probability ≈ {d.score_fmr:.2g}; model {d.model_id}")


def quality(
    image: Path = typer.Argument(..., help="Image file."),
    face: str = FaceOpt,
    all_faces: bool = typer.Option(False, "--all", help="Assess every face in the image."),
    as_json: bool = JsonOpt,
) -> None:
    """Face quality: every component (raw value and 0-100 score), the unified 0-100 score,
    and whether enrolment would accept the face (and why not)."""
    from faceprint.quality.gate import is_low, problems

    with cli_errors(as_json):
        engine = make_engine()
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
            print_json({"image": str(image), "faces": rows} if all_faces else {"image": str(image), **rows[0]})
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


def models(as_json: bool = JsonOpt) -> None:
    """The models faceprint knows: id, version, file, sha256, licence, source package, availability."""
    from faceprint.models.registry import list_models

    rows = [s.to_dict() for s in list_models()]
    if as_json:
        print_json(rows)
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


def calibrate(
    out_file: Path = typer.Option(..., "--out", help="Where to write the calibration table (JSON)."),
    folders: Path | None = typer.Option(
        None, "--folders", help="Root of <identity>/<images> folders: all same-identity pairs are genuine, all others impostors."
    ),
    pairs: Path | None = typer.Option(None, "--pairs", help="Labelled pairs: LFW pairs.txt (needs --root) or CSV a,b,same."),
    root: Path | None = typer.Option(None, "--root", help="Image root for --pairs."),
    name: str | None = typer.Option(None, "--name", help="Name of the table (default: the input folder/file name)."),
    as_json: bool = JsonOpt,
) -> None:
    """Recompute the score↔FMR table from your own labelled data."""
    from faceprint.evaluation.pairs import read_pairs
    from faceprint.evaluation.protocol import calibrate_folders, calibrate_pairs

    with cli_errors(as_json):
        if (folders is None) == (pairs is None):
            raise InputError("give exactly one of --folders DIR or --pairs FILE")
        if not out_file.parent.is_dir():
            raise InputError("the folder to write the calibration table into does not exist", source=str(out_file))
        engine = make_engine()
        if folders is not None:
            from faceprint.evaluation.pairs import identity_folders

            total = len(identity_folders(folders)[0])
            with progress(total, "embedding", not as_json) as step:
                table, stats = calibrate_folders(engine, folders, name=name or folders.name, progress=step)
        else:
            plist = read_pairs(pairs, root)
            total = len({p.a for p in plist} | {p.b for p in plist})
            with progress(total, "embedding", not as_json) as step:
                table, stats = calibrate_pairs(engine, plist, name=name or pairs.stem, source=f"labelled pairs {pairs}", progress=step)
        try:
            table.save(out_file)
        except OSError as exc:
            raise InputError(f"cannot write the calibration table: {exc.strerror or exc}", source=str(out_file)) from None
        summary = {
            "out": str(out_file),
            "model_id": table.model_id,
            **stats,
            "thresholds": {f"{f:g}": t for f, t in zip(table.fmr_grid, table.thresholds) if f >= table.min_fmr},
        }
        if as_json:
            print_json(summary)
            return
        t = Table(title=f"calibration {table.name} ({stats['impostor']:,} impostor / {stats['genuine']:,} genuine scores) → {escape(str(out_file))}")
        for col in ("FMR", "threshold", "FNMR"):
            t.add_column(col, justify="right")
        for f, thr, fn in zip(table.fmr_grid, table.thresholds, table.fnmr):
            if f >= table.min_fmr:
                t.add_row(f"{f:g}", f"{thr:.4f}", "—" if fn != fn else f"{fn:.4f}")
        out.print(t)


def demo(
    data: Path = typer.Option(Path(os.environ.get("FACEPRINT_DATA", "../shared/data")), "--data", help="The shared data folder (env FACEPRINT_DATA)."),
    as_json: bool = JsonOpt,
) -> None:
    """End-to-end demo on the sample photos: detect faces, verify pairs, print tables."""
    from faceprint.demo import run_demo

    with cli_errors(as_json):
        run_demo(make_engine(), data, console=out, as_json=as_json)
