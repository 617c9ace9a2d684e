"""Run the REST service with uvicorn: one process, requests served from a thread pool.

The gallery (and its vector index) lives in this one process; run one server per
database.  The index is written to disk by the gallery at most every ``save_interval``
seconds while writes happen, by the app every ``flush_interval`` seconds if it is still
dirty, and once more on shutdown (SIGINT/SIGTERM let in-flight requests finish first,
then the gallery is closed, which flushes the index).  If the process is killed
outright, the index on disk is stale and is rebuilt from the database, the source of
truth, on the next start -- nothing acknowledged is lost.

Several replicas of one gallery: point every ``faceprint serve`` at the same PostgreSQL
database and Milvus collection (``--db postgresql://... --vectors milvus://...``); they share
no memory, so any of them answers what another acknowledged (docs/scale-out.md).

On the embedded default, one writer per database: while a server runs, do not enrol or
delete with the CLI (or a second server) on the same file.  The gallery's in-memory index does not notice
templates another process adds, and when it next saves it stamps the file with the
store's *current* generation, so the other process's templates stay missing from the
index even after a restart (until ``Gallery.rebuild_index()``).  Reads (``subjects
list``, ``keys ...``) are safe; ``faceprint keys create/revoke`` is safe while serving.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from faceprint.errors import InputError
from faceprint.service.security import is_loopback

logger = logging.getLogger("faceprint.service")


def ui_token_from_env() -> str | None:
    """``FACEPRINT_UI_TOKEN`` when set (at least 16 characters), else None (a fresh secret)."""
    import os

    token = os.environ.get("FACEPRINT_UI_TOKEN", "").strip()
    if token and len(token) < 16:
        raise InputError("FACEPRINT_UI_TOKEN must have at least 16 characters")
    return token or None


def ui_login_url(host: str, port: int, token: str) -> str:
    """The address that logs a browser in to the web UI."""
    from urllib.parse import quote

    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/login?token={quote(token, safe='')}"


def log_config(level: str = "info") -> dict[str, Any]:
    """One line per record on stderr for uvicorn and faceprint; uvicorn's own access log is
    off because the service logs every request itself (method, path, status, ms, request
    id, key prefix) on the ``faceprint.service`` logger."""
    lvl = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": lvl, "propagate": False},
            "uvicorn.error": {"level": lvl},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "faceprint": {"handlers": ["stderr"], "level": lvl, "propagate": False},
        },
    }


@contextmanager
def _quiet_signals() -> Iterator[list[int]]:
    """uvicorn handles SIGINT/SIGTERM itself (graceful shutdown) and then re-raises the signal
    to the handler that was installed before it.  Make that handler a no-op that records it,
    so ``serve`` returns normally, the gallery is closed, and the process exits 0."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    handled = [s for s in (signal.SIGINT, signal.SIGTERM)]
    previous = {s: signal.signal(s, lambda sig, frame: received.append(sig)) for s in handled}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def serve(
    db: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    max_upload_bytes: int = 10 * 1024 * 1024,
    max_files: int = 10,
    require_keys: bool = True,
    engine: Any = None,
    log_level: str = "info",
    flush_interval: float = 5.0,
    graceful_timeout: int = 15,
    library: str | Path | None = None,
    ui_token: str | None = None,
    allowed_hosts: Sequence[str] = (),
    vectors: str | None = None,
) -> None:
    """Serve the gallery at ``db`` (a SQLite file or a ``postgresql://`` URL; ``vectors``: a
    ``milvus://`` URL, see :class:`~faceprint.gallery.Gallery`) on ``host:port`` until SIGINT/SIGTERM.

    Models, database and index are loaded before the port opens, so ``/v1/ready``
    answers ready from the first request.  ``require_keys=False`` is refused unless
    ``host`` is a loopback address.  ``library``: a photo library file whose web UI is
    served at ``/`` -- only on a loopback address (plain HTTP), behind the login of
    ``ui_token`` (a fresh secret when None: see :func:`ui_login_url`).  On loopback the
    server answers only to the Host names 127.0.0.1, localhost, [::1] and
    ``allowed_hosts`` (DNS rebinding)."""
    import uvicorn

    from faceprint.engine import Engine
    from faceprint.gallery import Gallery
    from faceprint.service.app import create_app

    if not require_keys and not is_loopback(host):
        raise InputError(f"refusing to serve without API keys on {host!r}: that is reachable from other machines; bind to 127.0.0.1 or use keys")
    if library is not None and not is_loopback(host):
        raise InputError(f"refusing to serve the library's web UI on {host!r}: it is plain HTTP; bind to 127.0.0.1")
    gallery = Gallery(db, engine or Engine(), vectors=vectors)
    lib = None
    try:
        if library is not None:
            from faceprint.library import Library

            lib = Library(library, gallery.engine)
        eng = gallery.engine
        _ = eng.detector, eng.embedder, eng.calibration  # load the models now, not on the first request
        n = len(gallery.index)
        logger.info("gallery %s: %d subject(s), %d indexed template(s), model %s", gallery.path, gallery.store.count_subjects(), n, gallery.model_id)
        from faceprint.service.security import UiAuth, allowed_hosts_for

        app = create_app(
            gallery,
            max_upload_bytes=max_upload_bytes,
            max_files=max_files,
            require_keys=require_keys,
            flush_interval=flush_interval,
            library=lib,
            allowed_hosts=allowed_hosts_for(host, allowed_hosts),
            ui_auth=UiAuth(ui_token) if lib is not None else None,
        )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=log_config(log_level),
            access_log=False,
            timeout_graceful_shutdown=graceful_timeout,
            server_header=False,
            lifespan="on",
        )
        with _quiet_signals() as received:
            uvicorn.Server(config).run()
        if received:
            logger.info("stopped by %s after a graceful shutdown", ", ".join(signal.Signals(s).name for s in received))
    finally:
        if lib is not None:
            lib.close()
        gallery.close()  # flushes the index, then closes the database
        logger.info("gallery closed%s", f"; index flushed to {gallery.index_path}" if gallery.index_path and not gallery.remote else "")


__all__ = ["serve", "is_loopback", "log_config", "ui_login_url", "ui_token_from_env"]
