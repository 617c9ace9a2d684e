"""Issue 13's checks against a real `faceprint serve` on loopback (API keys on, a library's web
UI mounted): Host allow-list, cross-site refusal, security headers, the UI's own login next
to a keyed API, API keys checked before the body, rate-limited key guessing, log lines that
cannot be forged, bounded ids, names without hidden characters, bounded metadata, and the
indexer / photo view refusing FIFOs and symlink swaps."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest
from servers import RealServer, free_port, server_env

from faceprint.service import auth
from faceprint.service.security import FailureLimiter, UiAuth, escape_log, host_name

UI_TOKEN = "security-test-token-0123456789"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, lfw: Path, engine):
    from faceprint.gallery.store import Store
    from faceprint.library import Library

    tmp = tmp_path_factory.mktemp("security")
    photos = tmp / "photos"
    photos.mkdir()
    for p in sorted((lfw / "Bill_Gates").glob("*.jpg"))[:2]:
        shutil.copy2(p, photos / p.name)
    with Library(tmp / "library.db", engine) as lib:
        lib.index(photos, in_process=True)
    with Store(tmp / "gallery.db") as store:
        keys = {s: auth.create_key(store, f"test-{s}", [s]) for s in ("read", "enroll")}
    port = free_port()
    server = RealServer(
        [
            sys.executable,
            "-m",
            "faceprint.cli",
            "serve",
            "--db",
            str(tmp / "gallery.db"),
            "--library",
            str(tmp / "library.db"),
            "--port",
            str(port),
            "--allowed-host",
            "faceprint.test",
        ],
        port,
        tmp / "server.log",
        env=server_env(FACEPRINT_UI_TOKEN=UI_TOKEN),
    )
    try:
        server.wait_ready()
        yield server, keys, tmp, photos
    finally:
        assert server.stop() == 0, server.output()


def _client(server: RealServer, source: str = "127.0.0.1") -> httpx.Client:
    """A client whose requests come from ``source`` (another 127/8 address keeps one test's
    failed attempts from locking out the others)."""
    return httpx.Client(base_url=server.url, timeout=30, follow_redirects=False, transport=httpx.HTTPTransport(local_address=source))


def test_host_allow_list_refuses_rebinding(keyed) -> None:
    server, keys, _, _ = keyed
    with _client(server) as c:
        for path in ("/", "/v1/subjects", "/ui/photos/1", "/v1/health"):
            r = c.get(path, headers={"Host": "attacker.example"})
            assert r.status_code == 400 and r.json()["error"]["code"] == "bad_host", path
        assert c.get("/v1/health", headers={"Host": f"localhost:{server.port}"}).status_code == 200
        assert c.get("/v1/health", headers={"Host": f"[::1]:{server.port}"}).status_code == 200
        assert c.get("/v1/health", headers={"Host": "faceprint.test"}).status_code == 200  # --allowed-host


def test_cross_site_writes_refused_same_origin_and_scripts_allowed(keyed) -> None:
    server, keys, _, _ = keyed
    h = {"Authorization": f"Bearer {keys['enroll']}"}
    with _client(server) as c:
        for extra in (
            {"Origin": "http://evil.example"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Origin": f"http://127.0.0.1:{server.port + 1}"},
        ):
            r = c.post("/v1/subjects", json={"name": "Mallory"}, headers={**h, **extra})
            assert r.status_code == 403 and r.json()["error"]["code"] == "cross_site_request", extra
            assert c.delete("/v1/subjects/Anyone", headers={**h, **extra}).status_code == 403
        r = c.post("/v1/subjects", json={"name": "Same Origin"}, headers={**h, "Origin": server.url, "Sec-Fetch-Site": "same-origin"})
        assert r.status_code == 201
        assert c.post("/v1/subjects", json={"name": "A Script"}, headers=h).status_code == 201  # no browser headers: the key decides
        names = [s["name"] for s in c.get("/v1/subjects", headers=h).json()["subjects"]]
        assert "Mallory" not in names and {"Same Origin", "A Script"} <= set(names)
        # the UI's forms: a logged-in session from another origin is refused too
        assert c.get(f"/login?token={UI_TOKEN}").status_code == 303
        r = c.post("/people/1/rename", data={"name": "Pwned", "csrf_token": UiAuth(UI_TOKEN).csrf}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403


def test_security_headers(keyed) -> None:
    server, keys, _, _ = keyed
    with _client(server) as c:
        c.get(f"/login?token={UI_TOKEN}")
        page = c.get("/")
        api = c.get("/v1/subjects", headers={"Authorization": f"Bearer {keys['read']}"})
        docs = c.get("/docs")
    for r in (page, api, docs):
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in page.text  # no inline script: the strict policy would block it
    assert page.headers["cache-control"] == "no-store"


def test_ui_needs_its_own_login_beside_a_keyed_api(keyed) -> None:
    server, keys, _, _ = keyed
    with _client(server, "127.0.0.3") as c:
        r = c.get("/")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert c.get("/people/1").status_code == 303
        assert c.get("/ui/faces/1.jpg").status_code == 401
        assert c.get("/ui/photos/1").status_code == 401
        assert c.post("/people/1/rename", data={"name": "Pwned"}).status_code == 401
        assert c.get("/v1/subjects", headers={"Authorization": f"Bearer {keys['read']}"}).status_code == 200  # an API key opens no UI page
        assert c.get("/", headers={"Authorization": f"Bearer {keys['read']}"}).status_code == 303
        assert c.get("/login?token=wrong-token-wrong-token").status_code == 403
        r = c.get(f"/login?token={UI_TOKEN}&next=//evil.example/")
        assert r.status_code == 303 and r.headers["location"] == "/"  # never an open redirect
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert c.get("/").status_code == 200
        assert c.get("/ui/faces/1.jpg").status_code == 200
        # a form without the CSRF token is refused even with the session
        assert c.post("/people/1/rename", data={"name": "Pwned"}).status_code == 403


def test_api_key_checked_before_the_body(keyed) -> None:
    server, _, _, _ = keyed
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(
            b"POST /v1/identify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 9000000\r\n\r\n"
        )  # ... and not one byte of the 9 MB body
        t0 = time.monotonic()
        head = s.recv(4096)
        assert head.startswith(b"HTTP/1.1 401"), head[:200]
        assert time.monotonic() - t0 < 5


def test_key_guessing_is_rate_limited_and_logged(keyed) -> None:
    server, keys, _, _ = keyed
    prefix = auth.parse_key(keys["read"])[0]
    wrong = keys["read"][:-4] + ("AAAA" if not keys["read"].endswith("AAAA") else "BBBB")
    with _client(server, "127.0.0.2") as c:
        codes = [c.get("/v1/subjects", headers={"Authorization": f"Bearer {wrong}"}).status_code for _ in range(12)]
        assert codes[:10] == [401] * 10 and codes[10:] == [429, 429], codes
        r = c.get("/v1/subjects", headers={"Authorization": f"Bearer {wrong}"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    with _client(server, "127.0.0.4") as c:  # the real key's owner, elsewhere: a known-good key still passes
        assert c.get("/v1/subjects", headers={"Authorization": f"Bearer {keys['read']}"}).status_code == 200
    log = server.output(200_000)
    assert f"API key refused: client=127.0.0.2 prefix={prefix}" in log


def test_log_lines_cannot_be_forged(keyed) -> None:
    server, _, _, _ = keyed
    with _client(server) as c:
        c.get("/v1/health%0A2026-01-01 INFO faceprint.service: GET /v1/forged 200")
    log = server.output(200_000)
    assert "\n2026-01-01 INFO faceprint.service: GET /v1/forged" not in log
    assert "health\\x0a2026-01-01" in log
    assert escape_log("a\u202eb\u200bc\nd") == "a\\u202eb\\u200bc\\x0ad"


def test_ids_and_offsets_past_sqlite_range_are_clean_errors(keyed) -> None:
    server, keys, _, _ = keyed
    h = {"Authorization": f"Bearer {keys['read']}"}
    with _client(server) as c:
        c.get(f"/login?token={UI_TOKEN}")
        assert c.get("/ui/photos/99999999999999999999").status_code == 422
        assert c.get("/ui/faces/99999999999999999999.jpg").status_code == 422
        assert c.get("/people/99999999999999999999").status_code == 422
        assert c.get("/v1/subjects", params={"offset": 10**20}, headers=h).status_code == 422


def test_hidden_characters_in_names_and_big_metadata_refused(keyed) -> None:
    server, keys, _, _ = keyed
    h = {"Authorization": f"Bearer {keys['enroll']}"}
    with _client(server) as c:
        for bad in ("Alice\u200b", "\u202eecilA", "Al\u2028ice", "Bob\ufeff"):
            r = c.post("/v1/subjects", json={"name": bad}, headers=h)
            assert r.status_code == 422 and "may not contain" in r.json()["error"]["message"], bad
        decomposed = "Zoe\u0301 Nfc"
        assert c.post("/v1/subjects", json={"name": decomposed}, headers=h).status_code == 201
        r = c.post("/v1/subjects", json={"name": "Zo\u00e9 Nfc"}, headers=h)
        assert r.status_code == 409  # the same name, composed: one subject
        assert c.get("/v1/subjects/Zo%C3%A9%20Nfc", headers=h).status_code == 200
        r = c.post("/v1/subjects", json={"name": "Big Meta", "metadata": {"x": "a" * 100_000}}, headers=h)
        assert r.status_code == 422 and "metadata" in r.json()["error"]["message"]


def test_photo_view_refuses_symlink_swaps_and_changed_files(keyed) -> None:
    server, _, tmp, photos = keyed
    from faceprint.library import LibraryStore

    with LibraryStore(tmp / "library.db") as store:
        rows = store.read("SELECT id, path FROM photos WHERE status='ok' ORDER BY id")
    assert len(rows) == 2
    (pid1, path1), (pid2, path2) = [(r["id"], Path(r["path"])) for r in rows]
    secret = tmp / "secret.jpg"
    secret.write_bytes(b"\xff\xd8 not for the browser " * 10)
    with _client(server) as c:
        c.get(f"/login?token={UI_TOKEN}")
        ok = c.get(f"/ui/photos/{pid1}")
        assert ok.status_code == 200 and ok.content == path1.read_bytes() and ok.headers["content-type"] == "image/jpeg"
        keep = path1.read_bytes()
        try:
            path1.unlink()
            path1.symlink_to(secret)  # swapped for a link out of the folder
            assert c.get(f"/ui/photos/{pid1}").status_code == 404
            path1.unlink()
            path1.symlink_to(path2)  # a link inside the folder, to other content
            assert c.get(f"/ui/photos/{pid1}").status_code == 404
            path1.unlink()
            path1.write_bytes(keep[:-1] + b"\x00")  # same size, other content
            assert c.get(f"/ui/photos/{pid1}").status_code == 404
        finally:
            if path1.is_symlink() or path1.exists():
                path1.unlink()
            path1.write_bytes(keep)
        assert c.get(f"/ui/photos/{pid1}").status_code == 200


def test_index_skips_fifos_with_a_reason(tmp_path: Path, lfw: Path, engine) -> None:
    from faceprint.library import Library

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy2(sorted((lfw / "Bill_Gates").glob("*.jpg"))[0], photos / "a.jpg")
    os.mkfifo(photos / "trap.jpg")  # reading it would block forever
    with Library(tmp_path / "library.db", engine) as lib:
        summary, _ = lib.index(photos, in_process=True)
    assert summary.analysed == 1
    assert summary.skipped == [{"path": str(photos / "trap.jpg"), "reason": "not a regular file (a FIFO); skipped"}]


def test_failure_limiter_window() -> None:
    now = [0.0]
    lim = FailureLimiter(limit=3, window=10.0, clock=lambda: now[0])
    for _ in range(3):
        assert lim.retry_after("a") == 0
        lim.failure("a")
    assert lim.retry_after("a") == pytest.approx(10.0)
    assert lim.retry_after("b") == 0
    now[0] = 10.5
    assert lim.retry_after("a") == 0
    assert host_name("[::1]:8000") == "::1" and host_name("LocalHost:80") == "localhost" and host_name("example.com.") == "example.com"


def test_index_refuses_an_over_cap_video_from_its_header(tmp_path: Path, engine) -> None:
    from test_decode_limits import _clip

    from faceprint.library import Library

    photos = tmp_path / "photos"
    photos.mkdir()
    _clip(photos / "huge.mov", 5000, 5000, 2)  # 25 MP frames, over the 4K video_max_pixels setting
    with Library(tmp_path / "library.db", engine) as lib:
        summary, _ = lib.index(photos, in_process=True)
    assert len(summary.errors) == 1 and "5000x5000" in summary.errors[0]["error"] and "image_too_large" in summary.errors[0]["error"]


def test_library_life_endpoints_need_login_csrf_and_same_origin(keyed) -> None:
    """The new library pages and forms (bulk merge / hide, hide-small, hide, moving faces, a
    drawn face, the photo view) are behind the UI login; every state change needs this
    server's CSRF token and is refused from another origin, and changes nothing when refused."""
    from faceprint.library import LibraryStore

    server, _, tmp, _ = keyed
    db = Path(tmp) / "library.db"
    with LibraryStore(db) as store:
        before = (store.read("SELECT COUNT(*) FROM faces")[0][0], [dict(r) for r in store.read("SELECT id, name, hidden FROM people ORDER BY id")])
        person = store.people()[0]["id"]
        photo = store.read("SELECT id FROM photos LIMIT 1")[0]["id"]
        face = store.faces()[0].id
    posts = [
        ("/people/bulk", {"action": "hide", "person": str(person)}),
        ("/people/hide-small", {"fewer_than": "1000"}),
        (f"/people/{person}/hide", {"hidden": "true"}),
        (f"/people/{person}/faces", {"action": "move", "face": str(face), "to": "Mallory"}),
        (f"/photos/{photo}/faces", {"x": "1", "y": "1", "w": "40", "h": "40", "name": "Mallory"}),
    ]
    csrf = UiAuth(UI_TOKEN).csrf
    with _client(server, "127.0.0.4") as c:
        for url in (f"/photos/{photo}", f"/people/{person}?page=2", "/?sort=name&q=x&hidden=1"):
            assert c.get(url).status_code == 303  # to the login
        assert c.get(f"/ui/photos/{photo}/view.jpg").status_code == 401
        for url, data in posts:
            assert c.post(url, data={**data, "csrf_token": csrf}).status_code == 401, url
        assert c.get(f"/login?token={UI_TOKEN}").status_code == 303
        for url, data in posts:
            assert c.post(url, data=data).status_code == 403, f"{url} without the CSRF token"
            r = c.post(url, data={**data, "csrf_token": csrf}, headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
            assert r.status_code == 403, f"{url} from another origin"
        page = c.get(f"/photos/{photo}")
        assert page.status_code == 200 and "<script>" not in page.text and 'id="photo-img"' in page.text
        view = c.get(f"/ui/photos/{photo}/view.jpg")
        assert view.status_code == 200 and view.headers["content-type"] == "image/jpeg" and view.headers["cache-control"] == "private, no-store"
        # bounded inputs are a clean refusal, not a 500
        assert c.get("/?page=0").status_code == 422 and c.get("/?q=" + "x" * 300).status_code == 422
        r = c.post("/people/bulk", data={"action": "merge", "person": ["1", str(2**70)], "csrf_token": csrf})
        assert r.status_code in (303, 422)
    with LibraryStore(db) as store:
        after = (store.read("SELECT COUNT(*) FROM faces")[0][0], [dict(r) for r in store.read("SELECT id, name, hidden FROM people ORDER BY id")])
    assert after == before, "a refused request changed the library"
