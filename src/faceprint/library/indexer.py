"""Indexing a folder of photos: walk, skip what is known, detect and embed in worker processes.

What a run does, in order:

1. Walk the folder recursively (hidden files and folders skipped) for images
   (and videos, when PyAV is installed: frames sampled every
   ``video_interval`` seconds, at most ``video_frames`` of them), told apart
   by the suffixes of :mod:`faceprint.media`.
2. A file whose path, size and modification time match the library is skipped
   without being read.  Any other file is hashed (SHA-256 of its bytes): content
   the library already has under a path that no longer exists is a *move* (its
   faces and their people are kept); content it has under another existing path
   is a *duplicate* (recorded, not analysed twice); a changed file is analysed
   again.
3. New content goes to worker processes (``workers``, default: one per core),
   each with its own detector and embedder; the main process writes each
   result in its own transaction, so an interrupted run keeps everything
   finished and the next run resumes where it stopped.
4. Photos of the folder that are gone from disk leave the library, with their
   faces.

Errors (unreadable files, decompression bombs, ...) are recorded per photo
with their reason and reported in the summary; they never stop a run.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import FaceprintError, InputError
from faceprint.library.store import LibraryStore, NewFace
from faceprint.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, is_media, is_video  # the suffixes: also the indexer's names
from faceprint.settings import Settings

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "IndexSummary", "analyse_file", "index_folder", "scan_folder"]

THUMB_SIZE = 128
THUMB_BORDER = (224, 226, 230)  # the UI's neutral image background, where a face's square leaves the photo


@dataclass
class IndexSummary:
    root: str
    files: int = 0
    analysed: int = 0
    unchanged: int = 0
    moved: int = 0
    duplicates: int = 0
    removed: int = 0
    faces: int = 0
    low_quality_faces: int = 0  # kept, but marked (unified quality under the quality_mark_below setting)
    reembedded: int = 0  # faces given the current embedder's templates (a model change)
    stale: int = 0  # faces of another embedder whose photo is gone or changed: not re-embedded
    reembed_seconds: float = 0.0
    xmp: dict[str, Any] | None = None  # what importing the analysed photos' XMP face regions did
    errors: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # not regular files (FIFOs, devices, sockets): never opened
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "files": self.files,
            "analysed": self.analysed,
            "unchanged": self.unchanged,
            "moved": self.moved,
            "duplicates": self.duplicates,
            "removed": self.removed,
            "faces": self.faces,
            "low_quality_faces": self.low_quality_faces,
            "reembedded": self.reembedded,
            "stale": self.stale,
            "reembed_seconds": round(self.reembed_seconds, 2),
            "xmp": self.xmp,
            "errors": self.errors,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 2),
            "photos_per_s": round(self.analysed / self.seconds, 2) if self.seconds > 0 else None,
        }


def _video_support() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def scan_folder(root: Path, *, videos: bool | None = None) -> Iterator[Path]:
    """Image (and video) files under ``root``, sorted, hidden entries skipped; linked folders
    are followed, each real folder visited once (no loops)."""
    if videos is None:
        videos = _video_support()
    visited: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):  # linked folders too, each once
        real = os.path.realpath(dirpath)
        if real in visited:
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and is_media(name, videos=videos):
                yield Path(dirpath) / name


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return kind
    return "not a plain file"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- worker side ------------------------------------------------------------------------

_ENGINE: Any = None


def _init_worker(settings: dict[str, Any] | None) -> None:
    import cv2

    cv2.setNumThreads(1)  # one core per worker process
    global _ENGINE
    from faceprint.engine import Engine

    _ENGINE = Engine(Settings(**settings) if settings else Settings.load())


def _thumbnail(pixels: np.ndarray, box: tuple[float, float, float, float]) -> bytes:
    import cv2

    x, y, w, h = box
    side = max(w, h) * 1.4
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x1, y1 = int(round(cx + side / 2)), int(round(cy + side / 2))
    H, W = pixels.shape[:2]
    pad = max(0, -x0, -y0, x1 - W, y1 - H)
    # a face at the border is letterboxed in a neutral grey: repeating the edge pixels drew streaks
    img = cv2.copyMakeBorder(pixels, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=THUMB_BORDER) if pad else pixels
    crop = img[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
    crop = cv2.resize(crop, (THUMB_SIZE, THUMB_SIZE), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return bytes(buf) if ok else b""


def _faces_of(engine: Any, image: Any, thumbnails: bool, frame: float | None = None) -> list[NewFace]:
    return _new_faces(engine, image, engine.detector.detect(image), thumbnails, frame)


def _new_faces(engine: Any, image: Any, dets: list[Any], thumbnails: bool, frame: float | None = None, origin: str = "detected") -> list[NewFace]:
    """Templates, quality and thumbnails of these detections, as the library keeps them."""
    from faceprint.library.cluster_gate import face_quality
    from faceprint.quality.gate import is_low

    if not dets:
        return []
    crops = [engine.embedder.crop(image, d) for d in dets]
    vecs = engine.embedder.embed(crops)
    out = []
    for d, c, v in zip(dets, crops, vecs):
        q, detail = face_quality(d, c)
        fq = engine.assess(image, d, c, v)  # the unified score and components, kept for the UI and the API
        detail = {**detail, "unified": fq.unified, "low_quality": is_low(fq, engine.settings), "components": {k: x.score for k, x in fq.components.items()}}
        out.append(
            NewFace(
                box=[round(float(b), 1) for b in d.box],
                landmarks=[[round(float(a), 1), round(float(b), 1)] for a, b in d.landmarks],
                det_score=float(d.score),
                quality=q,
                quality_detail=detail,
                vector=np.asarray(v, np.float32),
                thumb=_thumbnail(image.pixels, d.box) if thumbnails else None,
                frame=frame,
                origin=origin,
            )
        )
    return out


# ArcFace's five points in its 112x112 crop, whose face box is about the whole square
_ARCFACE_POINTS = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], np.float32) / 112.0


def box_iou(a: Any, b: Any) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def detection_in_box(engine: Any, image: Any, box: Any, *, min_iou: float = 0.3) -> tuple[Any, str]:
    """The face inside a box a person drew (or an imported XMP region): the detector is run
    again on the box and its surroundings (a small crop is upscaled for it), and the detection
    overlapping the box best is taken; when it finds none, the five landmarks are placed
    from the box's geometry (where ArcFace's template puts them in a face-sized square).
    Returns the detection and how it was found (``detector`` / ``geometry``)."""
    from faceprint.imaging import from_array
    from faceprint.types import Detection

    x, y, w, h = (float(v) for v in box)
    H, W = image.height, image.width
    x0, y0 = max(0, int(x - w * 0.6)), max(0, int(y - h * 0.6))
    x1, y1 = min(W, int(x + w * 1.6 + 1)), min(H, int(y + h * 1.6 + 1))
    if w < 4 or h < 4 or x1 - x0 < 4 or y1 - y0 < 4 or x >= W or y >= H or x + w <= 0 or y + h <= 0:
        raise InputError(f"the box {[round(v, 1) for v in (x, y, w, h)]} is not a face-sized box inside the {W}x{H} photo")
    sub = from_array(image.pixels[y0:y1, x0:x1], source=image.source)
    best, best_iou = None, min_iou
    for d in engine.detector.detect(sub):
        bx, by, bw, bh = d.box
        moved = (bx + x0, by + y0, bw, bh)
        iou = box_iou(moved, (x, y, w, h))
        if iou > best_iou:
            best, best_iou = Detection(moved, d.landmarks + np.array([x0, y0], np.float32), float(d.score), d.detector), iou
    if best is not None:
        return best, "detector"
    side = np.array([w, h], np.float32)
    marks = _ARCFACE_POINTS * side + np.array([x, y], np.float32)
    return Detection((x, y, w, h), marks.astype(np.float32), 0.0, "manual"), "geometry"


def face_from_box(engine: Any, image: Any, box: Any, *, origin: str, thumbnails: bool = True) -> tuple[NewFace, str]:
    """A library face (template, quality, thumbnail) for a box drawn on a photo."""
    det, how = detection_in_box(engine, image, box)
    face = _new_faces(engine, image, [det], thumbnails, origin=origin)[0]
    face.quality_detail = {**face.quality_detail, "located_by": how}
    return face, how


def taken_date(path: str | os.PathLike[str]) -> str:
    """When the photo was taken, from EXIF (DateTimeOriginal, else CreateDate / DateTime) as
    ``YYYY-MM-DDTHH:MM:SS``; '' when the file says nothing (or nothing sensible)."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(path) as im:
            exif = im.getexif()
            sub = exif.get_ifd(0x8769)
            raw = sub.get(0x9003) or sub.get(0x9004) or exif.get(0x0132)
    except Exception:  # a photo without readable EXIF has no date: never a reason to fail
        return ""
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    if not isinstance(raw, str):
        return ""
    raw = raw.strip().rstrip("\x00")
    m = re.match(r"^(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})", raw)
    if not m or m.group(1) == "0000":
        return ""
    return f"{m.group(1)}-{m.group(2)}-{m.group(3)}T{m.group(4)}:{m.group(5)}:{m.group(6)}"


