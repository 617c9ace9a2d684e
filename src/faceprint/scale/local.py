"""Throwaway database engines on loopback, for tests, benchmarks and trying the scale-out on one
machine: :class:`LocalPostgres` (a fresh PostgreSQL cluster) and :class:`LocalMilvus` (Milvus
Lite's gRPC server).  Both listen on 127.0.0.1 only, on a port nobody else holds, keep their
files in a temporary folder that ``stop()`` removes, and can be killed (SIGKILL) and restarted
on the same port and files for fault tests.

Standard library only: the drivers (psycopg, pymilvus) are the callers' business; pymilvus is
imported only to check that a Milvus server answers.

    with LocalPostgres() as pg, LocalMilvus() as mv:
        psycopg.connect(pg.url)                      # postgresql://faceprint@127.0.0.1:PORT/faceprint
        MilvusClient(uri=f"http://{mv.address}")     # mv.url: milvus://127.0.0.1:PORT
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

__all__ = ["RAY_LOOPBACK_ENV", "LocalMilvus", "LocalPostgres", "LocalRay", "postgres_bindir"]

PG_LIB = Path("/usr/lib/postgresql")  # Debian's home of the server binaries, one folder per major version
_PG_INSTALL = "PostgreSQL is not installed: apt-get install postgresql (Debian/Ubuntu; initdb, pg_ctl and postgres are needed)"
_MILVUS_INSTALL = "Milvus Lite is not installed: pip install 'milvus-lite==3.2.2' 'pymilvus==3.0.2' (or faceprint[scale])"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie -- dead, not yet reaped -- does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _wait_gone(pids: list[int], timeout: float) -> bool:
    """Until none of ``pids`` runs (True), or ``timeout`` seconds (False); then, for up to 5 s
    more, until they are reaped too: PostgreSQL takes a zombie's postmaster.pid for a live one."""
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.parent.name)) or (0,)


def postgres_bindir() -> Path:
    """The folder of PostgreSQL's server binaries (initdb, pg_ctl, postgres): the newest
    ``/usr/lib/postgresql/*/bin`` (Debian's layout, where they are not on PATH), else
    ``pg_config --bindir``, else where ``initdb`` is on PATH.  RuntimeError if none is found."""
    found = sorted((p.parent for p in PG_LIB.glob("*/bin/initdb")), key=_version_key)
    if found:
        return found[-1]
    if shutil.which("pg_config"):
        try:
            bindir = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip())
            if (bindir / "initdb").is_file():
                return bindir
        except (OSError, subprocess.CalledProcessError):
            pass
    if initdb := shutil.which("initdb"):
        return Path(initdb).resolve().parent
    raise RuntimeError(_PG_INSTALL)


