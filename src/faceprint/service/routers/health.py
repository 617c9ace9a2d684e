"""The probes: ``/v1/health`` (the process answers) and ``/v1/ready`` (models, database and
index or vector backend usable); neither needs a key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from faceprint import __version__
from faceprint.engine import Engine
from faceprint.gallery import Gallery
from faceprint.gallery.store import Store
from faceprint.service.deps import get_engine, get_gallery, get_store
from faceprint.service.schemas import HealthOut, ReadyOut

router = APIRouter()


@router.get("/v1/health", response_model=HealthOut, tags=["service"])
def health() -> dict[str, Any]:
    """Liveness: the process answers (no key needed)."""
    return {"status": "ok", "version": __version__}


@router.get("/v1/ready", response_model=ReadyOut, tags=["service"], responses={503: {"model": ReadyOut, "description": "not ready"}})
def ready(
    engine: Engine = Depends(get_engine),
    gallery: Gallery = Depends(get_gallery),
    store: Store = Depends(get_store),
) -> Any:
    """Readiness: models loaded, database reachable, index loaded -- with PostgreSQL and Milvus,
    both backends answering (no key needed; 503 with ``Retry-After`` while one is away)."""
    checks: dict[str, str] = {}
    ok = True
    try:
        _ = engine.detector, engine.embedder, engine.calibration  # loading them is the check
        checks["models"] = f"ok ({engine.model_id})"
    except Exception as exc:
        ok, checks["models"] = False, str(exc) or type(exc).__name__
    try:
        store.read("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        ok, checks["database"] = False, str(exc) or type(exc).__name__
    if ok:
        try:
            index = gallery.index
            checks["index"] = index.health() if gallery.remote else f"ok ({len(index)} templates)"  # type: ignore[attr-defined]
        except Exception as exc:
            ok, checks["index"] = False, str(exc) or type(exc).__name__
    else:
        checks["index"] = "not checked"
    body = {"status": "ready" if ok else "not_ready", "checks": checks}
    return body if ok else JSONResponse(body, status_code=503, headers={"Retry-After": "2"})
