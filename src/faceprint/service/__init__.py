"""The REST service: ``create_app`` (FastAPI app over a Gallery; :mod:`~faceprint.service.app`
assembles :mod:`~faceprint.service.routers`, :mod:`~faceprint.service.schemas`,
:mod:`~faceprint.service.deps`, :mod:`~faceprint.service.middleware` and
:mod:`~faceprint.service.security`), the photo library's web UI (:mod:`~faceprint.service.web`),
``serve`` (uvicorn) and API keys (:mod:`faceprint.service.auth`).  The ``serve`` / ``keys``
commands are :mod:`faceprint.cli.service`.

Submodules are imported on use so that ``faceprint.service.auth`` and the CLI commands
do not pull in FastAPI or the gallery until they are needed."""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from faceprint.service.app import create_app

        return create_app
    if name == "serve":
        from faceprint.service.server import serve

        return serve
    raise AttributeError(name)
