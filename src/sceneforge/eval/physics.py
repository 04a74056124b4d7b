"""Physical-plausibility numbers of a scene: interpenetration and floating objects.

- Interpenetration: for every pair of objects whose boxes overlap, the volume of the intersection
  of their meshes, each the union of its closed parts (manifold3d booleans when both meshes are
  closed volumes; otherwise the intersection of their oriented boxes, an upper bound, and the pair
  is counted as approximate).
- Floating: for every object, the gap between its lowest point along the up direction and the
  highest support below it (the floor plane, or the top of another object whose footprint overlaps
  and that lies below); with neither, the lowest object of the scene is taken as the ground.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import trimesh

from sceneforge.eval.boxes import aabb_iou, oriented_box_intersection_volume
from sceneforge.geometry.planes import floor_axes


@dataclass(frozen=True)
class PlausibilityScores:
    """interpenetration_volume : summed over object pairs (cubic units of the scene).
    interpenetrating_pairs : pairs overlapping by more than a cube of side ``floating_tolerance``
    (contact after an alignment gives tiny overlaps); approximate_pairs : pairs
    measured with oriented boxes because a mesh was not a closed volume.
    mean_floating_distance : mean gap to the support (units of the scene); floating_objects : how
    many gaps exceed ``floating_tolerance``."""

    interpenetration_volume: float
    interpenetrating_pairs: int
    approximate_pairs: int
    mean_floating_distance: float
    max_floating_distance: float
    floating_objects: int
    floating_tolerance: float

    def to_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


@dataclass(frozen=True, eq=False)
class PlacedObject:
    """An object as the plausibility checks see it: its world mesh, the (8, 3) corners of its
    oriented box and its surface points (N, 3), all in one frame."""

    mesh: trimesh.Trimesh
    corners: np.ndarray
    points: np.ndarray

    @cached_property
    def solid(self) -> trimesh.Trimesh:
        """The mesh as one solid: the union of its closed parts when it has several (engine and
        library assets are overlapping closed parts, a desk's top and legs; intersected part by part,
        a region where two parts overlap would count twice)."""
        parts = self.mesh.split(only_watertight=False)
        if len(parts) < 2 or not all(p.is_volume for p in parts):
            return self.mesh
        try:
            return trimesh.boolean.union(parts, engine="manifold")
        except Exception:  # noqa: BLE001 - boolean engines raise many types; keep the parts
            return self.mesh


def pair_intersection_volume(a: PlacedObject, b: PlacedObject) -> tuple[float, bool]:
    """(volume, exact) of the overlap of two objects: exact by mesh booleans when both are closed
    volumes (each counted once where its own parts overlap), else the oriented-box overlap
    (exact=False)."""
    if a.mesh.is_volume and b.mesh.is_volume:
        try:
            inter = trimesh.boolean.intersection([a.solid, b.solid], engine="manifold")
            return float(abs(inter.volume)) if len(inter.faces) else 0.0, True
        except Exception:  # noqa: BLE001 - boolean engines raise many types; fall back to boxes
            pass
    return oriented_box_intersection_volume(a.corners, b.corners), False


def measured_pairs(objects: Sequence[PlacedObject]) -> Iterator[tuple[int, int, float, bool]]:
    """(index a, index b, intersection volume, exact) of every pair of ``objects`` whose axis-aligned
    boxes overlap (the other pairs do not intersect)."""
    boxes = [_aabb(o.corners) for o in objects]
    for i in range(len(objects)):
        for j in range(i + 1, len(objects)):
            if aabb_iou(boxes[i], boxes[j]) > 0:
                yield (i, j, *pair_intersection_volume(objects[i], objects[j]))


def interpenetration(objects: Sequence[PlacedObject], min_volume: float = 0.0) -> tuple[float, int, int]:
    """(total volume, pairs overlapping by more than ``min_volume``, pairs measured approximately)
    over all object pairs."""
    measured = list(measured_pairs(objects))
    return (sum((volume for _, _, volume, _ in measured), 0.0),
            sum(volume > min_volume for _, _, volume, _ in measured), sum(not exact for _, _, _, exact in measured))


def _aabb(points: np.ndarray) -> np.ndarray:
    return np.stack([points.min(axis=0), points.max(axis=0)])


def floating_distances(objects: Sequence[PlacedObject], up: np.ndarray,
                       floor_height: float | None, tolerance: float = 0.0) -> np.ndarray:
    """(K,) gap between each object's lowest point and the support below it, along unit ``up``.

    floor_height : height of the floor along ``up`` (``-offset`` of a plane with normal ``up``), or
    None. An object counts as a support when its footprint overlaps and its top is at most
    ``tolerance`` above the bottom of the object it carries (resting objects sink in a little after
    an alignment). Objects without points get NaN.
    """
    up = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    basis = np.stack(floor_axes(up))
    heights, footprints = [], []
    for o in objects:
        if len(o.points) == 0:
            heights.append((np.nan, np.nan))
            footprints.append(np.full((2, 2), np.nan))
            continue
        h = o.points @ up
        flat = o.points @ basis.T
        heights.append((float(h.min()), float(h.max())))
        footprints.append(np.stack([flat.min(axis=0), flat.max(axis=0)]))
    bottoms = np.array([b for b, _ in heights])
    ground = floor_height if floor_height is not None else (np.nanmin(bottoms) if np.any(np.isfinite(bottoms)) else 0.0)
    gaps = np.full(len(objects), np.nan)
    for i, (bottom, _) in enumerate(heights):
        if not np.isfinite(bottom):
            continue
        support = ground
        for j, (_, top) in enumerate(heights):
            if j == i or not np.isfinite(top) or top > bottom + tolerance + 1e-12 \
                    or not _overlap_2d(footprints[i], footprints[j]):
                continue
            support = max(support, top)
        gaps[i] = max(0.0, bottom - support)
    return gaps


def _overlap_2d(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(np.minimum(a[1], b[1]) > np.maximum(a[0], b[0])))


def plausibility(objects: Sequence[PlacedObject], up: np.ndarray, floor_height: float | None,
                 floating_tolerance: float) -> PlausibilityScores:
    """Interpenetration and floating numbers of one scene's objects (all in one frame)."""
    volume, pairs, approximate = interpenetration(objects, floating_tolerance ** 3)
    gaps = floating_distances(objects, up, floor_height, floating_tolerance)
    finite = gaps[np.isfinite(gaps)]
    return PlausibilityScores(
        interpenetration_volume=volume, interpenetrating_pairs=pairs, approximate_pairs=approximate,
        mean_floating_distance=float(finite.mean()) if len(finite) else 0.0,
        max_floating_distance=float(finite.max()) if len(finite) else 0.0,
        floating_objects=int(np.sum(finite > floating_tolerance)),
        floating_tolerance=float(floating_tolerance))
