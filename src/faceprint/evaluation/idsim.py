"""Identity similarity of generated faces to their references (the metric face-generation
papers report: Arc2Face, InstantID, ID-Booth, ...), measured with faceprint's embedder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceprint.errors import InputError
from faceprint.evaluation.pairs import embed_paths, identity_folders
from faceprint.media import is_image

__all__ = ["idsim_pairs", "run_idsim"]


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image(p))


def idsim_pairs(reference: Path | None, generated: Path | None, root: Path | None, identities: int | None = None) -> list[tuple[Path, Path]]:
    """(reference image, generated image) pairs:

    * ``root``: identity folders; each folder's first image is the reference, the others
      are compared with it;
    * ``reference`` + ``generated`` with image files: paired by file name (stem);
    * ``reference`` + ``generated`` with identity folders: every generated image of a folder
      is compared with the first reference image of the folder of the same name."""
    if root is not None:
        if reference is not None or generated is not None:
            raise InputError("give either --root, or --reference and --generated")
        paths, ids, names = identity_folders(root)
        out = []
        for s in range(len(names) if identities is None else min(identities, len(names))):
            mine = [p for p, i in zip(paths, ids) if i == s]
            out += [(mine[0], g) for g in mine[1:]]
        if not out:
            raise InputError("no identity folder has two or more images", source=str(root))
        return out
    if reference is None or generated is None:
        raise InputError("give --reference and --generated (or --root)")
    for p in (reference, generated):
        if not p.is_dir():
            raise InputError("not a folder", source=str(p))
    ref_files = _images(reference)
    if ref_files:
        by_stem = {p.stem: p for p in ref_files}
        out = [(by_stem[g.stem], g) for g in _images(generated) if g.stem in by_stem]
        if not out:
            raise InputError("no generated file has the name of a reference file", source=str(generated))
        return out
    out = []
    for folder in sorted(p for p in generated.iterdir() if p.is_dir()):
        refs = _images(reference / folder.name) if (reference / folder.name).is_dir() else []
        if refs:
            out += [(refs[0], g) for g in _images(folder)]
    if not out:
        raise InputError("no identity folder of --generated has a folder of the same name in --reference", source=str(generated))
    return out


def _thumb(path: Path, size: int = 96) -> bytes | None:
    img = cv2.imread(str(path))
    if img is None:
        return None
    h, w = img.shape[:2]
    s = size / max(h, w)
    ok, buf = cv2.imencode(".jpg", cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return bytes(buf) if ok else None


def run_idsim(
    engine: Any, pairs: list[tuple[Path, Path]], out_dir: str | Path, *, fmr: float = 1e-3, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    from faceprint.evaluation.reports import idsim_report

    paths = sorted({a for a, _ in pairs} | {b for _, b in pairs})
    vectors, errors = embed_paths(lambda ps: engine.embed_many(ps, face="largest"), paths, progress=progress)
    where = {p: i for i, p in enumerate(paths)}
    good = [(a, b) for a, b in pairs if errors[where[a]] is None and errors[where[b]] is None]
    ra = np.array([where[a] for a, _ in good], np.int64)
    rb = np.array([where[b] for _, b in good], np.int64)
    dim = vectors.shape[1]
    R = vectors[ra] if len(good) else np.zeros((0, dim), np.float32)
    G = vectors[rb] if len(good) else np.zeros((0, dim), np.float32)
    labels = [f"{a.parent.name}/{a.name} vs {b.parent.name}/{b.name}" for a, b in good]
    s = np.einsum("ij,ij->i", R, G) if len(good) else np.zeros(0)
    worst = set(np.argsort(s)[:6].tolist())
    thumbs = [(_thumb(a), _thumb(b)) if i in worst else (None, None) for i, (a, b) in enumerate(good)]
    return idsim_report(
        R,
        G,
        labels,
        thumbs,
        out_dir,
        threshold=engine.calibration.threshold_for(fmr),
        fmr=fmr,
        failures=len(pairs) - len(good),
        model_id=engine.model_id,
        title="Identity similarity",
    )
