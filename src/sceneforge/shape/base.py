"""The shape-stage interface, its result, and the canonical-frame helper every backend uses."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import trimesh

from sceneforge.amodal.base import AmodalResult
from sceneforge.geometry import rotation_y
from sceneforge.perception.base import ObjectObservation, PerceptionResult
from sceneforge.registry import Component
from sceneforge.types import PlacedMesh, Similarity


@dataclass(frozen=True, eq=False)
class ShapeContext:
    """Everything a backend may look at for one object: its observation, its amodal completion
    and the whole perception result (camera, depth, instances, floor)."""

    observation: ObjectObservation
    amodal: AmodalResult
    perception: PerceptionResult


@dataclass(frozen=True, eq=False)
class ShapeResult:
    """A canonical mesh (box centred at the origin, unit largest side, y up, front +z) and the
    similarity T_world_obj that places it (uniform scale = the object's largest side, metres).

    info : backend details for report.json (yaw, thickness, matched asset...).
    alternatives : other (canonical mesh, pose) the backend found nearly as good, best first (a pose
        stage may choose among them by its own losses).
    """

    mesh: trimesh.Trimesh
    pose: Similarity
    confidence: float
    info: Mapping[str, Any] = field(default_factory=dict)
    alternatives: tuple[PlacedMesh, ...] = ()


PROPORTIONS = "proportions"  # canonical mesh metadata key: "prior" when a library asset set them


def mark_prior_proportions(mesh: trimesh.Trimesh) -> None:
    """Record in ``mesh.metadata`` that its per-axis proportions are a prior's (a library asset
    stretched to the view), not measured: the pose stage may then size the footprint while it keeps
    a measured height (:class:`~sceneforge.pose.problem.PoseSettings`, ``keep_measured_height``)."""
    mesh.metadata[PROPORTIONS] = "prior"


def has_prior_proportions(mesh: trimesh.Trimesh) -> bool:
    return mesh.metadata.get(PROPORTIONS) == "prior"


class ShapeBackend(Component):
    """Interface: one object's context -> ShapeResult (raise ShapeError to skip the object)."""

    @abstractmethod
    def reconstruct(self, context: ShapeContext) -> ShapeResult:
        """Build the object's canonical mesh and initial pose."""

    def warnings(self) -> tuple[str, ...]:
        """Warnings about the backend itself for report.json (e.g. library files it skipped)."""
        return ()


@dataclass(frozen=True)
class FloorContact:
    """Where an object stands: ``on_floor`` (its bottom is the floor, y = 0), else ``bottom`` (metres,
    the visible lowest point, or the top of the object under it when ``support_id`` is set)."""

    on_floor: bool
    bottom: float
    top: float
    support_id: int | None = None


def floor_contact(points: np.ndarray, others: Sequence[tuple[int, np.ndarray]], contact_m: float = 0.08,
                  hidden_base: bool = True, max_height: float = np.inf,
                  support_reach_m: float = 0.3) -> FloorContact:
    """Does an object (visible points (N, 3), world metres, y up, floor y = 0) stand on the floor?

    The top is the 99.5th percentile of the points' heights. Yes when its lowest visible point (1st
    percentile) is within ``contact_m`` (or 15% of its visible
    height) of the floor. Otherwise it stands on the highest surface of another object under it: one
    of ``others`` ((id, points) pairs) with at least 5 points inside the object's x/z footprint (grown
    by 5 cm plus 10% of its size), at most 20% of them above the object's lowest point (plus 4 cm or
    10% of its visible height), at least 70% as wide as the object, and a top (95th percentile of
    those points) above ``contact_m``: its bottom is that top, which may lie well below the lowest
    visible point (a lamp whose thin stem is not seen). With no such support and ``hidden_base`` it
    stands on the floor: its base is hidden or too thin to be seen (table and floor-lamp legs, a
    pedestal, a plinth in shadow), as engine and most real furniture stands, unless that would make
    it taller than ``max_height`` (metres; a book on a desk whose top is mostly hidden is not a book
    reaching down to the floor). An object that may not stand on the floor (no ``hidden_base``, or
    taller than ``max_height``) may also stand on a support seen by fewer than 5 points (at least
    one), or failing that on one whose points come within ``support_reach_m`` of its footprint
    (the object's own lower part, and the top under it, hidden behind the support's front edge),
    else at its lowest visible point.
    """
    points = np.asarray(points, dtype=np.float64)
    lo, hi = (float(v) for v in np.percentile(points[:, 1], [1.0, 99.5]))
    if lo < max(contact_m, 0.15 * (hi - lo)):
        return FloorContact(True, 0.0, hi)
    x0, z0 = np.percentile(points[:, [0, 2]], 1.0, axis=0)
    x1, z1 = np.percentile(points[:, [0, 2]], 99.0, axis=0)
    size = max(x1 - x0, z1 - z0)
    tolerance = max(0.04, 0.1 * (hi - lo))

    def supports(margin: float) -> list[tuple[float, int, int]]:
        """(top, id, points under the object) of the objects under its footprint grown by ``margin``."""
        found = []
        for other_id, other in others:
            other = np.asarray(other, dtype=np.float64).reshape(-1, 3)
            if len(other) < 5 or np.max(np.ptp(other[:, [0, 2]], axis=0)) < 0.7 * size:
                continue
            inside = other[(other[:, 0] > x0 - margin) & (other[:, 0] < x1 + margin) & (other[:, 2] > z0 - margin) &
                           (other[:, 2] < z1 + margin), 1]
            below = inside[inside <= lo + tolerance]
            if len(below) == 0 or len(below) < 0.8 * len(inside):
                continue
            top = float(np.percentile(below, 95.0))
            if top > contact_m:
                found.append((top, int(other_id), len(below)))
        return found

    floor_allowed = hidden_base and hi <= max_height
    near = supports(0.05 + 0.1 * size)
    seen = [c for c in near if c[2] >= 5]
    if not seen and not floor_allowed:  # it stands on something: seen by a few points, or a little further
        seen = near or supports(support_reach_m)
    if seen:
        top, support_id, _ = max(seen)
        return FloorContact(False, min(top, lo), hi, support_id)
    return FloorContact(True, 0.0, hi) if floor_allowed else FloorContact(False, lo, hi)


class ShapeError(Exception):
    """A backend could not build this object; the pipeline skips it with the message as warning."""


def canonicalise(mesh_world: trimesh.Trimesh, yaw_rad: float) -> tuple[trimesh.Trimesh, Similarity]:
    """Express a world mesh in a canonical frame turned by ``yaw_rad`` about +y.

    The canonical mesh has its bounding box (in the turned frame) centred at the origin and its
    largest side 1; returns (canonical mesh, T_world_obj) with ``T_world_obj.apply(canonical) ==
    world vertices``.
    """
    R = rotation_y(yaw_rad)
    local = np.asarray(mesh_world.vertices, dtype=np.float64) @ R  # R^T p, row-wise
    lo, hi = local.min(axis=0), local.max(axis=0)
    centre_local = 0.5 * (lo + hi)
    size = float(np.max(hi - lo))
    if not size > 0:
        raise ShapeError("degenerate mesh (zero extent)")
    canonical = mesh_world.copy()
    canonical.vertices = (local - centre_local) / size
    pose = Similarity(R, R @ centre_local, size)
    return canonical, pose
