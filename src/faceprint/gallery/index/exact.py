"""The exact index: brute-force cosine search, one float32 BLAS product per query block."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import InputError
from faceprint.gallery.index.base import (
    _CONVERT_ROWS,
    _DTYPES,
    _I8_SCALE,
    FORMAT_VERSION,
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

__all__ = ["ExactIndex"]

_BLOCK_ELEMS = 1 << 24  # scores materialised per block (64 MB of float32)
_QUERY_CHUNK = 1024


class ExactIndex:
    """Brute-force cosine search: one BLAS product per query block, exact top k.

    Templates live in one contiguous (capacity, dim) array that grows by
    doubling; removal moves the last row into the hole.  ``quantize=True``
    stores int8 ``round(v * 127)`` (scores off by ~0.002, see :mod:`faceprint.gallery.index.base`),
    ``quantize="f16"`` half floats; both are dequantised block by block at
    search time, so search is a little slower than float32.
    """

    kind = "exact"

    def __init__(self, dim: int, *, quantize: bool | str = False, capacity: int = 0) -> None:
        self.dim = _check_dim(dim)
        self.dtype = _storage_dtype(quantize)
        cap = max(16, int(capacity or 0))
        self._vecs = np.zeros((cap, self.dim), _DTYPES[self.dtype])
        self._ids = np.zeros(cap, np.int64)
        self._n = 0
        self._row: dict[int, int] = {}

    # -- bookkeeping
    def __len__(self) -> int:
        return self._n

    def __contains__(self, id_: object) -> bool:
        return isinstance(id_, (int, np.integer)) and int(id_) in self._row

    def __repr__(self) -> str:
        return f"ExactIndex(dim={self.dim}, dtype={self.dtype!r}, count={self._n})"

    @property
    def params(self) -> dict[str, Any]:
        return {}

    @property
    def nbytes(self) -> int:
        """Bytes held by the stored templates (rows in use, not the spare capacity)."""
        return self._n * (self._vecs.itemsize * self.dim + 8)

    def ids(self) -> np.ndarray:
        return np.sort(self._ids[: self._n])

    def _reserve(self, needed: int) -> None:
        cap = len(self._ids)
        if needed <= cap:
            return
        new_cap = max(needed, cap * 2)
        vecs = np.zeros((new_cap, self.dim), self._vecs.dtype)
        vecs[: self._n] = self._vecs[: self._n]
        ids = np.zeros(new_cap, np.int64)
        ids[: self._n] = self._ids[: self._n]
        self._vecs, self._ids = vecs, ids

    # -- writes
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = _as_ids(ids)
        vecs = _as_vectors(vectors, self.dim, len(ids))
        if len(ids) == 0:
            return
        if len(np.unique(ids)) != len(ids):
            raise InputError("ids passed to add() must be unique")
        encoded = _to_storage(vecs, self.dtype)
        rows = np.fromiter((self._row.get(i, -1) for i in ids.tolist()), np.int64, len(ids))
        present = rows >= 0
        if present.any():
            self._vecs[rows[present]] = encoded[present]
        new = ~present
        m = int(new.sum())
        if m:
            start = self._n
            self._reserve(start + m)
            self._vecs[start : start + m] = encoded[new]
            new_ids = ids[new]
            self._ids[start : start + m] = new_ids
            self._row.update(zip(new_ids.tolist(), range(start, start + m)))
            self._n = start + m

    def remove(self, ids: np.ndarray) -> int:
        ids = _as_ids(ids)
        removed = 0
        for i in np.unique(ids).tolist():
            row = self._row.pop(i, None)
            if row is None:
                continue
            last = self._n - 1
            if row != last:
                moved = int(self._ids[last])
                self._vecs[row] = self._vecs[last]
                self._ids[row] = moved
                self._row[moved] = row
            self._vecs[last] = 0  # no copy of an erased template stays in memory either
            self._n = last
            removed += 1
        return removed

    # -- search
    def _scores(self, q: np.ndarray, lo: int, hi: int) -> np.ndarray:
        block = self._vecs[lo:hi]
        if self.dtype == "f32":
            return q @ block.T
        scores = q @ block.astype(np.float32).T
        if self.dtype == "i8":
            scores *= np.float32(1.0 / _I8_SCALE)
        return scores

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = _as_queries(queries, self.dim)
        k = _check_k(k)
        out_ids, out_scores = _empty_result(len(q), k)
        n = self._n
        if n == 0 or len(q) == 0:
            return out_ids, out_scores
        kk = min(k, n)
        for q0 in range(0, len(q), _QUERY_CHUNK):
            qc = q[q0 : q0 + _QUERY_CHUNK]
            rows_per_block = max(kk, min(n, _BLOCK_ELEMS // len(qc)))
            if self.dtype != "f32":
                rows_per_block = max(kk, min(rows_per_block, _CONVERT_ROWS))
            best_rows = best_scores = None
            for lo in range(0, n, rows_per_block):
                hi = min(n, lo + rows_per_block)
                s = self._scores(qc, lo, hi)
                if hi - lo > kk:
                    part = np.argpartition(s, hi - lo - kk, axis=1)[:, hi - lo - kk :]
                    s = np.take_along_axis(s, part, axis=1)
                    rows = part + lo
                else:
                    rows = np.broadcast_to(np.arange(lo, hi), s.shape)
                if best_rows is None:
                    best_rows, best_scores = rows, s
                    continue
                rows = np.concatenate([best_rows, rows], axis=1)
                s = np.concatenate([best_scores, s], axis=1)
                part = np.argpartition(s, s.shape[1] - kk, axis=1)[:, s.shape[1] - kk :]
                best_rows = np.take_along_axis(rows, part, axis=1)
                best_scores = np.take_along_axis(s, part, axis=1)
            order = np.argsort(-best_scores, axis=1, kind="stable")
            best_rows = np.take_along_axis(best_rows, order, axis=1)
            out_scores[q0 : q0 + len(qc), :kk] = np.take_along_axis(best_scores, order, axis=1)
            out_ids[q0 : q0 + len(qc), :kk] = self._ids[best_rows]
        return out_ids, out_scores

    # -- files
    def save(self, path: str | os.PathLike[str], *, generation: str = "", cipher: Any = None) -> None:
        path = Path(path)
        n = self._n
        meta = json.dumps({"format": FORMAT_VERSION, "kind": self.kind, "dim": self.dim, "dtype": self.dtype, "count": n})

        def write(fh: Any) -> None:
            np.savez(fh, meta=np.frombuffer(meta.encode(), np.uint8), ids=self._ids[:n], vectors=self._vecs[:n])

        size = _atomic_write(path, write, cipher, _aad(self.kind))
        _write_header(path, _header(self, generation, size, cipher))

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int, *, cipher: Any = None) -> ExactIndex:
        dim = _check_dim(dim)
        meta, ids, vecs, _ = _read_npz(path, dim, cls.kind, "exact index", cipher=cipher)
        dtype = meta["dtype"]
        index = cls(dim, quantize=dtype, capacity=len(ids))
        index._vecs[: len(ids)] = vecs
        index._ids[: len(ids)] = ids
        index._n = len(ids)
        index._row = dict(zip(ids.tolist(), range(len(ids))))
        return index
