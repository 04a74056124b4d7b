"""Per-object shape: a canonical mesh and an initial pose for every observed object."""

from sceneforge.shape.base import ShapeBackend, ShapeContext, ShapeResult, canonicalise

__all__ = ["ShapeBackend", "ShapeContext", "ShapeResult", "canonicalise"]
