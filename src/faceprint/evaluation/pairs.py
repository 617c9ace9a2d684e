"""Verification protocols on labelled pairs: LFW-format pair lists and identity folders."""

from __future__ import annotations

import csv
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceprint.errors import FaceprintError, InputError
from faceprint.media import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class Pair:
    a: Path
    b: Path
    same: bool
    fold: int


def _lfw_path(root: Path, name: str, num: str) -> Path:
    return root / name / f"{name}_{int(num):04d}.jpg"


def read_lfw_pairs(pairs_file: str | Path, root: str | Path) -> list[Pair]:
    """Parse an LFW ``pairs.txt``: a header ``folds n`` then, per fold, n same-person
    lines ``name i j`` followed by n different-person lines ``name1 i name2 j``."""
    path, root = Path(pairs_file), Path(root)
    try:
        lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    except FileNotFoundError:
        raise InputError("pairs file not found", source=str(path)) from None
    except UnicodeDecodeError:
        raise InputError("pairs file is not text", source=str(path)) from None
    if not lines or len(lines[0]) not in (1, 2) or not all(x.isdigit() for x in lines[0]):
        raise InputError("first line must be the LFW header 'folds pairs_per_class' (e.g. '10 300')", source=str(path))
    folds = int(lines[0][0])
    per = int(lines[0][1]) if len(lines[0]) == 2 else None
    body = lines[1:]
    if per is None:
        per = len(body) // (2 * folds)
    if len(body) != folds * 2 * per:
        raise InputError(f"header promises {folds} folds x 2 x {per} pairs = {folds * 2 * per} lines, found {len(body)}", source=str(path))
    out: list[Pair] = []
    for i, parts in enumerate(body):
        fold = i // (2 * per)
        try:
            if len(parts) == 3:
                out.append(Pair(_lfw_path(root, parts[0], parts[1]), _lfw_path(root, parts[0], parts[2]), True, fold))
            elif len(parts) == 4:
                out.append(Pair(_lfw_path(root, parts[0], parts[1]), _lfw_path(root, parts[2], parts[3]), False, fold))
            else:
                raise ValueError
        except ValueError:
            raise InputError(f"line {i + 2} is not 'name i j' or 'name1 i name2 j': {' '.join(parts)!r}", source=str(path)) from None
    return out


def limit_pairs(pairs: Sequence[Pair], per_fold_class: int) -> list[Pair]:
    """The first ``per_fold_class`` same and different pairs of each fold (smoke runs)."""
    kept: dict[tuple[int, bool], int] = {}
    out = []
    for p in pairs:
        key = (p.fold, p.same)
        if kept.get(key, 0) < per_fold_class:
            kept[key] = kept.get(key, 0) + 1
            out.append(p)
    return out


def read_csv_pairs(pairs_file: str | Path, root: str | Path | None = None, *, folds: int = 10) -> list[Pair]:
    """A CSV with columns (a, b, same) — header names free, ``same`` one of 1/0, yes/no, true/false,
    same/different.  Folds are assigned round-robin for k-fold accuracy."""
    path = Path(pairs_file)
    base = Path(root) if root else path.parent
    truthy, falsy = {"1", "yes", "true", "same", "y"}, {"0", "no", "false", "different", "diff", "n"}
    try:
        rows = list(csv.reader(path.read_text().splitlines()))
    except FileNotFoundError:
        raise InputError("pairs file not found", source=str(path)) from None
    out: list[Pair] = []
    for i, row in enumerate(rows):
        if len(row) < 3:
            raise InputError(f"line {i + 1} needs three columns (a, b, same)", source=str(path))
        label = row[2].strip().lower()
        if label not in truthy | falsy:
            if i == 0:
                continue  # header
            raise InputError(f"line {i + 1}: label {row[2]!r} is not one of yes/no, 1/0, true/false", source=str(path))
        out.append(Pair(base / row[0].strip(), base / row[1].strip(), label in truthy, len(out) % folds))
    if not out:
        raise InputError("no pairs found", source=str(path))
    return out


def read_pairs(pairs_file: str | Path, root: str | Path | None = None) -> list[Pair]:
    """LFW format (``.txt``) or CSV, by content."""
    text = Path(pairs_file).read_text() if Path(pairs_file).is_file() else ""
    first = text.strip().splitlines()[0] if text.strip() else ""
    if "," in first:
        return read_csv_pairs(pairs_file, root)
    if root is None:
        raise InputError("LFW-format pairs need --root, the folder holding <Name>/<Name>_NNNN.jpg")
    return read_lfw_pairs(pairs_file, root)


def identity_folders(root: str | Path, *, exts: Collection[str] = IMAGE_EXTENSIONS) -> tuple[list[Path], np.ndarray, list[str]]:
    """Images under ``root/<identity>/...``: (paths, identity index per image, identity names)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("identity folder root is not a directory", source=str(root))
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    paths: list[Path] = []
    ids: list[int] = []
    for k, name in enumerate(names):
        for f in sorted((root / name).rglob("*")):
            if f.suffix.lower() in exts and f.is_file():
                paths.append(f)
                ids.append(k)
    if not paths:
        raise InputError("no images found in identity sub-folders", source=str(root))
    return paths, np.asarray(ids), names


def embed_paths(
    embed_many: Callable[[Iterable[Path]], list],
    paths: Sequence[Path],
    *,
    progress: Callable[[int], None] | None = None,
    chunk: int = 64,
) -> tuple[np.ndarray, list[str | None]]:
    """Embed each path once: (N, dim) matrix (zero rows for failures) and per-path error text or None."""
    vectors: list[np.ndarray | None] = []
    errors: list[str | None] = []
    for start in range(0, len(paths), chunk):
        part = paths[start : start + chunk]
        for res in embed_many(part):
            if isinstance(res, FaceprintError):
                vectors.append(None)
                errors.append(str(res))
            else:
                vectors.append(res.vector)
                errors.append(None)
        if progress:
            progress(len(part))
    dim = next((len(v) for v in vectors if v is not None), 128)
    mat = np.stack([v if v is not None else np.zeros(dim, np.float32) for v in vectors]) if vectors else np.zeros((0, dim), np.float32)
    return mat.astype(np.float32), errors


def pair_scores(pairs: Sequence[Pair], index: dict[Path, int], vectors: np.ndarray, errors: Sequence[str | None]) -> np.ndarray:
    """Cosine score per pair; a pair with a failed image scores -1 (a certain non-match), as NIST counts failures to enrol."""
    ia = np.array([index[p.a] for p in pairs])
    ib = np.array([index[p.b] for p in pairs])
    scores = np.einsum("ij,ij->i", vectors[ia], vectors[ib])
    failed = np.array([errors[i] is not None or errors[j] is not None for i, j in zip(ia, ib)])
    scores[failed] = -1.0
    return scores


def read_errata(path: Path, names: list[str]) -> tuple[np.ndarray, set[str]]:
    """Known label errors of an identity-folder dataset (see scripts/lfw_errata.txt):
    (alias group per identity index, image file names to leave out)."""
    group = np.arange(len(names))
    where = {n: i for i, n in enumerate(names)}
    skip: set[str] = set()
    for line in path.read_text().splitlines():
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if parts[0] == "same" and len(parts) == 3:
            a, b = (where.get(n) for n in parts[1:])
            if a is not None and b is not None:
                group[group == group[b]] = group[a]
        elif parts[0] == "image" and len(parts) == 2:
            skip.add(parts[1])
        else:
            raise InputError(f"cannot read line {line!r} (expected 'same A B' or 'image FILE')", source=str(path))
    return group, skip
