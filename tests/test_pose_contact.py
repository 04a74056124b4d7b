"""Collision-resolving projection (pose/contact.py): stacked objects are lifted out of their
support and settled onto it, floor objects slide apart, scale and rotation never change."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from sceneforge.pose.contact import Body, ContactSettings, _pair_depth, separate, settle
from sceneforge.pose.models import build_model
from sceneforge.pose.sdf import build_sdf_grid
from sceneforge.types import Plane, Similarity

FLOOR = Plane(np.array([0.0, 1.0, 0.0]), 0.0)
NORMAL = torch.tensor([0.0, 1.0, 0.0])


def body(mesh: trimesh.Trimesh, kind: str, t, s: float, movable: bool = True) -> Body:
    """``mesh`` canonical (box-centred, largest side 1) posed at translation ``t``, scale ``s``."""
    lo, hi = mesh.bounds
    pivot = np.array([0.5 * (lo[0] + hi[0]), lo[1], 0.5 * (lo[2] + hi[2])])
    model = build_model(kind, Similarity(np.eye(3), np.asarray(t, float), s), FLOOR, pivot)
    grid = build_sdf_grid(mesh, 24)
    samples, _ = trimesh.sample.sample_surface(mesh, 1024, seed=0)
    sdf = (torch.tensor(grid.values), torch.tensor(grid.lo, dtype=torch.float32),
           torch.tensor(grid.hi, dtype=torch.float32))
    return Body(model, movable, mesh, torch.tensor(samples, dtype=torch.float32), sdf, s)


def table() -> trimesh.Trimesh:
    """A unit table: a 4 cm top (thinner than a 24³ grid cell) on four legs, overlapping parts."""
    parts = [trimesh.creation.box((1.0, 0.04, 0.6)).apply_translation((0, 0.28, 0))]
    for x in (-0.45, 0.45):
        for z in (-0.25, 0.25):
            parts.append(trimesh.creation.box((0.05, 0.58, 0.05)).apply_translation((x, -0.0, z)))
    mesh = trimesh.util.concatenate(parts)
    lo, hi = mesh.bounds
    return mesh.apply_translation(-(lo + hi) / 2)


def top(b: Body) -> float:
    with torch.no_grad():
        return float(b.model().apply(b.samples)[:, 1].max())


def lowest(b: Body) -> float:
    with torch.no_grad():
        return float(b.model().apply(b.samples)[:, 1].min())


def test_an_object_sunk_into_a_thin_table_top_is_lifted_onto_it():
    desk = body(table(), "planar", (0.0, 0.3, 0.0), 1.0)
    height = top(desk)  # 0.59: the planar model stands it on the floor
    pot = body(trimesh.creation.box((1.0, 1.0, 1.0)), "5dof", (0.1, height + 0.1 - 0.05, 0.0), 0.2)
    before = desk.model().t.detach().clone()
    separate([desk, pot], NORMAL, 0.0)
    assert height - 0.002 < lowest(pot) < height + 0.005, (lowest(pot), height)
    assert torch.allclose(desk.model().t, before)  # the supporter does not move
    with torch.no_grad():
        assert float(pot.model().s) == pytest.approx(0.2) and torch.allclose(pot.model().R, torch.eye(3))


def test_a_floating_object_settles_onto_its_support_and_a_high_one_stays():
    desk = body(table(), "planar", (0.0, 0.3, 0.0), 1.0)
    height = top(desk)
    near = body(trimesh.creation.box((1.0, 1.0, 1.0)), "5dof", (-0.3, height + 0.1 + 0.02, 0.0), 0.2)
    far = body(trimesh.creation.box((1.0, 1.0, 1.0)), "5dof", (0.3, height + 0.1 + 0.2, 0.0), 0.2)
    close = body(trimesh.creation.box((1.0, 1.0, 1.0)), "5dof", (0.0, height + 0.1 + 0.005, 0.0), 0.2)
    drops = settle([desk, near, far, close], NORMAL, 0.0)
    assert abs(lowest(near) - height) < 0.003 and drops[1] > 0.015
    assert drops[2] == 0.0 and abs(lowest(far) - height - 0.2) < 1e-5  # a whole size above: left
    assert drops[3] == 0.0  # within the support term's 1 cm hinge: already in contact


def test_two_overlapping_floor_objects_slide_apart_in_the_floor_plane():
    box = trimesh.creation.box((1.0, 0.6, 0.6))
    a = body(box, "planar", (0.0, 0.15, 0.0), 0.5)
    b = body(box, "planar", (0.4, 0.15, 0.05), 0.5)  # 10 cm overlap along x
    separate([a, b], NORMAL, 0.0)
    ta, tb = a.model().t.detach(), b.model().t.detach()
    assert float(tb[0] - ta[0]) > 0.5 - 0.01  # the boxes are 0.5 m long along x
    assert abs(float(ta[1]) - 0.15) < 1e-5 and abs(float(tb[1]) - 0.15) < 1e-5  # still on the floor


@pytest.mark.parametrize("overlap, pushed", [(0.02, True), (0.1, False)])
def test_only_an_overlap_shallower_than_max_depth_is_pushed_apart(overlap, pushed):
    """With ``max_depth`` 5 % of the smaller object's size (the pose stage's default), two 0.5 m
    floor boxes 2 cm into each other slide apart; 10 cm in, the overlap is the shapes' disagreement
    with the image and the pair stays where it was."""
    box = trimesh.creation.box((1.0, 0.6, 0.6))
    a = body(box, "planar", (0.0, 0.15, 0.0), 0.5)
    b = body(box, "planar", (0.5 - overlap, 0.15, 0.0), 0.5)
    deepest = separate([a, b], NORMAL, 0.0, ContactSettings(max_depth=0.05))
    gap = float(b.model().t.detach()[0] - a.model().t.detach()[0])
    if pushed:
        assert gap > 0.5 - 0.002 and _pair_depth(a, b) <= 0.002
    else:
        assert gap == pytest.approx(0.5 - overlap, abs=1e-6) and deepest == 0.0


def test_an_object_beside_a_lower_one_is_pushed_aside_not_lifted_over_it():
    cube = trimesh.creation.box((1.0, 1.0, 1.0))
    stand = body(cube, "planar", (0.0, 0.25, 0.0), 0.5)  # top at 0.5
    lamp = body(cube, "5dof", (0.45, 0.6, 0.0), 1.2)  # centre higher, beside it, 15 cm overlap in x
    assert _pair_depth(stand, lamp) > 0.1
    separate([stand, lamp], NORMAL, 0.0)
    assert lowest(lamp) < top(stand) - 0.25  # not lifted onto the stand (a lift needs 0.5 m)
    assert _pair_depth(stand, lamp) < 0.005  # pushed out along the SDF normals instead
