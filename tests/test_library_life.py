"""The library people live in, on real photos and real files: face tags other programs see
(XMP out, read back by ExifTool for every EXIF orientation; XMP written by ExifTool in, with no
duplicate faces and conflicts reported), hide, bulk fixes, dates taken, faces drawn by hand,
and names that survive a change of embedder."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from support import EXIF_TO_STORED, copy_people

from faceprint.library import Library, LibraryStore
from faceprint.library.indexer import box_iou

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None, reason="ExifTool is not installed (apt-get install libimage-exiftool-perl): it is the independent reader")
PEOPLE = ["Andre_Agassi", "Ari_Fleischer", "Bill_Gates", "Anna_Kournikova"]


def _centre_face(faces: list, width: int, height: int):
    return min(faces, key=lambda f: np.hypot(f.box[0] + f.box[2] / 2 - width / 2, f.box[1] + f.box[3] / 2 - height / 2))


def _exiftool(*args: str | Path) -> list[dict]:
    r = subprocess.run([EXIFTOOL, "-j", "-n", "-struct", *map(str, args)], capture_output=True, text=True, timeout=60)
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout or "[]")


def _inside(x: float, y: float, box: list[float]) -> bool:
    return box[0] <= x <= box[0] + box[2] and box[1] <= y <= box[1] + box[3]


@needs_exiftool
@pytest.mark.slow
def test_export_is_read_by_exiftool_for_every_orientation(tmp_path: Path, lfw: Path, engine, cli) -> None:
    """One upright photo stored eight ways (pixels turned, EXIF orientation 1-8 saying how to
    turn them back): every exported region, as ExifTool reads it, has the person's name and a
    centre inside both the box faceprint stored and the face found on the upright original."""
    src = sorted((lfw / "Andre_Agassi").glob("*.jpg"))[0]
    upright = Image.open(src).convert("RGB").crop((0, 20, 250, 230))  # 250 x 210: turning it shows
    W, H = upright.size
    folder = tmp_path / "photos"
    folder.mkdir()
    for o in range(1, 9):
        stored = upright if o == 1 else upright.transpose(EXIF_TO_STORED[o])
        exif = Image.Exif()
        exif[0x0112] = o
        stored.save(folder / f"andre_o{o}.jpg", quality=95, exif=exif)
        assert ImageOps.exif_transpose(Image.open(folder / f"andre_o{o}.jpg")).size == (W, H)
    upright.save(tmp_path / "reference.jpg", quality=95)
    ref = max(engine.detect(tmp_path / "reference.jpg"), key=lambda d: d.area).box  # the face, found on the upright picture

    db = tmp_path / "lib.db"
    with Library(db, engine) as lib:
        lib.index(folder, in_process=True)
        faces = {}
        for f in lib.store.faces():  # the photo's main face (LFW's photo has a second one, at the edge)
            name = Path(f.path).name
            if name not in faces or f.box[2] * f.box[3] > faces[name].box[2] * faces[name].box[3]:
                faces[name] = f
        assert len(faces) == 8
        pid = faces["andre_o1.jpg"].person_id
        assert {f.person_id for f in faces.values()} == {pid}
        dims = {r["path"]: (r["width"], r["height"]) for r in lib.store.read("SELECT path, width, height FROM photos")}
    assert set(dims.values()) == {(W, H)}  # sizes as displayed
    r = cli("people", "name", str(pid), "Andre Agassi", "--db", db)
    assert r.returncode == 0, r.stderr
    r = cli("people", "export-xmp", "--db", db, "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["create"] == 8 and not list(folder.glob("*.xmp"))
    r = cli("people", "export-xmp", "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["create"] == 8

    for o in range(1, 9):
        sidecar = folder / f"andre_o{o}.jpg.xmp"
        assert sidecar.stat().st_mode & 0o777 == 0o600, "a new sidecar names people: private"
        [tags] = _exiftool("-RegionInfo", "-RegionInfoMP", "-TagsList", "-HierarchicalSubject", "-Subject", sidecar)
        info = tags["RegionInfo"]
        assert (info["AppliedToDimensions"]["W"], info["AppliedToDimensions"]["H"]) == (W, H), f"orientation {o}"
        [region] = [r for r in info["RegionList"] if r["Name"] == "Andre Agassi"]
        assert region["Name"] == "Andre Agassi" and region["Type"] == "Face"
        cx, cy = region["Area"]["X"] * W, region["Area"]["Y"] * H
        stored_box = faces[f"andre_o{o}.jpg"].box
        assert _inside(cx, cy, stored_box), f"orientation {o}: centre {cx:.0f},{cy:.0f} outside the stored box {stored_box}"
        assert _inside(cx, cy, list(ref)), f"orientation {o}: centre {cx:.0f},{cy:.0f} is not on the face of the upright picture {ref}"
        [mp] = [m for m in tags["RegionInfoMP"]["Regions"] if m["PersonDisplayName"] == "Andre Agassi"]
        x, y, w, h = (float(v) for v in str(mp["Rectangle"]).split(","))
        assert mp["PersonDisplayName"] == "Andre Agassi" and _inside((x + w / 2) * W, (y + h / 2) * H, list(ref))
        assert tags["TagsList"] in ("People/Andre Agassi", ["People/Andre Agassi"])
        assert tags["HierarchicalSubject"] in ("People|Andre Agassi", ["People|Andre Agassi"])
    # a second export changes nothing; --embed writes into the JPEGs themselves, pixels untouched
    r = cli("people", "export-xmp", "--db", db, "--json")
    assert json.loads(r.stdout)["unchanged"] == 8
    before = {o: np.asarray(Image.open(folder / f"andre_o{o}.jpg")) for o in range(1, 9)}
    r = cli("people", "export-xmp", "--db", db, "--embed", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["update"] == 8, r.stdout + r.stderr
    for o in range(1, 9):
        assert np.array_equal(np.asarray(Image.open(folder / f"andre_o{o}.jpg")), before[o])
        [tags] = _exiftool("-RegionInfo", "-Orientation", folder / f"andre_o{o}.jpg")
        assert tags["Orientation"] == o and tags["RegionInfo"]["RegionList"][0]["Name"] == "Andre Agassi"


def _mwg(name: str, box: list[float], w: int, h: int, grow: float = 1.15) -> str:
    x, y, bw, bh = box
    cx, cy = (x + bw / 2) / w, (y + bh / 2) / h
    return (
        f"{{AppliedToDimensions={{W={w},H={h},Unit=pixel}},RegionList=[{{Area={{X={cx:.5f},Y={cy:.5f},W={bw * grow / w:.5f},H={bh * grow / h:.5f},"
        f"Unit=normalized}},Name={name},Type=Face}}]}}"
    )


def _mp(name: str, box: list[float], w: int, h: int) -> str:
    x, y, bw, bh = box
    return f"{{Regions=[{{Rectangle={x / w:.5f}|, {y / h:.5f}|, {bw / w:.5f}|, {bh / h:.5f},PersonDisplayName={name}}}]}}"


@needs_exiftool
@pytest.mark.slow
def test_import_of_exiftool_tags_names_people_without_duplicates(tmp_path: Path, lfw: Path, engine, cli) -> None:
    """Regions ExifTool wrote -- MWG in sidecars, Microsoft embedded in the JPEG, and one on a
    face the detector cannot find -- name the right people when the folder is indexed; no face
    is counted twice, a second import changes nothing, and a tag that contradicts a name the
    library has is reported, not applied."""
    folder = tmp_path / "photos"
    paths = copy_people(lfw, folder, ["Andre_Agassi", "Bill_Gates", "Ari_Fleischer"], 3)
    truth: dict[Path, list[float]] = {}
    for p in paths:
        w, h = Image.open(p).size
        truth[p] = list(_centre_face([type("D", (), {"box": d.box})() for d in engine.detect(p)], w, h).box)
    for p in paths:
        w, h = Image.open(p).size
        if p.parent.name == "Andre_Agassi":  # digiKam / Lightroom style: an MWG sidecar
            r = subprocess.run([EXIFTOOL, f"-RegionInfo={_mwg('Andre Agassi', truth[p], w, h)}", str(p) + ".xmp"], capture_output=True, text=True)
        elif p.parent.name == "Bill_Gates":  # Windows Photo Gallery style: Microsoft regions in the JPEG
            r = subprocess.run([EXIFTOOL, "-overwrite_original", f"-RegionInfoMP={_mp('Bill Gates', truth[p], w, h)}", str(p)], capture_output=True, text=True)
        else:
            continue
        assert r.returncode == 0, r.stderr
    # a face the detector misses (upside down, next to nothing else), tagged by hand
    src = Image.open(sorted((lfw / "Anna_Kournikova").glob("*.jpg"))[0]).convert("RGB")
    canvas = Image.new("RGB", (500, 300), (90, 110, 100))
    canvas.paste(src.rotate(180), (200, 25))
    hidden_face = folder / "upside" / "anna_upside_down.jpg"
    hidden_face.parent.mkdir()
    canvas.save(hidden_face, quality=95)
    box = [200 + 250 - 175, 25 + 250 - 185, 100, 120]  # where LFW's centred face lands, turned
    missed = not any(box_iou(d.box, box) > 0.3 for d in engine.detect(hidden_face))
    assert missed, "the upside-down face must be one the detector misses, or this test does not test adding a tagged face"
    r = subprocess.run([EXIFTOOL, f"-RegionInfo={_mwg('Anna Kournikova', box, 500, 300, grow=1.0)}", str(hidden_face) + ".xmp"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    db = tmp_path / "lib.db"
    r = cli("index", folder, "--db", db, "--workers", "1", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    detected = summary["faces"]
    assert summary["xmp"]["regions"] == 7 and summary["xmp"]["conflicts"] == []
    with LibraryStore(db) as store:
        faces = store.faces()
        names = {p["id"]: p["name"] for p in store.people()}
        assert len(faces) == detected + 1, "a tagged face the detector found is not added again; the missed one is added"
        for p in paths:
            if p.parent.name == "Ari_Fleischer":
                continue
            [f] = [f for f in faces if f.path == str(p) and box_iou(f.box, truth[p]) > 0.9]
            assert names[f.person_id] == p.parent.name.replace("_", " "), p
            assert f.assigned == "user" and f.origin == "detected"
        [added] = [f for f in faces if f.path == str(hidden_face) and box_iou(f.box, box) > 0.5]
        assert names[added.person_id] == "Anna Kournikova"
        assert added.origin == "xmp" and added.assigned == "user"
        ari = {f.person_id for f in faces if Path(f.path).parent.name == "Ari_Fleischer"}
        n_faces = len(faces)
    # the same tags again: nothing new
    r = cli("people", "import-xmp", "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    again = json.loads(r.stdout)
    assert again["added"] == 0 and again["named"] == 0 and again["conflicts"] == []
    with LibraryStore(db) as store:
        assert len(store.faces()) == n_faces
    # Ari's people are named Carol in the library; a tag saying Andre is a conflict, reported and left alone
    [ari_person] = [a for a in ari if a is not None][:1]
    assert cli("people", "name", str(ari_person), "Carol", "--db", db).returncode == 0
    ari_photo = next(p for p in paths if p.parent.name == "Ari_Fleischer")
    with LibraryStore(db) as store:
        [face] = [f for f in store.faces(person_id=ari_person) if f.path == str(ari_photo)] or [None]
    if face is not None:
        w, h = Image.open(ari_photo).size
        subprocess.run([EXIFTOOL, f"-RegionInfo={_mwg('Andre Agassi', face.box, w, h)}", str(ari_photo) + ".xmp"], check=True, capture_output=True)
        r = cli("people", "import-xmp", folder / "Ari_Fleischer", "--db", db, "--json")
        report = json.loads(r.stdout)
        assert [(c["xmp_name"], c["library_name"]) for c in report["conflicts"]] == [("Andre Agassi", "Carol")]
        with LibraryStore(db) as store:
            assert store.face(face.id).person_id == ari_person


def test_hide_bulk_fixes_and_paging_in_the_store(tmp_path: Path, lfw: Path, engine, cli) -> None:
    """Hidden people stay hidden through a full re-clustering and leave the suggestions; a bulk
    merge is all or nothing; moved faces never return to where they were; the people page is
    paged, sorted and searched in the store."""
    folder = tmp_path / "photos"
    copy_people(lfw, folder, PEOPLE, 3)
    db = tmp_path / "lib.db"
    with Library(db, engine) as lib:
        lib.index(folder, in_process=True)
        people = lib.store.people()
        ids = [p["id"] for p in people]
        assert len(ids) >= 4
        lib.store.set_hidden([ids[-1]], True)
        lib.cluster(recluster=True)
        assert lib.store.person(ids[-1])["hidden"] == 1, "a later run keeps them hidden"
        assert all(ids[-1] not in (s.person_id, int(s.candidate.split(":")[1]) if s.candidate.startswith("person:") else -1) for s in lib.suggestions())
        ids = [p["id"] for p in lib.store.people(hidden=False)]  # a full re-clustering made the unnamed groups again
        assert len(ids) >= 3
        # merge: one unknown id and nothing happens
        before = {p["id"]: p["faces"] for p in lib.store.people()}
        with pytest.raises(Exception, match="no person"):
            lib.store.merge_many(ids[0], [ids[1], 999_999])
        assert {p["id"]: p["faces"] for p in lib.store.people()} == before
        n = lib.store.merge_many(ids[0], ids[1:3])
        assert n == 2 and lib.store.people_page()[1] == len(ids) - 2
        assert len(lib.store.faces(person_id=ids[0])) == before[ids[0]] + before[ids[1]] + before[ids[2]]
        # move a face out: a rejection keeps it from coming back after a full re-clustering
        face = lib.store.faces(person_id=ids[0])[0]
        new = lib.store.move_faces([face.id], None, name="Somebody Else")
        assert lib.store.person(new)["name"] == "Somebody Else"
        assert (face.id, ids[0]) in lib.store.rejections()
        lib.cluster(recluster=True)
        assert lib.store.face(face.id).person_id == new
        # paging, sorting and search (LIKE's wildcards are plain characters in a search)
        lib.store.rename_person(ids[0], "Zed 100%_sure")
        rows, total = lib.store.people_page(limit=2, sort="name")
        assert total == len(lib.store.people(hidden=False)) and len(rows) == 2
        assert rows[0]["name"] == "Somebody Else"
        assert [r["id"] for r in lib.store.people_page(query="100%_")[0]] == [ids[0]]
        assert lib.store.people_page(query="0%x")[1] == 0
        assert lib.store.people_page(hidden=True)[1] == 1
    r = cli("people", "hide", "--unnamed-below", "1000", "--db", db, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["hidden"] >= 0
    with LibraryStore(db) as store:
        assert all(p["hidden"] for p in store.people() if p["name"] is None)
        assert not any(p["hidden"] for p in store.people() if p["name"] is not None)
    r = cli("people", "merge", "5", "--db", db)
    assert r.returncode == 2 and "at least two" in r.stderr and "Traceback" not in r.stderr


def test_drawn_box_and_dates_taken(tmp_path: Path, lfw: Path, engine, cli) -> None:
    """A box drawn round a face the detector missed becomes a named face (the detector re-run in
    the box, or the geometry); a box on a face already found is refused; EXIF dates order a
    person's photos, undated last."""
    folder = tmp_path / "photos"
    paths = copy_people(lfw, folder, ["Bill_Gates"], 4)
    for k, p in enumerate(paths[:3]):
        img = Image.open(p)
        exif = img.getexif()
        exif.get_ifd(0x8769)[0x9003] = f"20{20 - k}:0{k + 1}:15 10:00:00"
        img.save(p, exif=exif, quality=95)
    db = tmp_path / "lib.db"
    with Library(db, engine) as lib:
        lib.index(folder, in_process=True)
        photo_ids = {r["path"]: r["id"] for r in lib.store.read("SELECT id, path FROM photos")}
        person = _centre_face(lib.store.faces(), 250, 250).person_id
        photos, total = lib.store.person_photos(person)
        assert total == 4 and [p["taken"] for p in photos] == ["2018-03-15T10:00:00", "2019-02-15T10:00:00", "2020-01-15T10:00:00", None]
        pid = photo_ids[str(paths[0])]
        found = _centre_face([f for f in lib.store.faces() if f.photo_id == pid], 250, 250)
        with pytest.raises(Exception, match="already there"):
            lib.add_face(pid, found.box, name="Bill Gates")
        # a region with no face found in it (the corner of the photo): placed from its geometry
        res = lib.add_face(pid, (2, 2, 60, 70), name="Someone In The Corner")
        assert res["located_by"] in ("detector", "geometry")
        face = lib.store.face(res["face_id"])
        assert face.origin == "manual" and face.assigned == "user" and box_iou(face.box, (2, 2, 60, 70)) > 0.3
        assert lib.store.person(face.person_id)["name"] == "Someone In The Corner"
        assert lib.store.thumb(face.id)  # it has a thumbnail like any other face
        # a box drawn by mistake (or a face that is not one) is deleted, template and thumbnail too, for good
        n = len(lib.store.faces())
    r = cli("people", "delete-face", str(face.id), "--db", db, "--json")
    assert r.returncode == 0 and r.json() == {"deleted": 1}, r.describe()
    with Library(db, engine) as lib:
        lib.index(folder, in_process=True)
        assert len(lib.store.faces()) == n - 1 and not lib.store.read("SELECT 1 FROM faces WHERE id=?", (face.id,))
        assert lib.store.person_by_name("Someone In The Corner"), "a name is the user's: kept with no face left"


