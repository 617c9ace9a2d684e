"""A real faceprint server on loopback for tests (the service and web UI tests share it)."""

from __future__ import annotations

import sys
from pathlib import Path

from support import REPO

from faceprint.service.process import ServerProcess, free_port, server_env

__all__ = ["RealServer", "free_port", "serve_library", "server_env"]


class RealServer(ServerProcess):
    """ServerProcess run from the repository root; a failed start is a test failure."""

    def __init__(self, args: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(args, port, log, env=env, cwd=REPO)

    def wait_ready(self, timeout: float = 90) -> None:
        try:
            super().wait_ready(timeout)
        except RuntimeError as exc:
            raise AssertionError(str(exc)) from None

    def stop(self, timeout: float = 30) -> int:
        return super().stop(timeout)


def serve_library(db: Path, tmp_path: Path, **env: str) -> RealServer:
    """A started (not yet ready) ``faceprint serve`` over the photo library ``db``, without API
    auth, its gallery and log in ``tmp_path``, with ``env`` (e.g. FACEPRINT_UI_TOKEN) set."""
    port = free_port()
    return RealServer(
        [sys.executable, "-m", "faceprint.cli", "serve", "--db", str(tmp_path / "gallery.db"), "--library", str(db), "--no-auth", "--port", str(port)],
        port,
        tmp_path / "server.log",
        env=server_env(**env),
    )
