"""1:N vector search: exact vs the PQ scan vs HNSW (float32 and int8) at 10k, 100k and 1M templates.

Gallery: real face templates (LFW-dev, from --templates, an .npz with
``vectors`` (n, 128) float32 and optionally ``errors`` / ``paths`` / ``labels`` /
``model_id``) filled up to each size with random unit vectors
(``np.random.default_rng(0)``).  Without --templates (or $FACEPRINT_TEMPLATES) a
synthetic face-like set stands in: 6,000 cluster centres with 3-5 members each,
same-cluster cosine about 0.6-0.8.  Queries: held-out real templates, other
images of identities that stay in the gallery (one per identity per round).

For each size: build time, bytes per template, single-query latency p50/p99
(one query at a time), batch-of-64 latency p50/p99, recall@1 / recall@10 of
each index against exact float32 search on the same queries, and a sweep of
the PQ scan's ``candidates`` and HNSW's ``expansion_search``.  The kind
faceprint would choose is marked ``chosen_kind``; int8 variants run at
--quantized-sizes (default: sizes >= 1M, the largest size with --smoke).
HNSW, the graph index faceprint no longer chooses by itself, runs up to
--hnsw-max templates (default 100k: its 1M build takes 10-30 minutes on two
cores).  Exact timings that would take longer than --exact-budget seconds are
measured on a subset and marked ``estimated``.

    .venv/bin/python benchmarks/search.py --templates /tmp/lfw_vectors.npz [--sizes 10000,100000,1000000] [--queries 1000] [--hnsw-max 1000000] [--smoke]
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import emit, machine

from faceprint.gallery.index import DEFAULT_HNSW, DEFAULT_PQSCAN, ExactIndex, HNSWIndex, PQScanIndex, make_index

DIM = 128
K = 10
BATCH = 64
TARGET = {"n": 1_000_000, "p99_single_ms": 5.0, "recall_at_1": 0.99}


# -- data -----------------------------------------------------------------------------


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def load_templates(path: Path) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    with np.load(path, allow_pickle=False) as z:
        vecs = np.asarray(z["vectors"], np.float32)
        ok = np.ones(len(vecs), bool)
        if "errors" in z.files:
            ok &= np.asarray(z["errors"]).astype(str) == ""
        labels = None
        if "labels" in z.files:
            labels = np.asarray(z["labels"]).astype(str)
        elif "paths" in z.files:
            labels = np.array([Path(str(p)).parent.name for p in z["paths"]])
        model_id = str(z["model_id"]) if "model_id" in z.files else None
    norms = np.linalg.norm(vecs, axis=1)
    ok &= np.isfinite(norms) & (norms > 0)
    vecs = unit(vecs[ok])
    labels = labels[ok] if labels is not None else None
    info = {"source": str(path), "model_id": model_id, "rows": int(ok.size), "usable": int(ok.sum())}
    return vecs, labels, info


def synthetic_templates(seed: int = 1, centres: int = 6000) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Face-like stand-in: clusters whose members have cosine ~0.6-0.8 with each other."""
    rng = np.random.default_rng(seed)
    c = unit(rng.standard_normal((centres, DIM), dtype=np.float32))
    sizes = rng.integers(3, 6, centres)
    sigma = rng.uniform(0.05, 0.07, centres)  # E[cos(member, member)] ~ 1 / (1 + DIM * sigma^2)
    owner = np.repeat(np.arange(centres), sizes)
    vecs = unit(c[owner] + sigma[owner, None] * rng.standard_normal((len(owner), DIM), dtype=np.float32))
    return (
        vecs,
        owner.astype(str),
        {"source": "synthetic (6,000 clusters of 3-5, same-cluster cosine ~0.6-0.8)", "model_id": None, "rows": len(vecs), "usable": len(vecs)},
    )


