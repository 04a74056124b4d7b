"""Pose stages of the learned pose model (SceneMaker-style flow transformer, ``sceneforge.models``).

- ``learned``: the model's poses: K flow samples of all objects, each registered to the masks and
  depth, the one most consistent with them kept (:func:`sceneforge.models.predict.predict_poses`);
- ``learned_optimise``: the pose optimisation with the model's pose of each object as a further
  start beside the shape stage's; the optimiser's refined losses choose between them.

The geometry the model sees is each object's mesh from the shape stage. The checkpoint is a folder
written by ``sceneforge train pose`` (``checkpoint=DIR``); without one the checkpoint shipped in the
package (``sceneforge/data/pose_model``) is used, and a clear error says when there is none.
Objects with too few depth pixels for the model keep their incoming poses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sceneforge.amodal.base import AmodalResult
from sceneforge.errors import InputError
from sceneforge.perception.base import PerceptionResult
from sceneforge.pose.base import OptimisedPoses, PoseStage, PoseStageResult
from sceneforge.pose.optimise import torch_threads
from sceneforge.registry import register
from sceneforge.types import PlacedMesh, SceneInput, SceneObject, Similarity

if TYPE_CHECKING:
    from sceneforge.models.checkpoint import LoadedPoseModel

SHIPPED_CHECKPOINT = Path(__file__).resolve().parents[1] / "data" / "pose_model"


def shipped_checkpoint() -> Path | None:
    """The package's checkpoint folder, or None when this installation ships none."""
    return SHIPPED_CHECKPOINT if (SHIPPED_CHECKPOINT / "config.json").is_file() else None


def checkpoint_folder(checkpoint: str | Path | None) -> Path:
    """The folder to load: ``checkpoint`` when given, else the shipped one; a clear error when none."""
    if checkpoint is not None:
        return Path(checkpoint)
    shipped = shipped_checkpoint()
    if shipped is None:
        raise InputError(SHIPPED_CHECKPOINT, "no pose-model checkpoint ships with this installation; train one "
                                             "(sceneforge train pose, docs/learned_pose.md) and give its folder as "
                                             "the pose stage's checkpoint")
    return shipped


@lru_cache(maxsize=2)
def _load(folder: str) -> LoadedPoseModel:
    from sceneforge.models.checkpoint import load_model

    return load_model(folder)


def learned_objects(perception: PerceptionResult, objects: Sequence[SceneObject], checkpoint: str | Path | None,
                    samples: int, flow_steps: int, seed: int, keep_incoming: bool = False, threads: int = 1,
                    registration: Mapping[str, Any] | None = None, rotations: str = "model"
                    ) -> tuple[tuple[SceneObject, ...], dict[str, Any]]:
    """The objects with the model's poses (world frame) and a JSON-ready report of the sampling;
    with ``keep_incoming`` each object's incoming pose competes with the K samples; ``registration``:
    :class:`~sceneforge.models.predict.RegistrationConfig` fields (None: the defaults); ``rotations``:
    as :func:`~sceneforge.models.predict.predict_poses`."""
    from sceneforge.models.predict import RegistrationConfig, predict_poses

    folder = checkpoint_folder(checkpoint)
    loaded = _load(str(folder.resolve()))
    scene_input = SceneInput(perception.image, perception.instances, perception.depth, perception.camera,
                             source="the learned pose stage's input")
    world_cam = Similarity.from_matrix(perception.camera.T_world_cam)
    incoming = {o.id: world_cam.inverse() @ o.pose for o in objects} if keep_incoming else None
    with torch_threads(threads):
        prediction = predict_poses(loaded, scene_input, {o.id: o.mesh for o in objects}, samples=samples,
                                   steps=flow_steps, seed=seed, incoming=incoming,
                                   registration=RegistrationConfig(**(registration or {})), rotations=rotations)
    poses = {p.object_id: world_cam @ p.T_cam_obj for p in prediction.objects}
    posed = tuple(SceneObject(o.id, o.label, o.mesh, poses.get(o.id, o.pose), o.confidence) for o in objects)
    report = {"checkpoint": str(folder), "checkpoint_step": loaded.step, "samples": samples, "flow_steps": flow_steps,
              "registration": dict(registration or {}), "rotations": rotations,
              "chosen_samples": list(prediction.chosen), "sample_scores": list(prediction.scores),
              "kept_incoming_pose": sorted({o.id for o in objects if o.id not in poses} |
                                           {p.object_id for p, k in zip(prediction.objects, prediction.chosen)
                                            if k == samples})}
    return posed, report


