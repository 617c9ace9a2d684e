"""A real faceprint server on loopback for tests (the service and web UI tests share it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"


def server_env(**extra: str) -> dict[str, str]:
    """The test's environment without FACEPRINT_* settings (except the data folder), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEPRINT_") or k == "FACEPRINT_DATA"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RealServer:
    """A faceprint server in a subprocess on loopback: start, wait for /v1/ready, SIGTERM."""

    def __init__(self, args: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> None:
        self.port, self.log = port, log
        self.url = f"http://127.0.0.1:{port}"
        self._fh = open(log, "wb")
        self.proc = subprocess.Popen(args, env=env or server_env(), cwd=REPO, stdout=self._fh, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/v1/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready after {timeout}s:\n{self.output()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._fh.close()
        return self.proc.returncode

    def output(self) -> str:
        if not self._fh.closed:
            self._fh.flush()
        return self.log.read_text(errors="replace")[-6000:]


