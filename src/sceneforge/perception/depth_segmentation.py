"""Instance masks from depth alone, for real RGB-D frames that come without masks.

A deliberately simple, documented procedure (no learned model):

1. Back-project the valid depth (camera frame).
2. Planes: RANSAC + SVD finds up to ``max_planes`` large planes (each holding at least
   ``min_plane_share`` of the remaining points), largest first; the floor is the largest of them
   whose normal lies within ``max_floor_tilt_deg`` of the image-up direction; every large plane
   (floor, walls, table tops seen edge-on) is background where its inliers form large regions
   (connected and depth-continuous, at least ``min_region_share`` of the image): an object surface
   that happens to cross the infinite plane stays.
3. Object pixels: valid depth, more than ``min_height_m`` above the floor, off every large plane.
4. Connected components in image space, cut at depth discontinuities: two 4-neighbour object
   pixels are linked when their depths differ by at most ``edge_ratio`` of the nearer one.
5. Components under ``min_share`` of the image are dropped; components whose points come within
   ``merge_m`` of each other are merged (the parts of a chair that the cut separated).
6. Background pieces are dropped: components that reach above ``max_height_m`` or touch the top
   of the image (curtains, doors, walls: tall things, not objects standing in the room), and flat
   ones (at least ``flat_share`` of their points within 1 cm of one plane: window panes, pictures).
   The rest, largest first, are the instances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from sceneforge.errors import DepthError
from sceneforge.geometry import backproject_depth
from sceneforge.geometry.planes import ransac_planes, refine_plane
from sceneforge.types import Camera

UP_CAM = np.array([0.0, -1.0, 0.0])


@dataclass(frozen=True, eq=False)
class DepthSegmentation:
    """instances : (H, W) int32, 0 = background, 1..K by decreasing size.
    floor : (normal (3,), offset) of the floor in the camera frame (normal towards the camera).
    planes : number of large planes removed (floor included)."""

    instances: np.ndarray
    floor_normal_cam: np.ndarray
    floor_offset_cam: float
    planes: int


def segment_objects_from_depth(camera: Camera, depth: np.ndarray, *, max_planes: int = 4,
                               min_plane_share: float = 0.08, min_region_share: float = 0.01, max_floor_tilt_deg: float = 40.0,
                               min_height_m: float = 0.03, max_height_m: float = 1.6, edge_ratio: float = 0.03,
                               min_share: float = 0.004, merge_m: float = 0.06, flat_share: float = 0.8,
                               seed: int = 0) -> DepthSegmentation:
    """Depth (H, W) metres (0 = invalid) -> instance map by the procedure of the module docstring.

    Raises DepthError when the depth has too few valid pixels or no floor-like plane is found.
    """
    depth = np.asarray(depth, dtype=np.float32)
    valid = depth > 0
    if valid.sum() < 100:
        raise DepthError(None, f"only {int(valid.sum())} valid depth pixels: cannot segment objects")
    v, u = np.nonzero(valid)
    z = depth[v, u].astype(np.float64)
    points = np.stack([(u - camera.cx) * z / camera.fx, (v - camera.cy) * z / camera.fy, z], axis=1)
    rng = np.random.default_rng(seed)
    threshold = max(0.01, 0.01 * float(np.median(z)))
    on_plane = np.zeros(len(points), dtype=bool)
    floor = None
    planes = 0
    for _ in range(max_planes):
        rest = np.flatnonzero(~on_plane)
        if len(rest) < 100:
            break
        hypotheses, counts = ransac_planes(points[rest], threshold, n_hypotheses=500, rng=rng)
        best = int(np.argmax(counts))
        if counts[best] < min_plane_share * min(len(rest), 4000):
            break
        normal, offset = hypotheses[best, :3], float(hypotheses[best, 3])
        if offset < 0:  # normal towards the camera (origin)
            normal, offset = -normal, -offset
        fit = refine_plane(points[rest], normal, offset, threshold)
        inlier_image = np.zeros(depth.shape, dtype=bool)
        inlier_image[v[rest[fit.inliers]], u[rest[fit.inliers]]] = True
        regions = depth_components(depth, inlier_image, edge_ratio)
        sizes = np.bincount(regions.ravel())
        sizes[0] = 0
        large = sizes >= min_region_share * depth.size
        on_plane |= large[regions[v, u]]
        planes += 1
        if floor is None and fit.normal @ UP_CAM >= np.cos(np.radians(max_floor_tilt_deg)):
            floor = (fit.normal, fit.offset)
    if floor is None:
        raise DepthError(None, f"no floor-like plane (within {max_floor_tilt_deg:g} deg of image-up) among the "
                               f"{planes} large planes of the depth: cannot segment objects")
    height = np.zeros(depth.shape)
    height[v, u] = points @ floor[0] + floor[1]
    candidate = np.zeros(depth.shape, dtype=bool)
    candidate[v[~on_plane], u[~on_plane]] = True
    candidate &= height > min_height_m
    labels = depth_components(depth, candidate, edge_ratio)
    areas = np.bincount(labels.ravel())
    big = [int(k) for k in np.flatnonzero(areas >= min_share * depth.size) if k != 0]
    members = merge_touching([labels == k for k in big], [points_of(camera, depth, labels == k) for k in big], merge_m)
    top_row = int(np.flatnonzero(valid.any(axis=1))[0])
    kept = []
    for member in members:
        rows = np.flatnonzero(member.any(axis=1))
        if (np.percentile(height[member], 95) > max_height_m or rows[0] <= top_row + 1
                or is_flat(points_of(camera, depth, member), flat_share)):
            continue
        kept.append(member)
    instances = np.zeros(depth.shape, dtype=np.int32)
    for new_id, member in enumerate(sorted(kept, key=lambda m: -int(m.sum())), start=1):
        instances[member] = new_id
    return DepthSegmentation(instances, np.asarray(floor[0]), float(floor[1]), planes)


def merge_touching(masks: list[np.ndarray], points: list[np.ndarray], distance_m: float) -> list[np.ndarray]:
    """Union of the masks whose (N_i, 3) point sets come within ``distance_m`` of each other."""
    rng = np.random.default_rng(0)
    sampled = [p if len(p) <= 3000 else p[rng.choice(len(p), 3000, replace=False)] for p in points]
    trees = [cKDTree(p) for p in sampled]
    parent = list(range(len(masks)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            if root(i) != root(j) and np.min(trees[j].query(sampled[i], k=1)[0]) < distance_m:
                parent[root(j)] = root(i)
    groups: dict[int, np.ndarray] = {}
    for i, mask in enumerate(masks):
        groups[root(i)] = groups[root(i)] | mask if root(i) in groups else mask.copy()
    return list(groups.values())


def points_of(camera: Camera, depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame points of the masked pixels."""
    return backproject_depth(camera, depth, mask)


