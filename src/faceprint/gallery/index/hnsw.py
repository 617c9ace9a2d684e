"""The HNSW index: an approximate graph (usearch).  Logarithmic query cost, but a build of
minutes at 1M templates on two cores and a recall that depends on how the templates are
distributed (see docs/architecture.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import FaceprintError, InputError
from faceprint.gallery.index.base import (
    IndexCorruptError,
    _aad,
    _as_ids,
    _as_queries,
    _as_vectors,
    _atomic_write,
    _check_dim,
    _check_k,
    _contents,
    _empty_result,
    _header,
    _storage_dtype,
    _write_header,
    read_header,
)

__all__ = ["DEFAULT_HNSW", "HNSWIndex"]

#: HNSW defaults (usearch).  Measured with ``benchmarks/search.py`` on a 2-core
#: machine at 1M templates (LFW + random fill): recall@1 0.87 at p99 5 ms with
#: expansion_search 128, 0.963 at 14.7 ms with 512 -- which is why galleries of
#: that size use :class:`~faceprint.gallery.index.pq.PQScanIndex` unless told otherwise.
DEFAULT_HNSW: dict[str, int] = {"connectivity": 16, "expansion_add": 128, "expansion_search": 64}

_SCRUB_KEY = 2**62  # throwaway keys that overwrite removed vectors (template ids never reach it)


def _usearch() -> Any:
    try:
        from usearch.index import Index
    except ImportError as exc:  # pragma: no cover - usearch is a dependency
        raise FaceprintError("the HNSW index needs the 'usearch' package (pip install usearch)") from exc
    return Index


class HNSWIndex:
    """Approximate cosine search on a usearch HNSW graph; keys are the template ids.

    float32 storage uses the inner-product metric (unit vectors: distance =
    1 - cosine); quantised storage (``quantize=True`` -> int8, ``"f16"``) uses
    usearch's cosine metric, which normalises the quantised vectors.  Either
    way ``score = 1 - distance``.  ``threads`` is the worker count for batch
    add and batch search (0: all cores).  A save first zeroes the slots of removed
    vectors (usearch keeps their bytes until a slot is reused).  Removal leaves tombstones in the
    graph; after removing a large share of a gallery, rebuild it.
    """

    kind = "hnsw"

    def __init__(
        self,
        dim: int,
        *,
        quantize: bool | str = False,
        connectivity: int = DEFAULT_HNSW["connectivity"],
        expansion_add: int = DEFAULT_HNSW["expansion_add"],
        expansion_search: int = DEFAULT_HNSW["expansion_search"],
        threads: int = 0,
        _index: Any = None,
    ) -> None:
        self.dim = _check_dim(dim)
        self.dtype = _storage_dtype(quantize)
        for name, value in (("connectivity", connectivity), ("expansion_add", expansion_add), ("expansion_search", expansion_search)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
                raise InputError(f"{name} must be an integer >= 2, got {value!r}")
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 0:
            raise InputError(f"threads must be an integer >= 0, got {threads!r}")
        self.threads = int(threads)
        self.metric = "ip" if self.dtype == "f32" else "cos"
        if _index is None:
            _index = _usearch()(
                ndim=self.dim,
                metric=self.metric,
                dtype=self.dtype,
                connectivity=int(connectivity),
                expansion_add=int(expansion_add),
                expansion_search=int(expansion_search),
            )
        self._ix = _index
        self._freed = 0  # slots of removed vectors (usearch reuses them for the next additions)
        self._unscrubbed = 0  # removals since the free slots were last zeroed

    def __len__(self) -> int:
        return len(self._ix)

    def __contains__(self, id_: object) -> bool:
        return isinstance(id_, (int, np.integer)) and int(id_) >= 0 and bool(self._ix.contains(int(id_)))

    def __repr__(self) -> str:
        return f"HNSWIndex(dim={self.dim}, dtype={self.dtype!r}, count={len(self)}, {self.params})"

    @property
    def expansion_search(self) -> int:
        return int(self._ix.expansion_search)

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
            raise InputError(f"expansion_search must be an integer >= 2, got {value!r}")
        self._ix.expansion_search = int(value)

    @property
    def params(self) -> dict[str, Any]:
        return {
            "connectivity": int(self._ix.connectivity),
            "expansion_add": int(self._ix.expansion_add),
            "expansion_search": int(self._ix.expansion_search),
            "metric": self.metric,
        }

    @property
    def nbytes(self) -> int:
        """Bytes of the serialised index (vectors + graph): what it costs on disk and, roughly, in memory."""
        return int(self._ix.serialized_length)

    def ids(self) -> np.ndarray:
        if len(self._ix) == 0:
            return np.zeros(0, np.int64)
        return np.sort(np.asarray(self._ix.keys, dtype=np.uint64).astype(np.int64))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = _as_ids(ids)
        vecs = _as_vectors(vectors, self.dim, len(ids))
        if len(ids) == 0:
            return
        if len(np.unique(ids)) != len(ids):
            raise InputError("ids passed to add() must be unique")
        keys = ids.astype(np.uint64)
        if len(self._ix):
            present = np.asarray(self._ix.contains(keys), dtype=bool).reshape(-1)
            if present.any():
                self._ix.remove(keys[present])
                self._freed += int(present.sum())
                self._unscrubbed += int(present.sum())
        self._ix.add(keys, vecs, threads=self.threads)
        self._freed = max(0, self._freed - len(keys))  # new vectors fill free slots first

    def remove(self, ids: np.ndarray) -> int:
        ids = np.unique(_as_ids(ids))
        if len(ids) == 0 or len(self._ix) == 0:
            return 0
        keys = ids.astype(np.uint64)
        present = np.asarray(self._ix.contains(keys), dtype=bool).reshape(-1)
        if not present.any():
            return 0
        self._ix.remove(keys[present])
        n = int(present.sum())
        self._freed += n
        self._unscrubbed += n
        return n

    def _scrub(self) -> None:
        """usearch keeps a removed vector's bytes in its slot (and so in a saved file) until the
        slot is reused.  Fill every free slot with a zero vector under a throwaway key, then
        remove those: what the slots hold afterwards is zeros (checked by the erasure test).
        Costs one insertion per free slot, so it runs at save time, only after removals."""
        if not self._unscrubbed or not self._freed:
            return
        scrub = np.arange(self._freed, dtype=np.uint64) + np.uint64(_SCRUB_KEY)
        self._ix.add(scrub, np.zeros((self._freed, self.dim), np.float32), threads=self.threads)
        self._ix.remove(scrub)
        self._unscrubbed = 0

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = _as_queries(queries, self.dim)
        k = _check_k(k)
        out_ids, out_scores = _empty_result(len(q), k)
        if len(q) == 0 or len(self._ix) == 0:
            return out_ids, out_scores
        m = self._ix.search(q, k, threads=self.threads)
        if len(q) == 1:  # usearch answers a single query with a flat Matches of the valid hits only
            keys = np.asarray(m.keys).reshape(1, -1)
            dist = np.asarray(m.distances, np.float32).reshape(1, -1)
            counts = np.array([keys.shape[1]])
        else:
            keys, dist, counts = np.asarray(m.keys), np.asarray(m.distances, np.float32), np.asarray(m.counts)
        width = min(k, keys.shape[1])
        valid = np.arange(width)[None, :] < counts[:, None]
        out_ids[:, :width] = np.where(valid, keys[:, :width].astype(np.int64), -1)
        with np.errstate(invalid="ignore"):  # padding slots hold NaN distances
            out_scores[:, :width] = np.where(valid, np.float32(1.0) - dist[:, :width], -np.inf)
        return out_ids, out_scores

    def save(self, path: str | os.PathLike[str], *, generation: str = "", cipher: Any = None) -> None:
        path = Path(path)
        self._scrub()  # a saved file holds no removed template
        size = _atomic_write(path, lambda fh: fh.write(self._ix.save()), cipher, _aad(self.kind))
        _write_header(path, _header(self, generation, size, cipher))

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int, *, expansion_search: int | None = None, threads: int = 0, cipher: Any = None) -> HNSWIndex:
        """Restore a saved index.  ``expansion_search`` defaults to the one in the header, else the default."""
        dim = _check_dim(dim)
        path = Path(path)
        src = _contents(path, cipher, cls.kind)
        src = bytearray(src) if isinstance(src, bytes) else os.fspath(src)
        Index = _usearch()
        try:
            meta = Index.metadata(src)
        except Exception as exc:
            raise IndexCorruptError(f"not a readable HNSW index ({exc})", source=str(path)) from exc
        if not meta:
            raise IndexCorruptError("not a readable HNSW index", source=str(path))
        if meta.get("dimensions") != dim:
            raise IndexCorruptError(f"index has dimension {meta.get('dimensions')}, expected {dim}", source=str(path))
        scalar = str(meta.get("kind_scalar", "")).rsplit(".", 1)[-1].split(":")[0].lower()
        metric = str(meta.get("kind_metric", "")).rsplit(".", 1)[-1].split(":")[0].lower()
        dtype = {"f32": "f32", "f16": "f16", "i8": "i8"}.get(scalar)
        if dtype is None or metric != ("ip" if dtype == "f32" else "cos"):
            raise IndexCorruptError(f"index uses {scalar}/{metric}, which faceprint does not write", source=str(path))
        header = read_header(path)
        params = header.get("params", {}) if header else {}
        params = params if isinstance(params, dict) else {}
        if expansion_search is None:
            expansion_search = params.get("expansion_search")
            if not isinstance(expansion_search, int) or expansion_search < 2:
                expansion_search = DEFAULT_HNSW["expansion_search"]
        # usearch's file keeps the graph's connectivity but not expansion_add: take it from the header
        expansion_add = params.get("expansion_add")
        try:
            ix = Index.restore(src, expansion_search=int(expansion_search))
        except Exception as exc:
            raise IndexCorruptError(f"not a readable HNSW index ({type(exc).__name__}: {exc})", source=str(path)) from exc
        if ix is None:
            raise IndexCorruptError("not a readable HNSW index", source=str(path))
        if len(ix) != meta.get("count_present", len(ix)):
            raise IndexCorruptError("index holds a different number of templates than its own metadata says", source=str(path))
        if not isinstance(expansion_add, int) or expansion_add < 2:
            expansion_add = int(ix.expansion_add)
        ix.expansion_add = expansion_add
        index = cls(
            dim,
            quantize=dtype,
            connectivity=int(ix.connectivity),
            expansion_add=expansion_add,
            expansion_search=int(expansion_search),
            threads=threads,
            _index=ix,
        )
        index._freed = int(meta.get("count_deleted", 0) or 0)
        return index
