"""Pose parameterisations and SDF grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from sceneforge.geometry import rotation_about_axis, rotation_y
from sceneforge.pose.models import build_model, nearest_upright, rotation_from_rotvec
from sceneforge.pose.sdf import build_sdf_grid, sample_sdf, winding_numbers
from sceneforge.types import Plane, Similarity

PIVOT = np.array([0.0, -0.4, 0.0])  # bottom centre of a canonical box of height 0.8


def _tilted_floor() -> Plane:
    n = np.array([0.1, 1.0, -0.2])
    return Plane.from_point_normal(np.array([0.3, -0.5, 1.0]), n)


@pytest.mark.parametrize("floor", [Plane(np.array([0.0, 1.0, 0.0]), 0.0), _tilted_floor()])
def test_planar_model_keeps_the_pivot_on_the_floor(floor):
    initial = Similarity(rotation_y(0.4), np.array([0.5, 0.7, 2.0]), 1.3)
    model = build_model("planar", initial, floor, PIVOT, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
        pose = model()
        pivot_world = pose.apply(torch.tensor(PIVOT)[None])[0].detach().numpy()
        assert floor.signed_distance(pivot_world[None])[0] == pytest.approx(0.0, abs=1e-12)


def test_planar_model_has_four_degrees_of_freedom_and_yaws_about_the_normal():
    floor = _tilted_floor()
    model = build_model("planar", Similarity(t=np.array([0.0, 1.0, 0.0])), floor, PIVOT, dtype=torch.float64)
    assert sum(p.numel() for p in model.parameters()) == 4
    with torch.no_grad():
        model.yaw.fill_(0.7)
    R = model().R.detach().numpy()
    assert R @ floor.normal == pytest.approx(floor.normal)  # rotation axis = floor normal


@pytest.mark.parametrize("kind, dof", [("5dof", 5), ("7dof", 8)])
def test_free_models_start_at_the_initial_pose(kind, dof):
    floor = Plane(np.array([0.0, 1.0, 0.0]), 0.0)
    initial = Similarity(rotation_y(-1.1), np.array([0.2, 1.5, 3.0]), 0.7)
    model = build_model(kind, initial, floor, PIVOT, dtype=torch.float64)
    assert sum(p.numel() for p in model.parameters()) == dof  # 7-DoF: yaw + rotvec overlap by design
    pose = model().to_similarity()
    assert pose.matrix == pytest.approx(initial.matrix)


@pytest.mark.parametrize("kind", ["planar", "5dof"])
def test_scale_is_uniform_and_about_the_bottom_pivot(kind):
    # a carried 5-DoF object keeps its base on its support's top while its size changes
    floor = Plane(np.array([0.0, 1.0, 0.0]), 0.0)
    model = build_model(kind, Similarity(t=np.array([0.0, 0.4, 0.0])), floor, PIVOT, dtype=torch.float64)
    with torch.no_grad():
        model.log_scale.fill_(np.log(2.0))
    pose = model()
    assert float(pose.s.detach()) == pytest.approx(2.0)
    top, bottom = pose.apply(torch.tensor(np.array([[0.0, 0.4, 0.0], PIVOT]))).detach().numpy()
    assert top == pytest.approx([0.0, 1.6, 0.0]) and bottom == pytest.approx([0.0, 0.0, 0.0])


def test_rotvec_is_smooth_at_zero_and_matches_rodrigues():
    v = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    R = rotation_from_rotvec(v).numpy()
    from scipy.spatial.transform import Rotation

    assert R == pytest.approx(Rotation.from_rotvec(v.numpy()).as_matrix())
    zero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    rotation_from_rotvec(zero).sum().backward()
    assert torch.all(torch.isfinite(zero.grad))


def test_a_tilted_start_is_turned_upright_keeping_its_yaw_scale_and_centre():
    upright = Similarity(rotation_y(0.3), np.array([1.0, 0.0, -2.0]), 0.5)
    up = np.array([0.0, 1.0, 0.0])
    centre = np.array([0.1, 0.4, -0.2])
    tilt = rotation_about_axis(np.array([1.0, 0.0, 1.0]), 0.2)
    tilted = Similarity(tilt @ rotation_y(1.1), np.array([0.5, 0.3, -1.5]), 0.8)
    snapped = nearest_upright(tilted, upright, up, centre)
    assert np.allclose(snapped.R @ up, up)                       # upright again
    assert np.allclose(snapped.R, rotation_y(1.1), atol=0.03)    # the same yaw, near enough
    assert snapped.s == tilted.s
    assert np.allclose(snapped.apply(centre[None]), tilted.apply(centre[None]))
    turned = Similarity(rotation_y(-2.0), tilted.t, 0.8)          # already upright: unchanged
    assert np.allclose(nearest_upright(turned, upright, up, centre).R, turned.R)
    assert np.allclose(nearest_upright(turned, upright, up, centre).t, turned.t)


def test_unknown_model_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown pose model 'six'"):
        build_model("six", Similarity(), Plane(np.array([0.0, 1.0, 0.0]), 0.0), PIVOT)


def test_winding_numbers_and_sdf_of_a_box():
    box = trimesh.creation.box((1.0, 0.8, 0.6))
    w = winding_numbers(box, np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.45, 0.35, 0.25]]))
    assert w == pytest.approx([1.0, 0.0, 1.0], abs=1e-6)
    grid = build_sdf_grid(box, resolution=24)
    query = np.array([[0.0, 0.0, 0.0], [0.0, 0.6, 0.0], [1.5, 0.0, 0.0], [0.3, 0.1, 0.1]])
    sdf = sample_sdf(torch.tensor(grid.values), torch.tensor(grid.lo, dtype=torch.float32),
                     torch.tensor(grid.hi, dtype=torch.float32), torch.tensor(query, dtype=torch.float32)).numpy()
    exact = [-0.3, 0.2, 1.0, -0.2]
    assert sdf == pytest.approx(exact, abs=0.04)


def test_sdf_without_open3d_uses_winding_numbers(monkeypatch):
    from sceneforge.pose import sdf as sdf_module

    def no_open3d(*args, **kwargs):
        raise ImportError("open3d")

    box = trimesh.creation.box((1.0, 0.8, 0.6))
    with_open3d = build_sdf_grid(box, resolution=12)
    monkeypatch.setattr(sdf_module, "_open3d_sdf", no_open3d)
    fallback = build_sdf_grid(box, resolution=12)
    assert np.array_equal(np.sign(fallback.values), np.sign(with_open3d.values))
    assert np.abs(fallback.values - with_open3d.values).max() < 0.03


def test_sdf_of_overlapping_closed_parts_is_their_union():
    # engine furniture is made of closed parts that overlap (a desk's top, legs, drawers): one
    # ray-parity test on the whole mesh crosses two surfaces in the overlap and reads "outside"
    a = trimesh.creation.box((1.0, 0.4, 0.4))
    b = trimesh.creation.box((0.4, 1.0, 0.4))
    mesh = trimesh.util.concatenate([a, b])
    grid = build_sdf_grid(mesh, resolution=24)
    query = np.array([[0.0, 0.0, 0.0], [0.1, 0.1, 0.0], [0.4, 0.0, 0.0], [0.0, 0.4, 0.0], [0.4, 0.4, 0.0]])
    sdf = sample_sdf(torch.tensor(grid.values), torch.tensor(grid.lo, dtype=torch.float32),
                     torch.tensor(grid.hi, dtype=torch.float32), torch.tensor(query, dtype=torch.float32)).numpy()
    assert np.all(sdf[:4] < -0.05), sdf  # both overlap points and the arms are inside
    assert sdf[4] == pytest.approx(0.2, abs=0.03)  # outside the union: distance to the nearer arm


def test_scale_gradient_can_be_detached():
    floor = Plane(np.array([0.0, 1.0, 0.0]), 0.0)
    for kind in ("planar", "5dof", "7dof"):
        model = build_model(kind, Similarity(np.eye(3), np.array([0.1, 0.5, 2.0]), 0.8), floor, PIVOT)
        with torch.no_grad():
            model.log_scale.fill_(0.1)
        attached, detached = model(), model(scale_gradient=False)
        assert torch.allclose(attached.t, detached.t) and torch.allclose(attached.s, detached.s)
        detached.apply(torch.ones(4, 3)).sum().backward()
        assert model.log_scale.grad is None or float(model.log_scale.grad) == 0.0
        assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.parameters())


def test_a_planar_model_with_a_measured_height_scales_the_footprint_only():
    floor = Plane(np.array([0.0, 1.0, 0.0]), 0.0)
    initial = Similarity(rotation_y(0.3), np.array([0.2, 0.52, 1.0]), 1.3)
    model = build_model("planar", initial, floor, PIVOT, dtype=torch.float64, height_scale=1.3)
    with torch.no_grad():
        model.log_scale.fill_(np.log(1.2))
    pose = model()
    corners = torch.tensor(np.array([[0.5, 0.4, 0.5], [-0.5, -0.4, -0.5]]))
    top, bottom = pose.apply(corners).detach().numpy()
    assert top[1] - bottom[1] == pytest.approx(0.8 * 1.3) and bottom[1] == pytest.approx(0.0)
    assert np.hypot(*(top - bottom)[[0, 2]]) == pytest.approx(np.sqrt(2.0) * 1.3 * 1.2)
    world = pose.apply(corners)
    assert pose.to_local(world).detach().numpy() == pytest.approx(corners.numpy())
    assert pose.stretch_factors() == pytest.approx([1.0, 1.0 / 1.2, 1.0])
    # the baked mesh placed by the uniform similarity is the stretched one
    baked = corners.numpy() * pose.stretch_factors()
    assert pose.to_similarity().apply(baked) == pytest.approx(world.detach().numpy())


@pytest.mark.parametrize("kind", ["planar", "5dof"])
def test_the_footprint_aspect_stretches_x_and_z_oppositely_within_its_limit(kind):
    floor = Plane(np.array([0.0, 1.0, 0.0]), 0.0)
    initial = Similarity(rotation_y(0.3), np.array([0.2, 0.4, 1.0]), 1.0)
    model = build_model(kind, initial, floor, PIVOT, dtype=torch.float64, aspect=0.2)
    assert model.log_aspect in model.parameter_groups()["scale"]
    with torch.no_grad():
        model.log_aspect.fill_(0.05)  # well inside the limit: nearly itself
    assert model().stretch_factors() == pytest.approx(np.exp([0.05, 0.0, -0.05]), rel=3e-3)
    with torch.no_grad():
        model.log_aspect.fill_(3.0)  # far beyond it: held at the limit, e^0.2
    pose = model()
    assert pose.stretch_factors() == pytest.approx(np.exp([0.2, 0.0, -0.2]))
    bottom = pose.apply(torch.tensor(np.array([PIVOT]))).detach().numpy()[0]
    assert bottom == pytest.approx(initial.apply(np.array([PIVOT]))[0])  # the pivot stays where it was
    corners = torch.tensor(np.array([[0.5, 0.4, 0.5], [-0.5, -0.4, -0.5]]))
    assert pose.to_local(pose.apply(corners)).detach().numpy() == pytest.approx(corners.numpy())
    plain = build_model(kind, initial, floor, PIVOT, dtype=torch.float64)
    assert plain.log_aspect is None and plain().stretch is None
