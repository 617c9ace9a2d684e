"""The clustering gate's first home (the name read as if it were the :mod:`faceprint.quality`
package): it is :mod:`faceprint.library.cluster_gate`.  Kept so that ``from
faceprint.library.quality import face_quality`` goes on working."""

from faceprint.library.cluster_gate import face_quality

__all__ = ["face_quality"]
