"""The identity gallery on real photos and real SQLite files: enrolment, 1:N identification,
deletion from store and index, crash safety (SIGKILL mid-enrolment)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from faceprint import Engine, Template
from faceprint.errors import InputError, MultipleFacesError, NoFaceError, QualityRejected
from faceprint.gallery import Gallery, SubjectExists, SubjectNotFound, fmr_for_fpir

REPO = Path(__file__).resolve().parents[1]
PEOPLE = ["Abel_Pacheco", "Al_Sharpton", "Albert_Costa", "Amelia_Vega"]


def _photos(lfw: Path, name: str) -> list[Path]:
    photos = sorted((lfw / name).glob("*.jpg"))
    if len(photos) < 2:
        pytest.skip(f"{name} needs at least two photos in lfw-dev")
    return photos


@pytest.fixture()
def gallery(tmp_path: Path, engine: Engine):
    g = Gallery(tmp_path / "g.db", engine)
    yield g
    g.close()


def test_enroll_identify_open_set(gallery: Gallery, lfw: Path) -> None:
    for name in PEOPLE[:3]:
        res = gallery.enroll(name, _photos(lfw, name)[:1])
        assert res.subject.name == name and len(res.template_ids) == 1 and not res.rejected
    probe = _photos(lfw, "Albert_Costa")[1]
    who = gallery.identify(probe, k=3)
    assert who.match is not None and who.match.name == "Albert_Costa"
    assert [c.name for c in who.candidates][0] == "Albert_Costa" and len(who.candidates) == 3
    assert who.to_dict()["name"] == "Albert_Costa" and who.fpir == 1e-3
    stranger = gallery.identify(_photos(lfw, "Amelia_Vega")[0])
    assert stranger.match is None and stranger.to_dict()["name"] is None
    assert stranger.candidates[0].score < stranger.threshold
    decision = gallery.verify(probe, "Albert_Costa")
    assert decision.match and decision.fmr == 1e-3


def test_several_templates_per_subject_and_rejections(gallery: Gallery, lfw: Path, data_dir: Path) -> None:
    photos = _photos(lfw, "Albert_Costa")[:3]
    group = data_dir / "samples" / "group-photos" / "010_2.jpg"
    noface = data_dir / "samples" / "group-photos" / "017_0.jpg"
    res = gallery.enroll("Albert_Costa", [*photos, group, noface])
    assert len(res.template_ids) == 3 and res.subject.templates == 3
    assert {type(e) for _, e in res.rejected} == {MultipleFacesError, NoFaceError}
    with pytest.raises(NoFaceError):
        gallery.enroll("Nobody", [noface])
    with pytest.raises(SubjectNotFound):
        gallery.subject("Nobody")  # a failed enrolment writes nothing
    with pytest.raises(QualityRejected, match="px between the eyes"):
        gallery.enroll("Pair", [group], face=0)  # a group photo's faces are too small to be a reference
    assert gallery.enroll("Pair", [group], face=0, check_quality=False).subject.templates == 1


def test_rename_delete_and_index_agree(gallery: Gallery, lfw: Path) -> None:
    for name in PEOPLE:
        gallery.enroll(name, _photos(lfw, name)[:2])
    gallery.rename("Abel_Pacheco", "Abel")
    with pytest.raises(SubjectExists):
        gallery.rename("Abel", "Amelia_Vega")
    assert gallery.identify(_photos(lfw, "Abel_Pacheco")[2]).match.name == "Abel"
    removed = gallery.delete("Al_Sharpton")
    assert removed == 2
    ids, _, _ = gallery.store.vectors(gallery.model_id)
    assert set(gallery.index.ids().tolist()) == set(ids.tolist())
    res = gallery.identify(_photos(lfw, "Al_Sharpton")[0], k=10)
    assert all(c.name != "Al_Sharpton" for c in res.candidates)
    actions = [a["action"] for a in gallery.store.audit_log()]
    assert {"create_subject", "add_templates", "rename_subject", "delete_subject"} <= set(actions)


def test_index_rebuilt_when_stale_or_missing(tmp_path: Path, engine: Engine, lfw: Path) -> None:
    db = tmp_path / "g.db"
    with Gallery(db, engine) as g:
        g.enroll("Abel_Pacheco", _photos(lfw, "Abel_Pacheco")[:1])
    index_file = db.with_name(db.name + ".index")
    assert index_file.exists()
    # another writer adds a template behind the index's back (stale generation)
    with Gallery(db, engine, save_interval=3600) as g:
        g.enroll("Amelia_Vega", _photos(lfw, "Amelia_Vega")[:1])
        g._dirty = False  # simulate a crash before the index was written
    with Gallery(db, engine) as g:
        assert g.identify(_photos(lfw, "Amelia_Vega")[1]).match.name == "Amelia_Vega"
    index_file.unlink()
    with Gallery(db, engine) as g:
        assert len(g.index) == 2


def test_templates_of_other_models_are_not_compared(tmp_path: Path, engine: Engine, lfw: Path) -> None:
    from faceprint import Settings

    with Gallery(tmp_path / "g.db", engine) as g:
        g.enroll("Abel_Pacheco", _photos(lfw, "Abel_Pacheco")[:1])
    plain = Engine(Settings(flip=False))
    with Gallery(tmp_path / "g.db", plain) as g:
        assert len(g.index) == 0
        assert [s.name for s in g.stale_subjects()] == ["Abel_Pacheco"]
        with pytest.raises(InputError, match="no templates of model 'sface-2021dec-int8bq'"):
            g.verify(_photos(lfw, "Abel_Pacheco")[1], "Abel_Pacheco")
        with pytest.raises(InputError, match="cannot join"):
            g.add_templates("X", [Template(vector=np.ones(128, np.float32) / np.sqrt(128), model_id="other")])


def test_fpir_threshold_grows_with_gallery_size(gallery: Gallery) -> None:
    assert fmr_for_fpir(1e-3, 1) == pytest.approx(1e-3)
    assert fmr_for_fpir(1e-3, 1000) == pytest.approx(1.0005e-6, rel=1e-3)
    with pytest.raises(InputError):
        fmr_for_fpir(0.0, 10)
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 128)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    gallery.add_templates("one", [Template(vector=v[0], model_id=gallery.model_id)])
    t1, note1 = gallery.threshold_for_fpir(1e-3)
    gallery.add_templates("many", [Template(vector=x, model_id=gallery.model_id) for x in v[1:]])
    t50, note50 = gallery.threshold_for_fpir(1e-3)
    assert t50 > t1 and not note1 and not note50
    t_big, note = gallery.threshold_for_fpir(1e-6)
    assert "below what calibration" in note and t_big >= t50


def test_corrupt_database_is_a_named_error(tmp_path: Path, engine: Engine) -> None:
    from faceprint.gallery import StoreError

    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="bad.db"):
        Gallery(bad, engine)


CRASH_SCRIPT = """
import sys
from pathlib import Path
from faceprint import Engine, Template
from faceprint.gallery import Gallery
import numpy as np
g = Gallery(Path(sys.argv[1]), Engine(), save_interval=0.2)
rng = np.random.default_rng(1)
for i in range(100000):
    v = rng.normal(size=128).astype(np.float32)
    v /= np.linalg.norm(v)
    g.add_templates(f"subject-{i}", [Template(vector=v, model_id=g.model_id)])
    print(f"ack subject-{i}", flush=True)
