"""The pose stage's interface and its two built-in components.

- ``initial``: keep the shape stage's initial poses (the reconstruction issue's baseline);
- ``optimise``: 3D-RE-GEN's joint differentiable refinement (:class:`~sceneforge.pose.optimise.PoseOptimiser`).

The learned model's stages (``learned``, ``learned_optimise``) are in :mod:`sceneforge.pose.learned`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sceneforge.amodal.base import AmodalResult
from sceneforge.perception.base import PerceptionResult
from sceneforge.pose.optimise import PoseOptimiser, floor_mask_from_depth
from sceneforge.pose.problem import PoseProblem, PoseSettings, PoseTarget
from sceneforge.registry import Component, register
from sceneforge.types import PlacedMesh, SceneObject, Similarity


@dataclass(frozen=True, eq=False)
class PoseStageResult:
    """The objects with their refined poses, a JSON-ready report and the warnings to surface."""

    objects: tuple[SceneObject, ...]
    report: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


class PoseStage(Component):
    """Interface: objects with initial poses (+ what perception and amodal saw) -> refined poses."""

    @abstractmethod
    def refine(self, perception: PerceptionResult, objects: Sequence[SceneObject],
               amodal: Mapping[int, AmodalResult],
               shapes: Mapping[int, Sequence[PlacedMesh]] | None = None) -> PoseStageResult:
        """Return the same objects (same order and ids) with new poses. ``shapes``: by object id,
        other (canonical mesh, pose) the shape stage found nearly as good
        (:attr:`~sceneforge.shape.base.ShapeResult.alternatives`); a stage may return one of them
        instead of the object's mesh."""


@register("pose", "initial")
class InitialPoses(PoseStage):
    """Keep the shape stage's poses."""

    def __init__(self) -> None:
        pass

    def refine(self, perception: PerceptionResult, objects: Sequence[SceneObject],
               amodal: Mapping[int, AmodalResult],
               shapes: Mapping[int, Sequence[PlacedMesh]] | None = None) -> PoseStageResult:
        return PoseStageResult(tuple(objects), {"name": "initial"})


@register("pose", "optimise")
class OptimisedPoses(PoseStage):
    """Joint differentiable pose optimisation; keyword arguments are :class:`PoseSettings` fields
    (e.g. ``iterations``, ``use_planar``, ``use_silhouette``, ``use_physical``, ``model``, ``seed``)."""

    def __init__(self, **settings: Any) -> None:
        self.settings = PoseSettings(**settings)

    def refine(self, perception: PerceptionResult, objects: Sequence[SceneObject],
               amodal: Mapping[int, AmodalResult], shapes: Mapping[int, Sequence[PlacedMesh]] | None = None,
               alternatives: Mapping[int, Sequence[Similarity]] | None = None) -> PoseStageResult:
        """``shapes`` are refined beside the incoming pose's yaw hypotheses, and so are
        ``alternatives``: more starting poses (world frame) of the incoming mesh by object id
        (:attr:`~sceneforge.pose.problem.PoseTarget.alternative_shapes`, ``alternative_poses``)."""
        problem = build_problem(perception, objects, amodal, alternatives, shapes)
        result = PoseOptimiser(self.settings).optimise(problem)
        by_id = {r.id: r for r in result.objects}
        refined = tuple(o if o.id not in by_id else stretched(
            o if by_id[o.id].mesh is None else SceneObject(o.id, o.label, by_id[o.id].mesh, o.pose, o.confidence),
            by_id[o.id].pose, by_id[o.id].stretch) for o in objects)
        return PoseStageResult(refined, {"name": "optimise", **result.to_report()}, result.warnings)


def stretched(obj: SceneObject, pose: Similarity, stretch: tuple[float, float, float]) -> SceneObject:
    """``obj`` at ``pose`` with its canonical mesh stretched per axis by ``stretch`` (3,) about the
    origin (a kept measured height), then scaled back to a unit largest side (the pose's scale
    takes the factor), so the canonical convention holds."""
    if np.allclose(stretch, 1.0):
        return SceneObject(obj.id, obj.label, obj.mesh, pose, obj.confidence)
    mesh = obj.mesh.copy()
    vertices = np.asarray(mesh.vertices, dtype=np.float64) * np.asarray(stretch)
    side = float(np.ptp(vertices, axis=0).max())
    mesh.vertices = vertices / side
    return SceneObject(obj.id, obj.label, mesh, Similarity(pose.R, pose.t, float(pose.s) * side), obj.confidence)


AUTO = "auto"


def resolve_pose_stage(pose: str | Mapping[str, Any] | None, depth_given: bool) -> PoseStage:
    """The pose component for a run: ``"auto"`` (or None) means, with depth, ``learned_optimise``
    (the optimisation with the learned model's poses as further starts) when a checkpoint ships with
    the package and ``optimise`` when none does; ``initial`` without depth (both need its points).
    Any other name or ``{"name", "config"}`` description is built from the registry."""
    from sceneforge.pose.learned import shipped_checkpoint
    from sceneforge.registry import from_description

    if pose is None or pose == AUTO:
        if not depth_given:
            return create_pose_stage("initial")
        return create_pose_stage("learned_optimise" if shipped_checkpoint() is not None else "optimise")
    return from_description("pose", pose)


def create_pose_stage(name: str, **config: Any) -> PoseStage:
    from sceneforge.registry import create

    return create("pose", name, **config)


def build_problem(perception: PerceptionResult, objects: Sequence[SceneObject],
                  amodal: Mapping[int, AmodalResult],
                  alternatives: Mapping[int, Sequence[Similarity]] | None = None,
                  shapes: Mapping[int, Sequence[PlacedMesh]] | None = None) -> PoseProblem:
    """Assemble the optimisation problem from the pipeline's intermediate results: amodal masks as
    targets (visible masks where none), observed points, floor mask from the cleaned depth;
    ``alternatives``: more starting poses, ``shapes``: other (canonical mesh, pose), by object id."""
    observations = {obs.id: obs for obs in perception.objects}
    targets = []
    for obj in objects:
        obs = observations.get(obj.id)
        visible = obs.mask if obs is not None else perception.instances == obj.id
        target_mask = amodal[obj.id].mask if obj.id in amodal else visible
        points = obs.points_world if obs is not None else None
        targets.append(PoseTarget(obj.id, obj.mesh, obj.pose, target_mask, visible, points, obj.label,
                                  tuple((alternatives or {}).get(obj.id, ())), tuple((shapes or {}).get(obj.id, ()))))
    floor_mask = floor_mask_from_depth(perception.camera, perception.depth, perception.floor, perception.instances)
    return PoseProblem(perception.camera, perception.floor, tuple(targets), floor_mask, perception.background)
