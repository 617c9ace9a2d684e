"""Encryption at rest: templates, thumbnails and kept photos in the databases, and the saved
vector index files, sealed with AES-256-GCM (``cryptography``).

Keys, envelope style:

* the **master key** (32 random bytes) lives outside every database: ``FACEPRINT_KEY`` (64
  hex characters), else the key file ``FACEPRINT_KEY_FILE``, else ``key`` in the user's
  config directory (created 0600 in a 0700 folder on first use).  A ``key.previous`` beside
  the key file is the one a rotation replaced;
* each database has its own random **data key**, stored in its ``meta`` table wrapped
  (AES-GCM) by the master key, with the master key's id.  Rotating the master key re-wraps
  data keys (cheap); a database still wrapped with the previous key is re-wrapped when it is
  next opened.  ``faceprint encryption rotate --reencrypt`` also replaces the data key.

A sealed value is ``nonce (12 bytes) || ciphertext || tag (16 bytes)``; its AAD names the
table and column it belongs to, so a value moved to another column does not decrypt.  Files
are sealed in 1 MiB chunks (``FPENC1`` header, each chunk's nonce a random prefix plus the
chunk number and a last-chunk flag), so a truncated, reordered or spliced file is refused.
A wrong or missing key, or a tampered value, is a clear :class:`KeyProblem`, never garbage.

Why AES-GCM in the application rather than SQLCipher: one cipher for the databases and the
index files (which SQLCipher would not cover), the standard library's sqlite3 stays the
driver (the PostgreSQL store of the scale-out work can seal the same columns), and the cost
is measured by ``benchmarks/encryption.py``.  What stays clear: names, metadata, boxes,
scores, file paths and the audit log -- the link between a name and a photo's path is
protected by the files' 0600 mode, not by the cipher.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from faceprint.errors import FaceprintError

__all__ = [
    "Cipher",
    "KeyProblem",
    "MasterKey",
    "FILE_MAGIC",
    "current_master_key",
    "default_key_file",
    "is_sealed_file",
    "master_keys",
    "rotate_master_key",
    "shred",
    "unwrap_data_key",
    "wrap_data_key",
]

FILE_MAGIC = b"FPENC1\x00\x00"
CHUNK = 1 << 20
NONCE = 12
TAG = 16
ALG = "AES-256-GCM"


class KeyProblem(FaceprintError):
    """A missing or wrong encryption key, or a sealed value that does not decrypt."""

    exit_code = 3
    http_status = 500
    code = "encryption_key_error"


def _aesgcm(key: bytes):
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:  # pragma: no cover - a dependency
        raise KeyProblem("encryption at rest needs the `cryptography` package (pip install cryptography)") from exc
    return AESGCM(key)


@dataclass(frozen=True)
class MasterKey:
    key: bytes
    source: str  # where it came from, for messages (never the key)

    @property
    def id(self) -> str:
        """A public fingerprint of the key (16 hex characters)."""
        return hmac.new(self.key, b"faceprint master key id", hashlib.sha256).hexdigest()[:16]


def default_key_file() -> Path:
    env = os.environ.get("FACEPRINT_KEY_FILE", "").strip()
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("faceprint", appauthor=False)) / "key"


def _parse_key(text: str, source: str) -> bytes:
    t = text.strip()
    try:
        raw = bytes.fromhex(t) if len(t) == 64 else base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise KeyProblem(f"not a faceprint key: expected 32 bytes as 64 hex characters ({source})")
    return raw


def _read_key_file(path: Path) -> MasterKey:
    from faceprint.privacy import tighten

    tighten(path)
    try:
        return MasterKey(_parse_key(path.read_text(encoding="ascii", errors="replace"), str(path)), str(path))
    except OSError as exc:
        raise KeyProblem(f"cannot read the key file: {exc.strerror or exc}", source=str(path)) from None


def write_key_file(path: Path, key: bytes) -> None:
    """Write ``key`` (hex) to ``path`` atomically, 0600 in a 0700 folder."""
    from faceprint.privacy import private_dir

    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key.hex() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def current_master_key(*, create: bool = True) -> MasterKey:
    """The master key in use: ``FACEPRINT_KEY``, else the key file (created when missing and
    ``create``)."""
    env = os.environ.get("FACEPRINT_KEY", "").strip()
    if env:
        return MasterKey(_parse_key(env, "FACEPRINT_KEY"), "FACEPRINT_KEY")
    path = default_key_file()
    if not path.exists():
        if not create:
            raise KeyProblem(
                "no encryption key: the key file does not exist (set FACEPRINT_KEY_FILE or FACEPRINT_KEY to the key this data was sealed with)",
                source=str(path),
            )
        write_key_file(path, secrets.token_bytes(32))
    return _read_key_file(path)


def master_keys() -> list[MasterKey]:
    """Every master key that may open a database: the current one, then the previous one
    (kept by a rotation) when there is one."""
    keys = [current_master_key(create=False)] if (os.environ.get("FACEPRINT_KEY", "").strip() or default_key_file().exists()) else []
    previous = default_key_file().with_name(default_key_file().name + ".previous")
    if previous.exists():
        keys.append(_read_key_file(previous))
    return keys


def wrap_data_key(master: MasterKey, data_key: bytes, what: str) -> str:
    """The meta-table record of a database's data key sealed by ``master``."""
    nonce = secrets.token_bytes(NONCE)
    sealed = _aesgcm(master.key).encrypt(nonce, data_key, f"faceprint data key:{what}".encode())
    return json.dumps({"alg": ALG, "master_key_id": master.id, "wrapped": base64.b64encode(nonce + sealed).decode()})