"""


def test_sigkill_mid_enrolment_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", CRASH_SCRIPT, str(db)], stdout=subprocess.PIPE, text=True, env=env)
    acked: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while len(acked) < 150 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("ack "):
            acked.append(line.split()[1])
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert len(acked) >= 150, "the enrolment loop did not get going"
    # the database is intact and holds every acknowledged subject
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    with Gallery(db, Engine()) as g:
        names = {s.name for s in g.subjects()}
        assert set(acked) <= names
        ids, _, vecs = g.store.vectors(g.model_id)
        assert set(g.index.ids().tolist()) == set(ids.tolist())
        # each acknowledged subject is found by its own template
        for k in range(0, len(acked), 37):
            name = acked[k]
            sid = g.subject(name).id
            vec = g.store.templates(subject_id=sid)[0].vector
            assert g.identify(Template(vector=vec, model_id=g.model_id)).match.name == name


def test_reembed_after_model_change(tmp_path: Path, engine: Engine, lfw: Path) -> None:
    from faceprint import Settings

    db = tmp_path / "g.db"
    with Gallery(db, engine) as g:
        g.enroll("Kept", _photos(lfw, "Abel_Pacheco")[:2], keep_images=True)
        g.enroll("Lost", _photos(lfw, "Amelia_Vega")[:1])
        assert g.store.read("SELECT COUNT(*) FROM images")[0][0] == 2
    with Gallery(db, Engine(Settings(flip=False))) as g:  # "the default model changed"
        assert {s.name for s in g.stale_subjects()} == {"Kept", "Lost"}
        res = g.reembed()
        assert res == {"reembedded": ["Kept"], "need_new_photos": ["Lost"]}
        assert g.identify(_photos(lfw, "Abel_Pacheco")[2]).match.name == "Kept"
        g.delete("Kept")
        assert g.store.read("SELECT COUNT(*) FROM images")[0][0] == 0  # erasure removes kept photos


def test_two_writers_on_one_database(tmp_path: Path, engine: Engine, lfw: Path) -> None:
    """A server's gallery sees templates another process enrolled, and never stamps its
    saved index with a generation it does not reflect."""
    db = tmp_path / "g.db"
    server, other = Gallery(db, engine), Gallery(db, engine)
    try:
        server.enroll("Abel_Pacheco", _photos(lfw, "Abel_Pacheco")[:1])
        assert len(server.index) == 1
        other.enroll("Amelia_Vega", _photos(lfw, "Amelia_Vega")[:1])  # behind the server's back
        server.enroll("Albert_Costa", _photos(lfw, "Albert_Costa")[:1])
        assert server.identify(_photos(lfw, "Amelia_Vega")[1]).match.name == "Amelia_Vega"
        other.delete("Abel_Pacheco")
        assert all(c.name != "Abel_Pacheco" for c in server.identify(_photos(lfw, "Abel_Pacheco")[1]).candidates)
        server.flush()
    finally:
        server.close()
        other.close()
    with Gallery(db, engine) as g:
        ids, _, _ = g.store.vectors(g.model_id)
        assert sorted(g.index.ids().tolist()) == sorted(ids.tolist()) and len(ids) == 2


def test_gallery_switches_to_the_scan_index_as_it_grows(tmp_path: Path, engine: Engine, lfw: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past EXACT_LIMIT the gallery rebuilds as a PQ scan index, saves it, reloads it as such,
    and a real probe still finds its subject among 3,000 distractors; deletion reaches the codes."""
    import faceprint.gallery.gallery as gallery_mod
    from faceprint.gallery.index import read_header

    monkeypatch.setattr(gallery_mod, "EXACT_LIMIT", 2000)
    db = tmp_path / "g.db"
    rng = np.random.default_rng(5)
    fill = rng.standard_normal((3000, 128)).astype(np.float32)
    fill /= np.linalg.norm(fill, axis=1, keepdims=True)
    abel = _photos(lfw, "Abel_Pacheco")
    with Gallery(db, engine) as g:
        g.enroll("Abel_Pacheco", abel[:1])
        assert g.index.kind == "exact"
        g.add_templates("filler", [Template(vector=v, model_id=g.model_id) for v in fill[:1500]])
        assert g.index.kind == "exact"
        g.add_templates("filler", [Template(vector=v, model_id=g.model_id) for v in fill[1500:]], create=False)
        assert g.index.kind == "pqscan" and len(g.index) == 3001 and g.index.trained
    header = read_header(db.with_name(db.name + ".index"))
    assert header is not None and header["kind"] == "pqscan" and header["count"] == 3001
    with Gallery(db, engine) as g:
        assert g.index.kind == "pqscan"  # loaded from the file, not rebuilt as exact
        res = g.identify(abel[1])
        assert res.match is not None and res.match.name == "Abel_Pacheco"
        g.delete("Abel_Pacheco")
        assert len(g.index) == 3000
        res = g.identify(abel[1])
        assert res.match is None
    with Gallery(db, engine, index_kind="exact") as g:  # a forced kind rebuilds whatever was saved
        assert g.index.kind == "exact" and len(g.index) == 3000
    with pytest.raises(InputError, match="index kind"):
        Gallery(db, engine, index_kind="ivf")


