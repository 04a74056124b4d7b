"""Synthetic engine throughput: scenes/s and views/s end to end, against the raw rasteriser.

For each layout kind and worker count it runs, on the same scenes and cameras:

1. end to end: ``generate_dataset`` (layout, render, PNG/JSON/PLY encoding, atomic folder writes)
   with W worker processes, started from a fresh process for every row (as the raw processes are:
   no row finds the asset pool, GPU buffers or memos of an earlier row); reported over the whole
   run (spawn, the asset pool built before the first scene and other first uses included) and in
   steady state (from the W-th finished scene to the last);
2. raw: W processes that first lay out their share of the scenes and pick the cameras (untimed),
   wait at a barrier, then only upload meshes and render + read back every candidate view.

Every process of both sides keeps its freed memory for reuse (``runner.keep_freed_memory``, as the
engine's worker processes and ``sceneforge synth``'s own process do).

"ratio" = end-to-end steady-state time per frame / raw time per frame (goal: <= 2). The run builds
its asset pool before its first scene (``generate_dataset``'s ``build_pool_first``, on for runs of at
least half as many scenes as the pool has assets), so that warm-up is in the whole-run columns and
not in the steady window; its CPU seconds (all workers) have their own column. Frames are all
candidate views (dropped views are rendered too). The same ratio in CPU time (process time, robust
to other jobs on a shared machine) compares the steady-state CPU of the driver and the workers with
the raw workers' CPU (all of a raw process's CPU in its timed loop; all of the driver's and, per
scene, all of a worker's: its stages and the rest, "other"). The next column splits a worker's CPU
time per scene (process time, renderer threads included; averaged over all scenes, so each process's
first uses are in it) into layout (asset sampling, placement, physics check), render (upload + all
candidate views incl. read-back, visibility, view-centric frames), encode (PNG, JSON, PLY), write
(the scene folder, by the worker) and other (outside the stages: freeing the scene, and in a worker
process sending its result and receiving the next index). Usage::

    python benchmarks/synth_throughput.py --scenes 200 --views 4 --size 256 --objects 5 --workers 1 2 \\
        --markdown docs/synth_throughput.md
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import numpy as np

# One llvmpipe thread per process, as in the engine's worker processes and the raw workers below, so
# that the one-worker rows (generation in this process) render the same way as their raw baseline.
os.environ.setdefault("LP_NUM_THREADS", "1")

from machine import cpu_model
from sceneforge.io.atomic import write_text_atomic
from sceneforge.synth.cameras import OrbitSpec
from sceneforge.synth.dataset import SynthConfig, make_scene, stream_seed
from sceneforge.synth.runner import generate_dataset, keep_freed_memory
from sceneforge.synth.views import ViewSettings, render_scene_for, scene_cameras


def make_config(kind: str, views: int, size: int, objects: int, seed: int) -> SynthConfig:
    orbit = OrbitSpec(n_views=views, width=size, height=size)
    return SynthConfig(kind=kind, seed=seed, views=ViewSettings(orbit=orbit),
                       layout={"min_objects": objects, "max_objects": objects})


def end_to_end(config: SynthConfig, n_scenes: int, workers: int, out: Path) -> dict[str, float]:
    """Wall and CPU time of generate_dataset into the new folder ``out``; CPU in steady state = the
    driver's process time plus, with worker processes, the workers' stage CPU time (writing included)
    of the scenes finished in that window."""
    stamps: list[tuple[float, float]] = []  # (wall, driver CPU) when each scene was written
    scene_cpu: list[float] = []
    stage_cpu: dict[str, float] = {}

    def on_scene(done) -> None:
        stamps.append((time.perf_counter(), time.process_time()))
        scene_cpu.append(sum(done.cpu_seconds.values()))
        for k, v in done.cpu_seconds.items():
            stage_cpu[k] = stage_cpu.get(k, 0.0) + v

    start = time.perf_counter()
    report = generate_dataset(out, config, n_scenes, workers=workers, on_scene=on_scene)
    total = time.perf_counter() - start
    first = min(workers, len(stamps) - 1)
    steady_scenes = len(stamps) - 1 - first
    steady_seconds = stamps[-1][0] - stamps[first][0]
    steady_cpu = stamps[-1][1] - stamps[first][1]
    if workers > 1:
        steady_cpu += sum(scene_cpu[first + 1:])
    steady_frames = steady_scenes * config.views.orbit.n_views
    return {"total_s": total, "scenes_per_s": n_scenes / total, "steady_scenes_per_s": steady_scenes / steady_seconds,
            "pool_s": report.pool_seconds, "pool_cpu_s": report.pool_cpu_seconds,
            "views_kept": report.views, "steady_s_per_frame": steady_seconds / steady_frames,
            "steady_cpu_s_per_frame": steady_cpu / steady_frames,
            **{f"{k}_cpu_ms": 1000 * v / n_scenes for k, v in stage_cpu.items()}}


def _end_to_end_process(config_doc: dict, n_scenes: int, workers: int, out: str, results) -> None:
    keep_freed_memory()  # as `sceneforge synth` does for a run in its own process (workers do it themselves)
    results.put(end_to_end(SynthConfig.from_dict(config_doc), n_scenes, workers, Path(out)))


def end_to_end_fresh(config: SynthConfig, n_scenes: int, workers: int, out: Path) -> dict[str, float]:
    """:func:`end_to_end` in a fresh (spawned) process, as a row's raw processes are."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=_end_to_end_process, args=(config.to_dict(), n_scenes, workers, str(out), results))
    proc.start()
    try:
        outcome = results.get()
    finally:
        proc.join()
    return outcome


