"""`faceprint enroll / identify / subjects` as a user runs them, on a real SQLite file (in this
process: the ``cli`` fixture of conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def fp(cli: Callable[..., Any]) -> Callable[..., Any]:
    """``fp(*args, db=PATH)``: ``faceprint ARGS --db PATH``."""
    return lambda *args, db: cli(*args, "--db", db)


@pytest.fixture
def ok(fp: Callable[..., Any]) -> Callable[..., Any]:
    """``ok(*args, db=PATH)``: run with ``--json``, expect exit 0 and no traceback; the JSON."""

    def run(*args: Any, db: Path) -> Any:
        proc = fp(*args, "--json", db=db)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.describe()
        return proc.json()

    return run


def test_enroll_identify_manage(tmp_path: Path, lfw: Path, data_dir: Path, fp: Callable[..., Any], ok: Callable[..., Any]) -> None:
    db = tmp_path / "people.db"
    photos = {n: sorted((lfw / n).glob("*.jpg")) for n in ("Al_Sharpton", "Amelia_Vega", "Albert_Costa")}
    res = ok("enroll", "Al Sharpton", *photos["Al_Sharpton"][:2], db=db)
    assert res["added"] == 2 and res["subject"]["name"] == "Al Sharpton"
    ok("enroll", "Amelia Vega", photos["Amelia_Vega"][0], db=db)

    who = ok("identify", photos["Al_Sharpton"][3], "--k", "2", db=db)
    assert who["name"] == "Al Sharpton" and who["match"] and len(who["candidates"]) == 2
    assert who["score"] >= who["threshold"] and who["fpir"] == 0.001
    stranger = ok("identify", photos["Albert_Costa"][0], db=db)
    assert stranger["name"] is None and not stranger["match"]

    human = fp("identify", photos["Amelia_Vega"][2], db=db)
    assert human.returncode == 0 and "Amelia Vega" in human.stdout and "threshold" in human.stdout

    listed = ok("subjects", "list", db=db)
    assert [(s["name"], s["templates"]) for s in listed] == [("Al Sharpton", 2), ("Amelia Vega", 1)]
    shown = ok("subjects", "show", "Al Sharpton", db=db)
    assert len(shown["template_list"]) == 2 and shown["template_list"][0]["source"].endswith(".jpg")
    assert ok("subjects", "rename", "Amelia Vega", "Amelia", db=db)["name"] == "Amelia"
    assert ok("identify", photos["Amelia_Vega"][1], db=db)["name"] == "Amelia"
    assert ok("subjects", "delete", "Al Sharpton", db=db).items() >= {"deleted": "Al Sharpton", "templates": 2, "index_saved": True}.items()
    gone = ok("identify", photos["Al_Sharpton"][3], db=db)
    assert all(c["name"] != "Al Sharpton" for c in gone["candidates"])


def test_gallery_errors_are_clear(tmp_path: Path, lfw: Path, data_dir: Path, fp: Callable[..., Any], ok: Callable[..., Any]) -> None:
    db = tmp_path / "people.db"
    group = data_dir / "samples" / "group-photos" / "010_2.jpg"
    proc = fp("enroll", "Pair", group, db=db)
    assert proc.returncode == 2 and "2 faces found" in proc.stderr and "010_2.jpg" in proc.stderr
    refused = fp("enroll", "Pair", group, "--face", "largest", db=db)  # a group photo's faces are small
    assert refused.returncode == 2 and "face too small" in refused.stderr and "px between the eyes" in refused.stderr
    assert ok("enroll", "Pair", group, "--face", "largest", "--no-quality-check", db=db)["added"] == 1
    proc = fp("subjects", "show", "Nobody", db=db)
    assert proc.returncode == 2 and "no subject named 'Nobody'" in proc.stderr
    proc = fp("subjects", "rename", "Pair", "", db=db)
    assert proc.returncode == 2 and "non-empty" in proc.stderr
    bad = tmp_path / "not-a-db.db"
    bad.write_text("hello" * 1000)
    proc = fp("subjects", "list", db=bad)
    assert proc.returncode == 2 and "not-a-db.db" in proc.stderr and "Traceback" not in proc.stderr
