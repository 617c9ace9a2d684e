"""``faceprint encryption status | enable | rotate``: encryption at rest of the gallery and the photo
library (both databases, and a gallery's saved index), so it is a group of its own rather than
part of the REST service's commands."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from faceprint.cli._common import DbOpt, JsonOpt, cli_errors, out, print_json
from faceprint.errors import InputError

encryption_app = typer.Typer(no_args_is_help=True, help="Encryption at rest of templates, thumbnails and kept photos: status, enable, rotate the key.")
LibOpt = typer.Option(None, "--library", help="Photo library (default $FACEPRINT_LIBRARY or library.db in your data directory).")


def _exists(target: str | Path) -> bool:
    from faceprint.postgres import is_postgres_url

    return is_postgres_url(target) or Path(target).is_file()


def _shown(target: str | Path) -> str:
    from faceprint.postgres import is_postgres_url, redact_url

    return redact_url(str(target)) if is_postgres_url(target) else str(target)


def _stores(db: str | None, library: str | None) -> list[tuple[str, str | Path]]:
    """The databases a command acts on: those given, else the default gallery and library that exist."""
    from faceprint.gallery.gallery import default_db_path
    from faceprint.library.store import default_library_path

    if db is None and library is None:
        found = [("gallery", default_db_path()), ("library", default_library_path())]
        return [(k, p) for k, p in found if _exists(p)]
    for p in (db, library):
        if p is not None and not _exists(p):
            raise InputError("no such database", source=str(p))
    return [(k, p) for k, p in (("gallery", db), ("library", library)) if p is not None]


def _open_store(kind: str, path: str | Path) -> Any:
    from faceprint.gallery.store import open_store
    from faceprint.library.store import open_library_store

    return (open_store if kind == "gallery" else open_library_store)(path, encrypt=False)


def _forget_index(kind: str, path: str | Path) -> bool:
    """Shred a gallery's saved index (rebuilt, sealed with the current key, on the next open)."""
    from faceprint.crypto import shred
    from faceprint.gallery.gallery import index_path_for
    from faceprint.gallery.index import header_path
    from faceprint.postgres import is_postgres_url

    if kind != "gallery" or is_postgres_url(path):  # on PostgreSQL no index is saved
        return False
    index = index_path_for(path)
    shred(header_path(index))
    return shred(index)


@encryption_app.command("status")
def encryption_status(db: str | None = DbOpt, library: str | None = LibOpt, as_json: bool = JsonOpt) -> None:
    """Which databases are encrypted, and with which master key (its id, never the key)."""
    from faceprint.crypto import current_master_key, default_key_file

    with cli_errors(as_json):
        rows = []
        for kind, path in _stores(db, library):
            with _open_store(kind, path) as store:
                rec = store.read("SELECT value FROM meta WHERE key='encryption'")
                rows.append(
                    {"kind": kind, "path": _shown(path), "encrypted": store.encrypted, "master_key_id": json.loads(rec[0][0])["master_key_id"] if rec else None}
                )
        key = current_master_key(create=False) if (os.environ.get("FACEPRINT_KEY") or default_key_file().exists()) else None
        data = {"key": {"source": key.source if key else str(default_key_file()), "id": key.id if key else None}, "databases": rows}
        if as_json:
            print_json(data)
            return
        out.print(f"master key: {escape(data['key']['source'])}  id {data['key']['id'] or '(none yet)'}")
        for r in rows:
            state = f"encrypted (master key {r['master_key_id']})" if r["encrypted"] else "[yellow]not encrypted[/]: faceprint encryption enable"
            out.print(f"{r['kind']} {escape(r['path'])}: {state}")


@encryption_app.command("enable")
def encryption_enable(db: str | None = DbOpt, library: str | None = LibOpt, as_json: bool = JsonOpt) -> None:
    """Encrypt an existing clear database in place: every template, thumbnail and kept photo is
    sealed in one transaction, the log truncated, the file vacuumed, a gallery's clear index
    shredded (rebuilt sealed on the next open).  Stop servers using it first."""
    with cli_errors(as_json):
        done = []
        for kind, path in _stores(db, library):
            with _open_store(kind, path) as store:
                was = store.encrypted
                counts = store.encrypt_now()
            shredded = _forget_index(kind, path) if not was else False
            done.append({"kind": kind, "path": _shown(path), "already_encrypted": was, "sealed": counts, "index_shredded": shredded})
        if as_json:
            print_json(done)
            return
        for d in done:
            if d["already_encrypted"]:
                out.print(f"{d['kind']} {escape(d['path'])}: already encrypted")
            else:
                sealed = ", ".join(f"{n} {c}" for c, n in d["sealed"].items())
                out.print(f"{d['kind']} {escape(d['path'])}: encrypted ({sealed}){'; clear index shredded' if d['index_shredded'] else ''}")


@encryption_app.command("rotate")
def encryption_rotate(
    db: str | None = DbOpt,
    library: str | None = LibOpt,
    reencrypt: bool = typer.Option(False, "--reencrypt", help="Also give each database a new data key and re-seal everything under it (slower)."),
    as_json: bool = JsonOpt,
) -> None:
    """New master key in the key file (the old one kept as key.previous); the databases given
    (default: the default gallery and library) are re-wrapped now, others when next opened --
    as long as key.previous is kept (a second rotation replaces it)."""
    from faceprint.crypto import rotate_master_key

    with cli_errors(as_json):
        targets = _stores(db, library)
        old, new = rotate_master_key()
        done = []
        for kind, path in targets:
            with _open_store(kind, path) as store:  # opening re-wraps a data key under the new master key
                counts = store.encrypt_now(new_data_key=True) if reencrypt else {}
            done.append({"kind": kind, "path": _shown(path), "resealed": counts, "index_shredded": _forget_index(kind, path) if reencrypt else False})
        data = {"old_key_id": old.id, "new_key_id": new.id, "databases": done}
        if as_json:
            print_json(data)
            return
        out.print(f"master key {old.id} -> {new.id} (the old one is kept as key.previous)")
        for d in done:
            out.print(f"{d['kind']} {escape(d['path'])}: re-wrapped{' and re-sealed under a new data key' if d['resealed'] else ''}")
