"""The REST service: ``create_app`` (FastAPI app over a Gallery), ``serve`` (uvicorn),
API keys (:mod:`faceprint.service.auth`) and the ``serve`` / ``keys`` commands
(:mod:`faceprint.service.cli_commands`).

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
