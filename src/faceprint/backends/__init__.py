"""Optional model backends (installed through faceprint extras)."""
