"""faceprint: offline, CPU-first face identity.

from faceprint import Engine
engine = Engine()
result = engine.verify("a.jpg", "b.jpg", fmr=1e-4)
"""

from faceprint.engine import Engine, Verification
from faceprint.errors import FaceprintError
from faceprint.settings import Settings
from faceprint.types import Decision, Detection, FaceCrop, Image, Template

__version__ = "0.1.0"
__all__ = ["Engine", "Verification", "FaceprintError", "Settings", "Decision", "Detection", "FaceCrop", "Image", "Template", "__version__"]
