"""The throwaway engines of faceprint.scale.local: each starts, listens on 127.0.0.1 only, does
a real round trip with its driver, keeps its data through a SIGKILL and a restart on the same
port, and leaves nothing behind when stopped.  Skipped, saying what to install, where an
engine or its driver is missing."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from faceprint.scale.local import LocalMilvus, LocalPostgres, postgres_bindir


def _listeners(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, hexport = fields[1].split(":")
            if fields[3] != "0A" or int(hexport, 16) != port:  # 0A: LISTEN
                continue
            raw = b"".join(bytes.fromhex(addr[i : i + 8])[::-1] for i in range(0, len(addr), 8))  # host-order 32-bit words
            found.add(socket.inet_ntop(family, raw))
    return found


def test_listeners_reads_proc_net() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert _listeners(s.getsockname()[1]) == {"127.0.0.1"}


def _running(pid: int | None) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return pid is not None and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _need_postgres():
    try:
        postgres_bindir()
    except RuntimeError as e:
        pytest.skip(str(e))
    return pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'psycopg[binary]' (or faceprint[scale])")


def test_no_url_before_start() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        LocalPostgres().url  # noqa: B018
    with pytest.raises(RuntimeError, match="not started"):
        LocalMilvus().url  # noqa: B018


def test_postgres_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import faceprint.scale.local as local

    monkeypatch.setattr(local, "PG_LIB", tmp_path)
    monkeypatch.setattr(local.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="PostgreSQL is not installed: apt-get install postgresql"):
        LocalPostgres().start()


@pytest.mark.slow
def test_postgres_round_trip_crash_restart_stop() -> None:
    psycopg = _need_postgres()
    with LocalPostgres(durable=True) as pg:
        assert pg.url == f"postgresql://faceprint@127.0.0.1:{pg.port}/faceprint"
        assert _listeners(pg.port) == {"127.0.0.1"}, "PostgreSQL must listen on 127.0.0.1 only"
        with psycopg.connect(pg.url) as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
            conn.execute("INSERT INTO t VALUES (1, 'ada'), (2, 'bob')")
            conn.commit()
            assert conn.execute("SELECT name FROM t ORDER BY id").fetchall() == [("ada",), ("bob",)]
        postmaster, port, folder = pg.pid, pg.port, pg.dir
        pg.kill()
        assert pg.pid is None and not _listeners(port)
        assert not _running(postmaster)
        pg.restart()
        assert (pg.port, pg.dir) == (port, folder) and pg.pid not in (None, postmaster)
        with psycopg.connect(pg.url) as conn:  # committed before the crash: still there
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
    assert not folder.exists() and not _listeners(port)


@pytest.mark.slow
def test_postgres_fast_by_default_and_restart_of_a_running_server() -> None:
    psycopg = _need_postgres()
    with LocalPostgres() as pg:
        with psycopg.connect(pg.url) as conn:
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (7)")
            conn.commit()
        first = pg.pid
        pg.restart()
        assert pg.pid != first
        with psycopg.connect(pg.url) as conn:
            assert conn.execute("SELECT x FROM t").fetchone() == (7,)


def _need_milvus():
    pytest.importorskip("milvus_lite", reason="milvus-lite is not installed: pip install 'milvus-lite==3.2.2' (or faceprint[scale])")
    return pytest.importorskip("pymilvus", reason="pymilvus is not installed: pip install 'pymilvus==3.0.2' (or faceprint[scale])")


@pytest.mark.slow
def test_milvus_round_trip_crash_restart_stop() -> None:
    pymilvus = _need_milvus()
    import numpy as np

    vectors = np.random.default_rng(0).random((10, 8), dtype=np.float32)
    with LocalMilvus() as mv:
        assert mv.url == f"milvus://127.0.0.1:{mv.port}" and mv.address == f"127.0.0.1:{mv.port}"
        # gRPC listens on a dual-stack socket: 127.0.0.1 shows as its IPv4-mapped form in tcp6
        assert _listeners(mv.port) <= {"127.0.0.1", "::ffff:127.0.0.1"} and _listeners(mv.port), "Milvus must listen on 127.0.0.1 only"
        assert (mv.dir / "milvus.log").read_text().startswith("milvus-lite serving on 127.0.0.1")
        client = pymilvus.MilvusClient(uri=f"http://{mv.address}")
        try:
            client.create_collection("faces", dimension=8)
            assert client.insert("faces", [{"id": i, "vector": v.tolist()} for i, v in enumerate(vectors)])["insert_count"] == 10
            assert client.search("faces", data=[vectors[3].tolist()], limit=1)[0][0]["id"] == 3
        finally:
            client.close()
        server, port, folder = mv.pid, mv.port, mv.dir
        mv.kill()
        assert mv.pid is None and not _listeners(port)
        mv.restart()
        assert (mv.port, mv.dir) == (port, folder) and mv.pid not in (None, server)
        client = pymilvus.MilvusClient(uri=f"http://{mv.address}")
        try:
            assert client.list_collections() == ["faces"]
            client.load_collection("faces")  # Milvus Lite brings collections back released
            assert client.search("faces", data=[vectors[7].tolist()], limit=1)[0][0]["id"] == 7
            assert len(client.query("faces", filter="id >= 0", output_fields=["id"])) == 10
        finally:
            client.close()
        proc = mv.proc
    assert proc.returncode == 0, "stop() is a graceful stop"
    assert not folder.exists() and not _listeners(port)


@pytest.mark.slow
def test_milvus_will_not_share_its_port() -> None:
    """gRPC's default SO_REUSEPORT would let a second server bind a port in use without an
    error; LocalMilvus refuses a taken port at a restart, and nobody can join its port."""
    _need_milvus()
    with LocalMilvus(timeout=30) as mv:
        with socket.socket() as intruder:  # SO_REUSEPORT on, as another gRPC server would have it
            intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            with pytest.raises(OSError):
                intruder.bind(("127.0.0.1", mv.port))
        mv.kill()
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", mv.port))
            squatter.listen()
            with pytest.raises(RuntimeError, match="in use"):
                mv.restart()
        mv.restart()
        assert mv.pid is not None


@pytest.mark.slow
def test_milvus_stops_when_its_parent_dies(tmp_path: Path) -> None:
    _need_milvus()
    import subprocess
    import sys

    code = "import os, sys; from faceprint.scale.local import LocalMilvus; m = LocalMilvus(sys.argv[1]).start(); print(m.pid, flush=True); os._exit(0)"
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 30
    while _running(pid):
        assert time.monotonic() < deadline, "the orphaned server kept running"
        time.sleep(0.1)
    (log,) = tmp_path.glob("faceprint-milvus-*/milvus.log")
    assert "is gone: stopping" in log.read_text()
