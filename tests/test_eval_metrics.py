"""Evaluation metrics against independent references: Objectron box IoU values, brute-force Chamfer
and F-score, known geometric answers, sampling statistics."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from sceneforge.eval.boxes import aabb_iou, box_corners, oriented_box_intersection_volume, oriented_box_iou
from sceneforge.eval.metrics import mean_scores, point_cloud_scores
from sceneforge.eval.physics import PlacedObject, floating_distances, interpenetration
from sceneforge.eval.sampling import mesh_is_degenerate, sample_surface, sample_surface_with_normals
from sceneforge.geometry.transforms import make_transform, rotation_y


# ---------------------------------------------------------------- boxes

def test_oriented_box_iou_matches_objectron_reference(shared_dir):
    ref = np.load(shared_dir / "data" / "reference" / "objectron_box_iou_reference.npz")
    ious = np.array([[oriented_box_iou(a, b) for b in ref["boxes2"]] for a in ref["boxes1"]])
    np.testing.assert_allclose(ious, ref["ious"], atol=1e-4)


def test_oriented_box_iou_known_answers():
    unit = box_corners(np.eye(4), np.zeros(3), np.ones(3))
    assert oriented_box_iou(unit, unit) == pytest.approx(1.0)
    shifted = box_corners(make_transform(t=[0.5, 0, 0]), np.zeros(3), np.ones(3))
    assert oriented_box_iou(unit, shifted) == pytest.approx(1 / 3)
    far = box_corners(make_transform(t=[3, 0, 0]), np.zeros(3), np.ones(3))
    assert oriented_box_iou(unit, far) == 0.0
    # a cube turned 45 degrees about its own vertical axis inside itself: overlap = the octagon prism
    centred = box_corners(np.eye(4), -0.5 * np.ones(3), 0.5 * np.ones(3))
    turned = box_corners(make_transform(rotation_y(np.pi / 4)), -0.5 * np.ones(3), 0.5 * np.ones(3))
    octagon = 2 * (np.sqrt(2) - 1)  # area of the regular octagon common to the two unit squares
    assert oriented_box_intersection_volume(centred, turned) == pytest.approx(octagon, rel=1e-9)
    flat = box_corners(np.eye(4), np.zeros(3), np.array([1.0, 0.0, 1.0]))
    assert oriented_box_iou(unit, flat) == 0.0


def test_aabb_iou_known_answers():
    a = np.array([[0, 0, 0], [1, 1, 1]], dtype=float)
    assert aabb_iou(a, a) == 1.0
    assert aabb_iou(a, a + [0.5, 0, 0]) == pytest.approx(1 / 3)
    assert aabb_iou(a, a + 2) == 0.0
    assert aabb_iou(a, np.full((2, 3), np.nan)) == 0.0


# ---------------------------------------------------------------- Chamfer and F-score

def _brute_force(pred: np.ndarray, gt: np.ndarray, tau: float) -> dict[str, float]:
    d = np.sqrt(((pred[:, None, :] - gt[None, :, :]) ** 2).sum(-1))
    d_pg, d_gp = d.min(axis=1), d.min(axis=0)
    precision, recall = np.mean(d_pg < tau), np.mean(d_gp < tau)
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"l2_sum": np.mean(d_pg ** 2) + np.mean(d_gp ** 2), "l1_mean": 0.5 * (d_pg.mean() + d_gp.mean()),
            "f": f, "hausdorff": max(d_pg.max(), d_gp.max())}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chamfer_and_fscore_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    gt = rng.random((700, 3))
    pred = gt[:500] + rng.normal(scale=0.05, size=(500, 3))
    pred = np.concatenate([pred, rng.random((80, 3)) * 2])
    taus = (0.1, 0.05, 0.02)
    scores = point_cloud_scores(pred, gt, taus)
    for tau in taus:
        ref = _brute_force(pred, gt, tau)
        assert scores.fscore[tau] == pytest.approx(ref["f"], abs=1e-12)
    assert scores.chamfer_l2_sum == pytest.approx(ref["l2_sum"], rel=1e-10)
    assert scores.chamfer_l1_mean == pytest.approx(ref["l1_mean"], rel=1e-10)
    assert scores.hausdorff == pytest.approx(ref["hausdorff"], rel=1e-10)


def test_identical_clouds_score_perfectly_and_conventions_differ():
    rng = np.random.default_rng(3)
    gt = rng.random((300, 3))
    perfect = point_cloud_scores(gt, gt)
    assert perfect.chamfer_l2_sum == 0 and perfect.chamfer_l1_mean == 0 and perfect.fscore[0.1] == 1.0
    shifted = point_cloud_scores(gt + [0.3, 0, 0], gt)
    assert shifted.chamfer_l2_sum != pytest.approx(shifted.chamfer_l1_mean)


def test_empty_prediction_scores_zero_and_infinite():
    scores = point_cloud_scores(np.zeros((0, 3)), np.ones((10, 3)))
    assert scores.fscore[0.1] == 0.0 and np.isinf(scores.chamfer_l2_sum) and np.isinf(scores.chamfer_l1_mean)
    nan_only = point_cloud_scores(np.full((5, 3), np.nan), np.ones((10, 3)))
    assert nan_only.fscore[0.1] == 0.0 and np.isinf(nan_only.hausdorff)
    with pytest.raises(ValueError, match="ground-truth point cloud is empty"):
        point_cloud_scores(np.ones((3, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="tau must be positive"):
        point_cloud_scores(np.ones((3, 3)), np.ones((3, 3)), taus=(0.0,))


def test_mean_scores_averages_and_keeps_infinity():
    a = point_cloud_scores(np.zeros((1, 3)), np.zeros((1, 3)))
    b = point_cloud_scores(np.array([[1.0, 0, 0]]), np.zeros((1, 3)))
    m = mean_scores([a, b])
    assert m.chamfer_l2_sum == pytest.approx(1.0) and m.fscore[0.1] == pytest.approx(0.5)
    assert np.isinf(mean_scores([a, point_cloud_scores(np.zeros((0, 3)), np.zeros((1, 3)))]).chamfer_l1_mean)


# ---------------------------------------------------------------- sampling

def test_sampling_is_area_weighted_and_seeded():
    # two triangles, areas 0.5 and 1.5: a quarter of the points fall on the first
    mesh = trimesh.Trimesh(vertices=[[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 0, 0], [8, 0, 0], [5, 1, 0]],
                           faces=[[0, 1, 2], [3, 4, 5]], process=False)
    points = sample_surface(mesh, 40_000, seed=1)
    assert np.mean(points[:, 0] < 2) == pytest.approx(0.25, abs=0.01)
    first = points[points[:, 0] < 2]
    assert np.all(first[:, 0] + first[:, 1] <= 1 + 1e-9) and np.all(first >= -1e-12)
    np.testing.assert_array_equal(points, sample_surface(mesh, 40_000, seed=1))
    assert not np.array_equal(points, sample_surface(mesh, 40_000, seed=2))


def test_sampling_lies_on_surface_with_face_normals():
    box = trimesh.creation.box(extents=[1, 2, 3])
    sample = sample_surface_with_normals(box, 2000, seed=0)
    on_face = np.isclose(np.abs(sample.points), [0.5, 1.0, 1.5]).any(axis=1)
    assert on_face.all()
    np.testing.assert_allclose(np.linalg.norm(sample.normals, axis=1), 1.0)


def test_degenerate_and_nan_meshes_do_not_crash():
    flat = trimesh.Trimesh(vertices=[[0, 0, 0], [1, 0, 0], [2, 0, 0]], faces=[[0, 1, 2]], process=False)
    assert mesh_is_degenerate(flat)
    sample = sample_surface_with_normals(flat, 10)
    assert sample.points.shape == (10, 3) and sample.normals is None
    nan = trimesh.Trimesh(vertices=[[np.nan, 0, 0], [1, 0, 0], [0, 1, 0]], faces=[[0, 1, 2]], process=False)
    assert sample_surface(nan, 5).shape == (5, 3) and np.all(np.isfinite(sample_surface(nan, 5)))
    all_nan = trimesh.Trimesh(vertices=np.full((3, 3), np.nan), faces=[[0, 1, 2]], process=False)
    assert sample_surface(all_nan, 5).shape == (0, 3)
    with pytest.raises(ValueError, match="count must be positive"):
        sample_surface(flat, 0)


# ---------------------------------------------------------------- plausibility

def _placed(mesh: trimesh.Trimesh) -> PlacedObject:
    lo, hi = mesh.bounds
    return PlacedObject(mesh, box_corners(np.eye(4), lo, hi), sample_surface(mesh, 2000))


def test_interpenetration_volume_of_overlapping_cubes():
    a = trimesh.creation.box(extents=[1, 1, 1])
    b = trimesh.creation.box(extents=[1, 1, 1])
    b.apply_translation([0.5, 0, 0])
    c = trimesh.creation.box(extents=[1, 1, 1])
    c.apply_translation([5, 0, 0])
    volume, pairs, approximate = interpenetration([_placed(a), _placed(b), _placed(c)])
    assert volume == pytest.approx(0.5, rel=1e-6) and pairs == 1 and approximate == 0


def test_interpenetration_counts_a_region_where_an_objects_own_parts_overlap_once():
    """A desk-like object of two overlapping closed parts (as engine assets are made) and a cube
    inside the region where the parts overlap: the overlap is the cube's volume, not twice it."""
    first = trimesh.creation.box(extents=[1, 1, 1])
    second = trimesh.creation.box(extents=[1, 1, 1])
    second.apply_translation([0.5, 0, 0])
    parts = trimesh.util.concatenate([first, second])
    cube = trimesh.creation.box(extents=[0.2, 0.2, 0.2])
    cube.apply_translation([0.25, 0, 0])
    volume, pairs, approximate = interpenetration([_placed(parts), _placed(cube)])
    assert volume == pytest.approx(0.008, rel=1e-6) and pairs == 1 and approximate == 0


def test_floating_distance_above_floor_and_on_support():
    table = trimesh.creation.box(extents=[2, 1, 2])
    table.apply_translation([0, 0.5, 0])           # on the floor (y = 0), top at 1
    cup = trimesh.creation.box(extents=[0.2, 0.2, 0.2])
    cup.apply_translation([0, 1.1, 0])             # resting on the table top
    balloon = trimesh.creation.box(extents=[0.2, 0.2, 0.2])
    balloon.apply_translation([5, 0.4, 0])         # 0.3 above the floor
    gaps = floating_distances([_placed(table), _placed(cup), _placed(balloon)], np.array([0, 1.0, 0]), 0.0)
    np.testing.assert_allclose(gaps, [0.0, 0.0, 0.3], atol=1e-9)
