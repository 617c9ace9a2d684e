"""The PQ scan index: every query scans 4-bit product-quantised codes (FAISS fast scan) and
rescores the best few hundred exactly from the stored vectors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import FaceprintError, InputError
from faceprint.gallery.index.base import (
    _CONVERT_ROWS,
    _DTYPES,
    _I8_SCALE,
    FORMAT_VERSION,
    IndexCorruptError,
    _aad,
    _as_ids,
    _as_queries,
    _as_vectors,
    _atomic_write,
    _check_dim,
    _check_k,
    _empty_result,
    _header,
    _read_npz,
    _storage_dtype,
    _to_storage,
    _write_header,
)

__all__ = ["DEFAULT_PQSCAN", "PQScanIndex"]

#: Product-quantised scan defaults, tuned with ``benchmarks/search.py`` on a
#: 2-core machine: 32 sub-quantisers of 4 bits (16 bytes of code per template)
#: scanned with FAISS's in-register lookup tables, then the best ``candidates``
#: rescored exactly from the stored vectors.
DEFAULT_PQSCAN: dict[str, int] = {"pq_m": 32, "candidates": 512}

_TRAIN_MIN = 1024  # below this many templates the scan index searches exactly (nothing to train on)
_TRAIN_SAMPLE = 65_536  # templates the codebooks are trained on (a seeded sample)
_RETRAIN_GROWTH = 8  # retrain once the gallery is this many times larger than the training set was
_COMPACT_MIN = 1024  # tombstones tolerated before compaction (or 1/8 of the rows, whichever is more)


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency
        raise FaceprintError("the scan index needs the 'faiss-cpu' package (pip install faiss-cpu)") from exc
    return faiss


class PQScanIndex:
    """A full scan over 4-bit product-quantised codes, then exact re-ranking.

    Every query scans all templates, but through 16-byte codes compared with
    SIMD lookup tables (FAISS ``IndexPQFastScan``), and the ``candidates`` best
    rows by approximate score are rescored exactly against the stored vectors
    (float32, or int8/float16 with ``quantize``).  Compared with a graph
    (HNSW) it needs no build (encoding 1M templates takes seconds, not
    minutes), removal is cheap, and recall does not depend on how the
    templates are distributed: a true nearest neighbour is missed only when
    quantisation noise pushes it below ``candidates`` others.  Latency grows
    linearly with the gallery (about 3 ms per million templates per core).

    Codebooks are trained on a seeded sample of the templates once there are
    ``1024`` of them (until then search is exact) and retrained when the
    gallery has grown eightfold since.  Removal leaves tombstones (their stored
    vectors zeroed at once), compacted away once they exceed an eighth of the
    rows and always before a save: a saved file holds no removed template,
    neither its vector nor its code.  ``threads`` > 0 sets FAISS's
    OpenMP thread count for batch queries (a process-wide setting).
    """

    kind = "pqscan"

    def __init__(
        self,
        dim: int,
        *,
        quantize: bool | str = False,
        pq_m: int = DEFAULT_PQSCAN["pq_m"],
        candidates: int = DEFAULT_PQSCAN["candidates"],
        threads: int = 0,
        capacity: int = 0,
    ) -> None:
        self.dim = _check_dim(dim)
        self.dtype = _storage_dtype(quantize)
        if isinstance(pq_m, bool) or not isinstance(pq_m, (int, np.integer)) or pq_m < 1 or self.dim % int(pq_m):
            raise InputError(f"pq_m must be a positive divisor of the dimension {self.dim}, got {pq_m!r}")
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 0:
            raise InputError(f"threads must be an integer >= 0, got {threads!r}")
        self.pq_m = int(pq_m)
        self.candidates = candidates  # checked by the setter
        self.threads = int(threads)
        if self.threads:
            _faiss().omp_set_num_threads(self.threads)
        cap = max(16, int(capacity or 0))
        self._vecs = np.zeros((cap, self.dim), _DTYPES[self.dtype])
        self._ids = np.full(cap, -1, np.int64)  # -1: a removed row (tombstone)
        self._n = 0  # rows in use, tombstones included
        self._row: dict[int, int] = {}
        self._pq: Any = None  # FAISS index coding rows [0, _n) in order, once trained
        self._trained_on = 0

    # -- bookkeeping
    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, id_: object) -> bool:
        return isinstance(id_, (int, np.integer)) and int(id_) in self._row

    def __repr__(self) -> str:
        return f"PQScanIndex(dim={self.dim}, dtype={self.dtype!r}, count={len(self)}, {self.params})"

    @property
    def candidates(self) -> int:
        return self._candidates

    @candidates.setter
    def candidates(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"candidates must be a positive integer, got {value!r}")
        self._candidates = int(value)

    @property
    def trained(self) -> bool:
        return self._pq is not None

    @property
    def params(self) -> dict[str, Any]:
        return {"pq_m": self.pq_m, "pq_bits": 4, "candidates": self.candidates, "trained_on": self._trained_on}

    @property
    def nbytes(self) -> int:
        """Bytes held: stored vectors and ids of the live rows plus their codes."""
        return len(self) * (self._vecs.itemsize * self.dim + 8 + (self.pq_m // 2 if self._pq is not None else 0))

    def ids(self) -> np.ndarray:
        return np.sort(np.fromiter(self._row.keys(), np.int64, len(self._row)))

    def _decode(self, stored: np.ndarray) -> np.ndarray:
        out = stored.astype(np.float32, copy=False)
        if self.dtype == "i8":
            out *= np.float32(1.0 / _I8_SCALE)
        return out

    def _reserve(self, needed: int) -> None:
        cap = len(self._ids)
        if needed <= cap:
            return
        new_cap = max(needed, cap * 2)
        vecs = np.zeros((new_cap, self.dim), self._vecs.dtype)
        vecs[: self._n] = self._vecs[: self._n]
        ids = np.full(new_cap, -1, np.int64)
        ids[: self._n] = self._ids[: self._n]
        self._vecs, self._ids = vecs, ids

    # -- codebooks
    def _train(self) -> None:
        """(Re)train the codebooks on a seeded sample of the live rows and code every row again."""
        self._pq = None  # compact without re-coding: everything is coded afresh below
        self._compact(force=True)
        live = self._n
        faiss = _faiss()
        sample_rows = np.arange(live) if live <= _TRAIN_SAMPLE else np.sort(np.random.default_rng(0).choice(live, _TRAIN_SAMPLE, replace=False))
        pq = faiss.IndexPQFastScan(self.dim, self.pq_m, 4, faiss.METRIC_INNER_PRODUCT)
        pq.train(self._decode(self._vecs[sample_rows]))
        self._pq = pq
        self._encode_rows(0, live)
        self._trained_on = len(sample_rows)

    def _maybe_train(self) -> None:
        live = len(self)
        if self._pq is None:
            if live >= _TRAIN_MIN:
                self._train()
        elif self._trained_on < _TRAIN_SAMPLE and live >= _RETRAIN_GROWTH * self._trained_on:
            self._train()

    def _compact(self, force: bool = False) -> None:
        """Drop tombstoned rows from the vectors, the ids and the codes (order kept on both sides)."""
        dead = self._n - len(self._row)
        if dead == 0 or (not force and dead <= max(_COMPACT_MIN, self._n // 8)):
            return
        keep = self._ids[: self._n] >= 0
        live = int(keep.sum())
        self._vecs[:live] = self._vecs[: self._n][keep]
        self._ids[:live] = self._ids[: self._n][keep]
        self._ids[live : self._n] = -1
        self._n = live
        self._row = dict(zip(self._ids[:live].tolist(), range(live)))
        if self._pq is not None:
            # Re-code the kept rows rather than IndexFastScan.remove_ids: in FAISS 1.15 codes
            # added after a remove_ids land in the wrong packed slots (found by
            # test_pqscan_compaction_keeps_codes_in_step_with_vectors).  Encoding is ~1 s per 1M.
            self._pq.reset()
            self._encode_rows(0, live)

    def _encode_rows(self, lo: int, hi: int) -> None:
        for a in range(lo, hi, _CONVERT_ROWS):
            self._pq.add(self._decode(self._vecs[a : min(hi, a + _CONVERT_ROWS)]))

    # -- writes
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = _as_ids(ids)
        vecs = _as_vectors(vectors, self.dim, len(ids))
        if len(ids) == 0:
            return
        if len(np.unique(ids)) != len(ids):
            raise InputError("ids passed to add() must be unique")
        for i in ids.tolist():  # an id already present is replaced: its old row becomes a tombstone
            row = self._row.pop(i, None)
            if row is not None:
                self._ids[row] = -1
                self._vecs[row] = 0
        start, m = self._n, len(ids)
        self._reserve(start + m)
        self._vecs[start : start + m] = _to_storage(vecs, self.dtype)
        self._ids[start : start + m] = ids
        self._row.update(zip(ids.tolist(), range(start, start + m)))
        self._n = start + m
        if self._pq is not None:
            self._pq.add(vecs)
        self._maybe_train()
        self._compact()

    def remove(self, ids: np.ndarray) -> int:
        removed = 0
        for i in np.unique(_as_ids(ids)).tolist():
            row = self._row.pop(i, None)
            if row is not None:
                self._ids[row] = -1
                self._vecs[row] = 0  # the stored vector goes now; its code at the next compaction (at the latest, the next save)
                removed += 1
        if removed:
            self._compact()
        return removed

    # -- search
    def _exact(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        out_ids, out_scores = _empty_result(len(q), k)
        n = self._n
        for lo in range(0, n, _CONVERT_ROWS):
            hi = min(n, lo + _CONVERT_ROWS)
            s = q @ self._decode(self._vecs[lo:hi]).T
            s[:, self._ids[lo:hi] < 0] = -np.inf
            ids = np.broadcast_to(self._ids[lo:hi], s.shape)
            s = np.concatenate([out_scores, s], axis=1)
            ids = np.concatenate([out_ids, ids], axis=1)
            top = np.argsort(-s, axis=1, kind="stable")[:, :k]
            out_scores, out_ids = np.take_along_axis(s, top, axis=1), np.take_along_axis(ids, top, axis=1)
        out_ids = np.where(np.isfinite(out_scores), out_ids, -1)
        return out_ids, out_scores.astype(np.float32)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = _as_queries(queries, self.dim)
        k = _check_k(k)
        if len(q) == 0 or len(self) == 0:
            return _empty_result(len(q), k)
        if self._pq is None:
            return self._exact(q, k)
        r = min(self._n, max(self.candidates, 4 * k))
        _, rows = self._pq.search(q, r)
        out_ids, out_scores = _empty_result(len(q), k)
        scale = np.float32(1.0 / _I8_SCALE) if self.dtype == "i8" else None
        want = min(k, len(self))
        short = []
        for j in range(len(q)):  # rescore each query's candidates exactly
            cand = rows[j]
            cand = cand[cand >= 0]
            cand_ids = self._ids[cand]
            live = cand_ids >= 0
            cand, cand_ids = cand[live], cand_ids[live]
            if len(cand) < want:  # tombstones crowded the candidates out: answer exactly below
                short.append(j)
                continue
            stored = self._vecs[cand]
            s = (stored if self.dtype == "f32" else stored.astype(np.float32)) @ q[j]
            if scale is not None:
                s *= scale
            top = np.argpartition(s, len(s) - want)[len(s) - want :] if len(s) > want else np.arange(len(s))
            top = top[np.argsort(-s[top], kind="stable")]
            out_ids[j, :want] = cand_ids[top]
            out_scores[j, :want] = s[top]
        if short:
            out_ids[short], out_scores[short] = self._exact(q[short], k)
        return out_ids, out_scores

    # -- files
    def save(self, path: str | os.PathLike[str], *, generation: str = "", cipher: Any = None) -> None:
        path = Path(path)
        self._compact(force=True)  # a saved file holds no removed template: not its vector, not its code
        n = self._n
        meta = json.dumps(
            {
                "format": FORMAT_VERSION,
                "kind": self.kind,
                "dim": self.dim,
                "dtype": self.dtype,
                "count": n,
                "pq_m": self.pq_m,
                "candidates": self.candidates,
                "trained_on": self._trained_on,
            }
        )
        codes = _faiss().serialize_index(self._pq) if self._pq is not None else np.zeros(0, np.uint8)

        def write(fh: Any) -> None:
            np.savez(fh, meta=np.frombuffer(meta.encode(), np.uint8), ids=self._ids[:n], vectors=self._vecs[:n], codes=codes)

        size = _atomic_write(path, write, cipher, _aad(self.kind))
        _write_header(path, _header(self, generation, size, cipher))

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int, *, candidates: int | None = None, threads: int = 0, cipher: Any = None) -> PQScanIndex:
        dim = _check_dim(dim)
        path = Path(path)
        meta, ids, vecs, more = _read_npz(path, dim, cls.kind, "scan index", extra=("codes",), tombstones=True, cipher=cipher)
        codes, dtype = more["codes"], meta["dtype"]
        try:
            index = cls(
                dim,
                quantize=dtype,
                pq_m=meta.get("pq_m", DEFAULT_PQSCAN["pq_m"]),
                candidates=candidates or meta.get("candidates", DEFAULT_PQSCAN["candidates"]),
                threads=threads,
                capacity=len(ids),
            )
        except InputError as exc:
            raise IndexCorruptError(f"index parameters are invalid ({exc})", source=str(path)) from exc
        if codes.size:
            try:
                pq = _faiss().deserialize_index(np.ascontiguousarray(codes, np.uint8))
            except Exception as exc:
                raise IndexCorruptError(f"scan codes are unreadable ({exc})", source=str(path)) from exc
            if pq.d != dim or pq.ntotal != len(ids) or pq.metric_type != _faiss().METRIC_INNER_PRODUCT:
                raise IndexCorruptError("scan codes do not match the stored vectors", source=str(path))
            index._pq = pq
            index._trained_on = int(meta.get("trained_on") or 0)
        index._vecs[: len(ids)] = vecs
        index._ids[: len(ids)] = ids
        index._n = len(ids)
        rows = np.flatnonzero(ids >= 0)
        index._row = dict(zip(ids[rows].tolist(), rows.tolist()))
        if index._pq is None:
            index._maybe_train()
        return index
