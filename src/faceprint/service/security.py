"""What keeps the REST service and the web UI safe from other web pages, other local
processes and key guessers (see SECURITY.md for the threat model).

:class:`SecurityMiddleware` (pure ASGI, outermost) does, for every request:

1. **Host allow-list** (DNS rebinding): when bound to loopback the ``Host`` header must name
   127.0.0.1, localhost, [::1], the bound address or a name the operator allowed
   (``serve --allowed-host``); anything else is 400 ``bad_host``.
2. **Cross-site refusal**: a state-changing request (any method but GET / HEAD / OPTIONS)
   that a browser marks as coming from another origin -- ``Sec-Fetch-Site`` other than
   ``same-origin`` / ``none``, or an ``Origin`` that is not this server's own (``null``
   from a ``file://`` page included) -- is 403 ``cross_site_request``.  Requests with
   neither header (curl, SDKs, scripts) are not browsers' and pass on to the key check.
3. **The web UI's login**: with a library mounted, every UI page and image needs the
   per-launch secret's session cookie (HttpOnly, SameSite=Strict), set by
   ``/login?token=...`` (the address ``serve`` prints); without it a page is a redirect
   to the login form and anything else 401.
4. **API keys before the body**: requests under ``/v1/`` (bar health and ready) are
   authenticated from their headers before a byte of the body is read; failed attempts
   are rate-limited per client address and per key prefix (429 with ``Retry-After``) and
   logged with both.
5. **Headers** on every response: ``X-Content-Type-Options: nosniff``,
   ``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin``,
   ``Cross-Origin-Resource-Policy: same-origin``, and a Content-Security-Policy (strict
   on the UI's pages: no inline script, nothing from other origins, ``frame-ancestors
   'none'``).

The UI's forms also carry a per-process CSRF token (:meth:`UiAuth.csrf`), checked by
:func:`faceprint.service.web.mount_ui` on every POST.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import html
import ipaddress
import json
import logging
import math
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote, urlsplit

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceprint.errors import FaceprintError

logger = logging.getLogger("faceprint.service")

__all__ = [
    "FailureLimiter",
    "SecurityMiddleware",
    "UiAuth",
    "allowed_hosts_for",
    "escape_log",
    "host_name",
    "is_loopback",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
UI_COOKIE = "faceprint_ui"
OPEN_PATHS = ("/v1/health", "/v1/ready")
# UI pages: strict; the Swagger page ships an inline bootstrap script; everything else is data
CSP_UI = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
CSP_DOCS = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
CSP_DATA = "default-src 'none'; frame-ancestors 'none'"
_COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def escape_log(text: Any, limit: int = 300) -> str:
    """``text`` safe for one log line: control, format and line-separator characters become
    ``\\xNN`` / ``\\uNNNN`` escapes (a ``%0A`` in a path cannot forge a line), cut at ``limit``."""
    s = str(text)
    out = []
    for ch in s[:limit]:
        cat = unicodedata.category(ch)
        if ch == "\\":
            out.append("\\\\")
        elif cat in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out) + ("..." if len(s) > limit else "")


def host_name(value: str) -> str:
    """The host part of a ``Host`` header or of a netloc, lower-case, without port or
    brackets or a trailing dot ("[::1]:8000" -> "::1")."""
    v = value.strip().lower()
    if v.startswith("["):
        end = v.find("]")
        return v[1:end] if end > 0 else v
    if v.count(":") == 1:
        v = v.split(":", 1)[0]
    return v.rstrip(".")


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts_for(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str] | None:
    """The Host names a server bound to ``bind_host`` answers to: on loopback the loopback
    names, the bound address and ``extra``; elsewhere only ``extra`` when given, else any
    (None: a server on a network address is reached under names it cannot know)."""
    names = {host_name(h) for h in extra if h and h.strip()}
    if is_loopback(bind_host):
        return frozenset({*LOOPBACK_NAMES, host_name(bind_host), *names})
    return frozenset(names) if names else None


def _netloc(value: str, scheme: str = "http") -> str:
    """A netloc with the scheme's default port dropped, lower-case."""
    v = value.strip().lower()
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    if default and v.endswith(default):
        v = v[: -len(default)]
    return v