def test_index_saves_are_spaced_by_their_cost(tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow index save (a large gallery) is not repeated after every write: saves take at most ~10% of the time."""
    rng = np.random.default_rng(9)

    def vec() -> np.ndarray:
        v = rng.standard_normal(128).astype(np.float32)
        return v / np.linalg.norm(v)

    # the gallery's clock is a fake one that only the "slow" save moves: no sleep, and no timing
    # window a busy machine could miss
    import types

    import faceprint.gallery.gallery as gallery_module

    now = [1000.0]
    monkeypatch.setattr(gallery_module, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    with Gallery(tmp_path / "g.db", engine, save_interval=0.0) as g:
        g.add_templates("a", [Template(vector=vec(), model_id=g.model_id)])
        index = g.index
        real_save = index.save
        calls = []

        def slow_save(*a, **kw):
            calls.append(now[0])
            now[0] += 0.2  # this save "takes" 0.2 s
            return real_save(*a, **kw)

        monkeypatch.setattr(index, "save", slow_save)
        g._last_save, g._last_save_cost = 0.0, 0.0  # the first save's own (tiny) cost must not delay the next
        g.add_templates("b", [Template(vector=vec(), model_id=g.model_id)])  # saves (interval 0), learns it costs 0.2 s
        g.add_templates("c", [Template(vector=vec(), model_id=g.model_id)])  # within 10 x 0.2 s: not saved again
        assert len(calls) == 1 and g._dirty
        g.flush()  # an explicit flush always saves
        assert len(calls) == 2 and not g._dirty
    with Gallery(tmp_path / "g.db", engine) as g:
        assert len(g.index) == 3
