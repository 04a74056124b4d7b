"""Physical checks of a layout: no interpenetration (python-fcl) and every object resting.

An object rests when its lowest world point lies on the floor (y = 0) or on the top of its support
(the support's highest world point) within ``tol`` metres. Two objects interpenetrate when their
surfaces cross (fcl triangle-triangle collision) or one lies inside the other (a vertex inside a
closed mesh whose box contains it). A supported object touches its support by construction, so that
pair is tested with the object lifted by ``contact_lift`` metres: touching passes, sinking in fails.
Meshes given with a box that holds them (:class:`BoxedMesh`) need no BVH of a whole mesh: boxes
apart settle a pair, else fcl runs on the faces of each mesh near the other's box
(:func:`meshes_close`), which decides as fcl on the whole meshes does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import trimesh

from sceneforge.errors import MissingDependencyError

FLOOR = 0


def _fcl() -> Any:
    try:
        import fcl
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("python-fcl", purpose="collision checks of layouts") from exc
    return fcl


def fcl_object(vertices: np.ndarray, faces: np.ndarray) -> Any:
    """An fcl CollisionObject of a triangle mesh (vertices (N, 3) metres, faces (F, 3)), identity pose."""
    fcl = _fcl()
    model = fcl.BVHModel()
    model.beginModel(len(faces), len(vertices))
    # python-fcl reads each face row item by item: from lists of ints faster than from an array
    model.addSubModel(np.ascontiguousarray(vertices, dtype=np.float64), np.asarray(faces).tolist())
    model.endModel()
    return fcl.CollisionObject(model, fcl.Transform())


#: Metres by which a distance between two bounding boxes (fcl's GJK, accurate to ~1e-6 m) must
#: exceed a gap before it stands for the enclosed meshes being at least that gap apart; also the
#: slack added to the boxes when picking the faces near them.
BOX_SLACK = 1e-4


@dataclass(frozen=True, eq=False)
class BoxedMesh:
    """A triangle mesh in its own frame and a box that holds it; placed in the world by a translation.

    vertices : (N, 3) metres.  faces : (F, 3) int.
    rotation : (3, 3) the box's axes (columns).  centre : (3,) its centre.  half_extents : (3,) its
        half sides, metres; all in the mesh's frame.
    """

    vertices: np.ndarray
    faces: np.ndarray
    rotation: np.ndarray
    centre: np.ndarray
    half_extents: np.ndarray

    def box_object(self, translation: np.ndarray) -> Any:
        """An fcl object of the box (no BVH to build), moved by ``translation`` (3,)."""
        fcl = _fcl()
        box = fcl.Box(*(2.0 * np.asarray(self.half_extents, dtype=np.float64)))
        return fcl.CollisionObject(box, fcl.Transform(np.asarray(self.rotation, dtype=np.float64),
                                                      self.centre + translation))

    def move_box(self, box: Any, translation: np.ndarray) -> Any:
        """Put a :meth:`box_object` of this mesh at ``translation`` (3,); returns it."""
        box.setTranslation(self.centre + translation)
        return box

    def collision_object(self, translation: np.ndarray, faces: np.ndarray | None = None) -> Any:
        """An fcl object (BVH) of ``faces`` (default: all), moved by ``translation`` (3,).

        Of a subset of the faces only the vertices they use are handed to fcl: python-fcl copies every
        vertex given (~0.4 us each), which cost more than the BVH of a few faces; the triangles, and
        so every collision and distance result, are the same."""
        if faces is None:
            obj = fcl_object(self.vertices, self.faces)
        else:
            used, corners = np.unique(faces, return_inverse=True)
            obj = fcl_object(self.vertices[used], corners.reshape(-1, 3))
        set_translation(obj, translation)
        return obj

    def restricted(self, faces: np.ndarray) -> BoxedMesh:
        """The same mesh with only ``faces`` (F', 3) (F' >= 1) and the smallest box with the same axes
        that holds them."""
        local = self.vertices[faces.ravel()] @ self.rotation  # their corners along the box axes
        low, high = local.min(axis=0), local.max(axis=0)
        return BoxedMesh(self.vertices, faces, self.rotation, self.rotation @ (0.5 * (low + high)), 0.5 * (high - low))

    def faces_near(self, translation: np.ndarray, other: BoxedMesh, other_translation: np.ndarray,
                   margin: float) -> np.ndarray:
        """(F', 3) the faces (this mesh moved by ``translation``) whose bounding box in the frame of
        ``other``'s box (moved by ``other_translation``) meets that box grown by ``margin`` metres:
        every face that comes within ``margin`` of anything inside the box is among them."""
        local = (self.vertices + (translation - other.centre - other_translation)) @ other.rotation
        a, b, c = (local[self.faces[:, j]] for j in range(3))  # (F, 3) each corner of every face
        limit = other.half_extents + margin
        keep = (np.minimum(np.minimum(a, b), c) <= limit) & (np.maximum(np.maximum(a, b), c) >= -limit)
        return self.faces[keep.all(axis=1)]


def boxes_apart(a: Any, b: Any, gap: float = 0.0) -> bool:
    """True when two fcl box objects are more than ``gap + BOX_SLACK`` metres apart, so the meshes they
    enclose are at least ``gap`` apart (and neither touches, crosses nor holds the other)."""
    return distance(a, b) > gap + BOX_SLACK


class ApartMemo:
    """Placed pairs that :func:`meshes_close` found apart: asked again about the same two mesh objects
    at the same translations with a gap no larger, it answers without testing (apart by a gap means
    apart by any smaller one). E.g. the physics check of a layout whose placement already tested its
    final pairs with a clearance. Holds the meshes, so their ids stay theirs while remembered."""

    def __init__(self) -> None:
        self._gaps: dict[tuple[Any, ...], tuple[BoxedMesh, BoxedMesh, float]] = {}

    @staticmethod
    def _key(a: BoxedMesh, a_translation: np.ndarray, b: BoxedMesh, b_translation: np.ndarray) -> tuple[Any, ...]:
        return id(a), *map(float, a_translation), id(b), *map(float, b_translation)

    def apart(self, a: BoxedMesh, a_translation: np.ndarray, b: BoxedMesh, b_translation: np.ndarray,
              gap: float) -> bool:
        """True when the pair was found at least ``gap`` metres apart before."""
        found = self._gaps.get(self._key(a, a_translation, b, b_translation))
        return found is not None and found[2] >= gap

    def add(self, a: BoxedMesh, a_translation: np.ndarray, b: BoxedMesh, b_translation: np.ndarray,
            gap: float) -> None:
        """Remember that the pair (in either order) is at least ``gap`` metres apart."""
        if not self.apart(a, a_translation, b, b_translation, gap):
            self._gaps[self._key(a, a_translation, b, b_translation)] = (a, b, gap)
            self._gaps[self._key(b, b_translation, a, a_translation)] = (b, a, gap)


def meshes_close(a: BoxedMesh, a_translation: np.ndarray, b: BoxedMesh, b_translation: np.ndarray,
                 gap: float, memo: ApartMemo | None = None) -> bool:
    """True when the two placed meshes touch or cross, or (gap > 0) come nearer than ``gap`` metres.

    Exact, as fcl on the whole meshes, but cheaper: fcl objects are built only of each mesh's faces
    near the other's box grown by the gap (a pair of faces nearer than the gap, or touching, is in
    there), so no BVH of a whole mesh is built. ``memo`` answers pairs found apart before and
    remembers those found apart now."""
    if memo is not None and memo.apart(a, a_translation, b, b_translation, gap):
        return False
    close = _meshes_close(a, a_translation, b, b_translation, gap)
    if not close and memo is not None:
        memo.add(a, a_translation, b, b_translation, gap)
    return close


def _meshes_close(a: BoxedMesh, a_translation: np.ndarray, b: BoxedMesh, b_translation: np.ndarray,
                  gap: float) -> bool:
    """:func:`meshes_close` without a memo."""
    margin = gap + BOX_SLACK
    near_a = a.faces_near(a_translation, b, b_translation, margin)
    if not len(near_a):
        return False
    near_b = b.faces_near(b_translation, a, a_translation, margin)
    if not len(near_b):
        return False
    # Again against the boxes of the faces kept: a pair nearer than the gap is still among them.
    b = b.restricted(near_b)
    near_a = a.restricted(near_a).faces_near(a_translation, b, b_translation, margin)
    if not len(near_a):
        return False
    near_b = b.faces_near(b_translation, a.restricted(near_a), a_translation, margin)
    if not len(near_b):
        return False
    obj_a, obj_b = a.collision_object(a_translation, near_a), b.collision_object(b_translation, near_b)
    return collide(obj_a, obj_b) or (gap > 0 and distance(obj_a, obj_b) < gap)


def set_translation(obj: Any, t: np.ndarray) -> None:
    """Move an fcl object that is not rotated (as :func:`fcl_object` makes it) to the translation ``t`` (3,)."""
    obj.setTranslation(np.asarray(t, dtype=np.float64))


def collide(a: Any, b: Any) -> bool:
    """True when the two fcl objects' surfaces touch or cross."""
    fcl = _fcl()
    result = fcl.CollisionResult()
    fcl.collide(a, b, fcl.CollisionRequest(), result)
    return bool(result.is_collision)


