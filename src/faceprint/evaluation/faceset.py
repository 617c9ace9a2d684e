"""A labelled face set: every image of ``root/<identity>/...`` embedded once, with its quality
and pose, optionally cached in an .npz so several reports share one embedding pass."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import FaceprintError, InputError
from faceprint.evaluation.pairs import identity_folders

__all__ = ["FaceSet", "load_faceset", "read_groups"]


@dataclass
class FaceSet:
    paths: list[Path]
    ids: np.ndarray  # identity index per image
    names: list[str]  # identity names
    vectors: np.ndarray  # (n, dim), zero rows where no face was found
    ok: np.ndarray  # a template was made
    quality: np.ndarray  # unified quality 0-100 (nan where no face)
    yaw: np.ndarray
    pitch: np.ndarray
    errors: list[str | None]
    model_id: str

    def subset(self, keep: np.ndarray) -> FaceSet:
        idx = np.flatnonzero(keep)
        return FaceSet(
            [self.paths[i] for i in idx],
            self.ids[idx],
            self.names,
            self.vectors[idx],
            self.ok[idx],
            self.quality[idx],
            self.yaw[idx],
            self.pitch[idx],
            [self.errors[i] for i in idx],
            self.model_id,
        )


def embed_one(engine: Any, path: str, *, face: str) -> Any:
    """One image's template (or the error that stopped it): the unit of ``load_faceset(ray=...)``."""
    return engine.embed_many([path], face=face)[0]


def load_faceset(
    engine: Any,
    root: str | Path,
    *,
    face: str = "center",
    identities: int | None = None,
    cache: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
    paths: Sequence[Path] | None = None,
    ray: str | None = None,
) -> FaceSet:
    """Embed every image under ``root/<identity>/`` (the first ``identities`` folders only,
    when given); ``cache`` keeps the result for the next call with the same images, model and
    ``face`` choice (a cache made with another face choice, or before the choice was recorded,
    is recomputed and overwritten)."""
    all_paths, ids, names = identity_folders(root)
    if identities:
        keep = ids < identities
        all_paths, ids, names = [p for p, k in zip(all_paths, keep) if k], ids[keep], names[:identities]
    if cache and Path(cache).is_file():
        z = np.load(cache, allow_pickle=False)
        same_face = "face" in z.files and str(z["face"]) == str(face)
        if same_face and str(z["model_id"]) == engine.model_id and [str(p) for p in all_paths] == [str(p) for p in z["paths"]]:
            errs = [None if e == "" else str(e) for e in z["errors"]]
            return FaceSet(all_paths, ids, names, z["vectors"], z["ok"], z["quality"], z["yaw"], z["pitch"], errs, engine.model_id)
    n = len(all_paths)
    dim = engine.embedder.dim
    vectors = np.zeros((n, dim), np.float32)
    quality = np.full(n, np.nan)
    yaw = np.full(n, np.nan)
    pitch = np.full(n, np.nan)
    errors: list[str | None] = [None] * n
    chunk = 64

    def batches() -> Any:
        """(first index, results) per chunk: here, or from a Ray cluster (``ray``) as they come."""
        if ray is None:
            for start in range(0, n, chunk):
                yield start, engine.embed_many(all_paths[start : start + chunk], face=face)
            return
        from functools import partial

        from faceprint.batch import ray_map, ray_session

        with ray_session(ray):
            for k, res in ray_map(partial(embed_one, face=face), [str(p) for p in all_paths], settings=engine.settings):
                yield k, [res]

    for start, results in batches():
        for k, res in enumerate(results):
            i = start + k
            if isinstance(res, FaceprintError):
                errors[i] = str(res)
                continue
            vectors[i] = res.vector
            if res.quality is not None:
                quality[i] = res.quality.unified
                yaw[i] = res.quality.components["yaw"].raw
                pitch[i] = res.quality.components["pitch"].raw
        if progress:
            progress(len(results))
    ok = np.array([e is None for e in errors])
    fs = FaceSet(all_paths, ids, names, vectors, ok, quality, yaw, pitch, errors, engine.model_id)
    if cache:
        from faceprint.privacy import private_file

        with open(private_file(cache), "wb") as fh:  # templates: 0600, like every file of faces
            np.savez_compressed(
                fh,
                paths=np.array([str(p) for p in all_paths]),
                vectors=vectors,
                ok=ok,
                quality=quality,
                yaw=yaw,
                pitch=pitch,
                errors=np.array([e or "" for e in errors]),
                model_id=np.array(engine.model_id),
                face=np.array(str(face)),
            )
    return fs


def read_groups(path: str | Path, attribute: str | None = None) -> tuple[str, dict[str, str], dict[str, str]]:
    """A groups CSV (columns ``image``, ``identity`` and one column per attribute):
    (attribute used, image file name -> group, identity -> group).  Rows whose group is
    empty are left out; with no ``attribute`` the first attribute column is used."""
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            cols = reader.fieldnames or []
            if "image" not in cols and "identity" not in cols:
                raise InputError("the groups CSV needs a column 'image' or 'identity', and one column per attribute", source=str(p))
            attrs = [c for c in cols if c not in ("image", "identity")]
            if not attrs:
                raise InputError("the groups CSV has no attribute column (e.g. gender)", source=str(p))
            attr = attribute or attrs[0]
            if attr not in attrs:
                raise InputError(f"no column {attr!r}; attribute columns: {', '.join(attrs)}", source=str(p))
            by_image: dict[str, str] = {}
            by_identity: dict[str, str] = {}
            for row in reader:
                g = (row.get(attr) or "").strip()
                if not g:
                    continue
                if row.get("image"):
                    by_image[Path(row["image"]).name] = g
                if row.get("identity"):
                    by_identity.setdefault(row["identity"], g)
    except FileNotFoundError:
        raise InputError("groups CSV not found", source=str(p)) from None
    except UnicodeDecodeError:
        raise InputError("groups CSV is not UTF-8 text", source=str(p)) from None
    return attr, by_image, by_identity
