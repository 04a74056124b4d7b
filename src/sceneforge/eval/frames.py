"""Re-expressing a scene in the frame of its camera (for scoring reconstructions whose world frame
is their own: only the camera frames of prediction and ground truth are comparable)."""

from __future__ import annotations

import numpy as np

from sceneforge.errors import InputError
from sceneforge.geometry import invert_transform
from sceneforge.types import Camera, Plane, Scene, SceneObject, Similarity

FRAMES = ("world", "camera")


def scene_in_camera_frame(scene: Scene, name: str = "scene") -> Scene:
    """The scene's objects, floor and background expressed in its camera's frame (OpenCV: x right,
    y down, z forward); the returned camera sits at the origin (T_world_cam = identity).

    Raises InputError when the scene has no camera.
    """
    if scene.camera is None:
        raise InputError(name, "scoring in the camera frame needs a camera (with its T_world_cam) in the scene")
    T_cam_world = invert_transform(scene.camera.T_world_cam)
    move = Similarity(T_cam_world[:3, :3], T_cam_world[:3, 3], 1.0)
    objects = tuple(SceneObject(o.id, o.label, o.mesh, move @ o.pose, o.confidence) for o in scene.objects)
    floor = None if scene.floor is None else plane_in_frame(scene.floor, T_cam_world)
    background = None
    if scene.background is not None:
        background = scene.background.copy()
        background.apply_transform(T_cam_world)
    camera = Camera(scene.camera.K, scene.camera.width, scene.camera.height, np.eye(4))
    return Scene(objects=objects, camera=camera, floor=floor, background=background,
                 normalisation=scene.normalisation, metadata=scene.metadata)


def plane_in_frame(plane: Plane, T_b_a: np.ndarray) -> Plane:
    """A plane given in frame a, expressed in frame b (T_b_a rigid)."""
    normal = T_b_a[:3, :3] @ plane.normal
    point = T_b_a[:3, :3] @ (-plane.offset * plane.normal) + T_b_a[:3, 3]
    return Plane.from_point_normal(point, normal)


def up_in_camera_frame(scene: Scene, up_world: np.ndarray) -> np.ndarray:
    """The world up vector (3,) expressed in the scene camera's frame."""
    if scene.camera is None:
        raise InputError(None, "the scene has no camera")
    return invert_transform(scene.camera.T_world_cam)[:3, :3] @ np.asarray(up_world, dtype=np.float64)
