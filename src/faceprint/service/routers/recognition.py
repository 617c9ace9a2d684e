"""Recognition: ``/v1/identify`` (who is this? 1:N, open set) and ``/v1/verify`` (same person?
1:1, photo against photo or against an enrolled subject)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile

from faceprint.engine import Engine
from faceprint.errors import InputError
from faceprint.gallery import Gallery
from faceprint.service.auth import KeyInfo
from faceprint.service.deps import Analysing, Uploads, get_analysing, get_engine, get_gallery, get_uploads, read_key
from faceprint.service.schemas import UPLOAD_ERRORS, ErrorOut, IdentifyOut, VerifyOut

router = APIRouter()


@router.post("/v1/identify", response_model=IdentifyOut, tags=["recognition"], responses=UPLOAD_ERRORS)
def identify(
    file: UploadFile = File(..., description="Photo of the person to look up."),
    k: int = Query(5, ge=1, le=100, description="How many candidates to list."),
    fpir: float = Query(1e-3, gt=0, lt=1, description="False-positive identification rate of the open-set decision."),
    face: str = Query("largest", description="largest, center, single, or an index."),
    key: KeyInfo = Depends(read_key),
    gallery: Gallery = Depends(get_gallery),
    uploads: Uploads = Depends(get_uploads),
    analysing: Analysing = Depends(get_analysing),
) -> dict[str, Any]:
    """Who is this?  Top-k subjects and the open-set decision (`name` is null when nobody matches)."""
    probe = uploads.read(file, "file")
    with analysing():
        return gallery.identify(probe, k=k, fpir=fpir, face=face).to_dict()


@router.post(
    "/v1/verify",
    response_model=VerifyOut,
    response_model_exclude_none=True,
    tags=["recognition"],
    responses={**UPLOAD_ERRORS, 404: {"model": ErrorOut}},
)
def verify(
    file_a: UploadFile | None = File(None, description="photo-vs-photo: first photo"),
    file_b: UploadFile | None = File(None, description="photo-vs-photo: second photo"),
    file: UploadFile | None = File(None, description="photo-vs-subject: the photo"),
    subject: str | None = Form(None, description="photo-vs-subject: the enrolled subject's name"),
    fmr: float | None = Query(None, gt=0, lt=1, description="False-match rate of the decision threshold (default: the engine's, 1e-3)."),
    face: str = Query("largest", description="largest, center, single, or an index."),
    require_liveness: bool | None = Query(
        None,
        description="Refuse photos whose face looks like a print or a screen (liveness_rejected); default: the server's require_liveness_verify setting.",
    ),
    key: KeyInfo = Depends(read_key),
    engine: Engine = Depends(get_engine),
    gallery: Gallery = Depends(get_gallery),
    uploads: Uploads = Depends(get_uploads),
    analysing: Analysing = Depends(get_analysing),
) -> dict[str, Any]:
    """1:1: `file_a` + `file_b` (two photos), or `file` + `subject` (a photo against an enrolled subject)."""
    if file_a is not None and file_b is not None and file is None and subject is None:
        a = uploads.read(file_a, "file_a")
        b = uploads.read(file_b, "file_b")
        with analysing():
            return engine.verify(a, b, fmr=fmr, face=face, require_liveness=require_liveness).to_dict()
    if file is not None and subject is not None and file_a is None and file_b is None:
        probe = uploads.read(file, "file")
        with analysing():
            decision = gallery.verify(probe, subject, fmr=fmr, face=face, require_liveness=require_liveness)
        return {**decision.to_dict(), "subject": subject}
    raise InputError("give either file_a and file_b (photo vs photo), or file and subject (photo vs enrolled subject)")
