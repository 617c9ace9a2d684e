"""The library's web UI: server-rendered pages (Jinja2) with plain HTML forms.

Pages: ``/`` people, ``/people/{id}`` a person (rename, merge, split, "not this
person"), ``/suggestions`` the question queue (yes / no / skip), ``/unknown``
faces of nobody, ``/search`` who is in a dropped photo.  Every change is a POST
followed by a redirect (so reloads never repeat it).  Images: ``/ui/faces/{id}.jpg``
(thumbnails kept by ``faceprint index``) and ``/ui/photos/{id}`` (the original file,
only while it is still the regular file that was indexed, inside its indexed folder).

Login: every page needs the per-launch secret (:class:`faceprint.service.security.UiAuth`):
``/login?token=...`` (the address ``faceprint serve`` prints) sets an HttpOnly,
SameSite=Strict session cookie; :class:`~faceprint.service.security.SecurityMiddleware`
refuses pages without it, and cross-site state changes.  Every form carries the
per-process CSRF token, checked on every POST.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from faceprint.errors import FaceprintError, InputError
from faceprint.library.library import Library
from faceprint.library.store import PEOPLE_SORTS
from faceprint.service.deps import Analysing, Uploads, get_analysing, get_uploads
from faceprint.service.security import UiAuth, escape_log

__all__ = ["mount_ui"]

logger = logging.getLogger("faceprint.service")
HERE = Path(__file__).parent
_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
UNKNOWN_PAGE = 200
MAX_ID = 2**63 - 1  # SQLite's integer range: larger ids are a clean 422, not an overflow
PHOTO_MAX_BYTES = 512 * 1024 * 1024  # larger originals are not served through the UI
PEOPLE_PAGE = 60  # people per page: the page stays fast at 20,000 people
PHOTOS_PAGE = 48  # a person's photos per page
VIEW_SIDE = 1600  # the photo view's image: at most this many pixels a side


def _id(where: str = "path") -> Any:
    return (PathParam if where == "path" else Query)(ge=0, le=MAX_ID)


def _safe_next(target: str | None) -> str:
    """Only a path on this server ("/..."), never "//host" or a scheme."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class CsrfFailed(InputError):
    """A UI form without this server's CSRF token (stale, or posted from another page)."""

    http_status = 403
    code = "csrf_failed"


class PhotoUnavailable(Exception):
    pass


def read_photo(path: str, root: str, size: int, sha256: str) -> bytes:
    """The bytes of an indexed photo, only if it is still the regular file that was indexed
    (same size and SHA-256) and its real path lies inside the indexed folder: a photo
    replaced by a symlink to another file, a FIFO or a device is never served."""
    real = os.path.realpath(path)
    root_real = os.path.realpath(root)
    if os.path.commonpath([real, root_real]) != root_real:
        raise PhotoUnavailable("leaves the indexed folder")
    try:
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise PhotoUnavailable(exc.strerror or "cannot open") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise PhotoUnavailable("not a regular file")
        if st.st_size != size or size > PHOTO_MAX_BYTES:
            raise PhotoUnavailable("changed since it was indexed")
        data = fh.read(size + 1)
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
        raise PhotoUnavailable("changed since it was indexed")
    return data


def _within(analysing: Any, fn: Any, *args: Any, **kw: Any) -> Any:
    """``fn`` in one of the app's analysis slots, under the upload limits (in the calling thread)."""
    with analysing():
        return fn(*args, **kw)


