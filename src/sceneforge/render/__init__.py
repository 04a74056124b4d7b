"""Rendering: the EGL rasteriser (RGB, instance ids, metric depth, normals) and what it draws.

Importing this package does not import moderngl; the GL context is created on first use.
"""

from sceneforge.render.scene import Backdrop, Environment, Ground, Lighting, RenderMesh, RenderOutput, RenderScene

__all__ = ["Backdrop", "Environment", "Ground", "Lighting", "RenderMesh", "RenderOutput", "RenderScene"]
