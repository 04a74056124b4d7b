"""Run dataset generation: in this process, on local worker processes, or on a Ray cluster.

Local worker processes lay out, render, encode (:func:`~sceneforge.synth.dataset.build_scene_files`)
and write their own scene folders atomically (:func:`~sceneforge.synth.dataset.commit_scene`), and
send back only a :class:`SceneDone`: the driver stays nearly idle, so W workers use W cores. Ray
tasks send the finished files back and the driver writes them, so a Ray cluster needs no shared file
system. The output is identical for any number of workers. Each worker process keeps one GL context
for its whole life (:func:`~sceneforge.render.rasterizer.shared_rasterizer`).
"""

from __future__ import annotations

import ctypes
import gc
import itertools
import multiprocessing
import os
import pickle
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_ready
from pathlib import Path
from typing import Any

import sceneforge
from sceneforge.errors import InputError, MissingDependencyError
from sceneforge.synth.dataset import (
    ASSET_STORE_PREFIX,
    LayoutFn,
    SceneFiles,
    SynthConfig,
    build_scene_files,
    check_scene_count,
    commit_scene,
    existing_scenes,
    kind_options,
    prepare_output,
    register_layout,
    registered_layout,
)
from sceneforge.synth.kinds import KINDS, build_pool, pool_size, share_assets

MAX_WORKERS = 1024

#: A run of a built-in layout kind builds its whole asset pool before its first scene (see
#: :func:`generate_dataset`) when it makes at least this many scenes per procedural asset of the pool.
PREBUILD_SCENES_PER_ASSET = 0.5

#: glibc malloc settings of a process that makes scenes (:func:`keep_freed_memory`), bytes: blocks up
#: to this size come from the heap (default: a threshold that starts at 128 KiB and follows the
#: largest block freed) ...
MALLOC_MMAP_THRESHOLD = 16 << 20
#: ... and this much free memory at the top of the heap is kept (default: twice that threshold).
MALLOC_TRIM_THRESHOLD = 32 << 20


class WorkerError(RuntimeError):
    """A local worker process died, or failed in a way it could not report itself; also the cause
    (with the worker's traceback) of a scene error raised in the driver."""


@dataclass(frozen=True)
class SceneDone:
    """Progress event: one scene folder was written. ``seconds`` (wall) and ``cpu_seconds`` (CPU time
    of the process that did the stage) per stage: those of :class:`SceneFiles` plus "write"; in
    local runs ``cpu_seconds`` also has "other": the process's CPU for the scene outside those
    stages (freeing the scene's arrays; in a worker process also sending the previous result and
    receiving this index: see :func:`make_scene_folder`), so that its values add up to all the CPU
    the scene cost where it was made."""

    index: int
    n_views: int
    n_dropped: int
    n_bytes: int
    seconds: dict[str, float]
    cpu_seconds: dict[str, float]


@dataclass(frozen=True)
class DatasetReport:
    """What a run did. ``skipped`` scenes were already complete; ``seconds`` is wall time (all of
    it). ``pool_seconds`` (wall) and ``pool_cpu_seconds`` (CPU, all processes) are the part spent
    building the asset pool before the first scene (0 when the run did not build it first)."""

    out: Path
    n_scenes: int
    skipped: int
    generated: int
    views: int
    dropped_views: int
    seconds: float
    pool_seconds: float = 0.0
    pool_cpu_seconds: float = 0.0

    @property
    def scenes_per_second(self) -> float:
        return self.generated / self.seconds if self.seconds > 0 else 0.0

    @property
    def views_per_second(self) -> float:
        return self.views / self.seconds if self.seconds > 0 else 0.0