def is_flat(points: np.ndarray, share: float, threshold: float = 0.01) -> bool:
    """True when at least ``share`` of the (N, 3) points lie within ``threshold`` metres of one plane."""
    if len(points) < 10:
        return True
    planes, counts = ransac_planes(points, threshold, n_hypotheses=200, rng=np.random.default_rng(0))
    return bool(counts.max() >= share * min(len(points), 4000))


def depth_components(depth: np.ndarray, mask: np.ndarray, edge_ratio: float) -> np.ndarray:
    """(H, W) int labels of the 4-connected components of ``mask`` whose neighbouring pixels differ in
    depth by at most ``edge_ratio`` of the nearer depth; 0 outside the mask, 1..K inside."""
    H, W = depth.shape
    index = np.arange(H * W).reshape(H, W)
    rows, cols = [], []
    for a, b, da, db in ((index[:, :-1], index[:, 1:], depth[:, :-1], depth[:, 1:]),
                         (index[:-1, :], index[1:, :], depth[:-1, :], depth[1:, :])):
        ma = mask.ravel()[a.ravel()] & mask.ravel()[b.ravel()]
        close = np.abs(da - db).ravel() <= edge_ratio * np.minimum(da, db).ravel()
        link = ma & close
        rows.append(a.ravel()[link])
        cols.append(b.ravel()[link])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(H * W, H * W))
    _, component = connected_components(graph, directed=False)
    labels = np.zeros(H * W, dtype=np.int64)
    inside = mask.ravel()
    _, dense = np.unique(component[inside], return_inverse=True)
    labels[inside] = dense + 1
    return labels.reshape(H, W)
