"""Time scene export and loading per format and print a Markdown table.

Usage: python benchmarks/bench_exports.py [--objects 10 50] [--subdivisions 3] [--repeats 3]

Each scene: N icospheres (vertex colours, 1280 faces at subdivision 3) with random similarity poses,
a 20k-face background, a camera and a floor. Times are the best of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import trimesh

from sceneforge.geometry import rotation_y
from sceneforge.io import load_scene, save_scene
from sceneforge.io.glb import read_glb_scene, write_glb
from sceneforge.io.scene_json import read_scene_json, write_scene_json
from sceneforge.io.usd import read_usd_scene, write_usd
from sceneforge.types import Camera, Plane, Scene, SceneObject, Similarity


def make_scene(n_objects: int, subdivisions: int, seed: int = 0) -> Scene:
    rng = np.random.default_rng(seed)
    objects = []
    for k in range(n_objects):
        mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=0.3)
        mesh.visual.vertex_colors = rng.integers(0, 256, (len(mesh.vertices), 4)).astype(np.uint8)
        pose = Similarity(rotation_y(rng.uniform(-np.pi, np.pi)), rng.uniform(-2, 2, 3), rng.uniform(0.5, 1.5))
        objects.append(SceneObject(k + 1, "ball", mesh, pose))
    background = trimesh.creation.icosphere(subdivisions=5, radius=10.0)  # 20480 faces
    return Scene(tuple(objects), Camera.from_fov(640, 480), Plane(np.array([0.0, 1.0, 0.0]), 1.0), background)


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--subdivisions", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    formats = {
        "glb": (lambda s, d: write_glb(s, d / "scene.glb"), lambda d: read_glb_scene(d / "scene.glb"), "scene.glb"),
        "usda": (lambda s, d: write_usd(s, d / "scene.usda"), lambda d: read_usd_scene(d / "scene.usda"), "scene.usda"),
        "usdc": (lambda s, d: write_usd(s, d / "scene.usdc"), lambda d: read_usd_scene(d / "scene.usdc"), "scene.usdc"),
        "json+ply": (lambda s, d: write_scene_json(s, d / "json"), lambda d: read_scene_json(d / "json"), "json"),
        "save_scene (glb+usda+json)": (lambda s, d: save_scene(s, d / "out"), lambda d: load_scene(d / "out"), "out"),
    }
    print("| objects | faces | format | write (ms) | read (ms) | size (KiB) |")
    print("| ---: | ---: | --- | ---: | ---: | ---: |")
    for n in args.objects:
        scene = make_scene(n, args.subdivisions)
        faces = sum(len(o.mesh.faces) for o in scene.objects) + len(scene.background.faces)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for name, (write, read, target) in formats.items():
                t_write = best_of(args.repeats, lambda: write(scene, folder))
                t_read = best_of(args.repeats, lambda: read(folder))
                size = folder_size(folder / target) / 1024
                print(f"| {n} | {faces} | {name} | {1000 * t_write:.1f} | {1000 * t_read:.1f} | {size:.0f} |")


if __name__ == "__main__":
    main()
