"""Batch work and the photo library beyond one machine, on real engines started here on
loopback: the library on PostgreSQL (a throwaway cluster), and `index` / `enroll-folder` /
`eval` on a Ray head bound to 127.0.0.1 (token authentication), actors killed mid-run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scale_engines import PEOPLE, fresh_db, grouping, photos_of, start_or_skip

from faceprint.gallery import Gallery

pytestmark = pytest.mark.slow

psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL tests need psycopg: pip install 'faceprint[scale]'")


# -- the photo library on PostgreSQL ------------------------------------------------------------


def test_the_photo_library_on_postgresql_groups_and_corrects_as_the_file(pg: Any, engine: Any, data_dir: Path, tmp_path: Path) -> None:
    """Index the same photos into a SQLite library and a PostgreSQL one: the same faces in the
    same people; the same corrections (name, merge, split, reject) give the same result; a
    second run skips every unchanged photo; removing photos erases their faces; the change key
    moves with every write so cached suggestions are recomputed."""
    from faceprint.library import Library
    from faceprint.library.store import PgLibraryStore

    photos = tmp_path / "photos"
    photos.mkdir()
    for sub, n in (("group-photos", 9), ("deepface", 6)):
        for f in sorted((data_dir / "samples" / sub).iterdir())[:n]:
            if f.suffix.lower() in (".jpg", ".jpeg", ".png"):
                (photos / f"{sub}-{f.name}").write_bytes(f.read_bytes())
    libs = [Library(tmp_path / "lib.db", engine), Library(fresh_db(pg), engine)]
    try:
        assert isinstance(libs[1].store, PgLibraryStore) and libs[1].store.encrypted
        for lib in libs:
            summary, _ = lib.index(photos, in_process=True)
            assert summary.analysed >= 5 and summary.faces > 5
        assert grouping(libs[0]) == grouping(libs[1])
        key = libs[1].store.change_key()
        for lib in libs:
            people = lib.people()
            big, other = people[0]["id"], people[1]["id"]
            lib.rename(big, "Ada")
            lib.store.merge_people(big, other)
            split_off = [f["id"] for f in lib.people()[0]["faces"]][-1:]
            lib.store.split_faces(big, split_off)
        assert libs[1].store.change_key() != key
        assert grouping(libs[0]) == grouping(libs[1])
        # the library people live in, the same on both: hide, bulk merge, move, paging and search
        pages = []
        for lib in libs:
            ada = lib.store.person_by_name("Ada")["id"]
            unnamed = [p["id"] for p in lib.people() if p["name"] is None]
            lib.store.set_hidden(unnamed[:1], True)
            merged = lib.store.merge_many(ada, [lib.store.new_person("Cy"), lib.store.new_person(None)])
            assert merged == 2 and lib.store.person(ada)["name"] == "Ada"
            face = lib.store.faces(person_id=ada)[0].id
            moved_to = lib.store.move_faces([face], None, name="Grace 100%")
            lib.cluster(recluster=True)
            assert lib.store.face(face).person_id == moved_to and lib.store.person(unnamed[0])["hidden"] == 1
            rows, total = lib.store.people_page(limit=3, sort="name")
            found = lib.store.people_page(query="ce 100%")[0]
            pages.append(([r["name"] for r in rows], total, [r["name"] for r in found], lib.store.people_page(hidden=True)[1]))
            photo = lib.store.photo(lib.store.faces(person_id=moved_to)[0].photo_id)
            assert any(f["name"] == "Grace 100%" for f in photo["faces"])
            assert lib.store.person_photos(moved_to)[1] == 1
        assert pages[0] == pages[1] and pages[0][2] == ["Grace 100%"] and pages[0][3] == 1
        assert grouping(libs[0]) == grouping(libs[1])
        again = [lib.index(photos, in_process=True)[0] for lib in libs]
        assert [s.analysed for s in again] == [0, 0] and again[0].unchanged == again[1].unchanged >= 5
        gone = sorted(photos.iterdir())[:3]
        for f in gone:
            f.unlink()
        removed = [lib.index(photos, in_process=True)[0].removed for lib in libs]
        assert removed == [3, 3] and grouping(libs[0]) == grouping(libs[1])
        with psycopg.connect(libs[1].store.url) as conn:
            paths = {r[0] for r in conn.execute("SELECT path FROM faceprint_photo_library.photos")}
        assert not any(Path(p).name == gone[0].name for p in paths)
    finally:
        for lib in libs:
            lib.close()


# -- batch indexing on Ray ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_head():
    from faceprint.batch import process_token
    from faceprint.scale.local import LocalRay

    # the token this test process's other Ray sessions use (Ray reads one per process)
    head = start_or_skip(lambda: LocalRay(num_cpus=2, token_path=Path(process_token())))
    yield head
    head.stop()


def _photo_folder(data_dir: Path, dest: Path, n_group: int = 6, n_deepface: int = 6) -> Path:
    dest.mkdir()
    for sub, n in (("group-photos", n_group), ("deepface", n_deepface)):
        for f in sorted((data_dir / "samples" / sub).iterdir())[:n]:
            if f.suffix.lower() in (".jpg", ".jpeg", ".png"):
                (dest / f"{sub}-{f.name}").write_bytes(f.read_bytes())
    return dest


def _faces(lib: Any) -> dict[tuple[str, tuple[float, ...]], np.ndarray]:
    return {(Path(f.path).name, tuple(f.box)): f.vector for f in lib.store.faces(with_vectors=True)}


def test_index_on_ray_equals_the_local_indexer(ray_head: Any, engine: Any, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`index --ray` against a Ray head on 127.0.0.1 (token auth; every node address is
    loopback): the same faces, templates equal to float tolerance and the same people as the
    local indexer; a second run has nothing to send to Ray."""
    from faceprint.batch import ray_session
    from faceprint.library import Library

    for k, v in ray_head.env().items():
        monkeypatch.setenv(k, v)
    photos = _photo_folder(data_dir, tmp_path / "photos")
    with Library(tmp_path / "local.db", engine) as local, Library(tmp_path / "ray.db", engine) as distributed:
        s_local, _ = local.index(photos, in_process=True)
        s_ray, _ = distributed.index(photos, ray=ray_head.address)
        assert s_ray.analysed == s_local.analysed == len(list(photos.iterdir())) and s_ray.faces == s_local.faces > 5
        a, b = _faces(local), _faces(distributed)
        assert a.keys() == b.keys()
        assert all(np.allclose(a[k], b[k], atol=1e-5) for k in a)
        assert grouping(local)["groups"] == grouping(distributed)["groups"]
        again, _ = distributed.index(photos, ray=ray_head.address)
        assert again.analysed == 0 and again.unchanged == s_ray.analysed
    with ray_session(ray_head.address) as ray:
        nodes = ray.nodes()
    assert nodes and {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}, nodes


