"""Identity gallery: enrol subjects, identify (1:N, open set) and verify against a subject.

The SQLite store is the source of truth; the vector index beside it
(``<db>.index`` + ``<db>.index.json``) is a cache that is rebuilt whenever its
recorded generation differs from the store's (missing, stale after a crash, or
written by another process).  Only templates of the engine's model id are
indexed or compared; templates of other models are reported as needing
re-enrolment.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np

from faceprint.engine import Engine, select_face
from faceprint.errors import FaceprintError, InputError
from faceprint.gallery.consistency import IdentityConsistency, identity_consistency
from faceprint.gallery.index import VectorIndex, index_for, make_index, read_header
from faceprint.gallery.milvus import MilvusVectors, is_milvus_url
from faceprint.gallery.store import NewTemplate, Subject, open_store
from faceprint.postgres import is_postgres_url
from faceprint.quality.gate import enforce as enforce_quality
from faceprint.quality.gate import is_low as is_low_quality
from faceprint.types import Decision, Image, Template

#: Galleries up to this many templates are searched exactly (one BLAS product, ~1 ms at 20k);
#: larger ones by the PQ scan with exact re-ranking (~3 ms per million templates).
EXACT_LIMIT = 20_000
logger = logging.getLogger("faceprint")
INDEX_KINDS = ("auto", "exact", "pqscan", "hnsw")


def index_path_for(db: str | Path) -> Path:
    """Where the vector index of the gallery database ``db`` is saved: ``<db>.index``."""
    db = Path(db)
    return db.with_name(db.name + ".index")


def default_db_path() -> Path | str:
    """``$FACEPRINT_DB`` (a file path or a ``postgresql://`` URL), else ``gallery.db`` in the
    user's data directory."""
    env = os.environ.get("FACEPRINT_DB")
    if env:
        return env if is_postgres_url(env) else Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("faceprint", appauthor=False)) / "gallery.db"


@dataclass(frozen=True)
class Candidate:
    subject_id: int
    name: str
    score: float
    template_id: int

    def to_dict(self) -> dict[str, Any]:
        return {"subject_id": self.subject_id, "name": self.name, "score": round(self.score, 6), "template_id": self.template_id}


@dataclass(frozen=True)
class Identification:
    """Top-k candidates and the open-set decision at a threshold chosen for a stated FPIR."""

    candidates: list[Candidate]
    match: Candidate | None
    threshold: float
    fpir: float  # false-positive identification rate the threshold was chosen for
    gallery_templates: int
    model_id: str
    note: str = ""
    probe: Template | None = None
    low_quality: bool | None = None  # the probe's quality is under the quality_mark_below setting

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.match.name if self.match else None,
            "match": self.match is not None,
            "score": round(self.candidates[0].score, 6) if self.candidates else None,
            "threshold": round(self.threshold, 6),
            "fpir": self.fpir,
            "gallery_templates": self.gallery_templates,
            "model_id": self.model_id,
            "candidates": [c.to_dict() for c in self.candidates],
        }
        if self.note:
            out["note"] = self.note
        if self.probe is not None and self.probe.detection is not None:
            out["face"] = self.probe.detection.to_dict()
        if self.probe is not None and self.probe.quality is not None:
            out["quality"] = self.probe.quality.to_dict()
        if self.low_quality is not None:
            out["low_quality"] = self.low_quality
        return out


@dataclass
class EnrollResult:
    subject: Subject
    template_ids: list[int]
    rejected: list[tuple[str, FaceprintError]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject.to_dict(),
            "added": len(self.template_ids),
            "template_ids": self.template_ids,
            "rejected": [{"source": s, "code": e.code, "message": str(e), **e.details()} for s, e in self.rejected],
        }


def fmr_for_fpir(fpir: float, n: int) -> float:
    """Per-comparison FMR such that an impostor probe searched against n independent
    templates passes the threshold with probability ``fpir``: 1 - (1 - fpir)^(1/n)."""
    if not 0 < fpir < 1:
        raise InputError(f"FPIR must be between 0 and 1, got {fpir}")
    return float(-np.expm1(np.log1p(-fpir) / max(1, n)))


