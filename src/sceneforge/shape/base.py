"""The shape-stage interface, its result, and the canonical-frame helper every backend uses."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import trimesh

from sceneforge.amodal.base import AmodalResult
from sceneforge.geometry import rotation_y
from sceneforge.perception.base import ObjectObservation, PerceptionResult
from sceneforge.registry import Component
from sceneforge.types import Similarity


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
    """

    mesh: trimesh.Trimesh
    pose: Similarity
    confidence: float
    info: Mapping[str, Any] = field(default_factory=dict)


class ShapeBackend(Component):
    """Interface: one object's context -> ShapeResult (raise ShapeError to skip the object)."""

    @abstractmethod
    def reconstruct(self, context: ShapeContext) -> ShapeResult:
        """Build the object's canonical mesh and initial pose."""

    def warnings(self) -> tuple[str, ...]:
        """Warnings about the backend itself for report.json (e.g. library files it skipped)."""
        return ()


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