def split_queries(labels: np.ndarray | None, n: int, q: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Query rows (one per identity per round, never an identity's last image) and gallery rows, mates first."""
    rng = np.random.default_rng(seed)
    if labels is None:
        perm = rng.permutation(n)
        return perm[:q], perm[q:]
    groups: dict[str, list[int]] = {}
    for i in rng.permutation(n).tolist():
        groups.setdefault(labels[i], []).append(i)
    names = sorted(groups)
    order = [names[i] for i in rng.permutation(len(names))]
    queries: list[int] = []
    while len(queries) < q:
        took = False
        for name in order:
            if len(groups[name]) >= 2 and len(queries) < q:
                queries.append(groups[name].pop())
                took = True
        if not took:
            break
    qset = set(labels[queries].tolist())
    mates = [i for name in order if name in qset for i in groups[name]]
    others = [i for name in order if name not in qset for i in groups[name]]
    return np.array(queries, np.int64), np.array(mates + others, np.int64)


def make_fill(real: np.ndarray, n: int, kind: str, seed: int = 0) -> np.ndarray:
    """``n`` filler unit vectors: isotropic random ("random") or a Gaussian fitted to the real templates ("facelike")."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), np.float32)
    if kind == "facelike":
        mean = real.mean(axis=0)
        chol = np.linalg.cholesky(np.cov(real.T) + 1e-6 * np.eye(DIM)).astype(np.float32)
    for lo in range(0, n, 200_000):
        block = rng.standard_normal((min(n, lo + 200_000) - lo, DIM), dtype=np.float32)
        if kind == "facelike":
            block = block @ chol.T + mean
        out[lo : lo + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def make_gallery(real: np.ndarray, size: int, seed: int = 0, fill: str = "random") -> tuple[np.ndarray, np.ndarray]:
    """``size`` unit rows: real templates (as many as fit) + filler vectors, in a seeded shuffled order.

    Also returns where each real template that fits ended up (row numbers = ids).
    """
    n_real = min(len(real), size)
    fill = make_fill(real, size - n_real, fill, seed)
    gallery = np.concatenate([real[:n_real], fill])
    del fill
    perm = np.random.default_rng(seed + 1).permutation(size)
    return np.ascontiguousarray(gallery[perm]), np.argsort(perm)[:n_real]


# -- measurement ----------------------------------------------------------------------


def pct(times_s: list[float]) -> dict[str, float]:
    ms = np.asarray(times_s) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 4), "p99_ms": round(float(np.percentile(ms, 99)), 4), "mean_ms": round(float(ms.mean()), 4)}


def timed_calls(fn: Callable[[Any], Any], items: list[Any], budget_s: float | None, warmup: int = 3) -> dict[str, Any]:
    """Time fn(item) for each item; if the projected total exceeds budget_s, time a subset and say so."""
    for it in items[:warmup]:
        fn(it)
    probe: list[float] = []
    for it in items[: min(5, len(items))]:
        t0 = time.perf_counter()
        fn(it)
        probe.append(time.perf_counter() - t0)
    projected = float(np.mean(probe)) * len(items)
    use = items
    estimated = budget_s is not None and projected > budget_s
    if estimated:
        use = items[: max(20, min(len(items), int(budget_s / 4 / max(np.mean(probe), 1e-9))))]
    times = []
    for it in use:
        t0 = time.perf_counter()
        fn(it)
        times.append(time.perf_counter() - t0)
    out: dict[str, Any] = {**pct(times), "calls": len(times)}
    if estimated:
        out["estimated"] = True
        out["note"] = f"all {len(items)} calls would take ~{projected:.0f} s (> {budget_s:.0f} s budget); percentiles from the first {len(use)}"
    return out


RUNS = 3


def median_of_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median p50/p99/mean over repeated timing runs (each over every query), with each run's p99."""
    out = dict(runs[0])
    for key in ("p50_ms", "p99_ms", "mean_ms"):
        out[key] = round(float(np.median([r[key] for r in runs])), 4)
    out["runs"] = len(runs)
    out["p99_ms_each_run"] = [r["p99_ms"] for r in runs]
    return out


BATCH_TIMINGS = 64


def latency(index: Any, queries: np.ndarray, budget_s: float | None, runs: int = RUNS, batch_timings: int = BATCH_TIMINGS) -> dict[str, Any]:
    """Single-query and batch-of-64 latency; the median of ``runs`` runs (one run when a budget cut it short)."""
    singles = [queries[i] for i in range(len(queries))]
    n_batches = max(1, len(queries) // BATCH)
    batches = [queries[i * BATCH : (i + 1) * BATCH] for i in range(n_batches)]
    rounds = max(1, math.ceil(batch_timings / n_batches))  # >= 64 batch timings for a p99 (fewer with --smoke)
    out: dict[str, Any] = {}
    for name, fn, items, warmup in (("single", lambda q: index.search(q, K), singles, 3), (f"batch{BATCH}", lambda b: index.search(b, K), batches * rounds, 1)):
        first = timed_calls(fn, items, budget_s, warmup=warmup)
        done = [first] if first.get("estimated") else [first] + [timed_calls(fn, items, budget_s, warmup=0) for _ in range(runs - 1)]
        out[name] = median_of_runs(done)
    return out


def recall(found: np.ndarray, truth_ids: np.ndarray, truth_scores: np.ndarray, gallery: np.ndarray, queries: np.ndarray) -> dict[str, float]:
    """recall@1: the index's top 1 is as good as exact float32 search's (ties count); recall@10: overlap of the top 10s."""
    top = found[:, 0]
    true_top = np.where(top >= 0, np.einsum("ij,ij->i", gallery[np.maximum(top, 0)], queries), -np.inf)
    r1 = float(np.mean(true_top >= truth_scores[:, 0] - 1e-6))
    r10 = float(np.mean([len(set(f[f >= 0].tolist()) & set(t.tolist())) / len(t) for f, t in zip(found[:, :K], truth_ids[:, :K])]))
    return {"recall_at_1": round(r1, 5), "recall_at_10": round(r10, 5)}


def build(index: Any, gallery: np.ndarray, chunk: int = 100_000) -> float:
    ids = np.arange(len(gallery), dtype=np.int64)
    t0 = time.perf_counter()
    for lo in range(0, len(gallery), chunk):
        index.add(ids[lo : lo + chunk], gallery[lo : lo + chunk])
    return time.perf_counter() - t0


def run_index(
    name: str,
    index: Any,
    gallery: np.ndarray,
    queries: np.ndarray,
    truth: tuple[np.ndarray, np.ndarray],
    budget_s: float | None,
    sweep: list[int] | None = None,
    runs: int = RUNS,
    batch_timings: int = BATCH_TIMINGS,
) -> dict[str, Any]:
    build_s = build(index, gallery)
    res: dict[str, Any] = {
        "kind": index.kind,
        "dtype": index.dtype,
        "params": index.params,
        "build_s": round(build_s, 3),
        "inserts_per_s": round(len(gallery) / max(build_s, 1e-9)),
    }
    res["bytes_per_template"] = round(index.nbytes / len(gallery), 1)
    res["memory_mb"] = round(index.nbytes / 2**20, 1)
    t0 = time.perf_counter()
    found, _ = index.search(queries, K)
    res["all_queries_one_batch_s"] = round(time.perf_counter() - t0, 3)
    res.update(recall(found, *truth, gallery, queries))
    res.update(latency(index, queries, budget_s, runs, batch_timings))
    knob = {"hnsw": "expansion_search", "pqscan": "candidates"}.get(index.kind)
    if knob and sweep:
        default = getattr(index, knob)
        rows = []
        for value in sweep:
            setattr(index, knob, value)
            found, _ = index.search(queries, K)
            rows.append({knob: value, **recall(found, *truth, gallery, queries), "single": timed_calls(lambda q: index.search(q, K), list(queries), None)})
        setattr(index, knob, default)
        res[f"sweep_{knob}"] = rows
    print(f"# {name} n={len(gallery)}: build {build_s:.1f}s r@1 {res['recall_at_1']} p99 {res['single']['p99_ms']} ms", file=sys.stderr, flush=True)
    return res


# -- main -----------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--templates", default=os.environ.get("FACEPRINT_TEMPLATES"), help="real templates .npz (default $FACEPRINT_TEMPLATES; else synthetic)")
    ap.add_argument("--sizes", default="10000,100000,1000000", help="gallery sizes, comma separated")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--quantized-sizes", default=None, help="sizes that also run int8 (default: sizes >= 1M, or the largest with --smoke)")
    ap.add_argument(
        "--smoke", action="store_true", help="CI: sizes 2000,5000, 100 queries, one latency run of 16 batch timings, one thread, sweeps of two values"
    )
    ap.add_argument(
        "--fill",
        choices=["random", "facelike"],
        default="random",
        help="filler beyond the real templates: isotropic random unit vectors (default) or a Gaussian fitted to the real templates",
    )
    ap.add_argument("--exact-budget", type=float, default=60.0, help="seconds an exact latency measurement may take before it is estimated from a subset")
    ap.add_argument("--sweep", default=None, help="HNSW expansion_search values to sweep (empty: none; default 32,64,128,256,512, with --smoke 64,256)")
    ap.add_argument(
        "--sweep-candidates", default=None, help="PQ scan candidates values to sweep (empty: none; default 128,256,1024,2048, with --smoke 128,1024)"
    )
    ap.add_argument("--candidates", type=int, default=DEFAULT_PQSCAN["candidates"], help="PQ scan: candidates rescored exactly")
    ap.add_argument("--pq-m", type=int, default=DEFAULT_PQSCAN["pq_m"], help="PQ scan: 4-bit sub-quantisers per template")
    ap.add_argument("--hnsw-max", type=int, default=100_000, help="largest gallery HNSW is measured at (0: never)")
    ap.add_argument("--connectivity", type=int, default=DEFAULT_HNSW["connectivity"])
    ap.add_argument("--expansion-add", type=int, default=DEFAULT_HNSW["expansion_add"])
    ap.add_argument("--expansion-search", type=int, default=DEFAULT_HNSW["expansion_search"])
    ap.add_argument("--runs", type=int, default=None, help=f"latency runs per index (the median is reported; default {RUNS}, with --smoke 1)")
    ap.add_argument("--threads", type=int, default=None, help="usearch and FAISS threads for batch add/search (0: all cores; default 0, with --smoke 1)")
    args = ap.parse_args()
    batch_timings = BATCH_TIMINGS
    if args.smoke:  # end to end at tiny size: one thread (no OpenMP spinning against other load on a shared machine), few timings
        args.sizes, args.queries, batch_timings = "2000,5000", min(args.queries, 100), 16
        defaults = {"runs": 1, "threads": 1, "sweep": "64,256", "sweep_candidates": "128,1024"}
    else:
        defaults = {"runs": RUNS, "threads": 0, "sweep": "32,64,128,256,512", "sweep_candidates": "128,256,1024,2048"}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    runs = max(1, args.runs)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.quantized_sizes is not None:
        qsizes = {int(s) for s in args.quantized_sizes.split(",") if s.strip()}
    else:
        qsizes = {s for s in sizes if s >= 1_000_000} or ({max(sizes)} if args.smoke else set())
    sweep = [int(s) for s in args.sweep.split(",") if s.strip()]
    sweep_c = [int(s) for s in args.sweep_candidates.split(",") if s.strip()]
    hnsw_params = {"connectivity": args.connectivity, "expansion_add": args.expansion_add, "expansion_search": args.expansion_search, "threads": args.threads}
    pq_params = {"pq_m": args.pq_m, "candidates": args.candidates, "threads": args.threads}

    if args.templates and Path(args.templates).is_file():
        vecs, labels, info = load_templates(Path(args.templates))
    else:
        vecs, labels, info = synthetic_templates()
        if args.templates:
            info["note"] = f"{args.templates} not found; synthetic stand-in used"
    q_rows, g_rows = split_queries(labels, len(vecs), args.queries)
    queries = vecs[q_rows]
    real_gallery = vecs[g_rows]
    info.update(
        {"identities": None if labels is None else int(len(set(labels.tolist()))), "queries": int(len(q_rows)), "real_gallery_templates": int(len(g_rows))}
    )

    result: dict[str, Any] = {
        "benchmark": "search",
        "machine": machine(),
        "templates": info,
        "k": K,
        "batch": BATCH,
        "fill": args.fill,
        "pqscan_params": pq_params,
        "hnsw_params": hnsw_params,
        "hnsw_max": args.hnsw_max,
        "threads": args.threads,
        "latency_runs": runs,
        "batch_timings_min": batch_timings,
        "recall_reference": "exact float32 search on the same gallery and queries",
        "sizes": [],
    }
    t_all = time.perf_counter()
    for size in sizes:
        gallery, real_pos = make_gallery(real_gallery, size, fill=args.fill)
        n_real = len(real_pos)
        chosen = make_index(DIM, size).kind
        entry: dict[str, Any] = {"n": size, "real_templates": n_real, "random_templates": size - n_real, "chosen_kind": chosen, "indexes": {}}
        exact = ExactIndex(DIM)
        entry["indexes"]["exact"] = res = {"kind": "exact", "dtype": "f32", "build_s": round(build(exact, gallery), 3)}
        t0 = time.perf_counter()
        truth = exact.search(queries, K)
        res["all_queries_one_batch_s"] = round(time.perf_counter() - t0, 3)
        res["bytes_per_template"] = round(exact.nbytes / size, 1)
        res["memory_mb"] = round(exact.nbytes / 2**20, 1)
        res.update(recall(truth[0], *truth, gallery, queries))
        res.update(latency(exact, queries, args.exact_budget, runs, batch_timings))
        if labels is not None:  # rank-1 identification of the real queries by exact search (context for the recall numbers)
            g_labels = np.full(size, None, dtype=object)
            g_labels[real_pos] = labels[g_rows][:n_real]
            entry["rank1_identification_exact"] = round(float(np.mean(g_labels[truth[0][:, 0]] == labels[q_rows])), 4)
        del exact
        gc.collect()
        variants: list[tuple[str, Any, dict[str, Any], list[int]]] = [("pqscan", PQScanIndex, {"quantize": False, **pq_params}, sweep_c)]
        if size in qsizes:
            variants += [("pqscan_i8", PQScanIndex, {"quantize": True, **pq_params}, []), ("exact_i8", ExactIndex, {"quantize": True}, [])]
        if size <= args.hnsw_max:
            variants += [("hnsw", HNSWIndex, {"quantize": False, **hnsw_params}, sweep)]
            if size in qsizes:
                variants += [("hnsw_i8", HNSWIndex, {"quantize": True, **hnsw_params}, [])]
        for name, cls, kw, knob_sweep in variants:
            index = cls(DIM, **kw)
            entry["indexes"][name] = run_index(
                name, index, gallery, queries, truth, args.exact_budget if cls is ExactIndex else None, knob_sweep, runs, batch_timings
            )
            del index
            gc.collect()
        result["sizes"].append(entry)
        del gallery
        gc.collect()
    result["total_s"] = round(time.perf_counter() - t_all, 1)
    at_target = [e for e in result["sizes"] if e["n"] == TARGET["n"]]
    if at_target:
        e = at_target[0]
        summary = {"target": TARGET}
        for name in ("pqscan", "pqscan_i8", "hnsw", "hnsw_i8"):
            r = e["indexes"].get(name)
            if r:
                summary[name] = {
                    "p99_single_ms": r["single"]["p99_ms"],
                    "recall_at_1": r["recall_at_1"],
                    "met": r["single"]["p99_ms"] <= TARGET["p99_single_ms"] and r["recall_at_1"] >= TARGET["recall_at_1"],
                }
        result["target_1m"] = summary
    emit(result)


if __name__ == "__main__":
    main()