def distance(a: Any, b: Any) -> float:
    """Minimum distance between two fcl objects, metres (0 when they collide)."""
    fcl = _fcl()
    return float(fcl.distance(a, b, fcl.DistanceRequest(), fcl.DistanceResult()))


@dataclass(frozen=True)
class PhysicsReport:
    """penetrating : id pairs (a < b) that interpenetrate. not_resting : ids not on floor/support.
    rest_error : id -> |lowest point - support height|, metres."""

    penetrating: tuple[tuple[int, int], ...]
    not_resting: tuple[int, ...]
    rest_error: Mapping[int, float]

    @property
    def ok(self) -> bool:
        return not self.penetrating and not self.not_resting


def _bounds(mesh: trimesh.Trimesh) -> np.ndarray:
    """(2, 3) [min, max] of the vertices the faces use: ``mesh.bounds`` without trimesh's cache
    bookkeeping (hashing the arrays), which costs more than the box of a new mesh itself."""
    vertices = np.asarray(mesh.vertices)
    used = np.zeros(len(vertices), dtype=bool)
    used[np.asarray(mesh.faces)] = True
    vertices = vertices[used]
    return np.array([vertices.min(axis=0), vertices.max(axis=0)])


def _inside(container: trimesh.Trimesh, inner: trimesh.Trimesh, container_bounds: np.ndarray,
            inner_bounds: np.ndarray) -> bool:
    """True when ``inner`` lies inside the closed ``container`` (its box nested in the container's box
    and its vertex deepest inside that box inside the mesh). Crossing surfaces are fcl's job.
    The bounds are the two meshes' (2, 3) boxes (:func:`_bounds`)."""
    lo, hi = container_bounds
    if np.any(inner_bounds[0] < lo) or np.any(inner_bounds[1] > hi) or not container.is_watertight:
        return False
    v = np.asarray(inner.vertices)
    depth = np.minimum(v - lo, hi - v).min(axis=1)
    return bool(container.contains(v[[int(np.argmax(depth))]])[0])


