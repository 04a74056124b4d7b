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


def main() -> None:
    """Entry point: run the app; typed errors become one line on stderr and exit code 2."""
    try:
        app()
    except SceneforgeError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
