"""The photo library's commands: ``index`` (find every face in a folder of photos and group them
into people) and ``people``; registered on the root command in :mod:`faceprint.cli`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from faceprint.cli._common import JsonOpt, bar_columns, cli_errors, err, make_engine, out, print_json
from faceprint.errors import InputError

LibraryDbOpt = typer.Option(
    None,
    "--db",
    help="Library database: a SQLite file or a postgresql://USER@HOST:PORT/DB URL (default $FACEPRINT_LIBRARY or library.db in your data directory).",
)


def index(
    folder: Path = typer.Argument(..., help="Folder of photos (searched recursively)."),
    db: str | None = LibraryDbOpt,
    workers: int | None = typer.Option(None, "--workers", help="Worker processes for detection and embedding (default: one per core)."),
    no_thumbnails: bool = typer.Option(
        False,
        "--no-thumbnails",
        help="Do not keep face thumbnails (setting FACEPRINT_LIBRARY_THUMBNAILS=0 does the same; the web UI then has no face pictures).",
    ),
    no_cluster: bool = typer.Option(False, "--no-cluster", help="Only index; do not group new faces into people."),
    ray: str | None = typer.Option(
        None,
        "--ray",
        help="Analyse on a Ray cluster: the HOST:PORT of its head (or auto), or 'local' to start one on this machine (see docs/scale-out.md).",
    ),
    ray_batch: int | None = typer.Option(None, "--ray-batch", min=1, help="Photos per batch handed to a Ray actor (default 16)."),
    as_json: bool = JsonOpt,
) -> None:
    """Index a folder of photos: find every face, then group new faces into people.

    Unchanged files are skipped, moved files keep their people, deleted ones leave the
    library; an interrupted run resumes where it stopped."""
    from faceprint.library import Library

    with cli_errors(as_json):
        bar = Progress(*bar_columns(), console=err, disable=as_json, transient=False)
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task({"check": "checking files", "analyse": "finding faces"}.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        with Library(db, make_engine()) as lib, bar:
            summary, result = lib.index(
                folder, workers=workers, thumbnails=False if no_thumbnails else None, progress=progress, cluster=not no_cluster, ray=ray, ray_batch=ray_batch
            )
            counts = lib.store.counts()
        data = {**summary.to_dict(), "library": counts, "clustering": None}
        if result is not None:
            data["clustering"] = {
                "new_people": result.new_people,
                "merges": result.merges,
                "attached_low_quality": result.attached,
                "link_threshold": round(result.link_threshold, 4),
            }
        if as_json:
            print_json(data)
            return
        out.print(
            f"[bold]{summary.files}[/] files: {summary.analysed} analysed, {summary.unchanged} unchanged, {summary.moved} moved, "
            f"{summary.duplicates} duplicates, {summary.removed} removed; {summary.faces} faces found ({summary.low_quality_faces} of low quality, kept and marked) in {summary.seconds:.1f} s"
        )
        out.print(f"library: {counts['photos']} photos, {counts['faces']} faces, {counts['people']} people ({counts['named']} named)")
        for e in summary.skipped[:20]:
            err.print(f"[yellow]skipped[/] {escape(e['path'])}: {escape(e['reason'])}", highlight=False, soft_wrap=True)
        for e in summary.errors[:20]:
            err.print(f"[yellow]skipped[/] {escape(e['path'])}: {escape(e['error'])}", highlight=False, soft_wrap=True)
        if len(summary.errors) > 20:
            err.print(f"... and {len(summary.errors) - 20} more errors (see --json)")


def people(
    db: str | None = LibraryDbOpt,
    recluster: bool = typer.Option(False, "--recluster", help="Group every face the user has not placed again from scratch (keeps names, merges, splits)."),
    unknown: bool = typer.Option(False, "--unknown", help="Also list faces that belong to nobody."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: a list of people, each with name (or null) and faces (each with the path of its photo)."),
) -> None:
    """List the people found in the library."""
    from faceprint.library import Library
    from faceprint.library.store import default_library_path
    from faceprint.postgres import is_postgres_url

    with cli_errors(as_json):
        path = db or default_library_path()
        if not is_postgres_url(path) and not Path(path).is_file():
            raise InputError("no photo library here; create one with `faceprint index FOLDER --db PATH`", source=str(path))
        with Library(path, make_engine()) as lib:
            if recluster:
                lib.cluster(recluster=True)
            people = lib.people()
            rest = lib.unknown_faces() if unknown else []
        if as_json:
            print_json({"people": people, "unknown": rest} if unknown else people)
            return
        t = Table(title=f"{len(people)} people")
        t.add_column("id", justify="right")
        t.add_column("name")
        t.add_column("faces", justify="right")
        t.add_column("example photo")
        for p in people:
            t.add_row(str(p["id"]), escape(p["name"] or "—"), str(len(p["faces"])), escape(p["faces"][0]["path"]) if p["faces"] else "")
        out.print(t)
        if unknown:
            out.print(f"{len(rest)} faces belong to nobody")
