"""Command line: thin typer commands that only call the library.

Every :class:`~sceneforge.errors.SceneforgeError` becomes its message on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from sceneforge.errors import SceneforgeError

app = typer.Typer(
    name="sceneforge",
    help="Single image -> editable 3D scene: object meshes with poses, floor, background, camera.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """sceneforge command line."""


InputArgument = typer.Argument(..., help="Scene input: a folder (scene input convention), an image with "
                                          "its _seg/_depth siblings, or an .npz with masks.")
SegOption = typer.Option(None, "--seg", help="Instance map (index or colour-coded), overrides what INPUT has.")
DepthOption = typer.Option(None, "--depth", help="Depth map (.png 16-bit, .npy metres, .pgm NYU).")
CameraOption = typer.Option(None, "--camera", help="Camera JSON (fx/fy/cx/cy, K, or Open3D layout).")
LabelsOption = typer.Option(None, "--labels", help='Labels JSON {"1": "chair"}.')
DepthEncodingOption = typer.Option("auto", "--depth-encoding",
                                   help="auto | mm | tum | metres | sun | nyu (see docs/formats.md).")


@app.command()
def info(
    input: Path = InputArgument,
    seg: Path | None = SegOption,
    depth: Path | None = DepthOption,
    camera: Path | None = CameraOption,
    labels: Path | None = LabelsOption,
    depth_encoding: str = DepthEncodingOption,
) -> None:
    """Load any supported input and print what was found: image size, instances, depth, camera."""
    from sceneforge.io.inputs import load_input
    from sceneforge.report import describe_input

    scene_input = load_input(input, seg=seg, depth=depth, camera=camera, labels=labels,
                             depth_encoding=depth_encoding)
    describe_input(scene_input, console)


@app.command()
def export(
    scene: Path = typer.Argument(..., help="Scene to read: scene.json, a scene output folder, "
                                           "or a .glb/.gltf/.usda/.usdc file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output: .glb, .usda, .usdc or .usd file, or a folder "
                                                      "name without extension for glb + usda + json."),
) -> None:
    """Convert a scene between formats (GLB, USD, scene.json folder)."""
    from sceneforge.io import export_scene, load_scene

    loaded = load_scene(scene)
    written = export_scene(loaded, out)
    count = len(loaded.objects)
    console.print(f"wrote {written} ({count} object{'' if count == 1 else 's'}"
                  f"{', camera' if loaded.camera is not None else ''}"
                  f"{', background' if loaded.background is not None else ''})", highlight=False, soft_wrap=True)


@app.command()
def synth(
    out: Path = typer.Option(..., help="Output folder (created; an existing one is resumed)."),
    scenes: int = typer.Option(10, help="Number of scenes (scene_000000 ...)."),
    views: int = typer.Option(4, help="Candidate views per scene, spread evenly around it (I-Scene: 150)."),
    kind: str = typer.Option("iscene", help="Layout kind: iscene or openset."),
    seed: int = typer.Option(0, help="Dataset seed; scene i depends only on (seed, i)."),
    workers: int = typer.Option(1, help="Local worker processes (1 = this process)."),
    ray: str | None = typer.Option(None, "--ray", help="Run on Ray: 'auto' (running cluster), 'local' "
                                                         "(start one here) or a cluster address."),
    width: int = typer.Option(256, help="Image width, pixels."),
    height: int = typer.Option(256, help="Image height, pixels."),
    hfov: float = typer.Option(55.0, help="Horizontal field of view, degrees."),
    intrinsics: tuple[float, float, float, float] | None = typer.Option(
        None, help="FX FY CX CY in pixels instead of --hfov (any focal lengths and principal point)."),
    elevation: tuple[float, float] = typer.Option((15.0, 55.0), help="Camera elevation range, degrees."),
    distance: tuple[float, float] = typer.Option((0.9, 1.3), help="Camera distance range, in multiples of "
                                                 "the distance at which the scene's bounding sphere fills the view."),
    occlusion: str = typer.Option("drop", help="A view where an object is not visible: drop it, or mark "
                                               "the object invisible."),
    depth: str = typer.Option("png", help="Depth files: png (uint16 mm), npy (float32 m) or both."),
    normals: bool = typer.Option(False, help="Also write normals.png."),
    png_compression: int = typer.Option(1, help="PNG zlib level 0..9."),
    layout_option: list[str] = typer.Option([], "--layout-option", help="KEY=JSON passed to the layout "
                                            "config, e.g. max_objects=5 (repeatable)."),
) -> None:
    """Generate a synthetic dataset: layouts -> cameras -> renders -> scene input folders + scene.json."""
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from sceneforge.errors import InputError
    from sceneforge.synth.cameras import OrbitSpec
    from sceneforge.synth.dataset import SynthConfig, check_scene_count
    from sceneforge.synth.runner import generate_dataset, keep_freed_memory
    from sceneforge.synth.views import ViewSettings

    check_scene_count(scenes)
    if workers == 1 and ray is None:  # this process makes the scenes (worker processes do it themselves)
        keep_freed_memory()
    layout: dict[str, object] = {}
    for item in layout_option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(None, f"--layout-option must be KEY=JSON, got {item!r}")
        try:
            layout[key] = json.loads(value)
        except json.JSONDecodeError:
            layout[key] = value
    orbit = OrbitSpec(n_views=views, elevation_deg=elevation, distance_factor=distance, width=width,
                      height=height, hfov_deg=hfov, intrinsics=intrinsics)
    config = SynthConfig(kind=kind, seed=seed, views=ViewSettings(orbit=orbit, occlusion=occlusion, normals=normals),
                         layout=layout, depth_format=depth, png_compression=png_compression)
    columns = (TextColumn("[bold]synth[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("scenes", total=scenes, rate="")
        counts = {"views": 0, "dropped": 0}

        def on_start(todo: int, skipped: int) -> None:
            progress.update(task, completed=skipped)
            if skipped:
                progress.console.print(f"resuming: {skipped} scene(s) already complete, {todo} to make")

        def on_scene(done) -> None:
            counts["views"] += done.n_views
            counts["dropped"] += done.n_dropped
            elapsed = progress.tasks[task].elapsed or 1e-9
            progress.update(task, advance=1, rate=f"{counts['views']} views ({counts['dropped']} dropped), "
                                                   f"{counts['views'] / elapsed:.1f} views/s")

        report = generate_dataset(out, config, scenes, workers=workers, ray_address=ray,
                                  on_start=on_start, on_scene=on_scene)
    console.print(f"{report.generated} scene(s) made, {report.skipped} already there, {report.views} views "
                  f"({report.dropped_views} dropped) in {report.seconds:.1f} s "
                  f"({report.scenes_per_second:.1f} scenes/s, {report.views_per_second:.1f} views/s) -> {report.out}")


@app.command()
def evaluate(
    pred: Path = typer.Argument(..., help="Prediction: a scene (scene.json, its folder, .glb, .usd) or a "
                                          "folder of scenes."),
    gt: Path = typer.Argument(..., help="Ground truth: a scene, or a folder of scenes paired with PRED by name."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder for evaluation.csv/.json/.md."),
    workers: int = typer.Option(1, min=1, help="Scenes scored in parallel (processes)."),
    ray: bool = typer.Option(False, "--ray", help="Distribute scenes with Ray (pip install \"sceneforge[ray]\")."),
    align: bool = typer.Option(True, "--align/--no-align", help="Robust ICP alignment before scoring."),
    scale: str = typer.Option("icp", help="Alignment scale: none (rigid), normalise (I-Scene normalisations, "
                                          "rigid ICP), icp (plus uniform scale in ICP)."),
    up_axis: str = typer.Option("y", help="Up axis of the yaw sweep: x, y or z."),
    pred_range: tuple[float, float] | None = typer.Option(
        None, help="Declared output range of the predicting method for the min/max normalisation, e.g. -0.5 0.5."),
    tau: list[float] = typer.Option([0.1, 0.05, 0.02], help="F-score threshold, repeatable (--tau 0.1 "
                                                             "--tau 0.05); the first is the headline."),
    points: int = typer.Option(20_480, min=1, help="Surface samples per object."),
    object_normalisation: str = typer.Option("uniform", help="uniform, per_axis (MIDI-3D) or scene."),
    scene_normalisation: str = typer.Option("uniform", help="uniform (GT box to [-1, 1]) or none (GT units)."),
    match: str = typer.Option("auto", help="auto, id or hungarian."),
    chamfer: str = typer.Option("l2_sum", help="Chamfer convention of the CD columns: l2_sum (MIDI-3D, SceneGen, "
                                               "I-Scene) or l1_mean (Gen3DSR)."),
    symmetric: list[str] = typer.Option([], help="LABEL=ORDER rotational symmetry about the object's up axis "
                                                 "(0 = continuous), repeatable, e.g. --symmetric table=2."),
    seed: int = typer.Option(0, help="Seed of surface sampling and subsampling."),
    frame: str = typer.Option("world", help="world (scenes as given) or camera (each scene moved into the frame "
                                            "of its own camera first; for reconstructions, whose world is their own)."),
) -> None:
    """Score predicted scenes against ground truth: Chamfer (both conventions), F-score, IoU-B and more."""
    from rich.progress import Progress

    from sceneforge.eval.icp import AlignmentConfig, RobustICPConfig
    from sceneforge.eval.report import paper_columns, rich_details_table, rich_table, write_reports
    from sceneforge.eval.runner import evaluate_paths, pair_scenes
    from sceneforge.eval.scene_eval import EvalConfig

    try:
        if any("=" not in item for item in symmetric):
            raise ValueError(f"--symmetric takes LABEL=ORDER (e.g. table=2), got {symmetric}")
        symmetry = {label: int(order) for label, order in (item.split("=", 1) for item in symmetric)}
        alignment = AlignmentConfig(icp=RobustICPConfig(up_axis=up_axis), scale=scale, source_range=pred_range)
        config = EvalConfig(points_per_object=points, taus=tuple(tau), align=align, alignment=alignment,
                            scene_normalisation=scene_normalisation, object_normalisation=object_normalisation,
                            match=match, symmetry=symmetry, seed=seed, frame=frame)
        paper_columns(chamfer, config.taus[0])
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    total = len(pair_scenes(pred, gt)[0])
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("evaluating", total=total)
        run = evaluate_paths(pred, gt, config, workers=workers, use_ray=ray,
                             on_done=lambda _r: progress.advance(task))
    console.print(rich_table(run, chamfer))
    console.print(rich_details_table(run))
    for warning in run.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    for result in run.results:
        for warning in result.warnings:
            err_console.print(f"[yellow]warning:[/] {result.name}: {warning}", highlight=False)
    if out is not None:
        paths = write_reports(run, out, chamfer)
        console.print("wrote " + ", ".join(str(p) for p in paths.values()))

train_app = typer.Typer(help="Train the learned models on engine datasets.", no_args_is_help=True)
app.add_typer(train_app, name="train")


@train_app.command("pose")
def train_pose(
    data: Path = typer.Option(..., "--data", help="Engine dataset folder (sceneforge synth --out)."),
    out: Path = typer.Option(..., "--out", help="Checkpoint folder (model.safetensors + config.json); an "
                                                "existing one is resumed."),
    config: Path | None = typer.Option(None, "--config", help="JSON with sections model, data, train "
                                                               "(docs/learned_pose.md); defaults otherwise."),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Override train.steps."),
    workers: int | None = typer.Option(None, "--workers", min=0, help="Override train.workers (data loading)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Resume a checkpoint found in --out."),
    until_step: int | None = typer.Option(None, "--until-step", min=1, help="Stop (with a checkpoint) after "
                                                                           "this step; resume later."),
) -> None:
    """Train the pose model (flow-matching transformer); under torchrun, DDP over gloo."""
    import dataclasses
    import os

    from sceneforge.errors import InputError
    from sceneforge.models.train import RunConfig, train_pose_model

    run = RunConfig.from_file(config)
    overrides = {k: v for k, v in (("steps", steps), ("workers", workers)) if v is not None}
    if overrides:
        try:
            run = dataclasses.replace(run, train=dataclasses.replace(run.train, **overrides))
        except ValueError as exc:
            raise InputError(config, str(exc)) from exc
    main_process = os.environ.get("RANK", "0") == "0"

    def on_log(row: dict) -> None:
        if main_process and "validation" in row:
            console.print(f"step {row['step']:>6}  held-out ({row['views']} views, {row['objects']} objects): "
                          f"rotation {row['rotation_deg_median']:.1f} deg, translation {row['translation_median']:.3f}, "
                          f"|log scale| {row['log_scale_median']:.3f}, rotation as shape "
                          f"{row['rotation_shape_median']:.3f} (random rotation: {row['rotation_shape_random_median']:.3f}) "
                          "(medians)", highlight=False)
        elif main_process:
            console.print(f"step {row['step']:>6}  loss {row['loss']:.4f}  (R {row['rotation']:.4f}  "
                          f"T {row['translation']:.4f}  S {row['scale']:.4f})  lr {row['lr']:.2e}  "
                          f"{row['seconds']:.0f} s", highlight=False)

    result = train_pose_model(data, out, run, resume=resume, on_log=on_log, until_step=until_step)
    if main_process:
        console.print(f"trained steps {result.start_step}..{result.step} in {result.seconds:.1f} s -> {result.out}")


ShapeOption = typer.Option(None, "--shape", help="Shape backend: retrieve (best procedural library asset; default), "
                                                 "lift (completed closed meshes from the object's own points) or visible (the visible-points "
                                                 "baseline).")
PoseOption = typer.Option(None, "--pose", help="Pose stage: auto (default: learned_optimise with depth, "
                                               "initial without), initial (the shape stage's poses), optimise, "
                                               "learned (the shipped learned pose model alone) or learned_optimise "
                                               "(optimise with the learned model's poses as further starts).")
ConfigOption = typer.Option(None, "--config", help="Pipeline JSON (stage names and settings, e.g. the 'pipeline' "
                                                   "of a report.json); --shape/--pose override it.")
FormatOption = typer.Option(["glb", "usda", "json"], "--format", help="Scene files to write (repeatable): "
                                                                      "glb, usda, usdc, json.")


class _StageProgress:
    """A rich progress line per pipeline stage: each call marks the previous stage done."""

    def __init__(self, progress, stages: tuple[str, ...]) -> None:
        self.progress = progress
        self.task = progress.add_task("starting", total=len(stages))
        self.started = False

    def __call__(self, stage: str, message: str) -> None:
        if self.started:
            self.progress.advance(self.task)
        self.started = True
        self.progress.update(self.task, description=f"[bold]{stage}[/] {message}")

    def finish(self) -> None:
        self.progress.update(self.task, completed=self.progress.tasks[self.task].total, description="done")


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err_console, transient=True)


def _print_reconstruction(report, out: Path) -> None:
    timings = ", ".join(f"{k} {v:.2f} s" for k, v in report["timings_s"].items())
    n = len(report["objects"])
    console.print(f"reconstructed {n} object{'' if n == 1 else 's'} -> {out}", highlight=False, soft_wrap=True)
    console.print(f"time per stage: {timings}", highlight=False, soft_wrap=True)
    for assumption in report["assumptions"]:
        console.print(f"assumed: {assumption}", highlight=False, soft_wrap=True)
    for warning in report["warnings"]:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)


def _pipeline(config: Path | None, shape: str | None, pose: str | None):
    """The pipeline of a command: the --config file (or the default) with --shape/--pose applied."""
    from sceneforge.errors import InputError
    from sceneforge.pipeline import ScenePipeline

    base = ScenePipeline()
    if config is not None:
        if not config.is_file():
            raise InputError(config, "pipeline config file not found")
        try:
            base = ScenePipeline.from_config(config.read_text())
        except InputError as exc:  # a problem of the file's content, named with the file
            if exc.path is not None:
                raise
            raise InputError(config, exc.problem) from exc
    return base.with_stages(shape=shape, pose=pose)


@app.command()
def reconstruct(
    input: Path | None = typer.Option(None, "--input", "-i", help="Scene input: a folder (scene input "
                                      "convention), an image with its _seg/_depth siblings, or an .npz with masks."),
    image: Path | None = typer.Option(None, "--image", help="Input image (use with --seg, instead of --input)."),
    seg: Path | None = SegOption,
    depth: Path | None = DepthOption,
    camera: Path | None = CameraOption,
    labels: Path | None = LabelsOption,
    depth_encoding: str = DepthEncodingOption,
    out: Path = typer.Option(..., "--out", "-o", help="Scene output folder (replaced whole if it is one)."),
    shape: str | None = ShapeOption,
    pose: str | None = PoseOption,
    formats: list[str] = FormatOption,
    config: Path | None = ConfigOption,
) -> None:
    """Reconstruct an editable 3D scene from an image, instance masks and depth (the main job)."""
    from sceneforge.errors import InputError
    from sceneforge.io.inputs import load_input
    from sceneforge.pipeline import STAGES

    if (input is None) == (image is None):
        raise InputError(None, "give exactly one of --input (a folder, image or .npz) or --image with --seg")
    scene_input = load_input(input if input is not None else image, seg=seg, depth=depth, camera=camera,
                             labels=labels, depth_encoding=depth_encoding)
    pipeline = _pipeline(config, shape, pose)
    with _progress() as progress:
        stages = _StageProgress(progress, STAGES + ("save",))
        result = pipeline.run(scene_input, progress=stages)
        stages("save", "writing scene files, preview.png, report.json")
        result.save(out, formats=tuple(formats))
        stages.finish()
    _print_reconstruction(result.report, out)


@app.command()
def demo(
    out: Path = typer.Option(Path("sceneforge_demo"), "--out", "-o", help="Scene output folder to write."),
    seed: int = typer.Option(0, help="Engine seed of the demo scene."),
    size: int = typer.Option(512, min=64, max=2048, help="Image width and height, pixels."),
    shape: str | None = ShapeOption,
    pose: str | None = PoseOption,
) -> None:
    """Make one engine scene, reconstruct its view, write the output folder and score it against the truth."""
    from sceneforge.demo import run_demo, scores_text
    from sceneforge.pipeline import STAGES

    pipeline = _pipeline(None, shape, pose)
    with _progress() as progress:
        stages = _StageProgress(progress, ("synth",) + STAGES + ("evaluate", "save"))
        result = run_demo(out, seed=seed, size=size, pipeline=pipeline, progress=stages)
        stages.finish()
    _print_reconstruction(result.result.report, out)
    console.print(f"scores against the engine's ground truth ({len(result.result.scene.objects)} of "
                  f"{result.camera_frame.n_gt} objects; F-scores in %, CD = l2_sum, tau = 0.1):", highlight=False)
    console.print(scores_text(result), highlight=False, soft_wrap=True)
    console.print(f"wrote {out}/scores.json; the engine scene and its view are in {out}/engine; rescore with "
                  f"sceneforge evaluate {out} {out}/ground_truth --frame camera --no-align", highlight=False,
                  soft_wrap=True)


def main() -> None:
    """Entry point: run the app; typed errors become one line on stderr and exit code 2."""
    try:
        app()
    except SceneforgeError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
