"""Labelled face sets as the ``eval`` and ``train-*`` commands read them from disk: generated
faces against real photos for the synthetic-face detector (:func:`collect_synthetic_training`),
an identity-folder set less the images an errata file calls mislabelled (:func:`without_errata`),
and a detector's scores over a table of features (:func:`score_rows`).

Here rather than in :mod:`faceprint.liveness`: the labels CSV reader lives in
:mod:`faceprint.evaluation.pad`, and the detectors do not import the evaluation package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import InputError


def _set_name(path: Path, taken: dict[str, Any]) -> str:
    """A short, unique name for a data set given as a labels CSV or a folder: the folder that
    holds ``labels.csv``, else the CSV's stem, else the folder's name (``-2``, ``-3`` on a clash)."""
    base = (path.parent.name if path.name.lower() == "labels.csv" else path.stem if path.is_file() else path.name) or "set"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    return name


def group_synthetic_training(
    synthetic_sets: list[Path], real: list[Path], real_limit: int | None, *, need_synthetic: bool = True
) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """Generated sets and real sources by name (see :func:`collect_synthetic_training`): each
    labels CSV of generated faces is one generator, each real folder or CSV one real source."""
    from faceprint.evaluation.pad import read_labels
    from faceprint.media import is_image
    from faceprint.metrics.pad import is_bona_fide

    gen: dict[str, list[Path]] = {}
    for s in synthetic_sets:
        gen[_set_name(s, gen)] = [it.path for it in read_labels(s)]
    reals: dict[str, list[Path]] = {}
    for folder in real:
        if folder.is_file() and folder.suffix.lower() == ".csv":
            files = [it.path for it in read_labels(folder) if is_bona_fide(it.label)]
        elif folder.is_dir():
            files = sorted(p for p in folder.rglob("*") if is_image(p))
        else:
            raise InputError("not a folder of real photos nor a labels CSV", source=str(folder))
        if real_limit and len(files) > real_limit:
            files = [files[int(i)] for i in np.floor(np.arange(real_limit) * (len(files) / real_limit))]
        reals[_set_name(folder, reals)] = files
    if not any(reals.values()) or (need_synthetic and not any(gen.values())):
        raise InputError("both synthetic faces (--synthetic) and real photos (--real) are needed")
    return gen, reals


def collect_synthetic_training(
    synthetic_sets: list[Path], real: list[Path], real_limit: int | None, *, need_synthetic: bool = True
) -> tuple[list[Path], list[bool]]:
    """(paths, is-synthetic) from labels CSVs of generated faces and folders of real photos.

    A real source is a folder (searched recursively for images) or a labels CSV (its bona fide
    rows); ``real_limit`` keeps at most that many of each source, an even, deterministic spread.
    Both kinds are needed (generated faces only when ``need_synthetic``)."""
    gen, reals = group_synthetic_training(synthetic_sets, real, real_limit, need_synthetic=need_synthetic)
    paths = [p for v in gen.values() for p in v] + [p for v in reals.values() for p in v]
    return paths, [True] * sum(map(len, gen.values())) + [False] * sum(map(len, reals.values()))


def score_rows(model: Any, feats: dict[str, np.ndarray]) -> np.ndarray:
    """``model.score_features`` of every row of a feature table (one array of rows per feature)."""
    n = next(iter(feats.values())).shape[0]
    return np.array([model.score_features({k: v[i] for k, v in feats.items()}) for i in range(n)])


def without_errata(fs: Any, errata: Path) -> tuple[Any, np.ndarray]:
    """Leave out the images the errata file calls mislabelled; returns (faces, alias group per identity)."""
    from faceprint.evaluation.pairs import read_errata

    if not errata.is_file():
        raise InputError("errata file not found", source=str(errata))
    alias, skip = read_errata(errata, fs.names)
    return fs.subset(np.array([p.name not in skip for p in fs.paths])), alias


def synthetic_training_sets(data: Path, *, every: int = 1, real_limit: int = 700) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """The shared data the shipped synthetic-v2 is fitted on: generated sets (StyleGAN3,
    generated.photos, SFHQ-T2I) and real sources (an even spread of lfw-dev, NUAA live frames,
    webcam live frames, sample photos), every ``every``-th file."""
    from faceprint.evaluation.pad import read_labels
    from faceprint.media import is_image

    gen = {g: [it.path for it in read_labels(data / "synthetic" / g / "labels.csv")][::every] for g in ("stylegan3", "generated-photos", "sfhq-t2i")}
    lfw = sorted((data / "lfw-dev" / "images").rglob("*.jpg"))
    n = min(real_limit, len(lfw))
    real = {
        "lfw": [lfw[int(i)] for i in np.floor(np.arange(n) * (len(lfw) / n))],
        "nuaa": [it.path for it in read_labels(data / "pad" / "nuaa-train" / "labels.csv") if it.label == "live"][:: 2 * every],
        "webcam": [
            it.path
            for csv_path in (data / "pad" / "webcam-collect" / "labels.csv", data / "pad" / "video-selfreplay" / "labels.csv")
            if csv_path.is_file()
            for it in read_labels(csv_path)
            if it.label == "live"
        ][::every],
        "samples": [
            p
            for sub in ("deepface", "face-recognition-examples", "dlib-landmarks", "group-photos")
            for p in sorted((data / "samples" / sub).rglob("*"))
            if is_image(p)
        ][::every],
    }
    return gen, real
