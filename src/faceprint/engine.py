"""The engine: one object that holds the loaded models and settings.

Every surface (Python API, CLI, REST, web UI) calls this and adds only I/O.

    >>> from faceprint import Engine
    >>> engine = Engine()
    >>> decision = engine.verify("a.jpg", "b.jpg", fmr=1e-4)
    >>> decision.match, decision.score, decision.threshold
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.detection import Detector, DetectorSettings, YuNetDetector
from faceprint.embedding import Embedder, SFaceEmbedder
from faceprint.errors import (
    CalibrationError,
    FaceprintError,
    InputError,
    LivenessRejected,
    LivenessUncertain,
    ModelError,
    ModelMismatchError,
    MultipleFacesError,
    NoFaceError,
)
from faceprint.forensics.synthetic import SyntheticCheck, SyntheticModel, load_synthetic_model
from faceprint.imaging import ImageLimits, load_image
from faceprint.liveness.pad import Liveness, PadModel, load_pad_model
from faceprint.metrics.verification import CalibrationTable
from faceprint.models.registry import get_spec
from faceprint.quality.model import Quality, QualityModel
from faceprint.quality.model import load_model as load_quality_model
from faceprint.settings import Settings
from faceprint.types import Decision, Detection, FaceCrop, Image, Template

FACE_POLICIES = ("largest", "center", "single")


_UNTRUSTED: ContextVar[ImageLimits | None] = ContextVar("faceprint_untrusted_limits", default=None)


@contextmanager
def untrusted_input(limits: ImageLimits) -> Iterator[None]:
    """Within this block (this thread / task), :meth:`Engine.load` decodes under ``limits``
    too, whichever is tighter: the REST service wraps each upload's analysis in it, so a
    request stays under the upload pixel cap (``Settings.upload_max_pixels``) wherever in
    the pipeline the photo is decoded."""
    token = _UNTRUSTED.set(limits)
    try:
        yield
    finally:
        _UNTRUSTED.reset(token)


def upload_limits(settings: Settings) -> ImageLimits:
    """The limits of untrusted uploads from the settings (``upload_max_pixels``, 0 = ``max_pixels``)."""
    return ImageLimits(max_bytes=settings.max_bytes, max_pixels=settings.upload_max_pixels or settings.max_pixels)


def shipped_calibration_path(model_id: str) -> Path:
    """Where the calibration table shipped for ``model_id`` lives inside the package."""
    name = model_id.replace("+", "_") + ".json"
    return Path(str(resources.files("faceprint") / "calibration" / name))


def select_face(detections: Sequence[Detection], image: Image, face: str | int) -> Detection:
    """Pick one face: the largest, the one nearest the centre, the only one, or by index."""
    if not detections:
        raise NoFaceError("no face found", source=image.source)
    if isinstance(face, int) or (isinstance(face, str) and face.isdigit()):
        i = int(face)
        if not 0 <= i < len(detections):
            raise InputError(f"face index {i} is out of range: {len(detections)} face(s) found", source=image.source)
        return detections[i]
    if face == "largest":
        return max(detections, key=lambda d: d.area)
    if face == "center":
        cx, cy = image.width / 2.0, image.height / 2.0
        return min(detections, key=lambda d: (d.center[0] - cx) ** 2 + (d.center[1] - cy) ** 2)
    if face == "single":
        if len(detections) > 1:
            raise MultipleFacesError(f"{len(detections)} faces found where one was expected; choose one by index", source=image.source)
        return detections[0]
    raise InputError(f"unknown face choice {face!r} (use one of {', '.join(FACE_POLICIES)} or an index)")


@dataclass(frozen=True)
class Verification:
    """A verify answer: the decision plus which face of each input was used."""

    decision: Decision
    a: Template
    b: Template

    def to_dict(self) -> dict[str, Any]:
        return {**self.decision.to_dict(), "a": self.a.to_dict(with_vector=False), "b": self.b.to_dict(with_vector=False)}


class Engine:
    """Detect, align, embed and verify faces with one set of loaded models."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        detector: Detector | None = None,
        embedder: Embedder | None = None,
        calibration: CalibrationTable | None = None,
        share_models: bool = False,
    ) -> None:
        """``share_models=True``: take the detector and embedder from a per-process cache keyed
        on the whole (frozen) settings, so many short-lived engines on the same settings load
        each network once (the CLI does this: one process may run many commands, as the tests
        do).  Both are thread-safe: each serialises its network behind its own lock."""
        self.settings = settings or Settings.load()
        self._build_detector = _shared_detector if share_models else build_detector
        self._build_embedder = _shared_embedder if share_models else build_embedder
        self._detector = detector
        self._embedder = embedder
        self._calibration = calibration
        self._quality: QualityModel | None = None
        self._pad: PadModel | None = None
        self._synthetic: SyntheticModel | None = None
        self._lock = threading.Lock()
        self.limits = ImageLimits(max_bytes=self.settings.max_bytes, max_pixels=self.settings.max_pixels)

    # -- models (loaded lazily, once) ------------------------------------
    @property
    def detector(self) -> Detector:
        with self._lock:
            if self._detector is None:
                self._detector = self._build_detector(self.settings)
            return self._detector

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self._build_embedder(self.settings)
            return self._embedder

    @property
    def model_id(self) -> str:
        """Model id of the templates this engine makes."""
        return self.embedder.model_id

    @property
    def calibration(self) -> CalibrationTable:
        with self._lock:
            if self._calibration is None:
                self._calibration = load_calibration(self.settings.calibration, self._embedder_model_id())
            return self._calibration

    @property
    def quality_model(self) -> QualityModel:
        with self._lock:
            if self._quality is None:
                self._quality = load_quality_model(self.settings.quality_model)
            return self._quality

    @property
    def pad_model(self) -> PadModel:
        with self._lock:
            if self._pad is None:
                self._pad = load_pad_model(self.settings.pad_model)
            return self._pad

    @property
    def synthetic_model(self) -> SyntheticModel:
        with self._lock:
            if self._synthetic is None:
                self._synthetic = load_synthetic_model(self.settings.synthetic_model)
            return self._synthetic

    @property
    def pad_threshold(self) -> float:
        """The liveness threshold in use: the ``pad_threshold`` setting, else the PAD model's own."""
        return self.pad_model.threshold if self.settings.pad_threshold is None else self.settings.pad_threshold

    def liveness_of(self, image: Image, detection: Detection) -> Liveness:
        """Presentation-attack check of one detected face (see :mod:`faceprint.liveness.pad`)."""
        return self.pad_model.assess(image, detection, threshold=self.pad_threshold)

    def synthetic_of(self, image: Image, detection: Detection) -> SyntheticCheck:
        """Synthetic-face check of one detected face (see :mod:`faceprint.forensics.synthetic`)."""
        return self.synthetic_model.assess(image, detection, threshold=self.settings.synthetic_threshold)

    def liveness(self, source: Any, *, face: str | int = "largest") -> Liveness:
        """Is the face in ``source`` a live person, or a print or screen held to the camera?"""
        return self.liveness_of(*self.pick(source, face=face))

    def synthetic(self, source: Any, *, face: str | int = "largest") -> SyntheticCheck:
        """Is the face in ``source`` generated (GAN / diffusion) rather than photographed?"""
        return self.synthetic_of(*self.pick(source, face=face))

    def assess(self, image: Image, detection: Detection, crop: FaceCrop, vector: np.ndarray | None = None) -> Quality:
        """The quality of one detected and aligned face (with its template, when there is one:
        recognizability needs it)."""
        return self.quality_model.assess(image.size, detection, crop, vector=vector, model_id=self.model_id if vector is not None else None)

    def _embedder_model_id(self) -> str:
        if self._embedder is not None:
            return self._embedder.model_id
        get_spec(self.settings.embedder)
        return self.settings.embedder + ("+flip" if self.settings.flip else "")

    # -- pipeline ----------------------------------------------------------
    def load(self, source: Any) -> Image:
        """Decode any supported input (path, bytes, file object, array, Image) to an RGB Image
        (inside :func:`untrusted_input`, under the tighter upload limits)."""
        if isinstance(source, Image):
            return source
        tighter = _UNTRUSTED.get()
        limits = self.limits
        if tighter is not None:
            limits = ImageLimits(max_bytes=min(limits.max_bytes, tighter.max_bytes), max_pixels=min(limits.max_pixels, tighter.max_pixels))
        return load_image(source, limits=limits)

    def detect(self, source: Any) -> list[Detection]:
        """Every face in the image, highest score first."""
        return self.detector.detect(self.load(source))

    def align(self, source: Any, detection: Detection) -> FaceCrop:
        return self.embedder.crop(self.load(source), detection)

    def embed_crops(self, crops: Sequence[FaceCrop]) -> np.ndarray:
        """(N, dim) unit vectors for already aligned faces, in one batch."""
        return self.embedder.embed(crops)

    def pick(self, source: Any, *, face: str | int = "largest") -> tuple[Image, Detection]:
        """Load the image, find its faces and pick one (see ``select_face``)."""
        image = self.load(source)
        return image, select_face(self.detector.detect(image), image, face)

    def locate(self, source: Any, *, face: str | int = "largest") -> tuple[Image, Detection, FaceCrop]:
        """``pick`` a face and align it."""
        image, det = self.pick(source, face=face)
        return image, det, self.embedder.crop(image, det)

    def embed(self, source: Any, *, face: str | int = "largest", liveness: bool = False, synthetic: bool = False) -> Template:
        """The template of one face of the image (see ``select_face``), with its quality, and
        with the presentation-attack / synthetic-face checks when asked for."""
        image, det, crop = self.locate(source, face=face)
        vec = self.embedder.embed([crop])[0]
        return Template(
            vector=vec,
            model_id=self.model_id,
            detection=det,
            source=image.source,
            quality=self.assess(image, det, crop, vec),
            liveness=self.liveness_of(image, det) if liveness else None,
            synthetic=self.synthetic_of(image, det) if synthetic else None,
        )

    def enforce_liveness(self, liveness: Liveness | None, source: str | None) -> None:
        """Raise :class:`LivenessRejected` unless the face was checked (``liveness``) and found live
        -- and, with the ``liveness_low_confidence`` setting ``refuse``, with high confidence."""
        if liveness is None:
            raise InputError("liveness is required, and a template without its photo cannot be checked; give the photo", source=source or None)
        if liveness.confidence == "low" and self.settings.liveness_low_confidence == "refuse":
            advice = list(liveness.retake_advice)
            raise LivenessUncertain(
                "the capture lies outside what the liveness model was trained on, and this deployment refuses what it cannot judge "
                "(liveness_low_confidence=refuse); "
                + (
                    "retake it: " + "; ".join(advice)
                    if advice
                    else "a retake with this camera will not change that: train-pad on this deployment's own captures"
                ),
                source=source or None,
                reasons=list(liveness.confidence_reasons),
                retake_advice=advice,
            )
        if not liveness.live:
            raise LivenessRejected(
                f"the face looks like a presentation attack (liveness score {liveness.score:.3f} < {liveness.threshold:g})",
                source=source or None,
                reasons=liveness.evidence or [f"liveness score {liveness.score:.3f} is below the threshold {liveness.threshold:g}"],
            )

    def embed_all(self, source: Any) -> list[Template]:
        """Templates of every face in the image, embedded in one batch."""
        image = self.load(source)
        dets = self.detector.detect(image)
        crops = [self.embedder.crop(image, d) for d in dets]
        vecs = self.embedder.embed(crops)
        return [
            Template(vector=v, model_id=self.model_id, detection=d, source=image.source, quality=self.assess(image, d, c, v))
            for v, d, c in zip(vecs, dets, crops)
        ]

    def embed_many(self, sources: Iterable[Any], *, face: str | int = "largest") -> list[Template | FaceprintError]:
        """One template per source, faces of all images embedded in batches; a failing
        input yields its error in place of a template instead of stopping the batch."""
        out: list[Template | FaceprintError] = []
        pending: list[tuple[int, Image, Detection, FaceCrop]] = []

        def flush() -> None:
            vecs = self.embedder.embed([p[3] for p in pending])
            for (i, image, det, crop), v in zip(pending, vecs):
                out[i] = Template(vector=v, model_id=self.model_id, detection=det, source=image.source, quality=self.assess(image, det, crop, v))
            pending.clear()

        for src in sources:
            try:
                image = self.load(src)
                det = select_face(self.detector.detect(image), image, face)
                out.append(None)  # type: ignore[arg-type]  # filled by flush()
                pending.append((len(out) - 1, image, det, self.embedder.crop(image, det)))
            except FaceprintError as exc:
                out.append(exc)
            if len(pending) >= 32:
                flush()
        if pending:
            flush()
        return out

    # -- matching ------------------------------------------------------------
    def similarity(self, a: Template, b: Template) -> float:
        """Cosine similarity in [-1, 1]; templates of different models are refused."""
        if a.model_id != b.model_id:
            raise ModelMismatchError(f"templates of different models cannot be compared: {a.model_id!r} vs {b.model_id!r}")
        return float(np.clip(np.dot(a.vector, b.vector), -1.0, 1.0))

    def decide(self, score: float, *, fmr: float | None = None) -> Decision:
        """A match decision for a similarity score at the threshold calibrated for ``fmr``."""
        table = self.calibration
        fmr = self.settings.fmr if fmr is None else float(fmr)
        threshold = table.threshold_for(fmr)
        return Decision(
            score=float(score),
            threshold=float(threshold),
            fmr=fmr,
            score_fmr=float(table.fmr_for(score)),
            match=bool(score >= threshold),
            model_id=table.model_id,
            calibration=table.name,
        )

    def verify(self, a: Any, b: Any, *, fmr: float | None = None, face: str | int = "largest", require_liveness: bool | None = None) -> Verification:
        """Are the faces in ``a`` and ``b`` the same person?  Inputs are images or Templates.
        ``require_liveness`` (default: the ``require_liveness_verify`` setting) refuses a
        photo whose face looks like a print or a screen (:class:`LivenessRejected`)."""
        live = self.settings.require_liveness_verify if require_liveness is None else require_liveness
        ta = a if isinstance(a, Template) else self.embed(a, face=face, liveness=live)
        tb = b if isinstance(b, Template) else self.embed(b, face=face, liveness=live)
        if live:
            self.enforce_liveness(ta.liveness, ta.source)
            self.enforce_liveness(tb.liveness, tb.source)
        score = self.similarity(ta, tb)
        if ta.model_id != self.calibration.model_id:
            raise CalibrationError(
                f"calibration {self.calibration.name!r} is for model {self.calibration.model_id!r}, "
                f"but the templates are {ta.model_id!r}; run `faceprint calibrate` for this model"
            )
        return Verification(decision=self.decide(score, fmr=fmr), a=ta, b=tb)


