"""API keys for the REST service, kept in the gallery database's ``api_keys`` table.

A key looks like ``fp_<prefix>_<secret>``: ``prefix`` is 8 lowercase letters/digits that
identify the key in lists, logs and the audit trail (it is not secret); ``secret`` is 32
characters from :func:`secrets.token_urlsafe` (192 bits).  The database keeps only the
prefix and ``scrypt$n$r$p$<salt>$<hash>`` of the whole key with a random per-key salt,
so a copy of the database does not reveal usable keys.  The secret is shown once, by
:func:`create_key`.

Scopes: ``read`` (list, show, identify, verify, detect), ``enroll`` (create, change and
delete subjects, add faces; implies ``read``) and ``admin`` (implies every scope).

Verification cost and revocation: a successful hash check is cached in memory for
:data:`CACHE_TTL` seconds, keyed by the SHA-256 of the presented key, so a request does
not pay for scrypt (~70 ms of CPU).  The cache only ever skips the hash, never the
database: every check still reads the key's row by its prefix (one indexed SQLite
lookup, no hashing) and refuses it if it is revoked or gone.  So a revoke takes effect
on the next request in this process *and* in every other process serving the same
database -- stricter than "within the cache TTL".  :func:`revoke_key` also clears this
process's cache.  Failed checks are not cached: each costs one scrypt, and keys are
192-bit random, so guessing is hopeless, but a flood of wrong keys for a known prefix
costs CPU: the service limits failed attempts per client address and per key prefix
(:mod:`faceprint.service.security`).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import secrets
import string
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from faceprint.errors import FaceprintError, InputError

if TYPE_CHECKING:  # the gallery package imports the index module; keep this module light
    from faceprint.gallery.store import Store

SCOPES = ("read", "enroll", "admin")
# what each scope grants: admin implies everything, enroll implies read
_GRANTS = {"read": {"read"}, "enroll": {"read", "enroll"}, "admin": {"read", "enroll", "admin"}}
CACHE_TTL = 30.0  # seconds a successful hash verification is remembered
PREFIX_LEN = 8
SECRET_LEN = 32
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_DKLEN = 32


class Unauthorized(FaceprintError):
    """No API key, or one that is unknown or revoked."""

    exit_code = 2
    http_status = 401
    code = "unauthorized"


class Forbidden(FaceprintError):
    """A valid API key without the scope the request needs."""

    exit_code = 2
    http_status = 403
    code = "forbidden"


class KeyNotFound(InputError):
    http_status = 404
    code = "key_not_found"


@dataclass(frozen=True)
class KeyInfo:
    """One API key as stored (never the secret)."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created: str
    revoked: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None

    @property
    def granted(self) -> frozenset[str]:
        """Every scope this key's scopes imply."""
        return frozenset().union(*(_GRANTS.get(s, set()) for s in self.scopes))

    def allows(self, scope: str) -> bool:
        return scope in self.granted

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "prefix": self.prefix, "scopes": list(self.scopes), "created": self.created, "revoked": self.revoked}


def normalize_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Validated, de-duplicated scopes in canonical order; at least one."""
    given = [s.strip().lower() for s in scopes if s and s.strip()]
    unknown = sorted(set(given) - set(SCOPES))
    if unknown:
        raise InputError(f"unknown scope(s) {', '.join(map(repr, unknown))} (use {', '.join(SCOPES)})")
    if not given:
        raise InputError(f"a key needs at least one scope ({', '.join(SCOPES)})")
    return tuple(s for s in SCOPES if s in given)


def _validate_key_name(name: str) -> str:
    from faceprint.names import clean_name

    return clean_name(name, "a key name", max_len=100)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_key(secret: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` of a key (per-key random salt unless given)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, dklen=_DKLEN, maxmem=64 * 1024 * 1024, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${_b64(salt)}${_b64(digest)}"


def verify_hash(secret: str, stored: str) -> bool:
    """Constant-time check of a key against a stored hash; False for malformed hashes."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(secret.encode("utf-8"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected), maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def parse_key(secret: str) -> tuple[str, str] | None:
    """(prefix, secret part) of a well-formed key, else None."""
    if not isinstance(secret, str) or len(secret) != 3 + PREFIX_LEN + 1 + SECRET_LEN:
        return None
    if not secret.startswith("fp_") or secret[3 + PREFIX_LEN] != "_":
        return None
    prefix = secret[3 : 3 + PREFIX_LEN]
    if any(c not in _PREFIX_ALPHABET for c in prefix):
        return None
    return prefix, secret[3 + PREFIX_LEN + 1 :]


def _row_to_info(r: Any) -> KeyInfo:
    return KeyInfo(int(r["id"]), r["name"], r["prefix"], tuple(json.loads(r["scopes"])), r["created"], r["revoked"])


# -- cache of successful verifications (per process) ------------------------------
_cache: dict[tuple[str, str], tuple[float, str]] = {}  # (db path, sha256(key)) -> (expiry, prefix)
_cache_lock = threading.Lock()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _cache_key(store: Store, secret: str) -> tuple[str, str]:
    return (str(store.path), hashlib.sha256(secret.encode("utf-8")).hexdigest())


