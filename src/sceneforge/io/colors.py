"""Per-vertex or per-face RGBA colours of a trimesh mesh, as one typed value the writers share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh


@dataclass(frozen=True, eq=False)
class MeshColors:
    """Colours of a mesh.

    per_face : True when ``rgba`` has one row per face, False for one row per vertex.
    rgba : (F, 4) or (V, 4) uint8.
    """

    per_face: bool
    rgba: np.ndarray


def mesh_colors(mesh: trimesh.Trimesh) -> MeshColors | None:
    """The colours a mesh carries, or None for an uncoloured mesh.

    Vertex and face colours are returned exactly; a textured mesh is sampled to vertex colours
    (trimesh's ``to_color``), since the writers keep geometry and colour, not textures.
    """
    visual = mesh.visual
    kind = getattr(visual, "kind", None)
    if kind == "face":
        return MeshColors(True, np.asarray(visual.face_colors, dtype=np.uint8).copy())
    if kind == "vertex":
        return MeshColors(False, np.asarray(visual.vertex_colors, dtype=np.uint8).copy())
    if kind == "texture":
        try:
            rgba = np.asarray(visual.to_color().vertex_colors, dtype=np.uint8)
        except Exception:  # a texture without image or UVs: keep the geometry uncoloured
            return None
        if len(rgba) == len(mesh.vertices):
            return MeshColors(False, rgba.copy())
    return None


def apply_colors(mesh: trimesh.Trimesh, colors: MeshColors | None) -> trimesh.Trimesh:
    """Set ``colors`` on ``mesh`` in place and return it (no change for None)."""
    if colors is None:
        return mesh
    if colors.per_face:
        mesh.visual = trimesh.visual.ColorVisuals(mesh, face_colors=colors.rgba)
    else:
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=colors.rgba)
    return mesh


def as_rgba(rgb_or_rgba: np.ndarray) -> np.ndarray:
    """(N, 3) or (N, 4) uint8 -> (N, 4) uint8 (opaque alpha added)."""
    c = np.asarray(rgb_or_rgba, dtype=np.uint8)
    if c.shape[1] == 4:
        return c
    return np.concatenate([c, np.full((len(c), 1), 255, dtype=np.uint8)], axis=1)
