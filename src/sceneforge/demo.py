"""The main job end to end on one engine scene: render a view, reconstruct it, score it.

    sceneforge demo --out demo_out

makes one scene with the synthetic engine (one 512x512 view, 3-5 objects), reconstructs that view
with the default :class:`~sceneforge.pipeline.ScenePipeline`, writes the scene output folder
(plus ``engine/``: the engine scene and its view, the reconstruction's input; ``ground_truth/``: the
objects visible in the view with the view's camera, so that ``sceneforge evaluate OUT
OUT/ground_truth --frame camera --no-align`` reproduces the scores; and ``scores.json``) and scores the reconstruction against the ground truth with
:mod:`sceneforge.eval` twice: in the input camera frame without alignment, and with the default
robust-ICP alignment.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sceneforge.engine_views import write_engine_view
from sceneforge.eval import EvalConfig, SceneEvaluation, evaluate_scene
from sceneforge.eval.sampling import DEFAULT_POINTS_PER_OBJECT
from sceneforge.io.inputs import load_input
from sceneforge.io.scene_json import write_scene_json
from sceneforge.pipeline import DEFAULT_FORMATS, ProgressCallback, ReconstructionResult, ScenePipeline, report_bytes

DEMO_SIZE = 512
DEMO_TAUS = (0.1, 0.05, 0.02)
SCORE_KEYS = ("cd_s_l2_sum", "fscore_s@0.1", "cd_o_l2_sum", "fscore_o@0.1", "iou_b", "fscore_s@0.02")


@dataclass(frozen=True, eq=False)
class DemoResult:
    """out_dir : the written scene output folder.  camera_frame / aligned : the two evaluations.
    seconds : wall time per step (synth, reconstruct, save, evaluate)."""

    out_dir: Path
    result: ReconstructionResult
    camera_frame: SceneEvaluation
    aligned: SceneEvaluation
    seconds: Mapping[str, float]

    def scores(self) -> dict[str, Any]:
        """JSON-ready: the paper columns of both evaluations, their warnings and the timings."""
        return {"camera_frame_no_alignment": _row(self.camera_frame), "aligned": _row(self.aligned),
                "warnings": {"camera_frame_no_alignment": list(self.camera_frame.warnings),
                             "aligned": list(self.aligned.warnings)},
                "seconds": dict(self.seconds)}


def run_demo(out_dir: str | Path, seed: int = 0, size: int = DEMO_SIZE, pipeline: ScenePipeline | None = None,
             progress: ProgressCallback | None = None, points_per_object: int = DEFAULT_POINTS_PER_OBJECT) -> DemoResult:
    """Engine view -> reconstruction -> output folder -> scores (module docstring)."""
    notify = progress or (lambda stage, message: None)
    pipeline = pipeline or ScenePipeline()
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="sceneforge-demo-") as tmp:
        notify("synth", f"engine scene (seed {seed}), one {size}x{size} view")
        t0 = time.perf_counter()
        view = write_engine_view(Path(tmp) / "engine", seed=seed, size=size)
        seconds["synth"] = time.perf_counter() - t0
        scene_input = load_input(view.input_dir)
        result = pipeline.run(scene_input, progress=progress)
        seconds["reconstruct"] = float(result.report["timings_s"]["total"])

        notify("evaluate", "scoring against the ground truth (camera frame, then aligned)")
        t0 = time.perf_counter()
        common = dict(points_per_object=points_per_object, taus=DEMO_TAUS, frame="camera", threads=1)
        camera_frame = evaluate_scene(result.scene, view.ground_truth, EvalConfig(align=False, **common),
                                      name="camera frame")
        aligned = evaluate_scene(result.scene, view.ground_truth, EvalConfig(align=True, **common), name="aligned")
        seconds["evaluate"] = time.perf_counter() - t0

        notify("save", "writing the scene output folder")
        t0 = time.perf_counter()
        engine_files = _folder_bytes(view.scene_dir, "engine")
        truth_dir = Path(tmp) / "ground_truth"
        write_scene_json(view.ground_truth, truth_dir)
        demo = DemoResult(Path(out_dir), result, camera_frame, aligned, seconds)
        extra = {**engine_files, **_folder_bytes(truth_dir, "ground_truth"), "scores.json": report_bytes(demo.scores())}
        result.save(out_dir, formats=DEFAULT_FORMATS, extra=extra)
        seconds["save"] = time.perf_counter() - t0
    return demo


def _folder_bytes(folder: Path, prefix: str) -> dict[str, bytes]:
    """``prefix/relative path`` -> bytes of every file under ``folder``."""
    return {f"{prefix}/{p.relative_to(folder).as_posix()}": p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _row(evaluation: SceneEvaluation) -> dict[str, float]:
    summary = evaluation.summary()
    row = {key: float(summary[key]) for key in SCORE_KEYS}
    row.update(n_gt=int(summary["n_gt"]), n_pred=int(summary["n_pred"]), n_missed=int(summary["n_missed"]))
    return row


def scores_text(demo: DemoResult) -> str:
    """The two score rows as a small fixed-width table (F-scores in %)."""
    header = f"{'':32}{'CD-S':>10}{'F-S':>8}{'CD-O':>10}{'F-O':>8}{'IoU-B':>8}{'F-S@.02':>9}"
    lines = [header]
    for title, ev in (("camera frame, no alignment", demo.camera_frame), ("robust-ICP aligned", demo.aligned)):
        r = _row(ev)
        lines.append(f"{title:32}{r['cd_s_l2_sum']:>10.4f}{100 * r['fscore_s@0.1']:>8.1f}{r['cd_o_l2_sum']:>10.4f}"
                     f"{100 * r['fscore_o@0.1']:>8.1f}{r['iou_b']:>8.3f}{100 * r['fscore_s@0.02']:>9.1f}")
    return "\n".join(lines)