def unwrap_data_key(record: str, what: str, source: str) -> tuple[bytes, MasterKey, bool]:
    """(data key, the master key that opened it, whether that is the current key)."""
    try:
        rec = json.loads(record)
        blob = base64.b64decode(rec["wrapped"])
        want = str(rec["master_key_id"])
    except (ValueError, KeyError, TypeError):
        raise KeyProblem("the database's encryption record is damaged", source=source) from None
    keys = master_keys()
    if not keys:
        raise KeyProblem(
            f"this database is encrypted (master key {want}) and no key is available: set FACEPRINT_KEY_FILE or FACEPRINT_KEY "
            f"(looked for {default_key_file()})",
            source=source,
        )
    for i, mk in enumerate(keys):
        if mk.id != want:
            continue
        try:
            return _aesgcm(mk.key).decrypt(blob[:NONCE], blob[NONCE:], f"faceprint data key:{what}".encode()), mk, i == 0
        except Exception:
            raise KeyProblem(f"the data key does not decrypt with master key {want} ({mk.source}): the key or the database is damaged", source=source) from None
    have = ", ".join(f"{k.id} ({k.source})" for k in keys)
    raise KeyProblem(
        f"this database is encrypted with master key {want}; the key(s) available are {have}: set FACEPRINT_KEY_FILE or FACEPRINT_KEY to the right key",
        source=source,
    )