class Gallery:
    """Subjects and their templates in a store (a SQLite file by default, or PostgreSQL),
    searched through a vector index (a local one beside the file, or Milvus)."""

    def __init__(
        self,
        path: str | Path | None = None,
        engine: Engine | None = None,
        *,
        quantize: bool = False,
        index_kind: str = "auto",
        save_interval: float = 2.0,
        vectors: str | None = None,
    ) -> None:
        """``path``: the store, a SQLite file or a ``postgresql://`` URL (default
        ``$FACEPRINT_DB``); ``vectors``: a ``milvus://`` URL whose collection replaces the
        local index (default ``$FACEPRINT_VECTORS``; several processes may share it)."""
        if index_kind not in INDEX_KINDS:
            raise InputError(f"index kind must be one of {', '.join(INDEX_KINDS)}; got {index_kind!r}")
        self.index_kind = index_kind
        target = path or default_db_path()
        vectors = vectors if vectors is not None else (os.environ.get("FACEPRINT_VECTORS") or None)
        if vectors is not None and not is_milvus_url(vectors):
            raise InputError(f"the vector backend must be a milvus://HOST:PORT URL, got {vectors!r}")
        self.vectors_url = vectors
        self.store = open_store(target)
        self.path: Path | str = self.store.path
        self.engine = engine or Engine()
        self.quantize = quantize
        # a local index is saved beside a SQLite file; on PostgreSQL it lives in memory only
        self.index_path: Path | None = None if self.store.DIALECT != "sqlite" else index_path_for(self.store.path)
        self.save_interval = save_interval
        self._index: VectorIndex | None = None
        self._index_generation = ""  # the store generation the in-memory index reflects
        self._lock = threading.RLock()
        self._dirty = False
        self._last_save = time.monotonic()
        self._last_save_cost = 0.0  # seconds the last index save took

    # -- index -------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.engine.model_id

    @property
    def remote(self) -> bool:
        """True when the vectors live in a shared backend (Milvus), not in this process."""
        return self.vectors_url is not None

    @property
    def index(self) -> VectorIndex:
        """The vector index, current with the store: loaded or rebuilt on first use, and
        rebuilt whenever another process (or connection) has changed the templates.  With a
        shared backend: its collection, reconciled with the store on first use when the
        template counts differ."""
        if self.remote:
            index = self._index
            if index is None:
                with self._lock:
                    if self._index is None:
                        remote = self._open_vectors()
                        self._reconcile_if_counts_differ(remote)
                        self._index = remote  # type: ignore[assignment]
                    index = self._index
            return index  # type: ignore[return-value]
        with self._lock:
            if self._index is None:
                self._index = self._load_or_rebuild()
            elif self.store.generation != self._index_generation:
                self.rebuild_index()
            assert self._index is not None
            return self._index

    def _load_or_rebuild(self) -> VectorIndex:
        generation = self.store.generation
        header = read_header(self.index_path) if self.index_path is not None else None
        wanted_kind = self.index_kind == "auto" or header is None or header.get("kind") == self.index_kind
        sealed_as_store = header is not None and bool(header.get("encrypted", False)) == self.store.encrypted
        if (
            header
            and wanted_kind
            and sealed_as_store
            and header.get("generation") == f"{generation}:{self.model_id}"
            and header.get("quantize", False) == self.quantize
        ):
            try:
                index = index_for(self.index_path, int(header["dim"]), cipher=self.store.cipher)
                self._index_generation = generation
                return index
            except FaceprintError:
                pass  # corrupt: rebuild from the store below
        return self.rebuild_index()

    def reindex(self, *, full: bool = False) -> dict[str, Any]:
        """Bring the vectors back to the store's templates: a local index is rebuilt; a shared
        backend is reconciled (missing templates added, phantoms removed), or with ``full``
        dropped and refilled.  Returns what was done."""
        if not self.remote:
            index = self.rebuild_index()
            return {"backend": index.kind, "store": len(index), "rebuilt": True}
        with self._lock:
            if self._index is None:  # no reconcile on opening: it is the one below
                self._index = self._open_vectors()  # type: ignore[assignment]
            remote: MilvusVectors = self._index  # type: ignore[assignment]
            if full:
                remote.drop()
            stats = remote.reconcile(self.store)
        return {"backend": "milvus", "collection": remote.collection, **stats, "full": full}

    def heal(self) -> dict[str, Any] | None:
        """With a shared vector backend: when its count differs from the store's, reconcile
        (a write another process made without it, or one a crash cut short).  The server calls
        this periodically; returns what was done, or None when nothing was needed."""
        if not self.remote or self._index is None:
            return None
        return self._reconcile_if_counts_differ(self._index)  # type: ignore[arg-type]

    def _open_vectors(self) -> MilvusVectors:
        return MilvusVectors(self.vectors_url, self.model_id, self.engine.embedder.dim)  # type: ignore[arg-type]

    def _reconcile_if_counts_differ(self, remote: MilvusVectors) -> dict[str, Any] | None:
        if remote.count(fresh=True) == self.store.template_count(self.model_id):
            return None
        stats = remote.reconcile(self.store)
        if stats["added"] or stats["removed"]:
            logger.warning("vectors at %s differed from the store; reconciled: %s", remote.url, stats)
        return stats

    def rebuild_index(self) -> VectorIndex:
        """Build the index from the store's templates of this model and save it."""
        if self.remote:
            self.reindex()
            return self.index
        with self._lock:
            generation = self.store.generation
            ids, _, vecs = self.store.vectors(self.model_id)
            dim = vecs.shape[1] if len(vecs) else self.engine.embedder.dim
            index = make_index(dim, len(ids), kind=self.index_kind, quantize=self.quantize, exact_limit=EXACT_LIMIT)
            if len(ids):
                index.add(ids, vecs)
            self._index = index
            self._index_generation = generation
            self._save(force=True)
            return index

    def _applied(self, generations: tuple[str, str]) -> None:
        """Record that a write of ours (store generation before -> after) is in the index.
        If someone else wrote in between, rebuild: the index must not claim their change."""
        before, after = generations
        if before == self._index_generation:
            self._index_generation = after
            self._dirty = True
            self._save()
        else:
            self.rebuild_index()

    def _save(self, force: bool = False) -> None:
        if self._index is None or self.remote:
            return
        if self.index_path is None:  # in memory only (a store on PostgreSQL without a vector backend)
            self._dirty = False
            return
        # Saving a large index costs seconds (a 1M-template index is ~0.5 GB), so saves are spaced
        # to take at most ~10% of the time: the store stays the source of truth, and an index
        # that missed its last save is rebuilt from it on the next open (generation check).
        interval = max(self.save_interval, 10 * self._last_save_cost)
        if force or (self._dirty and time.monotonic() - self._last_save >= interval):
            t0 = time.monotonic()
            self._index.save(self.index_path, generation=f"{self._index_generation}:{self.model_id}", cipher=self.store.cipher)
            self._dirty = False
            self._last_save = time.monotonic()
            self._last_save_cost = self._last_save - t0

    def flush(self) -> None:
        """Write the index to disk now if it changed since the last save."""
        with self._lock:
            if self._dirty:
                self._save(force=True)

    def close(self) -> None:
        self.flush()
        if self.remote and self._index is not None:
            self._index.close()  # type: ignore[attr-defined]
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- enrolment ---------------------------------------------------------------
    def enroll(
        self,
        name: str,
        sources: Sequence[Any],
        *,
        face: str | int = "single",
        metadata: dict[str, Any] | None = None,
        create: bool = True,
        actor: str = "local",
        keep_images: bool = False,
        check_quality: bool = True,
        check_liveness: bool | None = None,
    ) -> EnrollResult:
        """Add one template per photo to subject ``name`` (created if needed).

        ``face="single"`` rejects photos with several faces (choose one by index, or
        ``"largest"``).  Photos that fail are listed in ``rejected``; if none succeeds
        nothing is written and the first error is raised.  ``keep_images`` stores the
        photo files in the database so ``reembed`` can remake templates for a new model
        (off by default: only templates are stored).  ``check_quality`` refuses faces that
        fail the quality gate (:mod:`faceprint.quality.gate`; the reasons are in ``rejected``);
        ``check_liveness`` (default: the ``require_liveness_enrol`` setting) refuses faces the
        presentation-attack check finds to be a print or a screen (the evidence in ``rejected``)."""
        live = self.engine.settings.require_liveness_enrol if check_liveness is None else check_liveness
        if not sources:
            raise InputError("enrolment needs at least one photo")
        new, accepted, rejected = [], [], []
        for src in sources:  # one photo at a time: its decoded pixels are dropped before the next is read
            template = enrolment_template(self.engine, src, face=face, check_quality=check_quality, check_liveness=live)
            if isinstance(template, FaceprintError):  # FaceRejected (quality, liveness) included
                rejected.append((_label(src), template))
                continue
            new.append(template)
            accepted.append((template.image_sha256, _file_bytes(src) if keep_images else None))
        if not new:
            raise rejected[0][1]
        kept = {sha: data for sha, data in accepted if data is not None}
        subject, ids = self._add(name, new, create=create, metadata=metadata, actor=actor, images=kept)
        return EnrollResult(subject, ids, rejected)

    def enroll_folder(
        self,
        root: str | Path,
        *,
        face: str | int = "largest",
        check_quality: bool = True,
        ray: str | None = None,
        actor: str = "local",
        progress: Any = None,
    ) -> dict[str, Any]:
        """Bulk enrolment of an identity-folder tree (``root/<name>/<photos>``): one subject per
        folder, one template per photo, written one subject per transaction as soon as its photos
        are analysed.  A photo already enrolled for its subject with this model (same file
        content) is skipped, so an interrupted run resumes.  ``ray``: analyse on a Ray cluster
        (an address, or ``local``; :mod:`faceprint.batch`).  Returns a summary."""
        import time

        from faceprint.media import is_image

        t0 = time.perf_counter()
        rootp = Path(root).expanduser()
        if not rootp.is_dir():
            raise InputError("not a folder", source=str(root))
        todo: list[tuple[str, str]] = []  # (subject, path)
        skipped = 0
        for folder in sorted(p for p in rootp.iterdir() if p.is_dir() and not p.name.startswith(".")):
            photos = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and is_image(p))
            if not photos:
                continue
            try:
                sid = self.store.subject(folder.name).id
                known = {t.image_sha256 for t in self.store.templates(subject_id=sid, model_id=self.model_id)}
            except InputError:
                known = set()
            for p in photos:
                if known and _file_sha256(p) in known:
                    skipped += 1
                else:
                    todo.append((folder.name, str(p)))
        remaining: dict[str, int] = {}
        for name, _ in todo:
            remaining[name] = remaining.get(name, 0) + 1
        pending: dict[str, list[NewTemplate]] = {}
        rejected: list[dict[str, str]] = []
        written = {"subjects": 0, "templates": 0}

        def take(k: int, res: Any) -> None:
            name, path = todo[k]
            if isinstance(res, FaceprintError):
                rejected.append({"path": path, "code": res.code, "message": str(res)})
            else:
                pending.setdefault(name, []).append(res)
            remaining[name] -= 1
            if remaining[name] == 0:  # the subject's last photo: one transaction for all of them
                new = pending.pop(name, [])
                if new:
                    try:
                        self._add(name, new, create=True, actor=actor)
                    except InputError as exc:  # a folder name that is no valid subject name: say so, go on
                        rejected.append({"path": str(rootp / name), "code": exc.code, "message": str(exc)})
                        return
                    written["subjects"] += 1
                    written["templates"] += len(new)
            if progress:
                progress(1)

        kw = {"face": face, "check_quality": check_quality, "check_liveness": False}
        if ray is None:
            for k, (_, path) in enumerate(todo):
                take(k, enrolment_template(self.engine, path, **kw))
        elif todo:
            from functools import partial

            from faceprint.batch import ray_map, ray_session

            with ray_session(ray):
                for k, res in ray_map(partial(enrolment_template, **kw), [p for _, p in todo], settings=self.engine.settings):
                    take(k, res)
        seconds = time.perf_counter() - t0
        return {
            "root": str(rootp),
            "photos": len(todo) + skipped,
            "analysed": len(todo),
            "already_enrolled": skipped,
            "subjects_written": written["subjects"],
            "templates_added": written["templates"],
            "rejected": rejected,
            "seconds": round(seconds, 2),
            "photos_per_s": round(len(todo) / seconds, 2) if seconds else None,
            "ray": ray,
        }

    def add_templates(
        self, name: str, templates: Sequence[Template], *, create: bool = True, metadata: dict[str, Any] | None = None, actor: str = "local"
    ) -> EnrollResult:
        """Enrol already computed templates (of this gallery's model)."""
        for t in templates:
            if t.model_id != self.model_id:
                raise InputError(f"template of model {t.model_id!r} cannot join a gallery of {self.model_id!r}", source=t.source or None)
        new = [
            NewTemplate(
                vector=t.vector,
                model_id=t.model_id,
                face_score=t.detection.score if t.detection else None,
                source=t.source or None,
                box=[round(float(x), 1) for x in t.detection.box] if t.detection else None,
            )
            for t in templates
        ]
        subject, ids = self._add(name, new, create=create, metadata=metadata, actor=actor)
        return EnrollResult(subject, ids)

    def _add(self, name: str, new: list[NewTemplate], **kw: Any) -> tuple[Subject, list[int]]:
        """Commit templates to the store, then put them in the index (a shared backend takes
        them inside the store's transaction: a failure there commits nothing)."""
        if self.remote:
            index = self.index
            vecs = np.stack([t.vector for t in new]).astype(np.float32)
            subject, ids, _ = self.store.add_templates(name, new, sync=lambda ids: index.add(np.array(ids, np.int64), vecs), **kw)
            return subject, ids
        with self._lock:
            index = self.index
            subject, ids, generations = self.store.add_templates(name, new, **kw)
            index.add(np.array(ids, np.int64), np.stack([t.vector for t in new]).astype(np.float32))
            if self.index_kind == "auto" and index.kind == "exact" and len(index) > EXACT_LIMIT:
                self.rebuild_index()  # grown past exact search: switch to the PQ scan
            else:
                self._applied(generations)
        return subject, ids

    # -- search --------------------------------------------------------------------
    def _probe(self, source: Any, face: str | int, *, liveness: bool = False) -> Template:
        if isinstance(source, Template):
            if source.model_id != self.model_id:
                raise InputError(f"probe template is of model {source.model_id!r}; this gallery searches {self.model_id!r}")
            return source
        return self.engine.embed(source, face=face, liveness=liveness)

    def threshold_for_fpir(self, fpir: float) -> tuple[float, str]:
        """Open-set threshold for a stated FPIR at the current gallery size, and a note
        when the calibration cannot state so small a per-comparison FMR."""
        n = max(1, len(self.index))
        fmr = fmr_for_fpir(fpir, n)
        table = self.engine.calibration
        if fmr < table.min_fmr:
            bound = -np.expm1(n * np.log1p(-table.min_fmr))
            return table.threshold_for(table.min_fmr), (
                f"FPIR {fpir:g} over {n:,} templates needs a per-comparison FMR of {fmr:.2g}, below what calibration "
                f"{table.name!r} can state ({table.min_fmr:.2g}); its strictest threshold is used (FPIR up to {bound:.2g})"
            )
        return table.threshold_for(fmr), ""

    def identify(self, source: Any, *, k: int = 5, fpir: float = 1e-3, face: str | int = "largest") -> Identification:
        """Top-k subjects for the face in ``source`` and the open-set decision at ``fpir``."""
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        probe = self._probe(source, face)
        result = self.identify_vectors(probe.vector[None, :], k=k, fpir=fpir, probes=[probe])[0]
        if probe.quality is not None:  # kept, but flagged: a poor probe explains a miss
            result = dataclasses.replace(result, low_quality=is_low_quality(probe.quality, self.engine.settings))
        return result

    def identify_vectors(self, vectors: np.ndarray, *, k: int = 5, fpir: float = 1e-3, probes: Sequence[Template] | None = None) -> list[Identification]:
        """Batch identification of unit vectors of this gallery's model."""
        with nullcontext() if self.remote else self._lock:
            index = self.index
            n = len(index)
            if n == 0 and self.remote:  # a shared backend's count may be a second old: another replica may just have enrolled
                n = index.count(fresh=True)  # type: ignore[attr-defined]
            threshold, note = self.threshold_for_fpir(fpir)
            if n == 0:
                return [
                    Identification([], None, threshold, fpir, 0, self.model_id, "the gallery has no templates of this model", p)
                    for p in (probes or [None] * len(vectors))
                ]
            # ask for more templates than k: several may belong to one subject
            want = max(4 * k, k + 16)
            tids, scores = index.search(np.asarray(vectors, np.float32), want if self.remote else min(n, want))
            # template -> (subject, name) in one statement: with replicas, a subject another process
            # deletes between two lookups would otherwise be half-found (a KeyError, a 500)
            owner = self.store.owners_of(sorted({int(t) for t in tids.ravel() if t >= 0}))
        out = []
        for row in range(len(vectors)):
            best: dict[int, Candidate] = {}
            for tid, score in zip(tids[row], scores[row]):
                found = owner.get(int(tid))
                if tid < 0 or found is None or found[0] in best:
                    continue  # padding, or deleted meanwhile, or a weaker template of a subject already listed
                best[found[0]] = Candidate(found[0], found[1], float(score), int(tid))
            cands = sorted(best.values(), key=lambda c: -c.score)[:k]
            match = cands[0] if cands and cands[0].score >= threshold else None
            out.append(Identification(cands, match, threshold, fpir, n, self.model_id, note, probes[row] if probes else None))
        return out

    def verify(self, source: Any, name: str, *, fmr: float | None = None, face: str | int = "largest", require_liveness: bool | None = None) -> Decision:
        """1:1 against an enrolled subject: the best score over the subject's templates.
        ``require_liveness`` (default: the ``require_liveness_verify`` setting) refuses a probe
        photo whose face looks like a presentation attack."""
        subject = self.store.subject(name)
        templates = self.store.templates(subject_id=subject.id, model_id=self.model_id)
        if not templates:
            other = ", ".join(subject.models) or "none"
            raise InputError(f"subject {name!r} has no templates of model {self.model_id!r} (has: {other}); enrol new photos")
        live = self.engine.settings.require_liveness_verify if require_liveness is None else require_liveness
        probe = self._probe(source, face, liveness=live)
        if live:
            self.engine.enforce_liveness(probe.liveness, probe.source)
        score = float(max(probe.vector @ t.vector for t in templates))
        return self.engine.decide(score, fmr=fmr)

    def consistency(self, source: Any, name: str, *, face: str | int = "largest", z_threshold: float = -3.0) -> IdentityConsistency:
        """Identity-aware check: how consistent is the face in ``source`` with subject ``name``'s
        enrolled references?  An :class:`~faceprint.gallery.consistency.IdentityConsistency`
        (``outlier`` when the face agrees with them far less than they agree with each other:
        another person, or a face generated to resemble them).  Needs two or more templates."""
        subject = self.store.subject(name)
        templates = self.store.templates(subject_id=subject.id, model_id=self.model_id)
        if len(templates) < 2:
            raise InputError(f"subject {name!r} has {len(templates)} template(s) of model {self.model_id!r}; the consistency check needs at least 2")
        probe = self._probe(source, face)
        return identity_consistency(probe.vector, np.stack([t.vector for t in templates]), z_threshold=z_threshold)

    # -- subjects --------------------------------------------------------------------
    def subjects(self, **kw: Any) -> list[Subject]:
        return self.store.subjects(**kw)

    def subject(self, name: str) -> Subject:
        return self.store.subject(name)

    def rename(self, old: str, new: str, *, actor: str = "local") -> Subject:
        return self.store.rename_subject(old, new, actor=actor)

    def delete(self, name: str, *, actor: str = "local") -> int:
        """Erase a subject (see :meth:`erase`); returns how many templates it had."""
        return self.erase(name, actor=actor)["templates"]

    def erase(self, name: str, *, actor: str = "local") -> dict[str, Any]:
        """Erase a subject from every file: its rows, templates and kept photos leave the
        database (zeroed by ``secure_delete``), the audit log forgets its name, file names
        and photo hashes, the write-ahead log is truncated, and the index is saved at once
        without its vectors.  Returns what was erased: ``subject_id``, ``templates``,
        ``kept_photos``, ``audit_entries_redacted``, ``wal_truncated``, ``index_saved``.
        With a shared vector backend the vectors are deleted inside the store's transaction
        (a failure there erases nothing) and the collection is compacted."""
        if self.remote:
            index = self.index
            sid, tids, _, erased = self.store.delete_subject(name, actor=actor, sync=lambda t: index.remove(np.array(t, np.int64)))
            try:
                index.compact()  # type: ignore[attr-defined]
                compacted = True
            except FaceprintError as exc:  # the vectors are deleted already; compaction is only their physical removal
                logger.warning("compaction after erasing subject %s was not started: %s", sid, exc)
                compacted = False
            return {"subject_id": sid, **erased, "vectors_deleted": True, "vectors_compacted": compacted}
        with self._lock:
            index = self.index
            sid, tids, generations, erased = self.store.delete_subject(name, actor=actor)
            index.remove(np.array(tids, np.int64))
            self._applied(generations)
            self.flush()  # the saved index must not keep the vectors until the next periodic flush
        return {"subject_id": sid, **erased, "index_saved": True}

    def stale_subjects(self) -> list[Subject]:
        """Subjects with no template of the current model (need new photos or re-embedding)."""
        return [s for s in self.store.subjects() if self.model_id not in s.models]

    def reembed(self, *, actor: str = "local") -> dict[str, list[str]]:
        """Make templates of the current model for every stale subject from its kept photos
        (enrolled with ``keep_images``); the rest are listed as needing new photos."""
        done: list[str] = []
        need: list[str] = []
        for subject in self.stale_subjects():
            crops, new = [], []
            for old in self.store.templates(subject_id=subject.id):
                data = self.store.image(old.image_sha256) if old.image_sha256 else None
                if data is None:
                    continue
                image = self.engine.load(data)
                dets = self.engine.detector.detect(image)
                if not dets:
                    continue
                det = max(dets, key=lambda d: _overlap(d.box, old.box)) if old.box else max(dets, key=lambda d: d.area)
                crops.append(self.engine.embedder.crop(image, det))
                new.append(
                    NewTemplate(
                        vector=np.zeros(0),
                        model_id=self.model_id,
                        face_score=det.score,
                        image_sha256=old.image_sha256,
                        source=old.source,
                        box=[round(float(x), 1) for x in det.box],
                    )
                )
            if not crops:
                need.append(subject.name)
                continue
            for t, v in zip(new, self.engine.embed_crops(crops)):
                t.vector = v
            self._add(subject.name, new, create=False, actor=actor)
            done.append(subject.name)
        return {"reembedded": done, "need_new_photos": need}


