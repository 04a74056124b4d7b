"""Values computed once per mesh and process: the engine's scenes share the asset pool's canonical
meshes (which are never modified in place), so their PLY bytes or hull points need computing once.

:class:`MeshMemo` (a decorator) memoises a function of one mesh by the mesh's identity; each entry
holds the mesh, so its id cannot be reused by another object while the entry exists. :data:`ASSET_MEMOS` carries the
memos every layout kind needs of each asset (hull points, PLY bytes) through an asset pool's store,
so a worker process that loads an asset another worker built does not compute them again.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any, Generic, TypeVar

import numpy as np
import trimesh

from sceneforge.assets.base import Asset
from sceneforge.assets.pool import StoreExtras
from sceneforge.io.meshes import ply_bytes

T = TypeVar("T")

#: Meshes remembered per memoised function before its memo starts over.
MEMO_SIZE = 1024


class MeshMemo(Generic[T]):
    """``fn(mesh)`` computed once per mesh object (up to MEMO_SIZE meshes, then the memo is cleared);
    :meth:`remember` gives it a value computed elsewhere (e.g. by another process)."""

    def __init__(self, fn: Callable[[trimesh.Trimesh], T]):
        self._fn = fn
        self._memo: dict[int, tuple[Any, T]] = {}
        update_wrapper(self, fn)

    def __call__(self, mesh: trimesh.Trimesh) -> T:
        hit = self._memo.get(id(mesh))
        if hit is not None and hit[0] is mesh:
            return hit[1]
        value = self._fn(mesh)
        self.remember(mesh, value)
        return value

    def remember(self, mesh: trimesh.Trimesh, value: T) -> None:
        """Take ``value`` as ``fn(mesh)``."""
        if len(self._memo) >= MEMO_SIZE:
            self._memo.clear()
        self._memo[id(mesh)] = (mesh, value)


@MeshMemo
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
mesh_ply_bytes = MeshMemo(ply_bytes)


def _asset_memos(asset: Asset) -> tuple[np.ndarray, bytes]:
    return hull_points(asset.mesh), mesh_ply_bytes(asset.mesh)


def _remember_asset_memos(asset: Asset, values: tuple[np.ndarray, bytes]) -> None:
    points, ply = values
    points.setflags(write=False)  # a pickled array comes back writeable
    hull_points.remember(asset.mesh, points)
    mesh_ply_bytes.remember(asset.mesh, ply)


#: The hull points and PLY bytes of each asset, computed by the process that builds it and stored
#: with it (``AssetPool(store=..., extras=ASSET_MEMOS)``): every scene that uses an asset needs both.
ASSET_MEMOS = StoreExtras(compute=_asset_memos, restore=_remember_asset_memos)
