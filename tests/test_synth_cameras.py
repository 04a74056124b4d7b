"""Orbit cameras and the view-centric frame: known answers and properties."""

from __future__ import annotations

import numpy as np
import pytest

from sceneforge.geometry import project_points, transform_points
from sceneforge.geometry.transforms import invert_transform, rotation_about_axis, rotation_y
from sceneforge.geometry.view_centric import (
    box_normalisation,
    normalisation_matrix,
    view_centric_frame,
    view_centric_frames,
)
from sceneforge.synth.cameras import GOLDEN_ANGLE, OrbitSpec, fit_distance, look_at, orbit_cameras, orbit_directions
from sceneforge.types import Camera


def test_look_at_known_answer_and_frame():
    T = look_at(np.array([0.0, 0.0, 5.0]), np.zeros(3))
    # looking along -z from +z: right = forward x up = (-z) x (+y) = +x
    np.testing.assert_allclose(T[:3, 0], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(T[:3, 1], [0, -1, 0], atol=1e-12)   # image down = world down
    np.testing.assert_allclose(T[:3, 2], [0, 0, -1], atol=1e-12)
    R = T[:3, :3]
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="parallel to the up vector"):
        look_at(np.array([0.0, 3.0, 0.0]), np.zeros(3))


def test_orbit_directions_are_evenly_spread_in_the_band():
    d = orbit_directions(150, (10.0, 60.0), 0.3)
    elevation = np.degrees(np.arcsin(d[:, 1]))
    assert elevation.min() > 10.0 and elevation.max() < 60.0
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0)
    # equal-area: sin(elevation) evenly spaced; azimuth steps by the golden angle
    np.testing.assert_allclose(np.diff(d[:, 1]), np.diff(d[:, 1])[0], atol=1e-12)
    azimuth = np.arctan2(d[:, 0], d[:, 2])
    step = np.angle(np.exp(1j * (azimuth[1:] - azimuth[:-1])))
    np.testing.assert_allclose(step, np.angle(np.exp(1j * GOLDEN_ANGLE)), atol=1e-9)
    # no two views share a direction closely: minimum angle between neighbours is substantial
    cos = d @ d.T - 2 * np.eye(len(d))
    assert np.degrees(np.arccos(cos.max())) > 3.0


def test_orbit_cameras_look_at_the_centre_and_keep_the_sphere_in_view():
    spec = OrbitSpec(n_views=12, elevation_deg=(20.0, 50.0), distance_factor=(1.0, 1.5), width=160, height=120,
                     hfov_deg=60.0)
    centre, radius = np.array([1.0, 0.4, -2.0]), 0.8
    cams = orbit_cameras(centre, radius, spec, np.random.default_rng(0))
    assert len(cams) == 12
    d_fit = fit_distance(radius, spec.base_camera())
    rng = np.random.default_rng(1)
    sphere = rng.normal(size=(2000, 3))
    sphere = centre + radius * sphere / np.linalg.norm(sphere, axis=1, keepdims=True)
    for cam in cams:
        T_cam_world = invert_transform(cam.T_world_cam)
        uv, z = project_points(cam, transform_points(T_cam_world, centre[None]))
        np.testing.assert_allclose(uv[0], [cam.cx, cam.cy], atol=1e-9)
        dist = np.linalg.norm(cam.T_world_cam[:3, 3] - centre)
        assert d_fit * 1.0 - 1e-9 <= dist <= d_fit * 1.5 + 1e-9
        elevation = np.degrees(np.arcsin((cam.T_world_cam[1, 3] - centre[1]) / dist))
        assert 20.0 <= elevation <= 50.0
        uv, z = project_points(cam, transform_points(T_cam_world, sphere))
        assert np.all(z > 0)
        assert np.all((uv[:, 0] >= -0.5) & (uv[:, 0] <= cam.width - 0.5))
        assert np.all((uv[:, 1] >= -0.5) & (uv[:, 1] <= cam.height - 0.5))
        # horizontal image x axis
        assert abs(cam.T_world_cam[1, 0]) < 1e-12
    again = orbit_cameras(centre, radius, spec, np.random.default_rng(0))
    assert all(np.array_equal(a.T_world_cam, b.T_world_cam) for a, b in zip(cams, again))


def test_view_centric_frame_known_answer():
    """A 2 x 1 x 1 box and a unit cube side by side, camera at the origin looking along +z."""
    unit = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    T_a = np.eye(4)
    T_a[:3, :3] = np.diag([2.0, 1.0, 1.0])
    T_a[:3, 3] = [-1.0, 0.0, 5.0]            # spans x in [-2, 0]
    T_b = np.eye(4)
    T_b[:3, :3] = rotation_y(np.pi / 2)
    T_b[:3, 3] = [0.5, 0.0, 5.0]             # spans x in [0, 1]
    frame = view_centric_frame(np.eye(4), [1, 2], [T_a, T_b], [unit, unit])
    np.testing.assert_allclose(frame.normalisation.centre, [-0.5, 0.0, 5.0], atol=1e-12)
    assert frame.normalisation.scale == pytest.approx(3.0)
    a = transform_points(frame.objects[0].T_norm_obj, unit)
    b = transform_points(frame.objects[1].T_norm_obj, unit)
    both = np.concatenate([a, b])
    np.testing.assert_allclose(both.min(axis=0), [-0.5, -1 / 6, -1 / 6], atol=1e-12)
    np.testing.assert_allclose(both.max(axis=0), [0.5, 1 / 6, 1 / 6], atol=1e-12)
    np.testing.assert_allclose(frame.objects[0].box_cam, [[-2, -0.5, 4.5], [0, 0.5, 5.5]], atol=1e-12)


