"""ScenePipeline: image + instance masks + depth -> editable 3D scene.

Stages are swappable components chosen by registry name (perception, amodal, shape); the pipeline
config (names + constructor arguments) goes to and from JSON. The default needs no model weights:
``ScenePipeline()`` = depth perception, OpenCV amodal completion, lift shape backend.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

# built-in components register themselves on import
import sceneforge.amodal.opencv  # noqa: F401
import sceneforge.perception.depth  # noqa: F401
import sceneforge.shape.lift  # noqa: F401
import sceneforge.shape.visible  # noqa: F401
from sceneforge.amodal.base import AmodalResult
from sceneforge.errors import InputError
from sceneforge.perception.base import PerceptionResult
from sceneforge.registry import from_description
from sceneforge.shape.base import ShapeContext, ShapeError
from sceneforge.types import Scene, SceneInput, SceneObject

STAGES = ("perception", "amodal", "shape")
ProgressCallback = Callable[[str, str], None]


class NothingReconstructedError(InputError):
    """No object of the input could be reconstructed."""


@dataclass(frozen=True, eq=False)
class ReconstructionResult:
    """The reconstructed scene, its report (JSON-ready dict) and the intermediate results."""

    scene: Scene
    report: Mapping[str, Any]
    perception: PerceptionResult
    amodal: Mapping[int, AmodalResult] = field(default_factory=dict)

    def save(self, out_dir: str | Path, formats: tuple[str, ...] = ("glb", "usda", "json"),
             preview: bool = True) -> Path:
        """Write the scene output folder atomically (scene files, objects/, preview.png, report.json)."""
        from sceneforge.io.scenes import save_scene
        from sceneforge.preview import png_bytes, preview_image

        extra = {"report.json": (json.dumps(self.report, indent=2, default=_json_default) + "\n").encode()}
        if preview:
            extra["preview.png"] = png_bytes(preview_image(self.perception.image, self.scene))
        return save_scene(self.scene, out_dir, formats=formats, extra=extra)


class ScenePipeline:
    """Perception -> amodal completion -> per-object shape -> Scene.

    Each stage is given as a registry name, or as ``{"name": ..., "config": {...}}``.
    """

    def __init__(self, perception: str | Mapping[str, Any] = "depth", amodal: str | Mapping[str, Any] = "opencv",
                 shape: str | Mapping[str, Any] = "lift") -> None:
        self.perception = from_description("perception", perception)
        self.amodal = from_description("amodal", amodal)
        self.shape = from_description("shape", shape)

    @property
    def config(self) -> dict[str, Any]:
        """``{"perception": {"name", "config"}, "amodal": ..., "shape": ...}``."""
        return {stage: getattr(self, stage).describe() for stage in STAGES}

    def to_json(self) -> str:
        return json.dumps(self.config, indent=2)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str) -> ScenePipeline:
        """Rebuild from :attr:`config` (a dict or its JSON text)."""
        if isinstance(config, str):
            config = json.loads(config)
        unknown = set(config) - set(STAGES)
        if unknown:
            raise InputError(None, f"unknown pipeline stages {sorted(unknown)}; stages are {', '.join(STAGES)}")
        return cls(**{k: v for k, v in config.items()})

    def run(self, scene_input: SceneInput, progress: ProgressCallback | None = None) -> ReconstructionResult:
        """Reconstruct one input. Objects that cannot be built are skipped with a warning; raises
        NothingReconstructedError when none is left."""
        notify = progress or (lambda stage, message: None)
        timings: dict[str, float] = {}
        start = time.perf_counter()

        notify("perception", "back-projecting depth, fitting the floor")
        perception = self.perception.perceive(scene_input)
        timings["perception"] = time.perf_counter() - start
        warnings = list(perception.warnings)
        skipped = dict(perception.skipped)
        if not perception.objects:
            raise NothingReconstructedError(scene_input.source, "nothing can be reconstructed: " + _reasons(skipped))

        notify("amodal", f"completing {len(perception.objects)} objects")
        t0 = time.perf_counter()
        amodal = {obs.id: self.amodal.complete(perception.image, perception.instances, obs.id, perception.depth)
                  for obs in perception.objects}
        timings["amodal"] = time.perf_counter() - t0

        notify("shape", f"{self.shape.registry_name}: {len(perception.objects)} objects")
        t0 = time.perf_counter()
        objects, per_object = [], {}
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
        timings["shape"] = time.perf_counter() - t0
        if not objects:
            raise NothingReconstructedError(scene_input.source, "nothing can be reconstructed: " + _reasons(skipped))

        t0 = time.perf_counter()
        scene = Scene(objects=tuple(objects), camera=perception.camera, floor=perception.floor,
                      background=perception.background,
                      metadata={"source": scene_input.source, "pipeline": self.config})
        consistency = depth_consistency(scene, perception)
        for object_id, value in consistency.items():
            per_object[object_id]["depth_consistency_m"] = value
        timings["assembly"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - start
        report = {
            "source": scene_input.source,
            "pipeline": self.config,
            "assumptions": list(perception.assumptions),
            "warnings": warnings,
            "skipped": {str(k): v for k, v in skipped.items()},
            "objects": {str(k): v for k, v in per_object.items()},
            "depth_consistency_median_m": (float(np.median(list(consistency.values()))) if consistency else None),
            "timings_s": timings,
        }
        return ReconstructionResult(scene, report, perception, amodal)


def depth_consistency(scene: Scene, perception: PerceptionResult, samples: int = 20000) -> dict[int, float]:
    """Per object: median distance (metres) from its observed points to its reconstructed surface
    (nearest of ``samples`` surface samples; the sampling spacing bounds the error from above)."""
    out = {}
    observed = {obs.id: obs.points_world for obs in perception.objects}
    for obj in scene.objects:
        mesh = obj.world_mesh()
        if len(mesh.faces) == 0 or obj.id not in observed:
            continue
        surface, _ = _sample_surface(mesh, samples)
        distance, _ = cKDTree(surface).query(observed[obj.id], k=1)
        out[obj.id] = float(np.median(distance))
    return out


def _sample_surface(mesh, count):
    import trimesh

    return trimesh.sample.sample_surface(mesh, count, seed=0)


def _reasons(skipped: Mapping[int, str]) -> str:
    if not skipped:
        return "the input holds no object"
    return "; ".join(f"object {k}: {v}" for k, v in skipped.items())


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
