"""Values computed once per mesh and process: the engine's scenes share the asset pool's canonical
meshes (which are never modified in place), so their PLY bytes or hull points need computing once.

:func:`mesh_memo` memoises a function of one mesh by the mesh's identity; each entry holds the mesh,
so its id cannot be reused by another object while the entry exists.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import numpy as np
import trimesh

from sceneforge.io.meshes import ply_bytes

T = TypeVar("T")

#: Meshes remembered per memoised function before its memo starts over.
MEMO_SIZE = 1024


def mesh_memo(fn: Callable[[trimesh.Trimesh], T]) -> Callable[[trimesh.Trimesh], T]:
    """``fn(mesh)`` computed once per mesh object (up to MEMO_SIZE meshes, then the memo is cleared)."""
    memo: dict[int, tuple[Any, T]] = {}

    @wraps(fn)
    def memoised(mesh: trimesh.Trimesh) -> T:
        hit = memo.get(id(mesh))
        if hit is not None and hit[0] is mesh:
            return hit[1]
        if len(memo) >= MEMO_SIZE:
            memo.clear()
        value = fn(mesh)
        memo[id(mesh)] = (mesh, value)
        return value

    return memoised


@mesh_memo
def hull_points(mesh: trimesh.Trimesh) -> np.ndarray:
    """(K, 3) the mesh's vertices on its convex hull (all vertices when the hull is degenerate): the
    same axis-aligned box as all vertices under any affine map, from fewer points."""
    from scipy.spatial import ConvexHull, QhullError

    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    try:
        points = vertices[np.sort(ConvexHull(vertices).vertices)]
    except (QhullError, ValueError):
        points = vertices
    points.setflags(write=False)
    return points


#: The binary PLY file of a mesh (:func:`sceneforge.io.meshes.ply_bytes`), encoded once per mesh.
mesh_ply_bytes = mesh_memo(ply_bytes)
