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

Modules: ``base`` (the protocol, argument checks, storage encodings, the file
plumbing: headers, atomic and sealed writes; file layout and quantisation are
described there), ``exact``, ``hnsw``, ``pq``; this package picks and loads.

No kind is safe for concurrent writers; callers serialise add/remove/save
(concurrent searches with no writer are fine).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import InputError
from faceprint.gallery.index.base import (
    KINDS,
    IndexCorruptError,
    VectorIndex,
    _check_dim,
    _to_storage,  # noqa: F401  (tests import it from here)
    header_path,
    read_header,
)
from faceprint.gallery.index.exact import ExactIndex
from faceprint.gallery.index.hnsw import DEFAULT_HNSW, HNSWIndex
from faceprint.gallery.index.pq import DEFAULT_PQSCAN, PQScanIndex

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


def make_index(
    dim: int,
    n_expected: int = 0,
    *,
    kind: str = "auto",
    quantize: bool | str = False,
    exact_limit: int = 20_000,
    **params: Any,
) -> ExactIndex | PQScanIndex | HNSWIndex:
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


def index_for(path: str | os.PathLike[str], dim: int, cipher: Any = None, **load_params: Any) -> ExactIndex | PQScanIndex | HNSWIndex:
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
