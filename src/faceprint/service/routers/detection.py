"""``/v1/detect``: every face in a photo, with its quality."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, File, UploadFile

from faceprint.engine import Engine
from faceprint.service.auth import KeyInfo
from faceprint.service.deps import Analysing, Uploads, get_analysing, get_engine, get_uploads, read_key
from faceprint.service.schemas import UPLOAD_ERRORS, DetectOut

router = APIRouter()


@router.post("/v1/detect", response_model=DetectOut, tags=["recognition"], responses=UPLOAD_ERRORS)
def detect(
    file: UploadFile = File(..., description="Any photo."),
    key: KeyInfo = Depends(read_key),
    engine: Engine = Depends(get_engine),
    uploads: Uploads = Depends(get_uploads),
    analysing: Analysing = Depends(get_analysing),
) -> dict[str, Any]:
    """Every face: box, 5 landmarks, score (highest score first) and quality (without
    recognizability: no template is made here)."""
    with analysing():
        image = engine.load(uploads.read(file, "file"))
        faces = engine.detect(image)
        out = [{**f.to_dict(), "quality": engine.assess(image, f, engine.align(image, f)).to_dict()} for f in faces]
        return {"source": image.source, "width": image.width, "height": image.height, "faces": out}
