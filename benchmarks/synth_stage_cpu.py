"""CPU time per scene of each stage of the synthetic engine, in one process (robust to a shared machine).

Generates ``--scenes`` scenes with ``generate_dataset`` (one process) and reports process CPU time
(``time.process_time``: user + system, the renderer's threads included) per scene for

- layout: ``make_scene`` (asset building on first use, placement, physics check),
- render: ``render_views`` (upload, all candidate views incl. read-back, visibility, view-centric frames),
- encode: the rest of ``build_scene_files`` (PNG, JSON, PLY),
- write: writing the scene folder (``commit_scene``),
- total: the whole run, driver included,

twice: "cold" (a fresh process: GL context, asset building and other first-use costs included)
and "warm" (the same scenes again in the same process: the steady state of a long run, where every
asset of the pool is built). Then it renders the same candidate views again with the raw rasteriser
(upload + render + read-back), reports its CPU time per scene, and warm total / raw (the ratio goal
of issue 3, in CPU time). With ``--passes N`` the warm pass and the raw render are repeated N times
and each column is its smallest value over the passes (steadier on a machine shared with other jobs).

It only wraps module-level functions of ``sceneforge.synth.dataset``, so the same script measures
any checkout: ``PYTHONPATH=<checkout>/src python benchmarks/synth_stage_cpu.py --scenes 50``.
"""

from __future__ import annotations

import argparse
import inspect
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any


os.environ.setdefault("LP_NUM_THREADS", "1")  # as in a worker process

from sceneforge.synth import dataset  # noqa: E402
from sceneforge.synth.cameras import OrbitSpec  # noqa: E402
from sceneforge.synth.runner import generate_dataset  # noqa: E402
from sceneforge.synth.views import ViewSettings  # noqa: E402
from synth_throughput import candidate_views  # noqa: E402

STAGES = ("layout", "render", "encode", "write")


def _timed(fn: Callable[..., Any], totals: dict[str, float], stage: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[stage] += time.process_time() - start

    return wrapper


def stage_cpu(config: dataset.SynthConfig, n_scenes: int) -> dict[str, float]:
    """CPU seconds per scene by stage, for one process making ``n_scenes`` scenes."""
    totals = dict.fromkeys((*STAGES, "build", "total"), 0.0)
    originals = {name: getattr(dataset, name) for name in ("make_scene", "render_views", "build_scene_files",
                                                            "commit_scene")}
    dataset.make_scene = _timed(originals["make_scene"], totals, "layout")
    dataset.render_views = _timed(originals["render_views"], totals, "render")
    dataset.build_scene_files = _timed(originals["build_scene_files"], totals, "build")
    dataset.commit_scene = _timed(originals["commit_scene"], totals, "write")
    import sceneforge.synth.runner as runner

    runner_originals = {name: getattr(runner, name) for name in ("build_scene_files", "commit_scene")}
    runner.build_scene_files, runner.commit_scene = dataset.build_scene_files, dataset.commit_scene
    try:
        with tempfile.TemporaryDirectory(prefix="synth-stage-cpu-") as out:
            start = time.process_time()
            # asset building on first use, inside the layout column (older checkouts lack the option)
            first_use = {"build_pool_first": False} if "build_pool_first" in inspect.signature(generate_dataset).parameters else {}
            generate_dataset(out, config, n_scenes, **first_use)
            totals["total"] = time.process_time() - start
    finally:
        for name, fn in originals.items():
            setattr(dataset, name, fn)
        for name, fn in runner_originals.items():
            setattr(runner, name, fn)
    totals["encode"] = totals.pop("build") - totals["layout"] - totals["render"]
    return {k: v / n_scenes for k, v in totals.items()}


def raw_cpu(config: dataset.SynthConfig, n_scenes: int, passes: int = 1) -> float:
    """CPU seconds per scene of uploading and rendering (with read-back) every candidate view again,
    uploading as the generation does (mesh buffers kept across scenes where the renderer can); the
    smallest of ``passes`` passes."""
    from sceneforge.render.rasterizer import shared_rasterizer

    rasterizer = shared_rasterizer()
    reuse = {"reuse_meshes": True} if "reuse_meshes" in inspect.signature(rasterizer.upload).parameters else {}
    prepared = candidate_views(config, range(n_scenes))
    best = float("inf")
    for _ in range(passes):
        start = time.process_time()
        for render_scene, cameras in prepared:
            with rasterizer.upload(render_scene, **reuse) as uploaded:
                for camera in cameras:
                    rasterizer.render(uploaded, camera)
        best = min(best, time.process_time() - start)
    return best / n_scenes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=50)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--objects", type=int, default=5)
    parser.add_argument("--kinds", nargs="+", default=["iscene", "openset"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--passes", type=int, default=1, help="warm and raw passes; each column's smallest is shown")
    args = parser.parse_args()
    print("| kind | pass | layout | render | encode | write | total | raw render | total / raw |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in args.kinds:
        orbit = OrbitSpec(n_views=args.views, width=args.size, height=args.size)
        config = dataset.SynthConfig(kind=kind, seed=args.seed, views=ViewSettings(orbit=orbit),
                                     layout={"min_objects": args.objects, "max_objects": args.objects})
        cold = stage_cpu(config, args.scenes)
        warm = [stage_cpu(config, args.scenes) for _ in range(max(1, args.passes))]
        passes = {"cold": {k: 1000 * v for k, v in cold.items()},
                  "warm": {k: 1000 * min(w[k] for w in warm) for k in cold}}
        raw = 1000 * raw_cpu(config, args.scenes, max(1, args.passes))
        for name, ms in passes.items():
            ratio = f"{ms['total'] / raw:.2f}" if name == "warm" else ""
            print(f"| {kind} | {name} | " + " | ".join(f"{ms[k]:.1f}" for k in (*STAGES, "total"))
                  + f" | {raw:.1f} | {ratio} |", flush=True)
    print(f"CPU ms per scene, one process, {args.scenes} scenes, {args.views} views at {args.size}x{args.size}, "
          f"{args.objects} objects, smallest of {max(1, args.passes)} warm pass(es); "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
