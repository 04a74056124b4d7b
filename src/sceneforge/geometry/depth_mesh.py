"""Triangulated depth grids: a mesh from a depth map, cut where depth jumps."""

from __future__ import annotations

import numpy as np
import trimesh

from sceneforge.types import Camera


def depth_edge_mask(depth: np.ndarray, ratio: float = 0.05) -> np.ndarray:
    """(H, W) bool, True at pixels whose 3x3 neighbourhood spans a relative depth jump > ``ratio``.

    depth : (H, W) metres, 0 = invalid (invalid neighbours are ignored). Such pixels are the
    "flying pixels" of RGB-D sensors and the silhouettes of renders; back-projecting them smears
    points between foreground and background.
    """
    d = np.asarray(depth, dtype=np.float64)
    padded_max = np.pad(d, 1, mode="edge")
    padded_min = np.pad(np.where(d > 0, d, np.inf), 1, mode="edge")
    H, W = d.shape
    local_max = np.zeros_like(d)
    local_min = np.full_like(d, np.inf)
    for dy in range(3):
        for dx in range(3):
            local_max = np.maximum(local_max, padded_max[dy:dy + H, dx:dx + W])
            local_min = np.minimum(local_min, padded_min[dy:dy + H, dx:dx + W])
    with np.errstate(invalid="ignore", divide="ignore"):
        jump = local_max / local_min > 1.0 + ratio
    return jump & (d > 0)


def depth_grid_mesh(camera: Camera, depth: np.ndarray, mask: np.ndarray, stride: int = 2,
                    max_ratio: float = 0.05, image: np.ndarray | None = None) -> trimesh.Trimesh | None:
    """Triangulate the pixels of ``mask`` with valid depth on a grid of step ``stride``.

    Each grid cell gives two triangles, kept when all three corners are valid and the triangle's
    max(z) / min(z) <= 1 + max_ratio (no triangle bridges a depth discontinuity).
    Vertices are camera-frame points (metres); ``image`` (H, W, 3) uint8 gives vertex colours.
    Returns None when no triangle survives.
    """
    depth = np.asarray(depth)
    z = depth[::stride, ::stride].astype(np.float64)
    valid = (z > 0) & np.asarray(mask)[::stride, ::stride]
    h, w = z.shape
    if h < 2 or w < 2:
        return None
    vs, us = np.meshgrid(np.arange(h) * stride, np.arange(w) * stride, indexing="ij")
    index = np.arange(h * w).reshape(h, w)
    a, b = index[:-1, :-1].ravel(), index[:-1, 1:].ravel()
    c, d = index[1:, :-1].ravel(), index[1:, 1:].ravel()
    faces = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])
    zf = z.ravel()[faces]
    ok = valid.ravel()[faces].all(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok &= zf.max(axis=1) <= (1.0 + max_ratio) * zf.min(axis=1)
    faces = faces[ok]
    if len(faces) == 0:
        return None
    used = np.unique(faces)
    remap = np.full(h * w, -1)
    remap[used] = np.arange(len(used))
    zu = zf_vertices = z.ravel()[used]
    x = (us.ravel()[used] - camera.cx) * zu / camera.fx
    y = (vs.ravel()[used] - camera.cy) * zu / camera.fy
    vertices = np.stack([x, y, zf_vertices], axis=1)
    colors = None
    if image is not None:
        rgb = np.asarray(image)[vs.ravel()[used], us.ravel()[used]]
        colors = np.concatenate([rgb, np.full((len(used), 1), 255, np.uint8)], axis=1)
    return trimesh.Trimesh(vertices, remap[faces], vertex_colors=colors, process=False)