def generate_dataset(out: str | Path, config: SynthConfig, n_scenes: int, workers: int = 1,
                     ray_address: str | None = None,
                     on_start: Callable[[int, int], None] | None = None,
                     on_scene: Callable[[SceneDone], None] | None = None,
                     build_pool_first: bool | None = None) -> DatasetReport:
    """Make scenes ``0 .. n_scenes-1`` in ``out`` that are not there yet.

    workers : local processes (1 = this process). Ignored with ``ray_address``.
    ray_address : None (no Ray), "auto" (a running cluster, or the Ray instance this process has
        already initialised), "local" (start a local Ray instance) or a cluster address.
    on_start(todo, skipped) and on_scene(SceneDone) report progress.
    build_pool_first : build every procedural asset of the pool (with its hull points and PLY
        bytes) before the first scene, split evenly over the local workers, instead of each on
        first use; the same files either way, and as much building (a run already builds each asset
        once), but the scenes then run at their steady cost from the first one. None (default): for
        a built-in layout kind run locally, when there are at least PREBUILD_SCENES_PER_ASSET scenes
        to make per pool asset (a shorter run may not use them all); never on Ray.
    """
    n_scenes = check_scene_count(n_scenes)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise InputError(None, f"workers must be an integer in [1, {MAX_WORKERS}], got {workers!r}")
    out = prepare_output(out, config)
    done = existing_scenes(out)
    todo = [i for i in range(n_scenes) if i not in done]
    skipped = n_scenes - len(todo)
    if on_start is not None:
        on_start(len(todo), skipped)
    if build_pool_first is None:
        build_pool_first = (ray_address is None and config.kind in KINDS and bool(todo)
                            and len(todo) >= PREBUILD_SCENES_PER_ASSET * pool_size(kind_options(config)))
    pool = {"seconds": 0.0, "cpu_seconds": 0.0}  # building the pool first: wall, CPU
    warmup = pool if build_pool_first and ray_address is None else None
    start = time.perf_counter()
    views = dropped = 0
    if ray_address is not None:
        results: Generator[SceneDone, None, None] = (write_scene(out, files)
                                                     for files in _run_ray(todo, config, ray_address))
    elif workers == 1:
        results = _in_process(out, todo, config, warmup)
    else:
        results = _run_pool(out, todo, config, workers, warmup)
    with closing(results):  # an error in on_scene stops the workers (and Ray, the frozen GC) at once
        for done in results:
            views += done.n_views
            dropped += done.n_dropped
            if on_scene is not None:
                on_scene(done)
    return DatasetReport(out, n_scenes, skipped, len(todo), views, dropped, time.perf_counter() - start,
                         pool_seconds=pool["seconds"], pool_cpu_seconds=pool["cpu_seconds"])


def build_pool_share(config: SynthConfig, share: int, shares: int) -> tuple[float, float]:
    """Build share ``share`` of ``shares`` of the run's asset pool in this process
    (:func:`~sceneforge.synth.kinds.build_pool`); returns (wall, CPU) seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    build_pool(kind_options(config), share, shares)
    return time.perf_counter() - wall, time.process_time() - cpu


def write_scene(out: Path, files: SceneFiles) -> SceneDone:
    """Write one built scene's folder atomically (timed as the "write" stage)."""
    wall, cpu = time.perf_counter(), time.process_time()
    commit_scene(out, files)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return SceneDone(files.index, files.n_views, files.n_dropped, files.n_bytes, {**files.seconds, "write": wall},
                     {**files.cpu_seconds, "write": cpu})


def make_scene_folder(out: Path, index: int, config: SynthConfig, cpu_since: float | None = None) -> SceneDone:
    """Build scene ``index`` and write its folder (what one worker does per scene). Its "other" CPU
    is this call's process time outside the stages, counted from ``cpu_since`` (an earlier
    ``time.process_time()``, e.g. the end of the worker's previous scene) when given."""
    start = time.process_time() if cpu_since is None else cpu_since
    done = write_scene(out, build_scene_files(index, config))
    other = time.process_time() - start - sum(done.cpu_seconds.values())
    return replace(done, cpu_seconds={**done.cpu_seconds, "other": other})