def enrolment_template(engine: Engine, src: Any, *, face: str | int = "single", check_quality: bool = True, check_liveness: bool = False) -> Any:
    """The template one photo enrols (a :class:`NewTemplate`), or the :class:`FaceprintError`
    that refused it (no face, several, quality, liveness): returned, not raised, so a batch
    goes on (:meth:`Gallery.enroll`, and ``enroll-folder`` on Ray actors: its signature is
    :func:`faceprint.batch.ray_map`'s ``fn(engine, item)``)."""
    image = crop = None
    try:
        image = engine.load(src)
        det = select_face(engine.detector.detect(image), image, face)
        crop = engine.embedder.crop(image, det)
        v = engine.embed_crops([crop])[0]
        q = engine.assess(image, det, crop, v)
        if check_quality:
            enforce_quality(q, engine.settings, source=image.source)
        if check_liveness:
            engine.enforce_liveness(engine.liveness_of(image, det), image.source)
        return NewTemplate(
            vector=v,
            model_id=engine.model_id,
            quality=float(q.unified),
            face_score=det.score,
            image_sha256=_sha256(src, image),
            source=image.source,
            box=[round(float(x), 1) for x in det.box],
        )
    except FaceprintError as exc:
        return exc.with_traceback(None)  # its traceback's frames would keep the pixels alive
    finally:
        image = crop = None  # free the pixels now, not at the end of the request


