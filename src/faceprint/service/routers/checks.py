"""Checks of one face: ``/v1/liveness`` (a live person, or a print / screen?),
``/v1/liveness/video`` (a clip: moves like a 3-D head, with an optional head-turn challenge)
and ``/v1/synthetic`` (generated or photographed?)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, File, Query, UploadFile

from faceprint.engine import Engine
from faceprint.errors import InputError
from faceprint.service.auth import KeyInfo
from faceprint.service.deps import Analysing, Uploads, get_analysing, get_engine, get_uploads, read_key
from faceprint.service.schemas import UPLOAD_ERRORS, FaceCheckOut, VideoLivenessOut

router = APIRouter()


@router.post("/v1/liveness", response_model=FaceCheckOut, response_model_exclude_none=True, tags=["recognition"], responses=UPLOAD_ERRORS)
def liveness(
    file: UploadFile = File(..., description="Photo of the face to check."),
    face: str = Query("largest", description="largest, center, single, or an index."),
    key: KeyInfo = Depends(read_key),
    engine: Engine = Depends(get_engine),
    uploads: Uploads = Depends(get_uploads),
    analysing: Analysing = Depends(get_analysing),
) -> dict[str, Any]:
    """Presentation-attack check of one face: a live person, or a print / screen held to the
    camera?  Score 0-1 (higher = more likely live), each detector's score, the evidence."""
    with analysing():
        image, det = engine.pick(uploads.read(file, "file"), face=face)
        return {"source": image.source, "face": det.to_dict(), "liveness": engine.liveness_of(image, det).to_dict()}


@router.post("/v1/liveness/video", response_model=VideoLivenessOut, response_model_exclude_none=True, tags=["recognition"], responses=UPLOAD_ERRORS)
def liveness_video(
    file: UploadFile = File(..., description="A short clip of the face (mp4, mov, webm, avi, mkv); the first 180 frames are read."),
    challenge: str | None = Query(None, description="Head turns asked of the person, in order, e.g. 'left,right' (the person's own left)."),
    turn_angle: float = Query(15.0, gt=0, le=60, description="Degrees each turn must reach."),
    within: float = Query(4.0, gt=0, le=30, description="Seconds allowed for each turn."),
    key: KeyInfo = Depends(read_key),
    engine: Engine = Depends(get_engine),
    uploads: Uploads = Depends(get_uploads),
    analysing: Analysing = Depends(get_analysing),
) -> dict[str, Any]:
    """Liveness of a clip: does the face move like a 3-D head or like a flat picture, do the
    frames look live, and (with `challenge`) did the head turn as asked, in time?"""
    from faceprint.liveness.video import is_video, video_liveness

    stream = uploads.read(file, "file")
    if not is_video(stream.name, stream.getvalue()[:16]):  # type: ignore[attr-defined]
        raise InputError("not a video (mp4, mov, webm, avi, mkv); for a photo use /v1/liveness", source=stream.name)  # type: ignore[attr-defined]
    with analysing():
        return video_liveness(engine, stream, challenge=challenge, turn_angle=turn_angle, within=within)


@router.post("/v1/synthetic", response_model=FaceCheckOut, response_model_exclude_none=True, tags=["recognition"], responses=UPLOAD_ERRORS)
def synthetic(
    file: UploadFile = File(..., description="Photo of the face to check."),
    face: str = Query("largest", description="largest, center, single, or an index."),
    key: KeyInfo = Depends(read_key),
    engine: Engine = Depends(get_engine),
    uploads: Uploads = Depends(get_uploads),
    analysing: Analysing = Depends(get_analysing),
) -> dict[str, Any]:
    """Synthetic-face check of one face: generated (GAN / diffusion) or photographed?
    Score 0-1 (higher = more likely generated)."""
    with analysing():
        image, det = engine.pick(uploads.read(file, "file"), face=face)
        return {"source": image.source, "face": det.to_dict(), "synthetic": engine.synthetic_of(image, det).to_dict()}
