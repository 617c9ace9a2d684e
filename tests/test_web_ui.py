"""The library's web UI end to end: a real `faceprint serve` on loopback over a real library,
driven in headless Chromium (Debian's package) by Playwright: open people, rename a person,
answer a suggestion, merge two people, search by photo."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from servers import free_port, serve_library
from support import BROWSER_ARGS, CHROMIUM, browser_api, copy_people, largest_group

from faceprint import Engine, Settings
from faceprint.library import Library, LibraryStore
from faceprint.service.security import UiAuth

PEOPLE = ["Andre_Agassi", "Ari_Fleischer", "Bill_Gates", "Anna_Kournikova", "Abdullah_Gul"]
LINK_FMR = "1e-6"  # a strict grouping leaves Anna Kournikova's photos in two groups: a question to answer
UI_TOKEN = "test-ui-token-0123456789"  # FACEPRINT_UI_TOKEN: the web UI's login secret for these servers


@pytest.fixture()
def served(tmp_path: Path, lfw: Path):
    photos = tmp_path / "photos"
    copy_people(lfw, photos, PEOPLE, 6, need=8)  # two more each stay unseen: probes for the search
    db = tmp_path / "library.db"
    with Library(db, Engine(Settings(cluster_link_fmr=float(LINK_FMR)))) as lib:
        lib.index(photos, in_process=True)
        ids = {name: largest_group(lib.store.faces(), name) for name in PEOPLE}
    server = serve_library(db, tmp_path, FACEPRINT_CLUSTER_LINK_FMR=LINK_FMR, FACEPRINT_UI_TOKEN=UI_TOKEN)
    try:
        server.wait_ready()
        yield server, db, ids, lfw
    finally:
        code = server.stop()
        assert code == 0, server.output()


@pytest.mark.slow
def test_people_rename_suggestion_merge_search(served, tmp_path: Path) -> None:
    sync_api = browser_api()
    server, db, ids, lfw = served
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=BROWSER_ARGS,
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)
            # without the login the UI is a login form; the printed address logs in
            page.goto(server.url + "/")
            assert "/login" in page.url and page.locator("#login-token").count() == 1
            page.goto(f"{server.url}/login?token={UI_TOKEN}")
            _cross_site_attacks_fail(page, server, db, tmp_path / "gallery.db", ids, lfw, tmp_path)
            # open people: one card per person, with a thumbnail that loads
            page.goto(server.url + "/")
            cards = page.locator(".card.person")
            assert cards.count() >= len(PEOPLE)
            # thumbnails load lazily (after the page's load event): wait for the first one, which fails if it never loads
            page.wait_for_function("() => { const i = document.querySelector('.card.person img'); return i && i.complete && i.naturalWidth > 0; }")
            page.screenshot(path=str(tmp_path / "people.png"), full_page=True)
            assert (tmp_path / "people.png").stat().st_size > 10_000
            if os.environ.get("FACEPRINT_SCREENSHOT_DIR"):  # keep it (for a review or a release note)
                shutil.copy2(tmp_path / "people.png", Path(os.environ["FACEPRINT_SCREENSHOT_DIR"]) / "people.png")

            # rename a person
            anna = ids["Anna_Kournikova"]
            page.locator(f'.card.person[data-person="{anna}"] a').click()
            page.wait_for_url(f"**/people/{anna}")
            assert page.locator(".face .quality").first.inner_text().startswith("quality ")  # each face shows its unified quality
            page.fill("#rename-input", "Anna Example")
            page.click("#rename-button")
            sync_api.expect(page.locator("#person-name")).to_contain_text("Anna Example")
            with LibraryStore(db) as store:
                assert store.person(anna)["name"] == "Anna Example"

            # answer a suggestion: "Is this Anna Example?" -> yes
            page.click("#nav-suggestions")
            question = page.locator("#question")
            sync_api.expect(question).to_be_visible()
            sync_api.expect(question.locator("h2")).to_have_text("Is this Anna Example?")
            candidate = question.get_attribute("data-candidate")
            page.click("#answer-yes")
            sync_api.expect(page.locator(".flash")).to_have_text("Added")
            with LibraryStore(db) as store:
                kind, _, cid = candidate.partition(":")
                moved = store.faces(person_id=int(cid)) if kind == "person" else [store.face(int(cid))]
                if kind == "person":
                    assert moved == []  # the whole group joined Anna
                else:
                    assert moved[0].person_id == anna

            # merge two people
            gates, ari = ids["Bill_Gates"], ids["Ari_Fleischer"]
            with LibraryStore(db) as store:
                before = len(store.faces(person_id=gates)) + len(store.faces(person_id=ari))
            page.goto(f"{server.url}/people/{gates}")
            page.fill("#merge-input", f"#{ari}")
            page.click("#merge-button")
            sync_api.expect(page.locator(".flash")).to_have_text("Merged")
            sync_api.expect(page.locator("#person-name")).to_contain_text(f"{before} faces")

            # search by photo: a photo of Anna the library has not seen
            probe = sorted((lfw / "Anna_Kournikova").glob("*.jpg"))[7]
            page.click("text=Search by photo")
            page.set_input_files("#search-file", str(probe))
            page.click("#search-button")
            results = page.locator("table.results")
            sync_api.expect(page.locator("#search-results")).to_contain_text("found")
            sync_api.expect(results.locator(".match").first).to_contain_text("Anna Example")
            sync_api.expect(results.locator(".match").first).to_contain_text("match")

            # a bad upload is a clear message, not an error page
            bad = tmp_path / "notes.jpg"
            bad.write_text("not an image")
            page.set_input_files("#search-file", str(bad))
            page.click("#search-button")
            sync_api.expect(page.locator(".error")).to_contain_text("notes.jpg")
        finally:
            browser.close()


_ATTACK = """<!doctype html><html><body><h1>cute cats</h1>
<form id="f" method="post" action="TARGET/people/PERSON/rename"><input name="name" value="Pwned Person"></form>
<script>
const bytes = Uint8Array.from(atob("PHOTO"), c => c.charCodeAt(0));
const body = new FormData();
body.append("files", new Blob([bytes], {type: "image/jpeg"}), "attacker.jpg");
window.enrolled = "pending";
fetch("TARGET/v1/subjects/Victim%20Name/faces", {method: "POST", mode: "no-cors", body})
  .then(() => { window.enrolled = "sent"; }, () => { window.enrolled = "failed"; });
