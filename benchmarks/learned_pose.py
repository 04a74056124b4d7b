"""The learned pose model on held-out engine views, ground-truth meshes given (SceneMaker's setting).

    python benchmarks/learned_pose.py --checkpoint src/sceneforge/data/pose_model --views 100 \\
        --out docs/learned_pose_results.md [--cache DIR]

Views: one 256x256 view of scenes 0..N-1 of each kind, open-set (dataset seed 901) and I-Scene
(seed 902); training used seeds 11 and 12. Per view the reconstruction's perception (given depth),
amodal completion and lift shapes run as the pipeline runs them; then each object's shape is
replaced by its ground-truth mesh (unit box; initial pose = the lift box), so only poses differ
between the rows:

- ``initial (lift box)``: the shape stage's poses;
- ``optimisation alone``: the ``optimise`` pose stage;
- ``model samples, not registered``: the ``learned`` stage without registration (K flow samples,
  the most consistent kept per object): the network alone;
- ``model``: the ``learned`` pose stage as shipped (each of the K samples registered to the view's
  points and mask, then the most consistent kept per object);
- ``uniform rotations, registered``: the same with the samples' rotations replaced by uniformly
  random ones (translation and scale still the model's): what the network's rotations add;
- ``optimisation initialised by the model``: the ``learned_optimise`` pose stage (the optimiser
  started from each object's lift-box pose and, as a further start, the model's pose with the
  stage's own sampling, K = 8 unless ``--samples`` is given; the optimiser's refined image loss
  chooses).

Scores (sceneforge.eval, camera frame, no alignment): CD-S, F-Score-S, CD-O, F-Score-O (tau 0.1, %),
IoU-B, rotation error (degrees, no symmetry), translation error and relative scale error; pose
stage seconds per scene (wall and process CPU time). "Occluded" views are those where some object
shows less than half of its silhouette (ground-truth object rendered alone vs its visible pixels).

With ``--shapes lift`` the lift backend's meshes are kept instead (what ``reconstruct`` gives the
pose stage), so the scores also include the shapes' errors.

``--cache DIR`` keeps each view's prepared inputs and its checkpoint-independent rows, so a run
with a new checkpoint only runs the model rows. Per-view rows go to ``--json``. ``--rows`` picks
rows (default: all); ``--compare NAME=DIR ...`` adds a ``model: NAME`` row per further checkpoint
(the ``learned`` stage, same K and steps), e.g. the architecture ablations of docs/learned_pose.md:

    python benchmarks/learned_pose.py --rows --compare full=runs/full "w/o GSA=runs/no_gsa" ... --views 50
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import sceneforge.pose.learned  # noqa: F401  (registers the learned pose stages)
from reconstruct import with_truth_meshes
from sceneforge.engine_views import write_engine_view
from sceneforge.eval import EvalConfig, evaluate_scene
from sceneforge.io.inputs import load_input
from sceneforge.pipeline import ScenePipeline
from sceneforge.registry import create
from sceneforge.types import Scene

KINDS = {"openset": 901, "iscene": 902}
FIXED_ROWS = ("initial (lift box)", "optimisation alone")
MODEL_ROWS = ("model samples, not registered", "model", "uniform rotations, registered",
              "optimisation initialised by the model")
COLUMNS = ("CD-S", "F-Score-S", "CD-O", "F-Score-O", "IoU-B", "rot °", "trans", "scale", "pose s", "pose CPU s")
SCORING = EvalConfig(frame="camera", align=False, points_per_object=2048, taus=(0.1,), threads=1)


def occluded_fractions(view, scene_input) -> dict[int, float]:
    """Per ground-truth object: 1 - visible pixels / pixels of the object rendered alone."""
    from sceneforge.render.rasterizer import shared_rasterizer
    from sceneforge.render.scene import RenderMesh, RenderScene

    rasterizer = shared_rasterizer()
    out = {}
    for o in view.ground_truth.objects:
        uploaded = rasterizer.upload(RenderScene((RenderMesh(o.mesh, o.pose.matrix, o.id),)))
        alone = int(np.count_nonzero(rasterizer.render(uploaded, view.ground_truth.camera).instances == o.id))
        visible = int(np.count_nonzero(scene_input.instances == o.id))
        out[o.id] = 1.0 - visible / alone if alone else 1.0
    return out


def prepare(kind: str, index: int, size: int, shapes: str) -> dict:
    """Render the view, run perception/amodal/lift, swap in GT meshes unless ``shapes`` is "lift";
    the rows that need no model."""
    with tempfile.TemporaryDirectory() as tmp:
        view = write_engine_view(Path(tmp), seed=KINDS[kind], index=index, size=size, layout={}, kind=kind)
        scene_input = load_input(view.input_dir)
        occluded = occluded_fractions(view, scene_input)
    initial = ScenePipeline(shape="lift", pose="initial").run(scene_input)
    objects = list(initial.scene.objects)
    prepared = {"kind": kind, "index": index, "perception": initial.perception, "amodal": initial.amodal,
                "objects": objects if shapes == "lift" else with_truth_meshes(objects, view.ground_truth),
                "truth": view.ground_truth,
                "max_occluded": max(occluded.values()) if occluded else 0.0, "rows": {}}
    return prepared


def fixed_row(prepared: dict, name: str) -> dict[str, float]:
    """A checkpoint-independent row: the shape stage's poses, or the optimiser alone."""
    if name == FIXED_ROWS[0]:
        return score(prepared, prepared["objects"], 0.0, 0.0)
    return run_stage(prepared, create("pose", "optimise"))


