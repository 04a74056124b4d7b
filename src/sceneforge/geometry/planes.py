"""Plane fitting: least squares by SVD and vectorised RANSAC."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class PlaneFit:
    """A fitted plane ``normal . x + offset = 0`` with its support.

    normal : (3,) unit.  offset : metres.  inliers : (N,) bool over the input points.
    """

    normal: np.ndarray
    offset: float
    inliers: np.ndarray

    @property
    def inlier_count(self) -> int:
        return int(self.inliers.sum())


def floor_axes(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(e1, e2), (3,) each: orthonormal directions in the plane of the unit ``normal`` (3,)."""
    n = np.asarray(normal, dtype=np.float64)
    helper = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    e1 = helper - (helper @ n) * n
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(n, e1)


def fit_plane_svd(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares plane through (N >= 3, 3) points -> (unit normal (3,), offset)."""
    points = np.asarray(points, dtype=np.float64)
    centroid = points.mean(axis=0)
    _, _, Vt = np.linalg.svd(points - centroid, full_matrices=False)
    normal = Vt[-1]
    return normal, -float(normal @ centroid)


def ransac_planes(points: np.ndarray, threshold: float, n_hypotheses: int = 400,
                  rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Score ``n_hypotheses`` random 3-point planes at once.

    points : (N, 3) metres; threshold : inlier distance, metres.
    Returns ``(planes (M, 4), counts (M,))``: each row ``[nx, ny, nz, offset]`` with a unit normal
    (degenerate samples dropped) and its number of inliers on a subsample of at most 4000 points.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    points = np.asarray(points, dtype=np.float64)
    idx = rng.integers(0, len(points), size=(n_hypotheses, 3))
    p0, p1, p2 = points[idx[:, 0]], points[idx[:, 1]], points[idx[:, 2]]
    normals = np.cross(p1 - p0, p2 - p0)
    norms = np.linalg.norm(normals, axis=1)
    keep = norms > 1e-12
    normals = normals[keep] / norms[keep, None]
    offsets = -np.einsum("ij,ij->i", normals, p0[keep])
    # evaluate on a subsample to keep the (M, N) distance matrix small
    sample = points if len(points) <= 4000 else points[rng.choice(len(points), 4000, replace=False)]
    distances = np.abs(sample @ normals.T + offsets[None, :])
    counts = (distances < threshold).sum(axis=0)
    return np.concatenate([normals, offsets[:, None]], axis=1), counts


def refine_plane(points: np.ndarray, normal: np.ndarray, offset: float, threshold: float,
                 iterations: int = 3) -> PlaneFit:
    """Re-fit a plane by SVD on its inliers a few times; the normal keeps its sign."""
    points = np.asarray(points, dtype=np.float64)
    normal = np.asarray(normal, dtype=np.float64)
    for _ in range(iterations):
        inliers = np.abs(points @ normal + offset) < threshold
        if inliers.sum() < 3:
            break
        new_normal, new_offset = fit_plane_svd(points[inliers])
        if new_normal @ normal < 0:
            new_normal, new_offset = -new_normal, -new_offset
        normal, offset = new_normal, new_offset
    inliers = np.abs(points @ normal + offset) < threshold
    return PlaneFit(normal, float(offset), inliers)
