"""The photo library: index folders, group faces into people, take the user's corrections."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.engine import Engine
from faceprint.library.cluster import ClusterInput, ClusterParams, ClusterResult, cluster_faces
from faceprint.library.indexer import IndexSummary, index_folder
from faceprint.library.store import default_library_path, open_library_store

__all__ = ["Library"]


class Library:
    """One library file (``library.db``) and the engine that analyses photos for it."""

    def __init__(self, path: str | Path | None = None, engine: Engine | None = None, *, params: ClusterParams | None = None) -> None:
        self.store = open_library_store(path or default_library_path())
        self.path: Path | str = self.store.path  # a file, or a PostgreSQL URL without its password
        self._engine = engine
        self._params = params
        self._lock = threading.RLock()
        self._queue: tuple[Any, int, list[Any]] | None = None  # (change key, limit, suggestions)
        self._refreshing = threading.Lock()  # held while a background recount of the queue runs (open_questions)

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine()
        return self._engine

    @property
    def params(self) -> ClusterParams:
        """Clustering parameters: given, or from the engine's settings (FACEPRINT_CLUSTER_*)."""
        if self._params is None:
            st = self.engine.settings
            self._params = ClusterParams(
                link_fmr=st.cluster_link_fmr, attach_fmr=st.cluster_attach_fmr, min_quality=st.cluster_min_quality, min_faces=st.cluster_min_faces
            )
        return self._params

    @property
    def model_id(self) -> str:
        return self.engine.model_id

    # -- indexing ------------------------------------------------------------------
    def index(
        self,
        root: str | Path,
        *,
        workers: int | None = None,
        thumbnails: bool | None = None,
        in_process: bool = False,
        progress: Callable[[str, int, int], None] | None = None,
        cluster: bool = True,
        ray: str | None = None,
        ray_batch: int | None = None,
        xmp: bool = True,
    ) -> tuple[IndexSummary, ClusterResult | None]:
        """Index a folder (see :mod:`faceprint.library.indexer`), then place new faces into people.
        ``thumbnails``: keep face thumbnails (default: the ``library_thumbnails`` setting);
        ``ray``: analyse on a Ray cluster (an address, or ``local``; see :mod:`faceprint.batch`);
        ``xmp``: read the face regions of the photos analysed in this run from their sidecars
        and embedded XMP (:mod:`faceprint.library.regions`), before the clustering."""
        from faceprint.sqlite import now

        if thumbnails is None:
            thumbnails = self.engine.settings.library_thumbnails
        with self._lock:
            started = now()
            summary = index_folder(
                self.store,
                root,
                model_id=self.model_id,
                settings=self.engine.settings,
                workers=workers,
                thumbnails=thumbnails,
                engine=self.engine if in_process else None,
                progress=progress,
                ray=ray,
                ray_batch=ray_batch,
            )
            self.backfill_taken()
            if xmp:
                fresh = [r["id"] for r in self.store.read("SELECT id FROM photos WHERE indexed >= ? AND status='ok' AND kind='image'", (started,))]
                if fresh:
                    summary.xmp = self.import_xmp(photo_ids=fresh).to_dict()
            switched = self.reembed(progress=progress, workers=workers, in_process=in_process)
            summary.reembedded = switched["reembedded"]
            summary.stale = switched["stale"]
            summary.reembed_seconds = switched["seconds"] if switched["reembedded"] or switched["stale"] else 0.0
            # a new embedder: every face the user has not placed is grouped again, with every
            # name, merge, split, hide and "not this person" as constraints
            result = self.cluster(recluster=switched["reembedded"] > 0) if cluster else None
            return summary, result

    def export_xmp(
        self, *, person_ids: list[int] | None = None, embed: bool = False, style: str | None = None, dry_run: bool = False
    ) -> tuple[list[Any], list[Any]]:
        """Named faces out to XMP (:func:`faceprint.library.regions.export_xmp`); ``style``: the
        sidecar name (default: the ``xmp_sidecar`` setting)."""
        from faceprint.errors import InputError
        from faceprint.library.regions import export_xmp
        from faceprint.library.xmp import SIDECAR_STYLES

        style = style or self.engine.settings.xmp_sidecar
        if style not in SIDECAR_STYLES:
            raise InputError(f"the sidecar style must be one of {', '.join(SIDECAR_STYLES)} (setting xmp_sidecar / --sidecar), got {style!r}")
        return export_xmp(self.store, person_ids=person_ids, embed=embed, style=style, dry_run=dry_run)

    def import_xmp(self, *, root: str | Path | None = None, photo_ids: list[int] | None = None, dry_run: bool = False) -> Any:
        """Face regions in from XMP (:func:`faceprint.library.regions.import_xmp`)."""
        from faceprint.library.regions import import_xmp

        with self._lock:
            return import_xmp(
                self.store,
                self.engine,
                root=str(root) if root is not None else None,
                photo_ids=photo_ids,
                thumbnails=self.engine.settings.library_thumbnails,
                dry_run=dry_run,
            )

    def backfill_taken(self) -> int:
        """Read the date taken of photos indexed before faceprint kept it (once each)."""
        from faceprint.library.indexer import taken_date

        rows = self.store.read("SELECT id, path FROM photos WHERE taken IS NULL AND status='ok' AND kind='image'")
        if rows:
            self.store.set_taken([(r["id"], taken_date(r["path"])) for r in rows])
        return len(rows)

    def reembed(self, *, progress: Callable[[str, int, int], None] | None = None, workers: int | None = None, in_process: bool = False) -> dict[str, Any]:
        """Give faces made by another embedder this engine's templates, from their photos and
        their kept boxes and landmarks (a drawn box or an imported region as well): every face
        keeps its id, person, decision and rejections, so names survive a model change.  Faces
        whose photo is gone or changed keep their old template (``stale``) until it is back.
        Worker processes as in indexing (``workers``; ``in_process``: this engine)."""
        import time

        from faceprint.library.indexer import reembed_photos

        t0 = time.perf_counter()
        rows = self.store.read(
            "SELECT f.id, f.photo_id, f.box, f.landmarks, f.det_score, f.frame, p.path, p.root, p.size, p.mtime, p.kind "
            "FROM faces f JOIN photos p ON p.id = f.photo_id WHERE f.model_id<>? ORDER BY f.photo_id, f.id",
            (self.model_id,),
        )
        by_photo: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            by_photo.setdefault(r["photo_id"], []).append({k: r[k] for k in r.keys()})
        done = stale = 0
        photos = list(by_photo.values())
        work = reembed_photos(photos, engine=self.engine if in_process else None, settings=self.engine.settings, workers=workers)
        for k, (faces, vectors) in enumerate(work):
            if vectors is None:
                stale += len(faces)
            else:
                self.store.replace_vectors(vectors, self.model_id)  # one photo per transaction: an interrupted switch resumes
                done += len(vectors)
            if progress:
                progress("re-embed", k + 1, len(photos))
        return {"reembedded": done, "stale": stale, "seconds": round(time.perf_counter() - t0, 2)}

    def add_face(self, photo_id: int, box: Any, *, person_id: int | None = None, name: str | None = None, origin: str = "manual") -> dict[str, Any]:
        """A face the detector missed: the user drew ``box`` (x, y, w, h in the displayed
        photo's pixels) and says who it is (a person, a name -- an existing person's or a new
        one -- or nobody yet)."""
        from faceprint.errors import InputError
        from faceprint.library.indexer import box_iou, face_from_box
        from faceprint.library.store import PhotoNotFound

        with self._lock:
            rows = self.store.read("SELECT path, status, kind FROM photos WHERE id=?", (photo_id,))
            if not rows or rows[0]["status"] != "ok" or rows[0]["kind"] != "image":
                raise PhotoNotFound(f"no indexed still photo with id {photo_id}")
            for f in self.store.photo(photo_id)["faces"]:
                if f["frame"] is None and box_iou(f["box"], box) >= 0.5:
                    raise InputError(f"that face is already there (face {f['id']}): name it on its person's page instead of drawing it again")
            image = self.engine.load(rows[0]["path"])
            face, how = face_from_box(self.engine, image, box, origin=origin, thumbnails=self.engine.settings.library_thumbnails)
            if name and person_id is None:
                person_id = self.store.person_for_name(name)
            face_id = self.store.add_face(photo_id, face, model_id=self.model_id, person_id=person_id)
            return {"face_id": face_id, "photo_id": photo_id, "person_id": person_id, "box": face.box, "located_by": how}

    # -- clustering ----------------------------------------------------------------
    def cluster_input(self) -> tuple[ClusterInput, list[Any]]:
        faces = self.store.faces(model_id=self.model_id, with_vectors=True)
        n = len(faces)
        dim = faces[0].vector.shape[0] if n else 0
        vecs = np.stack([f.vector for f in faces]).astype(np.float32) if n else np.zeros((0, dim), np.float32)
        # two faces of one photo (or of one video frame) are two people
        groups: dict[tuple[int, Any], int] = {}
        group_ids = np.array([groups.setdefault((f.photo_id, f.frame), len(groups)) for f in faces], np.int64)
        named = {r["id"] for r in self.store.read("SELECT id FROM people WHERE name IS NOT NULL")}
        confirmed = named | {f.person_id for f in faces if f.assigned == "user" and f.person_id is not None}
        inp = ClusterInput(
            face_ids=np.array([f.id for f in faces], np.int64),
            vectors=vecs,
            photo_ids=group_ids,
            quality=np.array([f.quality for f in faces], np.float64),
            person=np.array([f.person_id if f.person_id is not None else -1 for f in faces], np.int64),
            locked=np.array([f.assigned == "user" for f in faces], bool),
            confirmed_people=confirmed,
            apart=self.store.apart(),
            rejections=self.store.rejections(),
        )
        return inp, faces

    def cluster(self, *, recluster: bool = False) -> ClusterResult:
        """Place faces that belong to nobody (all unplaced faces with ``recluster``) into people."""
        with self._lock:
            inp, faces = self.cluster_input()
            result = cluster_faces(inp, self.engine.calibration, self.params, recluster=recluster)
            assignments: dict[int, int | None] = {}
            for f, p in zip(faces, result.person.tolist()):
                if f.assigned == "user":
                    continue
                new = None if p == 0 else int(p)
                if new != f.person_id:  # (a new person's placeholder is negative: always a change)
                    assignments[f.id] = new
            self.store.save_clustering(assignments, result.new_people)
            from faceprint.library.suggest import apply_confident

            apply_confident(self.store, **self._suggest_inputs())  # unnamed groups that are a named person's beyond doubt join them
            return result

    def _suggest_inputs(self) -> dict[str, Any]:
        """What :mod:`faceprint.library.suggest` reads besides the store: the model id whose faces
        it compares, the clustering parameters and the calibration table."""
        return {"model_id": self.model_id, "params": self.params, "calibration": self.engine.calibration}

    # -- the user's word -------------------------------------------------------------
    def rename(self, person_id: int, name: str | None) -> None:
        with self._lock:
            self.store.rename_person(person_id, name)
            if name:
                from faceprint.library.suggest import apply_confident

                apply_confident(self.store, **self._suggest_inputs())

    def suggestions(self, *, limit: int = 50, include_skipped: bool = False) -> list[Any]:
        """The open questions (see :mod:`faceprint.library.suggest`), recomputed only when the
        library has changed since the last call (every page of the web UI shows their count)."""
        from faceprint.library.suggest import suggestions

        with self._lock:
            key = (self.store.change_key(), include_skipped)
            if self._queue is None or self._queue[0] != key or self._queue[1] < limit:
                full = suggestions(self.store, **self._suggest_inputs(), limit=max(limit, 100), include_skipped=include_skipped)
                self._queue = (key, max(limit, 100), full)
            return list(self._queue[2][:limit])

    def open_questions(self) -> int | None:
        """How many questions are open (at most 99), for a badge, never waiting: after a change
        the last count is given while the queue is recomputed in the background (None before
        the first count).  Every page shows it, so no page waits for the suggestions."""
        queue = self._queue
        if queue is not None and queue[0] == (self.store.change_key(), False):
            return min(99, len(queue[2]))
        if self._refreshing.acquire(blocking=False):  # one recount at a time; never waits for the library lock
            threading.Thread(target=self._refresh_queue, name="faceprint-suggestions", daemon=True).start()
        return min(99, len(queue[2])) if queue is not None else None

    def _refresh_queue(self) -> None:
        try:
            self.suggestions(limit=99)
        except Exception:  # a badge is not worth a crash: the suggestions page shows any error itself
            pass
        finally:
            self._refreshing.release()

    def answer(self, person_id: int, candidate: str, reply: str) -> None:
        from faceprint.library.suggest import answer

        with self._lock:
            answer(self.store, person_id, candidate, reply)

    def search(self, source: Any, *, k: int = 3) -> list[dict[str, Any]]:
        """Who is in this photo?  For each face: the people whose faces it is most similar to
        on average, with the score and whether it passes the clustering link threshold."""
        image = self.engine.load(source)
        templates = self.engine.embed_all(image)
        t_link = self.engine.calibration.threshold_for(self.params.link_fmr)
        groups: dict[int, list[np.ndarray]] = {}
        for f in self.store.faces(model_id=self.model_id, with_vectors=True):
            if f.person_id is not None:
                groups.setdefault(f.person_id, []).append(f.vector)
        pids = list(groups)
        names = {p["id"]: p["name"] for p in self.store.people()}
        centres = np.stack([np.mean(groups[p], axis=0) for p in pids]) if pids else np.zeros((0, 1), np.float32)
        out = []
        for t in templates:
            scores = centres @ t.vector if pids else np.zeros(0)
            order = np.argsort(-scores)[:k]
            out.append(
                {
                    "face": t.detection.to_dict() if t.detection else None,
                    "matches": [
                        {
                            "person_id": pids[i],
                            "name": names.get(pids[i]),
                            "score": round(float(scores[i]), 4),
                            "match": bool(scores[i] >= t_link),
                            "faces": len(groups[pids[i]]),
                        }
                        for i in order
                    ],
                }
            )
        return out

    # -- reading -------------------------------------------------------------------
    def people(self, *, with_faces: bool = True) -> list[dict[str, Any]]:
        """People, named first then by size, each with ``name`` (or None) and ``faces``
        (each with the ``path`` of its photo)."""
        people = self.store.people()
        if not with_faces:
            return people
        by_person: dict[int, list[dict[str, Any]]] = {}
        for f in self.store.faces():
            if f.person_id is not None:
                by_person.setdefault(f.person_id, []).append(f.to_dict())
        return [{**p, "faces": by_person.get(p["id"], [])} for p in people]

    def unknown_faces(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.store.faces() if f.person_id is None]
