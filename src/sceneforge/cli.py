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
def evaluate(
    pred: Path = typer.Argument(..., help="Prediction: a scene (scene.json, its folder, .glb, .usd) or a folder of scenes."),
    gt: Path = typer.Argument(..., help="Ground truth: a scene, or a folder of scenes paired with PRED by name."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder for evaluation.csv/.json/.md."),
    workers: int = typer.Option(1, min=1, help="Scenes scored in parallel (processes)."),
    ray: bool = typer.Option(False, "--ray", help="Distribute scenes with Ray (pip install \"sceneforge[ray]\")."),
    align: bool = typer.Option(True, "--align/--no-align", help="Robust ICP alignment before scoring."),
    scale: str = typer.Option("icp", help="Alignment scale: none (rigid), normalise (I-Scene normalisations, "
                                          "rigid ICP), icp (plus uniform scale in ICP)."),
    up_axis: str = typer.Option("y", help="Up axis of the yaw sweep: x, y or z."),
    pred_range: tuple[float, float] | None = typer.Option(None, help="Declared output range of the predicting "
                                                                     "method for the min/max normalisation, e.g. -0.5 0.5."),
    tau: list[float] = typer.Option([0.1, 0.05, 0.02], help="F-score threshold, repeatable (--tau 0.1 --tau 0.05); the first is the headline."),
    points: int = typer.Option(20_480, min=1, help="Surface samples per object."),
    object_normalisation: str = typer.Option("uniform", help="uniform, per_axis (MIDI-3D) or scene."),
    scene_normalisation: str = typer.Option("uniform", help="uniform (GT box to [-1, 1]) or none (GT units)."),
    match: str = typer.Option("auto", help="auto, id or hungarian."),
    chamfer: str = typer.Option("l2_sum", help="Chamfer convention of the CD columns: l2_sum (MIDI-3D, SceneGen, "
                                               "I-Scene) or l1_mean (Gen3DSR)."),
    symmetric: list[str] = typer.Option([], help="LABEL=ORDER rotational symmetry about the object's up axis "
                                                 "(0 = continuous), repeatable, e.g. --symmetric table=2."),
    seed: int = typer.Option(0, help="Seed of surface sampling and subsampling."),
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
                            match=match, symmetry=symmetry, seed=seed)
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


def main() -> None:
    """Entry point: run the app; typed errors become one line on stderr and exit code 2."""
    try:
        app()
    except SceneforgeError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
