"""Baseline "visible points only": each object is the triangulated surface of its own depth pixels."""

from __future__ import annotations

import numpy as np
import trimesh

from sceneforge.geometry.depth_mesh import depth_grid_mesh
from sceneforge.registry import register
from sceneforge.shape.base import ShapeBackend, ShapeContext, ShapeError, ShapeResult, canonicalise


@register("shape", "visible")
class VisibleSurface(ShapeBackend):
    """The object's kept depth pixels triangulated on the pixel grid (cut at depth jumps), with
    no completion: the trivial baseline the benchmark compares against. Yaw 0."""

    def __init__(self, *, stride: int = 1, max_ratio: float = 0.05) -> None:
        self.stride = int(stride)
        self.max_ratio = float(max_ratio)

    def reconstruct(self, context: ShapeContext) -> ShapeResult:
        obs, perception = context.observation, context.perception
        select = np.zeros(perception.depth.shape, dtype=bool)
        select[obs.pixels[:, 0], obs.pixels[:, 1]] = True
        mesh = depth_grid_mesh(perception.camera, perception.depth, select, stride=self.stride,
                               max_ratio=self.max_ratio, image=perception.image)
        if mesh is not None:
            mesh.apply_transform(perception.T_world_cam)
        else:
            mesh = _point_hull(obs.points_world)
        canonical, pose = canonicalise(mesh, 0.0)
        return ShapeResult(canonical, pose, confidence=0.5, info={"backend": "visible", "faces": len(mesh.faces)})


def _point_hull(points_world: np.ndarray) -> trimesh.Trimesh:
    try:
        return trimesh.convex.convex_hull(points_world)
    except Exception as exc:  # qhull fails on coplanar or too few points
        raise ShapeError(f"cannot triangulate {len(points_world)} visible points ({exc})") from exc