def test_index_on_ray_survives_killed_actors(ray_head: Any, engine: Any, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL the actors holding the models while `index --ray` runs: Ray restarts them and
    runs their batches again; the run completes with every photo written once, none missing."""
    import os
    import signal

    from faceprint.library import Library

    for k, v in ray_head.env().items():
        monkeypatch.setenv(k, v)
    photos = _photo_folder(data_dir, tmp_path / "photos", n_group=8, n_deepface=6)
    n = len(list(photos.iterdir()))
    written: list[int] = []
    killed: list[int] = []

    def progress(stage: str, done: int, total: int) -> None:
        if stage != "analyse":
            return
        written.append(done)
        if done == 2 and not killed:  # some results are in; the rest are being computed
            for pid in ray_head.worker_pids("Analyser"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    with Library(tmp_path / "ray.db", engine) as lib:
        summary, _ = lib.index(photos, ray=ray_head.address, ray_batch=1, progress=progress, cluster=False)
        paths = [r["path"] for r in lib.store.read("SELECT path FROM photos")]
    assert killed, "no actor process was found to kill"
    assert summary.analysed == n and written == list(range(1, n + 1))
    assert sorted(paths) == sorted(str(p.resolve()) for p in photos.iterdir())  # each once, none missing


def test_enroll_folder_and_eval_on_ray_equal_the_local_path(
    ray_head: Any, engine: Any, lfw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Any
) -> None:
    """`enroll-folder --ray` and the embedding of `eval identify --ray` give what the local path
    gives (the same subjects, templates to float tolerance; the same report figures); enrolling
    the folder again adds nothing."""
    for k, v in ray_head.env().items():
        monkeypatch.setenv(k, v)
    tree = tmp_path / "people"
    for name in PEOPLE[:4]:
        (tree / name).mkdir(parents=True)
        for p in photos_of(lfw, name)[:3]:
            (tree / name / p.name).write_bytes(p.read_bytes())
    with Gallery(tmp_path / "local.db", engine) as local, Gallery(tmp_path / "ray.db", engine) as distributed:
        a = local.enroll_folder(tree)
        b = distributed.enroll_folder(tree, ray=ray_head.address)
        assert a["templates_added"] == b["templates_added"] == 12 and a["subjects_written"] == b["subjects_written"] == 4, (a, b)
        ta = {(t.source, local.store.subject_by_id(t.subject_id).name): t.vector for t in local.store.templates()}
        tb = {(t.source, distributed.store.subject_by_id(t.subject_id).name): t.vector for t in distributed.store.templates()}
        assert ta.keys() == tb.keys() and all(np.allclose(ta[k], tb[k], atol=1e-5) for k in ta)
        again = distributed.enroll_folder(tree, ray=ray_head.address)
        assert again["already_enrolled"] == 12 and again["analysed"] == 0 and again["templates_added"] == 0
    plain = cli("eval", "identify", "--root", str(tree), "--out", str(tmp_path / "e1"), "--json")
    on_ray = cli("eval", "identify", "--root", str(tree), "--out", str(tmp_path / "e2"), "--ray", ray_head.address, "--json")
    assert plain.returncode == 0 and on_ray.returncode == 0, on_ray.stderr
    x, y = plain.json(), on_ray.json()
    assert {k: x[k] for k in ("rank1", "rank5", "mated_probes")} == {k: y[k] for k in ("rank1", "rank5", "mated_probes")}