# -- operations -----------------------------------------------------------------------
def create_key(store: Store, name: str, scopes: Iterable[str], *, actor: str = "local") -> str:
    """Create a key and return its secret (the only time it is available)."""
    from faceprint.gallery.store import now

    name = _validate_key_name(name)
    scopes_t = normalize_scopes(scopes)
    for _ in range(20):
        prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LEN))
        secret = f"fp_{prefix}_{secrets.token_urlsafe(24)[:SECRET_LEN]}"
        hashed = hash_key(secret)
        with store.transaction() as db:
            if db.execute("SELECT 1 FROM api_keys WHERE prefix=?", (prefix,)).fetchone():
                continue  # prefix collision (1 in 2.8e12 per key): draw again
            db.execute(
                "INSERT INTO api_keys(name, prefix, hash, scopes, created, revoked) VALUES (?,?,?,?,?,NULL)",
                (name, prefix, hashed, json.dumps(list(scopes_t)), now()),
            )
            store._audit(db, actor, "create_api_key", None, {"name": name, "prefix": prefix, "scopes": list(scopes_t)})
        return secret
    raise FaceprintError("could not draw an unused key prefix")  # pragma: no cover


def list_keys(store: Store, *, include_revoked: bool = True) -> list[KeyInfo]:
    rows = store.read("SELECT * FROM api_keys" + ("" if include_revoked else " WHERE revoked IS NULL") + " ORDER BY id")
    return [_row_to_info(r) for r in rows]


def has_active_keys(store: Store) -> bool:
    return bool(store.read("SELECT 1 FROM api_keys WHERE revoked IS NULL LIMIT 1"))


def revoke_key(store: Store, prefix_or_name: str, *, actor: str = "local") -> list[KeyInfo]:
    """Revoke a key by its prefix, or by its name when exactly one active key has that name.

    Returns the revoked key(s); revoking an already revoked key changes nothing.  Takes
    effect immediately (see the module docstring)."""
    from faceprint.gallery.store import now

    ident = (prefix_or_name or "").strip()
    if ident.startswith("fp_") and parse_key(ident):
        ident = parse_key(ident)[0]  # type: ignore[index]  # a whole key was pasted: use its prefix
    with store.transaction() as db:
        rows = db.execute("SELECT * FROM api_keys WHERE prefix=?", (ident,)).fetchall()
        if not rows:
            rows = db.execute("SELECT * FROM api_keys WHERE name=? ORDER BY id", (ident,)).fetchall()
            active = [r for r in rows if r["revoked"] is None]
            if len(active) > 1:
                listed = ", ".join(r["prefix"] for r in active)
                raise InputError(f"{len(active)} active keys are named {ident!r} ({listed}); revoke one by its prefix")
            rows = active or rows[-1:]
        if not rows:
            raise KeyNotFound(f"no API key with prefix or name {ident!r}")
        ts = now()
        out = []
        for r in rows:
            if r["revoked"] is None:
                db.execute("UPDATE api_keys SET revoked=? WHERE id=?", (ts, r["id"]))
                store._audit(db, actor, "revoke_api_key", None, {"name": r["name"], "prefix": r["prefix"]})
                out.append(dataclasses.replace(_row_to_info(r), revoked=ts))
            else:
                out.append(_row_to_info(r))
    clear_cache()
    return out


def cached_key(secret: str | None) -> str | None:
    """The prefix of ``secret`` if this process verified it within :data:`CACHE_TTL` (for any
    database), else None.  Costs no hashing: the rate limiter lets such keys through."""
    if not secret:
        return None
    digest = hashlib.sha256(secret.strip().encode("utf-8")).hexdigest()
    now_t = time.monotonic()
    with _cache_lock:
        for (_, d), (expiry, prefix) in _cache.items():
            if d == digest and expiry > now_t:
                return prefix
    return None


def check_key(store: Store, secret: str | None) -> KeyInfo | None:
    """The key's info if ``secret`` is a known, unrevoked key, else None."""
    if not secret:
        return None
    parsed = parse_key(secret.strip())
    if parsed is None:
        return None
    secret = secret.strip()
    prefix = parsed[0]
    rows = store.read("SELECT * FROM api_keys WHERE prefix=?", (prefix,))
    if not rows or rows[0]["revoked"] is not None:
        return None
    info = _row_to_info(rows[0])
    ck = _cache_key(store, secret)
    now_t = time.monotonic()
    with _cache_lock:
        hit = _cache.get(ck)
        if hit is not None and hit[0] > now_t and hit[1] == prefix:
            return info
    if not verify_hash(secret, rows[0]["hash"]):
        return None
    with _cache_lock:
        if len(_cache) > 10_000:  # bound memory: drop expired entries, then everything if still large
            for k in [k for k, v in _cache.items() if v[0] <= now_t]:
                del _cache[k]
            if len(_cache) > 10_000:
                _cache.clear()
        _cache[ck] = (now_t + CACHE_TTL, prefix)
    return info


__all__ = [
    "CACHE_TTL",
    "Forbidden",
    "KeyInfo",
    "KeyNotFound",
    "SCOPES",
    "Unauthorized",
    "cached_key",
    "check_key",
    "clear_cache",
    "create_key",
    "has_active_keys",
    "list_keys",
    "normalize_scopes",
    "revoke_key",
]