def _video_frames(path: Path, interval: float, max_frames: int, settings: Settings | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """A frame every ``interval`` seconds, at most ``max_frames``: the liveness path's reader, so
    a frame over the ``video_max_pixels`` setting is refused from the stream header before any
    frame is decoded, on one decoder thread (workers are processes already).  Home videos may
    be long and large: no duration or byte cap here, only the first frames are read."""
    from faceprint.liveness.motion import timed_frames
    from faceprint.liveness.video import VideoLimits

    limits = VideoLimits.from_settings(settings or Settings()).replace(max_seconds=float("inf"), max_bytes=2**62)
    return timed_frames(path, max_frames=max_frames, interval=interval, limits=limits)


def analyse_file(path: str, *, thumbnails: bool = True, video_interval: float = 2.0, video_frames: int = 20, engine: Any = None) -> dict[str, Any]:
    """Detect and embed every face of one file (in a worker process, or with ``engine``)."""
    engine = engine or _ENGINE
    p = Path(path)
    try:
        if is_video(p):
            from faceprint.imaging import from_array

            faces: list[NewFace] = []
            w = h = None
            for t, arr in _video_frames(p, video_interval, video_frames, engine.settings):
                image = from_array(arr, source=str(p))
                w, h = image.width, image.height
                faces.extend(_faces_of(engine, image, thumbnails, frame=round(t, 3)))
            return {"path": path, "status": "ok", "kind": "video", "width": w, "height": h, "faces": faces}
        image = engine.load(p)
        faces = _faces_of(engine, image, thumbnails)
        return {"path": path, "status": "ok", "kind": "image", "width": image.width, "height": image.height, "faces": faces, "taken": taken_date(p)}
    except FaceprintError as exc:
        return {"path": path, "status": "error", "kind": "video" if is_video(p) else "image", "error": f"{exc.code}: {exc}", "faces": []}
    except (OSError, ValueError, MemoryError) as exc:
        return {"path": path, "status": "error", "kind": "image", "error": f"unreadable: {type(exc).__name__}: {exc}", "faces": []}


def reembed_photo(engine: Any, faces: list[Any]) -> list[tuple[int, np.ndarray]] | None:
    """This engine's templates for faces of one photo (rows with ``id, box, landmarks,
    det_score, frame, path, root, size, mtime, kind``) from their kept boxes and landmarks;
    None when the photo is gone, changed since it was indexed, or unreadable."""
    import json

    from faceprint.imaging import from_array
    from faceprint.types import Detection

    first = faces[0]
    p = Path(first["path"])
    try:
        st = p.stat()
    except OSError:
        return None
    if st.st_size != first["size"] or abs(st.st_mtime - first["mtime"]) > 1e-6:
        return None
    try:
        if first["kind"] == "video":
            wanted = {round(float(f["frame"]), 3) for f in faces if f["frame"] is not None}
            frames = {}
            for t, arr in _video_frames(p, 2.0, 20, engine.settings):
                if round(t, 3) in wanted:
                    frames[round(t, 3)] = from_array(arr, source=str(p))
            images = {f["id"]: frames.get(round(float(f["frame"]), 3)) for f in faces if f["frame"] is not None}
        else:
            image = engine.load(p)
            images = {f["id"]: image for f in faces}
    except (FaceprintError, OSError, ValueError, MemoryError):
        return None
    todo = [(f, images.get(f["id"])) for f in faces]
    if any(img is None for _, img in todo):
        return None
    dets = [Detection(tuple(json.loads(f["box"])), np.array(json.loads(f["landmarks"]), np.float32), float(f["det_score"])) for f, _ in todo]
    crops = [engine.embedder.crop(img, d) for (_, img), d in zip(todo, dets)]
    vecs = engine.embedder.embed(crops)
    return [(int(f["id"]), np.asarray(v, np.float32)) for (f, _), v in zip(todo, vecs)]


def _reembed_in_worker(faces: list[dict[str, Any]]) -> list[tuple[int, np.ndarray]] | None:
    return reembed_photo(_ENGINE, faces)


def reembed_photos(
    photos: list[list[dict[str, Any]]], *, engine: Any = None, settings: Settings | None = None, workers: int | None = None
) -> Iterator[tuple[list[dict[str, Any]], list[tuple[int, np.ndarray]] | None]]:
    """(faces, their new templates or None) for each photo's faces (see :func:`reembed_photo`),
    in worker processes (``workers``, default one per core) like indexing, or with ``engine``
    in this process; in the order they finish."""
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    if engine is not None or n_workers <= 1 or len(photos) < 4:
        if engine is None:
            from faceprint.engine import Engine

            engine = Engine(settings or Settings.load())
        for faces in photos:
            yield faces, reembed_photo(engine, faces)
        return
    for faces, out, exc in in_workers(_reembed_in_worker, photos, settings=settings, workers=n_workers):
        yield faces, None if exc is not None else out  # a worker died: these faces keep their old templates this time


def in_workers(
    fn: Callable[[Any], Any], items: Sequence[Any], arg: Callable[[Any], Any] = lambda item: item, *, settings: Settings | None, workers: int
) -> Iterator[tuple[Any, Any, BaseException | None]]:
    """``fn(arg(item))`` for every item in spawned worker processes (safe beside threads:
    server, BLAS), each holding its own Engine (``_ENGINE``), through a bounded queue;
    ``(item, result, None)`` or ``(item, None, the exception)`` as each finishes, so the
    caller writes results as they come and one failure never stops the rest."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    settings_dict = (settings or Settings.load()).to_dict()
    with ProcessPoolExecutor(max_workers=min(workers, len(items)), mp_context=ctx, initializer=_init_worker, initargs=(settings_dict,)) as pool:
        pending: dict[Future[Any], Any] = {}
        it = iter(items)
        for item in it:
            pending[pool.submit(fn, arg(item))] = item
            if len(pending) >= 4 * workers:
                break
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                item = pending.pop(fut)
                try:
                    res, err = fut.result(), None
                except Exception as exc:
                    res, err = None, exc
                yield item, res, err
                nxt = next(it, None)
                if nxt is not None:
                    pending[pool.submit(fn, arg(nxt))] = nxt


def _analyse_on(engine: Any, path: str, **kw: Any) -> dict[str, Any]:
    """:func:`analyse_file` in the calling convention of :func:`faceprint.batch.ray_map`."""
    return analyse_file(path, engine=engine, **kw)


# -- main side --------------------------------------------------------------------------


def index_folder(
    store: LibraryStore,
    root: str | os.PathLike[str],
    *,
    model_id: str,
    settings: Settings | None = None,
    workers: int | None = None,
    thumbnails: bool = True,
    engine: Any = None,
    progress: Callable[[str, int, int], None] | None = None,
    video_interval: float = 2.0,
    video_frames: int = 20,
    ray: str | None = None,
    ray_batch: int | None = None,
) -> IndexSummary:
    """Bring the library up to date with the folder (see the module docstring).

    ``progress(stage, done, total)`` is called as files are checked and analysed.
    ``engine`` analyses in this process instead of workers (tests, tiny folders).
    ``ray``: analyse on the Ray cluster at this address (``local``: start one), as a Ray Data
    pipeline over actors holding the models (:mod:`faceprint.batch`); everything else -- the
    checks before, the writes after -- is the same code.
    """
    import time

    t0 = time.perf_counter()
    rootp = Path(root).expanduser()
    if not rootp.is_dir():
        raise InputError("not a folder", source=str(root))
    rootp = rootp.resolve()
    root_s = str(rootp)
    summary = IndexSummary(root=root_s)
    known = store.photos_under(root_s)
    files = list(scan_folder(rootp))
    summary.files = len(files)
    seen: set[str] = set()
    todo: list[tuple[str, str, int, float]] = []  # path, sha, size, mtime
    moved_from: set[str] = set()
    for i, f in enumerate(files):
        path = str(f)
        seen.add(path)
        try:
            st = f.stat()
        except OSError as exc:
            summary.errors.append({"path": path, "error": f"unreadable: {exc.strerror or exc}"})
            continue
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the read forever, a device never end
            summary.skipped.append({"path": path, "reason": f"not a regular file ({_file_kind(st.st_mode)}); skipped"})
            continue
        row = known.get(path)
        if row is not None and row["size"] == st.st_size and abs(row["mtime"] - st.st_mtime) < 1e-6:
            summary.unchanged += 1
            if row["status"] == "error":
                summary.errors.append({"path": path, "error": row["error"] or "error"})
            continue
        try:
            sha = _sha256(f)
        except OSError as exc:
            summary.errors.append({"path": path, "error": f"unreadable: {exc.strerror or exc}"})
            continue
        if row is not None and row["sha256"] == sha:
            store.touch_photo(row["id"], size=st.st_size, mtime=st.st_mtime)  # touched, not changed
            summary.unchanged += 1
            continue
        same = [r for r in store.photos_by_sha(sha) if r["path"] != path and r["status"] != "duplicate"]
        gone = next((r for r in same if not Path(r["path"]).exists()), None)
        if gone is not None and row is None:
            store.touch_photo(gone["id"], size=st.st_size, mtime=st.st_mtime, path=path, root=root_s)
            moved_from.add(gone["path"])
            summary.moved += 1
            continue
        if same:
            store.put_photo(
                path=path,
                root=root_s,
                sha256=sha,
                size=st.st_size,
                mtime=st.st_mtime,
                kind="image",
                status="duplicate",
                error=f"same content as {same[0]['path']}",
            )
            summary.duplicates += 1
            continue
        todo.append((path, sha, st.st_size, st.st_mtime))
        if progress:
            progress("check", i + 1, len(files))

    def write(res: dict[str, Any], sha: str, size: int, mtime: float) -> None:
        store.put_photo(
            path=res["path"],
            root=root_s,
            sha256=sha,
            size=size,
            mtime=mtime,
            kind=res["kind"],
            status=res["status"],
            error=res.get("error"),
            width=res.get("width"),
            height=res.get("height"),
            faces=res["faces"],
            model_id=model_id,
            taken=res.get("taken", ""),
        )
        summary.analysed += 1
        summary.faces += len(res["faces"])
        summary.low_quality_faces += sum(1 for f in res["faces"] if f.quality_detail.get("low_quality"))
        if res["status"] == "error":
            summary.errors.append({"path": res["path"], "error": res["error"]})

    kw = {"thumbnails": thumbnails, "video_interval": video_interval, "video_frames": video_frames}
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    if ray is not None:
        if todo:
            from functools import partial

            from faceprint.batch import DEFAULT_BATCH, ray_map, ray_session

            with ray_session(ray):
                done_n = 0
                analyse = partial(_analyse_on, **kw)
                for k, res in ray_map(analyse, [t[0] for t in todo], settings=settings, actors=workers, batch_size=ray_batch or DEFAULT_BATCH):
                    _, sha, size, mtime = todo[k]
                    write(res, sha, size, mtime)
                    done_n += 1
                    if progress:
                        progress("analyse", done_n, len(todo))
    elif engine is not None or n_workers <= 1 or len(todo) < 4:
        if engine is None:
            from faceprint.engine import Engine

            engine = Engine(settings or Settings.load())
        for k, (path, sha, size, mtime) in enumerate(todo):
            write(analyse_file(path, engine=engine, **kw), sha, size, mtime)
            if progress:
                progress("analyse", k + 1, len(todo))
    elif todo:
        from functools import partial

        analyse = partial(analyse_file, **kw)
        for done_n, ((path, sha, size, mtime), res, exc) in enumerate(in_workers(analyse, todo, lambda t: t[0], settings=settings, workers=n_workers), 1):
            if exc is not None:  # a worker died (out of memory, a native crash): record, go on
                res = {"path": path, "status": "error", "kind": "image", "error": f"worker_failed: {type(exc).__name__}: {exc}", "faces": []}
            write(res, sha, size, mtime)
            if progress:
                progress("analyse", done_n, len(todo))

    gone_ids = [r["id"] for p, r in known.items() if p not in seen and p not in moved_from]
    summary.removed = store.delete_photos(gone_ids)
    summary.seconds = time.perf_counter() - t0
    return summary