def _lifted_apart(lifted: np.ndarray, other: np.ndarray, lift: float) -> bool:
    """True when the (2, 3) box ``lifted``, raised by ``lift`` metres, is apart from the box ``other``
    by more than half the lift along some axis (so no fcl call can find the two surfaces touching)."""
    lo, hi = lifted + np.array([0.0, lift, 0.0])
    return bool(np.any(lo - other[1] > 0.5 * lift) or np.any(other[0] - hi > 0.5 * lift))


def check_physics(world_meshes: Sequence[trimesh.Trimesh], ids: Sequence[int], supports: Mapping[int, int],
                  tol: float = 1e-6, contact_lift: float = 1e-4,
                  boxed: Mapping[int, tuple[BoxedMesh, np.ndarray]] | None = None,
                  memo: ApartMemo | None = None) -> PhysicsReport:
    """Check a posed scene.

    world_meshes : meshes in world coordinates (metres), one per id.
    supports : id -> support id (0 = floor).
    boxed : position k -> ``world_meshes[k]`` as a :class:`BoxedMesh` in its own frame and the
        translation (3,) that places it (e.g. from the layout). A pair of such objects is tested by
        :func:`meshes_close` (no BVH of a whole mesh), after their boxes when not support and
        supported (boxes apart settle the pair).
    memo : pairs of ``boxed`` meshes found apart before (e.g. by the placement that made the layout),
        not tested again at the same translations.
    """
    index = {int(i): k for k, i in enumerate(ids)}
    bounds = [_bounds(m) for m in world_meshes]
    rest_error: dict[int, float] = {}
    not_resting = []
    for k, i in enumerate(ids):
        s = int(supports[int(i)])
        height = 0.0 if s == FLOOR else float(bounds[index[s]][1, 1])
        err = abs(float(bounds[k][0, 1]) - height)
        rest_error[int(i)] = err
        if err > tol:
            not_resting.append(int(i))
    objs: dict[int, Any] = {}
    boxed = boxed or {}
    boxes: dict[int, Any] = {}

    def obj(k: int) -> Any:  # built only for pairs whose boxes meet
        if k not in objs:
            objs[k] = fcl_object(world_meshes[k].vertices, world_meshes[k].faces)
        return objs[k]

    penetrating = []
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            (lo_a, hi_a), (lo_b, hi_b) = bounds[a], bounds[b]
            if np.any(lo_a > hi_b + tol) or np.any(lo_b > hi_a + tol):
                continue
            ia, ib = int(ids[a]), int(ids[b])
            lifted = None
            if supports[ia] == ib:
                lifted = a
            elif supports[ib] == ia:
                lifted = b
            if lifted is not None and _lifted_apart(bounds[lifted], bounds[b if lifted == a else a], contact_lift):
                hit = False  # what fcl finds too: surfaces in disjoint boxes cannot touch
            elif a in boxed and b in boxed:
                for k in (a, b):
                    if k not in boxes:
                        boxes[k] = boxed[k][0].box_object(boxed[k][1])
                if lifted is None and boxes_apart(boxes[a], boxes[b]):
                    continue  # the surfaces neither touch nor cross, neither holds the other
                (mesh_a, at_a), (mesh_b, at_b) = boxed[a], boxed[b]
                if lifted is not None:
                    lift = np.array([0.0, contact_lift, 0.0])
                    at_a, at_b = (at_a + lift, at_b) if lifted == a else (at_a, at_b + lift)
                hit = meshes_close(mesh_a, at_a, mesh_b, at_b, 0.0, memo)
            elif lifted is None:
                hit = collide(obj(a), obj(b))
            else:
                rest = obj(lifted).getTranslation()
                obj(lifted).setTranslation(rest + np.array([0.0, contact_lift, 0.0]))
                hit = collide(obj(a), obj(b))
                obj(lifted).setTranslation(rest)
            if not hit:
                hit = (_inside(world_meshes[a], world_meshes[b], bounds[a], bounds[b])
                       or _inside(world_meshes[b], world_meshes[a], bounds[b], bounds[a]))
            if hit:
                penetrating.append((min(ia, ib), max(ia, ib)))
    return PhysicsReport(tuple(penetrating), tuple(not_resting), rest_error)
