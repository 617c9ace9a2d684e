"""How fast the library's web UI answers on a large library: a real `faceprint serve --library`
on loopback over a synthetic library of N people (no detector run: faces with random unit
templates and tiny thumbnails, written in one transaction), timed from a client.

    .venv/bin/python benchmarks/library_ui.py [--people 2000 20000] [--runs 7]

For each size it prints the median wall time of each page over ``--runs`` requests after a
warm-up, and the same page right after a change (a hide / unhide: the suggestion count that
every page shows is recomputed then), with the server's floor -- a static file from the same
server -- measured in the same run as the baseline (``ratio_to_static``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import emit, machine

PAGE_TOKEN = "benchmark-ui-token-0123456789"


def build(db: Path, people: int, seed: int = 0) -> dict[str, int]:
    """A library of ``people`` people (one in ten named), 1 + geometric(0.5) faces each, one photo per face."""
    import cv2

    from faceprint.library.store import LibraryStore, NewFace
    from faceprint.sqlite import now

    rng = np.random.default_rng(seed)
    ok, buf = cv2.imencode(".jpg", np.full((16, 16, 3), 180, np.uint8))
    thumb = bytes(buf)
    n_faces = 0
    with LibraryStore(db) as store, store.transaction() as tx:
        t = now()
        for p in range(people):
            name = f"Person {p:06d}" if p % 10 == 0 else None
            pid = int(tx.execute("INSERT INTO people(name, created, updated) VALUES (?, ?, ?) RETURNING id", (name, t, t)).fetchone()[0])
            for _ in range(int(rng.geometric(0.5))):  # 1 + geometric: most people have a face or two
                path = f"/photos/{p // 1000:03d}/{n_faces:07d}.jpg"
                photo = int(
                    tx.execute(
                        "INSERT INTO photos(path, root, sha256, size, mtime, kind, width, height, status, indexed, taken) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                        (path, "/photos", f"{n_faces:064x}", 1, 0.0, "image", 100, 100, "ok", t, f"20{10 + n_faces % 15}-01-01T00:00:00"),
                    ).fetchone()[0]
                )
                v = rng.standard_normal(128).astype(np.float32)
                face = NewFace([10, 10, 50, 50], [[20, 30], [40, 30], [30, 40], [22, 50], [38, 50]], 0.9, 0.8, {"unified": 70}, v / np.linalg.norm(v), thumb)
                fid = store._insert_face(tx, photo, face, "sface-2021dec-int8bq+flip", pid)
                tx.execute("UPDATE faces SET assigned='auto' WHERE id=?", (fid,))
                n_faces += 1
    return {"people": people, "faces": n_faces}


def timed(client, url: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
    return round(statistics.median(times), 1)


def measure(people: int, runs: int, work: Path) -> dict:
    import httpx

    from faceprint.service.process import ServerProcess, free_port, server_env

    db = work / f"library-{people}.db"
    t0 = time.perf_counter()
    size = build(db, people)
    built = time.perf_counter() - t0
    port = free_port()
    server = ServerProcess(
        [sys.executable, "-m", "faceprint.cli", "serve", "--db", str(work / "gallery.db"), "--library", str(db), "--no-auth", "--port", str(port)],
        port,
        work / f"server-{people}.log",
        env=server_env(FACEPRINT_UI_TOKEN=PAGE_TOKEN),
    )
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=120) as c:
            assert c.get(f"/login?token={PAGE_TOKEN}").status_code in (200, 303)
            c.get("/")  # warm-up: the first page computes the suggestion count
            pages = max(1, -(-people // 60))
            urls = {
                "people_page_1": "/",
                "people_page_middle": f"/?page={pages // 2 + 1}",
                "people_by_name": "/?sort=name",
                "people_recent": "/?sort=recent",
                "people_search": "/?q=Person%20000",
                "hidden_people": "/?hidden=1",
                "person_page": "/people/1",
            }
            static = timed(c, "/ui/static/style.css", runs)
            out = {name: timed(c, url, runs) for name, url in urls.items()}
            csrf = c.get("/").text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            after_change = []
            for k in range(max(3, runs // 2)):
                c.post("/people/2/hide", data={"csrf_token": csrf, "hidden": "true" if k % 2 == 0 else "false"})
                t0 = time.perf_counter()
                assert c.get("/").status_code == 200
                after_change.append((time.perf_counter() - t0) * 1000)
    finally:
        server.stop()
    return {
        **size,
        "build_seconds": round(built, 1),
        "static_file_ms": static,
        "pages_ms": out,
        "people_page_after_a_change_ms": round(statistics.median(after_change), 1),
        "ratio_to_static": {k: round(v / static, 1) for k, v in out.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [measure(n, args.runs, Path(tmp)) for n in args.people]
    emit({"benchmark": "library_ui", "runs": args.runs, "sizes": sizes, "machine": machine()})


if __name__ == "__main__":
    main()
