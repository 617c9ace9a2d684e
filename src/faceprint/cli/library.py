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
    model: str | None = typer.Option(
        None,
        "--model",
        help="Embedder to use (see `faceprint models`; default the embedder setting). On a library made with another one, every face is re-embedded "
        "from its kept box and the people are regrouped, keeping every name, merge, split, hide and 'not this person'.",
    ),
    no_xmp: bool = typer.Option(
        False, "--no-xmp", help="Do not read face regions (digiKam, Lightroom, Picasa ...) from the new photos' sidecars and embedded XMP."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Index a folder of photos: find every face, then group new faces into people.

    Unchanged files are skipped, moved files keep their people, deleted ones leave the
    library; an interrupted run resumes where it stopped.  Face regions tagged in other
    programs (XMP sidecars or embedded) name the faces they match."""
    from faceprint.library import Library

    with cli_errors(as_json):
        bar = Progress(*bar_columns(), console=err, disable=as_json, transient=False)
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task({"check": "checking files", "analyse": "finding faces"}.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        with Library(db, make_engine(**({"embedder": model} if model else {}))) as lib, bar:
            summary, result = lib.index(
                folder,
                workers=workers,
                thumbnails=False if no_thumbnails else None,
                progress=progress,
                cluster=not no_cluster,
                ray=ray,
                ray_batch=ray_batch,
                xmp=not no_xmp,
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
        if summary.reembedded or summary.stale:
            out.print(
                f"model change: {summary.reembedded} faces re-embedded in {summary.reembed_seconds:.1f} s"
                + (f", {summary.stale} whose photo is gone or changed kept as they were" if summary.stale else "")
            )
        if summary.xmp and summary.xmp["regions"]:
            x = summary.xmp
            out.print(f"XMP face tags: {x['regions']} regions in {x['photos']} photos, {x['named']} named, {x['added']} added, {len(x['conflicts'])} conflicts")
        out.print(f"library: {counts['photos']} photos, {counts['faces']} faces, {counts['people']} people ({counts['named']} named)")
        for e in summary.skipped[:20]:
            err.print(f"[yellow]skipped[/] {escape(e['path'])}: {escape(e['reason'])}", highlight=False, soft_wrap=True)
        for e in summary.errors[:20]:
            err.print(f"[yellow]skipped[/] {escape(e['path'])}: {escape(e['error'])}", highlight=False, soft_wrap=True)
        if len(summary.errors) > 20:
            err.print(f"... and {len(summary.errors) - 20} more errors (see --json)")


people_app = typer.Typer(
    help="The people of the photo library: list them (no sub-command), name, merge, split, move faces, hide, export and import XMP face tags.",
    invoke_without_command=True,
)


def _open_library(db: str | None, **overrides: object):  # type: ignore[no-untyped-def]
    """The library at ``db`` (default: $FACEPRINT_LIBRARY or the data directory's), which must exist."""
    from faceprint.library import Library
    from faceprint.library.store import default_library_path
    from faceprint.postgres import is_postgres_url

    path = db or default_library_path()
    if not is_postgres_url(path) and not Path(path).is_file():
        raise InputError("no photo library here; create one with `faceprint index FOLDER --db PATH`", source=str(path))
    return Library(path, make_engine(**overrides))


def _done(as_json: bool, data: dict[str, object], line: str) -> None:
    if as_json:
        print_json(data)
    else:
        out.print(line, highlight=False, soft_wrap=True)


@people_app.callback()
def people(
    ctx: typer.Context,
    db: str | None = LibraryDbOpt,
    recluster: bool = typer.Option(False, "--recluster", help="Group every face the user has not placed again from scratch (keeps names, merges, splits)."),
    unknown: bool = typer.Option(False, "--unknown", help="Also list faces that belong to nobody."),
    hidden: bool = typer.Option(False, "--hidden", help="List only the people you hid (default: every person, hidden ones marked)."),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON: a list of people, each with name (or null), hidden and faces (each with the path of its photo)."
    ),
) -> None:
    """List the people found in the library (or run one of the commands below)."""
    if ctx.invoked_subcommand is not None:
        return
    with cli_errors(as_json):
        with _open_library(db) as lib:
            if recluster:
                lib.cluster(recluster=True)
            people = [p for p in lib.people() if p["hidden"] or not hidden]
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
            label = escape(p["name"] or "—") + (" [dim](hidden)[/]" if p["hidden"] else "")
            t.add_row(str(p["id"]), label, str(len(p["faces"])), escape(p["faces"][0]["path"]) if p["faces"] else "")
        out.print(t)
        if unknown:
            out.print(f"{len(rest)} faces belong to nobody")


PersonArg = typer.Argument(..., help="A person's id (see `faceprint people`).", min=0)


@people_app.command("name")
def people_name(
    person: int = PersonArg, name: str = typer.Argument(..., help="The name (unique in the library)."), db: str | None = LibraryDbOpt, as_json: bool = JsonOpt
) -> None:
    """Name a person (their faces become confirmed: later runs keep them together)."""
    with cli_errors(as_json), _open_library(db) as lib:
        lib.rename(person, name)
        row = lib.store.person(person)
        _done(as_json, {"person_id": person, "name": row["name"]}, f"person {person} is now {escape(row['name'])}")


@people_app.command("unname")
def people_unname(person: int = PersonArg, db: str | None = LibraryDbOpt, as_json: bool = JsonOpt) -> None:
    """Take a person's name away (their faces stay together)."""
    with cli_errors(as_json), _open_library(db) as lib:
        lib.rename(person, None)
        _done(as_json, {"person_id": person, "name": None}, f"person {person} has no name now")


@people_app.command("merge")
def people_merge(
    people: list[int] = typer.Argument(..., help="Two or more person ids: all are merged into the first."),
    db: str | None = LibraryDbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Merge several people into the first one given (all or nothing)."""
    with cli_errors(as_json), _open_library(db) as lib:
        if len(set(people)) < 2:
            raise InputError("give at least two different person ids to merge")
        n = lib.store.merge_many(people[0], people[1:])
        _done(as_json, {"person_id": people[0], "merged": n}, f"merged {n} people into person {people[0]}")


@people_app.command("split")
def people_split(
    person: int = PersonArg,
    faces: list[int] = typer.Argument(..., help="Face ids of this person to split off into a new person."),
    db: str | None = LibraryDbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Split faces off a person into a new person, kept apart from the first for good."""
    with cli_errors(as_json), _open_library(db) as lib:
        new = lib.store.split_faces(person, faces)
        _done(as_json, {"person_id": person, "new_person_id": new, "faces": faces}, f"split {len(faces)} face(s) of person {person} into person {new}")


@people_app.command("move")
def people_move(
    faces: list[int] = typer.Argument(..., help="Face ids to move."),
    to: int | None = typer.Option(None, "--to", min=0, help="The person they belong to."),
    new: str | None = typer.Option(None, "--new", help="Move them to a new person with this name ('' for an unnamed one)."),
    db: str | None = LibraryDbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Move faces to another person (or a new one): they are never put back where they were."""
    with cli_errors(as_json), _open_library(db) as lib:
        if (to is None) == (new is None):
            raise InputError("give exactly one of --to PERSON_ID or --new NAME")
        pid = lib.store.move_faces(faces, to, name=new or None)
        _done(as_json, {"person_id": pid, "faces": faces}, f"moved {len(faces)} face(s) to person {pid}")


@people_app.command("reject")
def people_reject(
    person: int = PersonArg,
    faces: list[int] = typer.Argument(..., help="Face ids that are not this person."),
    db: str | None = LibraryDbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Not this person: the faces leave the person and never come back to them."""
    with cli_errors(as_json), _open_library(db) as lib:
        n = lib.store.reject_faces(faces, person)
        _done(as_json, {"person_id": person, "rejected": n}, f"{n} face(s) are not person {person}")


@people_app.command("delete-face")
def people_delete_face(
    faces: list[int] = typer.Argument(..., help="Face ids that are not faces at all (or boxes drawn by mistake)."),
    db: str | None = LibraryDbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Remove faces from the library, template and thumbnail too (a later run does not find them again)."""
    with cli_errors(as_json), _open_library(db) as lib:
        n = lib.store.delete_faces(faces)
        _done(as_json, {"deleted": n}, f"deleted {n} face(s)")


@people_app.command("hide")
def people_hide(
    people: list[int] = typer.Argument(None, help="Person ids to hide."),
    unnamed_below: int | None = typer.Option(None, "--unnamed-below", min=1, help="Hide every unnamed person with fewer than this many faces."),
    db: str | None = LibraryDbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Hide people from the people page and the suggestions (they stay searchable and exportable)."""
    with cli_errors(as_json), _open_library(db) as lib:
        if not people and unnamed_below is None:
            raise InputError("give person ids to hide, or --unnamed-below N")
        n = lib.store.set_hidden(people, True) if people else 0
        if unnamed_below is not None:
            n += lib.store.hide_small_unnamed(unnamed_below)
        _done(as_json, {"hidden": n}, f"hid {n} people")


@people_app.command("unhide")
def people_unhide(people: list[int] = typer.Argument(..., help="Person ids to show again."), db: str | None = LibraryDbOpt, as_json: bool = JsonOpt) -> None:
    """Show hidden people again."""
    with cli_errors(as_json), _open_library(db) as lib:
        n = lib.store.set_hidden(people, False)
        _done(as_json, {"shown": n}, f"{n} people shown again")


@people_app.command("photos")
def people_photos(
    person: int = PersonArg,
    page: int = typer.Option(1, "--page", min=1, help="Page of 48 photos."),
    db: str | None = LibraryDbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """A person's photos by date taken (undated ones last)."""
    with cli_errors(as_json), _open_library(db) as lib:
        photos, total = lib.store.person_photos(person, offset=(page - 1) * 48, limit=48)
        if as_json:
            print_json({"person_id": person, "total": total, "page": page, "photos": photos})
            return
        for p in photos:
            out.print(f"{p['taken'] or 'undated':19}  {escape(p['path'])}", highlight=False)
        out.print(f"{total} photos", highlight=False)


@people_app.command("add-face")
def people_add_face(
    photo: int = typer.Argument(..., min=0, help="The photo's id (see `faceprint people photos` or the web UI)."),
    box: tuple[float, float, float, float] = typer.Argument(..., help="X Y W H of the face in the photo as displayed, in pixels."),
    name: str | None = typer.Option(None, "--name", help="Who it is: an existing person's name or a new one."),
    to: int | None = typer.Option(None, "--to", min=0, help="Who it is: a person's id."),
    db: str | None = LibraryDbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Add a face the detector missed, from a box (the detector is run again inside it, else the box is aligned from its geometry)."""
    with cli_errors(as_json), _open_library(db) as lib:
        if to is not None and name is not None:
            raise InputError("give --name or --to, not both")
        res = lib.add_face(photo, box, person_id=to, name=name)
        _done(as_json, res, f"added face {res['face_id']} (located by {res['located_by']})" + (f" to person {res['person_id']}" if res["person_id"] else ""))


@people_app.command("export-xmp")
def people_export_xmp(
    people: list[int] = typer.Argument(None, help="Only the photos of these person ids (default: every photo with a named face)."),
    embed: bool = typer.Option(False, "--embed", help="Write into the JPEG files themselves (the XMP packet only; pixels untouched) instead of sidecars."),
    sidecar: str | None = typer.Option(
        None,
        "--sidecar",
        help="Sidecar name: append (photo.jpg.xmp, digiKam / darktable) or replace (photo.xmp, Lightroom); default the xmp_sidecar setting (append).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would change; write nothing."),
    db: str | None = LibraryDbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Write named faces as XMP face regions (MWG and Microsoft) and People tags that digiKam, Lightroom, darktable, ExifTool, Immich and PhotoPrism read."""
    with cli_errors(as_json):
        with _open_library(db) as lib:
            changes, errors = lib.export_xmp(person_ids=people or None, embed=embed, style=sidecar, dry_run=dry_run)
        counts = {a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "unchanged")}
        if as_json:
            print_json({"dry_run": dry_run, **counts, "changes": [vars(c) for c in changes], "errors": errors})
            return
        verb = "would " if dry_run else ""
        for c in changes:
            if c.action != "unchanged":
                out.print(f"{verb}{c.action} {escape(c.path)}: {c.regions} face(s), {escape(', '.join(c.names))}", highlight=False, soft_wrap=True)
        for e in errors:
            err.print(f"[yellow]not written[/] {escape(e['path'])}: {escape(e['error'])}", highlight=False, soft_wrap=True)
        out.print(f"{len(changes)} photos: {verb}create {counts['create']}, {verb}update {counts['update']}, {counts['unchanged']} unchanged", highlight=False)


@people_app.command("import-xmp")
def people_import_xmp(
    folder: Path | None = typer.Argument(None, help="Only the library's photos under this folder (default: all)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would change; change nothing."),
    db: str | None = LibraryDbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Read face regions tagged in digiKam, Lightroom, Picasa or Windows Photo Gallery (sidecars and embedded XMP) and name the matching faces."""
    with cli_errors(as_json), _open_library(db) as lib:
        report = lib.import_xmp(root=folder, dry_run=dry_run).to_dict()
        if not dry_run:
            lib.cluster()
        if as_json:
            print_json(report)
            return
        out.print(
            f"{report['photos']} photos with {report['regions']} face regions: {report['matched']} matched to found faces, "
            f"{report['added']} added, {report['named']} named, {report['unchanged']} already so",
            highlight=False,
        )
        for c in report["conflicts"]:
            err.print(
                f"[yellow]conflict[/] {escape(c['path'])}: the tag says {escape(c['xmp_name'])!r}, the library says {escape(c['library_name'])!r} (face {c['face_id']}); left as it is",
                highlight=False,
                soft_wrap=True,
            )
        for e in report["errors"]:
            err.print(f"[yellow]skipped[/] {escape(e['path'])}: {escape(e['error'])}", highlight=False, soft_wrap=True)
