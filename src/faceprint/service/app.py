"""The REST service: a FastAPI app over one :class:`~faceprint.gallery.Gallery`.

Every endpoint lives under ``/v1/``; the Pydantic models below are the OpenAPI schema,
served at ``/openapi.json``.  ``/docs`` is the Swagger UI page, served with its
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
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import threading
import time
import uuid
from contextlib import asynccontextmanager, contextmanager
from typing import Any, AsyncIterator, Callable, Iterator
from urllib.parse import quote

import anyio
from fastapi import Depends, FastAPI, File, Form, Query, Request, Security, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceprint import __version__
from faceprint.engine import untrusted_input, upload_limits
from faceprint.errors import FaceprintError, FaceRejected, ImageDecodeError, ImageTooLargeError, InputError
from faceprint.gallery import Gallery
from faceprint.service.auth import Forbidden, KeyInfo, Unauthorized, check_key
from faceprint.service.security import SecurityMiddleware, UiAuth, escape_log

logger = logging.getLogger("faceprint.service")

MiB = 1024 * 1024
FORM_OVERHEAD = 1 * MiB  # room for multipart boundaries, headers and small form fields
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_NO_AUTH = KeyInfo(id=0, name="(auth disabled)", prefix="noauth", scopes=("admin",), created="")


# ---------------------------------------------------------------------------------
# response / request models (the OpenAPI schema)
# ---------------------------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(_Model):
    code: str = Field(description="Stable machine-readable error code, e.g. no_face, quality_rejected, subject_not_found, unauthorized.")
    message: str = Field(description="Human-readable message naming the input it is about.")
    request_id: str | None = None
    reasons: list[str] | None = Field(default=None, description="quality_rejected / liveness_rejected: every check the face failed, or the evidence of an attack, in words.")


class ErrorOut(_Model):
    error: ErrorBody


class HealthOut(_Model):
    status: str = "ok"
    version: str


class ReadyOut(_Model):
    status: str = Field(description="ready or not_ready")
    checks: dict[str, str]


class SubjectOut(_Model):
    id: int
    name: str
    metadata: dict[str, Any]
    created: str
    updated: str
    templates: int
    models: list[str]


class TemplateInfo(_Model):
    id: int
    model_id: str
    face_score: float | None = None
    quality: float | None = None
    image_sha256: str | None = None
    source: str | None = None
    box: list[float] | None = None
    created: str


class SubjectDetailOut(SubjectOut):
    template_list: list[TemplateInfo]


class SubjectListOut(_Model):
    subjects: list[SubjectOut]
    total: int
    limit: int
    offset: int


class SubjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)


class SubjectPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200, description="New name (rename).")
    metadata: dict[str, Any] | None = Field(default=None, description="Replaces the whole metadata object.")


class DeletedOut(_Model):
    deleted: str
    templates: int = Field(description="Templates erased (rows zeroed in the database, vectors gone from the saved index).")
    kept_photos: int = Field(0, description="Photos kept for re-embedding that only this subject used, erased.")
    audit_entries_redacted: int = Field(0, description="Audit entries about the subject whose names, file names and hashes were removed.")
    wal_truncated: bool = Field(True, description="The write-ahead log was checkpointed and truncated (false: another reader held it; truncated later).")
    index_saved: bool = Field(True, description="The index file was rewritten without the subject's vectors.")


class Box(_Model):
    x: float
    y: float
    w: float
    h: float


class ComponentOut(_Model):
    raw: float | None = Field(description="The measured value (null when it cannot be measured here).")
    score: int | None = Field(description="0-100, higher is better.")
    unit: str


class QualityOut(_Model):
    unified: int = Field(description="Unified face quality, 0-100: predicted usefulness for recognition.")
    model: str = Field(description="Version of the quality model.")
    components: dict[str, ComponentOut]


class FaceOut(_Model):
    box: Box
    landmarks: list[list[float]]
    score: float
    detector: str
    quality: QualityOut | None = None


class DetectOut(_Model):
    source: str
    width: int
    height: int
    faces: list[FaceOut]


class RejectedOut(_Model):
    source: str
    code: str
    message: str
    reasons: list[str] | None = Field(default=None, description="quality_rejected / liveness_rejected: every check the face failed, or the evidence of an attack, in words.")


class EnrollOut(_Model):
    subject: SubjectOut
    added: int
    template_ids: list[int]
    rejected: list[RejectedOut]


class CandidateOut(_Model):
    subject_id: int
    name: str
    score: float
    template_id: int


class IdentifyOut(_Model):
    name: str | None = Field(description="The matched subject, or null when nobody reaches the open-set threshold.")
    match: bool
    score: float | None
    threshold: float
    fpir: float
    gallery_templates: int
    model_id: str
    candidates: list[CandidateOut]
    note: str | None = None
    face: FaceOut | None = None
    quality: QualityOut | None = None
    low_quality: bool | None = Field(default=None, description="The probe's unified quality is below the quality_mark_below setting.")


class LivenessOut(_Model):
    live: bool = Field(description="The face counts as a live person (score >= threshold).")
    score: float = Field(description="0-1, higher = more likely live.")
    threshold: float
    mode: str = Field(description="two-class (trained on live faces and attacks) or one-class (live faces only).")
    model: str = Field(description="Version of the presentation-attack model.")
    detectors: dict[str, float] = Field(description="Each detector's own liveness score (texture, context; or one_class).")
    evidence: list[str] = Field(description="What pointed at an attack, in words (empty when nothing did).")
    operating_point: dict[str, Any] | None = Field(default=None, description="APCER and BPCER the model's training measured at this threshold, and on what data.")


class SyntheticOut(_Model):
    synthetic: bool = Field(description="The face counts as generated (score >= threshold).")
    score: float = Field(description="0-1, higher = more likely generated (GAN / diffusion).")
    threshold: float
    model: str
    evidence: list[str]


class ConsistencyOut(_Model):
    subject: str
    best: float = Field(description="Highest cosine similarity of the new face to a reference.")
    mean: float
    reference_mean: float = Field(description="Mean over references of each one's best similarity to the others.")
    reference_std: float
    z: float = Field(description="(best - reference_mean) / reference_std: how far below the references' own agreement.")
    outlier: bool = Field(description="z below the threshold: another person, or a face made to resemble the subject.")
    references: int


class VideoLivenessOut(_Model):
    input: str
    kind: str = Field(description="video")
    live: bool = Field(description="Motion like a 3-D head AND frames that look live (AND the challenge met, when one was given).")
    score: float = Field(description="0-1, higher = more likely live: the smaller of the motion and frame scores.")
    threshold: float
    reason: str
    motion: dict[str, Any] = Field(description="The motion check: planar residual score (% of face width), threshold, informative frame pairs.")
    pad: dict[str, Any] = Field(description="The single-image detectors on sampled frames: median score, frames scored.")
    challenge: dict[str, Any] | None = Field(default=None, description="With a challenge: whether, and when, each requested head turn was met.")


class FaceCheckOut(_Model):
    source: str
    face: FaceOut
    liveness: LivenessOut | None = None
    synthetic: SyntheticOut | None = None


class TemplateOut(_Model):
    model_id: str
    source: str
    dim: int
    face: FaceOut | None = None
    quality: QualityOut | None = None
    liveness: LivenessOut | None = None


class VerifyOut(_Model):
    match: bool
    score: float
    threshold: float
    fmr: float
    score_fmr: float
    model_id: str
    calibration: str
    a: TemplateOut | None = Field(default=None, description="photo-vs-photo: the face used in file_a")
    b: TemplateOut | None = Field(default=None, description="photo-vs-photo: the face used in file_b")
    subject: str | None = Field(default=None, description="photo-vs-subject: the subject compared against")


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing, unknown or revoked API key"},
    403: {"model": ErrorOut, "description": "the key lacks the needed scope"},
    422: {"model": ErrorOut, "description": "invalid request or unusable input"},
    429: {"model": ErrorOut, "description": "too many failed API key attempts from this client or for this key prefix; retry after `Retry-After` seconds"},
}
_UPLOAD_ERRORS = {
    **_ERRORS,
    413: {"model": ErrorOut, "description": "an upload is over the size limit"},
    503: {"model": ErrorOut, "description": "every analysis slot stayed busy; retry in a few seconds"},
}


# ---------------------------------------------------------------------------------
# middleware: request ids, per-request log line, body size limit, last-resort 500
# ---------------------------------------------------------------------------------
class _BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int, multipart: bool) -> None:
        super().__init__(status_code=413, detail=f"request body is over the limit of {limit:,} bytes")
        self.multipart = multipart


class ServiceMiddleware:
    """Pure ASGI middleware (it does not buffer bodies or break streaming)."""

    def __init__(self, app: ASGIApp, max_request_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        rid = headers.get("x-request-id", "")
        if not _REQUEST_ID.match(rid):
            rid = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        status = {"code": 0, "started": False}
        limit = self.max_request_bytes
        multipart = headers.get("content-type", "").lower().startswith("multipart/")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit, multipart)
            return message

        try:
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                response = error_response(
                    413,
                    "image_too_large" if multipart else "request_too_large",
                    f"request body of {int(declared):,} bytes is over the limit of {limit:,} bytes",
                    rid,
                )
                response.headers["connection"] = "close"
                await response(scope, receive, send_wrapper)
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except Exception:
            logger.exception("unhandled error in %s %s (request id %s)", escape_log(scope.get("method"), 20), escape_log(scope.get("path")), rid)
            if not status["started"]:
                response = error_response(500, "internal_error", f"internal error; quote request id {rid} when reporting it", rid)
                await response(scope, receive, send_wrapper)
            else:  # the response is under way: nothing sensible can be sent any more
                status["code"] = 500
        finally:
            ms = (time.perf_counter() - t0) * 1000
            key = state.get("key_prefix", "-")
            logger.info(
                "%s %s %s %.1fms request_id=%s key=%s",
                escape_log(scope.get("method"), 20),
                escape_log(scope.get("path")),
                status["code"],
                ms,
                rid,
                key,
                extra={
                    "http_method": escape_log(scope.get("method"), 20),
                    "http_path": escape_log(scope.get("path")),
                    "http_status": status["code"],
                    "duration_ms": round(ms, 2),
                    "request_id": rid,
                    "key_prefix": key,
                },
            )


def error_response(status: int, code: str, message: str, request_id: str | None, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "request_id": request_id, **extra}}, status_code=status, headers=headers)


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large", 415: "unsupported_media_type"}


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FaceprintError)
    async def faceprint_error(request: Request, exc: FaceprintError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        if exc.http_status >= 500:
            logger.error("faceprint error %s (request id %s): %s", exc.code, _request_id(request), exc)
        extra = {"reasons": exc.reasons} if isinstance(exc, FaceRejected) else {}
        return error_response(exc.http_status, exc.code, str(exc), _request_id(request), headers, **extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e.get("loc", ()))
            details.append({"loc": loc, "msg": e.get("msg", "invalid"), "type": e.get("type", "")})
        message = "; ".join(f"{d['loc']}: {d['msg']}" for d in details) or "invalid request"
        body = {"error": {"code": "invalid_request", "message": message, "request_id": _request_id(request), "details": details}}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # a body that does not parse (bad JSON, broken multipart): a malformed request, 422 like the rest
            return error_response(422, "invalid_request", f"the request body could not be read: {exc.detail}", _request_id(request))
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        if isinstance(exc, _BodyTooLarge) and exc.multipart:
            code = "image_too_large"
        if exc.status_code == 413:
            response = error_response(413, code, str(exc.detail), _request_id(request), {"connection": "close"})
        else:
            response = error_response(exc.status_code, code, str(exc.detail), _request_id(request), getattr(exc, "headers", None))
        return response


# ---------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------
def _clean_filename(name: str | None, fallback: str) -> str:
    """The upload's file name for messages and provenance: last path part, printable, short."""
    if not name:
        return fallback
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if ord(c) >= 32 and c != "\x7f").strip()
    return name[:200] or fallback


