"""EvalConfig(frame="camera"): scores in each scene's own camera frame."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from sceneforge.errors import InputError
from sceneforge.eval import EvalConfig, evaluate_scene
from sceneforge.eval.frames import plane_in_frame, scene_in_camera_frame
from sceneforge.geometry import rotation_y
from sceneforge.types import Camera, Plane, Scene, SceneObject, Similarity

CONFIG = dict(align=False, points_per_object=2000, taus=(0.1, 0.02), threads=1)


def rigid(yaw: float, t) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = rotation_y(yaw) @ trimesh.transformations.rotation_matrix(0.3, [1, 0, 0])[:3, :3]
    T[:3, 3] = t
    return T


def two_box_scene() -> Scene:
    objects = (SceneObject(1, "box", trimesh.creation.box((1, 1, 1)), Similarity(rotation_y(0.2), [0.0, 0.25, -2.0], 0.5)),
               SceneObject(2, "box", trimesh.creation.box((1, 1, 1)), Similarity(np.eye(3), [0.8, 0.2, -2.5], 0.4)))
    camera = Camera.from_fov(64, 48, 60.0, rigid(0.1, [0.1, 1.2, 0.5]))
    return Scene(objects=objects, camera=camera, floor=Plane(np.array([0.0, 1.0, 0.0]), 0.0))


def moved(scene: Scene, T: np.ndarray) -> Scene:
    """The same scene with its world frame changed: T maps old world -> new world."""
    M = Similarity(T[:3, :3], T[:3, 3], 1.0)
    objects = tuple(SceneObject(o.id, o.label, o.mesh, M @ o.pose) for o in scene.objects)
    return Scene(objects=objects, camera=scene.camera.with_pose(T @ scene.camera.T_world_cam),
                 floor=plane_in_frame(scene.floor, T))


def test_camera_frame_ignores_the_world_frame_of_each_scene():
    gt = two_box_scene()
    pred = moved(gt, rigid(1.1, [3.0, -1.0, 2.0]))
    in_world = evaluate_scene(pred, gt, EvalConfig(**CONFIG)).summary()
    in_camera = evaluate_scene(pred, gt, EvalConfig(frame="camera", **CONFIG)).summary()
    assert in_world["fscore_s@0.1"] < 0.2
    assert in_camera["fscore_s@0.1"] == pytest.approx(1.0)
    assert in_camera["cd_s_l2_sum"] < 1e-3
    assert in_camera["translation_error"] < 1e-9 and in_camera["rotation_error_deg"] < 1e-6


def test_scene_in_camera_frame_known_answer():
    scene = two_box_scene()
    local = scene_in_camera_frame(scene)
    np.testing.assert_allclose(local.camera.T_world_cam, np.eye(4))
    T_cam_world = np.linalg.inv(scene.camera.T_world_cam)
    centre = scene.objects[0].pose.t
    np.testing.assert_allclose(local.objects[0].pose.t, T_cam_world[:3, :3] @ centre + T_cam_world[:3, 3], atol=1e-12)
    # the camera (origin of the camera frame) is 1.2 m above the floor
    assert local.floor.signed_distance(np.zeros((1, 3)))[0] == pytest.approx(1.2, abs=1e-9)
    np.testing.assert_allclose(local.floor.normal, T_cam_world[:3, :3] @ [0.0, 1.0, 0.0], atol=1e-12)


def test_camera_frame_needs_cameras_and_a_known_frame():
    gt = two_box_scene()
    no_camera = Scene(objects=gt.objects)
    with pytest.raises(InputError, match="camera frame needs a camera"):
        evaluate_scene(no_camera, gt, EvalConfig(frame="camera", **CONFIG))
    with pytest.raises(InputError, match="ground truth.*camera frame needs a camera"):
        evaluate_scene(gt, no_camera, EvalConfig(frame="camera", **CONFIG))
    with pytest.raises(ValueError, match="frame must be one of world, camera"):
        EvalConfig(frame="view")
