"""Runners: the built-in layout kinds in this process, on local worker processes and on Ray give the
same files (PNGs compared by pixels, tests/folder_digest.py); the command line writes a dataset and
names bad values."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from folder_digest import folder_digest
from sceneforge.io.scene_json import read_scene_json
from sceneforge.synth.cameras import OrbitSpec
from sceneforge.synth.dataset import SynthConfig, register_layout
from sceneforge.synth.kinds import SynthScene
from sceneforge.synth.runner import generate_dataset, ray_runtime_env
from sceneforge.synth.views import ViewSettings
from sceneforge.types import Plane, Scene, SceneObject, Similarity

pytest.importorskip("moderngl")


def _config(kind: str) -> SynthConfig:
    orbit = OrbitSpec(n_views=2, width=64, height=48)
    return SynthConfig(kind=kind, seed=11, views=ViewSettings(orbit=orbit), layout={"max_objects": 4})



@pytest.mark.parametrize("kind", ["iscene", "openset"])
def test_builtin_kinds_write_ground_truth_with_layout_metadata(tmp_path, kind):
    report = generate_dataset(tmp_path, _config(kind), n_scenes=2)
    assert report.generated == 2
    truth = read_scene_json(tmp_path / "scene_000001")
    assert 1 <= len(truth.objects) <= 4
    assert truth.metadata["layout"]["kind"] in (kind, "open_set")
    assert "relations" in truth.metadata["layout"]
    assert truth.metadata["synth"]["kind"] == kind
    assert truth.floor is not None and abs(truth.floor.offset) < 1e-12


def test_worker_processes_give_the_same_bytes(tmp_path):
    generate_dataset(tmp_path / "one", _config("openset"), n_scenes=3, workers=1)
    generate_dataset(tmp_path / "two", _config("openset"), n_scenes=3, workers=2)
    assert folder_digest(tmp_path / "one") == folder_digest(tmp_path / "two")
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["dataset.json", *(f"scene_00000{i}" for i in range(3))]


SMALL_POOL = {"categories": ["mug", "box", "bowl"], "variants_per_category": 2}  # 6 assets


def _small_pool_config() -> SynthConfig:
    return SynthConfig(kind="openset", seed=11, views=_config("openset").views, layout={"max_objects": 3, **SMALL_POOL})


def test_building_the_pool_first_gives_the_same_files_in_and_out_of_process(tmp_path):
    config = _small_pool_config()
    reports = {(w, first): generate_dataset(tmp_path / f"{w}-{first}", config, n_scenes=2, workers=w,
                                            build_pool_first=first) for w in (1, 2) for first in (False, True)}
    digests = {key: folder_digest(tmp_path / f"{key[0]}-{key[1]}") for key in reports}
    assert len(set(map(str, digests.values()))) == 1
    for (w, first), report in reports.items():
        assert (report.pool_seconds > 0) == first and (report.pool_cpu_seconds > 0) == first
        assert report.pool_seconds < report.seconds
    assert not list((tmp_path / "2-True").glob(".assets.*"))


def test_a_run_builds_its_pool_first_when_it_makes_half_as_many_scenes_as_the_pool_has_assets(tmp_path, monkeypatch):
    from sceneforge.synth import kinds, runner

    register_layout("test_runner_boxes", two_boxes_kind)
    calls = []
    build = runner.build_pool_share
    monkeypatch.setattr(runner, "build_pool_share", lambda *a: calls.append(a[1:]) or build(*a))
    config = _small_pool_config()
    generate_dataset(tmp_path / "short", config, n_scenes=2)  # 2 < 0.5 x 6
    assert calls == []
    report = generate_dataset(tmp_path / "long", config, n_scenes=3)
    assert calls == [(0, 1)] and report.pool_seconds > 0
    options = {"pool_seed": 11, **SMALL_POOL}
    assert len(kinds.asset_pool(options)._cache) == 6 and kinds.pool_size(options) == 6
    user = SynthConfig(kind="test_runner_boxes", seed=1, views=config.views)  # a user kind: no pool to build
    assert generate_dataset(tmp_path / "user", user, n_scenes=300).pool_seconds == 0 and calls == [(0, 1)]
    generate_dataset(tmp_path / "long", config, n_scenes=4)  # resumed: 1 scene to make
    assert calls == [(0, 1)]


def test_pool_shares_split_the_pool_between_processes(tmp_path):
    from sceneforge.errors import InputError
    from sceneforge.synth import kinds

    options = {"pool_seed": 3, **SMALL_POOL}
    built = []
    try:
        for share in (1, 0):
            kinds.share_assets(tmp_path / "store")  # a fresh pool in each "process"
            built.append(kinds.build_pool(options, share, 2))
            assert len(kinds.asset_pool(options)._cache) == built[-1]
        assert built == [3, 3] and len(list((tmp_path / "store").glob("*.pkl"))) == 6
        with pytest.raises(InputError, match=r"share must be in \[0, 1\], got 2"):
            kinds.build_pool(options, 2, 2)
    finally:
        kinds.share_assets(None)


def test_a_scene_reports_its_cpu_outside_the_stages_as_other(tmp_path):
    import time

    from sceneforge.synth import runner

    config = _config("openset")
    out = runner.prepare_output(tmp_path, config)
    start = time.process_time()
    done = runner.make_scene_folder(out, 0, config)
    total = time.process_time() - start
    stages = sum(v for k, v in done.cpu_seconds.items() if k != "other")
    assert set(done.cpu_seconds) == {"layout", "render", "encode", "write", "other"}
    assert 0 <= done.cpu_seconds["other"] and stages + done.cpu_seconds["other"] <= total + 1e-6
    since = time.process_time()
    while time.process_time() - since < 0.05:  # CPU spent before the call, e.g. a worker's pipe
        pass
    later = runner.make_scene_folder(out, 1, config, cpu_since=since)
    assert later.cpu_seconds["other"] >= 0.05
    seen: list = []
    generate_dataset(tmp_path / "two", config, n_scenes=2, workers=2, on_scene=seen.append)
    assert len(seen) == 2 and all(d.cpu_seconds["other"] >= 0 for d in seen)


FREED_MEMORY_CHECK = """
import resource, sys
import numpy as np
from sceneforge.synth.runner import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
def scene():  # a scene's worth of arrays, all freed at its end
    arrays = [np.ones(300_000) for _ in range(8)]
    del arrays
