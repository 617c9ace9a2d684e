"""`faceprint enroll / identify / subjects` as a user runs them, on a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def cli(*args: Any, db: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEPRINT_") or k == "FACEPRINT_DATA"}
    env["PYTHONPATH"] = str(REPO / "src")
    return subprocess.run([sys.executable, "-m", "faceprint.cli", *map(str, args), "--db", str(db)], capture_output=True, text=True, timeout=180, env=env)


def ok(*args: Any, db: Path) -> Any:
    proc = cli(*args, "--json", db=db)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_enroll_identify_manage(tmp_path: Path, lfw: Path, data_dir: Path) -> None:
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

    human = cli("identify", photos["Amelia_Vega"][2], db=db)
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


def test_gallery_errors_are_clear(tmp_path: Path, lfw: Path, data_dir: Path) -> None:
    db = tmp_path / "people.db"
    group = data_dir / "samples" / "group-photos" / "010_2.jpg"
    proc = cli("enroll", "Pair", group, db=db)
    assert proc.returncode == 2 and "2 faces found" in proc.stderr and "010_2.jpg" in proc.stderr
    refused = cli("enroll", "Pair", group, "--face", "largest", db=db)  # a group photo's faces are small
    assert refused.returncode == 2 and "face too small" in refused.stderr and "px between the eyes" in refused.stderr
    assert ok("enroll", "Pair", group, "--face", "largest", "--no-quality-check", db=db)["added"] == 1
    proc = cli("subjects", "show", "Nobody", db=db)
    assert proc.returncode == 2 and "no subject named 'Nobody'" in proc.stderr
    proc = cli("subjects", "rename", "Pair", "", db=db)
    assert proc.returncode == 2 and "non-empty" in proc.stderr
    bad = tmp_path / "not-a-db.db"
    bad.write_text("hello" * 1000)
    proc = cli("subjects", "list", db=bad)
    assert proc.returncode == 2 and "not-a-db.db" in proc.stderr and "Traceback" not in proc.stderr
