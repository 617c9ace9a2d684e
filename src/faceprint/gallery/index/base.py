"""Vector indexes for 1:N search over L2-normalised templates.

Three kinds behind one protocol (:class:`VectorIndex`):

* :class:`ExactIndex` -- brute force: one float32 BLAS matrix product against
  every stored template, ``argpartition`` for the top k.  Exact, no build cost,
  and the fastest choice for small galleries (a 20k x 128 gallery is a 10 MB
  matrix-vector product, about a millisecond).
* :class:`PQScanIndex` -- every query scans 4-bit product-quantised codes
  (16 bytes per template, FAISS fast scan) and rescores the best few hundred
  exactly from the stored vectors.  About 3 ms per query at a million
  templates on one core, recall@1 >= 0.99 against exact search, a build of
  seconds; the default beyond the exact limit.
* :class:`HNSWIndex` -- an approximate HNSW graph (usearch).  Logarithmic
  query cost, but a build of minutes at 1M on two cores and a recall that
  depends on how the templates are distributed (see docs/architecture.md).

:func:`make_index` picks the kind from the expected gallery size (or is told);
:func:`index_for` loads whichever kind was saved at a path.

Scores are cosine similarities (the dot product of unit vectors), best first.
Where fewer than ``k`` templates exist, ids are padded with ``-1`` and scores
with ``-inf`` (so ``score >= threshold`` is never true for padding).

Files: ``save(path, generation=...)`` writes the index file atomically (temp
file in the same folder, fsync, ``os.replace``) and *then* a JSON header beside
it at ``<path>.json`` (kind, dim, count, dtype, params, the caller's
``generation`` string, the index file's size).  The header is written last, so
a crash in between leaves an index whose header does not describe it: the
caller sees an old generation (or :func:`index_for` sees a size mismatch) and
rebuilds.  :func:`read_header` reads the header without loading the index.

Quantisation (``quantize=True``) stores int8 ``round(v * 127)`` instead of
float32 (4x less memory for the vectors; for the PQ scan, 152 instead of 536
bytes per template).  Scores are then those of the quantised template, off by
about 0.002 (standard deviation; at most ~0.01) from the float32 cosine, and
the float vectors are not kept, so the top candidates cannot be rescored
exactly.  ``quantize="f16"`` stores half floats (2x smaller,
error ~1e-4).

No kind is safe for concurrent writers; callers serialise add/remove/save
(concurrent searches with no writer are fine).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from faceprint.errors import FaceprintError, InputError
from faceprint.privacy import private_dir

__all__ = [
    "DEFAULT_HNSW",
    "DEFAULT_PQSCAN",
    "KINDS",
    "ExactIndex",
    "HNSWIndex",
    "IndexCorruptError",
    "PQScanIndex",
    "VectorIndex",
    "header_path",
    "index_for",
    "make_index",
    "read_header",
]

FORMAT_VERSION = 1
KINDS = ("exact", "pqscan", "hnsw")

#: HNSW defaults (usearch).  Measured with ``benchmarks/search.py`` on a 2-core
#: machine at 1M templates (LFW + random fill): recall@1 0.87 at p99 5 ms with
#: expansion_search 128, 0.963 at 14.7 ms with 512 -- which is why galleries of
#: that size use :class:`PQScanIndex` unless told otherwise.
DEFAULT_HNSW: dict[str, int] = {"connectivity": 16, "expansion_add": 128, "expansion_search": 64}

_DTYPES = {"f32": np.float32, "f16": np.float16, "i8": np.int8}
_I8_SCALE = 127.0
_NORM_TOLERANCE = 1e-2  # unit rows: |norm - 1| above this is a caller bug (float16 round trips stay far below)
_BLOCK_ELEMS = 1 << 24  # scores materialised per block (64 MB of float32)
_CONVERT_ROWS = 1 << 16  # rows dequantised per block for int8/float16 storage
_QUERY_CHUNK = 1024


class IndexCorruptError(FaceprintError):
    """An index file or its header is missing, truncated, corrupt or does not match; rebuild it from the store."""

    exit_code = 3
    http_status = 500
    code = "index_corrupt"


@runtime_checkable
class VectorIndex(Protocol):
    """What every index kind offers.  Ids are int64 >= 0; vectors are float32 unit rows."""

    kind: str
    dim: int

    def __len__(self) -> int: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Insert ``vectors`` (n, dim) under ``ids`` (n,); an id already present is replaced."""

    def remove(self, ids: np.ndarray) -> int:
        """Remove the ids that are present; returns how many were."""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` per query: (Q, k) int64 ids (-1 padding) and (Q, k) float32 cosine scores (-inf padding), best first."""

    def ids(self) -> np.ndarray:
        """All ids present, sorted, int64."""

    def save(self, path: Path, *, generation: str = "", cipher: Any = None) -> None:
        """Write the index atomically (sealed by ``cipher``, a :class:`faceprint.crypto.Cipher`,
        when given), then its JSON header at ``<path>.json``."""

    @classmethod
    def load(cls, path: Path, dim: int, *, cipher: Any = None) -> "VectorIndex": ...


# -- argument checks ------------------------------------------------------------------


def _check_dim(dim: Any) -> int:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or int(dim) < 1:
        raise InputError(f"index dimension must be a positive integer, got {dim!r}")
    return int(dim)


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or int(k) < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _as_ids(ids: Any) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise InputError(f"ids must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype.kind not in "iu":
        raise InputError(f"ids must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.max() > np.iinfo(np.int64).max:
        raise InputError("ids must fit in int64")
    arr = arr.astype(np.int64, copy=False)
    if arr.min() < 0:
        raise InputError(f"ids must be >= 0, got {int(arr.min())}")
    return arr


def _as_vectors(vectors: Any, dim: int, n: int) -> np.ndarray:
    arr = np.asarray(vectors)
    if arr.ndim == 1 and n == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape != (n, dim):
        raise InputError(f"vectors must have shape ({n}, {dim}) to match the ids and the index, got {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise InputError(f"vectors must be numeric, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if n and not np.isfinite(arr).all():
        raise InputError("vectors contain NaN or infinity")
    if n:
        norms = np.sqrt(np.einsum("ij,ij->i", arr, arr))
        bad = np.abs(norms - 1.0) > _NORM_TOLERANCE
        if bad.any():
            raise InputError(f"vectors must be L2-normalised (unit rows); row {int(np.argmax(bad))} has norm {float(norms[bad][0]):.4f}")
    return arr


def _as_queries(queries: Any, dim: int) -> np.ndarray:
    arr = np.asarray(queries)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise InputError(f"queries must have shape ({dim},) or (Q, {dim}), got {np.shape(queries)}")
    if arr.dtype.kind not in "fiu":
        raise InputError(f"queries must be numeric, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise InputError("queries contain NaN or infinity")
    return arr


def _storage_dtype(quantize: Any) -> str:
    if quantize is False or quantize is None or quantize == "f32":
        return "f32"
    if quantize is True or quantize == "i8":
        return "i8"
    if quantize == "f16":
        return "f16"
    raise InputError(f"quantize must be False, True ('i8') or 'f16', got {quantize!r}")


def _to_storage(v: np.ndarray, dtype: str) -> np.ndarray:
    """Unit float32 rows as stored: int8 ``round(v * 127)``, float16 or float32."""
    if dtype == "i8":
        return np.clip(np.rint(v * _I8_SCALE), -127, 127).astype(np.int8)
    return v.astype(_DTYPES[dtype], copy=False)


def _empty_result(q: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((q, k), -1, np.int64), np.full((q, k), -np.inf, np.float32)


# -- files ----------------------------------------------------------------------------


def header_path(path: str | os.PathLike[str]) -> Path:
    """Where the JSON header of the index at ``path`` lives: ``<path>.json``."""
    p = Path(path)
    return p.with_name(p.name + ".json")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Any, cipher: Any = None, aad: bytes = b"") -> int:
    """Call ``write(fh)`` on a temp file beside ``path`` (with ``cipher``: on a memory buffer
    whose sealed chunks go to the file, so no clear byte reaches the disk), fsync it, rename
    it over ``path``; returns its size."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    private_dir(folder)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        if cipher is None:
            with open(tmp, "wb") as fh:
                write(fh)
        else:
            buf = io.BytesIO()
            write(buf)
            with open(tmp, "wb") as fh:
                for piece in cipher.seal_stream(buf.getbuffer(), aad):
                    fh.write(piece)
            del buf
        with open(tmp, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
            size = os.fstat(fh.fileno()).st_size
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)
    return size


def _write_header(path: Path, header: dict[str, Any]) -> None:
    data = json.dumps(header, indent=1, sort_keys=True).encode()
    _atomic_write(header_path(path), lambda fh: fh.write(data))


def read_header(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The JSON header saved beside the index at ``path``, or None when there is no usable one.

    None means missing, unreadable or malformed: either way the index at
    ``path`` cannot be trusted and the caller should rebuild it.  Keys:
    ``format``, ``kind``, ``dim``, ``count``, ``dtype``, ``quantize``,
    ``params``, ``generation``, ``file_bytes``, ``saved_at``.
    """
    try:
        header = json.loads(header_path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or header.get("kind") not in KINDS:
        return None
    if not isinstance(header.get("dim"), int) or not isinstance(header.get("count"), int):
        return None
    return header


def _header(index: "ExactIndex | HNSWIndex | PQScanIndex", generation: str, file_bytes: int, cipher: Any = None) -> dict[str, Any]:
    return {
        "encrypted": cipher is not None,
        "format": FORMAT_VERSION,
        "kind": index.kind,
        "dim": index.dim,
        "count": len(index),
        "dtype": index.dtype,
        "quantize": index.dtype != "f32",
        "params": index.params,
        "generation": str(generation),
        "file_bytes": int(file_bytes),
        "saved_at": time.time(),
    }


def _aad(kind: str) -> bytes:
    return f"faceprint:index:{kind}".encode()


def _contents(path: Path, cipher: Any, kind: str) -> Any:
    """What to hand a reader: the path of a clear file, or the opened content of a sealed one.
    A sealed file without a cipher, or a clear one where a cipher is expected, is refused
    (the caller rebuilds the index from its store, sealed)."""
    from faceprint.crypto import KeyProblem, is_sealed_file

    if not path.is_file():
        raise IndexCorruptError("index file is missing", source=str(path))
    sealed = is_sealed_file(path)
    if cipher is None:
        if sealed:
            raise IndexCorruptError("index file is encrypted and no key was given", source=str(path))
        return path
    if not sealed:
        raise IndexCorruptError("index file is not encrypted but its database is", source=str(path))
    try:
        return cipher.open_file(path, _aad(kind))
    except KeyProblem as exc:
        raise IndexCorruptError(str(exc), source=str(path)) from exc


def _read_npz(path: str | os.PathLike[str], dim: int, kind: str, what: str, extra: tuple[str, ...] = (), tombstones: bool = False, cipher: Any = None) -> tuple[dict[str, Any], np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Read and check an index file written with ``np.savez`` (meta, ids, vectors, ``extra``).

    Raises IndexCorruptError for a missing, unreadable or inconsistent file.  With
    ``tombstones`` an id of -1 marks a removed row."""
    path = Path(path)
    src = _contents(path, cipher, kind)
    try:
        with np.load(io.BytesIO(src) if isinstance(src, bytes) else src, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            ids, vecs = z["ids"], z["vectors"]
            more = {k: z[k] for k in extra}
    except Exception as exc:  # zipfile/np.load raise many kinds on truncated or garbled files
        raise IndexCorruptError(f"not a readable {what} ({type(exc).__name__}: {exc})", source=str(path)) from exc
    if not isinstance(meta, dict) or meta.get("kind") != kind or meta.get("dtype") not in _DTYPES:
        raise IndexCorruptError(f"not a {what} file", source=str(path))
    if meta.get("dim") != dim:
        raise IndexCorruptError(f"index has dimension {meta.get('dim')}, expected {dim}", source=str(path))
    dtype = meta["dtype"]
    if ids.ndim != 1 or ids.dtype != np.int64 or vecs.shape != (len(ids), dim) or vecs.dtype != _DTYPES[dtype] or meta.get("count") != len(ids):
        raise IndexCorruptError("index arrays do not match their description", source=str(path))
    live = ids[ids >= 0] if tombstones else ids
    if len(ids) and (ids.min() < (-1 if tombstones else 0) or len(np.unique(live)) != len(live)):
        raise IndexCorruptError("index ids are invalid or repeated", source=str(path))
    return meta, ids, vecs, more


# -- exact ----------------------------------------------------------------------------


class ExactIndex:
    """Brute-force cosine search: one BLAS product per query block, exact top k.

    Templates live in one contiguous (capacity, dim) array that grows by
    doubling; removal moves the last row into the hole.  ``quantize=True``
    stores int8 ``round(v * 127)`` (scores off by ~0.002, see the module doc),
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
    def load(cls, path: str | os.PathLike[str], dim: int, *, cipher: Any = None) -> "ExactIndex":
        dim = _check_dim(dim)
        meta, ids, vecs, _ = _read_npz(path, dim, cls.kind, "exact index", cipher=cipher)
        dtype = meta["dtype"]
        index = cls(dim, quantize=dtype, capacity=len(ids))
        index._vecs[: len(ids)] = vecs
        index._ids[: len(ids)] = ids
        index._n = len(ids)
        index._row = dict(zip(ids.tolist(), range(len(ids))))
        return index


# -- HNSW -----------------------------------------------------------------------------


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
    def load(cls, path: str | os.PathLike[str], dim: int, *, expansion_search: int | None = None, threads: int = 0, cipher: Any = None) -> "HNSWIndex":
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
        index = cls(dim, quantize=dtype, connectivity=int(ix.connectivity), expansion_add=expansion_add, expansion_search=int(expansion_search), threads=threads, _index=ix)
        index._freed = int(meta.get("count_deleted", 0) or 0)
        return index


# -- PQ fast scan + exact re-rank ------------------------------------------------------

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
        self._trained_on = int(len(sample_rows))

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
        meta = json.dumps({"format": FORMAT_VERSION, "kind": self.kind, "dim": self.dim, "dtype": self.dtype, "count": n, "pq_m": self.pq_m, "candidates": self.candidates, "trained_on": self._trained_on})
        codes = _faiss().serialize_index(self._pq) if self._pq is not None else np.zeros(0, np.uint8)

        def write(fh: Any) -> None:
            np.savez(fh, meta=np.frombuffer(meta.encode(), np.uint8), ids=self._ids[:n], vectors=self._vecs[:n], codes=codes)

        size = _atomic_write(path, write, cipher, _aad(self.kind))
        _write_header(path, _header(self, generation, size, cipher))

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int, *, candidates: int | None = None, threads: int = 0, cipher: Any = None) -> "PQScanIndex":
        dim = _check_dim(dim)
        path = Path(path)
        meta, ids, vecs, more = _read_npz(path, dim, cls.kind, "scan index", extra=("codes",), tombstones=True, cipher=cipher)
        codes, dtype = more["codes"], meta["dtype"]
        try:
            index = cls(dim, quantize=dtype, pq_m=meta.get("pq_m", DEFAULT_PQSCAN["pq_m"]), candidates=candidates or meta.get("candidates", DEFAULT_PQSCAN["candidates"]), threads=threads, capacity=len(ids))
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


# -- choosing and loading -------------------------------------------------------------


def make_index(
    dim: int,
    n_expected: int = 0,
    *,
    kind: str = "auto",
    quantize: bool | str = False,
    exact_limit: int = 20_000,
    **params: Any,
) -> "ExactIndex | PQScanIndex | HNSWIndex":
    """An empty index for about ``n_expected`` templates.

    ``kind="auto"`` is exact below ``exact_limit`` and the PQ scan from there
    on; ``"exact"``, ``"pqscan"`` and ``"hnsw"`` force one.  ``params`` are the
    chosen kind's (pqscan: pq_m, candidates, threads; hnsw: connectivity,
    expansion_add, expansion_search, threads); a parameter no kind knows is an
    error, one of another kind is ignored (so one settings table serves all).
    """
    dim = _check_dim(dim)
    if kind not in ("auto", *KINDS):
        raise InputError(f"index kind must be one of auto, {', '.join(KINDS)}; got {kind!r}")
    hnsw_keys = {"connectivity", "expansion_add", "expansion_search", "threads"}
    pq_keys = {"pq_m", "candidates", "threads"}
    unknown = set(params) - hnsw_keys - pq_keys
    if unknown:
        raise InputError(f"unknown index parameter(s): {', '.join(sorted(unknown))}")
    if isinstance(n_expected, bool) or not isinstance(n_expected, (int, np.integer)) or n_expected < 0:
        raise InputError(f"n_expected must be an integer >= 0, got {n_expected!r}")
    if isinstance(exact_limit, bool) or not isinstance(exact_limit, (int, np.integer)) or exact_limit < 0:
        raise InputError(f"exact_limit must be an integer >= 0, got {exact_limit!r}")
    if kind == "auto":
        kind = "exact" if n_expected < exact_limit else "pqscan"
    if kind == "exact":
        return ExactIndex(dim, quantize=quantize, capacity=int(n_expected))
    if kind == "pqscan":
        return PQScanIndex(dim, quantize=quantize, capacity=int(n_expected), **{k: v for k, v in params.items() if k in pq_keys})
    return HNSWIndex(dim, quantize=quantize, **{k: v for k, v in params.items() if k in hnsw_keys})


def index_for(path: str | os.PathLike[str], dim: int, cipher: Any = None, **load_params: Any) -> "ExactIndex | PQScanIndex | HNSWIndex":
    """Load the index saved at ``path`` (whichever kind its header names).

    Raises :class:`IndexCorruptError` when the header or the file is missing,
    unreadable, of another dimension, or does not match (size, count) -- the
    caller rebuilds from its store.  ``load_params`` go to the kind's ``load``.
    """
    dim = _check_dim(dim)
    path = Path(path)
    header = read_header(path)
    if header is None:
        raise IndexCorruptError("index header is missing or malformed", source=str(header_path(path)))
    if header["dim"] != dim:
        raise IndexCorruptError(f"index header says dimension {header['dim']}, expected {dim}", source=str(header_path(path)))
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise IndexCorruptError("index file is missing", source=str(path)) from exc
    if header.get("file_bytes") not in (None, size):
        raise IndexCorruptError(f"index file is {size} bytes, its header says {header.get('file_bytes')}", source=str(path))
    cls = {"exact": ExactIndex, "pqscan": PQScanIndex, "hnsw": HNSWIndex}[header["kind"]]
    index = cls.load(path, dim, cipher=cipher, **load_params)
    if len(index) != header["count"]:
        raise IndexCorruptError(f"index holds {len(index)} templates, its header says {header['count']}", source=str(path))
    return index
