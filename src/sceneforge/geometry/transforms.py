"""4x4 column-vector transforms ``T_a_b`` (frame b -> frame a) and rotations."""

from __future__ import annotations

import numpy as np


def make_transform(R: np.ndarray | None = None, t: np.ndarray | None = None) -> np.ndarray:
    """(3, 3) rotation and (3,) translation -> (4, 4) float64 rigid transform."""
    T = np.eye(4)
    if R is not None:
        T[:3, :3] = R
    if t is not None:
        T[:3, 3] = t
    return T


def transform_points(T_a_b: np.ndarray, points_b: np.ndarray) -> np.ndarray:
    """points_b : (N, 3) in frame b -> (N, 3) float64 in frame a."""
    points_b = np.asarray(points_b, dtype=np.float64)
    return points_b @ T_a_b[:3, :3].T + T_a_b[:3, 3]


def invert_transform(T_a_b: np.ndarray) -> np.ndarray:
    """Inverse of an affine (4, 4) transform: returns T_b_a. Exact for rigid ones."""
    T_a_b = np.asarray(T_a_b, dtype=np.float64)
    A_inv = np.linalg.inv(T_a_b[:3, :3])
    return make_transform(A_inv, -A_inv @ T_a_b[:3, 3])


def cross3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.cross`` of (..., 3) arrays (broadcast): the same products and differences, so the same
    values, without its general-shape overhead (~15 us a call on small arrays)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape == b.shape == (3,) and a.dtype == b.dtype == np.float64:  # two vectors: Python floats are
        (a0, a1, a2), (b0, b1, b2) = a.tolist(), b.tolist()  # float64 too, and ~5x faster than 0-d arrays
        return np.array([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0])
    return np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1], a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                     a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1)


def rotation_about_axis(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """(3, 3) right-handed rotation by ``angle_rad`` about ``axis`` (Rodrigues)."""
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * K + (1.0 - np.cos(angle_rad)) * (K @ K)


def rotation_y(yaw_rad: float) -> np.ndarray:
    """(3, 3) rotation about the world up axis (+y) by ``yaw_rad``; +z turns towards +x."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def project_to_so3(M: np.ndarray) -> np.ndarray:
    """Nearest rotation (Frobenius) to a (3, 3) matrix, never a reflection."""
    U, _, Vt = np.linalg.svd(np.asarray(M, dtype=np.float64))
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt)) or 1.0])
    return U @ D @ Vt
