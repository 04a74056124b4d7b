"""The perception stage's interface and result."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import trimesh

from sceneforge.geometry import invert_transform, transform_points
from sceneforge.registry import Component
from sceneforge.types import Camera, Plane, SceneInput


@dataclass(frozen=True, eq=False)
class ObjectObservation:
    """What the image says about one object.

    mask : (H, W) bool, the visible mask as given.
    pixels : (N, 2) int (v, u) of the pixels whose points were kept (eroded mask, valid depth,
        no depth edge, depth within the object's robust range).
    points_world : (N, 3) float64 metres, those pixels back-projected into the world frame.
    """

    id: int
    label: str
    mask: np.ndarray
    pixels: np.ndarray
    points_world: np.ndarray


@dataclass(frozen=True, eq=False)
class PerceptionResult:
    """Camera, world frame, floor, background and the per-object observations.

    camera : Camera whose T_world_cam maps the input camera frame into the reconstructed world
        (y = floor normal, origin = foot of the camera centre on the floor).
    floor : Plane in world coordinates (normal +y, offset 0 when a floor was found).
    depth : (H, W) float32 metres, the input depth with flying pixels removed (0 = invalid).
    instances : (H, W) int32 instance map of the input.
    objects : kept observations; ``skipped`` maps dropped ids to the reason.
    background : background mesh in world coordinates (vertex colours), or None.
    background_points_world : (M, 3) points of the non-object pixels (world), for free-space tests.
    """

    camera: Camera
    floor: Plane
    depth: np.ndarray
    instances: np.ndarray
    image: np.ndarray
    objects: tuple[ObjectObservation, ...]
    background: trimesh.Trimesh | None
    skipped: Mapping[int, str] = field(default_factory=dict)
    assumptions: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def T_world_cam(self) -> np.ndarray:
        return self.camera.T_world_cam

    @property
    def T_cam_world(self) -> np.ndarray:
        return invert_transform(self.camera.T_world_cam)

    def to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """(N, 3) world -> (N, 3) input camera frame."""
        return transform_points(self.T_cam_world, points_world)

    def camera_centre_world(self) -> np.ndarray:
        return self.camera.T_world_cam[:3, 3].copy()


class Perception(Component):
    """Interface: turn a SceneInput into a PerceptionResult (raises InputError when nothing usable)."""

    @abstractmethod
    def perceive(self, scene_input: SceneInput) -> PerceptionResult:
        """Back-project, fit the floor, choose the world frame, observe every object."""
