"""The optional dlib backend: HOG detector + 5-point landmarks + ResNet embedder."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dlib", reason="the dlib backend needs the extra: pip install 'faceprint[dlib]'")

import cv2

from faceprint.backends.dlib import (
    DlibHogDetector,
    DlibResNetEmbedder,
    arcface_landmarks,
)
from faceprint.detection import Detector, YuNetDetector
from faceprint.embedding import Embedder
from faceprint.errors import InputError, ModelError
from faceprint.imaging import load_image
from faceprint.types import Image

# LFW people whose first two photos hold exactly one face for both dlib-hog and YuNet.
ONE_FACE = ["Bill_Gates", "Abdullah_Gul", "Carlos_Menem"]


def _photo(lfw: Path, name: str, n: int = 1) -> Image:
    path = lfw / name / f"{name}_{n:04d}.jpg"
    if not path.is_file():
        pytest.skip(f"{path} not in the data folder")
    return load_image(path)


@pytest.fixture(scope="module")
def detector() -> DlibHogDetector:
    return DlibHogDetector()


@pytest.fixture(scope="module")
def embedder() -> DlibResNetEmbedder:
    return DlibResNetEmbedder()


def test_protocols_and_ids(detector: DlibHogDetector, embedder: DlibResNetEmbedder) -> None:
    assert isinstance(detector, Detector)
    assert isinstance(embedder, Embedder)
    assert detector.model_id == "dlib-hog"
    assert embedder.dim == 128
    plain = DlibResNetEmbedder(flip=False)
    assert isinstance(plain, Embedder)
    assert embedder.model_id == "dlib-resnet-v1+flip"
    assert plain.model_id == "dlib-resnet-v1"


def test_missing_dlib_is_a_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` raise ImportError
    with pytest.raises(ModelError, match=r"faceprint\[dlib\]"):
        DlibHogDetector()
    with pytest.raises(ModelError, match=r"faceprint\[dlib\]"):
        DlibResNetEmbedder()


def test_bad_arguments_are_input_errors(embedder: DlibResNetEmbedder) -> None:
    with pytest.raises(InputError):
        DlibHogDetector(upsample=-1)
    assert embedder.embed([]).shape == (0, 128)


def test_arcface_landmarks_from_dlib_points() -> None:
    # dlib order: right-in-image eye outer, inner; left-in-image eye outer, inner; nose base
    pts = np.array([[90, 50], [70, 50], [30, 50], [50, 50], [60, 80]], np.float32)
    lm = arcface_landmarks(pts)
    assert lm.shape == (5, 2) and lm.dtype == np.float32
    np.testing.assert_allclose(lm[0], [40, 50])
    np.testing.assert_allclose(lm[1], [80, 50])
    np.testing.assert_allclose(lm[2], [60, 80])
    assert lm[3, 0] < lm[2, 0] < lm[4, 0]  # mouth corners either side of the nose
    assert lm[3, 1] > 80 and lm[4, 1] > 80  # and below it


@pytest.mark.parametrize("name", ONE_FACE)
def test_detects_one_face_with_ordered_landmarks(lfw: Path, detector: DlibHogDetector, name: str) -> None:
    image = _photo(lfw, name)
    faces = detector.detect(image)
    assert len(faces) == 1
    face = faces[0]
    assert face.detector == "dlib-hog"
    assert face.score > 0
    lm = face.landmarks
    assert lm.shape == (5, 2) and lm.dtype == np.float32
    assert lm[0, 0] < lm[1, 0]  # eye on the left of the image first
    assert lm[3, 0] < lm[4, 0]  # mouth left before mouth right
    assert max(lm[0, 1], lm[1, 1]) < lm[2, 1] < min(lm[3, 1], lm[4, 1])  # eyes, nose, mouth top to bottom
    assert face.interocular > 20
    x, y, w, h = face.box
    assert 0 <= x and 0 <= y and x + w <= image.width and y + h <= image.height
    assert np.all(lm[:, 0] >= x) and np.all(lm[:, 0] <= x + w)
    assert np.all(lm[:, 1] >= y) and np.all(lm[:, 1] <= y + h)


def test_crop_is_dlib_chip_with_matching_transform(lfw: Path, detector: DlibHogDetector, embedder: DlibResNetEmbedder) -> None:
    image = _photo(lfw, ONE_FACE[0])
    crop = embedder.crop(image, detector.detect(image)[0])
    assert crop.pixels.shape == (150, 150, 3) and crop.pixels.dtype == np.uint8
    assert crop.transform.shape == (2, 3)
    # the transform reproduces dlib's chip (up to interpolation)
    warped = cv2.warpAffine(image.pixels, crop.transform, (150, 150), flags=cv2.INTER_LINEAR)
    assert np.abs(warped.astype(np.int16) - crop.pixels).mean() < 2.0


@pytest.mark.slow
def test_same_person_scores_higher_than_different_people(lfw: Path, detector: DlibHogDetector, embedder: DlibResNetEmbedder) -> None:
    images = {(name, n): _photo(lfw, name, n) for name in ONE_FACE for n in (1, 2)}
    crops = [embedder.crop(img, detector.detect(img)[0]) for img in images.values()]
    vecs = dict(zip(images, embedder.embed(crops)))
    for name in ONE_FACE:
        genuine = float(vecs[name, 1] @ vecs[name, 2])
        impostors = [float(vecs[name, i] @ vecs[other, j]) for other in ONE_FACE if other != name for i in (1, 2) for j in (1, 2)]
        assert genuine > max(impostors), (name, genuine, impostors)


def test_embeds_yunet_detections(lfw: Path, detector: DlibHogDetector, embedder: DlibResNetEmbedder) -> None:
    yunet = YuNetDetector()
    image = _photo(lfw, ONE_FACE[1])
    yface = yunet.detect(image)
    assert len(yface) == 1
    from_yunet = embedder.embed([embedder.crop(image, yface[0])])
    from_hog = embedder.embed([embedder.crop(image, detector.detect(image)[0])])
    assert from_yunet.shape == (1, 128)
    # the 5-point predictor lands on the same face from either box: nearly the same template
    assert float(from_yunet[0] @ from_hog[0]) > 0.95


@pytest.mark.slow
def test_templates_unit_length_and_flip_changes_them(lfw: Path, detector: DlibHogDetector, embedder: DlibResNetEmbedder) -> None:
    plain = DlibResNetEmbedder(flip=False)
    crops = []
    for name in ONE_FACE:
        image = _photo(lfw, name)
        crops.append(embedder.crop(image, detector.detect(image)[0]))
    fused = embedder.embed(crops)
    single = plain.embed(crops)
    for vecs in (fused, single):
        assert vecs.shape == (len(crops), 128) and vecs.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    cos = np.sum(fused * single, axis=1)
    assert np.all(cos > 0.9) and np.all(cos < 0.99999)  # close but not identical
    # batching does not change the result
    np.testing.assert_allclose(embedder.embed(crops[:1]), fused[:1], atol=1e-5)