class FailureLimiter:
    """Counts failures per key (a client address, a key prefix) in a sliding window; a key
    with ``limit`` failures in the last ``window`` seconds is refused until the oldest
    leaves the window.  Memory is bounded (at most ``max_keys`` keys kept)."""

    def __init__(self, limit: int = 10, window: float = 60.0, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.max_keys, self.clock = int(limit), float(window), int(max_keys), clock
        self._fails: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> collections.deque[float] | None:
        q = self._fails.get(key)
        if q is None:
            return None
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._fails[key]
            return None
        return q

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        now = self.clock()
        with self._lock:
            q = self._prune(key, now)
            if q is None or len(q) < self.limit:
                return 0.0
            return max(0.0, q[len(q) - self.limit] + self.window - now)

    def failure(self, key: str) -> None:
        now = self.clock()
        with self._lock:
            q = self._prune(key, now)
            if q is None:
                if len(self._fails) >= self.max_keys:  # bound memory: forget the stalest keys
                    for k in sorted(self._fails, key=lambda k: self._fails[k][-1])[: self.max_keys // 10 or 1]:
                        del self._fails[k]
                q = self._fails[key] = collections.deque(maxlen=self.limit * 4)
            q.append(now)


class UiAuth:
    """The web UI's per-launch secret: the login token the user is shown once, the session
    cookie it buys, and the CSRF token the UI's forms carry."""

    def __init__(self, token: str | None = None) -> None:
        if token is not None and len(token) < 16:
            raise ValueError("the web UI token must have at least 16 characters")
        self.token = token or secrets.token_urlsafe(24)
        key = hashlib.sha256(b"faceprint-ui\0" + self.token.encode()).digest()
        self.session = hmac.new(key, b"session", hashlib.sha256).hexdigest()
        self.csrf = hmac.new(key, b"csrf", hashlib.sha256).hexdigest()
        self.limiter = FailureLimiter(limit=10, window=60.0)

    def token_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given).encode(), self.token.encode())

    def csrf_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given).encode(), self.csrf.encode())

    def session_ok(self, cookie_header: str | None) -> bool:
        if not cookie_header:
            return False
        try:
            jar = SimpleCookie()
            jar.load(cookie_header)
        except Exception:
            return False
        morsel = jar.get(UI_COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self.session.encode())

    def cookie(self) -> str:
        return f"{UI_COOKIE}={self.session}; HttpOnly; SameSite=Strict; Path=/"

    @staticmethod
    def expired_cookie() -> str:
        """The Set-Cookie value that logs a browser out."""
        return f"{UI_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"


def _is_ui_path(path: str) -> bool:
    """Paths of the web UI that need its login (the login page and the stylesheet do not)."""
    if path.startswith("/v1/") or path in ("/openapi.json", "/login", "/favicon.ico") or path.startswith("/docs"):
        return False
    return not path.startswith("/ui/static/")


async def _respond(send: Send, status: int, body: bytes, content_type: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _error_json(status: int, code: str, message: str, rid: str | None) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "request_id": rid}}).encode()


def _error_page(title: str, message: str) -> bytes:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>faceprint</title>"
        '<link rel="stylesheet" href="/ui/static/style.css"></head><body><main>'
        f"<h1>{html.escape(title)}</h1><p class=error>{html.escape(message)}</p></main></body></html>"
    ).encode()


