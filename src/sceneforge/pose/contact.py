"""Collision-resolving projection after the optimisation: no interpenetration, stacked objects in
contact.

The physical terms of the loss are penalties that Adam balances against the image terms; Adam's
normalised steps overshoot the narrow band between "penetrating" and "floating" (a support hinge of
1 cm against a penetration that starts at 0), so the optimised poses keep small overlaps and gaps,
and the evaluation counts both (interpenetration volume; an object sunk into its support by more
than the tolerance is measured as floating above the floor). The projection removes them with the
smallest moves it can, by **translation only** (never scale or rotation: those are the image's),
each object within its pose model's degrees of freedom (planar: in the floor plane), objects kept
at their initial pose fixed:

1. ``separate``: Gauss-Seidel sweeps over the pairs of objects. A pair whose samples lie inside
   the other's SDF (depths ``d``, outward normals ``n`` from the SDF gradient) deeper than
   ``tolerance`` is
   separated. When one of them rests on the other (:func:`rests_on`: a movable 5-DoF object whose
   centre is the higher) and its centre is over the other's footprint, it is lifted along the floor
   normal by the smallest multiple of ``lift_step`` (in its sizes, up to ``max_lift``) that clears
   the pair: gravity's answer, and the only robust one for a thin support (a table top thinner than
   the SDF grid's cells, whose normals point both up and down, and whose SDF reads a pot sunk
   through it as barely inside); a lamp beside a low nightstand is not lifted over it. Otherwise
   the pair is pushed apart along
   ``u`` = the depth-weighted mean of the SDF normals at the penetrating samples, by the deepest
   penetration plus ``clearance``, as the least-norm split of that relative move between the two
   objects' allowed directions (two planar objects slide apart in the floor plane). A pair deeper
   than ``max_depth`` times the smaller one's size is left as it is: an overlap that deep is the
   approximate shapes disagreeing with the image, and pushing them apart moves them off their own
   depth points (docs/pose.md). A 5-DoF object below the floor is lifted onto it. Sweeps stop when
   no sample is deeper than ``tolerance``.
2. ``settle`` (the optimiser runs it only with ``PoseSettings.settle_max_drop`` > 0, off by
   default, docs/pose.md): a 5-DoF object whose samples are all clear of the others and of the floor, and
   whose gap to the first support below it (exact ray casts of its surface samples along the floor
   normal against the other objects' posed meshes, and the floor plane) exceeds ``contact`` (the
   support term's hinge: a smaller gap counts as contact there too), is lowered onto that support
   when the drop is at most ``max_drop`` times its size; an object floating higher is left where
   the image put it (it may hang or be fixed to a wall).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import trimesh

from sceneforge.geometry.planes import floor_axes
from sceneforge.pose.losses import signed_distance_to_objects
from sceneforge.pose.models import PoseModel


@dataclass(frozen=True, eq=False)
class Body:
    """One object for the projection: its pose model (moved in place), whether it may move, its
    canonical mesh and surface samples (N, 3), its SDF grid (grid, lo, hi) or None, its size (m)."""

    model: PoseModel
    movable: bool
    mesh: trimesh.Trimesh
    samples: torch.Tensor
    sdf: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None
    size: float


@dataclass(frozen=True)
class ContactSettings:
    """Tolerances in metres; ``max_drop``, ``lift_step``, ``max_lift`` and ``max_depth`` in object
    sizes."""

    tolerance: float = 0.002
    clearance: float = 0.001
    max_depth: float = float("inf")
    sweeps: int = 8
    max_drop: float = 0.15
    contact: float = 0.01
    lift_step: float = 0.005
    max_lift: float = 0.5
    support_share: float = 0.5
    support_flatness: float = 0.02
    support_reach: float = 0.15


@dataclass(frozen=True)
class SupportTop:
    """The flat top a carried object rests on: the supporter's index among the bodies and a point
    (3,) of that top in the supporter's canonical frame (its height follows the supporter's pose)."""

    supporter: int
    point: torch.Tensor


def support_tops(bodies: Sequence[Body], normal: torch.Tensor,
                 settings: ContactSettings = ContactSettings()) -> list[SupportTop | None]:
    """The flat top each movable 5-DoF body rests on, or None.

    Rays are cast down the floor normal from the body's samples raised to its centre height, against
    the other bodies' posed meshes (exact, not their SDF grids: a table top is often thinner than a
    grid cell). A body rests on the top of ``j`` when at least ``support_share`` of its rays hit
    ``j`` first, their hit heights lie within ``support_flatness`` x its size of each other (10th to
    90th percentile: a table top, a shelf board; not a pile of objects) and their median is within
    ``support_reach`` x its size of the body's lowest point (it stands there, it is not a lamp
    beside a low nightstand).
    """
    tops: list[SupportTop | None] = [None] * len(bodies)
    carried = [i for i, b in enumerate(bodies) if b.movable and b.model.kind != "planar"]
    if len(bodies) < 2 or not carried:
        return tops
    up = normal.detach().double().numpy()
    posed = [_posed_mesh(b) for b in bodies]
    for i in carried:
        body = bodies[i]
        world = _world(body).double().numpy()
        heights = world @ up
        origins = world + np.outer(heights.mean() - heights, up)
        others = [k for k in range(len(bodies)) if k != i]
        owner = np.repeat(others, [len(posed[k].faces) for k in others])
        hits, rays, faces = trimesh.util.concatenate([posed[k] for k in others]).ray.intersects_location(
            origins, np.repeat(-up[None], len(origins), 0), multiple_hits=False)
        if not len(rays):
            continue
        supporter = int(np.bincount(owner[faces]).argmax())
        on_top = owner[faces] == supporter
        if on_top.sum() < settings.support_share * len(origins):
            continue
        top = hits[on_top] @ up
        low, high = np.percentile(top, [10, 90])
        height = float(np.median(top))
        if high - low > settings.support_flatness * body.size or \
                abs(height - heights.min()) > settings.support_reach * body.size:
            continue
        point = origins.mean(0) + (height - heights.mean()) * up
        with torch.no_grad():
            pose = bodies[supporter].model()
            local = pose.to_local(torch.as_tensor(point, dtype=pose.t.dtype)[None])[0]
        tops[i] = SupportTop(supporter, local)
    return tops


def _world(body: Body) -> torch.Tensor:
    with torch.no_grad():
        return body.model().apply(body.samples)


def _inside(points: torch.Tensor, other: Body) -> tuple[torch.Tensor, torch.Tensor]:
    """Depths (N,) of ``points`` inside ``other`` (0 outside) and the outward unit normals (N, 3)."""
    pose = other.model()
    query = points.detach().clone().requires_grad_(True)
    sd = signed_distance_to_objects(query, *other.sdf, pose.detached())
    (grad,) = torch.autograd.grad(sd.sum(), query)
    normals = grad / grad.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    return torch.relu(-sd.detach()), normals


def separate(bodies: Sequence[Body], normal: torch.Tensor, offset: float,
             settings: ContactSettings = ContactSettings()) -> float:
    """Push overlapping bodies apart and lift 5-DoF bodies out of the floor (module docstring);
    returns the deepest remaining penetration (m) among the pairs it may push."""
    deepest = 0.0
    for _ in range(max(0, settings.sweeps)):
        deepest = 0.0
        for i, a in enumerate(bodies):
            if a.movable and a.model.kind != "planar":
                below = torch.relu(-(_world(a) @ normal + offset)).max()
                if float(below) > settings.tolerance:
                    a.model.translate(normal * (below + settings.clearance))
                deepest = max(deepest, float(below))
            for b in bodies[i + 1:]:
                if a.sdf is None or b.sdf is None or not (a.movable or b.movable):
                    continue
                deepest = max(deepest, _separate_pair(a, b, normal, settings))
        if deepest <= settings.tolerance:
            break
    return deepest


def _separate_pair(a: Body, b: Body, normal: torch.Tensor, settings: ContactSettings) -> float:
    """One push of the pair apart; returns its deepest penetration before the push (m), 0 for a
    pair too deep to push (``max_depth``)."""
    xa, xb = _world(a), _world(b)
    lo = torch.maximum(xa.amin(0), xb.amin(0))
    hi = torch.minimum(xa.amax(0), xb.amax(0))
    if bool(torch.any(lo > hi)):
        return 0.0
    depth = _pair_depth(a, b)
    if depth <= settings.tolerance:
        return depth
    if depth > settings.max_depth * min(a.size, b.size):
        return 0.0  # left to the image terms: no sweep waits on it
    carried = _carried(a, b, normal)
    if carried is not None:
        upper, lower = (a, b) if carried == 0 else (b, a)
        lift = _lift(upper, lower, normal, settings.max_lift * upper.size, settings) \
            if _over_footprint(upper, lower, normal) else None
        if lift is not None:
            upper.model.translate(normal * lift)
            return depth
    da, na = _inside(xa, b)  # a's samples inside b: a moves along +na
    db, nb = _inside(xb, a)  # b's samples inside a: a moves along -nb
    u = (da[:, None] * na).sum(0) - (db[:, None] * nb).sum(0)
    if float(u.norm()) < 1e-12:
        return depth
    u = u / u.norm()
    pa = _allowed(a, u)
    pb = _allowed(b, u)
    reach = float(pa @ u + pb @ u)
    if reach < 1e-6:
        return depth
    step = (depth + settings.clearance) / reach
    a.model.translate(step * pa)
    b.model.translate(-step * pb)
    return depth


def _pair_depth(a: Body, b: Body, shift: torch.Tensor | None = None) -> float:
    """Deepest penetration (m) of either body's samples into the other, ``a`` moved by ``shift``."""
    xa = _world(a) if shift is None else _world(a) + shift
    pose_a = a.model()
    with torch.no_grad():
        if shift is not None:
            pose_a = replace(pose_a, t=pose_a.t + shift)
        da = torch.relu(-signed_distance_to_objects(xa, *b.sdf, b.model())).max()
        db = torch.relu(-signed_distance_to_objects(_world(b), *a.sdf, pose_a)).max()
    return float(torch.maximum(da, db))


