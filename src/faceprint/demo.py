"""The end-to-end demo behind `faceprint demo` (the README's first command): detect
faces in the group photos against their annotations, then verify the labelled pairs
of the deepface samples at the default false-match rate."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from faceprint.errors import FaceprintError, InputError


def _need(path: Path) -> Path:
    if not path.exists():
        raise InputError("sample data not found (set FACEPRINT_DATA or --data to the shared data folder)", source=str(path))
    return path


def detection_rows(engine: Any, folder: Path) -> list[dict[str, Any]]:
    ann = json.loads(_need(folder / "annotations.json").read_text())
    rows = []
    for item in ann["images"]:
        t0 = time.perf_counter()
        img = engine.load(folder / item["file"])
        faces = engine.detect(img)
        rows.append(
            {
                "file": item["file"],
                "size": f"{img.width}x{img.height}",
                "expected": item["num_faces"],
                "found": len(faces),
                "ms": round((time.perf_counter() - t0) * 1000),
            }
        )
    return rows


def verification_rows(engine: Any, folder: Path) -> list[dict[str, Any]]:
    index = {Path(r["path"]).name: folder / "identities" / r["path"] for r in csv.DictReader(_need(folder / "identities.csv").open())}
    pairs = list(csv.DictReader((folder / "master.csv").open()))
    files = sorted({p["file_x"] for p in pairs} | {p["file_y"] for p in pairs})
    templates = dict(zip(files, engine.embed_many([index[f] for f in files])))
    rows = []
    for p in pairs:
        ta, tb = templates[p["file_x"]], templates[p["file_y"]]
        row: dict[str, Any] = {"a": p["file_x"], "b": p["file_y"], "truth": "same" if p["Decision"] == "Yes" else "different"}
        if isinstance(ta, FaceprintError) or isinstance(tb, FaceprintError):
            row.update(score=None, decision="error", correct=False, note=str(ta if isinstance(ta, FaceprintError) else tb))
        else:
            d = engine.decide(engine.similarity(ta, tb))
            row.update(score=round(d.score, 4), threshold=round(d.threshold, 4), fmr=d.fmr, decision="same" if d.match else "different")
            row["correct"] = row["decision"] == row["truth"]
        rows.append(row)
    return rows


def run_demo(engine: Any, data: Path, *, console: Console, as_json: bool = False) -> dict[str, Any]:
    data = Path(data)
    det = detection_rows(engine, data / "samples" / "group-photos")
    ver = verification_rows(engine, data / "samples" / "deepface")
    correct = sum(r["correct"] for r in ver)
    summary = {
        "detection": {"images": len(det), "counts_matching_annotations": sum(r["expected"] == r["found"] for r in det), "rows": det},
        "verification": {
            "pairs": len(ver),
            "correct": correct,
            "accuracy": correct / len(ver),
            "false_matches": sum(r["decision"] == "same" and r["truth"] == "different" for r in ver),
            "false_non_matches": sum(r["decision"] != "same" and r["truth"] == "same" for r in ver),
            "threshold": engine.calibration.threshold_for(engine.settings.fmr),
            "fmr": engine.settings.fmr,
            "model_id": engine.model_id,
            "rows": ver,
        },
    }
    if as_json:
        print(json.dumps(summary, indent=1))
        return summary
    t = Table(title=f"Detection — {escape(str(data / 'samples/group-photos'))}")
    for col in ("photo", "size", "annotated faces", "found", "ms"):
        t.add_column(col, justify="right")
    for r in det:
        ok = r["expected"] == r["found"]
        t.add_row(r["file"], r["size"], str(r["expected"]), f"[{'green' if ok else 'red'}]{r['found']}[/]", str(r["ms"]))
    console.print(t)
    s = summary["verification"]
    t = Table(title=f"Verification — deepface samples, {s['pairs']} labelled pairs, threshold {s['threshold']:.4f} at FMR {s['fmr']:g} ({s['model_id']})")
    for col in ("a", "b", "truth", "score", "decision"):
        t.add_column(col, justify="right")
    shown = [r for r in ver if r["truth"] == "same"][:8] + [r for r in ver if r["truth"] == "different"][:4] + [r for r in ver if not r["correct"]][:6]
    seen = set()
    for r in shown:
        key = (r["a"], r["b"])
        if key in seen:
            continue
        seen.add(key)
        colour = "green" if r["correct"] else "red"
        t.add_row(r["a"], r["b"], r["truth"], "—" if r["score"] is None else f"{r['score']:.3f}", f"[{colour}]{r['decision']}[/]")
    console.print(t)
    console.print(
        f"detection: {summary['detection']['counts_matching_annotations']}/{len(det)} photos with the annotated face count; "
        f"verification: {correct}/{len(ver)} pairs right ({100 * s['accuracy']:.1f}%), "
        f"{s['false_matches']} false match(es), {s['false_non_matches']} false non-match(es)"
    )
    return summary
