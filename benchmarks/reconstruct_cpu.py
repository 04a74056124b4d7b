"""CPU time of one reconstruction of a 5-object engine view at 512x512 (the issue's speed goal).

Wall-clock times on a shared machine say more about the other jobs than about the code, so this
measures the process CPU time (time.process_time) of ``ScenePipeline.run`` per view (the pose
optimisation runs torch on one thread, the other stages are single-threaded): on an idle machine
the wall time is about that.
Views: engine dataset seed 777, iscene layout with exactly 5 objects (not the benchmark's views).

    python benchmarks/reconstruct_cpu.py --views 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sceneforge.engine_views import write_engine_view
from sceneforge.io.inputs import load_input
from sceneforge.pipeline import ScenePipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reconstruct import METHODS, machine  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=5)
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS), metavar="METHOD",
                        help="run only these METHODS entries of benchmarks/reconstruct.py (default: all)")
    args = parser.parse_args(argv)
    pipelines = {name: ScenePipeline(**METHODS[name]) for name in args.methods}
    cpu = {name: [] for name in pipelines}
    wall = {name: [] for name in pipelines}
    objects = []
    for index in range(args.views):
        with tempfile.TemporaryDirectory() as tmp:
            view = write_engine_view(Path(tmp), seed=args.seed, index=index, size=args.size,
                                     layout={"min_objects": 5, "max_objects": 5})
            scene_input = load_input(view.input_dir)
        objects.append(len(view.ground_truth.objects))
        for name, pipeline in pipelines.items():
            pipeline.run(scene_input)  # warm-up: library and caches built once per process
            c0, w0 = time.process_time(), time.perf_counter()
            pipeline.run(scene_input)
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    print(f"{args.views} views of 5 placed objects ({np.mean(objects):.1f} visible on average), "
          f"{args.size}x{args.size}; {machine()}\n")
    print("| method | CPU s per view (mean) | CPU s (max) | wall s (mean, shared machine) |\n|---|---|---|---|")
    for name in pipelines:
        print(f"| {name} | {np.mean(cpu[name]):.2f} | {np.max(cpu[name]):.2f} | {np.mean(wall[name]):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