class ServiceBusy(FaceprintError):
    """Every analysis slot stayed busy while the request waited."""

    exit_code = 1
    http_status = 503
    code = "busy"


class AnalysisSlots:
    """At most ``n`` requests decode and analyse photos at once (each decoded photo can hold
    hundreds of MB); the others wait up to ``wait`` seconds, then get 503 ``busy``."""

    def __init__(self, n: int, wait: float = 60.0) -> None:
        self._sem = threading.BoundedSemaphore(max(1, int(n)))
        self.wait = wait

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if not self._sem.acquire(timeout=self.wait):
            raise ServiceBusy(f"the server is busy analysing other photos; retry in a few seconds (waited {self.wait:.0f} s)")
        try:
            yield
        finally:
            self._sem.release()


def _read_upload(upload: UploadFile, limit: int, field: str) -> io.BytesIO:
    """Read at most ``limit + 1`` bytes of an upload; a named in-memory stream for the engine."""
    name = _clean_filename(upload.filename, field)
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLargeError(f"upload is over the limit of {limit:,} bytes", source=name)
    if not data:
        raise ImageDecodeError("empty upload (0 bytes)", source=name)
    stream = io.BytesIO(data)
    stream.name = name  # type: ignore[attr-defined]  # engine and gallery name the input by this
    return stream