def rests_on(kind: str, movable: bool, height: float, other_height: float) -> bool:
    """Whether an object (pose model ``kind``) rests on another and yields to it: it may move, is
    not planar (planar objects stand on the floor) and its centre is the higher (heights along the
    floor normal, metres). The loss's penetration term and the projection share this rule."""
    return movable and kind != "planar" and height > other_height


def _carried(a: Body, b: Body, normal: torch.Tensor) -> int | None:
    """0 or 1: which of the pair rests on the other (:func:`rests_on`); None when neither."""
    ha, hb = float(_world(a).mean(0) @ normal), float(_world(b).mean(0) @ normal)
    if rests_on(a.model.kind, a.movable, ha, hb):
        return 0
    if rests_on(b.model.kind, b.movable, hb, ha):
        return 1
    return None


def _over_footprint(upper: Body, lower: Body, normal: torch.Tensor) -> bool:
    """Whether ``upper``'s centre lies over ``lower``'s footprint (the box of its samples in the
    floor plane), as the evaluation's support test asks."""
    basis = torch.as_tensor(np.stack(floor_axes(normal.detach().double().numpy())), dtype=normal.dtype)
    centre = _world(upper).mean(0) @ basis.T
    flat = _world(lower) @ basis.T
    return bool(torch.all(centre >= flat.amin(0)) and torch.all(centre <= flat.amax(0)))


