"""Encryption at rest (issue 13): new galleries and libraries seal templates, thumbnails and
kept photos with AES-256-GCM, and the saved index too; no file holds a clear template; a
wrong or missing key is a clear error; a clear database can be migrated, and the master key
rotated, with the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from support import CliResult, run_cli

from faceprint.crypto import KeyProblem, current_master_key


def _pieces(vectors: list[np.ndarray]) -> dict[str, bytes]:
    return {f"template {i} bytes {o}": v.astype(np.float32).tobytes()[o : o + 32] for i, v in enumerate(vectors) for o in range(0, v.size * 4, 32)}


def _hits(folder: Path, needles: dict[str, bytes]) -> list[str]:
    return [f"{w} in {p.name}" for p in folder.iterdir() if p.is_file() for w, n in needles.items() if n in p.read_bytes()]


def _cli(*args: str, env: dict[str, str] | None = None) -> CliResult:
    return run_cli(*args, env=env)


def test_new_gallery_and_library_hold_no_clear_template(tmp_path: Path, lfw: Path, engine) -> None:
    from faceprint.gallery import Gallery
    from faceprint.library import Library

    photos = sorted((lfw / "Laura_Bush").glob("*.jpg"))[:3]
    gfolder = tmp_path / "g"
    with Gallery(gfolder / "gallery.db", engine) as g:
        assert g.store.encrypted
        res = g.enroll("Laura", photos, keep_images=True)
        assert len(res.template_ids) >= 2
        vectors = [t.vector for t in g.store.templates()]
        kept = [g.store.image(t.image_sha256) for t in g.store.templates()]
        assert g.identify(photos[0]).match.name == "Laura"  # works through the sealed columns
        g.flush()
        assert (gfolder / "gallery.db.index").read_bytes().startswith(b"FPENC1")
    needles = {**_pieces(vectors), "kept photo": kept[0][len(kept[0]) // 2 :][:64]}
    assert _hits(gfolder, needles) == []
    with Gallery(gfolder / "gallery.db", engine) as g:  # reopened: the sealed index loads
        assert g.identify(photos[1]).match.name == "Laura" and g.index.kind == "exact" and len(g.index) == len(vectors)

    lfolder = tmp_path / "l"
    src = tmp_path / "photos"
    src.mkdir()
    for p in photos:
        shutil.copy2(p, src / p.name)
    with Library(lfolder / "library.db", engine) as lib:
        lib.index(src, in_process=True, thumbnails=True)
        faces = lib.store.faces(with_vectors=True)
        thumbs = [lib.store.thumb(f.id) for f in faces]
        assert thumbs[0][:2] == b"\xff\xd8"  # opened: a JPEG again
    needles = {**_pieces([f.vector for f in faces]), **{f"thumb {i}": t[len(t) // 2 :][:64] for i, t in enumerate(thumbs)}}
    assert _hits(lfolder, needles) == []


def test_wrong_or_missing_key_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceprint.gallery.store import NewTemplate, Store

    db = tmp_path / "g.db"
    with Store(db) as store:
        store.add_templates("A", [NewTemplate(vector=np.ones(128, np.float32) / np.sqrt(128), model_id="m")])
    monkeypatch.setenv("FACEPRINT_KEY", "ab" * 32)  # another key
    with pytest.raises(KeyProblem, match="encrypted with master key [0-9a-f]{16}; the key\\(s\\) available are"):
        Store(db)
    monkeypatch.delenv("FACEPRINT_KEY")
    monkeypatch.setenv("FACEPRINT_KEY_FILE", str(tmp_path / "nowhere" / "key"))
    with pytest.raises(KeyProblem, match="no key is available"):
        Store(db)
    r = _cli("subjects", "list", "--db", str(db), env={"FACEPRINT_KEY_FILE": str(tmp_path / "nowhere" / "key")})
    assert r.returncode == 3 and "no key is available" in r.stderr and "Traceback" not in r.stderr
    monkeypatch.undo()
    # a sealed value altered on disk is refused, not returned as garbage
    import sqlite3

    con = sqlite3.connect(db)
    blob = bytearray(con.execute("SELECT vector FROM templates").fetchone()[0])
    blob[20] ^= 1
    con.execute("UPDATE templates SET vector=?", (bytes(blob),))
    con.commit()
    con.close()
    with Store(db) as store, pytest.raises(KeyProblem, match="does not decrypt"):
        store.templates()


def test_enable_migrates_a_clear_gallery_and_rotate_rewraps(tmp_path: Path, lfw: Path, engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceprint.gallery import Gallery
    from faceprint.gallery.store import Store

    photos = sorted((lfw / "Laura_Bush").glob("*.jpg"))[:2]
    db = tmp_path / "gallery.db"
    monkeypatch.setenv("FACEPRINT_ENCRYPT", "0")
    with Gallery(db, engine) as g:  # a gallery from before encryption
        assert not g.store.encrypted
        g.enroll("Laura", photos)
        vectors = [t.vector for t in g.store.templates()]
        g.flush()
    assert _hits(tmp_path, _pieces(vectors))  # clear before
    monkeypatch.delenv("FACEPRINT_ENCRYPT")
    r = _cli("encryption", "enable", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    assert _hits(tmp_path, _pieces(vectors)) == []  # db vacuumed, log truncated, clear index shredded
    with Gallery(db, engine) as g:
        assert g.store.encrypted and g.identify(photos[0]).match.name == "Laura"
    other = tmp_path / "other.db"  # a second database on the same key, not named in the rotation
    with Store(other) as s:
        assert s.encrypted
    old = current_master_key(create=False).id
    r = _cli("encryption", "rotate", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    new = current_master_key(create=False).id
    assert new != old
    status = _cli("encryption", "status", "--db", str(db), "--library", str(other), "--json")
    assert status.returncode != 0  # other.db is a gallery, not a library: refused clearly
    import json

    status = json.loads(_cli("encryption", "status", "--db", str(db), "--json").stdout)
    assert status["databases"][0]["master_key_id"] == new
    with Store(other) as s:  # opened with key.previous, re-wrapped with the new key
        assert s.encrypted
    assert json.loads(_cli("encryption", "status", "--db", str(other), "--json").stdout)["databases"][0]["master_key_id"] == new
    with Gallery(db, engine) as g:
        assert g.identify(photos[1]).match.name == "Laura"
