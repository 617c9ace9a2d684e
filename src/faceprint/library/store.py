"""The photo library's store: one SQLite file of photos, faces, people and the user's corrections.

Tables
------
photos      every file seen under an indexed folder: path, content hash, size and
            mtime (to skip unchanged files without hashing), status ``ok`` /
            ``error`` (with the reason) / ``duplicate`` (same content as another
            photo), the root folder it was found under.
faces       every face found: box, landmarks, detector score, quality, the
            template (vector bytes + model id), a JPEG thumbnail (optional), and
            the person it belongs to with who decided it (``auto`` by clustering,
            ``user`` by a correction; user decisions are never undone by a run).
people      a person: an id and an optional, unique name.  Clusters that nobody
            named yet are people with no name.
rejections  "this face is not this person" (face, person): hard constraints.
apart       pairs of people the user split or said are different: never merged.
audit       every correction, who and when.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import InputError
from faceprint.names import clean_name, lookup_name
from faceprint.postgres import PostgresStorage, is_postgres_url
from faceprint.sqlite import Database, StoreError, now

__all__ = [
    "FaceNotFound",
    "LibraryStore",
    "NewFace",
    "PgLibraryStore",
    "open_library_store",
    "PersonExists",
    "PersonNotFound",
    "PhotoNotFound",
    "StoreError",
    "StoredFace",
    "default_library_path",
]


class PersonNotFound(InputError):
    http_status = 404
    code = "person_not_found"


class PersonExists(InputError):
    http_status = 409
    code = "person_exists"


class FaceNotFound(InputError):
    http_status = 404
    code = "face_not_found"


class PhotoNotFound(InputError):
    http_status = 404
    code = "photo_not_found"


MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE photos (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        root TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime REAL NOT NULL,
        kind TEXT NOT NULL DEFAULT 'image',
        width INTEGER,
        height INTEGER,
        status TEXT NOT NULL,
        error TEXT,
        indexed TEXT NOT NULL
    );
    CREATE INDEX photos_sha ON photos(sha256);
    CREATE INDEX photos_root ON photos(root);
    CREATE TABLE people (
        id INTEGER PRIMARY KEY,
        name TEXT UNIQUE,
        created TEXT NOT NULL,
        updated TEXT NOT NULL
    );
    CREATE TABLE faces (
        id INTEGER PRIMARY KEY,
        photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        frame REAL,
        box TEXT NOT NULL,
        landmarks TEXT NOT NULL,
        det_score REAL NOT NULL,
        quality REAL NOT NULL,
        quality_detail TEXT NOT NULL DEFAULT '{}',
        model_id TEXT NOT NULL,
        vector BLOB NOT NULL,
        thumb BLOB,
        person_id INTEGER REFERENCES people(id) ON DELETE SET NULL,
        assigned TEXT,
        created TEXT NOT NULL
    );
    CREATE INDEX faces_photo ON faces(photo_id);
    CREATE INDEX faces_person ON faces(person_id);
    CREATE TABLE rejections (
        face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
        person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        created TEXT NOT NULL,
        PRIMARY KEY (face_id, person_id)
    );
    CREATE TABLE apart (
        a INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        b INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        PRIMARY KEY (a, b)
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    """,
    # 2: suggestions the user skipped ("ask me later"): not asked again until the candidate changes
    """
    CREATE TABLE skipped (
        person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        candidate TEXT NOT NULL,
        created TEXT NOT NULL,
        PRIMARY KEY (person_id, candidate)
    );
    """,
    # 3: the library people live in -- hidden people, faces drawn by hand or imported from XMP
    # regions (``origin``), the date a photo was taken (EXIF DateTimeOriginal, ISO; '' when none)
    """
    ALTER TABLE people ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE faces ADD COLUMN origin TEXT NOT NULL DEFAULT 'detected';
    ALTER TABLE photos ADD COLUMN taken TEXT;
    CREATE INDEX faces_model ON faces(model_id);
    """,
]

# a person by name: exactly, else in another case (names differ by more than case: rename_person)
_BY_NAME = ("SELECT * FROM people WHERE name=?", "SELECT * FROM people WHERE LOWER(name)=LOWER(?)")
ORIGINS = ("detected", "manual", "xmp")  # found by the detector; a box drawn by the user; a region imported from XMP
PEOPLE_SORTS = ("faces", "name", "recent")


@dataclass(frozen=True)
class StoredFace:
    id: int
    photo_id: int
    path: str
    box: list[float]
    det_score: float
    quality: float
    person_id: int | None
    assigned: str | None
    vector: np.ndarray | None = None
    frame: float | None = None  # video time (s); None for a still
    unified: int | None = None  # unified quality 0-100 (faceprint.quality), when indexed with it
    origin: str = "detected"  # see ORIGINS
    model_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "photo_id": self.photo_id,
            "path": self.path,
            "box": self.box,
            "det_score": round(self.det_score, 4),
            "quality": round(self.quality, 3),
            "unified_quality": self.unified,
            "person_id": self.person_id,
            "assigned": self.assigned,
            "origin": self.origin,
        }