for _ in range(5):
    scene()
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    scene()
print(kept, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / 20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_keeping_freed_memory_spares_each_scene_its_page_faults():
    runs = {}
    for mode in ("keep", "default"):  # in fresh processes: the setting is process-wide and for good
        out = subprocess.run([sys.executable, "-c", FREED_MEMORY_CHECK, mode], capture_output=True, text=True, check=True)
        kept, faults = out.stdout.split()
        runs[mode] = (kept, float(faults))
    assert runs["keep"][0] == "True" and runs["keep"][1] < 50
    assert runs["default"][1] > 1000  # 19 MB freed per scene: glibc hands most of it back, then faults it in again


def test_in_process_runs_leave_start_up_objects_out_of_gc_scans_and_restore_it(tmp_path, monkeypatch):
    import gc

    from sceneforge.synth import runner

    seen = []
    make = runner.make_scene_folder
    monkeypatch.setattr(runner, "make_scene_folder", lambda *a: seen.append(gc.get_freeze_count()) or make(*a))
    assert gc.get_freeze_count() == 0
    generate_dataset(tmp_path / "a", _config("iscene"), n_scenes=2)
    assert len(seen) == 2 and min(seen) > 0 and gc.get_freeze_count() == 0
    with runner.frozen_gc():  # a caller that froze objects itself keeps them frozen
        frozen = gc.get_freeze_count()
        with runner.frozen_gc():  # neither freezes more nor unfreezes (frozen objects may still be freed)
            assert 0 < gc.get_freeze_count() <= frozen
        assert 0 < gc.get_freeze_count() <= frozen
    assert gc.get_freeze_count() == 0


def test_pool_worker_start_freezes_start_up_objects_and_keeps_freed_memory(tmp_path, monkeypatch):
    import gc

    from sceneforge.synth import kinds, runner

    monkeypatch.setenv("LP_NUM_THREADS", "1")  # restored afterwards (_init_worker sets it if unset)
    kept = []
    monkeypatch.setattr(runner, "keep_freed_memory", lambda: kept.append(1) or True)  # not in the test process
    try:
        runner._init_pool_worker(str(tmp_path / "store"), {})
        assert gc.get_freeze_count() > 0 and kinds._STORE == {"path": tmp_path / "store"} and kept == [1]
    finally:
        gc.unfreeze()
        kinds.share_assets(None)


def test_an_error_in_the_progress_callback_stops_the_workers_at_once(tmp_path):
    import multiprocessing

    def stop(done):
        raise KeyError("stop")

    with pytest.raises(KeyError):
        generate_dataset(tmp_path / "x", _config("openset"), n_scenes=6, workers=2, on_scene=stop)
    assert not multiprocessing.active_children()
    assert not list((tmp_path / "x").glob(".assets.*"))


def dying_kind(seed: int, options) -> SynthScene:
    """A user layout kind whose worker process dies (registered in a test)."""
    import os

    os._exit(3)


def test_a_worker_that_dies_stops_the_run_with_a_clear_error(tmp_path):
    from sceneforge.synth.runner import WorkerError

    register_layout("test_runner_dies", dying_kind)
    with pytest.raises(WorkerError, match=r"a worker process died \(exit code 3\)"):
        generate_dataset(tmp_path / "x", _config("test_runner_dies"), n_scenes=3, workers=2)
    assert not list((tmp_path / "x").glob(".assets.*"))


def two_boxes_kind(seed: int, options) -> SynthScene:
    """Two boxes a seeded distance apart on y = 0 (a user layout kind, registered in a test)."""
    gap = float(np.random.default_rng(seed).uniform(0.2, 0.6))
    objects = tuple(SceneObject(k + 1, "box", trimesh.creation.box((0.4, 0.4, 0.4)),
                                Similarity(t=[k * (0.4 + gap), 0.2, 0.0])) for k in range(2))
    return SynthScene(Scene(objects, floor=Plane(np.array([0.0, 1.0, 0.0]), 0.0)))


def test_worker_processes_know_the_layouts_registered_by_the_driver(tmp_path):
    register_layout("test_runner_boxes", two_boxes_kind)  # after import: spawned workers never saw it
    generate_dataset(tmp_path / "one", _config("test_runner_boxes"), n_scenes=2, workers=1)
    generate_dataset(tmp_path / "two", _config("test_runner_boxes"), n_scenes=2, workers=2)
    assert folder_digest(tmp_path / "one") == folder_digest(tmp_path / "two")


@pytest.mark.slow
def test_ray_local_instance_gives_the_same_bytes(tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'sceneforge[ray]'")
    generate_dataset(tmp_path / "local", _config("iscene"), n_scenes=3, workers=1)
    # an instance this process starts itself ("auto" then uses it) ...
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=ray_runtime_env())
    try:
        report = generate_dataset(tmp_path / "ray", _config("iscene"), n_scenes=3, ray_address="auto")
        assert ray.is_initialized()  # left running: the caller owns it
    finally:
        ray.shutdown()
    assert report.generated == 3
    assert folder_digest(tmp_path / "local") == folder_digest(tmp_path / "ray")
    # ... and one the runner starts and stops ("local")
    report = generate_dataset(tmp_path / "ray_local", _config("iscene"), n_scenes=2, ray_address="local")
    assert report.generated == 2 and not ray.is_initialized()
    assert folder_digest(tmp_path / "ray_local")["scene_000001/scene.json"] == folder_digest(tmp_path / "local")["scene_000001/scene.json"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from sceneforge.cli import main; sys.argv = ['sceneforge', *sys.argv[1:]]; main()"
    src = str(Path(__file__).resolve().parents[1] / "src")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}, timeout=300)


