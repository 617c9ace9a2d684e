"""Detection, alignment, embedding and verification on real photos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceprint import Engine, Settings
from faceprint.alignment import ARCFACE_TEMPLATE
from faceprint.errors import InputError, ModelMismatchError, MultipleFacesError, NoFaceError
from faceprint.imaging import load_image
from faceprint.types import Image, Template


def _annotations(data_dir: Path) -> list[dict]:
    return json.loads((data_dir / "samples" / "group-photos" / "annotations.json").read_text())["images"]


def _decoded(path: Path, largest: bool) -> tuple[Image, float]:
    """A photo as the detector gets it, and the factor its coordinates shrank by: as it is, but
    the 4,000-7,000 px portraits (other than the largest, 7360 x 4912, kept whole) decoded at a
    quarter of their size (JPEG's own scaled decoding): 1 s of decoding and tiled detection each
    at full size, and one of them shows what a huge photo does."""
    from PIL import Image as PILImage

    with PILImage.open(path) as im:
        side = max(im.size)
    if side <= 4000 or largest:
        return load_image(path), 1.0
    return Image(np.ascontiguousarray(cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_4)[:, :, ::-1])), 4.0


@pytest.mark.slow
def test_group_photo_face_counts_match_annotations(engine: Engine, data_dir: Path) -> None:
    folder = data_dir / "samples" / "group-photos"
    items = _annotations(data_dir)
    largest = max(items, key=lambda it: (folder / it["file"]).stat().st_size)["file"]
    wrong = []
    for item in items:
        image, shrink = _decoded(folder / item["file"], item["file"] == largest)
        faces = engine.detect(image)
        if len(faces) != item["num_faces"]:
            wrong.append((item["file"], item["num_faces"], len(faces)))
            continue
        # every annotated nose lies inside one detected box
        for nx, ny in item["nose_xy"]:
            nx, ny = nx / shrink, ny / shrink
            assert any(f.box[0] <= nx <= f.box[0] + f.box[2] and f.box[1] <= ny <= f.box[1] + f.box[3] for f in faces), (item["file"], nx, ny)
    assert not wrong, f"face counts differ from annotations.json (file, annotated, found): {wrong}"


def test_large_photo_keeps_small_faces(engine: Engine, data_dir: Path) -> None:
    """An 8-face group photo blown up 6x (4800 px wide) still yields its 8 faces, and a
    45-pixel face on a 6000x4000 canvas is found by the finer tiled pass."""
    img = load_image(data_dir / "samples" / "group-photos" / "016_8.jpg")
    big = cv2.resize(img.pixels, (img.width * 6, img.height * 6), interpolation=cv2.INTER_LINEAR)
    assert len(engine.detect(Image(big))) == 8

    face = load_image(data_dir / "lfw-dev" / "images" / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg").pixels
    small = cv2.resize(face, (100, 100), interpolation=cv2.INTER_AREA)  # face ~45 px inside
    canvas = np.full((4000, 6000, 3), 128, np.uint8)
    canvas[3000:3100, 4500:4600] = small
    found = engine.detect(Image(canvas))
    assert len(found) == 1
    x, y, w, h = found[0].box
    assert 4500 <= x + w / 2 <= 4600 and 3000 <= y + h / 2 <= 3100


def test_tiny_and_face_filling_images(engine: Engine, data_dir: Path) -> None:
    orl = sorted((data_dir / "samples" / "orl" / "att_faces" / "s1").glob("*.pgm"))
    assert len(orl) == 10
    for f in orl:  # 92x112 greyscale, the face fills the frame
        assert len(engine.detect(f)) == 1, f
    assert engine.detect(Image(np.zeros((1, 1, 3), np.uint8))) == []
    assert engine.detect(Image(np.full((20, 30, 3), 200, np.uint8))) == []


def test_no_face_photo(engine: Engine, data_dir: Path) -> None:
    photo = data_dir / "samples" / "group-photos" / "017_0.jpg"
    assert engine.detect(photo) == []
    with pytest.raises(NoFaceError, match="017_0.jpg: no face found"):
        engine.embed(photo)


def test_alignment_puts_landmarks_on_the_arcface_template(engine: Engine, lfw: Path) -> None:
    image = load_image(lfw / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg")
    det = engine.detect(image)[0]
    crop = engine.align(image, det)
    assert crop.pixels.shape == (112, 112, 3) and crop.pixels.dtype == np.uint8
    mapped = np.c_[det.landmarks, np.ones(5)] @ crop.transform.T
    # five points, four degrees of freedom: close, not exact (the head is turned a little)
    assert np.abs(mapped - ARCFACE_TEMPLATE).max() < 10.0
    assert np.abs(mapped[:2] - ARCFACE_TEMPLATE[:2]).mean() < 3.0
    # eye on the left of the image stays on the left in the crop (no mirror)
    assert det.landmarks[0, 0] < det.landmarks[1, 0]


def test_templates_unit_length_and_batch_equals_single(engine: Engine, lfw: Path) -> None:
    files = sorted((lfw / "Akhmed_Zakayev").glob("*.jpg"))[:2] + sorted((lfw / "Abel_Pacheco").glob("*.jpg"))[:2]
    batch = engine.embed_many(files)
    assert all(isinstance(t, Template) for t in batch)
    for f, t in zip(files, batch):
        single = engine.embed(f)
        assert t.model_id == "sface-2021dec-int8bq+flip"
        assert abs(np.linalg.norm(t.vector) - 1) < 1e-5
        assert float(single.vector @ t.vector) > 0.9999
    sims = np.array([[engine.similarity(a, b) for b in batch] for a in batch])
    assert sims[0, 1] > 0.4 and sims[2, 3] > 0.4  # same person
    assert max(sims[0, 2], sims[0, 3], sims[1, 2], sims[1, 3]) < 0.25  # different people


def test_embed_many_keeps_going_past_bad_inputs(engine: Engine, lfw: Path, tmp_path: Path, data_dir: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    res = engine.embed_many([lfw / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg", bad, data_dir / "samples" / "group-photos" / "017_0.jpg"])
    assert isinstance(res[0], Template)
    assert isinstance(res[1], InputError) and "bad.jpg" in str(res[1])
    assert isinstance(res[2], NoFaceError)


def test_flip_fusion_changes_model_id(lfw: Path) -> None:
    plain = Engine(Settings(flip=False))
    t = plain.embed(lfw / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg")
    assert t.model_id == "sface-2021dec-int8bq"
    fused = Engine(Settings()).embed(lfw / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg")
    with pytest.raises(ModelMismatchError):
        plain.similarity(t, fused)
    assert 0.9 < float(t.vector @ fused.vector) < 0.99999


def test_face_choice(engine: Engine, data_dir: Path) -> None:
    photo = data_dir / "samples" / "group-photos" / "010_2.jpg"
    with pytest.raises(MultipleFacesError, match="2 faces"):
        engine.embed(photo, face="single")
    with pytest.raises(InputError, match="out of range"):
        engine.embed(photo, face=5)
    faces = engine.detect(photo)
    largest = engine.embed(photo)
    assert largest.detection.area == max(f.area for f in faces)
    assert engine.embed(photo, face=1).detection.box == faces[1].box


def test_verify_reports_threshold_and_fmr(engine: Engine, lfw: Path) -> None:
    a, b = sorted((lfw / "Abel_Pacheco").glob("*.jpg"))[:2]
    other = sorted((lfw / "Akhmed_Zakayev").glob("*.jpg"))[0]
    same = engine.verify(a, b).decision
    diff = engine.verify(a, other).decision
    assert same.match and not diff.match
    assert same.fmr == 1e-3 and diff.fmr == 1e-3
    assert same.score >= same.threshold > diff.score
    assert same.calibration == "lfw-dev" and same.model_id == engine.model_id
    strict = engine.verify(a, b, fmr=1e-6).decision
    loose = engine.verify(a, b, fmr=1e-2).decision
    assert strict.threshold > same.threshold > loose.threshold
    assert diff.score_fmr > same.score_fmr  # an impostor score is far less surprising
