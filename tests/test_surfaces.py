"""The public surfaces, pinned (issue 14 takes these snapshots before it moves code): the REST
schema at /openapi.json, every CLI command with its options, and the on-disk formats (SQLite
schema, user_version and application id of a new gallery and library; the index header's
fields).  A change to any of them is deliberate: regenerate with

    FACEPRINT_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest -q tests/test_surfaces.py

and say in the commit why the surface changed."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SNAP = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("FACEPRINT_UPDATE_SNAPSHOTS") == "1"


def _check(name: str, value: Any) -> None:
    path = SNAP / name
    text = json.dumps(value, indent=1, sort_keys=True) + "\n"
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if not UPDATE:
            pytest.fail(f"{path} did not exist: written now; commit it")
        return
    assert json.loads(path.read_text()) == value, f"{name} changed; if deliberate, regenerate (see the module docstring)"


def test_openapi_schema_is_pinned(tmp_path: Path, engine) -> None:
    from fastapi.testclient import TestClient

    from faceprint.gallery import Gallery
    from faceprint.service.app import create_app

    with Gallery(tmp_path / "g.db", engine) as g, TestClient(create_app(g)) as c:
        schema = c.get("/openapi.json").json()
    schema["info"].pop("version", None)
    _check("openapi.json", schema)


def _default(value: Any) -> str:
    """repr of a default, with the data folder (read from FACEPRINT_DATA when the CLI is imported) as a placeholder."""
    text = repr(value)
    for data in {os.environ.get("FACEPRINT_DATA", ""), "../shared/data"} - {""}:
        text = text.replace(f"'{data}'", "'<FACEPRINT_DATA>'")
    return text


def _type_of(p: Any) -> str:
    desc = getattr(p, "type_descriptor", None)
    annotation = getattr(desc, "annotation", None) if desc is not None else getattr(p, "type", None)
    return getattr(annotation, "__name__", None) or str(annotation)


def _commands(c: Any, path: list[str]) -> dict[str, Any]:
    out = {
        " ".join(["faceprint", *path]): {
            "help": (c.help or "").strip(),
            "params": [
                {
                    "name": p.name,
                    "opts": sorted(getattr(p, "opts", [])) + sorted(getattr(p, "secondary_opts", [])),
                    "kind": type(p).__name__,
                    "required": bool(p.required),
                    "multiple": bool(getattr(p, "multiple", False)),
                    "type": _type_of(p),
                    "flag": bool(getattr(p, "is_flag", False)),
                    "default": None if callable(p.default) else _default(p.default),
                    "help": (getattr(p, "help", None) or "").strip(),
                }
                for p in c.params
            ],
        }
    }
    for name, sub in sorted(getattr(c, "commands", {}).items()):
        out.update(_commands(sub, [*path, name]))
    return out


def test_cli_commands_and_options_are_pinned() -> None:
    import typer

    from faceprint.cli import app

    commands = _commands(typer.main.get_command(app), [])
    assert len(commands) > 30
    _check("cli.json", commands)


def _sqlite_format(path: Path) -> dict[str, Any]:
    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").fetchall()
        return {
            "user_version": con.execute("PRAGMA user_version").fetchone()[0],
            "application_id": con.execute("PRAGMA application_id").fetchone()[0],
            "objects": [[t, n, " ".join((s or "").split())] for t, n, s in rows],
            "meta_keys": sorted(r[0] for r in con.execute("SELECT key FROM meta")),
        }
    finally:
        con.close()


def test_on_disk_formats_are_pinned(tmp_path: Path) -> None:
    from faceprint.gallery.index import ExactIndex, PQScanIndex, read_header
    from faceprint.gallery.store import Store
    from faceprint.library.store import LibraryStore

    with Store(tmp_path / "g.db"):
        pass
    with LibraryStore(tmp_path / "l.db"):
        pass
    headers = {}
    for cls in (ExactIndex, PQScanIndex):
        ix = cls(128)
        v = np.eye(128, dtype=np.float32)
        ix.add(np.arange(128), v)
        ix.save(tmp_path / f"{cls.kind}.index", generation="1:m")
        headers[cls.kind] = sorted(read_header(tmp_path / f"{cls.kind}.index"))
    _check("formats.json", {"gallery": _sqlite_format(tmp_path / "g.db"), "library": _sqlite_format(tmp_path / "l.db"), "index_header_fields": headers})
