"""The library's web UI: server-rendered pages (Jinja2) with plain HTML forms.

Pages: ``/`` people, ``/people/{id}`` a person (rename, merge, split, "not this
person"), ``/suggestions`` the question queue (yes / no / skip), ``/unknown``
faces of nobody, ``/search`` who is in a dropped photo.  Every change is a POST
followed by a redirect (so reloads never repeat it).  Images: ``/ui/faces/{id}.jpg``
(thumbnails kept by ``faceprint index``) and ``/ui/photos/{id}`` (the original file,
only for photos in the library).

The UI has no login: ``faceprint serve`` mounts it only on a loopback address
(it is the library owner's own view of their photos).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from faceprint.errors import FaceprintError
from faceprint.library.library import Library

__all__ = ["mount_ui"]

HERE = Path(__file__).parent
_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
UNKNOWN_PAGE = 200


def _see(url: str, flash: str | None = None, error: str | None = None) -> RedirectResponse:
    if flash:
        url += ("&" if "?" in url else "?") + "flash=" + quote(flash)
    if error:
        url += ("&" if "?" in url else "?") + "error=" + quote(error)
    return RedirectResponse(url, status_code=303)


def mount_ui(app: FastAPI, library: Library) -> None:
    """Add the UI routes and their static files to ``app``."""
    router = APIRouter(include_in_schema=False)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")

    def render(request: Request, template: str, page: str, **ctx: Any) -> HTMLResponse:
        try:
            open_q = len(library.suggestions(limit=99))
        except FaceprintError:
            open_q = 0
        values = {"page": page, "open_questions": open_q, "flash": request.query_params.get("flash"), "error": request.query_params.get("error")}
        html = _env.get_template(template).render({**values, **ctx})
        return HTMLResponse(html)

    async def run(fn: Any, *args: Any, **kw: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kw))

    def covers() -> dict[int, int]:
        rows = library.store.read(
            "SELECT person_id, id FROM (SELECT person_id, id, ROW_NUMBER() OVER (PARTITION BY person_id ORDER BY quality DESC, id) AS r "
            "FROM faces WHERE person_id IS NOT NULL AND thumb IS NOT NULL) WHERE r = 1"
        )
        return {r["person_id"]: r["id"] for r in rows}

    @router.get("/", response_class=HTMLResponse)
    async def people_page(request: Request) -> HTMLResponse:
        def load() -> tuple[list[dict[str, Any]], dict[str, int]]:
            cov = covers()
            return [{**p, "cover": cov.get(p["id"])} for p in library.store.people()], library.store.counts()

        people, counts = await run(load)
        return render(request, "people.html", "people", title="People", people=people, counts=counts)

    @router.get("/people/{person_id}", response_class=HTMLResponse)
    async def person_page(request: Request, person_id: int) -> Response:
        try:
            person = await run(library.store.person, person_id)
        except FaceprintError as exc:
            return _see("/", error=str(exc))
        faces = await run(library.store.faces, person_id=person_id)
        others = [p for p in await run(library.store.people) if p["id"] != person_id]
        return render(request, "person.html", "people", title=person["name"] or "Unnamed person", person=person, faces=faces, others=others,
                      mark_below=library.engine.settings.quality_mark_below)

    @router.post("/people/{person_id}/rename")
    async def rename(person_id: int, name: str = Form(...)) -> RedirectResponse:
        try:
            await run(library.rename, person_id, name)
        except FaceprintError as exc:
            return _see(f"/people/{person_id}", error=str(exc))
        return _see(f"/people/{person_id}", flash=f"Named {' '.join(name.split())}")

    @router.post("/people/{person_id}/merge")
    async def merge(person_id: int, other: int = Form(...)) -> RedirectResponse:
        try:
            await run(library.store.merge_people, person_id, other)
        except FaceprintError as exc:
            return _see(f"/people/{person_id}", error=str(exc))
        return _see(f"/people/{person_id}", flash="Merged")

    @router.post("/people/{person_id}/split")
    async def split(person_id: int, face: list[int] = Form(default=[])) -> RedirectResponse:
        try:
            new = await run(library.store.split_faces, person_id, face)
        except FaceprintError as exc:
            return _see(f"/people/{person_id}", error=str(exc))
        return _see(f"/people/{new}", flash=f"Split {len(face)} face(s) into a new person")

    @router.post("/faces/{face_id}/reject")
    async def reject(face_id: int, person: int) -> RedirectResponse:
        try:
            await run(library.store.reject_face, face_id, person)
        except FaceprintError as exc:
            return _see(f"/people/{person}", error=str(exc))
        return _see(f"/people/{person}", flash="Removed the face from this person")

    @router.post("/faces/{face_id}/assign")
    async def assign(face_id: int, person: int = Form(...)) -> RedirectResponse:
        try:
            await run(library.store.assign_face, face_id, person)
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

    @router.post("/suggestions/answer")
    async def answer(person: int = Form(...), candidate: str = Form(...), reply: str = Form(...), kind: str = Form("join")) -> RedirectResponse:
        try:
            await run(library.answer, person, candidate, reply)
        except FaceprintError as exc:
            return _see("/suggestions", error=str(exc))
        said = {"yes": "Kept" if kind == "member" else "Added", "no": "Taken out" if kind == "member" else "Noted: not them", "skip": "Skipped"}
        return _see("/suggestions", flash=said.get(reply, "Saved"))

    @router.get("/unknown", response_class=HTMLResponse)
    async def unknown_page(request: Request) -> HTMLResponse:
        faces = await run(library.unknown_faces)
        people = await run(library.store.people)
        return render(request, "unknown.html", "unknown", title="Unknown faces", faces=faces[:UNKNOWN_PAGE], total=len(faces), people=people)

    @router.get("/search", response_class=HTMLResponse)
    async def search_page(request: Request) -> HTMLResponse:
        return render(request, "search.html", "search", title="Search by photo", results=None)

    @router.post("/search", response_class=HTMLResponse)
    async def search(request: Request, photo: UploadFile = File(...)) -> HTMLResponse:
        data = await photo.read()
        try:
            results = await run(library.search, data)
        except FaceprintError as exc:
            return render(request, "search.html", "search", title="Search by photo", results=None, error=f"{photo.filename}: {exc}")
        return render(request, "search.html", "search", title="Search by photo", results=results)

    @router.get("/ui/faces/{face_id}.jpg")
    async def thumb(face_id: int) -> Response:
        try:
            data = await run(library.store.thumb, face_id)
        except FaceprintError:
            return Response(status_code=404)
        if not data:
            return Response(status_code=404)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @router.get("/ui/photos/{photo_id}")
    async def photo(photo_id: int) -> Response:
        rows = await run(library.store.read, "SELECT path FROM photos WHERE id=? AND status='ok'", (photo_id,))
        if not rows or not Path(rows[0]["path"]).is_file():
            return Response(status_code=404)
        return FileResponse(rows[0]["path"])

    app.include_router(router)
