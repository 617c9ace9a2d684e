"""What several test modules share that is not a fixture: the repository root, the CLI run
in-process (the ``cli`` fixture in conftest.py hands out ``run_cli``) and the browser tests'
Chromium (Debian's package driven by Playwright)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

__all__ = ["BROWSER_ARGS", "CHROMIUM", "REPO", "CliResult", "browser_api", "largest_group", "run_cli"]

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
