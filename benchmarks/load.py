"""Load test of the REST service: a real uvicorn server on loopback, concurrent clients.

Creates a temporary gallery database and an API key (enroll scope), starts
``python -m faceprint.cli serve`` as a subprocess, waits for ``/v1/ready``, then runs
``--clients`` threads for ``--seconds`` (and at most ``--max-requests`` requests in
all), each mixing enrol (multipart upload of an LFW photo), identify, delete and list
over its own share of ``--people`` LFW identities.  Every acknowledged create and
delete is recorded.  The server is then stopped with SIGTERM (graceful: exit 0
expected), the database is reopened with ``Gallery`` and checked against what the
clients were told:

* lost subjects: acknowledged as existing, missing from the database;
* phantom subjects: in the database, but acknowledged as deleted or never acknowledged;
* the index saved at shutdown is current, and its ids are exactly the store's template ids;
* every remaining subject is identified by its own enrolment photo.

During the run, identify must return the caller's live subject for its photo and never
a subject whose delete was acknowledged before the request was sent.

Prints JSON: request count and rate, latency percentiles overall and per operation,
status counts, and the checks.  Exit status 0 only when there was no 5xx, no request
without an answer, no lost or phantom subject, the index is consistent and every check
above passed; 1 otherwise (the JSON is printed either way).

    .venv/bin/python benchmarks/load.py [--data DIR] [--clients 4] [--seconds 30] [--people 12] [--port 0] [--json-only]
        [--db postgresql://... --vectors milvus://... --replicas 2]   (several replicas of one gallery: benchmarks/scale_out.py starts the engines)
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPO, data_dir, emit, machine

from faceprint.service.process import ServerProcess, free_port

OPS = ("enroll", "identify", "delete", "list")
EXAMPLES = 20  # failure messages kept in the JSON


def _log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def pick_people(engine: Any, lfw: Path, n: int) -> list[tuple[str, Path]]:
    """n LFW people, each with one photo in which the detector finds a face."""
    people: list[tuple[str, Path]] = []
    for folder in sorted(p for p in lfw.iterdir() if p.is_dir()):
        photos = sorted(folder.glob("*.jpg"))
        if photos and engine.detect(photos[0]):
            people.append((folder.name, photos[0]))
            if len(people) == n:
                return people
    raise SystemExit(f"{lfw} has only {len(people)} people with a detectable face; --people {n} asked for more")


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    a = np.asarray(values) * 1000.0
    return {
        "p50": round(float(np.percentile(a, 50)), 1),
        "p90": round(float(np.percentile(a, 90)), 1),
        "p99": round(float(np.percentile(a, 99)), 1),
        "max": round(float(a.max()), 1),
    }


class Load:
    """What the clients did and were told; shared by the client threads (under ``lock``)."""

    def __init__(self, urls: list[str], key: str, people: list[tuple[str, Path]], clients: int, seconds: float, max_requests: int) -> None:
        self.urls, self.key, self.people, self.clients = urls, key, people, clients
        self.seconds, self.max_requests = seconds, max_requests
        self.lock = threading.Lock()
        self.issued = 0  # requests started (the hard cap counts these)
        self.latency: dict[str, list[float]] = {op: [] for op in OPS}
        self.status: Counter[str] = Counter()
        self.status_by_op: dict[str, Counter[str]] = {op: Counter() for op in OPS}
        self.failures: list[str] = []
        self.counts = Counter()  # failure kinds
        self.live: dict[str, Path] = {}  # told exists -> its enrolment photo
        self.acknowledged: set[str] = set()  # every name whose create was acknowledged
        self.deleted_at: dict[str, float] = {}  # told deleted -> when the answer came
        self.uncertain: set[str] = set()  # create/delete sent but no answer: outcome unknown
        self.stop_at = 0.0

    def fail(self, kind: str, msg: str) -> None:
        with self.lock:
            self.counts[kind] += 1
            if len(self.failures) < EXAMPLES:
                self.failures.append(msg)

    def _take_slot(self) -> bool:
        with self.lock:
            if self.issued >= self.max_requests or time.monotonic() >= self.stop_at:
                return False
            self.issued += 1
            return True

    def worker(self, t: int, httpx: Any) -> None:
        rng = random.Random(1000 + t)
        mine = self.people[t :: self.clients]  # this thread alone writes these people's subjects
        current: dict[str, str] = {}  # person -> its live subject
        serial = 0
        headers = {"Authorization": f"Bearer {self.key}"}
        turn = [t]  # with several replicas, consecutive requests go to the next one: a read follows its write elsewhere
        with ExitStack() as stack:
            clients = [stack.enter_context(httpx.Client(base_url=u, headers=headers, timeout=60)) for u in self.urls]

            def call(op: str, method: str, url: str, **kw: Any) -> Any:
                client = clients[turn[0] % len(clients)]
                turn[0] += 1
                t0 = time.perf_counter()
                try:
                    r = client.request(method, url, **kw)
                finally:
                    dt = time.perf_counter() - t0
                with self.lock:
                    self.latency[op].append(dt)
                    self.status[str(r.status_code)] += 1
                    self.status_by_op[op][str(r.status_code)] += 1
                if r.status_code >= 500:
                    self.fail("5xx", f"{method} {url} -> {r.status_code} {r.text[:300]}")
                return r

            while self._take_slot():
                person, photo = rng.choice(mine)
                op = rng.random()
                name = current.get(person)
                try:
                    if name is None and op < 0.45:
                        serial += 1
                        name = f"t{t}-{serial}-{person}"
                        try:
                            r = call(
                                "enroll",
                                "POST",
                                f"/v1/subjects/{name}/faces",
                                files=[("files", (photo.name, photo.read_bytes(), "image/jpeg"))],
                                data={"face": "center"},
                            )
                        except httpx.HTTPError:
                            with self.lock:
                                self.uncertain.add(name)
                            raise
                        if r.status_code != 201:
                            if r.status_code < 500:
                                self.fail("unexpected_status", f"enroll {name}: {r.status_code} {r.text[:300]}")
                            continue
                        current[person] = name
                        with self.lock:
                            self.live[name] = photo
                            self.acknowledged.add(name)
                    elif name is not None and op < 0.25:
                        try:
                            r = call("delete", "DELETE", f"/v1/subjects/{name}")
                        except httpx.HTTPError:
                            with self.lock:
                                self.uncertain.add(name)
                            raise
                        if r.status_code != 200:
                            if r.status_code < 500:
                                self.fail("unexpected_status", f"delete {name}: {r.status_code} {r.text[:300]}")
                            continue
                        if r.json().get("templates") != 1:  # deleted all the same
                            self.fail("unexpected_status", f"delete {name}: {r.text[:300]} (1 template was enrolled)")
                        del current[person]
                        with self.lock:
                            self.live.pop(name)
                            self.deleted_at[name] = time.monotonic()
                    elif op > 0.95:
                        r = call("list", "GET", "/v1/subjects", params={"limit": 1000})
                        if r.status_code != 200 and r.status_code < 500:
                            self.fail("unexpected_status", f"list: {r.status_code} {r.text[:300]}")
                    else:
                        sent = time.monotonic()
                        r = call(
                            "identify",
                            "POST",
                            "/v1/identify",
                            files=[("file", (photo.name, photo.read_bytes(), "image/jpeg"))],
                            params={"face": "center", "k": 3},
                        )
                        if r.status_code != 200:
                            if r.status_code < 500:
                                self.fail("unexpected_status", f"identify {person}: {r.status_code} {r.text[:300]}")
                            continue
                        body = r.json()
                        with self.lock:
                            gone = {n for n, at in self.deleted_at.items() if at < sent}
                        stale = {c["name"] for c in body["candidates"]} & gone
                        if stale:
                            self.fail("identify_returned_deleted", f"identify {person} returned deleted subject(s) {sorted(stale)}")
                        if name is not None and body["name"] != name:
                            self.fail("identify_mismatch", f"identify {person}: expected {name}, got {body['name']} ({body['candidates'][:2]})")
                except httpx.HTTPError as exc:  # no answer: the outcome is unknown, which must not happen
                    self.fail("no_answer", f"{type(exc).__name__}: {exc}")

    def run(self, httpx: Any) -> float:
        """Run the clients; returns the wall time.  Each stops by itself at the deadline or
        the request cap; threads still busy (a hung request) are waited for at most
        the request timeout and reported."""
        self.stop_at = time.monotonic() + self.seconds
        t0 = time.monotonic()
        pool = [threading.Thread(target=self.worker, args=(t, httpx), daemon=True, name=f"load-client-{t}") for t in range(self.clients)]
        for th in pool:
            th.start()
        for th in pool:
            th.join(max(0.0, self.stop_at - time.monotonic()) + 90)
        hung = sum(th.is_alive() for th in pool)
        if hung:
            self.fail("client_hung", f"{hung} client thread(s) still running 90 s after the deadline")
        return time.monotonic() - t0


def list_subjects(httpx: Any, url: str, key: str) -> set[str] | None:
    """Every subject name the server lists (all pages); None on an error answer."""
    names: set[str] = set()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        while True:
            r = client.get("/v1/subjects", params={"limit": 1000, "offset": len(names)})
            if r.status_code != 200:
                return None
            page = [s["name"] for s in r.json()["subjects"]]
            names.update(page)
            if not page or len(names) >= r.json()["total"]:
                return names


def check_database(db: Path | str, engine: Any, load: Load, vectors: str | None = None) -> dict[str, Any]:
    """Reopen the database after shutdown and compare it with what the clients were told
    (with a shared vector backend: its ids, read before anything could reconcile them)."""
    from faceprint.gallery import Gallery
    from faceprint.gallery.index import read_header

    if vectors is not None:
        from faceprint.gallery.milvus import MilvusVectors

        raw = MilvusVectors(vectors, engine.model_id, engine.embedder.dim)
        vector_ids = set(raw.ids().tolist())
        raw.close()
    gallery = Gallery(db, engine, vectors=vectors)
    try:
        if vectors is None:
            generation = gallery.store.generation
            header = read_header(gallery.index_path)  # before gallery.index loads (or rebuilds) it
            saved_current = bool(header) and header.get("generation") == f"{generation}:{gallery.model_id}"
        else:
            saved_current = True  # nothing is saved beside a shared backend: its ids are compared below
        in_db = {s.name for s in gallery.store.subjects()}
        template_ids = {t.id for t in gallery.store.templates()}
        index_ids = vector_ids if vectors is not None else set(gallery.index.ids().tolist())
        told = set(load.live)
        lost = sorted(told - in_db)
        phantom = sorted(n for n in in_db - told if n not in load.uncertain)
        unidentified = []
        for name, photo in sorted(load.live.items()):
            if name in in_db:
                who = gallery.identify(photo, face="center", k=1)
                if who.match is None or who.match.name != name:
                    unidentified.append(name)
    finally:
        gallery.close()
    return {
        "subjects_in_db": len(in_db),
        "subjects_told_exist": len(told),
        "lost_subjects": len(lost),
        "phantom_subjects": len(phantom),
        "lost_examples": lost[:EXAMPLES],
        "phantom_examples": phantom[:EXAMPLES],
        "uncertain_subjects": len(load.uncertain),
        "templates_in_db": len(template_ids),
        "templates_per_subject_ok": len(template_ids) == len(in_db),
        "index_saved_current": saved_current,
        "index_ids_match_store": index_ids == template_ids,
        "index_consistent": saved_current and index_ids == template_ids,
        "unidentified_subjects": len(unidentified),
        "unidentified_examples": unidentified[:EXAMPLES],
    }


def run_load(
    engine: Any,
    people: list[tuple[str, Path]],
    *,
    clients: int,
    seconds: float,
    max_requests: int,
    quiet: bool,
    db: str | None = None,
    vectors: str | None = None,
    replicas: int = 1,
    port: int = 0,
) -> dict[str, Any]:
    """One load run against ``replicas`` servers on the gallery ``db`` (default: a new SQLite
    file) and ``vectors`` (a ``milvus://`` URL, or None for the local index); the JSON dict."""
    import httpx

    from faceprint.gallery.store import open_store
    from faceprint.service import auth

    out: dict[str, Any] = {
        "benchmark": "load",
        "dataset": "lfw-dev",
        "clients": clients,
        "people": len(people),
        "seconds_planned": seconds,
        "max_requests": max_requests,
        "backend": "postgresql+milvus" if vectors else ("postgresql" if db and db.startswith("postgres") else "sqlite"),
        "replicas": replicas,
    }
    with tempfile.TemporaryDirectory(prefix="faceprint-load-") as tmp:
        db = db or str(Path(tmp) / "load.db")
        store = open_store(db)
        try:
            key = auth.create_key(store, "load-benchmark", ["enroll"])
        finally:
            store.close()
        servers = []
        for r in range(replicas):
            p = (port + r if port else 0) or free_port()
            cmd = [sys.executable, "-m", "faceprint.cli", "serve", "--db", db, "--host", "127.0.0.1", "--port", str(p), "--log-level", "warning", "--no-ui"]
            if vectors:
                cmd += ["--vectors", vectors]
            servers.append(ServerProcess(cmd, p, Path(tmp) / f"server-{r}.log", cwd=REPO))
        load = Load([s.url for s in servers], key, people, clients, seconds, max_requests)
        started = False
        try:
            t0 = time.monotonic()
            for server in servers:
                server.wait_ready()
            started = True
            out["server_start_s"] = round(time.monotonic() - t0, 1)
            _log(quiet, f"{replicas} server(s) ready after {out['server_start_s']} s; {clients} client(s) for {seconds:g} s")
            elapsed = load.run(httpx)
            # what every running server lists must be what the clients were told, too
            out["listed_matches_told"] = all(list_subjects(httpx, s.url, key) == set(load.live) for s in servers)
        except (RuntimeError, httpx.HTTPError) as exc:
            load.fail("server", f"{type(exc).__name__}: {exc}")
            elapsed = 0.0
        finally:
            codes = [server.stop() for server in servers]
            out["server_exit_code"] = next((c for c in codes if c != 0), 0)
        log = "".join(server.output(1_000_000) for server in servers)

        lat_all = [x for op in OPS for x in load.latency[op]]
        requests = len(lat_all)
        out.update(
            {
                "requests": requests,
                "seconds": round(elapsed, 2),
                "requests_per_s": round(requests / elapsed, 1) if elapsed else 0.0,
                "latency_ms": {"all": percentiles(lat_all), **{op: percentiles(load.latency[op]) for op in OPS}},
                "operations": {op: len(load.latency[op]) for op in OPS},
                "status": dict(sorted(load.status.items())),
                "status_by_operation": {op: dict(sorted(c.items())) for op, c in load.status_by_op.items()},
                "errors_5xx": sum(n for s, n in load.status.items() if s.startswith("5")),
                "no_answer": load.counts["no_answer"],
                "unexpected_status": load.counts["unexpected_status"],
                "identify_mismatches": load.counts["identify_mismatch"],
                "identify_returned_deleted": load.counts["identify_returned_deleted"],
                "acknowledged_creates": len(load.acknowledged),
                "acknowledged_deletes": len(load.deleted_at),
            }
        )
        if started:
            out.update(check_database(db, engine, load, vectors))
        else:
            out.update({"lost_subjects": None, "phantom_subjects": None, "index_consistent": False})
        out["server_tracebacks"] = log.count("Traceback")
        ok = (
            started
            and out["server_exit_code"] == 0
            and out["errors_5xx"] == 0
            and out["no_answer"] == 0
            and out["unexpected_status"] == 0
            and out["identify_mismatches"] == 0
            and out["identify_returned_deleted"] == 0
            and not load.counts["client_hung"]
            and out["lost_subjects"] == 0
            and out["phantom_subjects"] == 0
            and out["index_consistent"]
            and out.get("unidentified_subjects") == 0
            and out.get("listed_matches_told") is True
            and out["server_tracebacks"] == 0
        )
        out["ok"] = bool(ok)
        out["failures"] = load.failures
        if not ok:
            out["server_log_tail"] = log[-4000:]
    _log(
        quiet,
        f"{out['requests']} requests in {out['seconds']} s = {out['requests_per_s']} req/s; p50 {out['latency_ms']['all']['p50']} ms, p99 {out['latency_ms']['all']['p99']} ms; ok={out['ok']}",
    )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--clients", type=int, default=4, help="client threads")
    ap.add_argument("--seconds", type=float, default=30.0, help="how long the clients send requests")
    ap.add_argument("--people", type=int, default=12, help="LFW identities, shared out among the clients")
    ap.add_argument("--max-requests", type=int, default=None, help="hard cap on requests in all (default 200 per second of --seconds)")
    ap.add_argument("--port", type=int, default=0, help="server port (0: a free one)")
    ap.add_argument("--db", default=None, help="gallery store: a postgresql:// URL (default: a new SQLite file in a temporary folder)")
    ap.add_argument("--vectors", default=None, help="shared vector backend, milvus://HOST:PORT/PREFIX (default: the local index)")
    ap.add_argument("--replicas", type=int, default=1, help="servers on the same gallery (more than one needs --db postgresql://...)")
    ap.add_argument("--json-only", action="store_true", help="no progress lines on stderr")
    args = ap.parse_args()
    if args.clients < 1 or args.seconds <= 0 or args.people < args.clients:
        ap.error("need --clients >= 1, --seconds > 0 and --people >= --clients")
    if args.replicas > 1 and not (args.db or "").startswith("postgres"):
        ap.error("several --replicas share one gallery only on PostgreSQL: pass --db postgresql://... (and --vectors milvus://...)")
    max_requests = args.max_requests or int(200 * args.seconds) + 1
    lfw = data_dir(args.data) / "lfw-dev" / "images"

    from faceprint import Engine

    engine = Engine()
    people = pick_people(engine, lfw, args.people)
    out = run_load(
        engine,
        people,
        clients=args.clients,
        seconds=args.seconds,
        max_requests=max_requests,
        quiet=args.json_only,
        db=args.db,
        vectors=args.vectors,
        replicas=args.replicas,
        port=args.port,
    )
    out["machine"] = machine()
    emit(out)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
