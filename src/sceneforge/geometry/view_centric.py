"""I-Scene's view-centric scene space: object poses in one camera's frame, normalised per view.

For a view with camera pose ``T_world_cam``, each object's pose in the camera frame is
``T_cam_obj = inv(T_world_cam) @ T_world_obj`` (OpenCV camera axes). The scene is then normalised by
the axis-aligned bounding box of all posed object vertices in that camera frame:
``p_norm = (p_cam - centre) / scale`` with ``centre`` the box centre and ``scale`` its largest side,
so the scene fits in the unit cube [-0.5, 0.5]^3 of the view. ``T_norm_obj`` is the object's pose in
that normalised frame (its scale divided by ``scale``); ``Normalisation.undo`` maps back to metres.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sceneforge.geometry.transforms import invert_transform
from sceneforge.types import Normalisation, frozen_array


@dataclass(frozen=True, eq=False)
class ViewObjectPose:
    """One object seen from one view.

    T_cam_obj : (4, 4) object -> camera frame (metres, includes the object's scale).
    T_norm_obj : (4, 4) object -> normalised view-centric frame (unitless, includes scale).
    box_cam : (2, 3) [min, max] of the posed object's vertices in the camera frame, metres.
    """

    object_id: int
    T_cam_obj: np.ndarray
    T_norm_obj: np.ndarray
    box_cam: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "T_cam_obj", frozen_array(self.T_cam_obj, shape=(4, 4), name="T_cam_obj"))
        object.__setattr__(self, "T_norm_obj", frozen_array(self.T_norm_obj, shape=(4, 4), name="T_norm_obj"))
        object.__setattr__(self, "box_cam", frozen_array(self.box_cam, shape=(2, 3), name="box_cam"))

    @classmethod
    def _of_frozen(cls, object_id: int, T_cam_obj: np.ndarray, T_norm_obj: np.ndarray,
                   box_cam: np.ndarray) -> ViewObjectPose:
        """The pose of float64 arrays of the right shapes that are views of arrays their maker made
        read-only (as :func:`view_centric_frames` does), taken as they are: a copy would be no safer."""
        pose = object.__new__(cls)
        for name, value in (("object_id", object_id), ("T_cam_obj", T_cam_obj), ("T_norm_obj", T_norm_obj),
                            ("box_cam", box_cam)):
            object.__setattr__(pose, name, value)
        return pose


@dataclass(frozen=True, eq=False)
class ViewCentricFrame:
    """The view-centric description of a scene for one camera: normalisation + per-object poses."""

    T_cam_world: np.ndarray
    normalisation: Normalisation
    objects: tuple[ViewObjectPose, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "T_cam_world", frozen_array(self.T_cam_world, shape=(4, 4), name="T_cam_world"))
        object.__setattr__(self, "objects", tuple(self.objects))

    @property
    def T_norm_cam(self) -> np.ndarray:
        """(4, 4) camera frame -> normalised frame: ``(p - centre) / scale``."""
        return normalisation_matrix(self.normalisation)


def normalisation_matrix(norm: Normalisation) -> np.ndarray:
    """(4, 4) matrix of ``p -> (p - centre) / scale``."""
    T = np.eye(4) / norm.scale
    T[3, 3] = 1.0
    T[:3, 3] = -norm.centre / norm.scale
    return T


def box_normalisation(points: np.ndarray, frame: str = "camera") -> Normalisation:
    """Normalisation by the axis-aligned box of ``points`` (N, 3): centre = box centre, scale = largest side."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError(f"need (N, 3) points with N > 0, got {points.shape}")
    return _box_normalisation(points.min(axis=0), points.max(axis=0), frame)


def _box_normalisation(low: np.ndarray, high: np.ndarray, frame: str) -> Normalisation:
    """Normalisation by the box [low, high] ((3,) each)."""
    side = float(np.max(high - low))
    if not side > 0:
        raise ValueError("points span no volume: the box has no positive side")
    return Normalisation(0.5 * (low + high), side, frame)


def view_centric_frame(T_world_cam: np.ndarray, object_ids: Sequence[int],
                       T_world_objs: Sequence[np.ndarray], vertices_obj: Sequence[np.ndarray]) -> ViewCentricFrame:
    """View-centric poses and normalisation of a scene seen from a camera.

    T_world_cam : (4, 4) camera pose.  T_world_objs : per object (4, 4) pose (with scale).
    vertices_obj : per object (V, 3) vertices in its own frame, metres (all vertices, or its hull).
    """
    return view_centric_frames([T_world_cam], object_ids, T_world_objs, vertices_obj)[0]


def view_centric_frames(T_world_cams: Sequence[np.ndarray], object_ids: Sequence[int],
                        T_world_objs: Sequence[np.ndarray],
                        vertices_obj: Sequence[np.ndarray]) -> list[ViewCentricFrame]:
    """:func:`view_centric_frame` of each camera pose (4, 4) in ``T_world_cams``, computed for all
    cameras at once (the same values as one at a time)."""
    T_cam_worlds = np.stack([invert_transform(np.asarray(T, dtype=np.float64)) for T in T_world_cams])  # (C, 4, 4)
    poses_world = np.stack([np.asarray(T, dtype=np.float64) for T in T_world_objs])  # (N, 4, 4)
    poses_cam = T_cam_worlds[:, None] @ poses_world  # (C, N, 4, 4)
    # (C, V_k, 3) the points of object k in every camera frame, as transform_points computes them
    points_cam = [np.asarray(v, dtype=np.float64) @ poses_cam[:, k, :3, :3].transpose(0, 2, 1)
                  + poses_cam[:, k, None, :3, 3] for k, v in enumerate(vertices_obj)]
    points = np.concatenate(points_cam, axis=1)
    if points.shape[1] == 0:
        raise ValueError("need (N, 3) points with N > 0, got no vertices")
    starts = np.cumsum([0] + [p.shape[1] for p in points_cam[:-1]])  # each object's box in one pass each
    boxes = np.stack([np.minimum.reduceat(points, starts, axis=1), np.maximum.reduceat(points, starts, axis=1)],
                     axis=2)  # (C, N, 2, 3)
    poses_cam.setflags(write=False)  # made here; the frames' poses are views of these, not copies
    boxes.setflags(write=False)
    frames = []
    for T_cam_world, poses, cam_boxes in zip(T_cam_worlds, poses_cam, boxes):
        norm = _box_normalisation(cam_boxes[:, 0].min(axis=0), cam_boxes[:, 1].max(axis=0), "camera")  # all points' box
        poses_norm = normalisation_matrix(norm) @ poses
        poses_norm.setflags(write=False)
        objects = tuple(ViewObjectPose._of_frozen(int(i), T, T_norm, box) for i, T, T_norm, box
                        in zip(object_ids, poses, poses_norm, cam_boxes))
        frames.append(ViewCentricFrame(T_cam_world, norm, objects))
    return frames