def test_thumbnails_at_the_border_are_letterboxed_not_streaked() -> None:
    """A face at the photo's edge: the part of its square outside the photo is a flat neutral
    grey, not the edge pixels repeated (which drew streaks)."""
    import cv2

    from faceprint.library.indexer import THUMB_BORDER, THUMB_SIZE, _thumbnail

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)
    jpg = _thumbnail(pixels, (0, 20, 60, 60))  # its square reaches 12 px past the left edge
    thumb = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert thumb.shape == (THUMB_SIZE, THUMB_SIZE, 3)
    band = thumb[10:-10, 2:14].astype(int)  # inside the letterbox
    assert np.abs(band - np.array(THUMB_BORDER)).max() < 12 and band.std() < 4


def _decisions(db: Path) -> dict:
    """Everything the user said, as the store keeps it."""
    with LibraryStore(db) as store:
        return {
            "user_faces": {r["id"]: r["person_id"] for r in store.read("SELECT id, person_id FROM faces WHERE assigned='user'")},
            "names": {r["id"]: r["name"] for r in store.read("SELECT id, name FROM people WHERE name IS NOT NULL")},
            "hidden": {r["id"] for r in store.read("SELECT id FROM people WHERE hidden=1")},
            "rejections": store.rejections(),
            "apart": store.apart(),
            "models": {r["model_id"] for r in store.read("SELECT DISTINCT model_id FROM faces")},
            "faces": int(store.read("SELECT COUNT(*) FROM faces")[0][0]),
        }