def _label(src: Any) -> str:
    if isinstance(src, (str, os.PathLike)):
        return str(src)
    if isinstance(src, Image):
        return src.source
    return getattr(src, "name", None) or "<upload>"


def _overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / max(a[2] * a[3] + b[2] * b[3] - inter, 1e-9)


def _file_bytes(src: Any) -> bytes | None:
    """The original file's bytes for a path or bytes input (what --keep-images stores)."""
    if isinstance(src, (str, os.PathLike)):
        return Path(src).read_bytes()
    if isinstance(src, (bytes, bytearray, memoryview)):
        return bytes(src)
    return None


def _file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes ("" when it cannot be read: it is analysed, and refused there)."""
    try:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return ""


def _sha256(src: Any, image: Image) -> str:
    """SHA-256 of the file bytes when the input is a file or bytes, else of the pixels."""
    if isinstance(src, (str, os.PathLike)):
        digest = _file_sha256(Path(src))
        if digest:
            return digest
    elif isinstance(src, (bytes, bytearray, memoryview)):
        return hashlib.sha256(src).hexdigest()
    return hashlib.sha256(np.ascontiguousarray(image.pixels).tobytes()).hexdigest()


__all__ = ["Candidate", "EnrollResult", "Gallery", "Identification", "default_db_path", "fmr_for_fpir"]
