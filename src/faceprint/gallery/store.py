"""The embedded gallery store: one SQLite file (WAL, transactions, versioned migrations).

Tables: subjects, templates (vector bytes + model id + provenance), audit (every change,
who and when), api_keys (hashed keys and scopes for the REST service), meta (a
``generation`` counter bumped by every template change, so an index saved beside the
database can tell whether it is current).  A write is acknowledged only after its
transaction commits; with WAL and ``synchronous=FULL`` a crash loses nothing acknowledged.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import InputError
from faceprint.names import clean_name, lookup_name, validate_metadata
from faceprint.postgres import PostgresStorage, is_postgres_url
from faceprint.sqlite import Database, StoreError, now

__all__ = ["MIGRATIONS", "NewTemplate", "PgStore", "Store", "StoreError", "StoredTemplate", "Subject", "SubjectExists", "SubjectNotFound", "now", "open_store"]


class SubjectNotFound(InputError):
    http_status = 404
    code = "subject_not_found"


class SubjectExists(InputError):
    http_status = 409
    code = "subject_exists"


# Each entry upgrades the schema by one version; never edit a released entry, append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE subjects (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        metadata TEXT NOT NULL DEFAULT '{}',
        created TEXT NOT NULL,
        updated TEXT NOT NULL
    );
    CREATE TABLE templates (
        id INTEGER PRIMARY KEY,
        subject_id INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
        model_id TEXT NOT NULL,
        dim INTEGER NOT NULL,
        vector BLOB NOT NULL,
        quality REAL,
        face_score REAL,
        image_sha256 TEXT,
        source TEXT,
        box TEXT,
        created TEXT NOT NULL
    );
    CREATE INDEX templates_subject ON templates(subject_id);
    CREATE INDEX templates_model ON templates(model_id);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        subject_id INTEGER,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        prefix TEXT NOT NULL UNIQUE,
        hash TEXT NOT NULL,
        scopes TEXT NOT NULL,
        created TEXT NOT NULL,
        revoked TEXT
    );
    INSERT INTO meta(key, value) VALUES ('generation', '0');
    """,
    # 2: photos kept at the user's request (enrol --keep-images), so templates can be
    # re-made when the default model changes; erased with the last template using them
    """
    CREATE TABLE images (
        sha256 TEXT PRIMARY KEY,
        bytes BLOB NOT NULL,
        created TEXT NOT NULL
    );
    """,
]


@dataclass(frozen=True)
class Subject:
    id: int
    name: str
    metadata: dict[str, Any]
    created: str
    updated: str
    templates: int = 0
    models: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "metadata": self.metadata,
            "created": self.created,
            "updated": self.updated,
            "templates": self.templates,
            "models": list(self.models),
        }


@dataclass(frozen=True)
class StoredTemplate:
    id: int
    subject_id: int
    model_id: str
    vector: np.ndarray
    quality: float | None = None
    face_score: float | None = None
    image_sha256: str | None = None
    source: str | None = None
    box: list[float] | None = None
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model_id": self.model_id,
            "face_score": self.face_score,
            "quality": self.quality,
            "image_sha256": self.image_sha256,
            "source": self.source,
            "box": self.box,
            "created": self.created,
        }


