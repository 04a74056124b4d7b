"""OpenCV pinhole intrinsics as an OpenGL projection matrix, pixel-exact.

The rasteriser draws directly in the OpenCV camera frame (x right, y down, z forward) and keeps
image row v in framebuffer row v (no flip on read-back). OpenCV puts integer pixel coordinates at
pixel centres while GL puts pixel centres at half-integer window coordinates, so pixel u of the
image is window x = u + 0.5:

    ndc_x = 2 (fx X / Z + cx + 0.5) / W - 1,    ndc_y = 2 (fy Y / Z + cy + 0.5) / H - 1,
    ndc_z = (f + n) / (f - n) - 2 f n / ((f - n) Z),   clip w = Z.
"""

from __future__ import annotations

import numpy as np

from sceneforge.types import Camera


def gl_projection_from_camera(camera: Camera, near: float, far: float) -> np.ndarray:
    """(4, 4) float64 matrix mapping OpenCV camera-frame points to GL clip coordinates.

    near, far : clip distances along z, metres, 0 < near < far.
    """
    if not 0.0 < near < far:
        raise ValueError(f"need 0 < near < far, got near={near}, far={far}")
    W, H = camera.width, camera.height
    P = np.zeros((4, 4))
    P[0, 0] = 2.0 * camera.fx / W
    P[0, 1] = 2.0 * camera.K[0, 1] / W
    P[0, 2] = 2.0 * (camera.cx + 0.5) / W - 1.0
    P[1, 1] = 2.0 * camera.fy / H
    P[1, 2] = 2.0 * (camera.cy + 0.5) / H - 1.0
    P[2, 2] = (far + near) / (far - near)
    P[2, 3] = -2.0 * far * near / (far - near)
    P[3, 2] = 1.0
    return P


def pixel_from_clip(camera: Camera, P: np.ndarray, points_cam: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame points -> (N, 2) OpenCV pixel coordinates through ``P`` (for checks)."""
    h = np.concatenate([np.asarray(points_cam, dtype=np.float64), np.ones((len(points_cam), 1))], axis=1)
    clip = h @ P.T
    ndc = clip[:, :2] / clip[:, 3:4]
    return (ndc + 1.0) * 0.5 * np.array([camera.width, camera.height]) - 0.5
