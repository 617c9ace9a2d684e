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
