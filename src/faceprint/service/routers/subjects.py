"""``/v1/subjects``: list and create subjects; one subject (``/v1/subjects/{name}``, the name
may hold slashes): read, rename / new metadata, erase, add faces, consistency of a new face."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import Response

from faceprint.errors import InputError
from faceprint.gallery import Gallery
from faceprint.gallery.store import Store
from faceprint.service.auth import KeyInfo
from faceprint.service.deps import (
    Analysing,
    Uploads,
    actor,
    enroll_key,
    get_analysing,
    get_gallery,
    get_store,
    get_uploads,
    read_key,
)
from faceprint.service.schemas import (
    ERRORS,
    UPLOAD_ERRORS,
    ConsistencyOut,
    DeletedOut,
    EnrollOut,
    ErrorOut,
    SubjectCreate,
    SubjectDetailOut,
    SubjectListOut,
    SubjectOut,
    SubjectPatch,
)

router = APIRouter()


@router.get("/v1/subjects", response_model=SubjectListOut, tags=["subjects"], responses=ERRORS)
def list_subjects(
    limit: int = Query(100, ge=1, le=1000, description="Page size."),
    offset: int = Query(0, ge=0, le=2**62, description="Subjects to skip (ordered by name)."),
    key: KeyInfo = Depends(read_key),
    gallery: Gallery = Depends(get_gallery),
    store: Store = Depends(get_store),
) -> dict[str, Any]:
    """Enrolled subjects, ordered by name, one page at a time."""
    rows = gallery.subjects(limit=limit, offset=offset)
    return {"subjects": [s.to_dict() for s in rows], "total": store.count_subjects(), "limit": limit, "offset": offset}


@router.post("/v1/subjects", response_model=SubjectOut, status_code=201, tags=["subjects"], responses={**ERRORS, 409: {"model": ErrorOut}})
def create_subject(
    body: SubjectCreate,
    response: Response,
    key: KeyInfo = Depends(enroll_key),
    store: Store = Depends(get_store),
) -> dict[str, Any]:
    """Create a subject with no faces yet (add them with POST /v1/subjects/{name}/faces)."""
    subject = store.create_subject(body.name, body.metadata, actor=actor(key))
    response.headers["Location"] = f"/v1/subjects/{quote(subject.name, safe='')}"
    return subject.to_dict()


@router.get("/v1/subjects/{name:path}", response_model=SubjectDetailOut, tags=["subjects"], responses={**ERRORS, 404: {"model": ErrorOut}})
def get_subject(
    name: str,
    key: KeyInfo = Depends(read_key),
    gallery: Gallery = Depends(get_gallery),
    store: Store = Depends(get_store),
) -> dict[str, Any]:
    """One subject and where each of its templates came from."""
    subject = gallery.subject(name)
    templates = store.templates(subject_id=subject.id)
    return {**subject.to_dict(), "template_list": [t.to_dict() for t in templates]}


@router.patch(
    "/v1/subjects/{name:path}", response_model=SubjectOut, tags=["subjects"], responses={**ERRORS, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}}
)
def patch_subject(
    name: str,
    body: SubjectPatch,
    key: KeyInfo = Depends(enroll_key),
    store: Store = Depends(get_store),
) -> dict[str, Any]:
    """Rename and/or replace the metadata (both in one transaction)."""
    if body.name is None and body.metadata is None:
        raise InputError("nothing to change: give name and/or metadata")
    return store.update_subject(name, new_name=body.name, metadata=body.metadata, actor=actor(key)).to_dict()


@router.delete(
    "/v1/subjects/{name:path}", response_model=DeletedOut, response_model_exclude_none=True, tags=["subjects"], responses={**ERRORS, 404: {"model": ErrorOut}}
)
def delete_subject(name: str, key: KeyInfo = Depends(enroll_key), gallery: Gallery = Depends(get_gallery)) -> dict[str, Any]:
    """Erase a subject from every file: database rows zeroed, kept photos and audit details
    gone, write-ahead log truncated, index saved without its vectors; says what was erased."""
    erased = gallery.erase(name, actor=actor(key))
    return {"deleted": name, **erased}


@router.post(
    "/v1/subjects/{name:path}/faces", response_model=EnrollOut, status_code=201, tags=["subjects"], responses={**UPLOAD_ERRORS, 404: {"model": ErrorOut}}
)
def add_faces(
    name: str,
    files: list[UploadFile] = File(..., description="One or more photos of the subject (one template each)."),
    face: str = Form("single", description="Which face when a photo has several: single (refuse), largest, center, or an index."),
    create: bool = Form(True, description="Create the subject if it does not exist."),
    check_quality: bool = Form(True, description="Refuse faces that fail the quality gate (quality_rejected, with reasons)."),
    check_liveness: bool | None = Form(
        None,
        description="Refuse faces that look like a print or a screen (liveness_rejected, with the evidence); "
        "default: the server's require_liveness_enrol setting.",
    ),
    key: KeyInfo = Depends(enroll_key),
    gallery: Gallery = Depends(get_gallery),
    uploads: Uploads = Depends(get_uploads),
    analysing: Analysing = Depends(get_analysing),
) -> dict[str, Any]:
    """Enrol photos.  Photos that fail (no face, several faces, poor quality) are listed in
    `rejected` with the reason; if all fail, the first error is returned."""
    sources = uploads.read_all(files, "files")
    with analysing():
        result = gallery.enroll(name, sources, face=face, create=create, check_quality=check_quality, check_liveness=check_liveness, actor=actor(key))
    return result.to_dict()


@router.post("/v1/subjects/{name:path}/consistency", response_model=ConsistencyOut, tags=["subjects"], responses={**UPLOAD_ERRORS, 404: {"model": ErrorOut}})
def consistency(
    name: str,
    file: UploadFile = File(..., description="New photo claimed to be this subject."),
    face: str = Query("largest", description="largest, center, single, or an index."),
    z: float = Query(-3.0, description="Flag the face as an outlier below this z-score."),
    key: KeyInfo = Depends(read_key),
    gallery: Gallery = Depends(get_gallery),
    uploads: Uploads = Depends(get_uploads),
    analysing: Analysing = Depends(get_analysing),
) -> dict[str, Any]:
    """Identity-aware check: how consistent is a new face with the subject's enrolled
    references (an outlier score over their templates)?"""
    with analysing():
        res = gallery.consistency(uploads.read(file, "file"), name, face=face, z_threshold=z)
    return {"subject": name, **res.to_dict()}