def test_cli_synth_writes_and_resumes(tmp_path):
    out = tmp_path / "ds"
    args = ["synth", "--out", str(out), "--scenes", "2", "--views", "2", "--kind", "openset", "--width", "48",
            "--height", "40", "--seed", "4", "--depth", "both", "--layout-option", "max_objects=3"]
    first = _cli(*args)
    assert first.returncode == 0, first.stderr
    assert "2 scene(s) made" in first.stdout
    doc = json.loads((out / "dataset.json").read_text())
    assert doc["config"]["kind"] == "openset" and doc["config"]["layout"] == {"max_objects": 3}
    again = _cli(*args)
    assert again.returncode == 0 and "0 scene(s) made, 2 already there" in again.stdout


def test_cli_synth_keeps_freed_memory_when_it_makes_the_scenes_itself(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sceneforge.cli import app
    from sceneforge.synth import runner

    kept, runs = [], []
    monkeypatch.setattr(runner, "keep_freed_memory", lambda: kept.append(1) or True)
    monkeypatch.setattr(runner, "generate_dataset", lambda out, config, scenes, workers, **kw: runs.append(workers)
                        or runner.DatasetReport(Path(out), scenes, 0, 0, 0, 0, 1.0))
    for workers in ("1", "2"):
        result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / workers), "--scenes", "1", "--workers", workers])
        assert result.exit_code == 0, result.output
    assert runs == [1, 2] and kept == [1]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_synth_reports_an_unsatisfiable_layout_from_any_worker(tmp_path, workers):
    result = _cli("synth", "--out", str(tmp_path / "ds"), "--scenes", "2", "--views", "1", "--width", "32",
                  "--height", "32", "--workers", workers, "--layout-option", "min_objects=12",
                  "--layout-option", "region_half_extent=0.3", "--layout-option", "max_expansions=0")
    assert result.returncode == 2, result.stderr
    assert "iscene layout (seed" in result.stderr and "could not place object" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args,message", [
    (["--views", "0"], "views must be an integer in [1, 100000], got 0"),
    (["--scenes", "0"], "scenes must be an integer in [1, 10000000], got 0"),
    (["--kind", "city"], "unknown layout kind 'city'; allowed: iscene, openset"),
    (["--elevation", "-10", "95"], "elevation_deg must satisfy -89 <= min <= max <= 89, got (-10, 95)"),
    (["--workers", "0"], "workers must be an integer in [1, 1024], got 0"),
])
def test_cli_names_bad_values(tmp_path, args, message):
    result = _cli("synth", "--out", str(tmp_path / "x"), *args)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())


def test_killed_run_resumes_to_the_same_bytes(tmp_path):
    """SIGKILL a CLI run once a scene is written; the next run finishes and matches a clean run."""
    import os
    import signal
    import time

    args = ["synth", "--scenes", "6", "--views", "2", "--kind", "openset", "--width", "48", "--height", "40",
            "--seed", "9"]
    code = "import sys; from sceneforge.cli import main; sys.argv = ['sceneforge', *sys.argv[1:]]; main()"
    src = str(Path(__file__).resolve().parents[1] / "src")
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", code, *args, "--out", str(killed)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"})
    deadline = time.monotonic() + 120
    while not (killed / "scene_000001").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    made_before = {p.name for p in killed.glob("scene_*")}
    assert "scene_000001" in made_before and len(made_before) < 6
    resumed = _cli(*args, "--out", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    assert f"{6 - len(made_before)} scene(s) made, {len(made_before)} already there" in resumed.stdout
    assert not list(killed.glob(".scene_*"))
    clean = _cli(*args, "--out", str(tmp_path / "clean"))
    assert clean.returncode == 0
    assert folder_digest(killed) == folder_digest(tmp_path / "clean")
