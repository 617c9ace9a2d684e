"""The gallery commands: ``enroll`` and ``identify`` (registered on the root command in
:mod:`faceprint.cli`) and the ``subjects`` group."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from faceprint.cli._common import DbOpt, FaceOpt, JsonOpt, RayOpt, VectorsOpt, cli_errors, err, make_engine, out, print_json

subjects_app = typer.Typer(no_args_is_help=True, help="List, show, rename and delete enrolled subjects.")


def _gallery(db: str | None, vectors: str | None = None):
    from faceprint.gallery import Gallery

    return Gallery(db, make_engine(), vectors=vectors)


def enroll(
    name: str = typer.Argument(..., help="Subject name (created if new)."),
    images: list[Path] = typer.Argument(..., help="One or more photos of the subject."),
    face: str = typer.Option("single", "--face", help="Photos with several faces are refused unless you choose: largest, center, or an index."),
    keep_images: bool = typer.Option(False, "--keep-images", help="Also store the photos, so `subjects reembed` can remake templates for a new model."),
    no_quality_check: bool = typer.Option(False, "--no-quality-check", help="Enrol faces even when they fail the quality gate (see `faceprint quality`)."),
    require_liveness: bool | None = typer.Option(
        None, "--require-liveness/--no-require-liveness", help="Refuse faces that look like a print or a screen (default: FACEPRINT_REQUIRE_LIVENESS_ENROL)."
    ),
    db: str | None = DbOpt,
    vectors: str | None = VectorsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Enrol a subject from photos (one template per photo).  Faces that fail the quality
    gate (too small, turned away, too poor overall) are refused with the reason."""
    with cli_errors(as_json):
        with _gallery(db, vectors) as gallery:
            res = gallery.enroll(name, list(images), face=face, keep_images=keep_images, check_quality=not no_quality_check, check_liveness=require_liveness)
        if as_json:
            print_json(res.to_dict())
            return
        out.print(f"enrolled [bold]{escape(res.subject.name)}[/]: {len(res.template_ids)} template(s) added, {res.subject.templates} in total")
        for _src, exc in res.rejected:
            err.print(f"[yellow]skipped[/] {escape(str(exc))}", highlight=False, soft_wrap=True)