def build_detector(settings: Settings) -> Detector:
    spec = get_spec(settings.detector)
    if spec.kind != "detector":
        raise ModelError(f"model {spec.id!r} is a {spec.kind}, not a detector")
    if spec.id == YuNetDetector.model_id:
        return YuNetDetector(DetectorSettings(score_threshold=settings.min_face_score, max_side=settings.detect_max_side))
    from faceprint.backends.dlib import DlibHogDetector

    return DlibHogDetector()


def build_embedder(settings: Settings) -> Embedder:
    spec = get_spec(settings.embedder)
    if spec.kind != "embedder":
        raise ModelError(f"model {spec.id!r} is a {spec.kind}, not an embedder")
    if spec.id == SFaceEmbedder.base_id:
        return SFaceEmbedder(flip=settings.flip)
    from faceprint.backends.dlib import DlibResNetEmbedder

    return DlibResNetEmbedder(flip=settings.flip)


_shared_detector = functools.lru_cache(maxsize=4)(build_detector)
_shared_embedder = functools.lru_cache(maxsize=4)(build_embedder)


def clear_shared_models() -> None:
    """Forget the models engines built with ``share_models=True`` hold in common (the next one loads its own)."""
    _shared_detector.cache_clear()
    _shared_embedder.cache_clear()


def load_calibration(path: str | None, model_id: str) -> CalibrationTable:
    """The user's calibration file if given, else the one shipped for ``model_id``."""
    if path:
        return CalibrationTable.load(path)
    shipped = shipped_calibration_path(model_id)
    if not shipped.is_file():
        raise CalibrationError(
            f"no calibration table ships for model {model_id!r}; make one with `faceprint calibrate` and pass it with --calibration / FACEPRINT_CALIBRATION"
        )
    return CalibrationTable.load(shipped)
