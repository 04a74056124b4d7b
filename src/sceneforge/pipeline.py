"""ScenePipeline: image + instance masks + depth -> editable 3D scene.

Stages are swappable components chosen by registry name (perception, amodal, shape, pose); the
pipeline config (names + constructor arguments) goes to and from JSON. The default needs no model
weights: ``ScenePipeline()`` = depth perception, OpenCV amodal completion, the retrieve shape backend
(procedural asset library) and the ``auto`` pose stage (the optimisation with depth, the shape
stage's poses without).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from scipy.spatial import cKDTree

# built-in components register themselves on import
import sceneforge.amodal.opencv  # noqa: F401
import sceneforge.perception.depth  # noqa: F401
import sceneforge.pose.learned  # noqa: F401
import sceneforge.shape.lift  # noqa: F401
import sceneforge.shape.retrieve  # noqa: F401
import sceneforge.shape.visible  # noqa: F401
from sceneforge.amodal.base import AmodalResult
from sceneforge.errors import InputError
from sceneforge.perception.base import PerceptionResult
from sceneforge.pose.base import AUTO, PoseStage, resolve_pose_stage
from sceneforge.registry import from_description
from sceneforge.shape.base import ShapeContext, ShapeError
from sceneforge.types import PlacedMesh, Scene, SceneInput, SceneObject

STAGES = ("perception", "amodal", "shape", "pose")
DEFAULT_FORMATS = ("glb", "usda", "json")
ProgressCallback = Callable[[str, str], None]


class NothingReconstructedError(InputError):
    """No object of the input could be reconstructed."""


@dataclass(frozen=True, eq=False)
class ReconstructionResult:
    """The reconstructed scene, its report (JSON-ready dict) and the intermediate results.

    report : source, pipeline config, assumptions (e.g. the default camera), warnings (e.g.
        skipped objects), skipped ids with reasons, per-object details, timings_s per stage.
    shapes : by object id, the shape stage's other (canonical mesh, pose) the pose stage chose
        from (:attr:`~sceneforge.shape.base.ShapeResult.alternatives`).
    """

    scene: Scene
    report: Mapping[str, Any]
    perception: PerceptionResult
    amodal: Mapping[int, AmodalResult] = field(default_factory=dict)
    shapes: Mapping[int, tuple[PlacedMesh, ...]] = field(default_factory=dict)

    def save(self, out_dir: str | Path, formats: tuple[str, ...] = DEFAULT_FORMATS, preview: bool = True,
             extra: Mapping[str, bytes] | None = None) -> Path:
        """Write the scene output folder atomically: scene files, objects/, preview.png, report.json
        and ``extra`` (relative name -> bytes)."""
        from sceneforge.io.scenes import save_scene

        extra = {**(extra or {}), "report.json": report_bytes(self.report)}
        if preview:
            from sceneforge.preview import png_bytes, preview_image

            extra["preview.png"] = png_bytes(preview_image(self.perception.image, self.scene))
        return save_scene(self.scene, out_dir, formats=formats, extra=extra)


class ScenePipeline:
    """Perception -> amodal completion -> per-object shape -> pose -> Scene.

    Each stage is given as a registry name, or as ``{"name": ..., "config": {...}}``; ``pose`` may
    also be ``"auto"`` (resolved per input by :func:`~sceneforge.pose.base.resolve_pose_stage`).
    """

    def __init__(self, perception: str | Mapping[str, Any] = "depth", amodal: str | Mapping[str, Any] = "opencv",
                 shape: str | Mapping[str, Any] = "retrieve", pose: str | Mapping[str, Any] = AUTO) -> None:
        self.perception = from_description("perception", perception)
        self.amodal = from_description("amodal", amodal)
        self.shape = from_description("shape", shape)
        self.pose: PoseStage | None = None if pose in (None, AUTO) else from_description("pose", pose)

    @property
    def config(self) -> dict[str, Any]:
        """``{"perception": {"name", "config"}, "amodal": ..., "shape": ..., "pose": ... | "auto"}``."""
        out: dict[str, Any] = {stage: getattr(self, stage).describe() for stage in STAGES[:3]}
        out["pose"] = AUTO if self.pose is None else self.pose.describe()
        return out

    def to_json(self) -> str:
        return json.dumps(self.config, indent=2)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str) -> ScenePipeline:
        """Rebuild from :attr:`config` (a dict or its JSON text)."""
        if isinstance(config, str):
            try:
                config = json.loads(config)
            except json.JSONDecodeError as exc:
                raise InputError(None, f"pipeline config is not valid JSON: {exc}") from exc
        if not isinstance(config, Mapping):
            raise InputError(None, f"pipeline config must be a JSON object, got {type(config).__name__}")
        unknown = set(config) - set(STAGES)
        if unknown:
            raise InputError(None, f"unknown pipeline stages {sorted(unknown)}; stages are {', '.join(STAGES)}")
        stages = dict(config)
        pose = stages.get("pose")
        if isinstance(pose, Mapping) and "requested" in pose:  # a report.json's pipeline: rerun as requested
            stages["pose"] = pose["requested"]
        return cls(**stages)

    def with_stages(self, **stages: str | Mapping[str, Any] | None) -> ScenePipeline:
        """A copy with the given stages replaced (None keeps the current one)."""
        config = self.config
        config.update({name: value for name, value in stages.items() if value is not None})
        return ScenePipeline.from_config(config)

    def pose_stage_for(self, scene_input: SceneInput) -> PoseStage:
        """The pose component this input runs with (``auto`` resolved by whether depth is given)."""
        if self.pose is not None:
            return self.pose
        return resolve_pose_stage(AUTO, depth_given=scene_input.depth is not None)

    def run(self, scene_input: SceneInput, progress: ProgressCallback | None = None) -> ReconstructionResult:
        """Reconstruct one input.

        Objects that cannot be built (mask empty after erosion, no valid depth, shape failure) are
        skipped with a warning; raises :class:`NothingReconstructedError` when none is left.
        ``progress(stage, message)`` is called when each stage starts.
        """
        notify = progress or (lambda stage, message: None)
        timings: dict[str, float] = {}
        start = time.perf_counter()

        notify("perception", f"{self.perception.registry_name}: back-projecting depth, fitting the floor")
        perception = self.perception.perceive(scene_input)
        timings["perception"] = time.perf_counter() - start
        warnings = list(perception.warnings)
        skipped = dict(perception.skipped)
        if not perception.objects:
            raise NothingReconstructedError(scene_input.source, "nothing can be reconstructed: " + _reasons(skipped))

        notify("amodal", f"{self.amodal.registry_name}: completing {len(perception.objects)} objects")
        t0 = time.perf_counter()
        amodal = {obs.id: self.amodal.complete(perception.image, perception.instances, obs.id, perception.depth)
                  for obs in perception.objects}
        timings["amodal"] = time.perf_counter() - t0

        notify("shape", f"{self.shape.registry_name}: {len(perception.objects)} objects")
        t0 = time.perf_counter()
        objects, per_object, shapes = self._shapes(perception, amodal, skipped, warnings)
        timings["shape"] = time.perf_counter() - t0
        if not objects:
            raise NothingReconstructedError(scene_input.source, "nothing can be reconstructed: " + _reasons(skipped))

        pose_stage = self.pose_stage_for(scene_input)
        notify("pose", f"{pose_stage.registry_name}: {len(objects)} objects")
        t0 = time.perf_counter()
        posed = pose_stage.refine(perception, objects, amodal, shapes)
        warnings.extend(posed.warnings)
        timings["pose"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        config = self.config
        config["pose"] = {"resolved": pose_stage.describe(), "requested": config["pose"]}
        scene = Scene(objects=tuple(posed.objects), camera=perception.camera, floor=perception.floor,
                      background=perception.background,
                      metadata={"source": scene_input.source, "pipeline": config})
        consistency = depth_consistency(scene, perception)
        for object_id, value in consistency.items():
            per_object[object_id]["depth_consistency_m"] = value
        timings["assembly"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - start
        report = {
            "source": scene_input.source,
            "pipeline": config,
            "assumptions": list(perception.assumptions),
            "warnings": warnings,
            "skipped": {str(k): v for k, v in sorted(skipped.items())},
            "objects": {str(k): v for k, v in per_object.items()},
            "pose": dict(posed.report),
            "depth_consistency_median_m": (float(np.median(list(consistency.values()))) if consistency else None),
            "timings_s": timings,
        }
        return ReconstructionResult(scene, report, perception, amodal, shapes)

    def _shapes(self, perception: PerceptionResult, amodal: Mapping[int, AmodalResult], skipped: dict[int, str],
                warnings: list[str]) -> tuple[list[SceneObject], dict[int, dict[str, Any]],
                                              dict[int, tuple[PlacedMesh, ...]]]:
        """Run the shape backend on every observed object; failures go to ``skipped``/``warnings``.
        Returns the objects, their report details and their alternative shapes by id."""
        objects, per_object, shapes = [], {}, {}
        warnings.extend(self.shape.warnings())
        for obs in perception.objects:
            try:
                result = self.shape.reconstruct(ShapeContext(obs, amodal[obs.id], perception))
            except ShapeError as exc:
                skipped[obs.id] = str(exc)
                warnings.append(f"object {obs.id} skipped: {exc}")
                continue
            objects.append(SceneObject(obs.id, obs.label, result.mesh, result.pose, result.confidence))
            per_object[obs.id] = {"label": obs.label, "points": len(obs.points_world),
                                  "occluded_fraction": amodal[obs.id].occluded_fraction,
                                  "confidence": result.confidence, **dict(result.info)}
            shapes[obs.id] = result.alternatives
        return objects, per_object, shapes


def depth_consistency(scene: Scene, perception: PerceptionResult, samples: int = 20000) -> dict[int, float]:
    """Per object: median distance (metres) from its observed points to its reconstructed surface
    (nearest of ``samples`` area-uniform surface samples, so it overestimates by about the sample
    spacing)."""
    out = {}
    observed = {obs.id: obs.points_world for obs in perception.objects}
    for obj in scene.objects:
        mesh = obj.world_mesh()
        if len(mesh.faces) == 0 or obj.id not in observed:
            continue
        surface, _ = trimesh.sample.sample_surface(mesh, samples, seed=0)
        distance, _ = cKDTree(surface).query(observed[obj.id], k=1)
        out[obj.id] = float(np.median(distance))
    return out


def report_bytes(report: Mapping[str, Any]) -> bytes:
    """report.json's bytes (numpy values become plain JSON)."""
    return (json.dumps(report, indent=2, default=_json_default) + "\n").encode()


def _reasons(skipped: Mapping[int, str]) -> str:
    if not skipped:
        return "the input holds no object"
    return "; ".join(f"object {k}: {v}" for k, v in sorted(skipped.items()))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
