"""Every benchmarks/*.py script imports (its helpers and the modules it shares with other scripts exist)."""

from __future__ import annotations

import importlib
import json
import pickle
import sys
from pathlib import Path

import pytest

from sceneforge.errors import InputError

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script", sorted(p.stem for p in BENCHMARKS.glob("*.py")))
def test_benchmark_script_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    module = importlib.import_module(script)
    assert callable(getattr(module, "main", None)), f"benchmarks/{script}.py has no main()"
    sys.modules.pop(script, None)


def test_the_ablations_paired_interval_excludes_zero_only_for_a_lead_larger_than_the_spread(monkeypatch):
    """reconstruct.paired_table: a variant 0.01 IoU-B above the full model on every view has an
    interval around +0.01 that excludes 0; one that differs by ±0.01 noise has an interval across 0."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    reconstruct = importlib.import_module("reconstruct")
    rng = __import__("numpy").random.default_rng(3)
    full = [{c: 0.5 for c in reconstruct.PAIRED_COLUMNS} for _ in range(40)]
    ahead = [{**r, "IoU-B": r["IoU-B"] + 0.01} for r in full]
    noisy = [{**r, "IoU-B": r["IoU-B"] + float(rng.choice([-0.01, 0.01]))} for r in full]
    lines = reconstruct.paired_table({"full model": full, "ahead": ahead, "noisy": noisy}).splitlines()
    iou = {line.split(" | ")[0].strip("| "): line.split(" | ")[2] for line in lines[2:]}
    assert iou["ahead"] == "+0.0100 [+0.0100, +0.0100]"
    low, high = (float(v) for v in iou["noisy"].split("[")[1].rstrip("]").split(", "))
    assert low < 0.0 < high
    sys.modules.pop("reconstruct", None)


def test_the_sampling_ceiling_scores_the_same_surfaces_at_other_points(monkeypatch):
    """reconstruct.retriangulated: each ground-truth surface with its faces split, so its samples
    differ; scored against the truth at tau 0.02 (scene normalised) it falls short of 100 where
    a large object is sampled sparsely, and comes near 100 at the eval's default 20,480 points."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    reconstruct = importlib.import_module("reconstruct")
    import trimesh

    from sceneforge.eval import EvalConfig, evaluate_scene
    from sceneforge.types import Scene, SceneObject, Similarity

    wardrobe = trimesh.creation.box((1.2, 2.2, 0.7))
    cup = trimesh.creation.cylinder(radius=0.04, height=0.1)
    truth = Scene(objects=(SceneObject(1, "wardrobe", wardrobe, Similarity()),
                           SceneObject(2, "cup", cup, Similarity(t=[3.0, 0.0, 0.0]))))
    ceiling = reconstruct.retriangulated(truth)
    for o, c in zip(truth.objects, ceiling.objects):
        assert len(c.mesh.faces) == 4 * len(o.mesh.faces)
        assert abs(c.mesh.area - o.mesh.area) < 1e-9 and (abs(c.mesh.bounds - o.mesh.bounds) < 1e-9).all()

    def strict_fscore(points: int) -> float:
        config = EvalConfig(align=False, points_per_object=points, taus=(0.02,), plausibility=False, threads=1)
        return evaluate_scene(ceiling, truth, config).summary()["fscore_s@0.02"]

    assert evaluate_scene(truth, truth, EvalConfig(align=False, points_per_object=2048, taus=(0.02,),
                                                   plausibility=False)).summary()["fscore_s@0.02"] == 1.0
    assert strict_fscore(2048) < 0.9
    assert strict_fscore(20480) > 0.97
    sys.modules.pop("reconstruct", None)


