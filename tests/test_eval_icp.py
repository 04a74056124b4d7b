"""Robust ICP (I-Scene appendix): recovers a known similarity where plain ICP fails."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from sceneforge.eval.icp import (
    AlignmentConfig,
    RobustICPConfig,
    align_point_clouds,
    project_similarity,
    robust_icp,
    shared_normalisation,
    transform_is_sane,
    trimmed_symmetric_chamfer,
)
from sceneforge.eval.sampling import sample_surface_with_normals
from sceneforge.geometry.transforms import rotation_about_axis, rotation_y


def _asymmetric_scene(points_per_object: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """An L of boxes and a cylinder: no rotational symmetry about y. (N, 3) points, (N, 3) normals."""
    parts = [(trimesh.creation.box(extents=[2.0, 0.4, 0.6]), [0.0, 0.2, 0.0]),
             (trimesh.creation.box(extents=[0.5, 0.9, 0.5]), [0.8, 0.45, 1.0]),
             (trimesh.creation.cylinder(radius=0.25, height=0.8), [-0.9, 0.4, -0.9]),
             (trimesh.creation.icosphere(radius=0.3), [-0.6, 0.3, 1.2])]
    points, normals = [], []
    for k, (mesh, offset) in enumerate(parts):
        mesh.apply_translation(offset)
        sample = sample_surface_with_normals(mesh, points_per_object, seed=k)
        points.append(sample.points)
        normals.append(sample.normals)
    return np.concatenate(points), np.concatenate(normals)


def _corrupt(points: np.ndarray, R: np.ndarray, s: float, t: np.ndarray, seed: int) -> np.ndarray:
    """Similarity-moved copy with 1% Gaussian noise and 30% of the points replaced by outliers
    drawn uniformly in the moved cloud's bounding box."""
    rng = np.random.default_rng(seed)
    moved = s * points @ R.T + t
    size = float(np.ptp(moved, axis=0).max())
    moved = moved + rng.normal(scale=0.01 * size, size=moved.shape)
    outliers = rng.random(len(moved)) < 0.3
    lo, hi = moved.min(axis=0), moved.max(axis=0)
    moved[outliers] = lo + rng.random((int(outliers.sum()), 3)) * (hi - lo)
    return moved


def _rotation_error_deg(A: np.ndarray, B: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(A.T @ B) - 1) / 2, -1, 1))))


@pytest.mark.parametrize("yaw_deg", [180.0, 150.0, -100.0])
def test_robust_icp_recovers_similarity_where_plain_icp_fails(yaw_deg):
    import open3d as o3d

    target, normals = _asymmetric_scene()
    R, s, t = rotation_y(np.radians(yaw_deg)), 1.3, np.array([0.4, -0.1, 0.7])
    source = _corrupt(target, R, s, t, seed=int(yaw_deg) % 97)  # source = similarity of the target

    result = align_point_clouds(source, target, AlignmentConfig(scale="icp"), normals)
    # the inverse similarity maps source back: R_est = R^T, s_est = 1/s
    assert _rotation_error_deg(result.T_target_source[:3, :3] / result.scale, R.T) < 2.0
    assert result.scale == pytest.approx(1 / s, rel=0.03)
    clean_source = s * target @ R.T + t
    residual = np.linalg.norm(result.apply(clean_source) - target, axis=1)
    assert residual.mean() < 0.02 * np.ptp(target, axis=0).max()
    assert result.stage == "fine" and result.normalisation in ("minmax", "aabb")

    reg = o3d.pipelines.registration
    src, tgt = o3d.geometry.PointCloud(), o3d.geometry.PointCloud()
    src.points, tgt.points = o3d.utility.Vector3dVector(source), o3d.utility.Vector3dVector(target)
    plain = reg.registration_icp(src, tgt, 0.2, np.eye(4), reg.TransformationEstimationPointToPoint(True),
                                 reg.ICPConvergenceCriteria(max_iteration=60))
    T = np.asarray(plain.transformation)
    plain_scale = float(np.cbrt(np.linalg.det(T[:3, :3])))
    assert _rotation_error_deg(T[:3, :3] / plain_scale, R.T) > 20.0


def test_robust_icp_rigid_about_other_up_axis():
    target, normals = _asymmetric_scene(2000)
    R = rotation_about_axis(np.array([0.0, 0.0, 1.0]), np.radians(135))
    source = target @ R.T + [0.2, 0.0, 0.1]
    result = robust_icp(source, target @ rotation_about_axis(np.array([1.0, 0, 0]), 0.0).T,
                        RobustICPConfig(up_axis="z"), normals)
    assert _rotation_error_deg(result.T_target_source[:3, :3], R.T) < 1.0
    assert result.scale == pytest.approx(1.0)


def test_trimmed_chamfer_ignores_the_trimmed_share():
    rng = np.random.default_rng(0)
    a = rng.random((1000, 3))
    b = a.copy()
    b[:100] += 100.0  # 10% far outliers, under the 20% trim
    assert trimmed_symmetric_chamfer(a, b, 0.2) == pytest.approx(0.0, abs=1e-12)
    assert trimmed_symmetric_chamfer(a, b, 0.0) > 1.0


def test_projection_and_sanity_checks():
    M = np.eye(4)
    M[:3, :3] = 2.0 * np.diag([1.0, 1.0, -1.0])  # a reflection with scale 2
    T, s = project_similarity(M)
    assert s == pytest.approx(2.0) and np.linalg.det(T[:3, :3]) > 0
    T_ref, _ = project_similarity(M, allow_reflection=True)
    assert np.linalg.det(T_ref[:3, :3]) < 0
    config = RobustICPConfig()
    assert transform_is_sane(np.eye(4), config)
    bad = np.eye(4)
    bad[0, 3] = np.nan
    assert not transform_is_sane(bad, config)
    far = np.eye(4)
    far[:3, 3] = [10.0, 0, 0]
    assert not transform_is_sane(far, config)
    assert not transform_is_sane(np.diag([3.0, 3.0, 3.0, 1.0]), config)


def test_shared_normalisation_maps_joint_box_to_unit_side():
    a = np.array([[0.0, 0, 0], [4, 1, 1]])
    b = np.array([[2.0, 2, 2]])
    N = shared_normalisation(a, b)
    moved = np.concatenate([a, b]) @ N[:3, :3].T + N[:3, 3]
    assert np.ptp(moved, axis=0).max() == pytest.approx(1.0)
    np.testing.assert_allclose(0.5 * (moved.min(axis=0) + moved.max(axis=0)), 0.0, atol=1e-12)


def test_icp_config_and_input_errors():
    assert RobustICPConfig(max_iterations=15).coarse_iterations == 10
    assert RobustICPConfig(max_iterations=15).fine_iterations == 10
    assert RobustICPConfig(max_iterations=60).coarse_iterations == 30
    with pytest.raises(ValueError, match="up_axis must be one of"):
        RobustICPConfig(up_axis="w")
    with pytest.raises(ValueError, match="scale must be one of"):
        AlignmentConfig(scale="affine")
    with pytest.raises(ValueError, match="two non-empty clouds"):
        robust_icp(np.zeros((0, 3)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="finite points"):
        robust_icp(np.full((5, 3), np.nan), np.ones((5, 3)))
