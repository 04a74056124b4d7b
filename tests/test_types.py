import numpy as np
import pytest
import trimesh

from sceneforge.errors import CameraError, DepthError, MaskError
from sceneforge.geometry import (
    cross3,
    backproject_depth,
    invert_transform,
    project_points,
    project_to_so3,
    rotation_about_axis,
    rotation_y,
    transform_points,
)
from sceneforge.types import Camera, Normalisation, Plane, Scene, SceneInput, SceneObject, Similarity


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    return project_to_so3(rng.normal(size=(3, 3)))


def test_rotation_y_quarter_turn_sends_z_to_x():
    assert np.allclose(rotation_y(np.pi / 2) @ [0, 0, 1], [1, 0, 0])
    assert np.allclose(rotation_about_axis([0, 1, 0], 0.7), rotation_y(0.7))


def test_cross3_is_numpys_cross_bit_for_bit():
    rng = np.random.default_rng(0)
    for shape_a, shape_b in [((3,), (3,)), ((50, 3), (50, 3)), ((7, 3), (3,)), ((4, 5, 3), (5, 3))]:
        for _ in range(50):
            a = rng.normal(size=shape_a) * 10.0 ** rng.integers(-8, 9)
            b = rng.normal(size=shape_b) * 10.0 ** rng.integers(-8, 9)
            for dtype in (np.float64, np.float32):  # two float64 vectors take a path of their own
                got, expected = cross3(a.astype(dtype), b.astype(dtype)), np.cross(a.astype(dtype), b.astype(dtype))
                assert got.shape == expected.shape and got.dtype == expected.dtype
                assert got.tobytes() == expected.tobytes()


def test_camera_with_pose_is_the_camera_at_that_pose():
    camera = Camera.from_intrinsics(300.0, 310.0, 99.5, 80.0, 200, 160)
    T = np.eye(4)
    T[:3, 3] = [1.0, -2.0, 0.5]
    moved, built = camera.with_pose(T), Camera(camera.K, 200, 160, T)
    for name in ("K", "T_world_cam"):
        assert getattr(moved, name).tobytes() == getattr(built, name).tobytes()
        assert not getattr(moved, name).flags.writeable
    assert (moved.width, moved.height) == (200, 160)
    T[0, 3] = 7.0  # the pose was copied
    assert moved.T_world_cam[0, 3] == 1.0
    with pytest.raises(ValueError, match="T_world_cam must have shape"):
        camera.with_pose(np.eye(3))


def test_similarity_matrix_roundtrip_uniform_and_per_axis():
    rng = np.random.default_rng(0)
    R = random_rotation(rng)
    for s in (2.5, np.array([0.5, 2.0, 3.0])):
        sim = Similarity(R, [1.0, -2.0, 0.5], s)
        back = Similarity.from_matrix(sim.matrix, per_axis=not np.isscalar(s))
        assert np.allclose(back.matrix, sim.matrix, atol=1e-12)
        points = rng.normal(size=(20, 3))
        assert np.allclose(sim.apply(points), transform_points(sim.matrix, points))


def test_similarity_inverse_and_composition():
    rng = np.random.default_rng(1)
    a = Similarity(random_rotation(rng), rng.normal(size=3), 1.7)
    b = Similarity(random_rotation(rng), rng.normal(size=3), [1.0, 2.0, 0.5])
    assert np.allclose((a.inverse() @ a).matrix, np.eye(4), atol=1e-12)
    points = rng.normal(size=(10, 3))
    assert np.allclose((a @ b).apply(points), a.apply(b.apply(points)))
    assert np.allclose(invert_transform(a.matrix), a.inverse().matrix)


def test_similarity_rejects_per_axis_matrix_when_uniform_asked_and_reflections():
    T = Similarity(np.eye(3), np.zeros(3), [1.0, 2.0, 3.0]).matrix
    with pytest.raises(ValueError, match="per-axis"):
        Similarity.from_matrix(T)
    with pytest.raises(ValueError, match="reflection"):
        Similarity.from_matrix(np.diag([1.0, 1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="positive"):
        Similarity(s=0.0)


def test_camera_from_fov_and_validation():
    cam = Camera.from_fov(640, 480, 60.0)
    assert cam.fx == pytest.approx(320.0 / np.tan(np.radians(30.0)))
    assert (cam.cx, cam.cy) == (319.5, 239.5)
    assert Camera.from_dict(cam.to_dict()).K.tolist() == cam.K.tolist()
    with pytest.raises(CameraError, match="focal length must be positive"):
        Camera.from_intrinsics(0.0, 500.0, 10, 10, 20, 20)
    with pytest.raises(CameraError, match="image size must be positive"):
        Camera.from_intrinsics(500.0, 500.0, 10, 10, 0, 20)


def test_backprojection_then_projection_returns_pixels():
    cam = Camera.from_intrinsics(100.0, 110.0, 15.5, 11.5, 32, 24)
    depth = np.full((24, 32), 2.0, dtype=np.float32)
    depth[0, 0] = 0.0  # invalid
    points = backproject_depth(cam, depth)
    assert points.shape == (32 * 24 - 1, 3)
    uv, z = project_points(cam, points)
    v, u = np.nonzero(depth > 0)
    assert np.allclose(uv, np.stack([u, v], axis=1)) and np.allclose(z, 2.0)


def test_plane_signed_distance_and_projection():
    plane = Plane.from_point_normal([0, 1.0, 0], [0, 2.0, 0])
    assert plane.signed_distance(np.array([[3.0, 4.0, 5.0]]))[0] == pytest.approx(3.0)
    assert np.allclose(plane.project(np.array([[3.0, 4.0, 5.0]])), [[3.0, 1.0, 5.0]])


def test_normalisation_undo_is_inverse():
    norm = Normalisation(np.array([1.0, 2.0, 3.0]), 4.0)
    points = np.random.default_rng(2).normal(size=(5, 3))
    assert np.allclose(norm.undo(norm.apply(points)), points)


def test_scene_input_validation_messages():
    image = np.zeros((4, 6, 3), np.uint8)
    ids = np.zeros((4, 6), np.int32)
    ids[1, 1] = 3
    ok = SceneInput(image, ids, source="x")
    assert ok.ids.tolist() == [3] and ok.pixel_counts() == {3: 1}
    assert not ok.image.flags.writeable
    with pytest.raises(MaskError, match="x: instance map is 5x4 but the image is 6x4"):
        SceneInput(image, np.ones((4, 5), np.int32), source="x")
    with pytest.raises(MaskError, match="no instance"):
        SceneInput(image, np.zeros((4, 6), np.int32), source="x")
    with pytest.raises(DepthError, match="NaN"):
        SceneInput(image, ids, depth=np.full((4, 6), np.nan), source="x")
    with pytest.raises(DepthError, match="no valid pixel"):
        SceneInput(image, ids, depth=np.zeros((4, 6)), source="x")
    with pytest.raises(CameraError, match="camera is 8x4 but the image is 6x4"):
        SceneInput(image, ids, camera=Camera.from_fov(8, 4), source="x")


def test_scene_object_world_mesh_and_unique_ids():
    box = trimesh.creation.box((1.0, 2.0, 3.0))
    obj = SceneObject(1, "box", box, Similarity(rotation_y(np.pi / 2), [0, 1, 0], 2.0))
    bounds = obj.world_bounds()
    assert np.allclose(bounds, [[-3.0, -1.0, -1.0], [3.0, 3.0, 1.0]])
    assert np.allclose(obj.world_mesh().bounds, bounds)
    with pytest.raises(ValueError, match="unique"):
        Scene(objects=(obj, obj))
