"""The REST service: a FastAPI app over one :class:`~faceprint.gallery.Gallery`.

Every endpoint lives under ``/v1/``; the Pydantic models of :mod:`.schemas` are the OpenAPI
schema, served at ``/openapi.json``.  ``/docs`` is the Swagger UI page, served with its
JavaScript and CSS from the ``swagger-ui-bundle`` package under ``/docs/assets/`` --
nothing is fetched from a CDN, so it works offline.

Auth: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (see
:mod:`faceprint.service.auth`).  Missing, unknown or revoked keys get 401
``unauthorized``; a key without the needed scope gets 403 ``forbidden``.  ``/v1/health``
and ``/v1/ready`` need no key.

Errors are always ``{"error": {"code", "message", "request_id"}}``: a faceprint error
keeps its ``code`` and ``http_status`` (e.g. 422 ``image_decode_error`` naming the
uploaded file, 404 ``subject_not_found``, 413 ``image_too_large``); malformed requests
are 422 ``invalid_request``; anything unexpected is 500 ``internal_error`` with the
request id, logged with its traceback, never sent to the client.

Uploads: at most ``max_upload_bytes`` per file (413 ``image_too_large`` naming the
file) and ``max_files`` files per request.  A request whose body (declared by
``Content-Length`` or counted while it streams) is over ``max_upload_bytes *
max_files`` plus 1 MiB of form overhead is refused with 413 before the rest is read.

Endpoints are plain ``def`` functions: FastAPI runs them in its thread pool, and the
engine and gallery serialise what must be serialised with their own locks.

Layout: this module builds the app (:func:`create_app`: state, middleware, error handlers,
docs, routers); :mod:`.schemas` holds the request and response models; :mod:`.middleware`
request ids, logging, the body limit and the error bodies; :mod:`.deps` the dependencies
(gallery, engine, keys and scopes, uploads, analysis slots); :mod:`.routers` the endpoints,
one router per resource.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI

from faceprint import __version__
from faceprint.engine import upload_limits
from faceprint.errors import FaceprintError, InputError
from faceprint.gallery import Gallery
from faceprint.service.auth import check_key
from faceprint.service.deps import AnalysisSlots, ServiceBusy, ServiceSettings
from faceprint.service.middleware import ServiceMiddleware, error_response, install_error_handlers
from faceprint.service.routers import checks, detection, health, recognition, subjects
from faceprint.service.security import SecurityMiddleware, UiAuth

logger = logging.getLogger("faceprint.service")

MiB = 1024 * 1024
FORM_OVERHEAD = 1 * MiB  # room for multipart boundaries, headers and small form fields

#: in the order of /openapi.json and of route matching
ROUTERS = (health.router, subjects.router, recognition.router, checks.router, detection.router)


def _install_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI with its assets served from the installed swagger-ui-bundle (offline)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_path), name="swagger-ui-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> Any:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="faceprint API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )


def _lifespan(gallery: Gallery, flush_interval: float) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Flush the gallery's index to disk every ``flush_interval`` seconds while the app runs,
    and once more at shutdown; with a shared vector backend, check it against the store at
    the same pace and reconcile it when the counts differ (:meth:`Gallery.heal`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def flusher() -> None:
            while True:
                await asyncio.sleep(flush_interval)
                try:
                    await anyio.to_thread.run_sync(gallery.flush)
                    await anyio.to_thread.run_sync(gallery.heal)
                except FaceprintError as exc:  # a backend away: requests answer 503 meanwhile
                    logger.warning("periodic index check: %s", exc)
                except Exception:  # keep flushing; the store stays the source of truth
                    logger.exception("periodic index flush failed")

        task = asyncio.create_task(flusher())
        try:
            yield
        finally:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
            try:
                await anyio.to_thread.run_sync(gallery.flush)
            except Exception:
                logger.exception("index flush at shutdown failed")

    return lifespan


def create_app(
    gallery: Gallery,
    *,
    max_upload_bytes: int = 10 * MiB,
    require_keys: bool = True,
    max_files: int = 10,
    flush_interval: float = 5.0,
    library: Any = None,
    allowed_hosts: frozenset[str] | None = None,
    ui_auth: UiAuth | None = None,
    max_concurrent: int = 2,
    image_limits: Any = None,
) -> FastAPI:
    """The REST app over ``gallery`` (which the caller owns and closes).

    ``library``: a :class:`~faceprint.library.Library` whose web UI is served at ``/``
    behind the login of ``ui_auth`` (a fresh per-process secret when not given; its
    ``token`` opens ``/login?token=...``).  ``allowed_hosts``: the Host names answered
    (None: any; ``serve`` passes the loopback names when bound to loopback, see
    :func:`faceprint.service.security.allowed_hosts_for`).

    ``max_upload_bytes``: largest accepted file; ``max_files``: most files in one request;
    ``max_concurrent``: requests that decode and analyse photos at once (the rest wait, then
    503); ``image_limits``: the :class:`~faceprint.imaging.ImageLimits` of uploads (default:
    the ``upload_max_pixels`` setting, 24 MP: decode + detection under ~250 MB);
    ``require_keys=False`` turns authentication off (every request may do everything;
    only for a service bound to loopback); ``flush_interval``: seconds between index
    flushes to disk while the app runs (and once more at shutdown)."""
    if max_upload_bytes < 1:
        raise InputError(f"max_upload_bytes must be positive, got {max_upload_bytes}")
    max_request_bytes = max_upload_bytes * max_files + FORM_OVERHEAD
    store = gallery.store
    engine = gallery.engine

    app = FastAPI(
        title="faceprint",
        version=__version__,
        description=(
            "Offline face identity: enrol subjects, identify (1:N, open set at a stated FPIR), "
            "verify (1:1 at a stated FMR), detect faces.  Authenticate with `Authorization: Bearer <key>` "
            "or `X-API-Key: <key>` (create keys with `faceprint keys create`)."
        ),
        lifespan=_lifespan(gallery, flush_interval),
        docs_url=None,
        redoc_url=None,
    )
    _install_docs(app)
    if library is not None:
        from faceprint.service.web import mount_ui

        ui_auth = ui_auth or UiAuth()
        mount_ui(app, library, ui_auth)
    else:
        ui_auth = None
    # what the routes take through faceprint.service.deps
    app.state.gallery = gallery
    app.state.engine = engine
    app.state.service_settings = ServiceSettings(
        max_upload_bytes=max_upload_bytes,
        max_files=max_files,
        require_keys=require_keys,
        image_limits=image_limits or upload_limits(engine.settings),
    )
    app.state.slots = AnalysisSlots(max_concurrent)
    app.state.ui_auth = ui_auth
    # outermost first in the request's path: ServiceMiddleware (request id, log line, body
    # limit), then SecurityMiddleware (host, cross-site, UI login, API key before the body)
    app.add_middleware(
        SecurityMiddleware,
        allowed_hosts=allowed_hosts,
        ui=ui_auth,
        require_keys=require_keys,
        authenticate=lambda secret: check_key(store, secret),
    )
    app.add_middleware(ServiceMiddleware, max_request_bytes=max_request_bytes)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


__all__ = ["AnalysisSlots", "MiB", "ServiceBusy", "ServiceMiddleware", "create_app", "error_response"]
