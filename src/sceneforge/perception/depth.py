"""Default perception from a depth map: no model weights.

Back-projects the depth with the given camera (or a 60 degree default, reported as an assumption),
removes flying pixels at depth edges, erodes every instance mask, filters each object's depth
robustly (median / MAD), fits the floor by RANSAC + SVD on the background (or on the pixels of an
instance labelled "floor"), chooses the world frame from the floor and triangulates the background.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sceneforge.errors import DepthError, InputError, MaskError
from sceneforge.geometry import backproject_depth, invert_transform, transform_points
from sceneforge.geometry.depth_mesh import depth_edge_mask, depth_grid_mesh
from sceneforge.geometry.planes import ransac_planes, refine_plane
from sceneforge.perception.base import ObjectObservation, Perception, PerceptionResult
from sceneforge.registry import register
from sceneforge.types import Camera, Plane, SceneInput

FLOOR_LABELS = ("floor", "ground")
UP_CAM = np.array([0.0, -1.0, 0.0])  # image-up direction in the OpenCV camera frame


@dataclass(frozen=True)
class FloorEstimate:
    """Floor plane in the camera frame (normal towards the camera side) and how it was found."""

    normal_cam: np.ndarray
    offset_cam: float
    method: str
    warning: str | None = None
    support: int = 0


@register("perception", "depth")
class DepthPerception(Perception):
    """Perception from the input depth map.

    erode_px : mask erosion before back-projection (pixels).
    edge_ratio : relative depth jump that marks a flying pixel / cuts a background triangle.
    mad_k : keep object depths within mad_k robust sigmas of the median.
    min_points : an object with fewer kept points is skipped with a warning.
    hfov_deg : horizontal field of view of the default camera when none is given.
    background_stride : grid step of the background mesh (pixels).
    max_floor_tilt_deg : a floor candidate's normal lies within this angle of the image-up direction.
    upright_support_ratio : such a candidate is taken unless the largest background plane has more
        than 1 / ratio times its support (then the largest plane is the floor).
    """

    def __init__(self, *, erode_px: int = 2, edge_ratio: float = 0.05, mad_k: float = 4.0,
                 min_points: int = 30, hfov_deg: float = 60.0, background_stride: int = 4,
                 max_floor_tilt_deg: float = 50.0, upright_support_ratio: float = 0.5, seed: int = 0) -> None:
        self.upright_support_ratio = float(upright_support_ratio)
        self.erode_px = int(erode_px)
        self.edge_ratio = float(edge_ratio)
        self.mad_k = float(mad_k)
        self.min_points = int(min_points)
        self.hfov_deg = float(hfov_deg)
        self.background_stride = int(background_stride)
        self.max_floor_tilt_deg = float(max_floor_tilt_deg)
        self.seed = int(seed)

    def perceive(self, scene_input: SceneInput) -> PerceptionResult:
        source = scene_input.source
        if scene_input.depth is None:
            raise DepthError(source, "no depth map given: the 'depth' perception needs one (--depth); "
                                     "a depth-estimation model can provide it")
        if scene_input.instances is None:
            raise MaskError(source, "no instance masks given: reconstruction needs one mask per object (--seg)")
        assumptions: list[str] = []
        warnings: list[str] = list(scene_input.warnings)
        camera = self._camera(scene_input, assumptions, warnings)

        floor_ids = [i for i, name in scene_input.labels.items() if name.lower() in FLOOR_LABELS]
        instances = np.asarray(scene_input.instances)
        depth = np.asarray(scene_input.depth, dtype=np.float32)
        edges = depth_edge_mask(depth, self.edge_ratio)
        clean = np.where(edges, 0.0, depth).astype(np.float32)

        object_ids = [int(i) for i in scene_input.ids if int(i) not in floor_ids]
        kept_cam: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        skipped: dict[int, str] = {}
        for object_id in object_ids:
            result = self._object_points(camera, clean, instances == object_id)
            if isinstance(result, str):
                skipped[object_id] = result
                warnings.append(f"object {object_id} skipped: {result}")
            else:
                kept_cam[object_id] = result

        floor_mask = np.isin(instances, floor_ids) if floor_ids else None
        background_mask = (instances == 0) | (floor_mask if floor_mask is not None else False)
        object_points_cam = (np.concatenate([p for _, p in kept_cam.values()])
                             if kept_cam else np.zeros((0, 3)))
        floor = self._floor(camera, clean, background_mask, floor_mask, object_points_cam)
        if floor.warning:
            warnings.append(floor.warning)
        assumptions.append(f"floor: {floor.method}")
        T_world_cam = world_frame_from_floor(floor.normal_cam, floor.offset_cam)
        camera = camera.with_pose(T_world_cam)

        observations = tuple(
            ObjectObservation(id=i, label=scene_input.labels.get(i, "object"), mask=instances == i,
                              pixels=pix, points_world=transform_points(T_world_cam, pts))
            for i, (pix, pts) in kept_cam.items())
        background = depth_grid_mesh(camera, clean, background_mask, stride=self.background_stride,
                                     max_ratio=self.edge_ratio, image=scene_input.image)
        if background is not None:
            background.apply_transform(T_world_cam)
        else:
            warnings.append("no background mesh: no background pixel with valid depth")
        return PerceptionResult(camera=camera, floor=Plane(np.array([0.0, 1.0, 0.0]), 0.0), depth=clean,
                                instances=instances, image=np.asarray(scene_input.image), objects=observations,
                                background=background, skipped=skipped, assumptions=tuple(assumptions),
                                warnings=tuple(warnings))

    # ------------------------------------------------------------------ camera
    def _camera(self, scene_input: SceneInput, assumptions: list[str], warnings: list[str]) -> Camera:
        W, H = scene_input.width, scene_input.height
        camera = scene_input.camera
        if camera is None:
            assumptions.append(f"camera: none given; default pinhole with {self.hfov_deg:g} deg horizontal "
                               f"field of view, principal point at the image centre")
            return Camera.from_fov(W, H, self.hfov_deg)
        if not (-0.25 * W <= camera.cx <= 1.25 * W and -0.25 * H <= camera.cy <= 1.25 * H):
            raise InputError(scene_input.source, f"camera principal point ({camera.cx:g}, {camera.cy:g}) lies far "
                                                 f"outside the {W}x{H} image: the camera does not match the image")
        if not 10.0 <= camera.hfov_deg <= 150.0:
            warnings.append(f"camera horizontal field of view is {camera.hfov_deg:.1f} deg, unusual for a "
                            f"{W}x{H} image; check that the intrinsics belong to this image")
        if abs(camera.fx / camera.fy - 1.0) > 0.2:
            warnings.append(f"camera pixels are far from square (fx={camera.fx:g}, fy={camera.fy:g})")
        return camera

    # ----------------------------------------------------------------- objects
    def _object_points(self, camera: Camera, depth: np.ndarray,
                       mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | str:
        """(pixels (N, 2) (v, u), points (N, 3) camera frame), or the reason the object is skipped."""
        eroded = erode_mask(mask, self.erode_px)
        if not eroded.any():
            return f"mask ({int(mask.sum())} px) is empty after {self.erode_px} px erosion"
        valid = eroded & (depth > 0)
        if not valid.any():
            return "no valid depth inside the mask"
        v, u = np.nonzero(valid)
        z = depth[v, u].astype(np.float64)
        median = float(np.median(z))
        mad = float(np.median(np.abs(z - median)))
        keep = np.abs(z - median) <= max(self.mad_k * 1.4826 * mad, 0.02 * median)
        v, u = v[keep], u[keep]
        if len(v) < self.min_points:
            return f"only {len(v)} points with valid depth (need {self.min_points})"
        select = np.zeros_like(mask)
        select[v, u] = True
        points = backproject_depth(camera, depth, select)
        return np.stack([v, u], axis=1), points

    # ------------------------------------------------------------------- floor
    def _floor(self, camera: Camera, depth: np.ndarray, background_mask: np.ndarray,
               floor_mask: np.ndarray | None, object_points: np.ndarray) -> FloorEstimate:
        rng = np.random.default_rng(self.seed)
        if floor_mask is not None and np.count_nonzero(floor_mask & (depth > 0)) >= 3:
            points = backproject_depth(camera, depth, floor_mask)
            estimate = self._ransac_floor(points, object_points, rng, require_up=False)
            if estimate is not None:
                return FloorEstimate(estimate.normal_cam, estimate.offset_cam, "fitted to the given floor mask")
        points = backproject_depth(camera, depth, background_mask)
        if len(points) >= 50:
            estimate = self._dominant_floor(points, object_points, rng)
            if estimate is not None:
                return estimate
        return self._fallback_floor(points, object_points)

    def _dominant_floor(self, points: np.ndarray, object_points: np.ndarray,
                        rng: np.random.Generator) -> FloorEstimate | None:
        """The floor among the background planes: the largest plane near the image-up direction,
        unless a plane at least twice its support exists (a camera looking down into a bin or at
        a table top), then that one; None when no plane qualifies."""
        upright = self._ransac_floor(points, object_points, rng, require_up=True)
        largest = self._ransac_floor(points, object_points, rng, require_up=False)
        if upright is not None and (largest is None or upright.support >= self.upright_support_ratio * largest.support):
            return upright
        if largest is None:
            return None
        tilt = float(np.degrees(np.arccos(np.clip(largest.normal_cam @ UP_CAM, -1.0, 1.0))))
        warning = None
        if tilt > self.max_floor_tilt_deg:
            warning = (f"floor normal is {tilt:.0f} deg from the image-up direction (camera looking down); the "
                       f"largest background plane was taken as the floor")
        return FloorEstimate(largest.normal_cam, largest.offset_cam,
                             f"largest background plane ({largest.method}), {tilt:.0f} deg from image-up",
                             warning, largest.support)

    def _ransac_floor(self, points: np.ndarray, object_points: np.ndarray, rng: np.random.Generator,
                      require_up: bool) -> FloorEstimate | None:
        if len(points) < 3:
            return None
        median_depth = float(np.median(points[:, 2]))
        threshold = max(0.01, 0.01 * median_depth)
        planes, counts = ransac_planes(points, threshold, n_hypotheses=500, rng=rng)
        normals, offsets = planes[:, :3].copy(), planes[:, 3].copy()
        flip = offsets < 0  # the camera centre (origin) must lie on the normal's side
        normals[flip] *= -1
        offsets[flip] *= -1
        eligible = np.ones(len(normals), dtype=bool)
        if require_up:
            eligible &= normals @ UP_CAM >= np.cos(np.radians(self.max_floor_tilt_deg))
        min_support = 0.08 * min(len(points), 4000) if require_up else 0.2 * min(len(points), 4000)
        eligible &= counts >= max(30, min_support)
        for k in np.argsort(-counts):
            if not eligible[k]:
                continue
            if len(object_points):
                above = np.mean(object_points @ normals[k] + offsets[k] > -threshold)
                if above < 0.5:  # most objects below it: a ceiling or a table top, not the floor
                    continue
            fit = refine_plane(points, normals[k], offsets[k], threshold)
            method = f"RANSAC + SVD on {fit.inlier_count} background points"
            return FloorEstimate(fit.normal, fit.offset, method, support=fit.inlier_count)
        return None

    def _fallback_floor(self, points: np.ndarray, object_points: np.ndarray) -> FloorEstimate:
        everything = np.concatenate([points, object_points]) if len(points) else object_points
        lowest = float(np.percentile(everything[:, 1], 99)) if len(everything) else 1.0
        return FloorEstimate(UP_CAM.copy(), lowest, "assumed horizontal through the lowest observed point",
                             "no floor plane found in the background; assumed a level camera and a floor "
                             "through the lowest observed point")


def erode_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """(H, W) bool mask eroded by ``pixels`` (a (2p+1)^2 elliptical kernel); 0 returns a copy."""
    if pixels <= 0:
        return np.asarray(mask, dtype=bool).copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.erode(np.asarray(mask, dtype=np.uint8), kernel).astype(bool)


def world_frame_from_floor(normal_cam: np.ndarray, offset_cam: float) -> np.ndarray:
    """T_world_cam (4, 4) of the reconstructed world frame.

    y_w = floor normal (towards the camera side); z_w = minus the horizontal part of the camera's
    forward axis (when the camera looks straight down, minus the image-up direction, the limit
    of a camera tilting down); x_w = y_w x z_w;
    origin = foot of the camera centre on the floor. normal_cam, offset_cam: the floor
    ``n . x + d = 0`` in the camera frame with d > 0.
    """
    y_w = np.asarray(normal_cam, dtype=np.float64)
    y_w = y_w / np.linalg.norm(y_w)
    forward = np.array([0.0, 0.0, 1.0])
    horizontal = forward - (forward @ y_w) * y_w
    if np.linalg.norm(horizontal) < 1e-3:
        horizontal = UP_CAM - (UP_CAM @ y_w) * y_w  # image-up: the continuous limit of a tilted camera
    z_w = -horizontal / np.linalg.norm(horizontal)
    x_w = np.cross(y_w, z_w)
    R_cam_world = np.stack([x_w, y_w, z_w], axis=1)  # columns: world axes in camera coordinates
    T_cam_world = np.eye(4)
    T_cam_world[:3, :3] = R_cam_world
    T_cam_world[:3, 3] = -offset_cam * y_w  # world origin: the camera centre's foot on the floor
    return invert_transform(T_cam_world)