def _pg_env() -> dict[str, str]:
    """This environment without libpq's PG* settings (PGHOST, PGPORT, PGDATA ... would point the
    tools at another server or cluster)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"  # the tools' messages, and a locale initdb always accepts
    return env


class LocalPostgres:
    """A throwaway PostgreSQL cluster on ``127.0.0.1:PORT`` for tests and benchmarks.

    ``start()`` runs ``initdb`` in a new temporary folder (under ``root``, else the system's
    temporary folder), starts the server listening on 127.0.0.1 only -- no other TCP address;
    its unix socket sits in that folder -- on a port the kernel says is free (retried on
    another port if the port was taken in the meantime: PostgreSQL refuses a port in use), and
    creates the database ``faceprint``.  ``url`` is ``postgresql://faceprint@127.0.0.1:PORT/faceprint``.

    Not for real data: the superuser is ``faceprint`` and every connection from 127.0.0.1 or
    the socket is trusted (no password; ``initdb --auth=trust``), and unless ``durable=True``
    the server runs with ``fsync=off`` (much faster, but a crash of the machine -- not of the
    server -- can lose or corrupt data).  Crash-safety tests that kill the server want
    ``durable=True``: fsync stays on, as in production.

    PostgreSQL refuses to run as root: as root the tools run as the ``postgres`` user (through
    ``runuser``), and the folder is given to that user, so ``root`` must be a folder it can
    reach.  RuntimeError when PostgreSQL is not installed (tests turn it into a skip).

    ``stop()`` shuts the server down (fast mode: sessions are cut, what was committed stays)
    and removes the folder (``stop(keep=True)`` leaves it for ``restart()``); ``kill()`` is
    SIGKILL for the postmaster and its children at once, like a crash; ``restart()`` starts the
    server again on the same port and files, from any of these states (a running server is
    stopped first).  A context manager: ``with LocalPostgres() as pg: ...``.
    """

    user = "faceprint"
    database = "faceprint"

    def __init__(self, root: Path | None = None, *, durable: bool = False) -> None:
        self.root = Path(root) if root is not None else None
        self.durable = durable
        self.dir: Path | None = None  # the temporary folder: data/, postgres.log, the socket
        self.port: int | None = None
        self._bin: Path | None = None
        self._run_as: str | None = None  # "postgres" when we are root
        self._finalizer: weakref.finalize | None = None

    # ------------------------------------------------------------------ properties
    @property
    def url(self) -> str:
        self._need_port()
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def data(self) -> Path:
        return self._need_dir() / "data"

    @property
    def log(self) -> Path:
        return self._need_dir() / "postgres.log"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs (from postmaster.pid, checked against the
        process's command line), else None."""
        if self.dir is None:
            return None
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
            # after a kill() the file is stale and the number may be somebody else's by now
            mine = str(self.data).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if mine and _alive(pid) else None

    def _need_dir(self) -> Path:
        if self.dir is None:
            raise RuntimeError("LocalPostgres is not started")
        return self.dir

    def _need_port(self) -> None:
        if self.port is None:
            raise RuntimeError("LocalPostgres is not started")

    # ------------------------------------------------------------------ running the tools
    def _cmd(self, tool: str, *args: str) -> list[str]:
        assert self._bin is not None
        cmd = [str(self._bin / tool), *args]
        return ["runuser", "-u", self._run_as, "--", *cmd] if self._run_as else cmd

    def _run(self, tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._cmd(tool, *args), cwd=self.dir, env=_pg_env(), capture_output=True, text=True, timeout=timeout)

    def _check(self, proc: subprocess.CompletedProcess[str], what: str) -> None:
        if proc.returncode != 0:
            tail = _tail(self.log) if self.dir is not None else ""
            raise RuntimeError(f"{what} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}\n--- {self.log if self.dir else 'log'}:\n{tail}")

    # ------------------------------------------------------------------ life cycle
    def start(self) -> LocalPostgres:
        """Create the cluster and start it; returns self.  Takes ~1.5 s (initdb ~1.3 s)."""
        if self.dir is not None:
            raise RuntimeError(f"LocalPostgres already started in {self.dir}")
        self._bin = postgres_bindir()
        if os.geteuid() == 0:
            if not shutil.which("runuser"):
                raise RuntimeError("running as root, PostgreSQL needs runuser (util-linux) to run as the postgres user")
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root, PostgreSQL needs a 'postgres' user to run as (apt-get install postgresql makes one)") from None
            self._run_as = "postgres"
        self.dir = Path(tempfile.mkdtemp(prefix="faceprint-pg-", dir=self.root))
        self._finalizer = weakref.finalize(self, _pg_cleanup, self._cmd("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"), self.dir)
        try:
            if self._run_as:
                os.chown(self.dir, owner.pw_uid, owner.pw_gid)
                if subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(self.dir)], cwd="/").returncode != 0:
                    raise RuntimeError(f"the postgres user cannot write {self.dir}: give LocalPostgres a root folder it can reach (or none)")
            sync = [] if self.durable else ["--no-sync"]
            self._check(self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-locale", *sync), "initdb")
            for attempt in range(5):
                self.port = _free_port()
                try:
                    self._start_server()
                    break
                except RuntimeError:
                    if attempt == 4 or "already in use" not in _tail(self.log, 10):
                        raise
            self._check(self._run("createdb", "-h", str(self.dir), "-p", str(self.port), "-U", self.user, self.database), "createdb")
        except BaseException:
            self.stop()
            raise
        return self

    def _start_server(self) -> None:
        opts = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.dir}"
        if not self.durable:
            opts += " -c fsync=off"  # a throwaway test cluster: see the class's docstring
        self._check(self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-l", str(self.log), "-o", opts, "start"), "pg_ctl start")

    def stop(self, *, keep: bool = False) -> None:
        """Shut the server down (``pg_ctl -m fast -w stop``) and remove the folder, unless
        ``keep`` (then ``restart()`` can start it again).  Safe to call twice, or after kill()."""
        if self.dir is None:
            return
        if self.pid is not None:
            proc = self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
            if proc.returncode != 0 and self.pid is not None:
                self.kill()
        if keep:
            return
        if self._finalizer is not None:
            self._finalizer.detach()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = self.port = None

    def kill(self) -> None:
        """SIGKILL the postmaster and its children at once (a crash, for fault tests), and wait
        until they are gone; the files stay for ``restart()`` (crash recovery runs then)."""
        pid = self.pid
        if pid is None:
            return
        pids = [pid, *_children(pid)]
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not _wait_gone(pids, 30):
            raise RuntimeError(f"PostgreSQL processes {pids} survived SIGKILL")

    def restart(self) -> None:
        """Start the server again on the same port and files (stopping it first if it runs)."""
        self._need_port()
        self.stop(keep=True)
        self._start_server()

    def __enter__(self) -> LocalPostgres:
        return self.start() if self.dir is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalPostgres(dir={self.dir}, port={self.port}, durable={self.durable})"


def _pg_cleanup(stop_cmd: list[str], folder: Path) -> None:
    """At garbage collection or exit, for a cluster nobody stopped: stop it, remove its folder."""
    try:
        subprocess.run(stop_cmd, cwd="/", env=_pg_env(), capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pass
    shutil.rmtree(folder, ignore_errors=True)


class LocalMilvus:
    """Milvus Lite's gRPC server (PyPI ``milvus-lite``) on ``127.0.0.1:PORT``, in a process
    group of its own, its files and log (``milvus.log``) in a new temporary folder (under
    ``root``, else the system's temporary folder).  ``url`` is ``milvus://127.0.0.1:PORT``;
    ``address`` is ``127.0.0.1:PORT`` (pymilvus: ``MilvusClient(uri=f"http://{address}")``).

    Not ``milvus-lite server``: its default host is 0.0.0.0, and gRPC binds with
    ``SO_REUSEPORT``, so a second server on a port already taken starts without an error and
    shares the connections -- a free-port race would connect a test to somebody else's server.
    ``_milvus_server.py`` binds 127.0.0.1 without SO_REUSEPORT, on port 0 (the kernel picks a
    free one) at the first start and on the same port at a restart (an error if taken), and
    reports the port it got in a file.  ``start()`` then waits until pymilvus's
    ``list_collections()`` answers (``timeout`` seconds; ~2-3 s on an idle machine, mostly
    imports); RuntimeError with the log's tail if the server exits or does not answer in time.
    The server stops by itself when the process that started it is gone.

    ``stop()`` is SIGTERM (a graceful stop: the database is closed), SIGKILL after 10 s, then
    the folder is removed (``stop(keep=True)`` leaves it); ``kill()`` is SIGKILL for the whole
    process group (Milvus Lite keeps what it acknowledged); ``restart()`` starts it again on
    the same files and port, from any of these states.  A context manager.
    """

    def __init__(self, root: Path | None = None, *, timeout: float = 60, python: str | None = None) -> None:
        self.root = Path(root) if root is not None else None
        self.timeout = timeout
        self.python = python or sys.executable
        self.dir: Path | None = None  # data/, milvus.log, port
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None
        self._group: list[int | None] = [None]  # the running server's process group, shared with the finalizer

    @property
    def address(self) -> str:
        if self.port is None:
            raise RuntimeError("LocalMilvus is not started")
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"milvus://{self.address}"

    @property
    def log(self) -> Path:
        if self.dir is None:
            raise RuntimeError("LocalMilvus is not started")
        return self.dir / "milvus.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self) -> LocalMilvus:
        """Start a server on new files and a free port; returns self."""
        if self.dir is not None:
            raise RuntimeError(f"LocalMilvus already started in {self.dir}")
        self.dir = Path(tempfile.mkdtemp(prefix="faceprint-milvus-", dir=self.root))
        try:
            self._launch(0)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, port: int) -> None:
        assert self.dir is not None
        port_file = self.dir / "port"
        port_file.unlink(missing_ok=True)
        script = Path(__file__).with_name("_milvus_server.py")
        args = [
            self.python,
            str(script),
            "--data-dir",
            str(self.dir / "data"),
            "--port-file",
            str(port_file),
            "--port",
            str(port),
            "--parent",
            str(os.getpid()),
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True)
        self._group[0] = self.proc.pid  # its own session: the process group's id is its pid
        if self._finalizer is None:
            self._finalizer = weakref.finalize(self, _milvus_cleanup, self._group, self.dir)
        deadline = time.monotonic() + self.timeout
        while not port_file.exists():
            if self.proc.poll() is not None:
                tail = _tail(self.log)
                if "No module named" in tail and ("milvus_lite" in tail or "pymilvus" in tail or "grpc" in tail):
                    raise RuntimeError(f"{_MILVUS_INSTALL} (for {self.python}):\n{tail}")
                raise RuntimeError(f"Milvus Lite exited with {self.proc.returncode} before it served:\n{tail}")
            if time.monotonic() > deadline:
                self._kill_group()
                raise RuntimeError(f"Milvus Lite did not serve within {self.timeout} s:\n{_tail(self.log)}")
            time.sleep(0.02)
        self.port = int(port_file.read_text())
        self._wait_ready(deadline)

    def _wait_ready(self, deadline: float) -> None:
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise RuntimeError(_MILVUS_INSTALL) from None
        error: Exception | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"Milvus Lite exited with {self.proc.returncode}:\n{_tail(self.log)}")
            try:
                client = MilvusClient(uri=f"http://{self.address}", timeout=max(1.0, deadline - time.monotonic()))
                try:
                    client.list_collections()
                    return
                finally:
                    client.close()
            except Exception as e:  # pymilvus raises its own MilvusException, grpc errors and more
                error = e
                time.sleep(0.1)
        self._kill_group()
        raise RuntimeError(f"Milvus Lite on {self.address} did not answer within {self.timeout} s ({error}):\n{_tail(self.log)}")

    def _kill_group(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._group[0] = None

    def stop(self, *, keep: bool = False) -> None:
        """SIGTERM, SIGKILL after 10 s; then the folder is removed unless ``keep``.  Safe to call twice."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self._kill_group()  # anything left in the group
        if keep or self.dir is None:
            return
        if self._finalizer is not None:
            self._finalizer.detach()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = self.port = self.proc = None

    def kill(self) -> None:
        """SIGKILL the server's whole process group (a crash); the files stay for ``restart()``."""
        self._kill_group()

    def restart(self) -> None:
        """Start the server again on the same files and port (stopping it first if it runs)."""
        if self.port is None:
            raise RuntimeError("LocalMilvus is not started")
        self.stop(keep=True)
        self._launch(self.port)

    def __enter__(self) -> LocalMilvus:
        return self.start() if self.dir is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalMilvus(dir={self.dir}, port={self.port})"


def _milvus_cleanup(group: list[int | None], folder: Path) -> None:
    """At garbage collection or exit, for a server nobody stopped: kill it, remove its folder."""
    pgid = group[0]
    if pgid is not None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(folder, ignore_errors=True)


#: what every process of a loopback Ray cluster needs, the driver included (Ray 2.60): without
#: RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 the head resolves 127.0.0.1 to the machine's network address
RAY_LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
_RAY_INSTALL = "Ray is not installed: pip install 'ray[data]==2.60.0' (or faceprint[scale])"


def _processes_mentioning(marker: str) -> list[int]:
    """Every process whose command line contains ``marker`` (our Ray's temp dir), or, for a Ray
    process that renamed itself (``ray::DashboardAgent``...), that holds a file under it open."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if marker in cmd:
                    out.append(int(entry.name))
                elif cmd.startswith("ray::") and any(marker in os.readlink(fd) for fd in (entry / "fd").iterdir()):
                    out.append(int(entry.name))
            except OSError:
                pass
    return out


class LocalRay:
    """A Ray head node on 127.0.0.1 (``ray start --head``) with token authentication, for tests and
    benchmarks: one node with several worker processes (on one machine Ray 2.60 allows no second
    node while it is kept on loopback).  :meth:`env` is what a driver process needs to connect
    (the token file, the loopback switch); :attr:`address` is ``127.0.0.1:PORT``.  :meth:`stop`
    ends only this cluster's processes (found by its private temp dir), never another Ray."""

    def __init__(self, *, num_cpus: int | None = None, timeout: float = 90, token_path: Path | None = None) -> None:
        """``token_path``: the token file to use (Ray reads one token per process: a driver
        process that already talked to a token-authenticated cluster must pass its file)."""
        self.num_cpus = num_cpus or os.cpu_count() or 1
        self.timeout = timeout
        self._given_token = token_path
        self.dir: Path | None = None
        self.port: int | None = None
        self.token_path: Path | None = None
        self._finalizer: Any = None

    @property
    def address(self) -> str:
        if self.port is None:
            raise RuntimeError("the Ray head is not started")
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The variables a driver of this cluster needs (merge into os.environ or a subprocess's env)."""
        if self.token_path is None:
            raise RuntimeError("the Ray head is not started")
        return {**RAY_LOOPBACK_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_path)}

    def _ray_cli(self) -> str:
        found = Path(sys.executable).with_name("ray")
        if found.exists():
            return str(found)
        which = shutil.which("ray")
        if which is None:
            raise RuntimeError(_RAY_INSTALL)
        return which

    def start(self) -> LocalRay:
        import importlib.util

        if importlib.util.find_spec("ray") is None:  # not imported here: Ray reads its settings once, at import
            raise RuntimeError(_RAY_INSTALL)
        self.dir = Path(tempfile.mkdtemp(prefix="fpray-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
        self.dir.chmod(0o700)
        if self._given_token is not None:
            self.token_path = Path(self._given_token)
        else:
            self.token_path = self.dir / "token"
            self.token_path.write_text(secrets.token_hex(32))
            self.token_path.chmod(0o600)
        self.port = _free_port()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAY_")}, **self.env()}
        cmd = [
            self._ray_cli(),
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--include-dashboard",
            "false",
            "--dashboard-host",
            "127.0.0.1",
            "--ray-client-server-port",
            str(_free_port()),
            "--temp-dir",
            str(self.dir / "t"),
            "--num-cpus",
            str(self.num_cpus),
            "--disable-usage-stats",
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=self.timeout)
        self._finalizer = weakref.finalize(self, _ray_cleanup, str(self.dir))
        if proc.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
        return self

    def worker_pids(self, name_part: str = "") -> list[int]:
        """This cluster's worker processes (``name_part``: only those whose title contains it,
        e.g. an actor class name)."""
        out = []
        for pid in _processes_mentioning(str(self.dir)):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if cmd.startswith("ray::") and name_part in cmd:
                out.append(pid)
        return out

    def stop(self) -> None:
        if self.dir is not None:
            _ray_cleanup(str(self.dir))
            if self._finalizer is not None:
                self._finalizer.detach()
            self.dir = None

    def __enter__(self) -> LocalRay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalRay({self.address if self.port else 'not started'})"


def _ray_cleanup(folder: str) -> None:
    """SIGTERM, then SIGKILL, every process of the cluster kept in ``folder``; remove it."""
    pids = _processes_mentioning(folder)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        if _wait_gone(pids, 2):
            break
    shutil.rmtree(folder, ignore_errors=True)
