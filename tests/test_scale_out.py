"""The gallery beyond one machine, on the real engines started here on loopback: the store on
PostgreSQL (a throwaway cluster), the vectors in Milvus (Milvus Lite's gRPC server), two real
`faceprint serve` replicas sharing them, and the faults an operator meets (a replica killed,
Milvus or PostgreSQL away and back)."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from scale_engines import PEOPLE, fresh_db, fresh_vectors, photos_of
from servers import RealServer, free_port, server_env

from faceprint.gallery import Gallery
from faceprint.gallery.store import NewTemplate, PgStore, Store, SubjectExists, open_store

pytestmark = pytest.mark.slow

psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL tests need psycopg: pip install 'faceprint[scale]'")
pytest.importorskip("pymilvus", reason="the Milvus tests need pymilvus and milvus-lite: pip install 'faceprint[scale]'")


# -- the store on PostgreSQL ----------------------------------------------------------------


def _exercise(store: Store) -> dict[str, Any]:
    """The same writes on any store; what they leave behind, engine-neutral."""
    rng = np.random.default_rng(7)
    vec = lambda: (v := rng.standard_normal(128).astype(np.float32)) / np.linalg.norm(v)  # noqa: E731
    store.create_subject("Émile", {"team": "a"})
    store.add_templates("Émile", [NewTemplate(vec(), "m1", quality=0.25, face_score=0.9, source="a.jpg", box=[1.5, 2, 3, 4])])
    store.add_templates("bob", [NewTemplate(vec(), "m1"), NewTemplate(vec(), "m2")], images={"f" * 64: b"photo bytes"})
    store.add_templates("Zoë", [NewTemplate(vec(), "m1")])
    store.update_subject("bob", new_name="Bob", metadata={"x": 1})
    with pytest.raises(SubjectExists):
        store.create_subject("Zoë")
    erased = store.delete_subject("Bob")
    ids, sids, vecs = store.vectors("m1")
    return {
        "subjects": [(s.name, s.metadata, s.templates, s.models) for s in store.subjects()],
        "templates": [(t.model_id, t.quality, t.face_score, t.source, t.box, t.image_sha256) for t in store.templates()],
        "vectors": vecs.round(6).tolist(),
        "erased": {k: v for k, v in erased[3].items() if k != "wal_truncated"},
        "generation": store.generation,
        "audit": [(a["action"], a["detail"]) for a in reversed(store.audit_log())],
        "images": store.image("f" * 64),
        "counts": store.model_counts(),
        "schema": store.schema_version,
        "owners": store.owners_of(list(range(1, 70_001))),  # more ids than one statement may carry on either engine
    }


def test_the_postgresql_store_behaves_as_the_sqlite_file(pg: Any, tmp_path: Path) -> None:
    """One sequence of writes on both engines leaves the same subjects (in the same order),
    templates, vectors, audit log, erasure and schema version; the PostgreSQL one is sealed
    (templates and kept photos are ciphertext in the server's tables)."""
    url = fresh_db(pg)
    with Store(tmp_path / "g.db") as lite, open_store(url) as pgs:
        assert isinstance(pgs, PgStore) and pgs.encrypted
        assert _exercise(pgs) == _exercise(lite)
    with psycopg.connect(url) as conn:
        blobs = [bytes(r[0]) for r in conn.execute("SELECT vector FROM faceprint_gallery.templates")]
        audit = " ".join(r[0] for r in conn.execute("SELECT detail FROM faceprint_gallery.audit"))
        leftover = conn.execute("SELECT count(*) FROM faceprint_gallery.images").fetchone()[0]
    assert blobs and all(len(b) > 512 for b in blobs)  # sealed: nonce + tag around the 512 clear bytes
    assert "bob" not in audit.lower() and leftover == 0  # erased: the name left the audit log, the kept photo its table
    with open_store(url) as again:  # reopening runs no migration twice
        assert again.schema_version == 2 and [s.name for s in again.subjects()] == ["Zoë", "Émile"]


def test_writers_on_several_connections_are_serialised(pg: Any) -> None:
    """Two stores on one database (two replicas) racing: one subject per name, and every write
    advances the generation exactly once (the advisory write lock, as BEGIN IMMEDIATE in SQLite)."""
    url = fresh_db(pg)
    a, b = open_store(url), open_store(url)
    try:
        outcomes: list[str] = []

        def create(store: Store, name: str) -> None:
            try:
                store.create_subject(name)
                outcomes.append("created")
            except SubjectExists:
                outcomes.append("exists")

        v = np.ones(128, np.float32) / np.sqrt(128)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: create(a if i % 2 else b, f"p{i // 2}"), range(40)))
            list(pool.map(lambda i: (a if i % 2 else b).add_templates(f"p{i % 20}", [NewTemplate(v, "m")]), range(60)))
        assert outcomes.count("created") == 20 and outcomes.count("exists") == 20
        assert a.count_subjects() == 20 and b.template_count("m") == 60
        assert int(a.generation) == 60  # one bump per add_templates, none lost
    finally:
        a.close()
        b.close()