def test_an_interrupted_reconstruction_benchmark_resumes_from_its_work_folder(monkeypatch, tmp_path, capsys):
    """reconstruct.run_engine with ``work``: each finished view's record is kept; a rerun with the
    same settings runs only the missing views and tables all of them in view order; other settings
    are refused (InputError; exit 2 from main) instead of mixed in."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    reconstruct = importlib.import_module("reconstruct")
    ran = []

    def fake_view(index, seed, size, points, ablation, ablation_base, names):
        ran.append(index)
        if index == 2 and len(ran) == 3:
            raise KeyboardInterrupt  # the first run stops at its third view
        row = {"F-Score-S": float(index), "IoU-B": 0.5}
        return {"objects": 3 + index, "ceiling": row, "scores": {names[0]: row}, "timings": {names[0]: {"total": 1.0}},
                "failures": [], "ablation": {}}

    monkeypatch.setattr(reconstruct, "run_view", fake_view)
    method = ("visible points (baseline)",)
    with pytest.raises(KeyboardInterrupt):
        reconstruct.run_engine(4, 777, 64, 256, False, methods=method, work=tmp_path)
    assert sorted(p.name for p in tmp_path.glob("view_*.json")) == ["view_000.json", "view_001.json"]
    ran.clear()
    scores, timings, _, failures, n_objects = reconstruct.run_engine(4, 777, 64, 256, False, methods=method,
                                                                    work=tmp_path)
    assert ran == [2, 3]
    assert [r["F-Score-S"] for r in scores[method[0]]] == [0.0, 1.0, 2.0, 3.0] and n_objects == [3, 4, 5, 6]
    with pytest.raises(InputError, match="other settings"):
        reconstruct.run_engine(4, 777, 64, 512, False, methods=method, work=tmp_path)
    capsys.readouterr()
    assert reconstruct.main(["--views", "4", "--size", "64", "--points", "512", "--methods", method[0], "--no-real",
                             "--work", str(tmp_path)]) == 2
    assert f"error: {tmp_path}: its views were run with other settings" in capsys.readouterr().err
    sys.modules.pop("reconstruct", None)


def test_the_pose_development_loop_caches_bases_reposes_them_and_compares_runs(monkeypatch, tmp_path, capsys):
    """pose_development.py: 'bases' caches a view's retrieve reconstruction; 'run' re-poses it (the
    'initial' stage scores the cached scene itself), resumes a finished run and refuses one with
    another stage (exit 2); 'compare' tables both runs and their paired difference."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    development = importlib.import_module("pose_development")
    reconstruct = importlib.import_module("reconstruct")
    assert development.main(["bases", str(tmp_path), "--seeds", "5", "--views", "1", "--size", "128"]) == 0
    assert development.main(["run", str(tmp_path), "initial", "initial"]) == 0
    short = '{"name": "optimise", "config": {"iterations": 3, "yaw_candidates": 1}}'
    assert development.main(["run", str(tmp_path), "short", short]) == 0
    cached = pickle.loads((tmp_path / "bases" / "5_0.pkl").read_bytes())
    direct = reconstruct.score_view(cached["base"].scene, cached["truth"], reconstruct.DEFAULT_POINTS_PER_OBJECT,
                                    reference_only=False)
    initial = json.loads((tmp_path / "runs" / "initial" / "5_0.json").read_text())
    assert initial["IoU-B"] == direct["IoU-B"] and initial["F-Score-S@0.02"] == direct["F-Score-S@0.02"]
    capsys.readouterr()
    assert development.main(["run", str(tmp_path), "initial", "initial"]) == 0
    assert "1 of 1 view(s) already done" in capsys.readouterr().out
    assert development.main(["run", str(tmp_path), "initial", "optimise"]) == 2
    assert "other settings" in capsys.readouterr().err
    assert development.main(["compare", str(tmp_path), "initial", "short"]) == 0
    out = capsys.readouterr().out
    assert "| initial |" in out and "| short |" in out and "variant − initial" in out
    assert development.main(["compare", str(tmp_path), "initial", "missing"]) == 2
    for name in ("pose_development", "reconstruct"):
        sys.modules.pop(name, None)