@pytest.mark.slow
def test_names_and_corrections_survive_a_model_change(tmp_path: Path, lfw: Path, cli) -> None:
    """SFace -> dlib -> SFace on a library with names, a merge, a split, a move, a 'not this
    person' and a hidden person: every face is re-embedded from its kept box, and every
    decision is still there after each switch (100%), with no rejected face back."""
    pytest.importorskip("dlib", reason="the model switch goes to the dlib embedder: pip install 'faceprint[dlib]'")
    folder = tmp_path / "photos"
    copy_people(lfw, folder, PEOPLE, 4)
    db = tmp_path / "lib.db"
    r = cli("index", folder, "--db", db, "--workers", "1", "--json")
    assert r.returncode == 0, r.describe()
    with Library(db) as lib:
        groups: dict[str, list[int]] = {}
        for f in lib.store.faces():
            if f.person_id is not None and f.box[2] > 60:  # the photos' main faces
                groups.setdefault(Path(f.path).parent.name, []).append(f.person_id)
    main = {k: max(set(v), key=v.count) for k, v in groups.items()}

    def ok(*args: str | Path) -> None:
        res = cli("people", *args, "--db", db)
        assert res.returncode == 0, res.describe()

    ok("name", str(main["Andre_Agassi"]), "Andre Agassi")
    ok("name", str(main["Bill_Gates"]), "Bill Gates")
    others = sorted({p for p in groups["Anna_Kournikova"] if p != main["Anna_Kournikova"]})
    if others:
        ok("merge", str(main["Anna_Kournikova"]), *map(str, others))
    ok("name", str(main["Anna_Kournikova"]), "Anna Kournikova")
    with LibraryStore(db) as store:
        bill = [f.id for f in store.faces(person_id=main["Bill_Gates"])]
        andre = [f.id for f in store.faces(person_id=main["Andre_Agassi"])]
        ari = [f.id for f in store.faces(person_id=main["Ari_Fleischer"])]
    ok("reject", str(main["Bill_Gates"]), str(bill[-1]))
    ok("move", str(andre[-1]), "--new", "Not Andre")
    ok("split", str(main["Ari_Fleischer"]), str(ari[-1]))
    ok("hide", str(main["Ari_Fleischer"]))
    said = _decisions(db)
    assert said["hidden"] == {main["Ari_Fleischer"]} and (bill[-1], main["Bill_Gates"]) in said["rejections"] and said["apart"]

    for model, model_id in (("dlib-resnet-v1", "dlib-resnet-v1+flip"), ("sface-2021dec-int8bq", "sface-2021dec-int8bq+flip")):
        r = cli("index", folder, "--db", db, "--workers", "1", "--model", model, "--json")
        assert r.returncode == 0, r.describe()
        assert r.json()["reembedded"] == said["faces"] and r.json()["stale"] == 0
        now = _decisions(db)
        assert now["models"] == {model_id}
        assert now["faces"] == said["faces"], "no face lost or added"
        assert now["names"] == said["names"], f"names after switching to {model}"
        kept = sum(now["user_faces"].get(f) == p for f, p in said["user_faces"].items())
        assert kept == len(said["user_faces"]), f"{kept} of {len(said['user_faces'])} placed faces kept after switching to {model}"
        assert now["hidden"] == said["hidden"] and said["rejections"] <= now["rejections"] and said["apart"] <= now["apart"]
        with LibraryStore(db) as store:
            assert all(store.face(f).person_id != p for f, p in said["rejections"]), "a rejected face came back"
        print(
            f"switched to {model}: {now['faces']} faces re-embedded; kept {len(now['names'])}/{len(said['names'])} names, {kept}/{len(said['user_faces'])} "
            f"placed faces, {len(said['rejections'])} rejections, {len(said['apart'])} apart pairs, {len(said['hidden'])} hidden"
        )
