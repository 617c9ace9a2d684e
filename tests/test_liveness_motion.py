"""Motion liveness on real clips: talking heads and the Hamilton clip move like 3-D heads;
videos built from single stills (moved, rotated, scaled, perspective-warped, blurred, noisy)
move like flat pictures."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceprint.imaging import load_image
from faceprint.liveness import motion_liveness, video_frames
from faceprint.liveness.motion import MAX_SIDE


def flat_video(still: np.ndarray, n: int = 60, seed: int = 0) -> list[np.ndarray]:
    """A photo held in front of a camera: a plane moved, turned and tilted over time."""
    rng = np.random.default_rng(seed)
    h, w = still.shape[:2]
    out = []
    for t in range(n):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 8 * np.sin(t / 9), 1 + 0.1 * np.sin(t / 13))
        m[:, 2] += (20 * np.sin(t / 7), 10 * np.cos(t / 11))
        hom = np.vstack([m, [0, 0, 1]])
        hom[2, 0], hom[2, 1] = 0.0004 * np.sin(t / 5), 0.0002 * np.cos(t / 6)
        img = cv2.warpPerspective(still, hom, (w, h), borderMode=cv2.BORDER_REFLECT)
        img = cv2.GaussianBlur(img, (0, 0), 0.5 + 0.5 * abs(np.sin(t / 4)))
        out.append(np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def video(data_dir: Path) -> Path:
    path = data_dir / "samples" / "video"
    if not path.is_dir():
        pytest.skip(f"sample videos not found at {path}")
    return path


@pytest.mark.parametrize(
    "clip", ["talking-heads/WDA_KatieHill_000.mp4", "talking-heads/WDA_AlexandriaOcasioCortez_000.mp4", "hamilton/short_hamilton_clip.mp4"]
)
@pytest.mark.slow
def test_real_heads_are_live(engine, video: Path, clip: str) -> None:
    res = motion_liveness(engine, video_frames(video / clip, step=2, max_frames=60))
    assert res.live is True, res.to_dict()
    assert res.score >= 2 * res.threshold and res.informative_pairs >= 8


@pytest.mark.parametrize(
    "still",
    [
        "hamilton/lin-manuel-miranda.png",
        "hamilton/obama.jpg",
        "../deepface/identities/id01/img1.jpg",
        "../deepface/identities/id09/img34.jpg",
        "../../lfw-dev/images/Bill_Gates/Bill_Gates_0001.jpg",
    ],
)
@pytest.mark.slow
def test_a_moved_photo_is_flat(engine, video: Path, still: str) -> None:
    path = (video / still).resolve()
    if not path.is_file():
        pytest.skip(f"{path} not found")
    # the photo as a camera of the motion check's working scale sees it (long side <= 640 px,
    # where motion_liveness judges every frame anyway): warping, blurring and adding noise to
    # 60 frames of a 2,500 px photo took 9-20 s, to be shrunk again frame by frame
    pixels = load_image(path).pixels
    side = max(pixels.shape[:2])
    if side > MAX_SIDE:
        f = MAX_SIDE / side
        pixels = cv2.resize(pixels, (round(pixels.shape[1] * f), round(pixels.shape[0] * f)), interpolation=cv2.INTER_AREA)
    res = motion_liveness(engine, flat_video(pixels, seed=len(still)))
    assert res.live is False, res.to_dict()
    assert res.score < res.threshold / 2 and res.informative_pairs >= 30


def test_a_still_head_cannot_be_judged(engine, video: Path) -> None:
    still = load_image(video / "hamilton" / "lin-manuel-miranda.png").pixels
    res = motion_liveness(engine, [still] * 20)
    assert res.live is None and "enough face motion" in res.reason
    with pytest.raises(Exception, match="no frames"):
        motion_liveness(engine, [])