class Cipher:
    """AES-256-GCM with one data key: values (:meth:`seal` / :meth:`open`) and files
    (:meth:`seal_stream` / :meth:`open_file`)."""

    def __init__(self, data_key: bytes) -> None:
        if len(data_key) != 32:
            raise KeyProblem("a data key has 32 bytes")
        self._aes = _aesgcm(data_key)

    def seal(self, data: bytes | bytearray | memoryview | None, aad: bytes) -> bytes | None:
        if data is None:
            return None
        nonce = secrets.token_bytes(NONCE)
        return nonce + self._aes.encrypt(nonce, bytes(data), aad)

    def open(self, blob: bytes | bytearray | memoryview | None, aad: bytes, source: str = "") -> bytes | None:
        if blob is None:
            return None
        b = bytes(blob)
        if len(b) < NONCE + TAG:
            raise KeyProblem(f"a sealed value ({aad.decode(errors='replace')}) is too short: stored in clear, or damaged", source=source or None)
        try:
            return self._aes.decrypt(b[:NONCE], b[NONCE:], aad)
        except Exception:
            raise KeyProblem(
                f"a sealed value ({aad.decode(errors='replace')}) does not decrypt: wrong key, or the data was altered", source=source or None
            ) from None

    # -- files -------------------------------------------------------------------------
    def seal_stream(self, data: bytes | bytearray | memoryview, aad: bytes) -> Iterator[bytes]:
        """The sealed file, piece by piece (header, then each 1 MiB chunk)."""
        prefix = secrets.token_bytes(7)
        mv = memoryview(data)
        n = max(1, -(-len(mv) // CHUNK))
        yield FILE_MAGIC + prefix + struct.pack("<Q", len(mv))
        for i in range(n):
            last = i == n - 1
            nonce = prefix + struct.pack("<I", i) + (b"\x01" if last else b"\x00")
            yield self._aes.encrypt(nonce, bytes(mv[i * CHUNK : (i + 1) * CHUNK]), aad)

    def open_file(self, path: str | os.PathLike[str], aad: bytes) -> bytes:
        """The clear content of a file written from :meth:`seal_stream`."""
        with open(path, "rb") as fh:
            head = fh.read(len(FILE_MAGIC) + 7 + 8)
            if len(head) < len(FILE_MAGIC) + 15 or not head.startswith(FILE_MAGIC):
                raise KeyProblem("not a sealed faceprint file", source=str(path))
            prefix = head[len(FILE_MAGIC) : len(FILE_MAGIC) + 7]
            (size,) = struct.unpack("<Q", head[len(FILE_MAGIC) + 7 :])
            n = max(1, -(-size // CHUNK))
            out = bytearray()
            for i in range(n):
                want = min(CHUNK, size - i * CHUNK) + TAG
                chunk = fh.read(want)
                nonce = prefix + struct.pack("<I", i) + (b"\x01" if i == n - 1 else b"\x00")
                try:
                    out += self._aes.decrypt(nonce, chunk, aad)
                except Exception:
                    raise KeyProblem("the sealed file does not decrypt: wrong key, or it was truncated or altered", source=str(path)) from None
            if fh.read(1):
                raise KeyProblem("the sealed file has trailing data: it was altered", source=str(path))
        return bytes(out)


def rotate_master_key() -> tuple[MasterKey, MasterKey]:
    """Replace the key file's master key with a new random one; the old one is kept as
    ``key.previous`` so databases wrapped with it still open (and are re-wrapped with the new
    key when they are).  Returns (old, new).  Refused when the key comes from FACEPRINT_KEY."""
    if os.environ.get("FACEPRINT_KEY", "").strip():
        raise KeyProblem("the key comes from FACEPRINT_KEY: put the new key there yourself (faceprint cannot change your environment)")
    path = default_key_file()
    old = current_master_key(create=False)
    write_key_file(path.with_name(path.name + ".previous"), old.key)
    write_key_file(path, secrets.token_bytes(32))
    return old, current_master_key(create=False)


def shred(path: str | os.PathLike[str]) -> bool:
    """Overwrite a file with zeros, flush it to disk, then remove it (best effort against a
    later read of the same blocks; a copy-on-write or journalling file system may keep old
    blocks, which is what encryption at rest is for).  False when there was no file."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError:
        return False
    with open(p, "r+b") as fh:
        zeros = bytes(1 << 20)
        left = size
        while left > 0:
            n = min(left, len(zeros))
            fh.write(zeros[:n])
            left -= n
        fh.flush()
        os.fsync(fh.fileno())
    p.unlink()
    return True


def is_sealed_file(path: str | os.PathLike[str]) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(FILE_MAGIC)) == FILE_MAGIC
    except OSError:
        return False
