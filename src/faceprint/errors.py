"""One exception hierarchy for every stage.

Every message names the input it is about and what is wrong with it, so a
surface (CLI, REST, web UI) can show it to a person as it is.  Surfaces map
the classes to exit codes / HTTP status codes through ``exit_code`` and
``http_status``.
"""

from __future__ import annotations

from typing import Any


class FaceprintError(Exception):
    """Base class of every error faceprint raises on purpose."""

    exit_code = 1
    http_status = 500
    code = "faceprint_error"

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)

    def details(self) -> dict[str, Any]:
        """What a surface shows beside the code and message (a REST error body, an enrolment's
        rejected entry): nothing here; ``reasons`` for a refused face, and so on."""
        return {}


class InputError(FaceprintError):
    """The caller gave something unusable (bad file, bad argument)."""

    exit_code = 2
    http_status = 422
    code = "invalid_input"


class ImageDecodeError(InputError):
    """The bytes are not an image faceprint can decode (empty, truncated, not an image)."""

    code = "image_decode_error"


class ImageTooLargeError(InputError):
    """The file or its declared pixel count is over the configured limit (decompression bombs)."""

    http_status = 413
    code = "image_too_large"


class NoFaceError(InputError):
    """No face was found where one was required."""

    code = "no_face"


class MultipleFacesError(InputError):
    """Several faces were found where exactly one was required."""

    code = "multiple_faces"


class FaceRejected(InputError):
    """A face was found but a check refused it; ``reasons`` says why, one per finding."""

    code = "face_rejected"

    def __init__(self, message: str, *, source: str | None = None, reasons: list[str] | None = None) -> None:
        self.reasons = list(reasons or [message])
        super().__init__(message, source=source)

    def details(self) -> dict[str, Any]:
        return {"reasons": list(self.reasons)}


class QualityRejected(FaceRejected):
    """A face failed the quality gate; ``reasons`` says why, one per check."""

    code = "quality_rejected"


class LivenessRejected(FaceRejected):
    """Liveness was required and the face looks like a presentation attack (a print, a
    screen); ``reasons`` is the detectors' evidence."""

    code = "liveness_rejected"


class LivenessUncertain(LivenessRejected):
    """Liveness was required, the capture lies outside what the PAD model was trained on, and
    the deployment refuses what it cannot judge (``liveness_low_confidence=refuse``);
    ``reasons`` says how the capture differs, ``retake_advice`` what the person capturing can
    change (empty when only another camera or a model trained on this one would help)."""

    code = "liveness_uncertain"

    def __init__(self, message: str, *, source: str | None = None, reasons: list[str] | None = None, retake_advice: list[str] | None = None) -> None:
        self.retake_advice = list(retake_advice or [])
        super().__init__(message, source=source, reasons=reasons)

    def details(self) -> dict[str, Any]:
        return {**super().details(), "retake_advice": list(self.retake_advice)}


class ModelError(FaceprintError):
    """A model file is missing, corrupt (checksum mismatch) or cannot be loaded."""

    exit_code = 3
    code = "model_error"


class ModelMismatchError(FaceprintError):
    """Two templates of different models were compared."""

    exit_code = 2
    http_status = 409
    code = "model_mismatch"


class CalibrationError(FaceprintError):
    """A calibration table is missing, malformed, or cannot answer the request."""

    exit_code = 2
    http_status = 422
    code = "calibration_error"