class SecurityMiddleware:
    """See the module docstring.  ``allowed_hosts`` None: any Host; ``ui``: the UI's login
    (None: no UI mounted); ``authenticate(secret) -> info or None`` (blocking, run in a
    thread) checks API keys before the body when ``require_keys``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: frozenset[str] | None = None,
        ui: UiAuth | None = None,
        require_keys: bool = False,
        authenticate: Callable[[str], Any] | None = None,
        client_limit: int = 10,
        prefix_limit: int = 20,
        window: float = 60.0,
    ) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.ui = ui
        self.require_keys = require_keys and authenticate is not None
        self.authenticate = authenticate
        self.by_client = FailureLimiter(client_limit, window)
        self.by_prefix = FailureLimiter(prefix_limit, window)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET")
        headers: dict[str, str] = {}
        for k, v in scope.get("headers", []):
            headers.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
        state = scope.setdefault("state", {})
        rid = state.get("request_id")
        is_api = path.startswith("/v1/") or path == "/openapi.json"
        csp = CSP_DATA if is_api else CSP_DOCS if path.startswith("/docs") else CSP_UI

        async def send_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _COMMON_HEADERS if k not in present]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", csp.encode()))
                if path.startswith("/v1/") or path.startswith("/login") or (self.ui is not None and _is_ui_path(path) and not path.startswith("/ui/")):
                    if b"cache-control" not in present:
                        extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        async def refuse(status: int, code: str, message: str, extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
            logger.warning("refused %s %s: %s (client %s)", method, escape_log(path), code, escape_log(_client(scope)))
            if is_api or not self._wants_html(headers):
                await _respond(send_headers, status, _error_json(status, code, message, rid), b"application/json", extra_headers)
            else:
                await _respond(send_headers, status, _error_page("Refused", message), b"text/html; charset=utf-8", extra_headers)

        # 1. Host allow-list
        if self.allowed_hosts is not None:
            host = host_name(headers.get("host", ""))
            if host not in self.allowed_hosts:
                await refuse(
                    400,
                    "bad_host",
                    f"this server does not answer to the host name {escape_log(host, 100)!r}; serve --allowed-host NAME adds a name it may be reached under",
                )
                return
        # 2. cross-site state changes
        if method not in SAFE_METHODS:
            why = self._cross_site(headers)
            if why:
                await refuse(403, "cross_site_request", f"refused a cross-site request: {why}")
                return
        # 3. the web UI's login
        if self.ui is not None and not is_api and _is_ui_path(path) and not self.ui.session_ok(headers.get("cookie")):
            if method in ("GET", "HEAD") and not path.startswith("/ui/"):
                target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
                location = "/login?next=" + quote(target, safe="")
                await _respond(send_headers, 303, b"", b"text/plain", [(b"location", location.encode("latin-1"))])
            else:
                await refuse(401, "login_required", "log in to the web UI first: open the address `faceprint serve` printed")
            return
        # 4. API keys before the body
        if self.require_keys and path.startswith("/v1/") and path not in OPEN_PATHS:
            secret = _presented_key(headers)
            client = _client(scope)
            wait = self.by_client.retry_after(client)
            if not secret:
                if wait:
                    await refuse(
                        429,
                        "too_many_attempts",
                        f"too many failed API key attempts from {client}; retry in {math.ceil(wait)} s",
                        [(b"retry-after", str(math.ceil(wait)).encode())],
                    )
                    return
                await refuse(401, "unauthorized", "no API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`", [(b"www-authenticate", b"Bearer")])
                return
            prefix = _prefix_of(secret)
            wait = max(wait, self.by_prefix.retry_after("p:" + prefix))
            if wait:
                # a key this process verified recently still passes (no scrypt is run for it),
                # so guessing at a victim's prefix cannot lock the victim out
                from faceprint.service.auth import cached_key

                info = cached_key(secret)
                if info is None:
                    logger.warning("API key attempt refused (rate limit): client=%s prefix=%s", escape_log(client), escape_log(prefix, 16))
                    await refuse(
                        429,
                        "too_many_attempts",
                        f"too many failed API key attempts; retry in {math.ceil(wait)} s",
                        [(b"retry-after", str(math.ceil(wait)).encode())],
                    )
                    return
            assert self.authenticate is not None
            try:
                info = await anyio.to_thread.run_sync(self.authenticate, secret)
            except FaceprintError as exc:  # the key store is unreachable (PostgreSQL away): 503 and retry, never a 500
                retry = str(getattr(exc, "retry_after", 2)).encode()
                await refuse(exc.http_status, exc.code, str(exc), [(b"retry-after", retry)] if exc.http_status == 503 else None)
                return
            if info is None:
                self.by_client.failure(client)
                self.by_prefix.failure("p:" + prefix)
                logger.warning("API key refused: client=%s prefix=%s", escape_log(client), escape_log(prefix, 16))
                await refuse(401, "unauthorized", "unknown or revoked API key", [(b"www-authenticate", b"Bearer")])
                return
            state["key"] = info
            state["key_prefix"] = info.prefix
        await self.app(scope, receive, send_headers)

    @staticmethod
    def _wants_html(headers: dict[str, str]) -> bool:
        return "text/html" in headers.get("accept", "")

    @staticmethod
    def _cross_site(headers: dict[str, str]) -> str | None:
        site = headers.get("sec-fetch-site")
        if site is not None and site.strip().lower() not in ("same-origin", "none"):
            return f"Sec-Fetch-Site is {escape_log(site, 40)!r}"
        origin = headers.get("origin")
        if origin is not None:
            if origin.strip().lower() == "null":
                return "Origin is null (a local file or a sandboxed page)"
            parts = urlsplit(origin.strip())
            if parts.scheme not in ("http", "https") or not parts.netloc:
                return f"Origin {escape_log(origin, 100)!r} is not a web origin"
            if _netloc(parts.netloc, parts.scheme) != _netloc(headers.get("host", ""), parts.scheme):
                return f"Origin {escape_log(origin, 100)!r} is not this server"
        return None


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


def _presented_key(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    key = headers.get("x-api-key", "").strip()
    return key or None


def _prefix_of(secret: str) -> str:
    from faceprint.service.auth import parse_key

    parsed = parse_key(secret)
    return parsed[0] if parsed else "(malformed)"