def _lift(upper: Body, lower: Body, normal: torch.Tensor, limit: float, settings: ContactSettings) -> float | None:
    """Smallest lift (m) along the floor normal, in steps of ``lift_step`` object sizes up to
    ``limit`` metres, that takes ``upper`` out of ``lower``; None when there is none."""
    step = max(settings.lift_step * upper.size, settings.tolerance)
    for k in range(1, int(limit / step) + 2):
        if _pair_depth(upper, lower, normal * (k * step)) <= settings.tolerance:
            return k * step + settings.clearance
    return None


def _allowed(body: Body, u: torch.Tensor) -> torch.Tensor:
    """(3,) the part of ``u`` the body can move along (0 when it is fixed)."""
    if not body.movable:
        return torch.zeros_like(u)
    basis = body.model.translation_basis()
    return basis.T @ (basis @ u)


def settle(bodies: Sequence[Body], normal: torch.Tensor, offset: float,
           settings: ContactSettings = ContactSettings()) -> list[float]:
    """Lower floating 5-DoF bodies onto the first contact below them (module docstring), the lowest
    first; returns each body's drop (m, 0 when it did not move)."""
    drops = [0.0] * len(bodies)
    order = sorted(range(len(bodies)), key=lambda k: float((_world(bodies[k]) @ normal).min()))
    up = normal.detach().double().numpy()
    for i in order:
        body = bodies[i]
        if not body.movable or body.model.kind == "planar" or settings.max_drop <= 0:
            continue
        world = _world(body)
        if any(float(_inside(world, b)[0].max()) > settings.tolerance
               for k, b in enumerate(bodies) if k != i and b.sdf is not None):
            continue  # still overlapping another object: a ray from inside it would miss the support
        points = world.double().numpy()
        gap = float((points @ up + offset).min())
        others = [_posed_mesh(b) for k, b in enumerate(bodies) if k != i]
        if others:
            scene = trimesh.util.concatenate(others)
            locations, ray_index, _ = scene.ray.intersects_location(points, np.repeat(-up[None], len(points), 0),
                                                                    multiple_hits=False)
            if len(ray_index):
                gap = min(gap, float(np.min((points[ray_index] - locations) @ up)))
        if settings.contact < gap <= settings.max_drop * body.size:
            body.model.translate(-normal * float(gap - settings.clearance))
            drops[i] = gap
    return drops


def _posed_mesh(body: Body) -> trimesh.Trimesh:
    with torch.no_grad():
        pose = body.model()
    mesh = body.mesh.copy()
    mesh.vertices = np.asarray(mesh.vertices) * pose.stretch_factors()
    mesh.apply_transform(pose.to_similarity().matrix)
    return mesh