def _view_jpeg(library: Library, path: str, root: str, size: int, sha256: str) -> bytes:
    """The indexed photo as displayed (EXIF orientation applied), downscaled to at most
    :data:`VIEW_SIDE` pixels a side, as JPEG; only while it is the file that was indexed."""
    import cv2

    data = read_photo(path, root, size, sha256)
    image = library.engine.load(data)
    px = image.pixels
    scale = VIEW_SIDE / max(px.shape[:2])
    if scale < 1:
        px = cv2.resize(px, (max(1, round(px.shape[1] * scale)), max(1, round(px.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(px, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise PhotoUnavailable("cannot encode")
    return bytes(buf)


def _see(url: str, flash: str | None = None, error: str | None = None) -> RedirectResponse:
    if flash:
        url += ("&" if "?" in url else "?") + "flash=" + quote(flash)
    if error:
        url += ("&" if "?" in url else "?") + "error=" + quote(error)
    return RedirectResponse(url, status_code=303)


def mount_ui(app: FastAPI, library: Library, auth: UiAuth) -> None:
    """Add the login page, the UI routes (each POST checked for ``auth``'s CSRF token) and
    their static files to ``app``.  The session check itself is the middleware's."""
    router = APIRouter(include_in_schema=False)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")

    def csrf(csrf_token: str = Form("", description="the form's CSRF token")) -> None:
        if not auth.csrf_ok(csrf_token):
            raise CsrfFailed("this form is stale or did not come from this server's pages; reload the page and try again")

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> HTMLResponse:
        page = _env.get_template("login.html").render(next="/", error=str(exc), refused=True)
        return HTMLResponse(page, status_code=403)

    def render(request: Request, template: str, nav: str, **ctx: Any) -> HTMLResponse:
        open_q = library.open_questions() or 0
        values = {
            "nav": nav,
            "open_questions": open_q,
            "flash": request.query_params.get("flash"),
            "error": request.query_params.get("error"),
            "csrf": auth.csrf,
        }
        html = _env.get_template(template).render({**values, **ctx})
        return HTMLResponse(html)

    def login_page(next_: str, error: str | None = None, status: int = 200) -> HTMLResponse:
        return HTMLResponse(_env.get_template("login.html").render(next=_safe_next(next_), error=error), status_code=status)

    def login_attempt(request: Request, token: str, next_: str) -> Response:
        client = request.client.host if request.client else "-"
        wait = auth.limiter.retry_after(client)
        if wait:
            return login_page(next_, f"Too many wrong tokens; try again in {int(wait) + 1} s.", 429)
        if not auth.token_ok(token):
            auth.limiter.failure(client)
            logger.warning("web UI login refused: client=%s", escape_log(client))
            return login_page(next_, "That is not this server's token: use the address `faceprint serve` printed.", 403)
        response = RedirectResponse(_safe_next(next_), status_code=303)
        response.headers["set-cookie"] = auth.cookie()
        return response

    @router.get("/login", response_class=HTMLResponse)
    async def login_get(request: Request, token: str | None = Query(None, max_length=200), next: str = Query("/", max_length=2000)) -> Response:
        if token is None:
            return login_page(next)
        return login_attempt(request, token, next)

    @router.post("/login")
    async def login_post(request: Request, token: str = Form(..., max_length=200), next: str = Form("/", max_length=2000)) -> Response:
        return login_attempt(request, token, next)

    @router.post("/logout", dependencies=[Depends(csrf)])
    async def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.headers["set-cookie"] = auth.expired_cookie()
        return response

    async def run(fn: Any, *args: Any, **kw: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kw))

    def _person_id_for(text: str) -> int | None:
        """A person named in a form: '#12' or '12' is an id, anything else a name (None: empty)."""
        text = " ".join(text.split())
        if not text:
            return None
        if text.lstrip("#").isdigit() and len(text) < 20:
            pid = int(text.lstrip("#"))
            library.store.person(pid)
            return pid
        return int(library.store.person_by_name(text)["id"])

    def _target(text: str) -> tuple[int | None, str | None]:
        """Where faces go, from a form's text: a person ('#12', '12', or an existing person's
        name, any case) -> (id, None); a new name -> (None, name); empty -> (None, None)."""
        from faceprint.library.store import PersonNotFound

        try:
            return _person_id_for(text), None
        except PersonNotFound:
            if text.strip().lstrip("#").isdigit():
                raise  # an id that is nobody's is an error, never a new person's name
            return None, text.strip()

    @router.get("/", response_class=HTMLResponse)
    async def people_page(
        request: Request,
        page: int = Query(1, ge=1, le=10**7),
        sort: str = Query("faces", max_length=10),
        q: str = Query("", max_length=200),
        hidden: bool = Query(False),
    ) -> HTMLResponse:
        sort = sort if sort in PEOPLE_SORTS else "faces"

        def load() -> tuple[list[dict[str, Any]], int, dict[str, int], int]:
            rows, total = library.store.people_page(offset=(page - 1) * PEOPLE_PAGE, limit=PEOPLE_PAGE, sort=sort, query=q or None, hidden=hidden)
            cov = library.store.covers([p["id"] for p in rows])
            n_hidden = int(library.store.read("SELECT COUNT(*) FROM people WHERE hidden=1")[0][0])
            return [{**p, "cover": cov.get(p["id"])} for p in rows], total, library.store.counts(), n_hidden

        people, total, counts, n_hidden = await run(load)
        pages = max(1, -(-total // PEOPLE_PAGE))
        # "Who is this?": inline naming on the largest unnamed people, where the list is by size
        ask = {p["id"] for p in people if p["name"] is None and sort == "faces" and page == 1 and not hidden and not q}
        here = request.url.path + ("?" + request.url.query if request.url.query else "")
        return render(
            request,
            "people.html",
            "people",
            title="Hidden people" if hidden else "People",
            people=people,
            counts=counts,
            total=total,
            page=page,
            pages=pages,
            sort=sort,
            q=q,
            hidden=hidden,
            n_hidden=n_hidden,
            ask=ask,
            here=here,
            sorts=PEOPLE_SORTS,
        )

    @router.post("/people/bulk", dependencies=[Depends(csrf)])
    async def people_bulk(
        action: str = Form(..., max_length=20), person: list[int] = Form(default=[]), next: str = Form("/", max_length=2000)
    ) -> RedirectResponse:
        back = _safe_next(next)
        if any(not 0 <= p <= MAX_ID for p in person) or len(person) > 100_000:
            return _see(back, error="invalid person ids")
        try:
            if action == "merge":
                if len(set(person)) < 2:
                    return _see(back, error="Choose at least two people to merge.")

                def merge() -> int:
                    chosen = {p["id"]: p for p in library.store.people() if p["id"] in set(person)}
                    keep = min(chosen.values(), key=lambda p: (p["name"] is None, -p["faces"], p["id"]))["id"] if chosen else person[0]
                    library.store.merge_many(keep, person)
                    return int(keep)

                keep = await run(merge)
                return _see(f"/people/{keep}", flash=f"Merged {len(set(person))} people")
            if action in ("hide", "unhide"):
                if not person:
                    return _see(back, error="Choose at least one person.")
                n = await run(library.store.set_hidden, person, action == "hide")
                return _see(back, flash=f"{'Hid' if action == 'hide' else 'Showed'} {n} {'person' if n == 1 else 'people'}")
        except FaceprintError as exc:
            return _see(back, error=str(exc))
        return _see(back, error=f"unknown action {action[:20]!r}")

    @router.post("/people/hide-small", dependencies=[Depends(csrf)])
    async def hide_small(fewer_than: int = Form(..., ge=1, le=1_000_000)) -> RedirectResponse:
        n = await run(library.store.hide_small_unnamed, fewer_than)
        return _see("/", flash=f"Hid {n} unnamed {'person' if n == 1 else 'people'} with fewer than {fewer_than} faces")

    @router.get("/people/{person_id}", response_class=HTMLResponse)
    async def person_page(request: Request, person_id: int = _id(), page: int = Query(1, ge=1, le=10**7)) -> Response:
        try:
            person = await run(library.store.person, person_id)
        except FaceprintError as exc:
            return _see("/", error=str(exc))
        faces = await run(library.store.faces, person_id=person_id)
        photos, n_photos = await run(library.store.person_photos, person_id, offset=(page - 1) * PHOTOS_PAGE, limit=PHOTOS_PAGE)
        named = await run(library.store.read, "SELECT id, name FROM people WHERE name IS NOT NULL AND id<>? ORDER BY name LIMIT 5000", (person_id,))
        return render(
            request,
            "person.html",
            "people",
            title=person["name"] or "Unnamed person",
            person=person,
            faces=faces,
            named=named,
            photos=photos,
            n_photos=n_photos,
            page=page,
            pages=max(1, -(-n_photos // PHOTOS_PAGE)),
            mark_below=library.engine.settings.quality_mark_below,
        )

    @router.post("/people/{person_id}/rename", dependencies=[Depends(csrf)])
    async def rename(person_id: int = _id(), name: str = Form(..., max_length=200), next: str = Form("", max_length=2000)) -> RedirectResponse:
        back = _safe_next(next) if next else f"/people/{person_id}"
        try:
            await run(library.rename, person_id, name)
        except FaceprintError as exc:
            return _see(back, error=str(exc))
        return _see(back, flash=f"Named {' '.join(name.split())}")

    @router.post("/people/{person_id}/hide", dependencies=[Depends(csrf)])
    async def hide(person_id: int = _id(), hidden: bool = Form(True)) -> RedirectResponse:
        try:
            await run(library.store.set_hidden, [person_id], hidden)
        except FaceprintError as exc:
            return _see("/", error=str(exc))
        return _see(f"/people/{person_id}", flash="Hidden: not on the people page or in suggestions" if hidden else "Shown again")

    @router.post("/people/{person_id}/merge", dependencies=[Depends(csrf)])
    async def merge(person_id: int = _id(), other: str = Form(..., max_length=200)) -> RedirectResponse:
        try:

            def go() -> None:
                oid = _person_id_for(other)
                if oid is None:
                    raise InputError("say who this person is the same as: a name or #id")
                library.store.merge_people(person_id, oid)

            await run(go)
        except FaceprintError as exc:
            return _see(f"/people/{person_id}", error=str(exc))
        return _see(f"/people/{person_id}", flash="Merged")

    @router.post("/people/{person_id}/faces", dependencies=[Depends(csrf)])
    async def faces_action(
        person_id: int = _id(), action: str = Form(..., max_length=20), face: list[int] = Form(default=[]), to: str = Form("", max_length=200)
    ) -> RedirectResponse:
        """The selected faces of a person: split off, moved to someone (existing or new), or not this person."""
        here = f"/people/{person_id}"
        if any(not 0 <= f <= MAX_ID for f in face) or len(face) > 100_000:
            return _see(here, error="invalid face ids")
        if not face:
            return _see(here, error="Select at least one face first.")
        try:
            if action == "split":
                new = await run(library.store.split_faces, person_id, face)
                return _see(f"/people/{new}", flash=f"Split {len(face)} face(s) into a new person")
            if action == "reject":
                n = await run(library.store.reject_faces, face, person_id)
                return _see(here, flash=f"Removed {n} face(s) from this person")
            if action == "delete":
                n = await run(library.store.delete_faces, face)
                return _see(here, flash=f"Deleted {n} face(s): not faces, or drawn by mistake")
            if action == "move":

                def move() -> int:
                    pid, name = _target(to)
                    return library.store.move_faces(face, pid, name=name)

                target = await run(move)
                return _see(here, flash=f"Moved {len(face)} face(s) to person #{target}")
        except FaceprintError as exc:
            return _see(here, error=str(exc))
        return _see(here, error=f"unknown action {action[:20]!r}")

    @router.post("/people/{person_id}/split", dependencies=[Depends(csrf)])
    async def split(person_id: int = _id(), face: list[int] = Form(default=[])) -> RedirectResponse:
        if any(not 0 <= f <= MAX_ID for f in face) or len(face) > 100_000:
            return _see(f"/people/{person_id}", error="invalid face ids")
        try:
            new = await run(library.store.split_faces, person_id, face)
        except FaceprintError as exc:
            return _see(f"/people/{person_id}", error=str(exc))
        return _see(f"/people/{new}", flash=f"Split {len(face)} face(s) into a new person")

    @router.post("/faces/{face_id}/reject", dependencies=[Depends(csrf)])
    async def reject(face_id: int = _id(), person: int = _id("query")) -> RedirectResponse:
        try:
            await run(library.store.reject_face, face_id, person)
        except FaceprintError as exc:
            return _see(f"/people/{person}", error=str(exc))
        return _see(f"/people/{person}", flash="Removed the face from this person")

    @router.post("/faces/{face_id}/assign", dependencies=[Depends(csrf)])
    async def assign(face_id: int = _id(), person: str = Form(..., max_length=200)) -> RedirectResponse:
        """Place a face of nobody: in a person (a name or #id), or a new person with a new name."""
        try:

            def go() -> None:
                pid, name = _target(person)
                if pid is None and not name:
                    raise InputError("say who this is: a name or #id")
                library.store.move_faces([face_id], pid, name=name)

            await run(go)
        except FaceprintError as exc:
            return _see("/unknown", error=str(exc))
        return _see("/unknown", flash="Placed the face")

    @router.get("/suggestions", response_class=HTMLResponse)
    async def suggestions_page(request: Request) -> HTMLResponse:
        queue = await run(library.suggestions, limit=99)
        first = queue[0] if queue else None
        person_faces: list[int] = []
        if first is not None:
            asked = set(first.face_ids)  # a member question: the face is the person's too
            person_faces = [f.id for f in sorted(await run(library.store.faces, person_id=first.person_id), key=lambda f: -f.quality) if f.id not in asked][:6]
        return render(request, "suggestions.html", "suggestions", title="Suggestions", suggestion=first, total=len(queue), person_faces=person_faces)

    @router.post("/suggestions/answer", dependencies=[Depends(csrf)])
    async def answer(
        person: int = Form(..., ge=0, le=MAX_ID),
        candidate: str = Form(..., max_length=100),
        reply: str = Form(..., max_length=10),
        kind: str = Form("join", max_length=20),
    ) -> RedirectResponse:
        try:
            await run(library.answer, person, candidate, reply)
        except FaceprintError as exc:
            return _see("/suggestions", error=str(exc))
        said = {"yes": "Kept" if kind == "member" else "Added", "no": "Taken out" if kind == "member" else "Noted: not them", "skip": "Skipped"}
        return _see("/suggestions", flash=said.get(reply, "Saved"))

    @router.get("/unknown", response_class=HTMLResponse)
    async def unknown_page(request: Request) -> HTMLResponse:
        faces = await run(library.unknown_faces)
        named = await run(library.store.read, "SELECT id, name FROM people WHERE name IS NOT NULL ORDER BY name LIMIT 5000")
        return render(request, "unknown.html", "unknown", title="Unknown faces", faces=faces[:UNKNOWN_PAGE], total=len(faces), named=named)

    @router.get("/search", response_class=HTMLResponse)
    async def search_page(request: Request) -> HTMLResponse:
        return render(request, "search.html", "search", title="Search by photo", results=None)

    @router.post("/search", response_class=HTMLResponse, dependencies=[Depends(csrf)])
    async def search(
        request: Request, photo: UploadFile = File(...), uploads: Uploads = Depends(get_uploads), analysing: Analysing = Depends(get_analysing)
    ) -> HTMLResponse:
        try:  # the service's per-file limit, decoded under its image limits in one of its analysis slots
            results = await run(lambda: _within(analysing, library.search, uploads.read(photo, "photo")))
        except FaceprintError as exc:
            return render(request, "search.html", "search", title="Search by photo", results=None, error=f"{photo.filename}: {exc}")
        return render(request, "search.html", "search", title="Search by photo", results=results)

    def _exported(changes: list[Any], errors: list[Any]) -> str:
        made = {a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "unchanged")}
        text = f"Face tags written for {len(changes)} photo(s): {made['create']} sidecars created, {made['update']} updated, {made['unchanged']} unchanged"
        return text + (f"; {len(errors)} could not be written (first: {errors[0]['path']}: {errors[0]['error']})" if errors else "")

    @router.post("/people/{person_id}/export-xmp", dependencies=[Depends(csrf)])
    async def export_person(person_id: int = _id()) -> RedirectResponse:
        """XMP sidecars (MWG + Microsoft regions, People tags) for this person's photos."""
        try:
            await run(library.store.person, person_id)
            changes, errors = await run(library.export_xmp, person_ids=[person_id])
        except FaceprintError as exc:
            return _see(f"/people/{person_id}", error=str(exc))
        return _see(f"/people/{person_id}", flash=_exported(changes, errors))

    @router.post("/export-xmp", dependencies=[Depends(csrf)])
    async def export_all() -> RedirectResponse:
        """XMP sidecars for every photo with a named face."""
        try:
            changes, errors = await run(library.export_xmp)
        except FaceprintError as exc:
            return _see("/", error=str(exc))
        return _see("/", flash=_exported(changes, errors))

    @router.get("/photos/{photo_id}", response_class=HTMLResponse)
    async def photo_page(request: Request, photo_id: int = _id()) -> Response:
        try:
            photo = await run(library.store.photo, photo_id)
        except FaceprintError as exc:
            return _see("/", error=str(exc))
        people = {}
        for f in photo["faces"]:
            if f["person_id"] is not None:
                people.setdefault(f["person_id"], f["name"])
        return render(
            request,
            "photo.html",
            "people",
            title=photo["path"].rsplit("/", 1)[-1],
            photo=photo,
            people=people,
            still=photo["kind"] == "image" and photo["status"] == "ok" and bool(photo["width"]),
        )

    @router.post("/photos/{photo_id}/faces", dependencies=[Depends(csrf)])
    async def add_face(
        photo_id: int = _id(),
        x: float = Form(..., ge=0, le=1e6),
        y: float = Form(..., ge=0, le=1e6),
        w: float = Form(..., gt=0, le=1e6),
        h: float = Form(..., gt=0, le=1e6),
        name: str = Form("", max_length=200),
        analysing: Analysing = Depends(get_analysing),
    ) -> RedirectResponse:
        here = f"/photos/{photo_id}"
        try:  # the detector and embedder run: in one of the bounded analysis slots
            res = await run(_within, analysing, library.add_face, photo_id, (x, y, w, h), name=name.strip() or None)
        except FaceprintError as exc:
            return _see(here, error=str(exc))
        return _see(here, flash="Added the face" + (f" of {' '.join(name.split())}" if name.strip() else "") + f" (found by the {res['located_by']})")

    @router.get("/ui/photos/{photo_id}/view.jpg")
    async def photo_view(photo_id: int = _id(), analysing: Analysing = Depends(get_analysing)) -> Response:
        """The photo as displayed (EXIF orientation applied), at most VIEW_SIDE pixels a side."""
        rows = await run(library.store.read, "SELECT path, root, size, sha256 FROM photos WHERE id=? AND status='ok' AND kind='image'", (photo_id,))
        if not rows:
            return Response(status_code=404)
        r = rows[0]
        try:
            data = await run(_within, analysing, _view_jpeg, library, r["path"], r["root"], r["size"], r["sha256"])
        except (PhotoUnavailable, FaceprintError):
            return Response(status_code=404)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})

    @router.get("/ui/faces/{face_id}.jpg")
    async def thumb(face_id: int = _id()) -> Response:
        try:
            data = await run(library.store.thumb, face_id)
        except FaceprintError:
            return Response(status_code=404)
        if not data:
            return Response(status_code=404)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})

    @router.get("/ui/photos/{photo_id}")
    async def photo(photo_id: int = _id()) -> Response:
        rows = await run(library.store.read, "SELECT path, root, size, sha256 FROM photos WHERE id=? AND status='ok'", (photo_id,))
        if not rows:
            return Response(status_code=404)
        r = rows[0]
        try:
            data = await run(read_photo, r["path"], r["root"], r["size"], r["sha256"])
        except PhotoUnavailable:
            return Response(status_code=404)
        import mimetypes

        media = mimetypes.guess_type(r["path"])[0] or "application/octet-stream"
        if not (media.startswith("image/") or media.startswith("video/")):
            media = "application/octet-stream"
        return Response(data, media_type=media, headers={"Cache-Control": "private, no-store"})

    app.include_router(router)
