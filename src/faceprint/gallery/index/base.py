"""What every index kind shares: the :class:`VectorIndex` protocol, :class:`IndexCorruptError`,
argument checks, the storage encodings and the file plumbing.

Files: ``save(path, generation=...)`` writes the index file atomically (temp
file in the same folder, fsync, ``os.replace``) and *then* a JSON header beside
it at ``<path>.json`` (kind, dim, count, dtype, params, the caller's
``generation`` string, the index file's size).  The header is written last, so
a crash in between leaves an index whose header does not describe it: the
caller sees an old generation (or :func:`~faceprint.gallery.index.index_for`
sees a size mismatch) and rebuilds.  :func:`read_header` reads the header
without loading the index.  With a cipher (:class:`faceprint.crypto.Cipher`)
the index file is sealed in authenticated chunks and no clear byte reaches the
disk; the header stays clear.

Quantisation (``quantize=True``) stores int8 ``round(v * 127)`` instead of
float32 (4x less memory for the vectors; for the PQ scan, 152 instead of 536
bytes per template).  Scores are then those of the quantised template, off by
about 0.002 (standard deviation; at most ~0.01) from the float32 cosine, and
the float vectors are not kept, so the top candidates cannot be rescored
exactly.  ``quantize="f16"`` stores half floats (2x smaller,
error ~1e-4).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from faceprint.errors import FaceprintError, InputError
from faceprint.privacy import private_dir

if TYPE_CHECKING:
    from faceprint.gallery.index.exact import ExactIndex
    from faceprint.gallery.index.hnsw import HNSWIndex
    from faceprint.gallery.index.pq import PQScanIndex

__all__ = ["FORMAT_VERSION", "KINDS", "IndexCorruptError", "VectorIndex", "header_path", "read_header"]

FORMAT_VERSION = 1
KINDS = ("exact", "pqscan", "hnsw")

_DTYPES = {"f32": np.float32, "f16": np.float16, "i8": np.int8}
_I8_SCALE = 127.0
_NORM_TOLERANCE = 1e-2  # unit rows: |norm - 1| above this is a caller bug (float16 round trips stay far below)
_CONVERT_ROWS = 1 << 16  # rows dequantised per block for int8/float16 storage


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
    def load(cls, path: Path, dim: int, *, cipher: Any = None) -> VectorIndex: ...


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
                fh.writelines(cipher.seal_stream(buf.getbuffer(), aad))
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


def _header(index: ExactIndex | HNSWIndex | PQScanIndex, generation: str, file_bytes: int, cipher: Any = None) -> dict[str, Any]:
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


def _read_npz(
    path: str | os.PathLike[str], dim: int, kind: str, what: str, extra: tuple[str, ...] = (), tombstones: bool = False, cipher: Any = None
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, dict[str, np.ndarray]]:
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