@contextmanager
def frozen_gc() -> Iterator[None]:
    """The objects that exist now left out of the garbage collector's scans until the end (``gc.freeze``;
    nothing if the caller has frozen objects already). A scene allocates many short-lived objects,
    and the oldest generation's collections, triggered every few dozen scenes, would otherwise scan
    every module, function and class of the process (~90,000 objects, ~30 ms each)."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _in_process(out: Path, todo: list[int], config: SynthConfig,
                warmup: dict[str, float] | None = None) -> Iterator[SceneDone]:
    """Scenes made and written in this process, with :func:`frozen_gc`; with ``warmup``, the asset
    pool is built first and its (wall, CPU) seconds written there."""
    if warmup is not None:
        warmup["seconds"], warmup["cpu_seconds"] = build_pool_share(config, 0, 1)
    with frozen_gc():
        for index in todo:
            yield make_scene_folder(out, index, config)


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep the memory this process frees for reuse (MALLOC_MMAP_THRESHOLD,
    MALLOC_TRIM_THRESHOLD) instead of handing most of it back to the system after every scene: the
    ~2.5 MB of images, depth maps and arrays of a 4-view 256x256 scene then came back as 350-700 page
    faults in the next one (~0.6 ms of system CPU), where a loop that only renders has almost none.
    Process-wide and for good, so for processes that make scenes: a run's worker processes do it, and
    the command line does it for a run in its own process. Returns False where the C library has no
    ``mallopt`` (not glibc) or refuses the settings."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    return mallopt(m_mmap_threshold, MALLOC_MMAP_THRESHOLD) == 1 and mallopt(m_trim_threshold, MALLOC_TRIM_THRESHOLD) == 1


def _init_worker(asset_store: str | None = None, layouts: Mapping[str, LayoutFn] | None = None) -> None:
    """One llvmpipe thread per worker process (the processes already use the cores); assets shared
    with the other workers of the run through ``asset_store``; the driver's user-registered layout
    ``layouts`` registered here too."""
    os.environ.setdefault("LP_NUM_THREADS", "1")
    for kind, fn in (layouts or {}).items():
        register_layout(kind, fn)
    if asset_store is not None:
        share_assets(asset_store)


def _init_pool_worker(asset_store: str, layouts: Mapping[str, LayoutFn]) -> None:
    """:func:`_init_worker` for a process of the local pool, whose start-up objects (modules,
    functions, classes) are then left out of the garbage collector's scans for its whole life (the
    process is the run's own; see :func:`frozen_gc`), and whose freed memory is kept for reuse
    (:func:`keep_freed_memory`)."""
    _init_worker(asset_store, layouts)
    keep_freed_memory()
    gc.freeze()


def _pool_worker(conn: Connection, asset_store: str, layouts: Mapping[str, LayoutFn], out: Path,
                 config: SynthConfig) -> None:
    """A local pool worker: for each scene index received on ``conn``, make and write the scene and
    send back ``("done", SceneDone, "")``; for a ``(share, shares)`` pair, build that share of the
    asset pool (:func:`build_pool_share`) and send back ``("built", (wall, cpu), "")``; on an error,
    ``("error", exception, traceback text)``. Stop at None, when the driver's end of the pipe is
    gone, or quietly on Ctrl-C (the driver reports it)."""
    try:
        _pool_worker_loop(conn, asset_store, layouts, out, config)
    except KeyboardInterrupt:
        pass


def _pool_worker_loop(conn: Connection, asset_store: str, layouts: Mapping[str, LayoutFn], out: Path,
                      config: SynthConfig) -> None:
    """The body of :func:`_pool_worker`."""
    _init_pool_worker(asset_store, layouts)
    cpu_since = None  # end of the previous scene: sending its result, receiving the next index count for the next
    while True:
        try:
            index = conn.recv()
        except EOFError:
            return
        if index is None:
            return
        try:
            if isinstance(index, tuple):
                reply: tuple[str, Any, str] = ("built", build_pool_share(config, *index), "")
            else:
                reply = ("done", make_scene_folder(out, index, config, cpu_since), "")
        except Exception as exc:  # a scene's own error: the driver raises it
            reply = ("error", exc, traceback.format_exc())
        cpu_since = time.process_time() if reply[0] == "done" else None
        try:
            try:
                conn.send(reply)
            except (pickle.PicklingError, TypeError, AttributeError):  # an exception pickle cannot carry
                conn.send(("error", WorkerError(f"scene {index}: {reply[1]!r}"), reply[2]))
        except OSError:  # the driver is gone
            return


def _run_pool(out: Path, todo: list[int], config: SynthConfig, workers: int,
              warmup: dict[str, float] | None = None) -> Iterator[SceneDone]:
    """Scenes made and written by a pool of spawned processes, at most 2 per worker in flight, as they
    finish. The workers share the assets they build through a hidden folder in ``out`` (removed at
    the end; one a killed run left is removed by the next run's prepare_output). With ``warmup``,
    they first build the asset pool between them (see :func:`_pool_scenes`)."""
    ctx = multiprocessing.get_context("spawn")  # a fresh process: no inherited GL or thread state
    store = tempfile.mkdtemp(prefix=ASSET_STORE_PREFIX, suffix=".tmp", dir=out)
    try:
        yield from _pool_scenes(ctx, out, todo, config, workers, store, warmup)
    finally:
        shutil.rmtree(store, ignore_errors=True)


def _pool_scenes(ctx: Any, out: Path, todo: list[int], config: SynthConfig, workers: int,
                 store: str, warmup: dict[str, float] | None = None) -> Iterator[SceneDone]:
    """The pool of :func:`_run_pool`, its workers sharing assets through ``store``: one pipe per
    worker process, on which the driver sends scene indices and receives the results (a send and a
    receive per scene: ~0.2 ms of the driver's CPU per scene with two workers, against ~0.4-0.5 ms
    through a ProcessPoolExecutor's queues and threads). With ``warmup``, each worker first builds
    its share of the asset pool and the first scenes are sent when all shares are built (the
    barrier keeps a worker from building an asset that another one is building); the longest
    share's wall time and the workers' CPU for it are written there. A scene's error is raised here (the
    worker's traceback as its cause); a worker that dies raises :class:`WorkerError`."""
    procs: dict[Connection, Any] = {}
    try:
        for _ in range(min(workers, len(todo))):
            here, there = ctx.Pipe()
            proc = ctx.Process(target=_pool_worker, daemon=True,
                               args=(there, store, registered_layout(config.kind), out, config))
            proc.start()
            there.close()
            procs[here] = proc
        if warmup is not None:
            _build_pool_first(procs, warmup)
        queue = iter(todo)
        in_flight = dict.fromkeys(procs, 0)
        for conn in procs:
            for index in itertools.islice(queue, 2):
                _send(conn, index, procs[conn])
                in_flight[conn] += 1
        while any(in_flight.values()):
            for conn in wait_ready([c for c, n in in_flight.items() if n]):
                try:
                    status, value, remote = conn.recv()
                except (EOFError, OSError):
                    raise _died(procs[conn]) from None
                in_flight[conn] -= 1
                if status == "error":
                    raise value from WorkerError(f"in the worker process:\n{remote}")
                yield value
                nxt = next(queue, None)
                if nxt is not None:
                    _send(conn, nxt, procs[conn])
                    in_flight[conn] += 1
    finally:
        _stop_workers(procs)


def _build_pool_first(procs: Mapping[Connection, Any], warmup: dict[str, float]) -> None:
    """Have the worker processes of ``procs`` build one share of the asset pool each, and wait for
    all of them; the longest share's wall time and their CPU seconds go into ``warmup``."""
    for share, conn in enumerate(procs):
        _send(conn, (share, len(procs)), procs[conn])
    pending = set(procs)
    while pending:
        for conn in wait_ready(list(pending)):
            try:
                status, value, remote = conn.recv()
            except (EOFError, OSError):
                raise _died(procs[conn]) from None
            if status == "error":
                raise value from WorkerError(f"in the worker process:\n{remote}")
            warmup["seconds"] = max(warmup["seconds"], value[0])
            warmup["cpu_seconds"] += value[1]
            pending.discard(conn)


def _send(conn: Connection, index: int | tuple[int, int], proc: Any) -> None:
    """Send scene ``index`` (or a pool share) to the worker process ``proc`` at the other end of ``conn``."""
    try:
        conn.send(index)
    except OSError:
        raise _died(proc) from None


def _died(proc: Any) -> WorkerError:
    """The error for the worker process ``proc``, whose pipe broke: it died."""
    proc.join(1.0)
    return WorkerError(f"a worker process died (exit code {proc.exitcode})")


def _stop_workers(procs: Mapping[Connection, Any], timeout: float = 60.0) -> None:
    """Ask each worker to stop once its scenes in flight are done, wait for it (``timeout`` seconds
    each at most), then terminate any still running."""
    for conn in procs:
        try:
            conn.send(None)
        except OSError:  # it is gone already
            pass
    for conn, proc in procs.items():
        proc.join(timeout)
        if proc.is_alive():
            proc.terminate()
            proc.join()
        conn.close()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError("ray", extra="ray", purpose="running on a Ray cluster") from exc
    return ray


def _ray_build(index: int, config_doc: dict[str, Any], layouts: Mapping[str, LayoutFn]) -> SceneFiles:
    _init_worker(layouts=layouts)
    return build_scene_files(index, SynthConfig.from_dict(config_doc))


def ray_runtime_env() -> dict[str, Any]:
    """Runtime environment that ships this sceneforge package to Ray workers (give it to ray.init
    when you initialise Ray yourself), so a cluster runs the driver's code without installing it."""
    return {"py_modules": [str(Path(sceneforge.__file__).resolve().parent)]}


def _run_ray(todo: list[int], config: SynthConfig, address: str) -> Iterator[SceneFiles]:
    """Scenes from Ray tasks (one CPU each), a bounded number in flight, as they finish.

    Connects (or starts, for "local") Ray unless this process already did, and then shuts it down
    again when done; an instance the caller initialised is left running.
    """
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "runtime_env": ray_runtime_env()}
        ray.init(**kwargs) if address == "local" else ray.init(address=address, **kwargs)
    try:
        yield from _ray_tasks(ray, todo, config)
    finally:
        if started:
            ray.shutdown()


def _ray_tasks(ray: Any, todo: list[int], config: SynthConfig) -> Iterator[SceneFiles]:
    task = ray.remote(num_cpus=1)(_ray_build)
    config_doc, layouts = config.to_dict(), registered_layout(config.kind)
    in_flight = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    queue = iter(todo)
    pending = [task.remote(i, config_doc, layouts) for _, i in zip(range(in_flight), queue)]
    while pending:
        finished, pending = ray.wait(pending, num_returns=1)
        for ref in finished:
            yield ray.get(ref)
            nxt = next(queue, None)
            if nxt is not None:
                pending.append(task.remote(nxt, config_doc, layouts))
