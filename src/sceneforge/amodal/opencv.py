"""Default amodal completion without weights: occluder-aware convex hull + OpenCV inpainting."""

from __future__ import annotations

import cv2
import numpy as np

from sceneforge.amodal.base import AmodalCompleter, AmodalResult
from sceneforge.registry import register


@register("amodal", "opencv")
class OpenCVAmodal(AmodalCompleter):
    """amodal mask = visible  U  (convex hull of visible  n  pixels of other objects lying in front).

    "In front": the occluder pixel's depth is below the object's median depth by ``margin_m``
    (without depth every other object inside the hull counts as an occluder).
    The occluded part of the colour crop is filled with ``cv2.inpaint`` (Telea) of ``radius`` px.
    """

    def __init__(self, *, margin_m: float = 0.02, radius: int = 5, method: str = "telea") -> None:
        if method not in ("telea", "ns"):
            raise ValueError(f"inpainting method must be 'telea' or 'ns', got {method!r}")
        self.margin_m = float(margin_m)
        self.radius = int(radius)
        self.method = method

    def complete(self, image: np.ndarray, instances: np.ndarray, object_id: int,
                 depth: np.ndarray | None) -> AmodalResult:
        visible = np.asarray(instances) == object_id
        amodal = visible | (convex_hull_mask(visible) & self._occluders(instances, object_id, visible, depth))
        v, u = np.nonzero(amodal)
        if len(v) == 0:
            H, W = visible.shape
            return AmodalResult(amodal, np.zeros((0, 0, 3), np.uint8), (0, 0, 0, 0), 0.0)
        u0, v0, u1, v1 = int(u.min()), int(v.min()), int(u.max()) + 1, int(v.max()) + 1
        crop = np.ascontiguousarray(np.asarray(image)[v0:v1, u0:u1])
        hidden = (amodal & ~visible)[v0:v1, u0:u1]
        if hidden.any():
            flag = cv2.INPAINT_TELEA if self.method == "telea" else cv2.INPAINT_NS
            crop = cv2.inpaint(crop, hidden.astype(np.uint8), self.radius, flag)
        occluded = float(hidden.sum()) / float(amodal.sum())
        return AmodalResult(amodal, crop, (u0, v0, u1, v1), occluded)

    def _occluders(self, instances: np.ndarray, object_id: int, visible: np.ndarray,
                   depth: np.ndarray | None) -> np.ndarray:
        others = (np.asarray(instances) > 0) & ~visible
        if depth is None:
            return others
        object_depth = depth[visible & (depth > 0)]
        if object_depth.size == 0:
            return others
        reference = float(np.median(object_depth))
        return others & (depth > 0) & (depth < reference - self.margin_m)


def convex_hull_mask(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool filled convex hull of the True pixels (empty in, empty out)."""
    v, u = np.nonzero(mask)
    out = np.zeros(mask.shape, dtype=np.uint8)
    if len(v) == 0:
        return out.astype(bool)
    hull = cv2.convexHull(np.stack([u, v], axis=1).astype(np.int32))
    cv2.fillConvexPoly(out, hull, 1)
    return out.astype(bool)