def test_view_centric_frame_moves_with_the_camera():
    """Turning the camera about the scene changes T_cam_obj by exactly the camera motion."""
    unit = np.random.default_rng(0).uniform(-0.5, 0.5, size=(50, 3))
    T_obj = np.eye(4)
    T_obj[:3, 3] = [0.3, 0.2, -0.1]
    T1 = look_at(np.array([3.0, 2.0, 3.0]), np.zeros(3))
    T2 = look_at(np.array([-3.0, 1.0, 2.0]), np.zeros(3))
    f1 = view_centric_frame(T1, [1], [T_obj], [unit])
    f2 = view_centric_frame(T2, [1], [T_obj], [unit])
    np.testing.assert_allclose(f2.objects[0].T_cam_obj, invert_transform(T2) @ T1 @ f1.objects[0].T_cam_obj, atol=1e-12)
    # normalising and undoing is the identity
    pts = transform_points(f1.objects[0].T_cam_obj, unit)
    np.testing.assert_allclose(f1.normalisation.undo(f1.normalisation.apply(pts)), pts, atol=1e-12)
    np.testing.assert_allclose(transform_points(normalisation_matrix(f1.normalisation), pts),
                               f1.normalisation.apply(pts), atol=1e-12)
    with pytest.raises(ValueError, match="no positive side"):
        box_normalisation(np.zeros((3, 3)))


def test_camera_intrinsics_of_the_spec():
    cam = OrbitSpec(width=200, height=100, hfov_deg=90.0).base_camera()
    assert isinstance(cam, Camera) and (cam.cx, cam.cy) == (99.5, 49.5)
    assert cam.fx == pytest.approx(100.0)
    # the narrower (vertical) half-fov decides the fit distance: atan(50 / 100)
    assert fit_distance(1.0, cam) == pytest.approx(1.0 / np.sin(np.arctan(0.5)))


def test_explicit_intrinsics_off_centre():
    spec = OrbitSpec(n_views=3, width=120, height=90, intrinsics=(150.0, 140.0, 70.25, 30.5))
    cam = spec.base_camera()
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (150.0, 140.0, 70.25, 30.5)
    centre = np.array([0.0, 0.5, 0.0])
    for c in orbit_cameras(centre, 0.5, spec, np.random.default_rng(2)):
        uv, _ = project_points(c, transform_points(invert_transform(c.T_world_cam), centre[None]))
        np.testing.assert_allclose(uv[0], [70.25, 30.5], atol=1e-9)
    with pytest.raises(Exception, match=r"intrinsics must be \(fx, fy, cx, cy\) with fx, fy > 0"):
        OrbitSpec(intrinsics=(0.0, 1.0, 2.0, 3.0))


def test_view_centric_frames_equal_one_camera_at_a_time():
    rng = np.random.default_rng(3)
    poses = []
    for _ in range(4):
        T = np.eye(4)
        T[:3, :3] = rotation_about_axis(rng.normal(size=3), rng.uniform(0, 6)) * rng.uniform(0.5, 2.0)
        T[:3, 3] = rng.normal(size=3)
        poses.append(T)
    points = [rng.normal(size=(int(rng.integers(4, 30)), 3)) for _ in poses]
    cameras = [look_at(rng.normal(size=3) * 4.0, np.zeros(3)) for _ in range(5)]
    frames = view_centric_frames(cameras, [1, 2, 3, 4], poses, points)
    for T_world_cam, frame in zip(cameras, frames):
        one = view_centric_frame(T_world_cam, [1, 2, 3, 4], poses, points)
        assert np.array_equal(frame.T_cam_world, one.T_cam_world)
        assert np.array_equal(frame.normalisation.centre, one.normalisation.centre)
        assert frame.normalisation.scale == one.normalisation.scale
        for a, b in zip(frame.objects, one.objects):
            assert a.object_id == b.object_id
            for name in ("T_cam_obj", "T_norm_obj", "box_cam"):
                assert np.array_equal(getattr(a, name), getattr(b, name))
                array = getattr(a, name)  # shared with the other frames, not copied: nothing may write it
                assert array.dtype == np.float64 and not array.flags.writeable
                with pytest.raises(ValueError):
                    array.setflags(write=True)
        # and the values are the definition's: boxes of the points in the camera frame
        T_cam_world = np.linalg.inv(T_world_cam)
        for pose, pts, obj in zip(poses, points, frame.objects):
            cam = pts @ (T_cam_world @ pose)[:3, :3].T + (T_cam_world @ pose)[:3, 3]
            assert np.allclose(obj.box_cam, [cam.min(axis=0), cam.max(axis=0)], atol=1e-9)
