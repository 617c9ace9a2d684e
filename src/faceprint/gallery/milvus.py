"""Templates searched in Milvus, shared by every replica of a gallery.

``--vectors milvus://HOST:PORT[/PREFIX][?index=HNSW&ef=128]`` (or ``FACEPRINT_VECTORS``): the
same pymilvus client code talks to Milvus Lite's gRPC server (tests, one machine) and to a
Milvus standalone or distributed cluster.  One collection per model id
(``<prefix>_<model>_<hash>``: an int64 primary key, the template id of the store, and the
unit vector), searched by inner product (the cosine of unit vectors: scores equal the
local index's).  Every search and count asks for *strong* consistency, so a template one
replica acknowledged is found by every other at once.

The store stays the source of truth.  :class:`~faceprint.gallery.Gallery` writes the
vectors inside the store's write transaction (a Milvus failure rolls the store back: the
caller gets 503 and nothing is half-written), candidates are looked up in the store (a
vector whose template is gone is never answered), and :meth:`MilvusVectors.reconcile`
brings a collection that lost data or missed writes back to the store's templates
(``faceprint subjects reindex``; automatically when a gallery opens and the counts differ).

Index types, measured by ``benchmarks/scale_out.py`` (recall@1 against exact search): HNSW
(default; ``M`` 16, ``efConstruction`` 200, ``ef`` 512 at search: the smallest that found the
exact top-1 for 99% of queries at 1M templates), FLAT (exact), IVF_FLAT
and IVF_SQ8 (``nlist`` 1024, ``nprobe`` at search).  Vectors in Milvus
are not sealed (an engine cannot search ciphertext): protect its storage as the templates
it holds deserve (docs/scale-out.md).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from faceprint.errors import InputError
from faceprint.postgres import BackendUnavailable

logger = logging.getLogger("faceprint")
# pymilvus logs every failed call with a traceback (and a warning on every id listing with Milvus
# Lite); the failures reach the caller as BackendUnavailable, with the reason, instead
logging.getLogger("pymilvus").setLevel(logging.CRITICAL)

__all__ = ["INDEX_TYPES", "MilvusVectors", "is_milvus_url"]

INDEX_TYPES = ("HNSW", "FLAT", "IVF_FLAT", "IVF_SQ8")
_TIMEOUT = 10.0  # seconds a Milvus call may take before the request gets 503
#: HNSW search breadth: benchmarks/scale_out.py at 1M templates (M 16, efConstruction 200) measured
#: recall@1 against exact search of 0.86 / 0.942 / 0.98 / 0.992 at ef 64 / 128 / 256 / 512
DEFAULT_EF = 512
_COUNT_TTL = 1.0  # seconds a count read for the open-set threshold is reused
_CREATE_RACE_WAIT = 10.0  # seconds to wait for a collection another replica is creating (its create made ours fail)


def is_milvus_url(target: Any) -> bool:
    return target is not None and str(target).lower().startswith("milvus://")


def _collection_name(prefix: str, model_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_]", "_", model_id)[:100]
    return f"{prefix}_{safe}_{hashlib.sha256(model_id.encode()).hexdigest()[:8]}"


class MilvusVectors:
    """The templates of one model in one Milvus collection (the VectorIndex calls a gallery
    makes: ``len``, ``add``, ``remove``, ``search``, ``ids``; plus ``reconcile``)."""

    kind = "milvus"
    dtype = "f32"

    def __init__(self, url: str, model_id: str, dim: int, *, timeout: float = _TIMEOUT) -> None:
        """``timeout``: seconds a call may take before it is :class:`BackendUnavailable` (10 s
        for requests; a bulk load of millions of vectors needs minutes)."""
        parts = urlsplit(str(url))
        if parts.scheme.lower() != "milvus" or not parts.hostname:
            raise InputError(f"a vector backend URL looks like milvus://HOST:PORT[/PREFIX], got {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"index", "ef", "nprobe", "m", "ef_construction", "token"}
        if unknown:
            raise InputError(f"unknown Milvus option(s) in {url!r}: {', '.join(sorted(unknown))}")
        self.index_type = query.get("index", "HNSW").upper()
        if self.index_type not in INDEX_TYPES:
            raise InputError(f"Milvus index must be one of {', '.join(INDEX_TYPES)}, got {self.index_type!r}")
        try:
            self.ef = int(query.get("ef", DEFAULT_EF))
            self.nprobe = int(query.get("nprobe", 32))
            self.m = int(query.get("m", 16))
            self.ef_construction = int(query.get("ef_construction", 200))
        except ValueError as exc:
            raise InputError(f"Milvus options must be integers: {exc}") from None
        self.token = query.get("token", "")
        self.address = f"{parts.hostname}:{parts.port or 19530}"
        prefix = parts.path.strip("/") or "faceprint"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,60}", prefix):
            raise InputError(f"the Milvus collection prefix must be letters, digits and underscores, got {prefix!r}")
        self.url = f"milvus://{self.address}/{prefix}"  # what messages name (no token)
        self.model_id = model_id
        self.dim = int(dim)
        self.collection = _collection_name(prefix, model_id)
        self.timeout = float(timeout)
        self._client: Any = None
        self._ready = False
        self._lock = threading.RLock()
        self._count: tuple[float, int] | None = None

    # -- connection ----------------------------------------------------------------------
    def _call(self, what: str, fn: Any) -> Any:
        """Run ``fn(client)``.  A failure drops the client and the call is tried once more on a
        fresh connection (every call faceprint makes is idempotent: upserts, deletes by id,
        reads), so the first request after Milvus comes back succeeds; a second failure is
        :class:`BackendUnavailable` (503, retry later)."""
        try:
            return self._attempt(fn)
        except (ImportError, InputError, BackendUnavailable):
            raise
        except Exception:  # grpc and pymilvus raise many kinds when the server is (or was) away
            self._drop_client()
        try:
            return self._attempt(fn)
        except ImportError:
            raise InputError("Milvus needs the pymilvus client: pip install 'faceprint[scale]'") from None
        except (InputError, BackendUnavailable):
            raise
        except Exception as exc:
            self._drop_client()
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise BackendUnavailable(f"Milvus could not {what} ({reason}); retry shortly", source=self.url) from None

    def _attempt(self, fn: Any) -> Any:
        with self._lock:
            if self._client is None:
                from pymilvus import MilvusClient

                self._client = MilvusClient(uri=f"http://{self.address}", token=self.token, timeout=self.timeout)
            if not self._ready:
                self._ensure(self._client)
            client = self._client
        return fn(client)

    def _drop_client(self) -> None:
        with self._lock:
            client, self._client, self._ready = self._client, None, False
        if client is not None:
            try:
                client.close()
            except Exception:
                pass

    def _ensure(self, client: Any) -> None:
        """Create the collection and its index when missing (two replicas racing is fine) and load it."""
        from pymilvus import DataType

        if not client.has_collection(self.collection, timeout=self.timeout):
            schema = client.create_schema(auto_id=False, description=f"faceprint templates of {self.model_id}")
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
            params = client.prepare_index_params()
            build: dict[str, Any] = {}
            if self.index_type == "HNSW":
                build = {"M": self.m, "efConstruction": self.ef_construction}
            elif self.index_type.startswith("IVF"):
                build = {"nlist": 1024}
            params.add_index(field_name="vector", index_type=self.index_type, metric_type="IP", params=build)
            try:
                client.create_collection(self.collection, schema=schema, index_params=params, consistency_level="Strong", timeout=self.timeout)
            except Exception:
                # Another replica may be creating it: Milvus Lite answers the loser "File exists"
                # before the winner's collection is listed.  Wait for it; a real failure stays one.
                deadline = time.monotonic() + min(self.timeout, _CREATE_RACE_WAIT)
                while not client.has_collection(self.collection, timeout=self.timeout):
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.1)
        described = client.describe_collection(self.collection, timeout=self.timeout)
        for f in described.get("fields", []):
            if f.get("name") == "vector":
                dim = int(f.get("params", {}).get("dim", self.dim))
                if dim != self.dim:
                    raise InputError(f"Milvus collection {self.collection} holds {dim}-d vectors; model {self.model_id!r} makes {self.dim}-d ones")
        client.load_collection(self.collection, timeout=self.timeout)
        self._ready = True

    def health(self) -> str:
        n = self.count(fresh=True)
        return f"ok ({n} templates in {self.collection} at {self.address})"

    # -- the VectorIndex calls ---------------------------------------------------------------
    def __len__(self) -> int:
        return self.count()

    def count(self, *, fresh: bool = False) -> int:
        """Templates in the collection (strong consistency); reused for up to a second unless ``fresh``."""
        cached = self._count
        if not fresh and cached is not None and time.monotonic() - cached[0] < _COUNT_TTL:
            return cached[1]
        rows = self._call(
            "count the templates",
            lambda c: c.query(self.collection, filter="", output_fields=["count(*)"], consistency_level="Strong", timeout=self.timeout),
        )
        n = int(rows[0]["count(*)"]) if rows else 0
        self._count = (time.monotonic(), n)
        return n

    def add(self, ids: np.ndarray, vectors: np.ndarray, *, timeout: float | None = None, fresh_ids: bool = False) -> None:
        """Insert or replace (``upsert``: a retried or reconciled write is idempotent);
        ``fresh_ids``: the caller knows none of the ids is in the collection (a bulk load:
        a plain insert, cheaper than an upsert); ``timeout``: seconds per chunk of 5,000."""
        ids = np.asarray(ids, np.int64)
        vectors = np.ascontiguousarray(vectors, np.float32)
        timeout = self.timeout if timeout is None else timeout
        if len(ids) == 0:
            return
        write = "insert" if fresh_ids else "upsert"
        for start in range(0, len(ids), 5000):
            rows = [{"id": int(i), "vector": v} for i, v in zip(ids[start : start + 5000], vectors[start : start + 5000])]
            self._call("store templates", lambda c, rows=rows: getattr(c, write)(self.collection, rows, timeout=timeout))
        self._count = None

    def remove(self, ids: np.ndarray) -> int:
        ids = [int(i) for i in np.asarray(ids, np.int64)]
        if not ids:
            return 0
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            self._call("delete templates", lambda c, chunk=chunk: c.delete(self.collection, ids=chunk, timeout=self.timeout))
        self._count = None
        return len(ids)

    def compact(self) -> None:
        """Ask Milvus to rewrite the segments that held deleted vectors (it runs in the background)."""
        self._call("compact", lambda c: c.compact(self.collection, timeout=self.timeout))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), np.float32)
        q = len(queries)
        ids = np.full((q, k), -1, np.int64)
        scores = np.full((q, k), -np.inf, np.float32)
        if q == 0:
            return ids, scores
        params: dict[str, Any] = {"metric_type": "IP", "params": {}}
        if self.index_type == "HNSW":
            params["params"] = {"ef": max(self.ef, k)}
        elif self.index_type.startswith("IVF"):
            params["params"] = {"nprobe": self.nprobe}
        hits = self._call(
            "search",
            lambda c: c.search(
                self.collection, data=[row.tolist() for row in queries], limit=k, search_params=params, consistency_level="Strong", timeout=self.timeout
            ),
        )
        for row, found in enumerate(hits):
            for j, hit in enumerate(list(found)[:k]):
                ids[row, j] = int(hit["id"])
                scores[row, j] = float(hit["distance"])
        return ids, scores

    def ids(self) -> np.ndarray:
        """Every template id in the collection (strong consistency), sorted."""

        def collect(c: Any) -> list[int]:
            out: list[int] = []
            it = c.query_iterator(self.collection, batch_size=10000, filter="", output_fields=["id"], consistency_level="Strong", timeout=self.timeout)
            try:
                while True:
                    batch = it.next()
                    if not batch:
                        return out
                    out.extend(int(r["id"]) for r in batch)
            finally:
                it.close()

        return np.array(sorted(self._call("list template ids", collect)), np.int64)

    def reconcile(self, store: Any) -> dict[str, int]:
        """Make the collection hold exactly the store's templates of this model: insert the
        missing (read from the store in chunks), delete the phantoms.  Runs inside a store
        write transaction, so no writer is half-way (a vector written but not yet committed
        would look like a phantom).  Returns the counts."""
        with store.transaction() as db:
            want = store.template_ids(self.model_id, db=db)
            have = self.ids()
            missing = np.setdiff1d(want, have, assume_unique=True)
            phantom = np.setdiff1d(have, want, assume_unique=True)
            if len(phantom):
                self.remove(phantom)
            for start in range(0, len(missing), 20000):
                tids, vecs = store.vectors_of(missing[start : start + 20000], db=db)
                self.add(tids, vecs, timeout=self.timeout * 12)
            if len(missing) or len(phantom):
                self._call("flush", lambda c: c.flush(self.collection, timeout=self.timeout * 6))
        return {"store": int(len(want)), "had": int(len(have)), "added": int(len(missing)), "removed": int(len(phantom))}

    def drop(self) -> None:
        """Delete the whole collection (``subjects reindex --full`` rebuilds it from the store)."""
        self._call("drop the collection", lambda c: c.drop_collection(self.collection, timeout=self.timeout))
        with self._lock:
            self._ready = False
        self._count = None

    def close(self) -> None:
        self._drop_client()