def test_an_unreachable_postgresql_is_a_clear_error(tmp_path: Path) -> None:
    from faceprint.sqlite import StoreError

    port = free_port()  # nobody listens there
    with pytest.raises(StoreError, match=r"cannot reach PostgreSQL .*is the server running"):
        open_store(f"postgresql://faceprint:secret@127.0.0.1:{port}/faceprint")
    try:
        open_store(f"postgresql://faceprint:secret@127.0.0.1:{port}/faceprint")
    except StoreError as exc:
        assert "secret" not in str(exc)  # the password is never shown


def test_encryption_enable_seals_a_clear_postgresql_gallery(pg: Any, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`faceprint encryption enable --db postgresql://...` seals every template and kept photo of
    a gallery made clear, in place; `status` then names its master key."""
    url = fresh_db(pg)
    monkeypatch.setenv("FACEPRINT_ENCRYPT", "0")
    with open_store(url) as store:
        assert not store.encrypted
        store.add_templates("a", [NewTemplate(np.ones(128, np.float32) / np.sqrt(128), "m")], images={"f" * 64: b"photo"})
    monkeypatch.setenv("FACEPRINT_ENCRYPT", "1")
    r = cli("encryption", "enable", "--db", url, "--json")
    assert r.returncode == 0 and r.json()[0]["sealed"] == {"templates.vector": 1, "images.bytes": 1}, r.stdout + r.stderr
    status = cli("encryption", "status", "--db", url, "--json").json()
    assert status["databases"][0]["encrypted"] and status["databases"][0]["master_key_id"] == status["key"]["id"]
    with open_store(url) as store:
        assert store.encrypted and store.image("f" * 64) == b"photo"
    with psycopg.connect(url) as conn:
        assert b"photo" not in bytes(conn.execute("SELECT bytes FROM faceprint_gallery.images").fetchone()[0])


# -- the gallery on PostgreSQL + Milvus ----------------------------------------------------------


def test_identify_through_milvus_equals_the_local_index(pg: Any, milvus: Any, engine: Any, lfw: Path, tmp_path: Path) -> None:
    """The same enrolments in the embedded gallery and in PostgreSQL + Milvus: the same
    candidates with the same scores for every probe; a second gallery object on the same
    backends (another replica) answers the same at once."""
    local = Gallery(tmp_path / "g.db", engine)
    shared = Gallery(fresh_db(pg), engine, vectors=fresh_vectors(milvus))
    other = Gallery(shared.store.url, engine, vectors=shared.vectors_url)
    try:
        for name in PEOPLE:
            for g in (local, shared):
                g.enroll(name, photos_of(lfw, name)[:2], face="largest")
        for name in PEOPLE:
            probe = engine.embed(photos_of(lfw, name)[2], face="largest")
            want = local.identify(probe, k=5)
            for g in (shared, other):
                got = g.identify(probe, k=5)
                assert [c.name for c in got.candidates] == [c.name for c in want.candidates]
                assert np.allclose([c.score for c in got.candidates], [c.score for c in want.candidates], atol=1e-5)
                assert got.match is not None and got.match.name == name
        assert other.index.ids().tolist() == shared.store.template_ids(engine.model_id).tolist()
        # erasure: gone from the store, from Milvus and from every replica's answers at once
        erased = other.erase(PEOPLE[0])
        assert erased["vectors_deleted"] and erased["templates"] == 2
        probe = engine.embed(photos_of(lfw, PEOPLE[0])[2], face="largest")
        assert PEOPLE[0] not in [c.name for c in shared.identify(probe).candidates]
        assert len(shared.index.ids()) == len(PEOPLE) * 2 - 2
    finally:
        for g in (local, shared, other):
            g.close()


def test_replicas_starting_together_share_one_new_collection(milvus: Any) -> None:
    """Replicas started at the same moment on a new prefix all create its collection: one wins,
    the others must wait for it rather than fail (Milvus Lite answers the losers "File exists"
    before the winner's collection is listed -- a fresh-clone CI run caught a replica exiting)."""
    from faceprint.gallery.milvus import MilvusVectors

    for _ in range(3):
        url = fresh_vectors(milvus)
        replicas = [MilvusVectors(url, "race-test", 8) for _ in range(4)]
        start = threading.Barrier(len(replicas))

        def first_call(v: MilvusVectors, start: threading.Barrier = start) -> int:
            start.wait()
            return v.count(fresh=True)

        with ThreadPoolExecutor(len(replicas)) as pool:
            assert list(pool.map(first_call, replicas)) == [0] * len(replicas)
        replicas[0].add(np.array([1]), np.ones((1, 8), np.float32) / np.sqrt(8))
        assert all(v.count(fresh=True) == 1 for v in replicas)


class _RacingClient:
    """The one moment the real server cannot be made to show on demand: our create loses to
    another replica's, whose collection is listed only ``listed_after`` checks later."""

    def __init__(self, listed_after: int) -> None:
        self.checks, self.listed_after, self.loaded = 0, listed_after, False

    def has_collection(self, name: str, timeout: float) -> bool:
        self.checks += 1
        return self.checks > self.listed_after

    def create_schema(self, **kw: Any) -> Any:
        return type("Schema", (), {"add_field": lambda self, *a, **k: None})()

    def prepare_index_params(self) -> Any:
        return type("Params", (), {"add_index": lambda self, **k: None})()

    def create_collection(self, *a: Any, **kw: Any) -> None:
        raise RuntimeError("[Errno 17] File exists: .../collections/t_x")

    def describe_collection(self, name: str, timeout: float) -> dict[str, Any]:
        return {"fields": [{"name": "vector", "params": {"dim": 8}}]}

    def load_collection(self, name: str, timeout: float) -> None:
        self.loaded = True


def test_a_lost_create_race_waits_for_the_winner(monkeypatch: pytest.MonkeyPatch) -> None:
    from faceprint.gallery import milvus as mv

    v = mv.MilvusVectors("milvus://127.0.0.1:1/t", "race-test", 8)
    slow = _RacingClient(listed_after=4)  # missing before our create and for 3 checks after it
    v._ensure(slow)
    assert slow.loaded and slow.checks == 5 and v._ready
    monkeypatch.setattr(mv, "_CREATE_RACE_WAIT", 0.3)
    never = _RacingClient(listed_after=10**9)  # a real failure: the error is the create's own
    with pytest.raises(RuntimeError, match="File exists"):
        mv.MilvusVectors("milvus://127.0.0.1:1/t", "race-test", 8)._ensure(never)
    assert not never.loaded


def test_milvus_that_lost_or_gained_vectors_is_reconciled(pg: Any, milvus: Any, engine: Any, lfw: Path) -> None:
    """The store is the source of truth: vectors deleted behind the gallery's back come back,
    phantoms go, on open (counts differ), on heal() and on `subjects reindex`."""
    from faceprint.gallery.milvus import MilvusVectors

    db, vectors = fresh_db(pg), fresh_vectors(milvus)
    with Gallery(db, engine, vectors=vectors) as g:
        for name in PEOPLE[:3]:
            g.enroll(name, photos_of(lfw, name)[:2], face="largest")
        want = g.store.template_ids(engine.model_id).tolist()
    raw = MilvusVectors(vectors, engine.model_id, engine.embedder.dim)
    raw.remove(np.array(want[:3]))  # lost
    raw.add(np.array([999_999]), np.ones((1, engine.embedder.dim), np.float32) / np.sqrt(engine.embedder.dim))  # phantom
    with Gallery(db, engine, vectors=vectors) as g:
        assert g.index.ids().tolist() == want  # reconciled on open
        raw.remove(np.array(want[-1:]))
        stats = g.heal()
        assert stats is not None and stats["added"] == 1 and g.index.ids().tolist() == want
        assert g.heal() is None  # nothing to do
        res = g.reindex(full=True)
        assert res["added"] == len(want) and g.index.ids().tolist() == want
    raw.close()


# -- REST replicas ------------------------------------------------------------------------------------


def _replica(tmp_path: Path, db: str, vectors: str, tag: str) -> RealServer:
    port = free_port()
    args = [sys.executable, "-m", "faceprint.cli", "serve", "--db", db, "--vectors", vectors, "--port", str(port), "--no-ui"]
    return RealServer(args, port, tmp_path / f"replica-{tag}.log", env=server_env(FACEPRINT_PG_TIMEOUT="2"))  # 503 after 2 s while PostgreSQL is away


def _enrol(client: httpx.Client, url: str, key: str, name: str, photo: Path) -> httpx.Response:
    return client.post(
        f"{url}/v1/subjects/{name}/faces",
        headers={"Authorization": f"Bearer {key}"},
        files={"files": (photo.name, photo.read_bytes(), "image/jpeg")},
        data={"face": "largest"},
    )


def _identify(client: httpx.Client, url: str, key: str, photo: Path) -> httpx.Response:
    return client.post(f"{url}/v1/identify", headers={"Authorization": f"Bearer {key}"}, files={"file": (photo.name, photo.read_bytes(), "image/jpeg")})


@pytest.fixture()
def replicas(pg: Any, milvus: Any, tmp_path: Path):
    """Two `faceprint serve` processes on one PostgreSQL database and one Milvus prefix, and an enrol key."""
    from faceprint.service.auth import create_key

    db, vectors = fresh_db(pg), fresh_vectors(milvus)
    with open_store(db) as store:
        key = create_key(store, "tests", ["enroll"])
    servers = [_replica(tmp_path, db, vectors, tag) for tag in "ab"]
    try:
        for s in servers:
            s.wait_ready()
        yield servers, key, db, vectors
    finally:
        for s in servers:
            s.stop()


def test_two_replicas_share_one_gallery(replicas: Any, lfw: Path, engine: Any) -> None:
    """Read-your-writes across replicas: enrolled on A, identified on B at once; deleted on B,
    gone on A at once; a key revoked once is refused by both; /v1/ready names both backends."""
    (a, b), key, db, vectors = replicas
    with httpx.Client(timeout=60) as c:
        ready = c.get(b.url + "/v1/ready").json()
        assert ready["status"] == "ready" and "templates in" in ready["checks"]["index"], ready
        for name in PEOPLE[:3]:
            r = _enrol(c, a.url, key, name, photos_of(lfw, name)[0])
            assert r.status_code == 201, r.text
            r = _identify(c, b.url, key, photos_of(lfw, name)[1])  # the other replica, immediately
            assert r.status_code == 200 and r.json()["name"] == name, r.text
        assert c.delete(f"{b.url}/v1/subjects/{PEOPLE[0]}", headers={"Authorization": f"Bearer {key}"}).json()["vectors_deleted"] is True
        r = _identify(c, a.url, key, photos_of(lfw, PEOPLE[0])[1])
        assert r.status_code == 200 and PEOPLE[0] not in [x["name"] for x in r.json()["candidates"]]
        listed = c.get(a.url + "/v1/subjects", headers={"Authorization": f"Bearer {key}"}).json()
        assert sorted(s["name"] for s in listed["subjects"]) == sorted(PEOPLE[1:3])
        from faceprint.service.auth import revoke_key

        with open_store(db) as store:
            revoke_key(store, key)
        for s in (a, b):
            assert c.get(s.url + "/v1/subjects", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_a_replica_killed_during_enrolments_loses_nothing_acknowledged(replicas: Any, lfw: Path, engine: Any) -> None:
    """SIGKILL one of two replicas while clients enrol on both: every enrolment either replica
    acknowledged is in the store and identified through the survivor, the survivor answers
    every request it gets without a 5xx, and after its periodic check store and Milvus agree."""
    (a, b), key, db, vectors = replicas
    names = [p.name for p in sorted(lfw.iterdir()) if len(list(p.glob("*.jpg"))) >= 2][:40]
    acked: dict[str, Path] = {}
    survivor_5xx: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        with httpx.Client(timeout=60) as c:
            for j, name in enumerate(names[i::4]):
                target = a if (i + j) % 2 else b
                try:
                    r = _enrol(c, target.url, key, name, photos_of(lfw, name)[0])
                except httpx.TransportError:
                    continue  # the killed replica: not acknowledged
                if r.status_code == 201:
                    with lock:
                        acked[name] = photos_of(lfw, name)[1]
                elif target is b and r.status_code >= 500:
                    survivor_5xx.append(r.text)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    while len(acked) < 8:
        time.sleep(0.05)
    a.proc.kill()  # SIGKILL mid-run
    for t in threads:
        t.join()
    assert not survivor_5xx, survivor_5xx[:3]
    with open_store(db) as store:
        stored = {s.name for s in store.subjects()}
        store_ids = store.template_ids(engine.model_id).tolist()
    assert set(acked) <= stored, f"acknowledged but lost: {set(acked) - stored}"
    with httpx.Client(timeout=60) as c:
        # each acknowledged enrolment is found again by its own photo: a lost template fails
        # this, while a hard pair of two photos of one person (lfw has some, below the FPIR
        # 0.1% threshold) does not -- which names get enrolled depends on the run's timing
        for name in acked:
            r = _identify(c, b.url, key, photos_of(lfw, name)[0])
            assert r.status_code == 200 and r.json()["name"] == name, (name, r.text)
    from faceprint.gallery.milvus import MilvusVectors

    raw = MilvusVectors(vectors, engine.model_id, engine.embedder.dim)
    deadline = time.monotonic() + 20  # the survivor's periodic check removes a phantom the killed one left
    while raw.ids().tolist() != store_ids and time.monotonic() < deadline:
        time.sleep(0.5)
    assert raw.ids().tolist() == store_ids
    raw.close()


def test_milvus_away_is_503_then_service_resumes(replicas: Any, milvus: Any, lfw: Path) -> None:
    """Milvus stopped during requests: identify and enrol answer 503 with Retry-After (never a
    500, never an empty answer), /v1/ready says not ready; once it is back every replica serves
    again by itself and store and vectors agree."""
    (a, b), key, db, vectors = replicas
    name = PEOPLE[1]
    with httpx.Client(timeout=60) as c:
        assert _enrol(c, a.url, key, name, photos_of(lfw, name)[0]).status_code == 201
        milvus.stop(keep=True)
        try:
            r = _identify(c, b.url, key, photos_of(lfw, name)[1])
            assert r.status_code == 503 and r.json()["error"]["code"] == "backend_unavailable" and r.headers.get("retry-after"), r.text
            r = _enrol(c, a.url, key, PEOPLE[2], photos_of(lfw, PEOPLE[2])[0])
            assert r.status_code == 503 and r.json()["error"]["code"] == "backend_unavailable", r.text
            ready = c.get(a.url + "/v1/ready")
            assert ready.status_code == 503 and ready.headers.get("retry-after"), ready.text
        finally:
            milvus.restart()
        for s in (a, b):
            deadline = time.monotonic() + 30
            while (r := _identify(c, s.url, key, photos_of(lfw, name)[1])).status_code == 503 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert r.status_code == 200 and r.json()["name"] == name, r.text
        r = _enrol(c, b.url, key, PEOPLE[2], photos_of(lfw, PEOPLE[2])[0])  # the refused enrolment, retried
        assert r.status_code == 201, r.text
        assert _identify(c, a.url, key, photos_of(lfw, PEOPLE[2])[1]).json()["name"] == PEOPLE[2]


def test_milvus_restarted_during_a_load_run(replicas: Any, milvus: Any, lfw: Path, engine: Any) -> None:
    """Clients enrol and identify on both replicas while Milvus is stopped and restarted under
    them: every answer is a success or a 503 backend_unavailable (never another 5xx), answers
    succeed again once it is back, every acknowledged enrolment is identified afterwards, and
    store and Milvus hold the same templates."""
    (a, b), key, db, vectors = replicas
    names = [p.name for p in sorted(lfw.iterdir()) if len(list(p.glob("*.jpg"))) >= 2][40:100]
    acked: dict[str, Path] = {}
    bad: list[str] = []
    seen: list[tuple[float, int]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def client(i: int) -> None:
        mine = iter(names[i::3])
        with httpx.Client(timeout=60) as c:
            for j in range(10_000):
                if stop.is_set():
                    return
                target = (a, b)[(i + j) % 2]
                name = next(mine, None)
                if name is not None:
                    r = _enrol(c, target.url, key, name, photos_of(lfw, name)[0])
                else:
                    with lock:
                        name = sorted(acked)[j % len(acked)] if acked else names[0]
                    r = _identify(c, target.url, key, photos_of(lfw, name)[1])
                with lock:
                    seen.append((time.monotonic(), r.status_code))
                    if r.status_code >= 500 and not (r.status_code == 503 and r.json()["error"]["code"] == "backend_unavailable"):
                        bad.append(r.text[:300])
                    if r.status_code == 201:
                        acked[name] = photos_of(lfw, name)[1]
                time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    milvus.stop(keep=True)
    time.sleep(2.0)
    milvus.restart()
    back = time.monotonic()
    deadline = back + 30
    while time.monotonic() < deadline and not any(t > back + 1 and code in (200, 201) for t, code in seen):
        time.sleep(0.2)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    assert not bad, bad[:3]
    assert any(code == 503 for _, code in seen), "the outage was never seen"
    assert any(t > back + 1 and code in (200, 201) for t, code in seen), "service did not come back after the restart"
    with httpx.Client(timeout=60) as c:
        # each acknowledged enrolment is found again by its own photo: a lost template fails
        # this, while a hard pair of two photos of one person (lfw has some, below the FPIR
        # 0.1% threshold) does not -- which names get enrolled depends on the run's timing
        for name in acked:
            r = _identify(c, b.url, key, photos_of(lfw, name)[0])
            assert r.status_code == 200 and r.json()["name"] == name, (name, r.text)
    from faceprint.gallery.milvus import MilvusVectors

    with open_store(db) as store:
        want = store.template_ids(engine.model_id).tolist()
    raw = MilvusVectors(vectors, engine.model_id, engine.embedder.dim)
    deadline = time.monotonic() + 20
    while raw.ids().tolist() != want and time.monotonic() < deadline:
        time.sleep(0.5)
    assert raw.ids().tolist() == want
    raw.close()


def test_postgresql_away_is_503_then_service_resumes(replicas: Any, pg: Any, lfw: Path) -> None:
    """PostgreSQL killed (SIGKILL of the postmaster) under a running replica: requests answer
    503 backend_unavailable with Retry-After (the key check included), /v1/ready says which
    backend is away; restarted, the replica serves again by itself with nothing lost."""
    (a, b), key, db, vectors = replicas
    name = PEOPLE[3]
    with httpx.Client(timeout=60) as c:
        assert _enrol(c, a.url, key, name, photos_of(lfw, name)[0]).status_code == 201
        pg.kill()
        try:
            r = _identify(c, a.url, key, photos_of(lfw, name)[1])
            assert r.status_code == 503 and r.json()["error"]["code"] == "backend_unavailable" and r.headers.get("retry-after"), r.text
            ready = c.get(b.url + "/v1/ready")
            assert ready.status_code == 503 and ready.json()["checks"]["database"] != "ok", ready.text
        finally:
            pg.restart()
        deadline = time.monotonic() + 30
        while (r := _identify(c, a.url, key, photos_of(lfw, name)[1])).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert r.status_code == 200 and r.json()["name"] == name, r.text
        assert c.get(b.url + "/v1/ready").status_code == 200
