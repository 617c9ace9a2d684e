"""``faceprint serve`` in a subprocess on loopback: start it, wait until ready, stop it gracefully.

For integration tests, load tests and scripts that need a real server (the test suite and
``benchmarks/load.py`` use it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["KEPT_SETTINGS", "ServerProcess", "free_port", "server_env"]

SRC = Path(__file__).resolve().parents[2]  # the folder holding the faceprint package


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: the FACEPRINT_* settings a test or benchmark process passes on: the data, and the key its
#: databases are sealed with; any other (FACEPRINT_DB and friends) would change what is opened
KEPT_SETTINGS = ("FACEPRINT_DATA", "FACEPRINT_KEY", "FACEPRINT_KEY_FILE", "FACEPRINT_ENCRYPT")


def server_env(**extra: str) -> dict[str, str]:
    """This environment without FACEPRINT_* settings (FACEPRINT_DB and friends would change
    what the server opens; FACEPRINT_DATA and the encryption key settings stay), the package
    importable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEPRINT_") or k in KEPT_SETTINGS}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


class ServerProcess:
    """A server started from ``args`` (e.g. ``[python, "-m", "faceprint.cli", "serve", ...]``)
    listening on 127.0.0.1:``port``, its output going to ``log``."""

    def __init__(self, args: list[str], port: int, log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.port, self.log = port, Path(log)
        self.url = f"http://127.0.0.1:{port}"
        self._fh = open(self.log, "wb")
        self.proc = subprocess.Popen(args, env=env or server_env(), cwd=cwd, stdout=self._fh, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120) -> None:
        """Until ``/v1/ready`` answers 200; raises RuntimeError (with the log) if the server
        exits or is not ready in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} before it was ready:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + "/v1/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout:.0f} s:\n{self.output()}")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (graceful shutdown); SIGKILL if it has not exited after ``timeout`` s.  Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if not self._fh.closed:
            self._fh.close()
        return self.proc.returncode

    def output(self, tail: int = 6000) -> str:
        """The last ``tail`` characters of the server's output."""
        if not self._fh.closed:
            self._fh.flush()
        return self.log.read_text(errors="replace")[-tail:]
