"""The REST service's Pydantic models -- the OpenAPI schema served at ``/openapi.json``
(a component is named by its class) -- and the ``responses=`` dicts the routes share.

Response models allow extra fields (``extra="allow"``); the request bodies forbid them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(_Model):
    code: str = Field(description="Stable machine-readable error code, e.g. no_face, quality_rejected, subject_not_found, unauthorized.")
    message: str = Field(description="Human-readable message naming the input it is about.")
    request_id: str | None = None
    reasons: list[str] | None = Field(
        default=None, description="quality_rejected / liveness_rejected: every check the face failed, or the evidence of an attack, in words."
    )


class ErrorOut(_Model):
    error: ErrorBody


class HealthOut(_Model):
    status: str = "ok"
    version: str


class ReadyOut(_Model):
    status: str = Field(description="ready or not_ready")
    checks: dict[str, str]


class SubjectOut(_Model):
    id: int
    name: str
    metadata: dict[str, Any]
    created: str
    updated: str
    templates: int
    models: list[str]


class TemplateInfo(_Model):
    id: int
    model_id: str
    face_score: float | None = None
    quality: float | None = None
    image_sha256: str | None = None
    source: str | None = None
    box: list[float] | None = None
    created: str


class SubjectDetailOut(SubjectOut):
    template_list: list[TemplateInfo]


class SubjectListOut(_Model):
    subjects: list[SubjectOut]
    total: int
    limit: int
    offset: int


class SubjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)


class SubjectPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200, description="New name (rename).")
    metadata: dict[str, Any] | None = Field(default=None, description="Replaces the whole metadata object.")


class DeletedOut(_Model):
    deleted: str
    templates: int = Field(description="Templates erased (rows zeroed in the database, vectors gone from the saved index).")
    kept_photos: int = Field(0, description="Photos kept for re-embedding that only this subject used, erased.")
    audit_entries_redacted: int = Field(0, description="Audit entries about the subject whose names, file names and hashes were removed.")
    wal_truncated: bool = Field(True, description="The write-ahead log was checkpointed and truncated (false: another reader held it; truncated later).")
    index_saved: bool | None = Field(
        None, description="The local index file was rewritten without the subject's vectors (absent with a shared vector backend)."
    )
    vectors_deleted: bool | None = Field(None, description="With a shared vector backend (Milvus): the subject's vectors were deleted in the same transaction.")
    vectors_compacted: bool | None = Field(
        None, description="With a shared vector backend: a compaction of the collection was started (the vectors' physical removal)."
    )


class Box(_Model):
    x: float
    y: float
    w: float
    h: float


class ComponentOut(_Model):
    raw: float | None = Field(description="The measured value (null when it cannot be measured here).")
    score: int | None = Field(description="0-100, higher is better.")
    unit: str


class QualityOut(_Model):
    unified: int = Field(description="Unified face quality, 0-100: predicted usefulness for recognition.")
    model: str = Field(description="Version of the quality model.")
    components: dict[str, ComponentOut]


class FaceOut(_Model):
    box: Box
    landmarks: list[list[float]]
    score: float
    detector: str
    quality: QualityOut | None = None


class DetectOut(_Model):
    source: str
    width: int
    height: int
    faces: list[FaceOut]


class RejectedOut(_Model):
    source: str
    code: str
    message: str
    reasons: list[str] | None = Field(
        default=None, description="quality_rejected / liveness_rejected: every check the face failed, or the evidence of an attack, in words."
    )


class EnrollOut(_Model):
    subject: SubjectOut
    added: int
    template_ids: list[int]
    rejected: list[RejectedOut]


class CandidateOut(_Model):
    subject_id: int
    name: str
    score: float
    template_id: int


class IdentifyOut(_Model):
    name: str | None = Field(description="The matched subject, or null when nobody reaches the open-set threshold.")
    match: bool
    score: float | None
    threshold: float
    fpir: float
    gallery_templates: int
    model_id: str
    candidates: list[CandidateOut]
    note: str | None = None
    face: FaceOut | None = None
    quality: QualityOut | None = None
    low_quality: bool | None = Field(default=None, description="The probe's unified quality is below the quality_mark_below setting.")


class LivenessOut(_Model):
    live: bool = Field(description="The face counts as a live person (score >= threshold).")
    score: float = Field(description="0-1, higher = more likely live.")
    threshold: float
    mode: str = Field(description="two-class (trained on live faces and attacks) or one-class (live faces only).")
    model: str = Field(description="Version of the presentation-attack model.")
    detectors: dict[str, float] = Field(description="Each detector's own liveness score (texture, context; or one_class).")
    evidence: list[str] = Field(description="What pointed at an attack, in words (empty when nothing did).")
    operating_point: dict[str, Any] | None = Field(
        default=None,
        description="APCER and BPCER the model's training measured at this threshold, and on what data (for pad-v2: capture set-ups each scoring model never saw).",
    )
    confidence: str = Field(
        default="high",
        description="low: the picture or face lies outside the captures the model was trained on, and the error rates above do not cover the verdict.",
    )
    confidence_reasons: list[str] = Field(default_factory=list, description="Why the confidence is low, in words (empty when it is high).")
    retake_advice: list[str] = Field(
        default_factory=list,
        description="What the person capturing can change so that a new capture lies inside what the model can judge (move closer, less "
        "compression, hold still); empty when nothing a retake changes would help (another camera: train-pad on its captures).",
    )


class SyntheticOut(_Model):
    synthetic: bool = Field(description="The face counts as generated (score >= threshold): strong evidence. Not synthetic is no evidence of a real photo.")
    score: float = Field(description="0-1, higher = more like the generated faces the model was fitted on (GAN / diffusion).")
    threshold: float
    model: str
    evidence: list[str]
    verdict: str = Field(
        default="no evidence",
        description="synthetic (strong evidence), cannot tell (e.g. the face sits where FFHQ-aligned generators put faces, and real photos cropped "
        "that way sit there too) or no evidence (not flagged: no evidence of a real photo either).",
    )
    cannot_tell: list[str] = Field(default_factory=list, description="Why the check cannot judge this face, in words (empty when it can).")
    note: str | None = Field(default=None, description="What the score means and what it cannot tell (from the model).")


class ConsistencyOut(_Model):
    subject: str
    best: float = Field(description="Highest cosine similarity of the new face to a reference.")
    mean: float
    reference_mean: float = Field(description="Mean over references of each one's best similarity to the others.")
    reference_std: float
    z: float = Field(description="(best - reference_mean) / reference_std: how far below the references' own agreement.")
    outlier: bool = Field(description="z below the threshold: another person, or a face made to resemble the subject.")
    references: int


class VideoLivenessOut(_Model):
    input: str
    kind: str = Field(description="video")
    live: bool = Field(description="Motion like a 3-D head AND frames that look live (AND the challenge met, when one was given).")
    score: float = Field(description="0-1, higher = more likely live: the smaller of the motion and frame scores.")
    threshold: float
    reason: str
    motion: dict[str, Any] = Field(description="The motion check: planar residual score (% of face width), threshold, informative frame pairs.")
    pad: dict[str, Any] = Field(description="The single-image detectors on sampled frames: median score, frames scored.")
    confidence: str = Field(default="high", description="low: most sampled frames lie outside the PAD model's training captures.")
    confidence_reasons: list[str] = Field(default_factory=list, description="Why the confidence is low, in words.")
    challenge: dict[str, Any] | None = Field(default=None, description="With a challenge: whether, and when, each requested head turn was met.")


class FaceCheckOut(_Model):
    source: str
    face: FaceOut
    liveness: LivenessOut | None = None
    synthetic: SyntheticOut | None = None


class TemplateOut(_Model):
    model_id: str
    source: str
    dim: int
    face: FaceOut | None = None
    quality: QualityOut | None = None
    liveness: LivenessOut | None = None


class VerifyOut(_Model):
    match: bool
    score: float
    threshold: float
    fmr: float
    score_fmr: float
    model_id: str
    calibration: str
    a: TemplateOut | None = Field(default=None, description="photo-vs-photo: the face used in file_a")
    b: TemplateOut | None = Field(default=None, description="photo-vs-photo: the face used in file_b")
    subject: str | None = Field(default=None, description="photo-vs-subject: the subject compared against")


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing, unknown or revoked API key"},
    403: {"model": ErrorOut, "description": "the key lacks the needed scope"},
    422: {"model": ErrorOut, "description": "invalid request or unusable input"},
    429: {"model": ErrorOut, "description": "too many failed API key attempts from this client or for this key prefix; retry after `Retry-After` seconds"},
}
UPLOAD_ERRORS = {
    **ERRORS,
    413: {"model": ErrorOut, "description": "an upload is over the size limit"},
    503: {"model": ErrorOut, "description": "every analysis slot stayed busy; retry in a few seconds"},
}


__all__ = [
    "ERRORS",
    "UPLOAD_ERRORS",
    "Box",
    "CandidateOut",
    "ComponentOut",
    "ConsistencyOut",
    "DeletedOut",
    "DetectOut",
    "EnrollOut",
    "ErrorBody",
    "ErrorOut",
    "FaceCheckOut",
    "FaceOut",
    "HealthOut",
    "IdentifyOut",
    "LivenessOut",
    "QualityOut",
    "ReadyOut",
    "RejectedOut",
    "SubjectCreate",
    "SubjectDetailOut",
    "SubjectListOut",
    "SubjectOut",
    "SubjectPatch",
    "SyntheticOut",
    "TemplateInfo",
    "TemplateOut",
    "VerifyOut",
    "VideoLivenessOut",
]
