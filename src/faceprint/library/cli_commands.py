"""``faceprint index`` and ``faceprint people``: added to the main command by :func:`register`
(``faceprint.cli`` calls it); the shared helpers are imported inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

_DB_HELP = "Library database (default $FACEPRINT_LIBRARY or library.db in your data directory)."


def register(app: typer.Typer) -> None:
    """Add ``index`` and ``people`` to ``app``."""

    @app.command("index")
    def index_cmd(
        folder: Path = typer.Argument(..., help="Folder of photos (searched recursively)."),
        db: Optional[Path] = typer.Option(None, "--db", help=_DB_HELP),
        workers: Optional[int] = typer.Option(None, "--workers", help="Worker processes for detection and embedding (default: one per core)."),
        no_thumbnails: bool = typer.Option(False, "--no-thumbnails", help="Do not keep face thumbnails (setting FACEPRINT_LIBRARY_THUMBNAILS=0 does the same; the web UI then has no face pictures)."),
        no_cluster: bool = typer.Option(False, "--no-cluster", help="Only index; do not group new faces into people."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    ) -> None:
        """Index a folder of photos: find every face, then group new faces into people.

        Unchanged files are skipped, moved files keep their people, deleted ones leave the
        library; an interrupted run resumes where it stopped."""
        from faceprint.cli import _engine, _errors, _print_json, err, escape, out
        from faceprint.library import Library

        with _errors(as_json):
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=err, disable=as_json, transient=False)
            tasks: dict[str, int] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task({"check": "checking files", "analyse": "finding faces"}.get(stage, stage), total=total)
                bar.update(tasks[stage], completed=done, total=total)

            with Library(db, _engine()) as lib, bar:
                summary, result = lib.index(folder, workers=workers, thumbnails=False if no_thumbnails else None, progress=progress, cluster=not no_cluster)
                counts = lib.store.counts()
            data = {**summary.to_dict(), "library": counts, "clustering": None}
            if result is not None:
                data["clustering"] = {"new_people": result.new_people, "merges": result.merges, "attached_low_quality": result.attached, "link_threshold": round(result.link_threshold, 4)}
            if as_json:
                _print_json(data)
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

    @app.command("people")
    def people_cmd(
        db: Optional[Path] = typer.Option(None, "--db", help=_DB_HELP),
        recluster: bool = typer.Option(False, "--recluster", help="Group every face the user has not placed again from scratch (keeps names, merges, splits)."),
        unknown: bool = typer.Option(False, "--unknown", help="Also list faces that belong to nobody."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON: a list of people, each with name (or null) and faces (each with the path of its photo)."),
    ) -> None:
        """List the people found in the library."""
        from rich.table import Table

        from faceprint.cli import _engine, _errors, _print_json, escape, out
        from faceprint.library import Library

        with _errors(as_json):
            from faceprint.errors import InputError
            from faceprint.library.store import default_library_path

            path = db or default_library_path()
            if not path.is_file():
                raise InputError("no photo library here; create one with `faceprint index FOLDER --db PATH`", source=str(path))
            with Library(path, _engine()) as lib:
                if recluster:
                    lib.cluster(recluster=True)
                people = lib.people()
                rest = lib.unknown_faces() if unknown else []
            if as_json:
                _print_json({"people": people, "unknown": rest} if unknown else people)
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