def run_stage(prepared: dict, stage) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = stage.refine(prepared["perception"], prepared["objects"], prepared["amodal"])
    return score(prepared, result.objects, time.perf_counter() - wall, time.process_time() - cpu)


def score(prepared: dict, objects, seconds: float, cpu_seconds: float) -> dict[str, float]:
    perception = prepared["perception"]
    pred = Scene(objects=tuple(objects), camera=perception.camera, floor=perception.floor)
    ev = evaluate_scene(pred, prepared["truth"], SCORING)
    row = ev.summary()
    return {"CD-S": row["cd_s_l2_sum"], "F-Score-S": 100 * row["fscore_s@0.1"], "CD-O": row["cd_o_l2_sum"],
            "F-Score-O": 100 * row["fscore_o@0.1"], "IoU-B": row["iou_b"], "rot °": ev.rotation_error_deg,
            "trans": ev.translation_error, "scale": ev.scale_error, "pose s": seconds, "pose CPU s": cpu_seconds}


def table(views: list[dict], rows: tuple[str, ...]) -> str:
    lines = ["| row | views | " + " | ".join(COLUMNS) + " |", "|---|---|" + "---|" * len(COLUMNS)]
    for name in rows:
        have = [v["rows"][name] for v in views if name in v["rows"]]
        cells = []
        for c in COLUMNS:
            values = np.array([r[c] for r in have], dtype=float)
            values = values[np.isfinite(values)]
            fmt = "{:.2e}" if c in ("CD-S", "CD-O") else "{:.3f}" if c in ("IoU-B", "trans", "scale") else "{:.2f}"
            cells.append(fmt.format(values.mean()) if len(values) else "n/a")
        lines.append(f"| {name} | {len(have)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="pose-model folder (None: fixed rows only)")
    parser.add_argument("--views", type=int, default=100, help="views per kind")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--shapes", choices=("gt", "lift"), default="gt", help="meshes the pose stages get")
    parser.add_argument("--samples", type=int, default=None,
                        help="K flow samples per scene (default: each stage's own, learned 24, learned_optimise 8)")
    parser.add_argument("--flow-steps", type=int, default=None, help="Euler steps (default: the stages' own, 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the model stages")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--time-limit", type=float, default=None, help="stop taking new views after this many s")
    parser.add_argument("--out", type=Path, default=None, help="Markdown file for the tables")
    parser.add_argument("--json", type=Path, default=None, help="per-view rows")
    parser.add_argument("--rows", nargs="*", choices=FIXED_ROWS + MODEL_ROWS, default=None, metavar="ROW",
                        help="rows to run (default: all; with --checkpoint the model rows)")
    parser.add_argument("--compare", nargs="+", default=[], metavar="NAME=DIR",
                        help="more checkpoints, one 'model: NAME' row each")
    args = parser.parse_args(argv)
    if any("=" not in c for c in args.compare):
        parser.error("--compare takes NAME=DIR pairs")
    import torch

    torch.set_num_threads(args.threads)
    sampling = {"samples": args.samples, "flow_steps": args.flow_steps, "threads": args.threads}
    sampling = {name: value for name, value in sampling.items() if value is not None}
    stages = {}
    if args.checkpoint is not None:
        model = {"checkpoint": str(args.checkpoint), **sampling}
        stages = {MODEL_ROWS[0]: create("pose", "learned", registration={"steps": 0}, **model),
                  MODEL_ROWS[1]: create("pose", "learned", **model),
                  MODEL_ROWS[2]: create("pose", "learned", rotations="uniform", **model),
                  MODEL_ROWS[3]: create("pose", "learned_optimise", **model)}
    fixed = FIXED_ROWS if args.rows is None else tuple(r for r in FIXED_ROWS if r in args.rows)
    stages = {name: stage for name, stage in stages.items() if args.rows is None or name in args.rows}
    for pair in args.compare:
        name, folder = pair.split("=", 1)
        stages[f"model: {name}"] = create("pose", "learned", checkpoint=folder, **sampling)
    began = time.perf_counter()
    done: dict[str, list[dict]] = {kind: [] for kind in args.kinds}
    failures = []
    for index in range(args.views):          # kinds interleaved so a time limit keeps both
        for kind in args.kinds:
            if args.time_limit is not None and time.perf_counter() - began > args.time_limit:
                break
            suffix = "" if args.shapes == "gt" else "_lift"
            cached = None if args.cache is None else \
                args.cache / f"{kind}_{KINDS[kind]}_{index:04d}_{args.size}{suffix}.pkl"
            try:
                if cached is not None and cached.is_file():
                    prepared = pickle.loads(cached.read_bytes())
                else:
                    prepared = prepare(kind, index, args.size, args.shapes)
                missing = [name for name in fixed if name not in prepared["rows"]]
                for name in missing:
                    prepared["rows"][name] = fixed_row(prepared, name)
                if cached is not None and (missing or not cached.is_file()):
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    cached.write_bytes(pickle.dumps(prepared))
            except Exception as exc:  # a view the reconstruction cannot handle is listed, not hidden
                failures.append(f"{kind} {index}: {exc}")
                continue
            if not prepared["objects"]:
                failures.append(f"{kind} {index}: no object reconstructed")
                continue
            for name, stage in stages.items():
                prepared["rows"][name] = run_stage(prepared, stage)
            done[kind].append(prepared)
            print(f"{kind} {index}: {len(prepared['objects'])} objects, {time.perf_counter() - began:.0f} s",
                  file=sys.stderr, flush=True)
    rows = fixed + tuple(stages)
    compared = "".join(f"; {pair}" for pair in args.compare)
    text = [f"Checkpoint: {args.checkpoint}{compared} (K = {args.samples or 'each stage default'}, "
            f"{args.flow_steps or 5} Euler steps). "
            f"{args.size}x{args.size} views, " + ("GT meshes given" if args.shapes == "gt" else "lift meshes") +
            ", given depth; camera frame, no alignment; "
            "CD l2_sum in the GT's normalised space, F-Score at tau = 0.1 in %; rotation error in degrees "
            f"(no symmetry), translation in GT units, scale relative; pose stage time per scene, {args.threads} torch "
            f"thread(s). Total wall time {time.perf_counter() - began:.0f} s.", ""]
    for kind, views in done.items():
        occluded = [v for v in views if v["max_occluded"] > 0.5]
        mean_objects = np.mean([len(v["objects"]) for v in views]) if views else 0.0
        text += [f"### {kind} (seed {KINDS[kind]}): {len(views)} views, {mean_objects:.1f} objects per view", "",
                 table(views, rows), "",
                 f"Occluded subset ({kind}, some object more than half occluded): {len(occluded)} views", "",
                 table(occluded, rows), ""]
    if failures:
        text += ["Views left out: " + "; ".join(failures), ""]
    report = "\n".join(text)
    print(report)
    from sceneforge.io.atomic import write_text_atomic

    if args.out is not None:
        write_text_atomic(args.out, report + "\n")
    if args.json is not None:
        per_view = [{"kind": v["kind"], "index": v["index"], "max_occluded": v["max_occluded"], "rows": v["rows"]}
                    for views in done.values() for v in views]
        write_text_atomic(args.json, json.dumps(per_view, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
