"""Milvus Lite's gRPC server for :class:`faceprint.scale.local.LocalMilvus`, run as a script
(``python _milvus_server.py --data-dir D --port-file F [--port N] [--parent PID]``).

Why not ``milvus-lite server``: gRPC sets ``SO_REUSEPORT`` on Linux by default, so a second
server on a port already in use binds without an error and the kernel shares the connections
between the two -- a ``free_port()`` race would hand a test someone else's server.  Here the
server binds with ``grpc.so_reuseport`` off (a port in use is an error, and nobody can join
ours later), on 127.0.0.1 only, port 0 by default (the kernel picks a free one: no race), and
writes the port it got to ``--port-file`` once it serves.  SIGTERM / SIGINT stop it gracefully
(the database is closed and its LOCK released); so does the death of ``--parent``, so a test
run that dies leaves no server behind."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from concurrent import futures

import grpc
from milvus_lite.adapter.grpc.servicer import MilvusServicer
from milvus_lite.db import MilvusLite
from pymilvus.grpc_gen import milvus_pb2_grpc

_MAX_MESSAGE = 256 * 1024 * 1024  # as milvus_lite.adapter.grpc.server (and Milvus Standalone)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--port-file", required=True, help="written (atomically) with the bound port once the server serves")
    ap.add_argument("--port", type=int, default=0, help="0: a free port the kernel picks")
    ap.add_argument("--parent", type=int, default=0, help="stop when this process is gone")
    ap.add_argument("--max-workers", type=int, default=10)
    args = ap.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    db = MilvusLite(args.data_dir)
    try:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=args.max_workers),
            options=[("grpc.max_receive_message_length", _MAX_MESSAGE), ("grpc.max_send_message_length", _MAX_MESSAGE), ("grpc.so_reuseport", 0)],
        )
        milvus_pb2_grpc.add_MilvusServiceServicer_to_server(MilvusServicer(db), server)
        try:
            port = server.add_insecure_port(f"127.0.0.1:{args.port}")
        except RuntimeError as e:  # grpc's "Failed to bind": the port is taken
            print(f"cannot listen on 127.0.0.1:{args.port} (in use?): {e}", flush=True)
            return 2
        server.start()
        tmp = f"{args.port_file}.tmp"
        with open(tmp, "w") as fh:
            fh.write(f"{port}\n")
        os.replace(tmp, args.port_file)
        print(f"milvus-lite serving on 127.0.0.1:{port} (data dir {args.data_dir})", flush=True)
        while not stop.wait(0.5):
            if args.parent and os.getppid() != args.parent:
                print(f"parent {args.parent} is gone: stopping", flush=True)
                break
        server.stop(grace=5).wait()
    finally:
        db.close()
    print("milvus-lite stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
