"""Image forensics: was this face generated (GAN / diffusion) rather than photographed?

* :mod:`~faceprint.forensics.synthetic` -- the synthetic-face detector: features, the model
  (``synthetic-v2.json`` ships beside it; ``synthetic-v1.json``, the layout detector alone,
  stays loadable), loading and scoring, and the verdict: synthetic / cannot tell / no evidence;
* :mod:`~faceprint.forensics.training` -- fitting and cross-validating those models
  (``faceprint train-synthetic``; re-framed training for v2: ``scripts/train_synthetic.py``).

The identity-aware check (does the face agree with the person's enrolled references?) is a
gallery statistic: :mod:`faceprint.gallery.consistency`.
"""

from faceprint.forensics.synthetic import SyntheticCheck, SyntheticModel, load_synthetic_model

__all__ = ["SyntheticCheck", "SyntheticModel", "load_synthetic_model"]
