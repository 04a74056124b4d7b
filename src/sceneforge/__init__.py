"""sceneforge: one image in, one editable 3D scene out."""

from sceneforge.errors import InputError, SceneforgeError
from sceneforge.types import Camera, Normalisation, Plane, Scene, SceneInput, SceneObject, Similarity

__version__ = "0.1.0"
__all__ = ["Camera", "InputError", "Normalisation", "Plane", "Scene", "SceneInput", "SceneObject",
           "SceneforgeError", "Similarity", "__version__"]
