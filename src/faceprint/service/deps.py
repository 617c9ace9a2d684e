"""The FastAPI dependencies of the REST routes (:mod:`faceprint.service.routers`).

:func:`~faceprint.service.app.create_app` puts what the routes work on in ``app.state``
(``gallery``, ``engine``, ``service_settings``, ``slots``; the web UI takes its library when mounted); the routes take it
through the dependencies here, so a test can swap any of them with
``app.dependency_overrides[get_engine] = ...``.  These only read ``app.state``: they are
``async`` so that FastAPI calls them on the event loop instead of sending each to a thread.

Keys: :class:`~faceprint.service.security.SecurityMiddleware` checks the API key from the
headers before the body is read and leaves the :class:`KeyInfo` in ``request.state.key``;
``read_key`` / ``enroll_key`` (``need(scope)``) check its scope (403
``forbidden``) and return it.

Uploads are read whole into memory, at most ``max_upload_bytes`` per file (413
``image_too_large`` naming the file) and ``max_files`` files per request; photos are
decoded and analysed inside ``with analysing():`` (at most ``max_concurrent`` requests at
once, the rest wait, then 503 ``busy``)."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from fastapi import Depends, Request, Security, UploadFile
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from faceprint.engine import Engine, untrusted_input
from faceprint.errors import FaceprintError, ImageDecodeError, ImageTooLargeError, InputError
from faceprint.gallery import Gallery
from faceprint.gallery.store import Store
from faceprint.imaging import ImageLimits
from faceprint.service.auth import Forbidden, KeyInfo, Unauthorized

_NO_AUTH = KeyInfo(id=0, name="(auth disabled)", prefix="noauth", scopes=("admin",), created="")


@dataclass(frozen=True)
class ServiceSettings:
    """The limits ``create_app`` was given (``app.state.service_settings``)."""

    max_upload_bytes: int
    max_files: int
    require_keys: bool
    image_limits: ImageLimits  # of photos decoded from uploads


# ---------------------------------------------------------------------------------
# what create_app put on app.state
# ---------------------------------------------------------------------------------
async def get_gallery(request: Request) -> Gallery:
    return request.app.state.gallery


async def get_store(gallery: Gallery = Depends(get_gallery)) -> Store:
    return gallery.store


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.service_settings


# ---------------------------------------------------------------------------------
# API keys
# ---------------------------------------------------------------------------------
bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


def need(scope: str) -> Callable[..., KeyInfo]:
    """A dependency returning the request's key when it allows ``scope`` (403 when not;
    401 when there is none).  With ``require_keys=False`` every request may do everything."""

    def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Security(bearer),
        x_api_key: str | None = Security(api_key_header),
        settings: ServiceSettings = Depends(get_settings),
    ) -> KeyInfo:
        if not settings.require_keys:
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
    """Who did it, for the audit log."""
    return f"key:{key.prefix}"


# ---------------------------------------------------------------------------------
# uploads
# ---------------------------------------------------------------------------------
def _clean_filename(name: str | None, fallback: str) -> str:
    """The upload's file name for messages and provenance: last path part, printable, short."""
    if not name:
        return fallback
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if ord(c) >= 32 and c != "\x7f").strip()
    return name[:200] or fallback


class Uploads:
    """Reads a request's uploads under the service's limits (the ``get_uploads`` dependency)."""

    def __init__(self, max_bytes: int, max_files: int) -> None:
        self.max_bytes = max_bytes
        self.max_files = max_files

    def read(self, upload: UploadFile, field: str) -> io.BytesIO:
        """One upload (at most ``max_bytes + 1`` bytes of it read) as an in-memory stream named by
        its (cleaned) file name, or ``field`` without one: the engine and gallery name the input by it."""
        name = _clean_filename(upload.filename, field)
        data = upload.file.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            raise ImageTooLargeError(f"upload is over the limit of {self.max_bytes:,} bytes", source=name)
        if not data:
            raise ImageDecodeError("empty upload (0 bytes)", source=name)
        stream = io.BytesIO(data)
        stream.name = name  # type: ignore[attr-defined]
        return stream

    def read_all(self, uploads: list[UploadFile], field: str) -> list[io.BytesIO]:
        """Several uploads of one field; more than ``max_files`` is refused before any is read."""
        if len(uploads) > self.max_files:
            raise InputError(f"{len(uploads)} files in one request; at most {self.max_files} are accepted")
        return [self.read(u, field) for u in uploads]


async def get_uploads(settings: ServiceSettings = Depends(get_settings)) -> Uploads:
    return Uploads(settings.max_upload_bytes, settings.max_files)


# ---------------------------------------------------------------------------------
# analysis slots
# ---------------------------------------------------------------------------------
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


#: ``with analysing(): ...`` -- what the ``get_analysing`` dependency gives an endpoint
Analysing = Callable[[], AbstractContextManager[None]]


async def get_analysing(request: Request, settings: ServiceSettings = Depends(get_settings)) -> Analysing:
    """One of the app's analysis slots, and the upload limits for every photo decoded while it
    is held.  The endpoint enters it itself, around the work only: the limits are a context
    variable, which must be set in the thread that decodes (a ``yield`` dependency runs in
    another one)."""
    slots: AnalysisSlots = request.app.state.slots
    limits = settings.image_limits

    @contextmanager
    def analysing() -> Iterator[None]:
        with slots(), untrusted_input(limits):
            yield

    return analysing


__all__ = [
    "Analysing",
    "AnalysisSlots",
    "ServiceBusy",
    "ServiceSettings",
    "Uploads",
    "actor",
    "enroll_key",
    "get_analysing",
    "get_engine",
    "get_gallery",
    "get_settings",
    "get_store",
    "get_uploads",
    "need",
    "read_key",
]
