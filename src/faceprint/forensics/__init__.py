"""Image forensics: was this face generated (GAN / diffusion) rather than photographed?

* :mod:`~faceprint.forensics.synthetic` -- the synthetic-face detector: features, the model
  (``synthetic-v1.json`` ships beside it), loading and scoring;
* :mod:`~faceprint.forensics.training` -- fitting and cross-validating that model
  (``faceprint train-synthetic``).

The identity-aware check (does the face agree with the person's enrolled references?) is a
gallery statistic: :mod:`faceprint.gallery.consistency`.
"""

from faceprint.forensics.synthetic import SyntheticCheck, SyntheticModel, load_synthetic_model

__all__ = ["SyntheticCheck", "SyntheticModel", "load_synthetic_model"]
