"""Model registry: what each model is, where its file comes from, and checks before loading."""

from faceprint.models.registry import REGISTRY, ModelSpec, get_spec, list_models, model_path

__all__ = ["REGISTRY", "ModelSpec", "get_spec", "list_models", "model_path"]
