"""Helpers of the scale-out test files (the engines themselves are conftest.py's module
fixtures ``pg`` and ``milvus``: one PostgreSQL cluster, one Milvus Lite server per test module)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any


def start_or_skip(factory: Any) -> Any:
    """``factory().start()`` of a faceprint.scale.local engine, or a skip naming what to install."""
    import pytest

    try:
        return factory().start()
    except RuntimeError as exc:
        pytest.skip(str(exc))


def fresh_db(pg: Any) -> str:
    """A new empty database on the test cluster: its URL."""
    name = "t_" + uuid.uuid4().hex[:10]
    import psycopg

    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg.url.rsplit("/", 1)[0] + "/" + name


def fresh_vectors(milvus: Any) -> str:
    return f"{milvus.url}/t_{uuid.uuid4().hex[:10]}"


def photos_of(lfw: Path, name: str) -> list[Path]:
    return sorted((lfw / name).glob("*.jpg"))


PEOPLE = ["Abel_Pacheco", "Amelia_Vega", "Abdullah_Gul", "Adrien_Brody", "Al_Sharpton", "Ana_Palacio"]


def grouping(lib: Any) -> dict[str, Any]:
    """People as sets of (photo file name, box), engine-neutral; and the listing order."""
    people = lib.people()
    groups = sorted(sorted((Path(f["path"]).name, tuple(f["box"])) for f in p["faces"]) for p in people)
    return {"groups": groups, "names": [p["name"] for p in people], "sizes": [len(p["faces"]) for p in people], "counts": lib.store.counts()}
