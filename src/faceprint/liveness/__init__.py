"""Liveness: is the face in front of the camera a live person?  So far: motion analysis of
video (:mod:`faceprint.liveness.motion`); single-image presentation-attack detection is
the next part of this package."""

from faceprint.liveness.motion import MotionLiveness, motion_liveness, video_frames

__all__ = ["MotionLiveness", "motion_liveness", "video_frames"]
