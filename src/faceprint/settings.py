"""One typed settings object.  Defaults here; environment variables (FACEPRINT_*) and an
optional TOML file (FACEPRINT_CONFIG, table ``[faceprint]``) override them, in that order:
defaults < file < environment < explicit arguments.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from faceprint.errors import InputError


@dataclass(frozen=True)
class Settings:
    detector: str = "yunet-2023mar-int8bq"  # FACEPRINT_DETECTOR
    embedder: str = "sface-2021dec-int8bq"  # FACEPRINT_EMBEDDER
    flip: bool = True  # FACEPRINT_FLIP: horizontal-flip fusion of embeddings
    fmr: float = 1e-3  # FACEPRINT_FMR: default false-match rate of verify decisions
    calibration: str | None = None  # FACEPRINT_CALIBRATION: path of a calibration JSON (default: the shipped one)
    min_face_score: float = 0.85  # FACEPRINT_MIN_FACE_SCORE: detector score threshold
    detect_max_side: int = 640  # FACEPRINT_DETECT_MAX_SIDE: long side of the whole-image detection pass
    max_bytes: int = 64 * 1024 * 1024  # FACEPRINT_MAX_BYTES: largest image file accepted
    max_pixels: int = 120_000_000  # FACEPRINT_MAX_PIXELS: largest declared width x height accepted
    upload_max_pixels: int = 24_000_000  # FACEPRINT_UPLOAD_MAX_PIXELS: cap of untrusted uploads (REST): decode + detection stay under ~250 MB (benchmarks/decode_memory.py); 0 = max_pixels
    video_max_pixels: int = 4096 * 2160  # FACEPRINT_VIDEO_MAX_PIXELS: largest frame (width x height) of a clip accepted (4K)
    video_max_seconds: float = 60.0  # FACEPRINT_VIDEO_MAX_SECONDS: longest clip accepted (declared duration)
    video_max_bytes: int = 128 * 1024 * 1024  # FACEPRINT_VIDEO_MAX_BYTES: largest clip file accepted
    cluster_link_fmr: float = 2e-5  # FACEPRINT_CLUSTER_LINK_FMR: photo library grouping threshold (see library/cluster.py)
    cluster_attach_fmr: float = 1e-6  # FACEPRINT_CLUSTER_ATTACH_FMR: how sure a low-quality face must be to join someone
    cluster_min_quality: float = 0.5  # FACEPRINT_CLUSTER_MIN_QUALITY: faces below never seed or bridge a person
    cluster_min_faces: int = 2  # FACEPRINT_CLUSTER_MIN_FACES: smallest group shown as a person
    library_thumbnails: bool = True  # FACEPRINT_LIBRARY_THUMBNAILS: keep face thumbnails for the web UI when indexing
    xmp_sidecar: str = "append"  # FACEPRINT_XMP_SIDECAR: face tags go to photo.jpg.xmp (append: digiKam, darktable) or photo.xmp (replace: Lightroom)
    quality_model: str | None = None  # FACEPRINT_QUALITY_MODEL: path of a quality model JSON (default: the shipped one)
    quality_enrol_min: float = 30.0  # FACEPRINT_QUALITY_ENROL_MIN: enrolment refuses faces with a unified quality below (0-100)
    quality_min_interocular: float = 24.0  # FACEPRINT_QUALITY_MIN_INTEROCULAR: enrolment refuses eyes closer than this (px)
    quality_max_yaw: float = 45.0  # FACEPRINT_QUALITY_MAX_YAW: enrolment refuses heads turned further (degrees)
    quality_max_pitch: float = 30.0  # FACEPRINT_QUALITY_MAX_PITCH: enrolment refuses heads tilted further (degrees)
    quality_mark_below: float = 30.0  # FACEPRINT_QUALITY_MARK_BELOW: identification and indexing flag faces below as low quality
    pad_model: str | None = None  # FACEPRINT_PAD_MODEL: path of a presentation-attack model JSON (default: the shipped one)
    pad_threshold: float | None = None  # FACEPRINT_PAD_THRESHOLD: liveness score (0-1) at or above which a face counts as live (default: the model's own)
    require_liveness_enrol: bool = False  # FACEPRINT_REQUIRE_LIVENESS_ENROL: enrolment refuses faces that look like an attack
    liveness_low_confidence: str = "decide"  # FACEPRINT_LIVENESS_LOW_CONFIDENCE: where liveness is required, a capture outside the model's training captures is decided by its score (decide) or refused (refuse)
    require_liveness_verify: bool = False  # FACEPRINT_REQUIRE_LIVENESS_VERIFY: verification refuses probe photos that look like an attack
    synthetic_model: str | None = None  # FACEPRINT_SYNTHETIC_MODEL: path of a synthetic-face model JSON (default: the shipped one)
    synthetic_threshold: float = 0.5  # FACEPRINT_SYNTHETIC_THRESHOLD: synthetic score (0-1) at or above which a face counts as synthetic

    @classmethod
    def load(cls, config: str | os.PathLike | None = None, **overrides: Any) -> Settings:
        values: dict[str, Any] = {}
        path = config or os.environ.get("FACEPRINT_CONFIG")
        if path:
            values.update(_read_toml(Path(path)))
        for f in fields(cls):
            env = os.environ.get("FACEPRINT_" + f.name.upper())
            if env is not None and env != "":
                values[f.name] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**{k: _coerce(cls, k, v) for k, v in values.items()})

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError("config file not found", source=str(path)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid TOML: {exc}", source=str(path)) from None
    table = data.get("faceprint", data)
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise InputError(f"unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})", source=str(path))
    return dict(table)


def _coerce(cls: type, name: str, value: Any) -> Any:
    known = {f.name: f for f in fields(cls)}
    if name not in known:
        raise InputError(f"unknown setting {name!r}")
    default = known[name].default
    optional_float = known[name].type == "float | None"  # unset (None) means "the model's own"
    kind = "float" if optional_float else type(default).__name__
    try:
        if optional_float and value is not None:
            return float(value)
        if isinstance(default, bool):
            if isinstance(value, str):
                low = value.strip().lower()
                if low not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                    raise ValueError(value)
                return low in {"1", "true", "yes", "on"}
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError):
        raise InputError(f"setting {name}={value!r} is not a valid {kind}") from None
    if name in CHOICES and value not in CHOICES[name]:
        raise InputError(f"setting {name}={value!r} must be one of {', '.join(CHOICES[name])}")
    return None if value is None else str(value)


CHOICES = {  # string settings with a fixed set of values: a bad one fails when the settings load, not at first use
    "liveness_low_confidence": ("decide", "refuse"),
    "xmp_sidecar": ("append", "replace"),
}