</script></body></html>"""


def _cross_site_attacks_fail(page, server, db: Path, gallery_db: Path, ids: dict[str, int], lfw: Path, tmp_path: Path) -> None:
    """A page on another origin (another port of 127.0.0.1) and a local file:// page, opened in
    the logged-in browser, submit the rename form and a no-cors multipart enrolment to the
    --no-auth server: both are refused and nothing changes in either database."""
    import base64
    import functools
    import http.server
    import threading

    from faceprint.gallery.store import Store

    person = ids["Bill_Gates"]
    photo = base64.b64encode(sorted((lfw / "Ari_Fleischer").glob("*.jpg"))[7].read_bytes()).decode()
    html = _ATTACK.replace("TARGET", server.url).replace("PERSON", str(person)).replace("PHOTO", photo)
    site = tmp_path / "evil"
    site.mkdir()
    (site / "index.html").write_text(html)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        for url in (f"http://127.0.0.1:{httpd.server_address[1]}/index.html", (site / "index.html").as_uri()):
            page.goto(url)
            page.wait_for_function("window.enrolled !== 'pending'")
            with page.expect_navigation():
                page.evaluate("document.getElementById('f').submit()")
            assert "cross-site" in page.content()  # the server's refusal page
    finally:
        httpd.shutdown()
        httpd.server_close()
    with LibraryStore(db) as store:
        assert store.person(person)["name"] is None  # not renamed
    with Store(gallery_db) as gstore:
        assert gstore.count_subjects() == 0  # nobody enrolled
    log = server.output(60_000)
    assert log.count("cross_site_request") >= 4, log[-3000:]
    # the same enrolment from the server's own page is accepted (same origin)
    page.goto(server.url + "/search")
    status = page.evaluate(
        """async (photo) => { const bytes = Uint8Array.from(atob(photo), c => c.charCodeAt(0)); const body = new FormData();
           body.append("files", new Blob([bytes], {type: "image/jpeg"}), "ari.jpg");
           const r = await fetch("/v1/subjects/Own%20Page/faces", {method: "POST", body}); return r.status; }""",
        photo,
    )
    assert status == 201
    with Store(gallery_db) as gstore:
        assert [s.name for s in gstore.subjects()] == ["Own Page"]


@pytest.mark.slow
def test_split_and_not_this_person_over_http(served) -> None:
    """The person page's forms (split, "not this person") change the library; images outside it are 404."""
    import httpx

    server, db, ids, _ = served
    agassi = ids["Andre_Agassi"]
    with LibraryStore(db) as store:
        faces = [f.id for f in store.faces(person_id=agassi)]
    assert len(faces) >= 4
    csrf = {"csrf_token": UiAuth(UI_TOKEN).csrf}
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=60) as c:
        assert c.get("/").status_code == 303  # to the login form
        assert c.post(f"/people/{agassi}/split", data={"face": [str(faces[0])], **csrf}).status_code == 401  # no session
        assert c.get(f"/login?token={UI_TOKEN}").status_code == 303
        assert c.post(f"/people/{agassi}/split", data={"face": [str(faces[0])]}).status_code == 403  # no CSRF token
        r = c.post(f"/people/{agassi}/split", data={"face": [str(faces[0]), str(faces[1])], **csrf})
        assert r.status_code == 303
        new = int(r.headers["location"].split("?")[0].rsplit("/", 1)[1])
        r = c.post(f"/faces/{faces[2]}/reject", params={"person": agassi}, data=csrf)
        assert r.status_code == 303 and "flash=" in r.headers["location"]
        page = c.get(f"/people/{new}")
        assert page.status_code == 200 and "2 faces" in page.text
        assert c.get("/ui/faces/99999999.jpg").status_code == 404
        assert c.get("/ui/photos/99999999").status_code == 404
        assert c.get("/ui/photos/99999999999999999999").status_code == 422  # past SQLite's integers: refused, not a 500
        bad = c.post(f"/people/{agassi}/split", data={"face": [str(faces[2])], **csrf}, follow_redirects=True)
        assert bad.status_code == 200 and "not every face given belongs" in bad.text  # a clear message, not a crash
    with LibraryStore(db) as store:
        assert {f.id for f in store.faces(person_id=new)} == {faces[0], faces[1]}
        assert store.face(faces[2]).person_id != agassi
        assert (min(agassi, new), max(agassi, new)) in store.apart()


def test_web_ui_is_refused_off_loopback(tmp_path: Path) -> None:
    from faceprint.errors import InputError
    from faceprint.service.server import serve

    with pytest.raises(InputError, match="plain HTTP"):
        serve(tmp_path / "g.db", host="0.0.0.0", port=0, library=tmp_path / "library.db")