def candidate_views(config: SynthConfig, indices) -> list[tuple]:
    """(render scene, candidate cameras) of each scene index, as the generation draws them."""
    prepared = []
    for i in indices:
        made = make_scene(i, config)
        cameras = scene_cameras(made.scene, config.views.orbit, np.random.default_rng(stream_seed(config.seed, i, 1)))
        prepared.append((render_scene_for(made.scene, config.views, made.look), cameras))
    return prepared


def _raw_worker(indices: list[int], config_doc: dict, barrier, results) -> None:
    os.environ.setdefault("LP_NUM_THREADS", "1")
    from sceneforge.render.rasterizer import shared_rasterizer

    keep_freed_memory()  # as the engine's processes (which free a whole scene at a time) do
    config = SynthConfig.from_dict(config_doc)
    rasterizer = shared_rasterizer()
    prepared = candidate_views(config, indices)
    with rasterizer.upload(prepared[0][0]) as warm:  # compile shaders, allocate the framebuffer
        rasterizer.render(warm, prepared[0][1][0])
    barrier.wait()
    start, start_cpu = time.perf_counter(), time.process_time()
    frames = 0
    for render_scene, cameras in prepared:  # uploads as generate_dataset does them (mesh buffers kept)
        with rasterizer.upload(render_scene, reuse_meshes=True) as uploaded:
            for camera in cameras:
                rasterizer.render(uploaded, camera)
                frames += 1
    results.put((frames, time.perf_counter() - start, time.process_time() - start_cpu))


def raw_render(config: SynthConfig, n_scenes: int, workers: int) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    shares = [list(range(n_scenes))[w::workers] for w in range(workers)]
    procs = [ctx.Process(target=_raw_worker, args=(share, config.to_dict(), barrier, results)) for share in shares]
    for p in procs:
        p.start()
    outcomes = [results.get() for _ in procs]
    for p in procs:
        p.join()
    frames = sum(f for f, _, _ in outcomes)
    seconds = max(s for _, s, _ in outcomes)
    cpu = sum(c for _, _, c in outcomes)
    return {"frames": frames, "frames_per_s": frames / seconds, "s_per_frame": seconds / frames,
            "cpu_s_per_frame": cpu / frames}