@dataclass
class NewFace:
    box: list[float]
    landmarks: list[list[float]]
    det_score: float
    quality: float
    quality_detail: dict[str, Any]
    vector: np.ndarray
    thumb: bytes | None = None
    frame: float | None = None
    origin: str = "detected"


class LibraryStore(Database):
    """Thread-safe access to one library database."""

    MIGRATIONS = MIGRATIONS
    APPLICATION_ID = 0x4650_4C42  # "FPLB"
    WHAT = "photo library"
    SEALED = (("faces", "vector"), ("faces", "thumb"))  # encrypted at rest (faceprint.crypto)

    def change_key(self) -> tuple[int, int]:
        """Changes whenever the library changes, by this connection (``total_changes``) or any
        other (``PRAGMA data_version``): a cheap key for caches of derived views."""
        with self._lock:
            return int(self._db.total_changes), int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _audit(self, db: sqlite3.Connection, actor: str, action: str, detail: dict[str, Any]) -> None:
        db.execute("INSERT INTO audit(at, actor, action, detail) VALUES (?,?,?,?)", (now(), actor, action, json.dumps(detail)))

    # -- photos ----------------------------------------------------------------
    def photos_by_sha(self, sha256: str) -> list[sqlite3.Row]:
        return self.read("SELECT * FROM photos WHERE sha256=? ORDER BY id", (sha256,))

    def photos_under(self, root: str) -> dict[str, sqlite3.Row]:
        """path -> row of every photo found under ``root`` (one query for a whole run)."""
        return {r["path"]: r for r in self.read("SELECT * FROM photos WHERE root=?", (root,))}

    def touch_photo(self, photo_id: int, *, size: int, mtime: float, path: str | None = None, root: str | None = None) -> None:
        """Same content, new size/mtime (or a moved file): keep its faces and their people."""
        with self.transaction() as db:
            if path is None:
                db.execute("UPDATE photos SET size=?, mtime=? WHERE id=?", (size, mtime, photo_id))
            else:
                db.execute("UPDATE photos SET size=?, mtime=?, path=?, root=? WHERE id=?", (size, mtime, path, root, photo_id))

    def put_photo(
        self,
        *,
        path: str,
        root: str,
        sha256: str,
        size: int,
        mtime: float,
        kind: str,
        status: str,
        error: str | None = None,
        width: int | None = None,
        height: int | None = None,
        faces: Sequence[NewFace] = (),
        model_id: str = "",
        taken: str | None = None,
    ) -> tuple[int, list[int]]:
        """Insert (or replace, for a changed file) a photo and its faces in one transaction."""
        with self.transaction() as db:
            old = db.execute("SELECT id FROM photos WHERE path=?", (path,)).fetchone()
            if old is not None:
                db.execute("DELETE FROM photos WHERE id=?", (old["id"],))  # faces go with it (cascade)
            cur = db.execute(
                "INSERT INTO photos(path, root, sha256, size, mtime, kind, width, height, status, error, indexed, taken) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                (path, root, sha256, size, mtime, kind, width, height, status, error, now(), taken),
            )
            photo_id = int(cur.fetchone()[0])
            ids = [self._insert_face(db, photo_id, f, model_id) for f in faces]
        if old is not None:
            self.checkpoint()  # a changed file's old faces are gone: truncate the log that held them
        return photo_id, ids

    def _insert_face(self, db: Any, photo_id: int, f: NewFace, model_id: str, person_id: int | None = None) -> int:
        if f.origin not in ORIGINS:
            raise InputError(f"a face's origin must be one of {', '.join(ORIGINS)}, got {f.origin!r}")
        vec = np.ascontiguousarray(f.vector, np.float32)
        cur = db.execute(
            "INSERT INTO faces(photo_id, frame, box, landmarks, det_score, quality, quality_detail, model_id, vector, thumb, created, origin, person_id, assigned) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
            (
                photo_id,
                f.frame,
                json.dumps(f.box),
                json.dumps(f.landmarks),
                float(f.det_score),
                float(f.quality),
                json.dumps(f.quality_detail),
                model_id,
                self.seal(vec.tobytes(), "faces.vector"),
                self.seal(f.thumb, "faces.thumb"),
                now(),
                f.origin,
                person_id,
                "user" if person_id is not None else None,
            ),
        )
        return int(cur.fetchone()[0])

    def add_face(self, photo_id: int, face: NewFace, *, model_id: str, person_id: int | None = None, actor: str = "local") -> int:
        """Add one face to an indexed photo (a box the user drew, a region imported from XMP),
        placed in ``person_id`` by the user when given."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM photos WHERE id=? AND status='ok'", (photo_id,)).fetchone() is None:
                raise PhotoNotFound(f"no indexed photo with id {photo_id}")
            if person_id is not None and db.execute("SELECT 1 FROM people WHERE id=?", (person_id,)).fetchone() is None:
                raise PersonNotFound(f"no person with id {person_id}")
            face_id = self._insert_face(db, photo_id, face, model_id, person_id)
            self._audit(db, actor, "add_face", {"face": face_id, "photo": photo_id, "person": person_id, "origin": face.origin})
            return face_id

    def set_taken(self, rows: Sequence[tuple[int, str]]) -> None:
        """Record when photos were taken: (photo id, ISO date or '' for unknown)."""
        with self.transaction() as db:
            db.executemany("UPDATE photos SET taken=? WHERE id=?", [(t, i) for i, t in rows])

    def replace_vectors(self, rows: Sequence[tuple[int, np.ndarray]], model_id: str) -> None:
        """A new embedder's templates for existing faces: every box, person, decision and
        rejection stays with its face (a model change keeps what the user said)."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE faces SET vector=?, model_id=? WHERE id=?",
                [(self.seal(np.ascontiguousarray(v, np.float32).tobytes(), "faces.vector"), model_id, int(i)) for i, v in rows],
            )

    def delete_faces(self, face_ids: Sequence[int], *, actor: str = "local") -> int:
        """Remove faces (not a face at all, a box drawn by mistake) with their templates and
        thumbnails.  A later run does not find them again: the photo is unchanged."""
        ids = [int(i) for i in face_ids]
        if not ids:
            return 0
        with self.transaction() as db:
            n = self._delete_in(db, "faces", ids)
            self._drop_empty_unnamed(db)
            self._audit(db, actor, "delete_faces", {"faces": ids})
        self.checkpoint()  # their templates and thumbnails are zeroed; truncate the log too
        return n

    @staticmethod
    def _delete_in(db: Any, table: str, ids: Sequence[int]) -> int:
        n = 0
        for lo in range(0, len(ids), 500):
            chunk = ids[lo : lo + 500]
            n += db.execute(f"DELETE FROM {table} WHERE id IN ({','.join('?' * len(chunk))})", chunk).rowcount
        return n

    def delete_photos(self, photo_ids: Iterable[int]) -> int:
        ids = list(photo_ids)
        if not ids:
            return 0
        with self.transaction() as db:
            n = self._delete_in(db, "photos", ids)
            self._drop_empty_unnamed(db)
        self.checkpoint()  # the photos' faces, templates and thumbnails are zeroed; truncate the log too
        return n

    def _drop_empty_unnamed(self, db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM people WHERE name IS NULL AND id NOT IN (SELECT DISTINCT person_id FROM faces WHERE person_id IS NOT NULL)")

    def counts(self) -> dict[str, int]:
        r = self.read(
            "SELECT (SELECT COUNT(*) FROM photos WHERE status='ok') AS photos, (SELECT COUNT(*) FROM photos WHERE status='error') AS errors, "
            "(SELECT COUNT(*) FROM photos WHERE status='duplicate') AS duplicates, (SELECT COUNT(*) FROM faces) AS faces, "
            "(SELECT COUNT(*) FROM people) AS people, (SELECT COUNT(*) FROM people WHERE name IS NOT NULL) AS named"
        )[0]
        return {k: int(r[k]) for k in r.keys()}

    # -- faces -----------------------------------------------------------------
    def faces(
        self, *, model_id: str | None = None, person_id: int | None = None, with_vectors: bool = False, face_ids: Sequence[int] | None = None
    ) -> list[StoredFace]:
        where, params = [], []
        if model_id is not None:
            where.append("f.model_id=?")
            params.append(model_id)
        if person_id is not None:
            where.append("f.person_id=?")
            params.append(person_id)
        if face_ids is not None:
            if not face_ids:
                return []
            where.append(f"f.id IN ({','.join('?' * len(face_ids))})")
            params.extend(int(i) for i in face_ids)
        sql = (
            "SELECT f.id, f.photo_id, p.path, f.box, f.det_score, f.quality, f.person_id, f.assigned, f.frame, f.origin, f.model_id, "
            + self._json_int("f.quality_detail", "unified")
            + " AS unified"
            + (", f.vector" if with_vectors else "")
            + " FROM faces f JOIN photos p ON p.id = f.photo_id"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY f.id"
        )
        out = []
        for r in self.read(sql, params):
            vec = np.frombuffer(self.unseal(r["vector"], "faces.vector"), np.float32).copy() if with_vectors else None
            out.append(
                StoredFace(
                    r["id"],
                    r["photo_id"],
                    r["path"],
                    json.loads(r["box"]),
                    float(r["det_score"]),
                    float(r["quality"]),
                    r["person_id"],
                    r["assigned"],
                    vec,
                    r["frame"],
                    r["unified"],
                    r["origin"],
                    r["model_id"],
                )
            )
        return out

    def face(self, face_id: int) -> StoredFace:
        rows = self.faces(face_ids=[face_id], with_vectors=True)
        if not rows:
            raise FaceNotFound(f"no face with id {face_id}")
        return rows[0]

    def thumb(self, face_id: int) -> bytes | None:
        rows = self.read("SELECT thumb FROM faces WHERE id=?", (face_id,))
        if not rows:
            raise FaceNotFound(f"no face with id {face_id}")
        return self.unseal(rows[0]["thumb"], "faces.thumb")

    # -- people ----------------------------------------------------------------
    def person(self, person_id: int) -> sqlite3.Row:
        rows = self.read("SELECT * FROM people WHERE id=?", (person_id,))
        if not rows:
            raise PersonNotFound(f"no person with id {person_id}")
        return rows[0]

    def person_by_name(self, name: str) -> sqlite3.Row:
        """The person of this name; any case (names differ by more than case: see
        :meth:`rename_person`)."""
        wanted = " ".join(lookup_name(name).split())
        for sql in _BY_NAME:
            rows = self.read(sql, (wanted,))
            if rows:
                return rows[0]
        raise PersonNotFound(f"no person named {name!r}")

    def person_for_name(self, name: str, *, actor: str = "local") -> int:
        """The id of the person of this name (any case), created in the same transaction when
        there is none."""
        wanted = _clean_name(name)
        with self.transaction() as db:
            for sql in _BY_NAME:
                row = db.execute(sql, (wanted,)).fetchone()
                if row is not None:
                    return int(row["id"])
            return self._new_person(db, wanted, actor)

    def people(self, *, hidden: bool | None = None) -> list[dict[str, Any]]:
        """Every person with their face count, named people first, then by size
        (``hidden``: only the hidden ones, True, or only the visible ones, False)."""
        where = "" if hidden is None else f" WHERE pe.hidden={int(hidden)}"
        rows = self.read(
            "SELECT pe.id, pe.name, pe.hidden, COUNT(f.id) AS faces FROM people pe "
            f"LEFT JOIN faces f ON f.person_id = pe.id{where} GROUP BY pe.id, pe.name, pe.hidden ORDER BY pe.name IS NULL, COUNT(f.id) DESC, pe.id"
        )
        return [{"id": r["id"], "name": r["name"], "faces": int(r["faces"]), "hidden": bool(r["hidden"])} for r in rows]

    def people_page(
        self, *, offset: int = 0, limit: int = 60, sort: str = "faces", query: str | None = None, hidden: bool = False
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of people and how many there are in all: the visible people (``hidden``:
        the hidden ones), whose name contains ``query`` (any case), sorted by face count
        (named people first), by name, or most recently added first."""
        if sort not in PEOPLE_SORTS:
            raise InputError(f"sort must be one of {', '.join(PEOPLE_SORTS)}, got {sort!r}")
        where, params = ["pe.hidden=?"], [int(hidden)]
        if query:
            like = query.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("LOWER(pe.name) LIKE ? ESCAPE '\\'")
            params.append(f"%{like}%")
        cond = " AND ".join(where)
        total = int(self.read(f"SELECT COUNT(*) FROM people pe WHERE {cond}", params)[0][0])
        order = {
            "faces": "pe.name IS NULL, faces DESC, pe.id",
            "name": "pe.name IS NULL, LOWER(pe.name), pe.id",
            "recent": "pe.created DESC, pe.id DESC",
        }[sort]
        rows = self.read(
            "SELECT pe.id, pe.name, pe.hidden, pe.created, (SELECT COUNT(*) FROM faces f WHERE f.person_id = pe.id) AS faces "
            f"FROM people pe WHERE {cond} ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, int(limit), int(offset)],
        )
        return [{"id": r["id"], "name": r["name"], "faces": int(r["faces"]), "hidden": bool(r["hidden"]), "created": r["created"]} for r in rows], total

    def covers(self, person_ids: Sequence[int]) -> dict[int, int]:
        """person id -> the id of their best face with a thumbnail (for the people page)."""
        rows = self.read_in(
            "SELECT person_id, id FROM (SELECT person_id, id, ROW_NUMBER() OVER (PARTITION BY person_id ORDER BY quality DESC, id) AS r "
            "FROM faces WHERE person_id IN ({ids}) AND thumb IS NOT NULL) ranked WHERE r = 1",
            person_ids,
        )
        return {r["person_id"]: r["id"] for r in rows}

    # -- photos of people --------------------------------------------------------------
    def photo(self, photo_id: int) -> dict[str, Any]:
        """A photo with every face on it (box, person, name, origin)."""
        rows = self.read("SELECT id, path, root, kind, width, height, status, taken FROM photos WHERE id=?", (photo_id,))
        if not rows:
            raise PhotoNotFound(f"no photo with id {photo_id}")
        r = rows[0]
        faces = self.read(
            "SELECT f.id, f.box, f.person_id, f.assigned, f.origin, f.frame, pe.name, pe.hidden FROM faces f LEFT JOIN people pe ON pe.id = f.person_id "
            "WHERE f.photo_id=? ORDER BY f.id",
            (photo_id,),
        )
        return {
            "id": r["id"],
            "path": r["path"],
            "kind": r["kind"],
            "width": r["width"],
            "height": r["height"],
            "status": r["status"],
            "taken": r["taken"] or None,
            "faces": [
                {
                    "id": f["id"],
                    "box": json.loads(f["box"]),
                    "person_id": f["person_id"],
                    "name": f["name"],
                    "hidden": bool(f["hidden"]) if f["person_id"] is not None else False,
                    "assigned": f["assigned"],
                    "origin": f["origin"],
                    "frame": f["frame"],
                }
                for f in faces
            ],
        }

    def person_photos(self, person_id: int, *, offset: int = 0, limit: int = 48) -> tuple[list[dict[str, Any]], int]:
        """The photos a person is in, by date taken (undated last, then by path), one page,
        and how many there are."""
        self.person(person_id)
        total = int(self.read("SELECT COUNT(DISTINCT photo_id) FROM faces WHERE person_id=?", (person_id,))[0][0])
        rows = self.read(
            "SELECT p.id, p.path, p.taken, MIN(f.id) AS face_id FROM faces f JOIN photos p ON p.id = f.photo_id WHERE f.person_id=? "
            "GROUP BY p.id, p.path, p.taken ORDER BY (p.taken IS NULL OR p.taken = ''), p.taken, p.path LIMIT ? OFFSET ?",
            (person_id, int(limit), int(offset)),
        )
        return [{"id": r["id"], "path": r["path"], "taken": r["taken"] or None, "face_id": r["face_id"]} for r in rows], total

    def named_faces_by_photo(self, person_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """For every photo (status ok, a still) with at least one named face: its path, size and
        named faces (box, name) -- what XMP export writes.  ``person_ids``: only photos of them."""
        sql = (
            "SELECT p.id AS photo_id, p.path, p.width, p.height, f.box, pe.name FROM faces f JOIN photos p ON p.id = f.photo_id "
            "JOIN people pe ON pe.id = f.person_id WHERE pe.name IS NOT NULL AND p.status='ok' AND p.kind='image' AND f.frame IS NULL"
        )
        if person_ids is not None:
            photo_ids = {r["photo_id"] for r in self.read_in("SELECT DISTINCT photo_id FROM faces WHERE person_id IN ({ids})", person_ids)}
            rows = self.read_in(sql + " AND p.id IN ({ids}) ORDER BY p.path, f.id", sorted(photo_ids))
        else:
            rows = self.read(sql + " ORDER BY p.path, f.id")
        out: dict[int, dict[str, Any]] = {}
        for r in rows:
            d = out.setdefault(r["photo_id"], {"photo_id": r["photo_id"], "path": r["path"], "width": r["width"], "height": r["height"], "faces": []})
            d["faces"].append({"box": json.loads(r["box"]), "name": r["name"]})
        return list(out.values())

    def rejections(self) -> set[tuple[int, int]]:
        return {(r["face_id"], r["person_id"]) for r in self.read("SELECT face_id, person_id FROM rejections")}

    def apart(self) -> set[tuple[int, int]]:
        return {(min(r["a"], r["b"]), max(r["a"], r["b"])) for r in self.read("SELECT a, b FROM apart")}

    def save_clustering(self, assignments: dict[int, int | None], new_people: int) -> dict[int, int]:
        """Write a clustering run: ``assignments`` maps face id -> person id (existing ids, or
        negative placeholders -1..-new_people for people to create; None: unassigned).
        Only faces not assigned by the user are touched.  Returns placeholder -> new id."""
        with self.transaction() as db:
            created: dict[int, int] = {}
            t = now()
            for k in range(1, new_people + 1):
                created[-k] = int(db.execute("INSERT INTO people(name, created, updated) VALUES (NULL, ?, ?) RETURNING id", (t, t)).fetchone()[0])
            rows = [(created.get(pid, pid) if pid is not None else None, "auto" if pid is not None else None, fid) for fid, pid in assignments.items()]
            db.executemany("UPDATE faces SET person_id=?, assigned=? WHERE id=? AND (assigned IS NULL OR assigned='auto')", rows)
            self._drop_empty_unnamed(db)
            return created

    def attach_auto(self, keep: int, other: int) -> int:
        """Move an unconfirmed, unnamed person's faces into ``keep`` as automatic placements
        (a confident suggestion); returns how many faces moved."""
        with self.transaction() as db:
            row = db.execute("SELECT name FROM people WHERE id=?", (other,)).fetchone()
            if row is None or row["name"] is not None:
                return 0
            if db.execute("SELECT 1 FROM faces WHERE person_id=? AND assigned='user' LIMIT 1", (other,)).fetchone():
                return 0  # the user placed faces there: only the user merges it
            n = db.execute("UPDATE faces SET person_id=?, assigned='auto' WHERE person_id=?", (keep, other)).rowcount
            db.execute("DELETE FROM people WHERE id=?", (other,))
            self._audit(db, "auto", "attach", {"keep": keep, "other": other, "faces": n})
            return n

    def keep_apart(self, a: int, b: int, *, actor: str = "local") -> None:
        """The user says persons a and b are different people."""
        with self.transaction() as db:
            db.execute("INSERT INTO apart(a, b) VALUES (?, ?) ON CONFLICT DO NOTHING", (min(a, b), max(a, b)))
            db.execute("UPDATE faces SET assigned='user' WHERE person_id IN (?, ?) AND assigned='auto'", (a, b))
            self._audit(db, actor, "apart", {"a": a, "b": b})

    def skip(self, person_id: int, candidate: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO skipped(person_id, candidate, created) VALUES (?,?,?) ON CONFLICT (person_id, candidate) DO UPDATE SET created = excluded.created",
                (person_id, candidate, now()),
            )

    def skipped(self) -> set[tuple[int, str]]:
        return {(r["person_id"], r["candidate"]) for r in self.read("SELECT person_id, candidate FROM skipped")}

    # -- corrections -------------------------------------------------------------
    def rename_person(self, person_id: int, name: str | None, *, actor: str = "local") -> None:
        name = _clean_name(name) if name is not None else None
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM people WHERE id=?", (person_id,)).fetchone() is None:
                raise PersonNotFound(f"no person with id {person_id}")
            clash = db.execute("SELECT id FROM people WHERE LOWER(name)=LOWER(?) AND id<>?", (name, person_id)).fetchone() if name else None
            if clash is not None:
                raise PersonExists(f"another person is already named {name!r}; merge them instead")
            db.execute("UPDATE people SET name=?, updated=? WHERE id=?", (name, now(), person_id))
            # naming a person confirms their faces: later runs keep them together
            db.execute("UPDATE faces SET assigned='user' WHERE person_id=?", (person_id,))
            self._audit(db, actor, "rename", {"person": person_id, "named": name is not None})  # ids, not names

    def merge_people(self, keep: int, other: int, *, actor: str = "local") -> None:
        with self.transaction() as db:
            self._merge(db, keep, other, actor)

    def _merge(self, db: Any, keep: int, other: int, actor: str) -> None:
        if keep == other:
            raise InputError("cannot merge a person with themselves")
        a = db.execute("SELECT * FROM people WHERE id=?", (keep,)).fetchone()
        b = db.execute("SELECT * FROM people WHERE id=?", (other,)).fetchone()
        if a is None or b is None:
            raise PersonNotFound(f"no person with id {keep if a is None else other}")
        db.execute("UPDATE faces SET person_id=?, assigned='user' WHERE person_id IN (?, ?)", (keep, keep, other))
        db.execute("DELETE FROM apart WHERE (a=? AND b=?) OR (a=? AND b=?)", (keep, other, other, keep))
        db.execute("INSERT INTO apart(a, b) SELECT ?, b FROM apart WHERE a=? ON CONFLICT DO NOTHING", (keep, other))
        db.execute("INSERT INTO apart(a, b) SELECT a, ? FROM apart WHERE b=? ON CONFLICT DO NOTHING", (keep, other))
        db.execute(
            "INSERT INTO rejections(face_id, person_id, created) SELECT face_id, ?, created FROM rejections WHERE person_id=? ON CONFLICT DO NOTHING",
            (keep, other),
        )
        name = a["name"] or b["name"]  # two names: the person kept keeps theirs
        hidden = int(bool(a["hidden"]) and bool(b["hidden"]))  # shown if either was
        db.execute("DELETE FROM people WHERE id=?", (other,))
        db.execute("UPDATE people SET name=?, hidden=?, updated=? WHERE id=?", (name, hidden, now(), keep))
        self._audit(db, actor, "merge", {"keep": keep, "other": other})

    def merge_many(self, keep: int, others: Sequence[int], *, actor: str = "local") -> int:
        """Merge several people into ``keep`` in one transaction (all or nothing); returns how
        many were merged in."""
        rest = [int(o) for o in dict.fromkeys(others) if int(o) != keep]
        if not rest:
            raise InputError("choose at least two different people to merge")
        with self.transaction() as db:  # one fails, none happen
            for o in rest:
                self._merge(db, keep, o, actor)
        return len(rest)

    def set_hidden(self, person_ids: Sequence[int], hidden: bool, *, actor: str = "local") -> int:
        """Hide people from the people page and the suggestions (they stay searchable and
        exportable, and every later run keeps them hidden), or show them again."""
        ids = [int(i) for i in dict.fromkeys(person_ids)]
        if not ids:
            raise InputError("choose at least one person")
        with self.transaction() as db:
            found = {r["id"] for r in self.read_in("SELECT id FROM people WHERE id IN ({ids})", ids, db=db)}
            missing = [i for i in ids if i not in found]
            if missing:
                raise PersonNotFound(f"no person with id {missing[0]}")
            db.executemany("UPDATE people SET hidden=?, updated=? WHERE id=?", [(int(hidden), now(), i) for i in ids])
            if hidden:  # a decision about the group as it is: later runs keep it together (and hidden)
                db.executemany("UPDATE faces SET assigned='user' WHERE person_id=? AND assigned='auto'", [(i,) for i in ids])
            self._audit(db, actor, "hide" if hidden else "unhide", {"people": ids})
        return len(ids)

    def hide_small_unnamed(self, fewer_than: int, *, actor: str = "local") -> int:
        """Hide every unnamed, visible person with fewer than ``fewer_than`` faces (strangers in
        the background); returns how many were hidden."""
        if fewer_than < 1:
            raise InputError(f"the face count must be at least 1, got {fewer_than}")
        with self.transaction() as db:
            ids = [
                r["id"]
                for r in db.execute(
                    "SELECT pe.id FROM people pe WHERE pe.name IS NULL AND pe.hidden=0 AND (SELECT COUNT(*) FROM faces f WHERE f.person_id = pe.id) < ?",
                    (int(fewer_than),),
                ).fetchall()
            ]
            db.executemany("UPDATE people SET hidden=1, updated=? WHERE id=?", [(now(), i) for i in ids])
            db.executemany("UPDATE faces SET assigned='user' WHERE person_id=? AND assigned='auto'", [(i,) for i in ids])
            self._audit(db, actor, "hide_small", {"fewer_than": int(fewer_than), "people": len(ids)})
        return len(ids)

    def new_person(self, name: str | None = None, *, actor: str = "local") -> int:
        with self.transaction() as db:
            return self._new_person(db, name, actor)

    def _new_person(self, db: Any, name: str | None, actor: str) -> int:
        name = _clean_name(name) if name else None
        if name and db.execute("SELECT 1 FROM people WHERE LOWER(name)=LOWER(?)", (name,)).fetchone():
            raise PersonExists(f"another person is already named {name!r}")
        t = now()
        pid = int(db.execute("INSERT INTO people(name, created, updated) VALUES (?, ?, ?) RETURNING id", (name, t, t)).fetchone()[0])
        self._audit(db, actor, "new_person", {"person": pid})
        return pid

    def move_faces(self, face_ids: Sequence[int], person_id: int | None = None, *, name: str | None = None, actor: str = "local") -> int:
        """The user moves faces to a person (``person_id``), or to a new person (named ``name``,
        or unnamed): they are that person's, and not the person they were in (a rejection, so a
        later run never puts them back).  Returns the person they are in now."""
        ids = [int(i) for i in dict.fromkeys(face_ids)]
        if not ids:
            raise InputError("choose at least one face to move")
        with self.transaction() as db:
            rows = self.read_in("SELECT id, person_id FROM faces WHERE id IN ({ids})", ids, db=db)
            if len(rows) != len(ids):
                missing = sorted(set(ids) - {r["id"] for r in rows})
                raise FaceNotFound(f"no face with id {missing[0]}")
            if person_id is None:
                person_id = self._new_person(db, name, actor)
            elif db.execute("SELECT 1 FROM people WHERE id=?", (person_id,)).fetchone() is None:
                raise PersonNotFound(f"no person with id {person_id}")
            t = now()
            left = [(r["id"], r["person_id"]) for r in rows if r["person_id"] is not None and r["person_id"] != person_id]
            db.executemany("INSERT INTO rejections(face_id, person_id, created) VALUES (?,?,?) ON CONFLICT DO NOTHING", [(f, p, t) for f, p in left])
            db.executemany("DELETE FROM rejections WHERE face_id=? AND person_id=?", [(i, person_id) for i in ids])
            db.executemany("UPDATE faces SET person_id=?, assigned='user' WHERE id=?", [(person_id, i) for i in ids])
            for p in {p for _, p in left}:  # the faces left behind were looked at: they are that person's
                db.execute("UPDATE faces SET assigned='user' WHERE person_id=? AND assigned='auto'", (p,))
            self._drop_empty_unnamed(db)
            self._audit(db, actor, "move", {"faces": ids, "person": person_id})
            return person_id

    def reject_faces(self, face_ids: Sequence[int], person_id: int, *, actor: str = "local") -> int:
        """ "Not this person" for several faces at once (all or nothing)."""
        ids = [int(i) for i in dict.fromkeys(face_ids)]
        if not ids:
            raise InputError("choose at least one face")
        with self.transaction() as db:
            for i in ids:
                self._reject(db, i, person_id, actor)
        return len(ids)

    def split_faces(self, person_id: int, face_ids: Sequence[int], *, actor: str = "local") -> int:
        """Move faces out of a person into a new (unnamed) person the user keeps apart from the first."""
        if not face_ids:
            raise InputError("choose at least one face to split off")
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM people WHERE id=?", (person_id,)).fetchone() is None:
                raise PersonNotFound(f"no person with id {person_id}")
            ids = [int(i) for i in face_ids]
            found = db.execute(f"SELECT COUNT(*) FROM faces WHERE person_id=? AND id IN ({','.join('?' * len(ids))})", (person_id, *ids)).fetchone()[0]
            if found != len(set(ids)):
                raise FaceNotFound(f"not every face given belongs to person {person_id}")
            t = now()
            new = int(db.execute("INSERT INTO people(name, created, updated) VALUES (NULL, ?, ?) RETURNING id", (t, t)).fetchone()[0])
            db.executemany("UPDATE faces SET person_id=?, assigned='user' WHERE id=?", [(new, i) for i in ids])
            db.execute("UPDATE faces SET assigned='user' WHERE person_id=?", (person_id,))
            db.execute("INSERT INTO apart(a, b) VALUES (?, ?) ON CONFLICT DO NOTHING", (min(person_id, new), max(person_id, new)))
            self._audit(db, actor, "split", {"person": person_id, "new": new, "faces": ids})
            return new

    def assign_face(self, face_id: int, person_id: int, *, confirm: bool = False, actor: str = "local") -> None:
        """The user says this face is this person (``confirm``: and the person's other faces
        are theirs too -- the user saw them side by side)."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM people WHERE id=?", (person_id,)).fetchone() is None:
                raise PersonNotFound(f"no person with id {person_id}")
            if db.execute("UPDATE faces SET person_id=?, assigned='user' WHERE id=?", (person_id, face_id)).rowcount == 0:
                raise FaceNotFound(f"no face with id {face_id}")
            if confirm:
                db.execute("UPDATE faces SET assigned='user' WHERE person_id=? AND assigned='auto'", (person_id,))
            db.execute("DELETE FROM rejections WHERE face_id=? AND person_id=?", (face_id, person_id))
            self._drop_empty_unnamed(db)
            self._audit(db, actor, "assign", {"face": face_id, "person": person_id})

    def reject_face(self, face_id: int, person_id: int, *, actor: str = "local") -> None:
        """The user says this face is not this person: it leaves them and never comes back.
        The person's other faces become the user's (they were looked at beside it): a later
        full re-clustering keeps the person, and so the rejection, intact."""
        with self.transaction() as db:
            self._reject(db, face_id, person_id, actor)

    def _reject(self, db: Any, face_id: int, person_id: int, actor: str) -> None:
        row = db.execute("SELECT person_id FROM faces WHERE id=?", (face_id,)).fetchone()
        if row is None:
            raise FaceNotFound(f"no face with id {face_id}")
        if db.execute("SELECT 1 FROM people WHERE id=?", (person_id,)).fetchone() is None:
            raise PersonNotFound(f"no person with id {person_id}")
        db.execute("INSERT INTO rejections(face_id, person_id, created) VALUES (?,?,?) ON CONFLICT DO NOTHING", (face_id, person_id, now()))
        if row["person_id"] == person_id:
            db.execute("UPDATE faces SET person_id=NULL, assigned=NULL WHERE id=?", (face_id,))  # free to join someone else
        db.execute("UPDATE faces SET assigned='user' WHERE person_id=? AND assigned='auto'", (person_id,))
        self._drop_empty_unnamed(db)
        self._audit(db, actor, "reject", {"face": face_id, "person": person_id})


def _clean_name(name: str) -> str:
    return clean_name(name, "a person's name", collapse=True)


class PgLibraryStore(PostgresStorage, LibraryStore):
    """The photo library on PostgreSQL (schema ``faceprint_photo_library``): the same tables,
    migrations, corrections and erasure as the SQLite file, shared by every indexer and server."""


def open_library_store(target: str | Path, *, encrypt: bool | None = None) -> LibraryStore:
    """The library store at ``target``: a ``postgresql://`` URL, else a SQLite file path."""
    return PgLibraryStore(str(target), encrypt=encrypt) if is_postgres_url(target) else LibraryStore(target, encrypt=encrypt)


def default_library_path() -> Path | str:
    """``$FACEPRINT_LIBRARY`` (a file path or a ``postgresql://`` URL), else ``library.db`` in
    the user's data directory."""
    import os

    from platformdirs import user_data_dir

    env = os.environ.get("FACEPRINT_LIBRARY")
    if env:
        return env if is_postgres_url(env) else Path(env)
    return Path(user_data_dir("faceprint", appauthor=False)) / "library.db"
