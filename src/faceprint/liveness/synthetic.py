"""The synthetic-face detector's first home, kept so that ``from faceprint.liveness.synthetic
import ...`` goes on working: the detector is :mod:`faceprint.forensics.synthetic`, its
training :mod:`faceprint.forensics.training` (``train`` here is ``train_synthetic``) and the
identity-aware check :mod:`faceprint.gallery.consistency`.  New code imports from those."""

from faceprint.forensics.synthetic import *
from faceprint.forensics.training import train_synthetic as train
from faceprint.gallery.consistency import IdentityConsistency, identity_consistency

__all__ = ["FAMILIES", "LAYOUT_NAMES", "MODEL_PATH", "TEXTURE_NAMES", "IdentityConsistency", "SyntheticCheck", "SyntheticModel", "crop_features",
           "identity_consistency", "layout_features", "load_synthetic_model", "normalised_crop", "synthetic_features", "synthetic_set_features", "train"]
