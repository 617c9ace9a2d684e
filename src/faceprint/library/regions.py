"""Face tags other programs see: the library's named faces out to XMP, and regions people
tagged elsewhere (digiKam, Lightroom, Picasa, Windows Photo Gallery, ExifTool) in.

**Export** writes, for every still photo with at least one named face, the MWG and Microsoft
regions and the People tags (:mod:`faceprint.library.xmp`) into a sidecar (``photo.jpg.xmp``,
or ``photo.xmp`` with the ``replace`` style), merged into what the sidecar already holds, or
into the JPEG itself with ``embed`` (the APP1 packet only: pixel data is never rewritten).
Hidden people are exported like the others: hiding is about the UI, not the files.

**Import** reads every face region of a photo (sidecars and embedded XMP) and matches each to
the photo's faces by overlap (IoU at least :data:`MATCH_IOU`, best pairs first, one face per
region), so a region never becomes a second face of someone the detector already found:

* a matched face with a name: if it is already that person's, nothing; if it belongs to
  nobody, it becomes the named person's (created if needed); if it is in an unnamed group,
  the group is given the name (when no other person has it; else the face moves to the
  person who has it); if it is in a person with *another* name, that is a **conflict**:
  reported, never resolved silently;
* a region no face matches is a face the detector missed: it is added from its box (the
  detector re-run inside it, else landmarks from the box's geometry), origin ``xmp``, and
  placed in the named person.  Running the import again finds it matched: no duplicates.

Every placement is the user's word (``assigned='user'``): later clustering keeps it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from faceprint.errors import FaceprintError
from faceprint.library.indexer import box_iou, face_from_box
from faceprint.library.store import LibraryStore, PersonNotFound
from faceprint.library.xmp import Region, XmpChange, embed_in_jpeg, read_regions, write_sidecar

__all__ = ["ImportReport", "MATCH_IOU", "export_xmp", "import_xmp"]

MATCH_IOU = 0.3  # hand-drawn regions are looser than detector boxes; two faces of one photo overlap far less


def export_xmp(
    store: LibraryStore, *, person_ids: list[int] | None = None, embed: bool = False, style: str = "append", dry_run: bool = False
) -> tuple[list[XmpChange], list[dict[str, str]]]:
    """Write the named faces of every photo (of ``person_ids`` only, when given); returns the
    changes and the photos that could not be written (with the reason)."""
    changes: list[XmpChange] = []
    errors: list[dict[str, str]] = []
    for photo in store.named_faces_by_photo(person_ids):
        regions = [Region(f["name"], tuple(f["box"]), "faceprint") for f in photo["faces"]]
        path = Path(photo["path"])
        try:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: the photo is no longer there")
            if embed:
                changes.append(embed_in_jpeg(path, regions, photo["width"], photo["height"], dry_run=dry_run))
            else:
                changes.append(write_sidecar(path, regions, photo["width"], photo["height"], style=style, dry_run=dry_run))
        except (FaceprintError, OSError) as exc:
            errors.append({"path": str(path), "error": str(exc)})
    return changes, errors


@dataclass
class ImportReport:
    photos: int = 0  # photos with at least one face region
    regions: int = 0
    matched: int = 0  # regions matched to a face faceprint found
    added: int = 0  # regions with no detected face: added as faces
    named: int = 0  # faces placed in a named person (or a group given a name)
    unchanged: int = 0  # already so
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _photos(store: LibraryStore, root: str | None, photo_ids: list[int] | None) -> list[Any]:
    sql = "SELECT id, path, width, height FROM photos WHERE status='ok' AND kind='image'"
    if photo_ids is not None:
        return store.read_in(sql + " AND id IN ({ids}) ORDER BY path", photo_ids)
    if root is not None:
        real = str(Path(root).expanduser().resolve())
        return [r for r in store.read(sql + " ORDER BY path") if r["path"] == real or r["path"].startswith(real.rstrip("/") + "/")]
    return store.read(sql + " ORDER BY path")


def import_xmp(
    store: LibraryStore,
    engine: Any,
    *,
    root: str | None = None,
    photo_ids: list[int] | None = None,
    thumbnails: bool = True,
    dry_run: bool = False,
    actor: str = "xmp",
) -> ImportReport:
    """Read the face regions of the library's photos (under ``root``, or ``photo_ids``, or
    all) and apply them as described in the module docstring."""
    report = ImportReport(dry_run=dry_run)
    for photo in _photos(store, root, photo_ids):
        try:
            regions = read_regions(Path(photo["path"]), int(photo["width"] or 0), int(photo["height"] or 0))
        except (FaceprintError, OSError) as exc:
            report.errors.append({"path": photo["path"], "error": str(exc)})
            continue
        if not regions:
            continue
        report.photos += 1
        report.regions += len(regions)
        faces = store.photo(photo["id"])["faces"]
        faces = [f for f in faces if f["frame"] is None]
        pairs = sorted(
            ((box_iou(r.box, f["box"]), i, j) for i, r in enumerate(regions) for j, f in enumerate(faces)),
            reverse=True,
        )
        match: dict[int, int] = {}
        used: set[int] = set()
        for iou, i, j in pairs:
            if iou < MATCH_IOU:
                break
            if i not in match and j not in used:
                match[i] = j
                used.add(j)
        image = None
        for i, region in enumerate(regions):
            if i in match:
                report.matched += 1
                if region.name:
                    _name_face(store, faces[match[i]], region.name, photo["path"], report, dry_run, actor)
                else:
                    report.unchanged += 1
                continue
            # a face the detector missed (or never looked for): add it from the region's box
            report.added += 1
            if dry_run:
                continue
            try:
                if image is None:
                    image = engine.load(photo["path"])
                face, _how = face_from_box(engine, image, region.box, origin="xmp", thumbnails=thumbnails)
                pid = store.person_for_name(region.name, actor=actor) if region.name else None
                store.add_face(photo["id"], face, model_id=engine.model_id, person_id=pid, actor=actor)
                if region.name:
                    report.named += 1
            except FaceprintError as exc:
                report.added -= 1
                report.errors.append({"path": photo["path"], "error": f"region {[round(v) for v in region.box]}: {exc}"})
    return report


def _name_face(store: LibraryStore, face: dict[str, Any], name: str, path: str, report: ImportReport, dry_run: bool, actor: str) -> None:
    """Apply "this face is ``name``" to a face faceprint found (see the module docstring)."""
    from faceprint.names import lookup_name

    wanted = " ".join(lookup_name(name).split())
    current = store.person(face["person_id"]) if face["person_id"] is not None else None
    if current is not None and current["name"] is not None:
        if current["name"].casefold() == wanted.casefold():  # names are one person's in any case
            report.unchanged += 1
            if not dry_run and face["assigned"] != "user":
                store.move_faces([face["id"]], int(current["id"]), actor=actor)  # confirmed by the user's tag
        else:
            report.conflicts.append({"path": path, "face_id": face["id"], "xmp_name": wanted, "library_name": current["name"], "person_id": current["id"]})
        return
    report.named += 1
    if dry_run:
        return
    try:
        holder = int(store.person_by_name(wanted)["id"])
    except PersonNotFound:
        holder = None
    if current is not None and holder is None:
        store.rename_person(int(current["id"]), wanted, actor=actor)  # the group faceprint made gets the name
    else:
        store.move_faces([face["id"]], holder, name=wanted, actor=actor)  # to the holder, else a new person of that name
