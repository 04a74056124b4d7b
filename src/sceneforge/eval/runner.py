"""Scoring predictions on disk: one scene, or two folders of scenes paired by name.

A scene is a scene.json (or a folder holding one), a .glb/.gltf or a USD file: anything
:func:`sceneforge.io.load_scene` reads. A folder that is not itself a scene is a folder of scenes:
each sub-folder with a scene file, and each scene file directly inside (a .json only when it is a
sceneforge scene), is one scene named by its folder or file stem. Ground-truth scenes without a
prediction are scored as empty predictions (F 0, infinite Chamfer distance) and predictions
without a ground truth are reported; nothing is dropped silently. Scenes run in parallel worker processes (``workers``) or on a Ray cluster.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sceneforge.errors import InputError, MissingDependencyError, SceneforgeError
from sceneforge.eval.scene_eval import EvalConfig, SceneEvaluation, evaluate_scene
from sceneforge.types import Scene
from sceneforge.workers import run_each

SCENE_MARKERS = ("scene.json", "scene.glb", "scene.usda", "scene.usdc")
SCENE_SUFFIXES = (".json", ".glb", ".gltf", ".usda", ".usdc", ".usd")


@dataclass(frozen=True)
class ScenePair:
    """A ground-truth scene and its prediction (None when the prediction is missing)."""

    name: str
    pred: Path | None
    gt: Path


@dataclass(frozen=True)
class EvaluationRun:
    """Per-scene results (in the order of the pairs), the mean row over scenes, run warnings."""

    results: tuple[SceneEvaluation, ...]
    mean: dict[str, float]
    warnings: tuple[str, ...]
    config: EvalConfig

    def to_dict(self) -> dict[str, object]:
        return {"mean": self.mean, "warnings": list(self.warnings), "scenes": [r.to_dict() for r in self.results]}


def is_single_scene(path: Path) -> bool:
    """True for a scene file, or a folder holding a scene file (scene.json, scene.glb, ...)."""
    if path.is_file():
        return True
    return path.is_dir() and any((path / m).is_file() for m in SCENE_MARKERS)


def list_scenes(folder: Path) -> dict[str, Path]:
    """Scenes inside a folder of scenes, by name (sub-folder name or file stem)."""
    scenes: dict[str, Path] = {}
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir() and is_single_scene(child):
            scenes[child.name] = child
        elif child.is_file() and child.suffix.lower() in SCENE_SUFFIXES and _may_be_scene_file(child):
            scenes.setdefault(child.stem, child)
    return scenes


def _may_be_scene_file(path: Path) -> bool:
    """Every .glb/.usd file; a .json file only when it declares the scene format (a folder of
    scenes may hold other JSON, such as the synthetic engine's dataset.json)."""
    if path.suffix.lower() != ".json":
        return True
    from sceneforge.io.scene_json import SCENE_FORMAT

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(doc, dict) and doc.get("format") == SCENE_FORMAT


def pair_scenes(pred: str | Path, gt: str | Path) -> tuple[list[ScenePair], list[str]]:
    """Pairs to score and warnings. Both paths single scenes, or both folders of scenes."""
    pred, gt = Path(pred), Path(gt)
    for path, role in ((pred, "prediction"), (gt, "ground truth")):
        if not path.exists():
            raise InputError(path, f"{role} not found")
    if is_single_scene(gt):
        if not is_single_scene(pred):
            raise InputError(pred, "ground truth is one scene but the prediction is a folder of scenes")
        return [ScenePair(gt.stem if gt.is_file() else gt.name, pred, gt)], []
    if is_single_scene(pred):
        raise InputError(pred, "prediction is one scene but the ground truth is a folder of scenes")
    gt_scenes, pred_scenes = list_scenes(gt), list_scenes(pred)
    if not gt_scenes:
        raise InputError(gt, "folder holds no scene (no scene folder and no .json/.glb/.usd file)")
    warnings = [f"prediction {name!r} has no ground truth and is not scored" for name in pred_scenes
                if name not in gt_scenes]
    missing = [name for name in gt_scenes if name not in pred_scenes]
    if missing:
        warnings.append(f"{len(missing)} ground-truth scene(s) without a prediction, scored as empty: {missing}")
    return [ScenePair(name, pred_scenes.get(name), path) for name, path in gt_scenes.items()], warnings


def load_any_scene(path: Path) -> Scene:
    """Load a scene through sceneforge.io.load_scene."""
    from sceneforge.io import load_scene

    return load_scene(path)


def evaluate_pair(pair: ScenePair, config: EvalConfig) -> SceneEvaluation:
    """Score one pair. A missing or unreadable prediction is scored as an empty prediction with a
    warning saying why; an unreadable ground truth raises."""
    gt = load_any_scene(pair.gt)
    note = None
    if pair.pred is None:
        pred, note = Scene(), "no prediction for this scene: scored as empty"
    else:
        try:
            pred = load_any_scene(pair.pred)
        except SceneforgeError as exc:
            pred, note = Scene(), f"prediction unreadable ({exc}): scored as empty"
    result = evaluate_scene(pred, gt, config, name=pair.name)
    if note is not None:
        result = replace(result, warnings=(note,) + result.warnings)
    return result


def mean_row(results: Sequence[SceneEvaluation]) -> dict[str, float]:
    """Mean over scenes of every numeric summary column (an infinite value stays infinite, NaN
    values are skipped), plus ``scenes`` and ``scenes_with_empty_prediction``."""
    rows = [r.summary() for r in results]
    out: dict[str, float] = {}
    if not rows:
        return out
    for key, value in rows[0].items():
        if key == "scene" or not isinstance(value, (int, float)):
            continue
        values = np.array([float(r[key]) for r in rows if isinstance(r.get(key), (int, float))])
        values = values[~np.isnan(values)]
        out[key] = float(values.mean()) if len(values) else float("nan")
    out["scenes"] = float(len(rows))
    out["scenes_with_empty_prediction"] = float(sum(1 for r in results if r.n_pred == 0))
    return out


def _run_local(pairs: Sequence[ScenePair], config: EvalConfig, workers: int,
               on_done: Callable[[SceneEvaluation], None]) -> list[SceneEvaluation]:
    if workers > 1 and len(pairs) > 1:
        config = replace(config, threads=1)
    results: dict[str, SceneEvaluation] = {}  # by the pair's name (unique)

    def finished(pair: ScenePair, result: SceneEvaluation) -> None:
        results[pair.name] = result
        on_done(result)

    run_each(evaluate_pair, pairs, (config,), workers, finished)
    return [results[pair.name] for pair in pairs]


def _run_ray(pairs: Sequence[ScenePair], config: EvalConfig,
             on_done: Callable[[SceneEvaluation], None]) -> list[SceneEvaluation]:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError("ray", extra="ray", purpose="evaluate --ray") from exc
    started = not ray.is_initialized()
    if started:
        # workers must import this very sceneforge (a source checkout need not be installed)
        import sceneforge

        src = str(Path(sceneforge.__file__).resolve().parents[1])
        ray.init(ignore_reinit_error=True, log_to_driver=False, include_dashboard=False,
                 runtime_env={"env_vars": {"PYTHONPATH": src}})
    try:
        remote = ray.remote(num_cpus=1)(evaluate_pair)
        config = replace(config, threads=1)
        refs = {remote.remote(pair, config): k for k, pair in enumerate(pairs)}
        results: dict[int, SceneEvaluation] = {}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                results[refs[ref]] = ray.get(ref)
                on_done(results[refs[ref]])
    finally:
        if started:
            ray.shutdown()
    return [results[k] for k in range(len(pairs))]


def evaluate_paths(pred: str | Path, gt: str | Path, config: EvalConfig | None = None, workers: int = 1,
                   use_ray: bool = False,
                   on_done: Callable[[SceneEvaluation], None] | None = None) -> EvaluationRun:
    """Score a prediction (one scene or a folder of scenes) against its ground truth.

    ``on_done`` is called after each scene (for a progress bar)."""
    config = config or EvalConfig()
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    pairs, warnings = pair_scenes(pred, gt)
    callback = on_done or (lambda _result: None)
    if use_ray:
        results = _run_ray(pairs, config, callback)
    else:
        results = _run_local(pairs, config, workers, callback)
    return EvaluationRun(tuple(results), mean_row(results), tuple(warnings), config)
