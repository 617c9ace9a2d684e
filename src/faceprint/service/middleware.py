"""The REST service's own ASGI middleware and error handling: a request id on every request
and response (``X-Request-Id``, taken from the client when well formed), one log line per
request, the request body limit (413 before the body is read when ``Content-Length`` is
over it, or as soon as the streamed body passes it), a last-resort 500 ``internal_error``;
and the exception handlers that give every error the body
``{"error": {"code", "message", "request_id"}}``.

The host, cross-site, UI login and API key checks are :mod:`faceprint.service.security`'s."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceprint.errors import FaceprintError
from faceprint.service.security import escape_log

logger = logging.getLogger("faceprint.service")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


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


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def install_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"error": {"code", "message", "request_id"}}``: faceprint errors keep
    their code and status, malformed requests are 422 ``invalid_request``."""

    @app.exception_handler(FaceprintError)
    async def faceprint_error(request: Request, exc: FaceprintError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        if exc.http_status == 503:  # busy, or a backend away: say when to try again
            headers = {"Retry-After": str(getattr(exc, "retry_after", 2))}
        if exc.http_status >= 500:
            logger.error("faceprint error %s (request id %s): %s", exc.code, _request_id(request), exc)
        return error_response(exc.http_status, exc.code, str(exc), _request_id(request), headers, **exc.details())

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


__all__ = ["ServiceMiddleware", "error_response", "install_error_handlers"]