@register("pose", "learned")
class LearnedPoses(PoseStage):
    """The learned model's poses. ``checkpoint``: folder (None = the shipped one); ``samples``: K flow
    samples per scene; ``flow_steps``: Euler steps; ``seed``: noise seed; ``keep_incoming``: score
    each object's incoming pose with the samples and keep it when it is the most consistent;
    ``threads``: torch threads (1: on shared cores more threads were several times slower);
    ``registration``: how each sample is registered to the view before scoring
    (:class:`~sceneforge.models.predict.RegistrationConfig` fields; ``{"steps": 0}``: not at all);
    ``rotations``: "model", or "uniform" to replace the samples' rotations by random ones (ablation)."""

    def __init__(self, checkpoint: str | None = None, samples: int = 24, flow_steps: int = 5, seed: int = 0,
                 keep_incoming: bool = False, threads: int = 1, registration: Mapping[str, Any] | None = None,
                 rotations: str = "model") -> None:
        from sceneforge.models.predict import ROTATIONS, RegistrationConfig

        if samples < 1 or flow_steps < 1:
            raise ValueError(f"samples and flow_steps must be >= 1, got {samples} and {flow_steps}")
        if rotations not in ROTATIONS:
            raise ValueError(f"rotations must be one of {', '.join(ROTATIONS)}, got {rotations!r}")
        RegistrationConfig(**(registration or {}))          # unknown fields fail here, not mid-run
        self.checkpoint, self.samples, self.flow_steps, self.seed = checkpoint, samples, flow_steps, seed
        self.keep_incoming, self.threads, self.registration, self.rotations = keep_incoming, threads, registration, rotations

    def refine(self, perception: PerceptionResult, objects: Sequence[SceneObject],
               amodal: Mapping[int, AmodalResult],
               shapes: Mapping[int, Sequence[PlacedMesh]] | None = None) -> PoseStageResult:
        posed, report = learned_objects(perception, objects, self.checkpoint, self.samples, self.flow_steps,
                                        self.seed, self.keep_incoming, self.threads, self.registration,
                                        self.rotations)
        return PoseStageResult(posed, {"name": self.registry_name, **report})


@register("pose", "learned_optimise")
class LearnedOptimisedPoses(PoseStage):
    """The pose optimisation with the learned model's poses as further starts: each object's pose
    from the model (its most consistent registered sample) is refined beside the incoming pose's
    yaw hypotheses and kept when the optimiser's refined image loss prefers it (by its hypothesis
    margin), so the model helps where the shape stage's pose is a poor start (occlusion, yaw) and
    the optimiser's own losses decide. ``checkpoint``, ``samples``, ``flow_steps``, ``seed``,
    ``registration``, ``threads`` (the model's) as for ``learned``; other keyword arguments are the
    optimiser's :class:`~sceneforge.pose.problem.PoseSettings` fields (its threads: ``num_threads``).

    Cheaper than the two stages run apart: 8 flow samples (``learned``: 24) and 20 steps per yaw
    hypothesis (``optimise``: 30), which keeps ``reconstruct``'s default within the reconstruction
    issue's 10 s per 5-object scene; on development views as good as both defaults together
    (docs/learned_pose.md, "Pose stages")."""

    def __init__(self, checkpoint: str | None = None, samples: int = 8, flow_steps: int = 5, seed: int = 0,
                 registration: Mapping[str, Any] | None = None, threads: int = 1, hypothesis_iterations: int = 20,
                 **settings: Any) -> None:
        self.model = LearnedPoses(checkpoint=checkpoint, samples=samples, flow_steps=flow_steps, seed=seed,
                                  registration=registration, threads=threads)
        self.optimiser = OptimisedPoses(seed=seed, hypothesis_iterations=hypothesis_iterations, **settings)

    def refine(self, perception: PerceptionResult, objects: Sequence[SceneObject],
               amodal: Mapping[int, AmodalResult],
               shapes: Mapping[int, Sequence[PlacedMesh]] | None = None) -> PoseStageResult:
        learned = self.model.refine(perception, objects, amodal)
        unposed = set(learned.report["kept_incoming_pose"])
        alternatives = {o.id: (o.pose,) for o in learned.objects if o.id not in unposed}
        refined = self.optimiser.refine(perception, objects, amodal, shapes, alternatives)
        report = {**refined.report, "name": self.registry_name, "initialisation": learned.report}
        return PoseStageResult(refined.objects, report, learned.warnings + refined.warnings)
