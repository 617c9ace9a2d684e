"""What several test modules share that is not a fixture: the repository root, the CLI run
in-process (the ``cli`` fixture in conftest.py hands out ``run_cli``) and the browser tests'
Chromium (Debian's package driven by Playwright)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

__all__ = ["BROWSER_ARGS", "CHROMIUM", "EXIF_TO_STORED", "REPO", "CliResult", "browser_api", "copy_people", "largest_group", "run_cli"]

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browser_api() -> Any:
    """Playwright's sync API, or a skip naming what is missing (Playwright, or Debian's Chromium)."""
    import pytest

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    return sync_api


def copy_people(lfw: Path, dest: Path, people: list[str], per: int, *, start: int = 0, need: int | None = None) -> list[Path]:
    """Copy photos ``start`` .. ``start + per`` of each LFW identity folder into ``dest/NAME/``
    (skipping the test, with the reason, when a person has fewer than ``need`` -- by default
    ``start + per`` -- photos); returns the copies."""
    import shutil

    import pytest

    out = []
    for name in people:
        photos = sorted((lfw / name).glob("*.jpg"))
        if len(photos) < (need or start + per):
            pytest.skip(f"{name} needs {need or start + per} photos in lfw-dev")
        (dest / name).mkdir(parents=True, exist_ok=True)
        for p in photos[start : start + per]:
            shutil.copy2(p, dest / name / p.name)
            out.append(dest / name / p.name)
    return out


def _exif_to_stored() -> dict[int, Any]:
    from PIL import Image

    t = Image.Transpose
    return {1: None, 2: t.FLIP_LEFT_RIGHT, 3: t.ROTATE_180, 4: t.FLIP_TOP_BOTTOM, 5: t.TRANSPOSE, 6: t.ROTATE_90, 7: t.TRANSVERSE, 8: t.ROTATE_270}


#: Pillow's transpose that turns an upright picture into the pixels stored under EXIF orientation
#: N: the inverse of what ``ImageOps.exif_transpose`` applies (None: stored as it is)
EXIF_TO_STORED = _exif_to_stored()


def largest_group(faces: Any, folder: str) -> int:
    """The person holding most of the faces whose photo lies in ``folder`` (an identity folder)."""
    counts: dict[int, int] = {}
    for f in faces:
        if f.person_id is not None and Path(f.path).parent.name == folder:
            counts[f.person_id] = counts.get(f.person_id, 0) + 1
    return max(counts, key=counts.__getitem__)


# --- the CLI, in-process -------------------------------------------------------------------------


class CliResult:
    """What a run of ``faceprint ARGS`` gave: the same fields as ``subprocess.CompletedProcess``."""

    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.args, self.returncode, self.stdout, self.stderr = args, returncode, stdout, stderr

    def describe(self) -> str:
        return f"faceprint {' '.join(self.args)}: exit {self.returncode}\n--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"

    def json(self) -> Any:
        import json

        return json.loads(self.stdout)


def run_cli(*args: Any, env: dict[str, str] | None = None, input: str | None = None, cwd: Path | str | None = None) -> CliResult:
    """``faceprint ARGS`` run in this process by Typer's CliRunner (no new interpreter, no model
    reload).  An exception the CLI did not turn into a clean error is appended to stderr as a
    traceback, exactly as the real command would print it, so "no traceback" checks still bite."""
    import traceback

    from typer.testing import CliRunner

    from faceprint.cli import app
    from faceprint.service.process import KEPT_SETTINGS  # what the test servers keep too: a developer's other settings cannot change a result

    argv = [str(a) for a in args]
    overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith("FACEPRINT_") and k not in KEPT_SETTINGS}
    overrides.update(env or {})
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        r = CliRunner().invoke(app, argv, env=overrides, input=input, prog_name="faceprint")
    finally:
        os.chdir(old)
    stderr = r.stderr
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        stderr += "".join(traceback.format_exception(r.exception))
    return CliResult(argv, r.exit_code, r.stdout, stderr)
