"""Reading faceprint's own JSON models: the unified quality model (``quality/model-v1.json``),
the PAD model (``liveness/pad-v2.json``) and the synthetic-face model
(``forensics/synthetic-v2.json``), and the ones ``train-pad`` / ``train-synthetic`` write.

One reader for all three, so they fail alike: a file that is missing, not JSON or not a
JSON object is a :class:`~faceprint.errors.ModelError` naming the file and the kind of model
it should have been; inside a model, a missing key, a wrong type or a bad number is a
``ModelError`` too (:func:`model_fields`), never a bare ``KeyError``.  Arrays come back as
float64 NumPy arrays (:func:`floats`).  The model classes themselves (``QualityModel``,
``PadModel``, ``SyntheticModel``) check what is particular to them: shapes, modes, kinds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import ModelError

__all__ = ["floats", "model_fields", "read_model_json"]


def read_model_json(path: str | Path, what: str) -> dict[str, Any]:
    """A model file's JSON object; a missing, unreadable or non-object file is a ModelError
    naming ``what`` model it should have been (e.g. ``"PAD"``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{what} model file not found", source=str(path)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{what} model is not JSON: {exc}", source=str(path)) from None
    if not isinstance(data, dict):
        raise ModelError(f"not a faceprint {what} model: top level is not an object", source=str(path))
    return data


@contextmanager
def model_fields(message: str, source: str | None = None) -> Iterator[None]:
    """Within the block, a ``KeyError`` / ``TypeError`` / ``ValueError`` (a missing key, a
    wrong type, a bad number or a failed check) becomes ``ModelError("<message>: <what>")``."""
    try:
        yield
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{message}: {exc}", source=source or None) from exc


def floats(value: Any) -> np.ndarray:
    """A model field as a float64 array (any shape)."""
    return np.asarray(value, np.float64)
