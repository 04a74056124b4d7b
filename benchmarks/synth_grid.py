"""A contact sheet of generated views: RGB, instance ids, depth and normals for a few scenes.

Generates a small dataset per layout kind with ``sceneforge synth``'s library call and tiles, per
scene, the first kept view as (RGB | instances | depth | normals); I-Scene layouts on the left,
open-set layouts on the right. Usage::

    python benchmarks/synth_grid.py --out docs/synth_grid.png --scenes 4 --seed 7 --size 192
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np

from sceneforge.synth.cameras import OrbitSpec
from sceneforge.synth.dataset import SynthConfig
from sceneforge.synth.runner import generate_dataset
from sceneforge.synth.views import ViewSettings


def colourise_ids(ids: np.ndarray) -> np.ndarray:
    """(H, W) ids -> (H, W, 3) uint8 RGB, a fixed colour per id, background black."""
    rng = np.random.default_rng(1234)
    palette = rng.integers(60, 256, size=(int(ids.max()) + 1, 3)).astype(np.uint8)
    palette[0] = 0
    return palette[ids]


def colourise_depth(depth_mm: np.ndarray) -> np.ndarray:
    """(H, W) uint16 mm -> (H, W, 3) uint8 RGB (near bright, invalid black)."""
    valid = depth_mm > 0
    out = np.zeros(depth_mm.shape + (3,), np.uint8)
    if valid.any():
        d = depth_mm[valid].astype(np.float64)
        lo, hi = np.percentile(d, 1), np.percentile(d, 99)
        scaled = np.clip((hi - depth_mm.astype(np.float64)) / max(hi - lo, 1.0), 0, 1)
        coloured = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)[:, :, ::-1]
        out[valid] = coloured[valid]
    return out


def read_rgb(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


def scene_row(scene_dir: Path) -> np.ndarray | None:
    views = sorted((scene_dir / "views").iterdir())
    if not views:
        return None
    v = views[0]
    ids = cv2.imread(str(v / "instances.png"), cv2.IMREAD_UNCHANGED)
    depth = cv2.imread(str(v / "depth.png"), cv2.IMREAD_UNCHANGED)
    tiles = [read_rgb(v / "rgb.png"), colourise_ids(ids), colourise_depth(depth), read_rgb(v / "normals.png")]
    return np.concatenate(tiles, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/synth_grid.png"))
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--size", type=int, default=192)
    args = parser.parse_args()
    columns: dict[str, list[np.ndarray]] = {}
    with tempfile.TemporaryDirectory(prefix="synth-grid-") as tmp:
        for kind in ("iscene", "openset"):
            orbit = OrbitSpec(n_views=4, width=args.size, height=args.size)
            config = SynthConfig(kind=kind, seed=args.seed, views=ViewSettings(orbit=orbit, normals=True))
            out = Path(tmp) / kind
            generate_dataset(out, config, args.scenes)
            for scene_dir in sorted(out.glob("scene_*")):
                row = scene_row(scene_dir)
                if row is not None:
                    columns.setdefault(kind, []).append(row)
                    meta = json.loads((scene_dir / "scene.json").read_text())
                    labels = [o["label"] for o in meta["objects"]]
                    print(f"{kind} {scene_dir.name}: {', '.join(labels)}")
    n = min(len(rows) for rows in columns.values())  # scenes whose views were all dropped have no row
    grid = np.concatenate([np.concatenate(rows[:n], axis=0) for rows in columns.values()], axis=1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), grid[:, :, ::-1])
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]})")


if __name__ == "__main__":
    main()
