"""Draw detections onto a copy of an image (for `faceprint detect --draw`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image as PILImage

from faceprint.errors import InputError
from faceprint.types import Detection, Image

_COLOURS = [(0, 200, 0), (0, 120, 255), (255, 0, 0), (255, 0, 255), (0, 200, 200)]  # eyes, nose, mouth (RGB)


def draw_detections(image: Image, detections: Sequence[Detection], path: str | Path) -> Path:
    path = Path(path)
    canvas = np.ascontiguousarray(image.pixels.copy())
    thick = max(1, round(max(image.width, image.height) / 400))
    for i, d in enumerate(detections):
        x, y, w, h = (int(round(v)) for v in d.box)
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 255, 0), thick)
        cv2.putText(canvas, f"{i} {d.score:.2f}", (x, max(0, y - 4 * thick)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, (0, 255, 0), thick)
        for (px, py), colour in zip(d.landmarks, _COLOURS):
            cv2.circle(canvas, (int(round(px)), int(round(py))), 2 * thick, colour, -1)
    try:
        PILImage.fromarray(canvas).save(path)
    except (ValueError, KeyError) as exc:
        raise InputError(f"cannot write a drawing there ({exc}); use a .png or .jpg name", source=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot write file: {exc.strerror or exc}", source=str(path)) from None
    return path
