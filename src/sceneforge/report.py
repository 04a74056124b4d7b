"""Human-readable summaries (rich tables) of inputs and results for the command line."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

from sceneforge.types import SceneInput


def describe_input(scene_input: SceneInput, console: Console) -> None:
    """Print image size, instances with pixel counts and labels, depth range and units, camera."""
    console.print(f"[bold]{scene_input.source}[/]")
    console.print(f"image: {scene_input.width}x{scene_input.height} RGB")
    counts = scene_input.pixel_counts()
    if counts:
        table = Table(title=f"{len(counts)} instances", show_edge=False)
        table.add_column("id", justify="right")
        table.add_column("label")
        table.add_column("pixels", justify="right")
        table.add_column("% of image", justify="right")
        total = scene_input.width * scene_input.height
        for object_id, n in counts.items():
            table.add_row(str(object_id), scene_input.labels.get(object_id, "-"), str(n), f"{100.0 * n / total:.2f}")
        console.print(table)
    else:
        console.print("instances: none given (no mask or instance map)")
    if scene_input.depth is not None:
        valid = scene_input.depth[scene_input.depth > 0]
        console.print(f"depth: {valid.min():.3f} to {valid.max():.3f} m (median {np.median(valid):.3f} m), "
                      f"{100.0 * valid.size / scene_input.depth.size:.1f}% valid pixels")
    else:
        console.print("depth: none")
    cam = scene_input.camera
    if cam is not None:
        console.print(f"camera: fx={cam.fx:.2f} fy={cam.fy:.2f} cx={cam.cx:.2f} cy={cam.cy:.2f} "
                      f"{cam.width}x{cam.height} (horizontal FoV {cam.hfov_deg:.1f} deg)")
    else:
        console.print("camera: none (a default 60 deg horizontal field of view is assumed downstream)")
    for warning in scene_input.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
