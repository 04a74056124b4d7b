"""Pinhole projection and depth back-projection in the OpenCV camera frame.

Pixel convention (OpenCV): integer pixel coordinates (u, v) are pixel centres, so the image centre
is ((W - 1) / 2, (H - 1) / 2) and pixel (u, v) of an array is ``array[v, u]``.
"""

from __future__ import annotations

import numpy as np

from sceneforge.types import Camera


def backproject_depth(camera: Camera, depth: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Lift depth pixels to 3D camera-frame points.

    depth : (H, W) metres along z, 0 = invalid.  mask : (H, W) bool, optional extra selection.
    Returns (N, 3) float64 points in the camera frame, in row-major pixel order.
    """
    valid = depth > 0
    if mask is not None:
        valid &= mask
    v, u = np.nonzero(valid)
    z = depth[v, u].astype(np.float64)
    x = (u - camera.cx) * z / camera.fx
    y = (v - camera.cy) * z / camera.fy
    return np.stack([x, y, z], axis=1)


def project_points(camera: Camera, points_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """points_cam : (N, 3) camera frame -> ((N, 2) pixel coordinates (u, v), (N,) depth z)."""
    points_cam = np.asarray(points_cam, dtype=np.float64)
    z = points_cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = camera.fx * points_cam[:, 0] / z + camera.cx
        v = camera.fy * points_cam[:, 1] / z + camera.cy
    return np.stack([u, v], axis=1), z
