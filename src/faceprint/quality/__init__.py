"""Face quality: component measures, a unified 0-100 score, and gating with reasons.

* :mod:`~faceprint.quality.components` -- size, pose, sharpness, exposure, clipping,
  contrast, detector confidence, recognizability: each a raw value and a 0-100 score.
* :mod:`~faceprint.quality.model` -- the unified score from a small shipped tree model.
* :mod:`~faceprint.quality.degrade` -- deterministic degradations for training and tests.
"""

from faceprint.quality.components import COMPONENTS, Component, head_pose, measure
from faceprint.quality.model import MODEL_PATH, Quality, QualityModel, load_model

__all__ = ["COMPONENTS", "MODEL_PATH", "Component", "Quality", "QualityModel", "head_pose", "load_model", "measure"]
