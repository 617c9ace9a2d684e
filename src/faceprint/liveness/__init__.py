"""Liveness: is the face in front of the camera a live person?

* :mod:`~faceprint.liveness.pad` -- single-image presentation-attack detection: loading the
  model (``pad-v2.json`` ships beside it) and scoring; :mod:`~faceprint.liveness.features`
  its face-texture and context features;
* :mod:`~faceprint.liveness.training` -- fitting the PAD model (``faceprint train-pad``) and
  the NumPy fitting primitives the synthetic-face trainer shares;
* :mod:`~faceprint.liveness.motion`, :mod:`~faceprint.liveness.challenge`,
  :mod:`~faceprint.liveness.video` -- video: 3-D head motion, requested head turns, a clip's
  verdict.

The synthetic-face detector lives in :mod:`faceprint.forensics` (it borrows the texture
features and the fitting primitives from here; nothing here imports it).
"""

from faceprint.liveness.motion import MotionLiveness, motion_liveness, video_frames

__all__ = ["MotionLiveness", "motion_liveness", "video_frames"]
