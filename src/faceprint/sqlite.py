"""One SQLite file per store: WAL, ``synchronous=FULL``, serialised transactions, migrations.

The gallery (:mod:`faceprint.gallery.store`) and the photo library
(:mod:`faceprint.library.store`) each keep their data in one SQLite file and share
this plumbing.  Files are private (folder 0700, database and its -wal / -shm 0600) and
``secure_delete`` is on, so deleted rows are zeroed; :meth:`Database.checkpoint` truncates
the write-ahead log after an erasure.  A store's schema is a list of migration scripts; ``PRAGMA user_version``
records how many have run.  ``PRAGMA application_id`` tells the kinds apart, so a
library file handed to the gallery (or the reverse) is refused with a clear error
instead of being "migrated" into a mess.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faceprint.errors import FaceprintError
from faceprint.privacy import private_file, tighten


class StoreError(FaceprintError):
    """The database file cannot be opened or is not the kind of faceprint database expected."""

    exit_code = 2
    http_status = 500
    code = "store_error"


def encryption_default() -> bool:
    """New databases are encrypted unless ``FACEPRINT_ENCRYPT`` is 0 / false / no / off."""
    import os

    return os.environ.get("FACEPRINT_ENCRYPT", "1").strip().lower() not in ("0", "false", "no", "off")


#: ids per statement of :meth:`Database.read_in`
IN_CHUNK = 10_000


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


class Database:
    """Thread-safe access to one SQLite file (one connection, serialised by a lock).

    Subclasses set ``MIGRATIONS`` (never edit a released entry; append),
    ``APPLICATION_ID`` (0 for the gallery, which predates it) and ``WHAT`` (a name
    for error messages).
    """

    MIGRATIONS: list[str] = []
    APPLICATION_ID = 0
    WHAT = "database"
    #: (table, column) pairs sealed with the database's data key when it is encrypted
    SEALED: tuple[tuple[str, str], ...] = ()
    DIALECT = "sqlite"
    #: the column that names a row of any table (PostgreSQL's store says ``ctid``)
    ROWID = "rowid"

    def __init__(self, path: str | Path, *, encrypt: bool | None = None) -> None:
        """Open (or create) the database at ``path``.  ``encrypt``: seal a *new* database's
        templates, thumbnails and photos (default: on, unless ``FACEPRINT_ENCRYPT=0``); an
        existing database keeps what it is (``faceprint encryption enable`` migrates one)."""
        self.path = Path(path)
        self.cipher: Any = None
        if self.path.is_dir():
            raise StoreError("is a directory, not a database file", source=str(self.path))
        try:
            fresh_file = not self.path.exists() or self.path.stat().st_size == 0
        except OSError:
            fresh_file = True
        try:
            private_file(self.path)  # 0600 before SQLite opens it: its -wal and -shm files take the same mode
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30.0)
            self._db.row_factory = sqlite3.Row
            # deleted rows are overwritten with zeros, whatever this SQLite build's default
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            for suffix in ("-wal", "-shm"):  # files an older faceprint left readable
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    tighten(side)
            self._lock = threading.RLock()
            self._check_kind()
            self._migrate()
            self._open_cipher(fresh_file, encryption_default() if encrypt is None else encrypt)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"not a usable faceprint {self.WHAT} ({exc})", source=str(self.path)) from None
        except OSError as exc:
            raise StoreError(f"cannot open the database: {exc.strerror or exc}", source=str(self.path)) from None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------
    def _check_kind(self) -> None:
        app_id = self._db.execute("PRAGMA application_id").fetchone()[0]
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        fresh = app_id == 0 and version == 0 and not self._db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone()
        if app_id != self.APPLICATION_ID and not fresh:
            other = {0: "a faceprint gallery or another SQLite database"}.get(app_id, "another kind of faceprint database")
            raise StoreError(f"this file is {other}, not a faceprint {self.WHAT}; pass another --db", source=str(self.path))
        if app_id == 0 and version > 0 and self.APPLICATION_ID != 0:
            raise StoreError(
                f"this file is a faceprint gallery or another SQLite database, not a faceprint {self.WHAT}; pass another --db", source=str(self.path)
            )
        if fresh and self.APPLICATION_ID:
            self._db.execute(f"PRAGMA application_id = {int(self.APPLICATION_ID)}")

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(self.MIGRATIONS):
            raise StoreError(
                f"database schema version {version} is newer than this faceprint understands ({len(self.MIGRATIONS)}); upgrade faceprint", source=str(self.path)
            )
        for target in range(version + 1, len(self.MIGRATIONS) + 1):
            with self.transaction() as db:
                for stmt in statements(self.MIGRATIONS[target - 1]):
                    db.execute(stmt)
                db.execute(f"PRAGMA user_version = {target}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT under the store lock; rolls back on any error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    # -- encryption at rest ----------------------------------------------------------
    def _open_cipher(self, fresh: bool, encrypt: bool) -> None:
        from faceprint.crypto import Cipher, current_master_key, unwrap_data_key, wrap_data_key

        rows = self.read("SELECT value FROM meta WHERE key='encryption'")
        row = rows[0] if rows else None
        if row is not None:
            data_key, _, current = unwrap_data_key(row[0], self.WHAT, str(self.path))
            if not current:  # opened with the key a rotation replaced: re-wrap with the current one
                new = current_master_key(create=False)
                with self.transaction() as db:
                    db.execute("UPDATE meta SET value=? WHERE key='encryption'", (wrap_data_key(new, data_key, self.WHAT),))
            self.cipher = Cipher(data_key)
        elif fresh and encrypt and self.SEALED:
            import secrets

            data_key = secrets.token_bytes(32)
            record = wrap_data_key(current_master_key(create=True), data_key, self.WHAT)
            with self.transaction() as db:
                db.execute("INSERT INTO meta(key, value) VALUES ('encryption', ?)", (record,))
            self.cipher = Cipher(data_key)

    @property
    def encrypted(self) -> bool:
        return self.cipher is not None

    def _aad(self, column: str) -> bytes:
        return f"faceprint:{self.WHAT}:{column}".encode()

    def seal(self, data: bytes | bytearray | memoryview | None, column: str) -> bytes | None:
        """``data`` as stored in ``column`` ("table.column"): sealed when the database is encrypted."""
        if data is None:
            return None
        return bytes(data) if self.cipher is None else self.cipher.seal(data, self._aad(column))

    def unseal(self, blob: bytes | bytearray | memoryview | None, column: str) -> bytes | None:
        if blob is None:
            return None
        return bytes(blob) if self.cipher is None else self.cipher.open(blob, self._aad(column), str(self.path))

    def encrypt_now(self, *, new_data_key: bool = False) -> dict[str, int]:
        """Seal every value of :attr:`SEALED` (a clear database: migrate it; an encrypted one with
        ``new_data_key``: re-seal under a fresh data key), in one transaction; then truncate the
        log and VACUUM, so no clear or old-key page stays in the files.  Returns values sealed
        per column."""
        import secrets

        from faceprint.crypto import Cipher, current_master_key, wrap_data_key

        if self.cipher is not None and not new_data_key:
            return {}
        old = self.cipher
        data_key = secrets.token_bytes(32)
        new = Cipher(data_key)
        counts: dict[str, int] = {}
        with self.transaction() as db:
            for table, col in self.SEALED:
                column = f"{table}.{col}"
                rows = db.execute(f"SELECT {self.ROWID} AS row_ref, {col} FROM {table} WHERE {col} IS NOT NULL").fetchall()
                for r in rows:
                    clear = bytes(r[1]) if old is None else old.open(r[1], self._aad(column), str(self.path))
                    db.execute(f"UPDATE {table} SET {col}=? WHERE {self.ROWID}=?", (new.seal(clear, self._aad(column)), r[0]))
                counts[column] = len(rows)
            record = wrap_data_key(current_master_key(create=True), data_key, self.WHAT)
            db.execute("INSERT INTO meta(key, value) VALUES ('encryption', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (record,))
            self.cipher = new
        self._compact()
        return counts

    def _compact(self) -> None:
        """Rewrite the file without free pages (after a re-seal: no old page stays in it)."""
        self.checkpoint()
        with self._lock:
            self._db.execute("VACUUM")
        self.checkpoint()

    # -- dialect: the few SQL spellings that differ between the engines -------------------------
    @staticmethod
    def _agg_distinct(column: str) -> str:
        """The distinct values of ``column`` in a group, joined with commas."""
        return f"GROUP_CONCAT(DISTINCT {column})"

    @staticmethod
    def _ordered(column: str) -> str:
        """``column`` for ORDER BY, in byte order on every engine."""
        return column

    @staticmethod
    def _json_int(column: str, key: str) -> str:
        """The integer at ``key`` of the JSON object in ``column`` (NULL when absent)."""
        return f"json_extract({column}, '$.{key}')"

    def checkpoint(self) -> bool:
        """Copy the write-ahead log into the database and truncate it to zero bytes, so rows
        just deleted (zeroed in the database by ``secure_delete``) no longer linger in the
        log's older frames.  False when another connection's open read kept part of the log
        (it is truncated at a later checkpoint)."""
        with self._lock:
            busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return busy == 0

    def read_in(self, sql: str, ids: Sequence[int], *, db: Any = None) -> list[Any]:
        """The rows of ``sql`` for every id of ``ids``, where ``{ids}`` in ``sql`` is the place of
        the IN list: in statements of at most :data:`IN_CHUNK` ids (SQLite caps the parameters of
        one statement at 32,766, PostgreSQL at 65,535); ``db``: inside that open transaction."""
        want = [int(i) for i in ids]
        rows: list[Any] = []
        for start in range(0, len(want), IN_CHUNK):
            chunk = want[start : start + IN_CHUNK]
            query = sql.replace("{ids}", ",".join("?" * len(chunk)))
            rows += db.execute(query, chunk).fetchall() if db is not None else self.read(query, chunk)
        return rows

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @property
    def schema_version(self) -> int:
        return int(self.read("PRAGMA user_version")[0][0])
