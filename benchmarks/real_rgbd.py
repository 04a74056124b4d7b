"""Reconstruction of a real RGB-D frame that comes without masks (Open3D's Redwood sample).

The instance masks are drawn from the depth alone by
:func:`sceneforge.perception.depth_segmentation.segment_objects_from_depth` (large planes by
RANSAC, the floor among them; object pixels above the floor and off the planes; connected
components cut at depth discontinuities; touching parts merged; tall, flat and small pieces
dropped). Every method of benchmarks/reconstruct.py's REAL_METHODS reconstructs the frame; the
table gives the median distance from the observed object points to the reconstructed surfaces,
and the chosen method's preview.png is written to docs/.

    python benchmarks/real_rgbd.py --preview docs/real_rgbd_preview.png
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from sceneforge.io.inputs import load_input
from sceneforge.perception.depth_segmentation import segment_objects_from_depth
from sceneforge.types import SceneInput

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reconstruct import REAL_METHODS, machine, real_table, run_real  # noqa: E402

FRAMES = {  # name -> (colour file, depth file, depth encoding) in data/real/rgbd
    "redwood": ("redwood_color.jpg", "redwood_depth.png", "mm"),
    "tum": ("tum_color.png", "tum_depth.png", "tum"),
}


def rgbd_input(folder: Path, frame: str) -> SceneInput:
    """The frame with Open3D's PrimeSense intrinsics and instance masks segmented from its depth."""
    colour, depth, encoding = FRAMES[frame]
    scene_input = load_input(folder / colour, depth=folder / depth, camera=folder / "camera_primesense.json",
                             depth_encoding=encoding)
    segmentation = segment_objects_from_depth(scene_input.camera, scene_input.depth)
    return dataclasses.replace(scene_input, instances=segmentation.instances)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="data/real/rgbd (default: the shared folder)")
    parser.add_argument("--frame", choices=sorted(FRAMES), default="redwood")
    parser.add_argument("--preview", type=Path, default=Path("docs/real_rgbd_preview.png"))
    parser.add_argument("--preview-method", default="lift, optimised poses", choices=sorted(REAL_METHODS))
    args = parser.parse_args(argv)
    folder = args.data
    if folder is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from conftest import find_shared_dir

        folder = find_shared_dir() / "data" / "real" / "rgbd"
    scene_input = rgbd_input(folder, args.frame)
    sizes = np.bincount(scene_input.instances.ravel())[1:]
    real = run_real(scene_input, args.preview, args.preview_method)
    print(f"# Real frame {args.frame} ({machine()})\n")
    print(f"{len(sizes)} instances segmented from depth ({', '.join(str(int(s)) for s in sizes)} px); preview "
          f"({args.preview_method}): {args.preview.as_posix()}\n")
    print("\n".join(real_table(real)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
