"""Shared bits of the benchmark scripts: data folder lookup and JSON output."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def data_dir(arg: str | None) -> Path:
    path = Path(arg or os.environ.get("FACEPRINT_DATA", REPO.parent / "shared" / "data")).resolve()
    if not (path / "lfw-dev").is_dir():
        sys.exit(f"lfw-dev not found under {path}: pass --data or set FACEPRINT_DATA to the shared data folder")
    return path


def machine() -> dict[str, Any]:
    import cv2
    import numpy

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "opencv": cv2.__version__, "numpy": numpy.__version__, "platform": platform.platform()}


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result, indent=1, default=float))


ERRATA = REPO / "scripts" / "lfw_errata.txt"


def library_truth(lib: Any, errata: Path | None = ERRATA) -> dict[int, str]:
    """Ground truth of a library of identity folders: face id -> identity, for each photo's
    face nearest the image centre (LFW's convention; other faces are bystanders).

    With ``errata`` (scripts/lfw_errata.txt), alias identities share one label and photos
    known to show someone other than their folder's person are left out."""
    import numpy as np

    photos = {r["id"]: r for r in lib.store.read("SELECT id, width, height FROM photos WHERE status='ok'")}
    best: dict[int, tuple[float, Any]] = {}
    for f in lib.store.faces():
        r = photos[f.photo_id]
        x, y, w, h = f.box
        d = float(np.hypot(x + w / 2 - r["width"] / 2, y + h / 2 - r["height"] / 2))
        if f.photo_id not in best or d < best[f.photo_id][0]:
            best[f.photo_id] = (d, f)
    names = sorted({Path(f.path).parent.name for _, f in best.values()})
    alias: dict[str, str] = {}
    skip: set[str] = set()
    if errata is not None and Path(errata).is_file():
        from faceprint.evaluation.pairs import read_errata

        group, skip = read_errata(Path(errata), names)
        alias = {n: names[g] for n, g in zip(names, group.tolist())}
    out = {}
    for _, f in best.values():
        p = Path(f.path)
        if p.name in skip:
            continue
        out[f.id] = alias.get(p.parent.name, p.parent.name)
    return out


def lfw_folder(root: Path, identities: int | None, tmp: Path) -> Path:
    """``root`` itself, or a folder in ``tmp`` linking just its first ``identities`` identity folders."""
    if not identities:
        return root
    folder = tmp / "photos"
    folder.mkdir()
    for d in sorted(p for p in root.iterdir() if p.is_dir())[:identities]:
        os.symlink(d, folder / d.name)
    return folder
