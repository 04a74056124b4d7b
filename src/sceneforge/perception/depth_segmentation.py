"""Instance masks from depth alone, for real RGB-D frames that come without masks.

A deliberately simple, documented procedure (no learned model):

1. Back-project the valid depth (camera frame).
2. Planes: RANSAC + SVD finds up to ``max_planes`` large planes (each holding at least
   ``min_plane_share`` of the valid points), largest first; the floor is the largest of them
   whose normal lies within ``max_floor_tilt_deg`` of the image-up direction. A plane's inliers
   are background where they form large regions (connected and depth-continuous, at least
   ``min_region_share`` of the image) that reach the border of the valid depth: the floor and
   walls run out of the view, while an object's face, or an object surface that happens to cross
   the infinite plane, stays.
3. Object pixels: valid depth, more than ``min_height_m`` above the floor, not background.
4. Connected components in image space, cut at depth discontinuities: two 4-neighbour object
   pixels are linked when their depths differ by at most ``edge_ratio`` of the nearer one.
5. Components under ``min_share`` of the image are dropped; components whose points come within
   ``merge_m`` of each other are merged (the parts of a chair that the cut separated).
6. Background pieces are dropped: components that reach above ``max_height_m`` or touch the top
   of the image (curtains, doors, walls: tall things, not objects standing in the room), and those
   with at least ``plane_share`` of their points on or behind a background plane (a piece of wall
   that an object cut off from the rest; the outside seen through a window). The rest, largest
   first, are the instances.
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
from sceneforge.perception.depth import UP_CAM
from sceneforge.types import Camera



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
                               min_plane_share: float = 0.08, min_region_share: float = 0.01,
                               max_floor_tilt_deg: float = 40.0, min_height_m: float = 0.03,
                               max_height_m: float = 1.6, edge_ratio: float = 0.03,
                               min_share: float = 0.004, merge_m: float = 0.06, plane_share: float = 0.6,
                               seed: int = 0) -> DepthSegmentation:
    """Depth (H, W) metres (0 = invalid) -> instance map by the procedure of the module docstring.

    Raises DepthError when the depth has too few valid pixels or no floor-like plane is found.
    """
    depth = np.asarray(depth, dtype=np.float32)
    valid = depth > 0
    if valid.sum() < 100:
        raise DepthError(None, f"only {int(valid.sum())} valid depth pixels: cannot segment objects")
    v, u = np.nonzero(valid)
    points = backproject_depth(camera, depth)  # (N, 3), in the order of (v, u)
    (r0, r1), (c0, c1) = (v.min(), v.max()), (u.min(), u.max())  # the image border, where depth is valid
    rng = np.random.default_rng(seed)
    threshold = max(0.01, 0.01 * float(np.median(points[:, 2])))
    on_plane = np.zeros(len(points), dtype=bool)  # background plane points
    explained = np.zeros(len(points), dtype=bool)  # inliers of a plane found so far
    floor = None
    planes = 0
    background_planes: list[tuple[np.ndarray, float]] = []
    for _ in range(max_planes):
        rest = np.flatnonzero(~explained)
        if len(rest) < 100:
            break
        hypotheses, counts = ransac_planes(points[rest], threshold, n_hypotheses=500, rng=rng)
        best = int(np.argmax(counts))
        if counts[best] / min(len(rest), 4000) * len(rest) < min_plane_share * len(points):
            break
        normal, offset = hypotheses[best, :3], float(hypotheses[best, 3])
        if offset < 0:  # normal towards the camera (origin)
            normal, offset = -normal, -offset
        fit = refine_plane(points[rest], normal, offset, threshold)
        explained[rest[fit.inliers]] = True
        inlier_image = np.zeros(depth.shape, dtype=bool)
        inlier_image[v[rest[fit.inliers]], u[rest[fit.inliers]]] = True
        regions = depth_components(depth, inlier_image, edge_ratio)
        sizes = np.bincount(regions.ravel())
        sizes[0] = 0
        border = np.zeros(len(sizes), dtype=bool)
        border[np.concatenate([regions[r0], regions[r1], regions[:, c0], regions[:, c1]])] = True
        background = (sizes >= min_region_share * depth.size) & border
        background[0] = False
        on_plane |= background[regions[v, u]]
        if background.any():
            background_planes.append((fit.normal, fit.offset))
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
    members = merge_touching([labels == k for k in big], [backproject_depth(camera, depth, labels == k) for k in big], merge_m)
    kept = []
    for member in members:
        rows = np.flatnonzero(member.any(axis=1))
        if (np.percentile(height[member], 95) > max_height_m or rows[0] <= r0 + 1
                or background_piece(backproject_depth(camera, depth, member), background_planes, threshold, plane_share)):
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


def background_piece(points: np.ndarray, planes: list[tuple[np.ndarray, float]], threshold: float,
                     share: float) -> bool:
    """True when at least ``share`` of the (N, 3) camera-frame points lie on one of the planes (within
    ``threshold``) or behind it (seen through a window); plane normals point towards the camera."""
    return any(np.mean(points @ normal + offset < threshold) >= share for normal, offset in planes)


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
