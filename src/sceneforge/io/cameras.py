"""Camera intrinsics files, in the three layouts met in practice.

1. ``{"fx", "fy", "cx", "cy", "width", "height"}`` (ours; optional ``T_world_cam`` 4x4);
2. ``{"K": 3x3 or 9 row-major values, "width", "height"}`` (also ROS CameraInfo JSON);
3. Open3D's ``camera_primesense.json``: ``{"width", "height", "intrinsic_matrix": 9 column-major}``.

A missing width/height is taken from the image; a size that disagrees with the image is an error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sceneforge.errors import CameraError
from sceneforge.io.atomic import write_text_atomic
from sceneforge.types import Camera


def read_camera(path: str | Path, image_size: tuple[int, int] | None = None) -> Camera:
    """Read intrinsics; ``image_size`` (W, H) fills a missing size and is checked against a given one."""
    path = Path(path)
    if not path.is_file():
        raise CameraError(path, "camera file not found")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CameraError(path, f"not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise CameraError(path, "expected a JSON object with fx/fy/cx/cy, K, or intrinsic_matrix")
    try:
        K = _intrinsics(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise CameraError(path, f"cannot read intrinsics ({exc}); expected fx/fy/cx/cy, K (3x3), or "
                                "Open3D's intrinsic_matrix") from exc
    width, height = doc.get("width"), doc.get("height")
    if width is None or height is None:
        if image_size is None:
            raise CameraError(path, "camera has no width/height and no image to take them from")
        width, height = image_size
    if image_size is not None and (int(width), int(height)) != tuple(image_size):
        raise CameraError(path, f"camera is {int(width)}x{int(height)} but the image is "
                                f"{image_size[0]}x{image_size[1]}")
    T = doc.get("T_world_cam")
    try:
        return Camera(K, int(width), int(height), np.eye(4) if T is None else np.asarray(T, dtype=np.float64))
    except CameraError as exc:
        raise CameraError(path, exc.problem) from exc
    except ValueError as exc:
        raise CameraError(path, str(exc)) from exc


def _intrinsics(doc: dict[str, Any]) -> np.ndarray:
    if "intrinsic_matrix" in doc:  # Open3D: column-major
        return np.asarray(doc["intrinsic_matrix"], dtype=np.float64).reshape(3, 3).T
    if "K" in doc:
        return np.asarray(doc["K"], dtype=np.float64).reshape(3, 3)
    fx, fy = float(doc["fx"]), float(doc["fy"])
    return np.array([[fx, 0.0, float(doc["cx"])], [0.0, fy, float(doc["cy"])], [0.0, 0.0, 1.0]])


def write_camera(path: str | Path, camera: Camera) -> None:
    """Write layout 1 (fx fy cx cy width height T_world_cam) atomically."""
    write_text_atomic(path, json.dumps(camera.to_dict(), indent=2) + "\n")