# ---------------------------------------------------------------------------------
# the app
# ---------------------------------------------------------------------------------
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
    slots = AnalysisSlots(max_concurrent)
    limits = image_limits or upload_limits(engine.settings)

    @contextmanager
    def analysing() -> Iterator[None]:
        """One analysis slot, and the upload limits for every photo decoded inside it."""
        with slots(), untrusted_input(limits):
            yield

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def flusher() -> None:
            while True:
                await asyncio.sleep(flush_interval)
                try:
                    await anyio.to_thread.run_sync(gallery.flush)
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

    app = FastAPI(
        title="faceprint",
        version=__version__,
        description=(
            "Offline face identity: enrol subjects, identify (1:N, open set at a stated FPIR), "
            "verify (1:1 at a stated FMR), detect faces.  Authenticate with `Authorization: Bearer <key>` "
            "or `X-API-Key: <key>` (create keys with `faceprint keys create`)."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    _install_docs(app)
    if library is not None:
        from faceprint.library.web import mount_ui

        ui_auth = ui_auth or UiAuth()
        mount_ui(app, library, ui_auth)
    else:
        ui_auth = None
    app.state.gallery = gallery
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
    _install_error_handlers(app)

    bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
    api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")

    def need(scope: str) -> Callable[..., KeyInfo]:
        def dependency(
            request: Request,
            credentials: HTTPAuthorizationCredentials | None = Security(bearer),
            x_api_key: str | None = Security(api_key_header),
        ) -> KeyInfo:
            if not require_keys:
                request.state.key_prefix = _NO_AUTH.prefix
                return _NO_AUTH
            # SecurityMiddleware checked the key from the headers before the body was read (and
            # refused the request without one); the two Security parameters above only document
            # the schemes in /openapi.json
            info = getattr(request.state, "key", None)
            if info is None:
                raise Unauthorized("no API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`")
            request.state.key_prefix = info.prefix
            if not info.allows(scope):
                raise Forbidden(f"key {info.prefix} ({info.name}) has scope(s) {', '.join(info.scopes)}; this request needs {scope!r}")
            return info

        dependency.__name__ = f"need_{scope}"
        return dependency

    read_key = need("read")
    enroll_key = need("enroll")

    def actor(key: KeyInfo) -> str:
        return f"key:{key.prefix}"

    # -- probes ----------------------------------------------------------------------
    @app.get("/v1/health", response_model=HealthOut, tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness: the process answers (no key needed)."""
        return {"status": "ok", "version": __version__}

    @app.get("/v1/ready", response_model=ReadyOut, tags=["service"], responses={503: {"model": ReadyOut, "description": "not ready"}})
    def ready() -> Any:
        """Readiness: models loaded, database reachable, index loaded (no key needed)."""
        checks: dict[str, str] = {}
        ok = True
        try:
            engine.detector, engine.embedder, engine.calibration
            checks["models"] = f"ok ({engine.model_id})"
        except Exception as exc:
            ok, checks["models"] = False, str(exc) or type(exc).__name__
        try:
            store.read("SELECT 1")
            checks["database"] = "ok"
        except Exception as exc:
            ok, checks["database"] = False, str(exc) or type(exc).__name__
        if ok:
            try:
                checks["index"] = f"ok ({len(gallery.index)} templates)"
            except Exception as exc:
                ok, checks["index"] = False, str(exc) or type(exc).__name__
        else:
            checks["index"] = "not checked"
        body = {"status": "ready" if ok else "not_ready", "checks": checks}
        return body if ok else JSONResponse(body, status_code=503)

    # -- subjects ----------------------------------------------------------------------
    @app.get("/v1/subjects", response_model=SubjectListOut, tags=["subjects"], responses=_ERRORS)
    def list_subjects(
        limit: int = Query(100, ge=1, le=1000, description="Page size."),
        offset: int = Query(0, ge=0, le=2**62, description="Subjects to skip (ordered by name)."),
        key: KeyInfo = Depends(read_key),
    ) -> dict[str, Any]:
        """Enrolled subjects, ordered by name, one page at a time."""
        rows = gallery.subjects(limit=limit, offset=offset)
        return {"subjects": [s.to_dict() for s in rows], "total": store.count_subjects(), "limit": limit, "offset": offset}

    @app.post("/v1/subjects", response_model=SubjectOut, status_code=201, tags=["subjects"], responses={**_ERRORS, 409: {"model": ErrorOut}})
    def create_subject(body: SubjectCreate, response: Response, key: KeyInfo = Depends(enroll_key)) -> dict[str, Any]:
        """Create a subject with no faces yet (add them with POST /v1/subjects/{name}/faces)."""
        subject = store.create_subject(body.name, body.metadata, actor=actor(key))
        response.headers["Location"] = f"/v1/subjects/{quote(subject.name, safe='')}"
        return subject.to_dict()

    @app.get("/v1/subjects/{name:path}", response_model=SubjectDetailOut, tags=["subjects"], responses={**_ERRORS, 404: {"model": ErrorOut}})
    def get_subject(name: str, key: KeyInfo = Depends(read_key)) -> dict[str, Any]:
        """One subject and where each of its templates came from."""
        subject = gallery.subject(name)
        templates = store.templates(subject_id=subject.id)
        return {**subject.to_dict(), "template_list": [t.to_dict() for t in templates]}

    @app.patch("/v1/subjects/{name:path}", response_model=SubjectOut, tags=["subjects"], responses={**_ERRORS, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}})
    def patch_subject(name: str, body: SubjectPatch, key: KeyInfo = Depends(enroll_key)) -> dict[str, Any]:
        """Rename and/or replace the metadata (both in one transaction)."""
        if body.name is None and body.metadata is None:
            raise InputError("nothing to change: give name and/or metadata")
        return store.update_subject(name, new_name=body.name, metadata=body.metadata, actor=actor(key)).to_dict()

    @app.delete("/v1/subjects/{name:path}", response_model=DeletedOut, tags=["subjects"], responses={**_ERRORS, 404: {"model": ErrorOut}})
    def delete_subject(name: str, key: KeyInfo = Depends(enroll_key)) -> dict[str, Any]:
        """Erase a subject from every file: database rows zeroed, kept photos and audit details
        gone, write-ahead log truncated, index saved without its vectors; says what was erased."""
        erased = gallery.erase(name, actor=actor(key))
        return {"deleted": name, **erased}

    @app.post("/v1/subjects/{name:path}/faces", response_model=EnrollOut, status_code=201, tags=["subjects"], responses={**_UPLOAD_ERRORS, 404: {"model": ErrorOut}})
    def add_faces(
        name: str,
        files: list[UploadFile] = File(..., description="One or more photos of the subject (one template each)."),
        face: str = Form("single", description="Which face when a photo has several: single (refuse), largest, center, or an index."),
        create: bool = Form(True, description="Create the subject if it does not exist."),
        check_quality: bool = Form(True, description="Refuse faces that fail the quality gate (quality_rejected, with reasons)."),
        check_liveness: bool | None = Form(None, description="Refuse faces that look like a print or a screen (liveness_rejected, with the evidence); default: the server's require_liveness_enrol setting."),
        key: KeyInfo = Depends(enroll_key),
    ) -> dict[str, Any]:
        """Enrol photos.  Photos that fail (no face, several faces, poor quality) are listed in
        `rejected` with the reason; if all fail, the first error is returned."""
        if len(files) > max_files:
            raise InputError(f"{len(files)} files in one request; at most {max_files} are accepted")
        sources = [_read_upload(f, max_upload_bytes, "files") for f in files]
        with analysing():
            result = gallery.enroll(name, sources, face=face, create=create, check_quality=check_quality, check_liveness=check_liveness, actor=actor(key))
        return result.to_dict()

    @app.post("/v1/subjects/{name:path}/consistency", response_model=ConsistencyOut, tags=["subjects"], responses={**_UPLOAD_ERRORS, 404: {"model": ErrorOut}})
    def consistency(
        name: str,
        file: UploadFile = File(..., description="New photo claimed to be this subject."),
        face: str = Query("largest", description="largest, center, single, or an index."),
        z: float = Query(-3.0, description="Flag the face as an outlier below this z-score."),
        key: KeyInfo = Depends(read_key),
    ) -> dict[str, Any]:
        """Identity-aware check: how consistent is a new face with the subject's enrolled
        references (an outlier score over their templates)?"""
        with analysing():
            res = gallery.consistency(_read_upload(file, max_upload_bytes, "file"), name, face=face, z_threshold=z)
        return {"subject": name, **res.to_dict()}

    # -- recognition ---------------------------------------------------------------------
    @app.post("/v1/identify", response_model=IdentifyOut, tags=["recognition"], responses=_UPLOAD_ERRORS)
    def identify(
        file: UploadFile = File(..., description="Photo of the person to look up."),
        k: int = Query(5, ge=1, le=100, description="How many candidates to list."),
        fpir: float = Query(1e-3, gt=0, lt=1, description="False-positive identification rate of the open-set decision."),
        face: str = Query("largest", description="largest, center, single, or an index."),
        key: KeyInfo = Depends(read_key),
    ) -> dict[str, Any]:
        """Who is this?  Top-k subjects and the open-set decision (`name` is null when nobody matches)."""
        probe = _read_upload(file, max_upload_bytes, "file")
        with analysing():
            return gallery.identify(probe, k=k, fpir=fpir, face=face).to_dict()

    @app.post("/v1/verify", response_model=VerifyOut, response_model_exclude_none=True, tags=["recognition"], responses={**_UPLOAD_ERRORS, 404: {"model": ErrorOut}})
    def verify(
        file_a: UploadFile | None = File(None, description="photo-vs-photo: first photo"),
        file_b: UploadFile | None = File(None, description="photo-vs-photo: second photo"),
        file: UploadFile | None = File(None, description="photo-vs-subject: the photo"),
        subject: str | None = Form(None, description="photo-vs-subject: the enrolled subject's name"),
        fmr: float | None = Query(None, gt=0, lt=1, description="False-match rate of the decision threshold (default: the engine's, 1e-3)."),
        face: str = Query("largest", description="largest, center, single, or an index."),
        require_liveness: bool | None = Query(None, description="Refuse photos whose face looks like a print or a screen (liveness_rejected); default: the server's require_liveness_verify setting."),
        key: KeyInfo = Depends(read_key),
    ) -> dict[str, Any]:
        """1:1: `file_a` + `file_b` (two photos), or `file` + `subject` (a photo against an enrolled subject)."""
        if file_a is not None and file_b is not None and file is None and subject is None:
            a = _read_upload(file_a, max_upload_bytes, "file_a")
            b = _read_upload(file_b, max_upload_bytes, "file_b")
            with analysing():
                return engine.verify(a, b, fmr=fmr, face=face, require_liveness=require_liveness).to_dict()
        if file is not None and subject is not None and file_a is None and file_b is None:
            probe = _read_upload(file, max_upload_bytes, "file")
            with analysing():
                decision = gallery.verify(probe, subject, fmr=fmr, face=face, require_liveness=require_liveness)
            return {**decision.to_dict(), "subject": subject}
        raise InputError("give either file_a and file_b (photo vs photo), or file and subject (photo vs enrolled subject)")

    @app.post("/v1/liveness", response_model=FaceCheckOut, response_model_exclude_none=True, tags=["recognition"], responses=_UPLOAD_ERRORS)
    def liveness(
        file: UploadFile = File(..., description="Photo of the face to check."),
        face: str = Query("largest", description="largest, center, single, or an index."),
        key: KeyInfo = Depends(read_key),
    ) -> dict[str, Any]:
        """Presentation-attack check of one face: a live person, or a print / screen held to the
        camera?  Score 0-1 (higher = more likely live), each detector's score, the evidence."""
        with analysing():
            image, det = engine.pick(_read_upload(file, max_upload_bytes, "file"), face=face)
            return {"source": image.source, "face": det.to_dict(), "liveness": engine.liveness_of(image, det).to_dict()}

    @app.post("/v1/liveness/video", response_model=VideoLivenessOut, response_model_exclude_none=True, tags=["recognition"], responses=_UPLOAD_ERRORS)
    def liveness_video(
        file: UploadFile = File(..., description="A short clip of the face (mp4, mov, webm, avi, mkv); the first 180 frames are read."),
        challenge: str | None = Query(None, description="Head turns asked of the person, in order, e.g. 'left,right' (the person's own left)."),
        turn_angle: float = Query(15.0, gt=0, le=60, description="Degrees each turn must reach."),
        within: float = Query(4.0, gt=0, le=30, description="Seconds allowed for each turn."),
        key: KeyInfo = Depends(read_key),
    ) -> dict[str, Any]:
        """Liveness of a clip: does the face move like a 3-D head or like a flat picture, do the
        frames look live, and (with `challenge`) did the head turn as asked, in time?"""
        from faceprint.liveness.video import is_video, video_liveness

        stream = _read_upload(file, max_upload_bytes, "file")
        if not is_video(stream.name, stream.getvalue()[:16]):  # type: ignore[attr-defined]
            raise InputError("not a video (mp4, mov, webm, avi, mkv); for a photo use /v1/liveness", source=stream.name)  # type: ignore[attr-defined]
        with analysing():
            return video_liveness(engine, stream, challenge=challenge, turn_angle=turn_angle, within=within)

    @app.post("/v1/synthetic", response_model=FaceCheckOut, response_model_exclude_none=True, tags=["recognition"], responses=_UPLOAD_ERRORS)
    def synthetic(
        file: UploadFile = File(..., description="Photo of the face to check."),
        face: str = Query("largest", description="largest, center, single, or an index."),
        key: KeyInfo = Depends(read_key),
    ) -> dict[str, Any]:
        """Synthetic-face check of one face: generated (GAN / diffusion) or photographed?
        Score 0-1 (higher = more likely generated)."""
        with analysing():
            image, det = engine.pick(_read_upload(file, max_upload_bytes, "file"), face=face)
            return {"source": image.source, "face": det.to_dict(), "synthetic": engine.synthetic_of(image, det).to_dict()}

    @app.post("/v1/detect", response_model=DetectOut, tags=["recognition"], responses=_UPLOAD_ERRORS)
    def detect(file: UploadFile = File(..., description="Any photo."), key: KeyInfo = Depends(read_key)) -> dict[str, Any]:
        """Every face: box, 5 landmarks, score (highest score first) and quality (without
        recognizability: no template is made here)."""
        with analysing():
            image = engine.load(_read_upload(file, max_upload_bytes, "file"))
            faces = engine.detect(image)
            out = [{**f.to_dict(), "quality": engine.assess(image, f, engine.align(image, f)).to_dict()} for f in faces]
            return {"source": image.source, "width": image.width, "height": image.height, "faces": out}

    return app


__all__ = ["create_app", "ServiceMiddleware", "MiB"]