def enroll_folder(
    root: Path = typer.Argument(..., help="A folder with one sub-folder of photos per person (the sub-folder's name is the subject's)."),
    face: str = typer.Option("largest", "--face", help="Which face of a photo with several: largest, center, single (refuse), or an index."),
    no_quality_check: bool = typer.Option(False, "--no-quality-check", help="Enrol faces even when they fail the quality gate."),
    ray: str | None = RayOpt,
    db: str | None = DbOpt,
    vectors: str | None = VectorsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Bulk enrolment of an identity-folder tree: one subject per sub-folder, one template per
    photo; photos already enrolled are skipped (an interrupted run resumes)."""
    with cli_errors(as_json):
        with _gallery(db, vectors) as gallery:
            res = gallery.enroll_folder(root, face=face, check_quality=not no_quality_check, ray=ray, actor="cli")
        if as_json:
            print_json(res)
            return
        out.print(
            f"{res['photos']} photo(s): {res['templates_added']} template(s) added to {res['subjects_written']} subject(s), "
            f"{res['already_enrolled']} already enrolled, {len(res['rejected'])} refused, in {res['seconds']:.1f} s"
        )
        for r in res["rejected"][:20]:
            err.print(f"[yellow]skipped[/] {escape(r['message'])}", highlight=False, soft_wrap=True)
        if len(res["rejected"]) > 20:
            err.print(f"... and {len(res['rejected']) - 20} more (see --json)")


def identify(
    image: Path = typer.Argument(..., help="Photo of the person to look up."),
    k: int = typer.Option(5, "--k", help="How many candidates to list."),
    fpir: float = typer.Option(1e-3, "--fpir", help="False-positive identification rate the open-set threshold is chosen for."),
    face: str = FaceOpt,
    db: str | None = DbOpt,
    vectors: str | None = VectorsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Who is this?  Top-k enrolled subjects and an open-set decision at a stated FPIR."""
    with cli_errors(as_json):
        with _gallery(db, vectors) as gallery:
            res = gallery.identify(image, k=k, fpir=fpir, face=face)
        if as_json:
            print_json(res.to_dict())
            return
        if res.match:
            out.print(
                f"[bold green]{escape(res.match.name)}[/]  score {res.match.score:.4f} ≥ threshold {res.threshold:.4f} (FPIR {fpir:g}, {res.gallery_templates:,} templates)"
            )
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
    db: str | None = DbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Identity-aware check: does a new photo agree with the subject's enrolled references as
    well as they agree with each other?  A face far below (another person, or a face generated
    to resemble them) is flagged as an outlier."""
    with cli_errors(as_json):
        with _gallery(db) as gallery:
            res = gallery.consistency(image, name, face=face, z_threshold=z)
        if as_json:
            print_json({"subject": name, "image": str(image), **res.to_dict()})
            return
        verdict = "[bold red]OUTLIER[/]" if res.outlier else "[bold green]CONSISTENT[/]"
        out.print(
            f"{verdict}  z = {res.z:.2f} (flagged below {z:g}); best similarity {res.best:.3f} against the references' own {res.reference_mean:.3f} ± {res.reference_std:.3f} "
            f"({res.references} references)"
        )


@subjects_app.command("list")
def subjects_list(db: str | None = DbOpt, as_json: bool = JsonOpt) -> None:
    """Every enrolled subject with its template count."""
    with cli_errors(as_json):
        with _gallery(db) as gallery:
            rows = gallery.subjects()
        if as_json:
            print_json([s.to_dict() for s in rows])
            return
        t = Table(title=f"{len(rows)} subject(s)")
        for col in ("name", "templates", "models", "updated"):
            t.add_column(col)
        for s in rows:
            t.add_row(escape(s.name), str(s.templates), ", ".join(s.models), s.updated)
        out.print(t)


@subjects_app.command("show")
def subjects_show(name: str, db: str | None = DbOpt, as_json: bool = JsonOpt) -> None:
    """One subject and its templates (where each came from)."""
    with cli_errors(as_json):
        with _gallery(db) as gallery:
            subject = gallery.subject(name)
            templates = gallery.store.templates(subject_id=subject.id)
        if as_json:
            print_json({**subject.to_dict(), "template_list": [t.to_dict() for t in templates]})
            return
        out.print(f"[bold]{escape(subject.name)}[/]  id {subject.id}, {subject.templates} template(s), created {subject.created}")
        for t in templates:
            out.print(f"  #{t.id} {t.model_id}  {escape(t.source or '')}  face score {t.face_score or 0:.2f}")


@subjects_app.command("rename")
def subjects_rename(old: str, new: str, db: str | None = DbOpt, as_json: bool = JsonOpt) -> None:
    """Rename a subject."""
    with cli_errors(as_json):
        with _gallery(db) as gallery:
            subject = gallery.rename(old, new)
        if as_json:
            print_json(subject.to_dict())
            return
        out.print(f"renamed {escape(old)} → [bold]{escape(subject.name)}[/]")


@subjects_app.command("reembed")
def subjects_reembed(db: str | None = DbOpt, as_json: bool = JsonOpt) -> None:
    """After a model change: remake templates from kept photos; list subjects that need new photos."""
    with cli_errors(as_json):
        with _gallery(db) as gallery:
            res = gallery.reembed()
            model = gallery.model_id
        if as_json:
            print_json({**res, "model_id": model})
            return
        out.print(f"model {model}: re-embedded {len(res['reembedded'])} subject(s) from kept photos")
        if res["need_new_photos"]:
            out.print("need new photos (enrolled without --keep-images): " + ", ".join(escape(n) for n in res["need_new_photos"]))


@subjects_app.command("delete")
def subjects_delete(name: str, db: str | None = DbOpt, vectors: str | None = VectorsOpt, as_json: bool = JsonOpt) -> None:
    """Erase a subject from every file: database rows zeroed, kept photos and audit details
    gone, write-ahead log truncated, index saved without its templates (on PostgreSQL the
    tables are vacuumed; in Milvus the vectors are deleted and the collection compacted)."""
    with cli_errors(as_json):
        with _gallery(db, vectors) as gallery:
            erased = gallery.erase(name)
        if as_json:
            print_json({"deleted": name, **erased})
            return
        if "vectors_deleted" in erased:
            out.print(
                f"erased {escape(name)}: {erased['templates']} template(s), {erased['kept_photos']} kept photo(s), "
                f"{erased['audit_entries_redacted']} audit entr{'y' if erased['audit_entries_redacted'] == 1 else 'ies'} redacted; "
                f"vectors deleted{' and compaction started' if erased['vectors_compacted'] else ''}"
            )
            return
        out.print(
            f"erased {escape(name)}: {erased['templates']} template(s), {erased['kept_photos']} kept photo(s), "
            f"{erased['audit_entries_redacted']} audit entr{'y' if erased['audit_entries_redacted'] == 1 else 'ies'} redacted; "
            f"index saved; write-ahead log {'truncated' if erased['wal_truncated'] else 'to be truncated when other readers close'}"
        )


@subjects_app.command("reindex")
def subjects_reindex(
    db: str | None = DbOpt,
    vectors: str | None = VectorsOpt,
    full: bool = typer.Option(False, "--full", help="Drop the vector collection and refill it from the store (default: add what is missing, remove phantoms)."),
    as_json: bool = JsonOpt,
) -> None:
    """Bring the vector index back to the store, the source of truth: a local index is rebuilt;
    a Milvus collection that lost data or missed writes is reconciled (or refilled with --full)."""
    with cli_errors(as_json):
        with _gallery(db, vectors) as gallery:
            res = gallery.reindex(full=full)
        if as_json:
            print_json(res)
            return
        if res["backend"] == "milvus":
            out.print(
                f"{res['collection']}: {res['store']} template(s) in the store; the collection had {res['had']}: "
                f"{res['added']} added, {res['removed']} removed{' (refilled)' if res['full'] else ''}"
            )
        else:
            out.print(f"local {res['backend']} index rebuilt: {res['store']} template(s)")
