"""The gallery beyond one machine, measured: PostgreSQL + Milvus against the embedded default.

Starts its own throwaway engines on 127.0.0.1 (a PostgreSQL cluster, Milvus Lite's gRPC
server: faceprint.scale.local) unless --pg / --milvus name running ones, then:

* ``identification``: the lfw-dev open-set protocol of benchmarks/identification.py (first
  image of each identity enrolled, the others probed) through the embedded gallery (SQLite
  + local index) and through PostgreSQL + Milvus: rank-1 / rank-5 of each, the share of
  probes whose candidate lists agree, single-probe identify latency p50/p99 of each.
* ``recall``: Milvus's index against exact search at --recall-size templates (real lfw-dev
  templates filled up with a face-like synthetic set, as benchmarks/search.py does):
  recall@1 / recall@10 per search setting (HNSW ``ef``), single-query and batch latency,
  insert + index build time, and the Milvus server's memory per template.
* ``load``: benchmarks/load.py's mixed enrol / identify / delete / list load against two
  `faceprint serve` replicas on PostgreSQL + Milvus, and against one server on a SQLite file
  in the same run: req/s and p99 side by side, zero 5xx, no lost or phantom subject.
* ``ray``: `index` of --ray-photos lfw-dev photos by the local indexer (worker processes, one
  per core) and on a Ray cluster (``--ray ADDRESS``, default a one-machine cluster started for
  it, as ``index --ray local`` does) per batch size: photos/s of each, and whether the faces,
  templates and people come out identical.

Prints JSON (medians of --runs runs where a timing is repeated).  --smoke: a few seconds
per part (CI runs it so).  Full size (documented in docs/scale-out.md):

    .venv/bin/python benchmarks/scale_out.py [--data DIR] [--vectors CACHE.npz] [--parts identification,recall,load]
        [--recall-size 1000000] [--load-seconds 30] [--ray-photos 1000] [--ray local|HOST:PORT]
        [--pg postgresql://...] [--milvus milvus://...] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from _common import data_dir, emit, machine

PARTS = ("identification", "recall", "load", "ray")


def _ms(times: list[float]) -> dict[str, float]:
    a = np.asarray(times) * 1000
    return {"p50": round(float(np.percentile(a, 50)), 2), "p99": round(float(np.percentile(a, 99)), 2), "n": len(a)}


def _fresh_db(pg_url: str) -> str:
    import psycopg

    name = "bench_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg_url.rsplit("/", 1)[0] + "/" + name


def _rss_mb(pid: int) -> float | None:
    """Resident memory of a process and its children (Milvus Lite runs its engine in the server process)."""
    total = 0
    try:
        pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        for p in pids:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    except OSError:
        return None
    return round(total / 1024, 1)


# -- identification -----------------------------------------------------------------------------


def identification(engine: Any, root: Path, cache: Path | None, identities: int | None, pg_url: str, milvus_url: str, probes_timed: int) -> dict[str, Any]:
    from identification import lfw_templates, split_gallery_probes

    from faceprint import Template
    from faceprint.gallery import Gallery

    paths, ids, names, vectors, ok = lfw_templates(engine, root, cache, identities)
    first, probes = split_gallery_probes(ids, ok)
    truth = [names[ids[i]] for i in probes]
    out: dict[str, Any] = {"gallery_subjects": int(first.sum()), "mated_probes": int(len(probes))}
    results = {}
    with tempfile.TemporaryDirectory(prefix="faceprint-scale-") as tmp:
        galleries = {
            "embedded": Gallery(Path(tmp) / "g.db", engine),
            "postgresql+milvus": Gallery(_fresh_db(pg_url), engine, vectors=f"{milvus_url}/bench_{uuid.uuid4().hex[:8]}"),
        }
        try:
            for kind, g in galleries.items():
                t0 = time.perf_counter()
                for i in np.flatnonzero(first):
                    g.add_templates(names[ids[i]], [Template(vector=vectors[i], model_id=engine.model_id, source=str(paths[i]))])
                enrol_s = time.perf_counter() - t0
                res = g.identify_vectors(vectors[probes], k=5, fpir=1e-3)
                rank = np.array([next((r for r, c in enumerate(x.candidates) if c.name == t), 99) for x, t in zip(res, truth)])
                timed = []
                for i in probes[:probes_timed]:
                    t1 = time.perf_counter()
                    g.identify_vectors(vectors[i : i + 1], k=5, fpir=1e-3)
                    timed.append(time.perf_counter() - t1)
                results[kind] = res
                out[kind] = {
                    "rank1": round(float(np.mean(rank == 0)), 4),
                    "rank5": round(float(np.mean(rank < 5)), 4),
                    "enrol_per_subject_ms": round(enrol_s / max(1, first.sum()) * 1000, 2),
                    "identify_latency_ms": _ms(timed),
                }
        finally:
            for g in galleries.values():
                g.close()
    a, b = results["embedded"], results["postgresql+milvus"]
    same = [[c.name for c in x.candidates] == [c.name for c in y.candidates] for x, y in zip(a, b)]
    out["candidate_lists_equal"] = round(float(np.mean(same)), 4)
    out["rank1_difference_pt"] = round(abs(out["embedded"]["rank1"] - out["postgresql+milvus"]["rank1"]) * 100, 3)
    return out


# -- recall ---------------------------------------------------------------------------------------


def recall(
    milvus_url: str, milvus_pid: int | None, size: int, queries: int, templates: Path | None, efs: list[int], runs: int, single_queries: int = 100
) -> dict[str, Any]:
    from search import load_templates, make_gallery, split_queries, synthetic_templates

    from faceprint.gallery.milvus import MilvusVectors

    real, labels, _ = load_templates(templates) if templates else synthetic_templates()
    q_idx, keep = split_queries(labels, len(real), queries)
    qv = real[q_idx]
    gallery, _ = make_gallery(real[keep], size)
    dim = gallery.shape[1]
    rss0 = _rss_mb(milvus_pid) if milvus_pid else None
    mv = MilvusVectors(f"{milvus_url}/recall_{uuid.uuid4().hex[:8]}", "bench-recall", dim, timeout=900)
    try:
        t0 = time.perf_counter()
        for s in range(0, len(gallery), 100_000):
            mv.add(np.arange(s, min(s + 100_000, len(gallery)), dtype=np.int64), gallery[s : s + 100_000], timeout=600, fresh_ids=True)
        mv._call("flush", lambda c: c.flush(mv.collection, timeout=3600))
        insert_s = time.perf_counter() - t0
        # Milvus Lite indexes flushed segments in the background and reports every index finished;
        # a release + load builds the index of every segment now (its load() is synchronous)
        mv._call("release", lambda c: c.release_collection(mv.collection, timeout=600))
        mv._call("wait for the index", lambda c: c.load_collection(mv.collection, timeout=3600))
        mv.search(qv[:1], 1)  # the first search waits for the index to be built and loaded
        build_s = time.perf_counter() - t0
        rss1 = _rss_mb(milvus_pid) if milvus_pid else None
        # exact truth by BLAS, in chunks
        truth = np.empty((len(qv), 10), np.int64)
        for s in range(0, len(qv), 256):
            sims = qv[s : s + 256] @ gallery.T
            top = np.argpartition(-sims, 10, axis=1)[:, :10]
            order = np.argsort(-np.take_along_axis(sims, top, 1), axis=1)
            truth[s : s + 256] = np.take_along_axis(top, order, 1)
        sweep = []
        for ef in efs:
            mv.ef = ef
            found, _ = mv.search(qv, 10)
            r1 = float(np.mean(found[:, 0] == truth[:, 0]))
            r10 = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))
            single = []
            for _ in range(runs):
                times = []
                for q in qv[:single_queries]:
                    t1 = time.perf_counter()
                    mv.search(q[None, :], 10)
                    times.append(time.perf_counter() - t1)
                single.append(times)
            batch = []
            for _ in range(runs):
                t1 = time.perf_counter()
                mv.search(qv[:64], 10)
                batch.append(time.perf_counter() - t1)
            lat = [_ms(t) for t in single]
            sweep.append(
                {
                    "ef": ef,
                    "recall_at_1": round(r1, 4),
                    "recall_at_10": round(r10, 4),
                    "single_query_ms": {"p50": statistics.median(x["p50"] for x in lat), "p99": statistics.median(x["p99"] for x in lat)},
                    "batch64_ms": round(statistics.median(batch) * 1000, 1),
                }
            )
        # the smallest ef that finds the exact top-1 for 99% of queries (else the best one seen)
        chosen = next((s for s in sweep if s["recall_at_1"] >= 0.99), max(sweep, key=lambda s: s["recall_at_1"]))
        return {
            "templates": int(len(gallery)),
            "queries": int(len(qv)),
            "index": mv.index_type,
            "params": {"M": mv.m, "efConstruction": mv.ef_construction},
            "insert_s": round(insert_s, 1),
            "insert_and_build_s": round(build_s, 1),
            "milvus_rss_mb": {"before": rss0, "after": rss1},
            "bytes_per_template": round((rss1 - rss0) * 2**20 / len(gallery), 1) if rss0 and rss1 else None,
            "sweep": sweep,
            "chosen_ef": chosen["ef"],
            "recall_at_1_chosen": chosen["recall_at_1"],
            "single_query_ms_chosen": chosen["single_query_ms"],
        }
    finally:
        try:
            mv.drop()
        except Exception as exc:  # best effort: an error above is the one to see
            print(f"could not drop the recall collection: {exc}", file=sys.stderr)
        mv.close()


# -- load -------------------------------------------------------------------------------------------


def load(engine: Any, lfw: Path, pg_url: str, milvus_url: str, seconds: float, clients: int, people: int) -> dict[str, Any]:
    from load import pick_people, run_load

    chosen = pick_people(engine, lfw, people)
    common = {"clients": clients, "seconds": seconds, "max_requests": int(400 * seconds) + 1, "quiet": True}
    single = run_load(engine, chosen, **common)
    shared = run_load(engine, chosen, db=_fresh_db(pg_url), vectors=f"{milvus_url}/load_{uuid.uuid4().hex[:8]}", replicas=2, **common)
    keep = ("ok", "requests", "requests_per_s", "latency_ms", "errors_5xx", "no_answer", "lost_subjects", "phantom_subjects", "index_consistent", "failures")
    pick = lambda r: {k: (r[k]["all"] if k == "latency_ms" else r[k]) for k in keep if k in r}  # noqa: E731
    return {
        "clients": clients,
        "seconds": seconds,
        "sqlite_one_server": pick(single),
        "postgresql_milvus_two_replicas": pick(shared),
        "throughput_ratio": round(shared["requests_per_s"] / single["requests_per_s"], 3) if single["requests_per_s"] else None,
    }


def ray_index(engine: Any, lfw: Path, photos: int, address: str, batches: list[int]) -> dict[str, Any]:
    import shutil

    from faceprint.library import Library

    def grouping(lib: Any) -> tuple[Any, dict[Any, np.ndarray]]:
        faces = {(Path(f.path).name, tuple(f.box)): f.vector for f in lib.store.faces(with_vectors=True)}
        people = sorted(sorted((Path(f["path"]).name, tuple(f["box"])) for f in p["faces"]) for p in lib.people())
        return people, faces

    with tempfile.TemporaryDirectory(prefix="faceprint-ray-bench-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for p in sorted(lfw.rglob("*.jpg"))[:photos]:
            shutil.copy(p, folder / p.name)
        out: dict[str, Any] = {"photos": photos, "cpus": os.cpu_count()}
        with Library(Path(tmp) / "local.db", engine) as lib:
            t0 = time.perf_counter()
            summary, _ = lib.index(folder)
            out["local"] = {
                "seconds": round(time.perf_counter() - t0, 1),
                "photos_per_s": round(summary.analysed / (time.perf_counter() - t0), 2),
                "faces": summary.faces,
            }
            want_people, want_faces = grouping(lib)
        runs = []
        for b in batches:
            with Library(Path(tmp) / f"ray-{b}.db", engine) as lib:
                t0 = time.perf_counter()
                summary, _ = lib.index(folder, ray=address, ray_batch=b)
                dt = time.perf_counter() - t0
                people, faces = grouping(lib)
            same_faces = faces.keys() == want_faces.keys() and all(np.allclose(faces[k], want_faces[k], atol=1e-5) for k in faces)
            runs.append(
                {
                    "batch": b,
                    "seconds": round(dt, 1),
                    "photos_per_s": round(summary.analysed / dt, 2),
                    "faces": summary.faces,
                    "same_faces_and_templates": bool(same_faces),
                    "same_people": people == want_people,
                }
            )
        out["ray"] = runs
        out["address"] = address
        best = max(runs, key=lambda r: r["photos_per_s"])
        out["ray_best_ratio_to_local"] = round(best["photos_per_s"] / out["local"]["photos_per_s"], 3)
        out["identical"] = all(r["same_faces_and_templates"] and r["same_people"] for r in runs)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated: {', '.join(PARTS)}")
    ap.add_argument("--vectors", default=None, help="lfw-dev templates cached by scripts/build_calibration.py --vectors (same model)")
    ap.add_argument("--identities", type=int, default=None, help="identification: only the first N identities")
    ap.add_argument("--recall-size", type=int, default=1_000_000)
    ap.add_argument("--recall-queries", type=int, default=1000)
    ap.add_argument("--ef", default="64,128,256,512", help="HNSW ef values to sweep")
    ap.add_argument("--single-queries", type=int, default=100, help="recall: queries timed one at a time per ef")
    ap.add_argument("--load-seconds", type=float, default=30.0)
    ap.add_argument("--load-clients", type=int, default=4)
    ap.add_argument("--load-people", type=int, default=12)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ray-photos", type=int, default=1000, help="ray: lfw-dev photos indexed each way")
    ap.add_argument("--ray-batches", default="1,4,16", help="ray: batch sizes to measure")
    ap.add_argument("--ray", default="local", help="ray: a running cluster's address, or local (started here)")
    ap.add_argument("--pg", default=None, help="a running PostgreSQL (a user who may CREATE DATABASE); default: a throwaway cluster")
    ap.add_argument("--milvus", default=None, help="a running Milvus, milvus://HOST:PORT; default: Milvus Lite started here")
    ap.add_argument("--smoke", action="store_true", help="seconds, not minutes (CI)")
    ap.add_argument("--partial", default=None, help="also write the JSON here after every part (a long run keeps what it measured)")
    args = ap.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if set(parts) - set(PARTS):
        ap.error(f"unknown part(s): {sorted(set(parts) - set(PARTS))}")
    if args.smoke:
        args.identities = args.identities or 60
        args.recall_size, args.recall_queries, args.ef, args.runs = min(args.recall_size, 5000), min(args.recall_queries, 100), "64,128", 1
        args.load_seconds, args.load_clients, args.load_people = min(args.load_seconds, 5), 2, 4
        args.ray_photos, args.ray_batches = min(args.ray_photos, 12), "4"
    root = data_dir(args.data) / "lfw-dev" / "images"
    os.environ.setdefault("FACEPRINT_ENCRYPT", "1")

    from faceprint import Engine
    from faceprint.scale.local import LocalMilvus, LocalPostgres

    engine = Engine()
    out: dict[str, Any] = {"benchmark": "scale_out", "smoke": args.smoke, "model_id": engine.model_id}
    pg = mv = None
    try:
        if args.pg:
            pg_url = args.pg
        else:
            pg = LocalPostgres(durable=True).start()
            pg_url = pg.url
        if args.milvus:
            milvus_url, milvus_pid = args.milvus.rstrip("/"), None
        else:
            mv = LocalMilvus().start()
            milvus_url, milvus_pid = mv.url, mv.pid
        out["engines"] = {"postgresql": "given" if args.pg else "throwaway cluster (fsync on)", "milvus": "given" if args.milvus else "Milvus Lite gRPC server"}

        def part(name: str, run: Any) -> None:
            """One part's figures, written to --partial as soon as they are in; a failing part
            is recorded with its error and the others still run."""
            t0 = time.perf_counter()
            try:
                out[name] = run()
                out[name]["seconds"] = round(time.perf_counter() - t0, 1)
            except Exception as exc:
                out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            if args.partial:
                Path(args.partial).write_text(json.dumps(out, indent=1, default=float))

        vectors_cache = Path(args.vectors) if args.vectors else None
        runners = {
            "identification": lambda: identification(engine, root, vectors_cache, args.identities, pg_url, milvus_url, 50 if args.smoke else 300),
            "load": lambda: load(engine, root, pg_url, milvus_url, args.load_seconds, args.load_clients, args.load_people),
            "ray": lambda: ray_index(engine, root, args.ray_photos, args.ray, [int(b) for b in args.ray_batches.split(",")]),
            "recall": lambda: recall(
                milvus_url,
                milvus_pid,
                args.recall_size,
                args.recall_queries,
                vectors_cache,
                [int(x) for x in args.ef.split(",")],
                args.runs,
                args.single_queries,
            ),
        }
        for name in runners:  # the long recall part last
            if name in parts:
                part(name, runners[name])
    finally:
        if mv is not None:
            mv.stop()
        if pg is not None:
            pg.stop()
    checks = {f"{name}_ran": "error" not in out[name] for name in PARTS if name in out}
    if "identification" in out and "error" not in out["identification"]:
        checks["rank1_within_0.1pt"] = out["identification"]["rank1_difference_pt"] <= 0.1
    if "recall" in out and "error" not in out["recall"]:
        checks["recall_at_1_at_least_0.99"] = out["recall"]["recall_at_1_chosen"] >= 0.99
    if "load" in out and "error" not in out["load"]:
        shared = out["load"]["postgresql_milvus_two_replicas"]
        checks["load_ok"] = bool(shared["ok"] and out["load"]["sqlite_one_server"]["ok"])
    if "ray" in out and "error" not in out["ray"]:
        checks["ray_identical_to_local"] = out["ray"]["identical"]
    out["checks"] = checks
    out["ok"] = all(checks.values())
    out["machine"] = machine()
    emit(out)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