BEGIN, END = "<!-- synth_throughput table: begin -->", "<!-- synth_throughput table: end -->"


def write_markdown(path: Path, block: str) -> None:
    """Put ``block`` between the BEGIN/END markers of ``path``, keeping the prose around them; a file
    without markers is written anew."""
    marked = f"{BEGIN}\n{block}{END}\n"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1].lstrip("\n")
        text = head + marked + ("\n" + after if after else "")
    else:
        text = f"# Synthetic engine throughput\n\n{marked}"
    write_text_atomic(path, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--objects", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--kinds", nargs="+", default=["iscene", "openset"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table to this Markdown file")
    args = parser.parse_args()

    header = ("| kind | workers | scenes/s (whole run) | scenes/s (steady) | views/s (steady) | raw frames/s "
              "| end-to-end / raw time per frame | CPU ms per frame: end-to-end / raw (ratio) "
              "| per scene in a worker, CPU ms: layout / render / encode / write / other "
              "| pool built first: CPU s (wall s) |")
    lines = [header, "|" + "---|" * 10]
    # Every row's output is kept until the end: on this machine's ext4 (no journal) creating a file
    # costs more for every file deleted in the last minutes (the inode allocator skips recently
    # deleted inodes one by one), so deleting one row's thousands of files would slow the next row.
    with tempfile.TemporaryDirectory(prefix="synth-bench-") as outputs:
        for kind in args.kinds:
            config = make_config(kind, args.views, args.size, args.objects, args.seed)
            for workers in args.workers:
                e2e = end_to_end_fresh(config, args.scenes, workers, Path(outputs) / f"{kind}-{workers}")
                raw = raw_render(config, args.scenes, workers)
                ratio = e2e["steady_s_per_frame"] / raw["s_per_frame"]
                e2e_cpu, raw_cpu = 1000 * e2e["steady_cpu_s_per_frame"], 1000 * raw["cpu_s_per_frame"]
                lines.append(f"| {kind} | {workers} | {e2e['scenes_per_s']:.1f} | {e2e['steady_scenes_per_s']:.1f} "
                             f"| {e2e['steady_scenes_per_s'] * args.views:.1f} | {raw['frames_per_s']:.1f} | {ratio:.2f} "
                             f"| {e2e_cpu:.2f} / {raw_cpu:.2f} ({e2e_cpu / raw_cpu:.2f}) "
                             f"| {e2e['layout_cpu_ms']:.1f} / {e2e['render_cpu_ms']:.1f} / {e2e['encode_cpu_ms']:.1f} "
                             f"/ {e2e['write_cpu_ms']:.1f} / {e2e['other_cpu_ms']:.1f} "
                             f"| {e2e['pool_cpu_s']:.2f} ({e2e['pool_s']:.2f}) |")
                print(lines[-1], flush=True)
    from sceneforge.render.rasterizer import Rasterizer

    renderer = Rasterizer().renderer_name
    setup = (f"{args.scenes} scenes per row, {args.objects} objects each, {args.views} candidate views at "
             f"{args.size}x{args.size}, seed {args.seed}; {os.cpu_count()} CPU cores "
             f"({cpu_model()}), renderer: {renderer}; load average after the run "
             f"{os.getloadavg()[0]:.1f} (its own worker processes count in it).")
    table = "\n".join(lines)
    print(setup)
    if args.markdown is not None:
        command = ("python benchmarks/synth_throughput.py --scenes {s} --views {v} --size {z} --objects {o} "
                   "--workers {w} --kinds {k} --markdown {m}").format(
            s=args.scenes, v=args.views, z=args.size, o=args.objects, w=" ".join(map(str, args.workers)),
            k=" ".join(args.kinds), m=args.markdown)
        write_markdown(args.markdown, f"Measured with `{command}`.\n\n{setup}\n\n{table}\n")


if __name__ == "__main__":
    main()
