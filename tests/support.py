"""What several test modules share that is not a fixture: the repository root and the CLI run
in-process (the ``cli`` fixture in conftest.py hands out ``run_cli``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

__all__ = ["REPO", "CliResult", "run_cli"]

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
