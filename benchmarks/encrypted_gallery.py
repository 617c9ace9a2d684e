"""Encryption at rest, end to end: an encrypted gallery against a clear one of the same N
templates (issue 13: identify latency at 1M templates within 10% of the clear figure).

Protocol: two galleries filled with the same N seeded random unit vectors (128-d, the
default model's id), one created clear (``encrypt=False``), one encrypted (the default:
AES-256-GCM on every template, data key wrapped by a master key in a temporary key file).
For each: the time to fill the store (batches of 10,000 per transaction), to open the
gallery with no saved index (read + unseal every template, build the index: PQ scan past
20,000), to save the index (sealed in 1 MiB AES-GCM chunks, or clear), to open again from
the saved index, and the latency of ``Gallery.identify_vectors`` for Q single mated probes
(a gallery vector plus noise) -- median and p99 over the probes, median of ``--runs`` runs.
Ratios are encrypted / clear, measured in the same run.  Identification reads no sealed
value (the index holds the vectors in memory, names are clear), so its ratio should be ~1;
the cost of encryption is on the open / rebuild / save paths.

    .venv/bin/python benchmarks/encrypted_gallery.py             # N = 1,000,000 (a few minutes, ~3 GB)
    .venv/bin/python benchmarks/encrypted_gallery.py --smoke     # N = 25,000 (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def _fill(db: Path, vectors: np.ndarray, model_id: str, encrypt: bool) -> float:
    from faceprint.gallery.store import NewTemplate, Store

    t0 = time.perf_counter()
    with Store(db, encrypt=encrypt) as store:
        for s, lo in enumerate(range(0, len(vectors), 10_000)):
            store.add_templates(f"subject {s}", [NewTemplate(vector=v, model_id=model_id) for v in vectors[lo : lo + 10_000]])
    return time.perf_counter() - t0


def _measure(db: Path, probes: np.ndarray, engine, runs: int) -> dict:
    from faceprint.gallery import Gallery

    t0 = time.perf_counter()
    g = Gallery(db, engine)
    _ = g.index  # no saved index yet: read (and unseal) every template, build, save
    rebuild = time.perf_counter() - t0
    t0 = time.perf_counter()
    g._save(force=True)
    save = time.perf_counter() - t0
    g.close()
    t0 = time.perf_counter()
    g = Gallery(db, engine)
    _ = g.index  # from the saved index file
    load = time.perf_counter() - t0
    p50s, p99s = [], []
    for _ in range(runs):
        lat = []
        for q in probes:
            t = time.perf_counter()
            g.identify_vectors(q[None, :], k=5, fpir=1e-3)
            lat.append((time.perf_counter() - t) * 1000)
        p50s.append(float(np.percentile(lat, 50)))
        p99s.append(float(np.percentile(lat, 99)))
    kind, n = g.index.kind, len(g.index)
    g.close()
    files = {p.name: p.stat().st_size for p in db.parent.iterdir() if p.name.startswith(db.name)}
    return {
        "index_kind": kind,
        "templates": n,
        "open_rebuild_s": round(rebuild, 2),
        "index_save_s": round(save, 2),
        "open_from_saved_index_s": round(load, 2),
        "identify_p50_ms": round(statistics.median(p50s), 3),
        "identify_p99_ms": round(statistics.median(p99s), 3),
        "bytes": files,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--probes", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="N = 25,000, 100 probes, 1 run")
    args = ap.parse_args()
    if args.smoke:
        args.n, args.probes, args.runs = 25_000, 100, 1
    tmp = Path(tempfile.mkdtemp(prefix="faceprint-enc-bench-"))
    os.environ["FACEPRINT_KEY_FILE"] = str(tmp / "key")
    os.environ.pop("FACEPRINT_KEY", None)
    from faceprint import Engine, Settings

    engine = Engine(Settings())
    model_id = engine.model_id
    rng = np.random.default_rng(13)
    vectors = rng.standard_normal((args.n, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pick = rng.choice(args.n, args.probes, replace=False)
    probes = vectors[pick] + 0.05 * rng.standard_normal((args.probes, 128)).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    out: dict = {"benchmark": "encrypted_gallery", "n": args.n, "probes": args.probes, "runs": args.runs}
    for name, encrypt in (("clear", False), ("encrypted", True)):
        folder = tmp / name
        db = folder / "gallery.db"
        fill = _fill(db, vectors, model_id, encrypt)
        res = _measure(db, probes, engine, args.runs)
        out[name] = {"fill_s": round(fill, 2), **res}
    c, e = out["clear"], out["encrypted"]
    out["ratio_encrypted_over_clear"] = {
        k: round(e[k] / c[k], 3) if c[k] else None
        for k in ("fill_s", "open_rebuild_s", "index_save_s", "open_from_saved_index_s", "identify_p50_ms", "identify_p99_ms")
    }
    out["identify_within_10pct"] = out["ratio_encrypted_over_clear"]["identify_p50_ms"] <= 1.10
    print(json.dumps(out, indent=1))
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
