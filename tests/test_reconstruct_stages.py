"""Known answers for the reconstruction stages' building blocks (perception, amodal, shape)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from sceneforge.amodal.opencv import OpenCVAmodal, convex_hull_mask
from sceneforge.geometry import rotation_y
from sceneforge.geometry.depth_mesh import depth_edge_mask, depth_grid_mesh
from sceneforge.geometry.planes import fit_plane_svd, ransac_planes, refine_plane
from sceneforge.perception.depth import DepthPerception, erode_mask, world_frame_from_floor
from sceneforge.shape.base import ShapeError, canonicalise
from sceneforge.shape.lift import choose_yaw, occupancy_to_mesh, wrap_quarter_turn
from sceneforge.types import Camera, SceneInput


def test_world_frame_from_floor_known_answer():
    # a level camera 1.5 m above the floor: floor normal = image up (-y), offset 1.5
    T = world_frame_from_floor(np.array([0.0, -1.0, 0.0]), 1.5)
    np.testing.assert_allclose(T[:3, 3], [0.0, 1.5, 0.0], atol=1e-12)  # camera centre 1.5 m above the origin
    np.testing.assert_allclose(T[:3, :3] @ [0.0, 0.0, 1.0], [0.0, 0.0, -1.0], atol=1e-12)  # looks along -z_w
    np.testing.assert_allclose(T[:3, :3] @ [0.0, -1.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)  # image up = world up
    assert np.linalg.det(T[:3, :3]) == pytest.approx(1.0)


def test_world_frame_of_a_camera_looking_straight_down():
    T = world_frame_from_floor(np.array([0.0, 0.0, -1.0]), 2.0)
    np.testing.assert_allclose(T[:3, 3], [0.0, 2.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(T[:3, :3] @ [0.0, 0.0, 1.0], [0.0, -1.0, 0.0], atol=1e-12)


def test_plane_fits_recover_a_noisy_plane():
    rng = np.random.default_rng(0)
    normal = np.array([0.1, -0.95, 0.3]) / np.linalg.norm([0.1, -0.95, 0.3])
    u = np.cross(normal, [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    inliers = rng.uniform(-2, 2, (800, 2)) @ np.stack([u, v]) - 1.2 * normal + rng.normal(0, 0.002, (800, 1)) * normal
    outliers = rng.uniform(-2, 2, (400, 3))
    points = np.concatenate([inliers, outliers])
    planes, counts = ransac_planes(points, 0.01, 300, rng)
    best = planes[np.argmax(counts)]
    fit = refine_plane(points, best[:3], best[3], 0.01)
    assert abs(fit.normal @ normal) > 0.999
    assert abs(abs(fit.offset) - 1.2) < 0.01
    assert fit.inlier_count >= 780
    n, d = fit_plane_svd(inliers)
    assert abs(n @ normal) > 0.999


def test_erosion_and_convex_hull():
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    assert erode_mask(mask, 2).sum() == 36
    assert erode_mask(mask, 0).sum() == 100
    ring = mask.copy()
    ring[8:12, 8:12] = False
    assert convex_hull_mask(ring).sum() == 100
    assert not convex_hull_mask(np.zeros((4, 4), bool)).any()


def test_amodal_completes_behind_a_nearer_occluder_only():
    instances = np.zeros((30, 30), np.int32)
    instances[5:25, 5:25] = 1
    instances[10:20, 12:18] = 2  # a hole in object 1 filled by object 2
    image = np.zeros((30, 30, 3), np.uint8)
    near = np.where(instances == 2, 1.0, 2.0).astype(np.float32)
    far = np.where(instances == 2, 3.0, 2.0).astype(np.float32)
    in_front = OpenCVAmodal().complete(image, instances, 1, near)
    behind = OpenCVAmodal().complete(image, instances, 1, far)
    assert in_front.mask.sum() == 400 and in_front.occluded_fraction == pytest.approx(60 / 400)
    assert behind.mask.sum() == 340 and behind.occluded_fraction == 0.0
    assert in_front.bbox == (5, 5, 25, 25) and in_front.crop_rgb.shape == (20, 20, 3)


def test_yaw_of_a_turned_rectangle():
    rng = np.random.default_rng(1)
    local = rng.uniform([-1.0, 0.0, -0.3], [1.0, 0.5, 0.3], (2000, 3))
    for yaw in (0.0, 0.3, -0.6):
        points = local @ rotation_y(yaw).T
        found = choose_yaw(points, np.array([0.0, 0.0, -1.0]))
        assert abs(wrap_quarter_turn(found - yaw)) < np.radians(2.5)
    assert wrap_quarter_turn(np.radians(100.0)) == pytest.approx(np.radians(10.0))
    assert wrap_quarter_turn(np.radians(-45.0)) == pytest.approx(np.radians(45.0))


def test_canonicalise_round_trip():
    mesh = trimesh.creation.box((2.0, 1.0, 0.5))
    mesh.apply_transform(np.block([[rotation_y(0.4), np.array([[1.0], [0.5], [-2.0]])], [np.zeros((1, 3)), np.ones((1, 1))]]))
    canonical, pose = canonicalise(mesh, 0.4)
    np.testing.assert_allclose(pose.apply(canonical.vertices), mesh.vertices, atol=1e-9)
    np.testing.assert_allclose(canonical.extents, [1.0, 0.5, 0.25], atol=1e-9)
    assert pose.s == pytest.approx(2.0)
    flat = trimesh.Trimesh(np.zeros((3, 3)), [[0, 1, 2]], process=False)
    with pytest.raises(ShapeError, match="zero extent"):
        canonicalise(flat, 0.0)


def test_occupancy_to_mesh_is_watertight_with_the_right_size():
    occupancy = np.zeros((10, 6, 4), bool)
    occupancy[1:9, 1:5, 1:3] = True
    mesh = occupancy_to_mesh(occupancy, np.zeros(3), 0.1)
    assert mesh.is_watertight and mesh.volume > 0
    np.testing.assert_allclose(mesh.extents, [0.8, 0.4, 0.2], atol=0.1)


def test_depth_edges_and_grid_mesh_cut_at_jumps():
    depth = np.full((12, 12), 2.0, np.float32)
    depth[:, 6:] = 4.0
    edges = depth_edge_mask(depth, 0.05)
    assert edges[:, 5:7].all() and not edges[:, :4].any()
    camera = Camera.from_fov(12, 12, 60.0)
    mesh = depth_grid_mesh(camera, depth, np.ones((12, 12), bool), stride=1, max_ratio=0.05)
    z = mesh.vertices[:, 2][mesh.faces]
    assert np.all(np.ptp(z, axis=1) < 1e-6)  # no face bridges the jump


def test_camera_looking_straight_down_finds_the_floor_below():
    """A camera looking straight down at a floor with a tilted patch near the image top: the floor
    faces the camera, 90 degrees from the image-up direction."""
    W = H = 64
    camera = Camera.from_fov(W, H, 60.0)
    v, u = np.mgrid[0:H, 0:W]
    depth = np.full((H, W), 2.0, np.float32)
    ramp = v < 14  # a ramp whose normal faces image-up
    depth[ramp] = (2.0 - 0.03 * (14 - v[ramp])).astype(np.float32)
    instances = np.zeros((H, W), np.int32)
    instances[28:40, 28:40] = 1
    depth[instances == 1] = 1.7
    result = DepthPerception().perceive(SceneInput(np.zeros((H, W, 3), np.uint8), instances, depth, camera))
    floor_normal_cam = result.camera.T_world_cam[:3, :3].T @ [0.0, 1.0, 0.0]
    np.testing.assert_allclose(floor_normal_cam, [0.0, 0.0, -1.0], atol=0.02)
    assert result.camera.T_world_cam[1, 3] == pytest.approx(2.0, abs=0.02)  # camera height
    assert any("largest background plane" in a for a in result.assumptions)
    heights = result.objects[0].points_world[:, 1]
    assert np.median(heights) == pytest.approx(0.3, abs=0.02)


def test_bin_seen_from_above_takes_the_bin_bottom_not_a_wall(arc2017_npz):
    from sceneforge.io.inputs import load_input

    scene_input = load_input(arc2017_npz)
    default = DepthPerception().perceive(scene_input)
    upright_only = DepthPerception(upright_support_ratio=0.0).perceive(scene_input)  # the earlier rule
    normal = default.camera.T_world_cam[:3, :3].T @ [0.0, 1.0, 0.0]
    wall = upright_only.camera.T_world_cam[:3, :3].T @ [0.0, 1.0, 0.0]
    assert normal @ [0.0, 0.0, -1.0] > np.cos(np.radians(10.0))  # the bin bottom faces the camera
    assert wall @ normal < np.cos(np.radians(30.0))  # a bin wall near the image-up direction
    assert any("largest background plane" in w for w in default.warnings)
