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
    from sceneforge.synth.runner import generate_dataset
    from sceneforge.synth.views import ViewSettings

    check_scene_count(scenes)
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


def main() -> None:
    """Entry point: run the app; typed errors become one line on stderr and exit code 2."""
    try:
        app()
    except SceneforgeError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