@dataclass
class NewTemplate:
    vector: np.ndarray
    model_id: str
    face_score: float | None = None
    quality: float | None = None
    image_sha256: str | None = None
    source: str | None = None
    box: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Store(Database):
    """Thread-safe access to one gallery database (one connection, serialised by a lock)."""

    MIGRATIONS = MIGRATIONS
    APPLICATION_ID = 0  # galleries predate application ids
    WHAT = "gallery"
    SEALED = (("templates", "vector"), ("images", "bytes"))  # encrypted at rest (faceprint.crypto)

    @property
    def generation(self) -> str:
        """Changes whenever templates change (index freshness check)."""
        return self.read("SELECT value FROM meta WHERE key='generation'")[0][0]

    def _bump(self, db: sqlite3.Connection) -> tuple[str, str]:
        """Advance the generation inside a write transaction: (before, after)."""
        before = db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]
        after = str(int(before) + 1)
        db.execute("UPDATE meta SET value=? WHERE key='generation'", (after,))
        return str(before), after

    def _audit(self, db: sqlite3.Connection, actor: str, action: str, subject_id: int | None, detail: dict[str, Any]) -> None:
        db.execute("INSERT INTO audit(at, actor, action, subject_id, detail) VALUES (?,?,?,?,?)", (now(), actor, action, subject_id, json.dumps(detail)))

    # -- subjects --------------------------------------------------------------
    def _subject_row(self, db: sqlite3.Connection, name: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM subjects WHERE name=?", (lookup_name(name),)).fetchone()
        if row is None:
            raise SubjectNotFound(f"no subject named {name!r}")
        return row

    def subject(self, name: str) -> Subject:
        rows = self.subjects(name=name)
        if not rows:
            raise SubjectNotFound(f"no subject named {name!r}")
        return rows[0]

    def subject_by_id(self, subject_id: int) -> Subject:
        rows = self.subjects(subject_id=subject_id)
        if not rows:
            raise SubjectNotFound(f"no subject with id {subject_id}")
        return rows[0]

    def subjects(self, *, name: str | None = None, subject_id: int | None = None, limit: int | None = None, offset: int = 0) -> list[Subject]:
        where, params = [], []
        if name is not None:
            where.append("s.name = ?")
            params.append(lookup_name(name))
        if subject_id is not None:
            where.append("s.id = ?")
            params.append(subject_id)
        sql = (
            f"SELECT s.*, COUNT(t.id) AS n, {self._agg_distinct('t.model_id')} AS models FROM subjects s "
            "LEFT JOIN templates t ON t.subject_id = s.id "
            + ("WHERE " + " AND ".join(where) + " " if where else "")
            + f"GROUP BY s.id ORDER BY {self._ordered('s.name')}"
            + (f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else "")
        )
        return [
            Subject(
                r["id"],
                r["name"],
                json.loads(r["metadata"]),
                r["created"],
                r["updated"],
                r["n"],
                tuple(sorted((r["models"] or "").split(","))) if r["models"] else (),
            )
            for r in self.read(sql, params)
        ]

    def count_subjects(self) -> int:
        return int(self.read("SELECT COUNT(*) FROM subjects")[0][0])

    def create_subject(self, name: str, metadata: dict[str, Any] | None = None, *, actor: str = "local") -> Subject:
        name = validate_name(name)
        metadata = validate_metadata(metadata)
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM subjects WHERE name=?", (name,)).fetchone():
                raise SubjectExists(f"a subject named {name!r} already exists")
            ts = now()
            sid = db.execute(
                "INSERT INTO subjects(name, metadata, created, updated) VALUES (?,?,?,?) RETURNING id", (name, json.dumps(metadata or {}), ts, ts)
            ).fetchone()[0]
            self._audit(db, actor, "create_subject", sid, {"name": name})
        return self.subject(name)

    def add_templates(
        self,
        name: str,
        templates: Sequence[NewTemplate],
        *,
        create: bool = True,
        metadata: dict[str, Any] | None = None,
        actor: str = "local",
        images: dict[str, bytes] | None = None,
        sync: Callable[[list[int]], None] | None = None,
    ) -> tuple[Subject, list[int], tuple[str, str]]:
        """Add templates to a subject (created if missing and ``create``), in one transaction;
        ``images`` (sha256 -> file bytes) are kept for later re-embedding; ``sync(ids)`` runs
        inside the transaction once the rows are written (a shared vector backend takes the
        vectors there: if it fails, nothing is committed).  Returns the subject, the new
        template ids and the store generation (before, after)."""
        name = validate_name(name)
        metadata = validate_metadata(metadata)
        ids: list[int] = []
        with self.transaction() as db:
            row = db.execute("SELECT id FROM subjects WHERE name=?", (name,)).fetchone()
            ts = now()
            if row is None:
                if not create:
                    raise SubjectNotFound(f"no subject named {name!r}")
                sid = db.execute(
                    "INSERT INTO subjects(name, metadata, created, updated) VALUES (?,?,?,?) RETURNING id", (name, json.dumps(metadata or {}), ts, ts)
                ).fetchone()[0]
                self._audit(db, actor, "create_subject", sid, {"name": name})
            else:
                sid = row["id"]
                if metadata:
                    db.execute("UPDATE subjects SET metadata=?, updated=? WHERE id=?", (json.dumps(metadata), ts, sid))
            for t in templates:
                vec = np.ascontiguousarray(t.vector, dtype=np.float32)
                cur = db.execute(
                    "INSERT INTO templates(subject_id, model_id, dim, vector, quality, face_score, image_sha256, source, box, created) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?) RETURNING id",
                    (
                        sid,
                        t.model_id,
                        int(vec.size),
                        self.seal(vec.tobytes(), "templates.vector"),
                        t.quality,
                        t.face_score,
                        t.image_sha256,
                        t.source,
                        json.dumps(t.box) if t.box is not None else None,
                        ts,
                    ),
                )
                ids.append(int(cur.fetchone()[0]))
            for sha, data in (images or {}).items():
                db.execute(
                    "INSERT INTO images(sha256, bytes, created) VALUES (?,?,?) ON CONFLICT (sha256) DO NOTHING", (sha, self.seal(data, "images.bytes"), ts)
                )
            db.execute("UPDATE subjects SET updated=? WHERE id=?", (ts, sid))
            self._audit(db, actor, "add_templates", sid, {"templates": ids, "sources": [t.source for t in templates]})
            generations = self._bump(db)
            if sync is not None:
                sync(ids)
        return self.subject_by_id(sid), ids, generations

    def update_subject(self, name: str, *, new_name: str | None = None, metadata: dict[str, Any] | None = None, actor: str = "local") -> Subject:
        """Rename and/or replace the metadata of a subject, in one audited transaction."""
        if metadata is not None:
            metadata = validate_metadata(metadata)
        with self.transaction() as db:
            row = self._subject_row(db, name)
            ts = now()
            if new_name is not None:
                new = validate_name(new_name)
                if new != row["name"]:
                    if db.execute("SELECT 1 FROM subjects WHERE name=?", (new,)).fetchone():
                        raise SubjectExists(f"a subject named {new!r} already exists")
                    db.execute("UPDATE subjects SET name=?, updated=? WHERE id=?", (new, ts, row["id"]))
                    self._audit(db, actor, "rename_subject", row["id"], {"from": row["name"], "to": new})
            if metadata is not None:
                db.execute("UPDATE subjects SET metadata=?, updated=? WHERE id=?", (json.dumps(metadata), ts, row["id"]))
                self._audit(db, actor, "update_metadata", row["id"], {"keys": sorted(metadata)})
        return self.subject_by_id(int(row["id"]))

    def rename_subject(self, old: str, new: str, *, actor: str = "local") -> Subject:
        return self.update_subject(old, new_name=new, actor=actor)

    def delete_subject(
        self, name: str, *, actor: str = "local", sync: Callable[[list[int]], None] | None = None
    ) -> tuple[int, list[int], tuple[str, str], dict[str, Any]]:
        """Erase a subject: its row, templates and kept photos (zeroed in the file by
        ``secure_delete``), and every name, file name and photo hash the audit log held about
        it (its entries keep only the action, the time, the actor and the subject id); then
        the write-ahead log is checkpointed and truncated.  ``sync(template ids)`` runs inside
        the transaction (a shared vector backend deletes the vectors there).  Returns (subject id, template ids
        removed, store generation before and after, what was erased)."""
        with self.transaction() as db:
            row = self._subject_row(db, name)
            sid = int(row["id"])
            tids = [r[0] for r in db.execute("SELECT id FROM templates WHERE subject_id=?", (sid,))]
            db.execute("DELETE FROM templates WHERE subject_id=?", (sid,))
            db.execute("DELETE FROM subjects WHERE id=?", (sid,))
            images = db.execute("DELETE FROM images WHERE sha256 NOT IN (SELECT image_sha256 FROM templates WHERE image_sha256 IS NOT NULL)").rowcount
            redacted = db.execute('UPDATE audit SET detail=\'{"redacted": "subject erased"}\' WHERE subject_id=?', (sid,)).rowcount
            self._audit(db, actor, "delete_subject", sid, {"templates": len(tids), "images": images})
            generations = self._bump(db)
            if sync is not None:
                sync(tids)
        truncated = self.checkpoint()
        return sid, tids, generations, {"templates": len(tids), "kept_photos": images, "audit_entries_redacted": redacted, "wal_truncated": truncated}

    # -- templates -------------------------------------------------------------
    def templates(self, *, subject_id: int | None = None, model_id: str | None = None) -> list[StoredTemplate]:
        where, params = [], []
        if subject_id is not None:
            where.append("subject_id=?")
            params.append(subject_id)
        if model_id is not None:
            where.append("model_id=?")
            params.append(model_id)
        rows = self.read("SELECT * FROM templates" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id", params)
        return [
            StoredTemplate(
                r["id"],
                r["subject_id"],
                r["model_id"],
                np.frombuffer(self.unseal(r["vector"], "templates.vector"), np.float32).copy(),
                r["quality"],
                r["face_score"],
                r["image_sha256"],
                r["source"],
                json.loads(r["box"]) if r["box"] else None,
                r["created"],
            )
            for r in rows
        ]

    def vectors(self, model_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(template ids, subject ids, (n, dim) vectors) of every template of ``model_id``."""
        rows = self.read("SELECT id, subject_id, dim, vector FROM templates WHERE model_id=? ORDER BY id", (model_id,))
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        dim = rows[0]["dim"]
        vecs = np.frombuffer(b"".join(self.unseal(r["vector"], "templates.vector") for r in rows), np.float32).reshape(len(rows), dim)
        return np.array([r["id"] for r in rows], np.int64), np.array([r["subject_id"] for r in rows], np.int64), vecs.copy()

    def template_ids(self, model_id: str, *, db: Any = None) -> np.ndarray:
        """The ids of every template of ``model_id``, sorted (``db``: inside that open transaction)."""
        sql, params = "SELECT id FROM templates WHERE model_id=? ORDER BY id", (model_id,)
        rows = db.execute(sql, params).fetchall() if db is not None else self.read(sql, params)
        return np.array([int(r[0]) for r in rows], np.int64)

    def vectors_of(self, template_ids: Sequence[int], *, db: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, (n, dim) vectors) of the given templates that exist, in id order (``db``: read
        inside that open transaction)."""
        found = self.read_in("SELECT id, dim, vector FROM templates WHERE id IN ({ids}) ORDER BY id", template_ids, db=db)
        if not found:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        dim = found[0]["dim"]
        vecs = np.frombuffer(b"".join(self.unseal(r["vector"], "templates.vector") for r in found), np.float32).reshape(len(found), dim)
        return np.array([r["id"] for r in found], np.int64), vecs.copy()

    def owners_of(self, template_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
        """template id -> (subject id, subject name) for the templates that exist, each chunk
        read in one statement (a consistent view even while other processes delete)."""
        sql = "SELECT t.id, t.subject_id, s.name FROM templates t JOIN subjects s ON s.id = t.subject_id WHERE t.id IN ({ids})"
        return {r[0]: (r[1], r[2]) for r in self.read_in(sql, template_ids)}

    def image(self, sha256: str) -> bytes | None:
        rows = self.read("SELECT bytes FROM images WHERE sha256=?", (sha256,))
        return self.unseal(rows[0][0], "images.bytes") if rows else None

    def template_count(self, model_id: str) -> int:
        return int(self.read("SELECT COUNT(*) FROM templates WHERE model_id=?", (model_id,))[0][0])

    def model_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.read("SELECT model_id, COUNT(*) FROM templates GROUP BY model_id")}

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        return [dict(r) | {"detail": json.loads(r["detail"])} for r in self.read("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))]


class PgStore(PostgresStorage, Store):
    """The gallery store on PostgreSQL (schema ``faceprint_gallery``): the same tables,
    migrations, audit and erasure as :class:`Store`, shared by every replica pointed at it."""


def open_store(target: str | Path, *, encrypt: bool | None = None) -> Store:
    """The gallery store at ``target``: a ``postgresql://`` URL, else a SQLite file path."""
    if is_postgres_url(target):
        return PgStore(str(target), encrypt=encrypt)
    return Store(target, encrypt=encrypt)


def validate_name(name: str) -> str:
    return clean_name(name, "a subject name")
