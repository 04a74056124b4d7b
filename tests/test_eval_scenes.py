"""Scene evaluation end to end: invariances, matching, bad input, folders of scenes, the CLI."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import trimesh

from sceneforge.errors import InputError
from sceneforge.eval.icp import AlignmentConfig
from sceneforge.eval.matching import match_by_boxes, match_objects
from sceneforge.eval.report import csv_text, markdown_table
from sceneforge.eval.runner import evaluate_paths, pair_scenes
from sceneforge.eval.scene_eval import EvalConfig, evaluate_scene, rotation_error_deg
from sceneforge.geometry.transforms import rotation_about_axis, rotation_y
from sceneforge.io.scene_json import write_scene_json
from sceneforge.types import Plane, Scene, SceneObject, Similarity

FAST = EvalConfig(points_per_object=2000, plausibility=False)


def _meshes() -> list[tuple[str, trimesh.Trimesh]]:
    return [("table", trimesh.creation.box(extents=[1.2, 0.7, 0.8])),
            ("lamp", trimesh.creation.cylinder(radius=0.15, height=0.9)),
            ("ball", trimesh.creation.icosphere(radius=0.3)),
            ("shelf", trimesh.creation.box(extents=[0.4, 1.5, 0.3])),
            ("crate", trimesh.creation.box(extents=[0.5, 0.5, 0.5]))]


def make_scene(seed: int = 0, count: int = 5) -> Scene:
    """Objects standing on the floor (y = 0) at spread positions, random yaw."""
    rng = np.random.default_rng(seed)
    positions = [(-2.0, -1.5), (1.8, -1.2), (0.2, 1.6), (-1.4, 1.9), (2.2, 1.4)]
    objects = []
    for k, ((label, mesh), (x, z)) in enumerate(zip(_meshes(), positions)):
        if k >= count:
            break
        pose = Similarity(rotation_y(rng.uniform(0, 2 * np.pi)), [x, mesh.extents[1] / 2, z], 1.0)
        objects.append(SceneObject(k + 1, label, mesh, pose))
    return Scene(tuple(objects), floor=Plane([0.0, 1.0, 0.0], 0.0))


def moved(scene: Scene, motion: Similarity, keep: slice = slice(None)) -> Scene:
    return Scene(tuple(SceneObject(o.id, o.label, o.mesh, motion @ o.pose) for o in scene.objects[keep]))


def test_perfect_prediction_scores_perfectly():
    gt = make_scene()
    result = evaluate_scene(gt, gt, FAST)
    assert result.scene.fscore[0.1] == 1.0 and result.object_mean.fscore[0.02] == 1.0
    assert result.scene.chamfer_l2_sum < 1e-6 and result.iou_b == pytest.approx(1.0, abs=1e-3)
    assert result.rotation_error_deg < 0.5 and not result.missed_ids and not result.extra_ids
    assert result.match_method == "id"


def test_scores_invariant_to_object_order():
    gt = make_scene()
    objs = list(moved(gt, Similarity(rotation_y(0.1), [0.05, 0, 0.02], 1.0)).objects)
    objs[2] = SceneObject(3, "ball", objs[2].mesh, Similarity(objs[2].pose.R, objs[2].pose.t + [0.2, 0, 0]))
    pred = Scene(tuple(objs))
    reordered = Scene(tuple(reversed(pred.objects)))
    a = evaluate_scene(pred, gt, FAST).summary()
    b = evaluate_scene(reordered, gt, FAST).summary()
    a.pop("seconds"), b.pop("seconds")
    assert a.pop("scene") == b.pop("scene")
    # same samples, same matching; only Open3D's threaded sums may differ in the last bits
    assert a == pytest.approx(b, rel=1e-6, abs=1e-9)


def test_scores_invariant_to_a_common_rigid_motion_with_alignment():
    gt = make_scene()
    # a prediction with real errors: one object shifted, one rotated
    objs = list(gt.objects)
    objs[0] = SceneObject(1, "table", objs[0].mesh, Similarity(objs[0].pose.R, objs[0].pose.t + [0.15, 0, 0]))
    objs[1] = SceneObject(2, "lamp", objs[1].mesh, Similarity(rotation_about_axis(np.array([1.0, 0, 0]), 0.3) @ objs[1].pose.R, objs[1].pose.t))
    pred = Scene(tuple(objs))
    motion = Similarity(rotation_y(np.radians(160)), [1.0, 0.2, -3.0], 1.0)
    config = EvalConfig(points_per_object=2000, plausibility=False, alignment=AlignmentConfig(scale="none"))
    base = evaluate_scene(pred, gt, config)
    far = evaluate_scene(moved(pred, motion), gt, config)
    assert far.scene.chamfer_l1_mean == pytest.approx(base.scene.chamfer_l1_mean, rel=0.05, abs=1e-3)
    assert far.scene.fscore[0.1] == pytest.approx(base.scene.fscore[0.1], abs=0.01)
    assert far.iou_b == pytest.approx(base.iou_b, abs=0.02)
    assert far.rotation_error_deg == pytest.approx(base.rotation_error_deg, abs=1.0)
    no_align = evaluate_scene(moved(pred, motion), gt, EvalConfig(points_per_object=2000, plausibility=False, align=False))
    assert no_align.scene.fscore[0.1] < 0.5 * base.scene.fscore[0.1]


def test_hungarian_matching_when_ids_differ_and_misses_reported():
    gt = make_scene()
    renumbered = Scene(tuple(SceneObject(o.id + 100, o.label, o.mesh, o.pose) for o in gt.objects[:3]))
    result = evaluate_scene(renumbered, gt, EvalConfig(points_per_object=2000, plausibility=False, align=False))
    assert result.match_method == "hungarian"
    assert sorted((o.pred_id, o.gt_id) for o in result.objects) == [(101, 1), (102, 2), (103, 3)]
    assert result.missed_ids == (4, 5) and result.extra_ids == ()
    assert result.iou_b == pytest.approx(1.0, abs=1e-3)
    assert result.iou_b_penalised == pytest.approx(3 / 5, abs=1e-3)
    assert any("without a match" in w for w in result.warnings)


def test_matching_functions():
    box = lambda c: np.array([np.array(c) - 0.5, np.array(c) + 0.5])  # noqa: E731
    m = match_by_boxes([box([5, 0, 0]), box([0, 0, 0]), box([50, 0, 0])], [box([0, 0, 0]), box([5.1, 0, 0])])
    assert sorted(m.pairs) == [(0, 1), (1, 0)] and m.extra == (2,) and m.missed == ()
    by_id = match_objects([3, 1], [1, 2, 3], [box([0, 0, 0])] * 2, [box([0, 0, 0])] * 3, mode="id")
    assert sorted(by_id.pairs) == [(0, 2), (1, 0)] and by_id.missed == (1,)
    # auto keeps ids when the prediction skipped an object, even if its boxes would pair them otherwise
    skipped = match_objects([3, 1], [1, 2, 3], [box([0, 0, 0]), box([5, 0, 0])],
                            [box([0, 0, 0]), box([9, 0, 0]), box([5, 0, 0])])
    assert skipped.method == "id" and sorted(skipped.pairs) == [(0, 2), (1, 0)] and skipped.missed == (1,)
    assert match_objects([1, 1], [1, 2], [box([0, 0, 0])] * 2, [box([0, 0, 0])] * 2).method == "hungarian"
    assert match_objects([1, 7], [1, 2], [box([0, 0, 0])] * 2, [box([0, 0, 0])] * 2).method == "hungarian"
    with pytest.raises(ValueError, match="match mode must be one of"):
        match_objects([], [], [], [], mode="greedy")


def test_rotation_error_with_symmetry():
    R = rotation_y(np.pi)
    assert rotation_error_deg(R, np.eye(3)) == pytest.approx(180.0)
    assert rotation_error_deg(R, np.eye(3), symmetry_order=2) == pytest.approx(0.0, abs=1e-6)
    assert rotation_error_deg(rotation_y(np.pi / 2), np.eye(3), symmetry_order=2) == pytest.approx(90.0)
    assert rotation_error_deg(rotation_y(1.234), np.eye(3), symmetry_order=0) == pytest.approx(0.0, abs=1e-6)
    tilt = rotation_about_axis(np.array([1.0, 0, 0]), np.radians(30))
    assert rotation_error_deg(tilt, np.eye(3), symmetry_order=0) == pytest.approx(30.0)


def test_per_axis_normalisation_forgives_stretching():
    cube = trimesh.creation.box(extents=[1, 1, 1])
    slab = trimesh.creation.box(extents=[2, 1, 1])
    gt = Scene((SceneObject(1, "cube", cube),))
    pred = Scene((SceneObject(1, "cube", slab),))
    base = dict(points_per_object=2000, plausibility=False, align=False)
    per_axis = evaluate_scene(pred, gt, EvalConfig(object_normalisation="per_axis", **base))
    uniform = evaluate_scene(pred, gt, EvalConfig(object_normalisation="uniform", **base))
    assert per_axis.object_mean.chamfer_l1_mean < 0.05 < uniform.object_mean.chamfer_l1_mean
    assert uniform.scale_error == pytest.approx(1 / 3)  # x twice as long, y and z exact


def test_empty_prediction_scores_zero_and_infinity():
    gt = make_scene()
    result = evaluate_scene(Scene(), gt, FAST)
    assert result.scene.fscore[0.1] == 0.0 and math.isinf(result.scene.chamfer_l2_sum)
    assert math.isinf(result.object_mean.chamfer_l1_mean) and result.object_mean.fscore[0.1] == 0.0
    assert result.missed_ids == (1, 2, 3, 4, 5) and result.iou_b == 0.0 and result.alignment is None
    assert any("prediction is empty" in w for w in result.warnings)


def test_empty_ground_truth_is_a_clear_error():
    with pytest.raises(InputError, match="ground-truth scene has no object with a surface"):
        evaluate_scene(make_scene(), Scene(), FAST, name="gt0")


def test_other_units_warn_and_degenerate_or_nan_objects_do_not_crash():
    gt = make_scene()
    in_cm = moved(gt, Similarity(np.eye(3), np.zeros(3), 100.0))
    result = evaluate_scene(in_cm, gt, FAST)
    assert any("other units" in w for w in result.warnings)
    assert result.scene.fscore[0.1] > 0.95  # the scale-estimating alignment undoes the units

    flat = trimesh.Trimesh(vertices=[[0, 0, 0], [1, 0, 0], [2, 0, 0]], faces=[[0, 1, 2]], process=False)
    broken = trimesh.Trimesh(vertices=np.full((3, 3), np.nan), faces=[[0, 1, 2]], process=False)
    objects = list(gt.objects[:3]) + [SceneObject(4, "flat", flat), SceneObject(5, "broken", broken)]
    result = evaluate_scene(Scene(tuple(objects)), gt, EvalConfig(points_per_object=2000))
    assert np.isfinite(result.scene.chamfer_l1_mean)
    assert any("no surface area" in w for w in result.warnings)
    assert any("no finite vertex" in w for w in result.warnings)
    by_id = {o.gt_id: o for o in result.objects}
    assert by_id[5].points.fscore[0.1] == 0.0 and math.isinf(by_id[5].points.chamfer_l2_sum)
    assert by_id[4].iou_oriented == 0.0


def test_plausibility_numbers_of_prediction_and_ground_truth():
    gt = make_scene(count=2)
    objs = list(gt.objects)
    lifted = SceneObject(2, objs[1].label, objs[1].mesh, Similarity(objs[1].pose.R, objs[1].pose.t + [0, 0.25, 0]))
    merged = SceneObject(3, "crate", trimesh.creation.box(extents=[0.5, 0.5, 0.5]),
                         Similarity(np.eye(3), objs[0].pose.t + [0.4, -0.1, 0]))  # on the floor, inside the table
    pred = Scene((objs[0], lifted, merged))
    result = evaluate_scene(pred, gt, EvalConfig(points_per_object=2000, align=False))
    assert result.plausibility_gt.floating_objects == 0 and result.plausibility_gt.interpenetration_volume == 0
    assert result.plausibility_pred.floating_objects == 1
    assert result.plausibility_pred.max_floating_distance == pytest.approx(0.25, abs=1e-3)
    assert result.plausibility_pred.interpenetration_volume > 0.01


def test_config_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="object_normalisation must be one of"):
        EvalConfig(object_normalisation="cube")
    with pytest.raises(ValueError, match="taus must be positive"):
        EvalConfig(taus=(0.1, -1.0))


# ---------------------------------------------------------------- folders, reports, CLI

@pytest.fixture()
def scene_folders(tmp_path):
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    motion = Similarity(rotation_y(0.7), [0.3, 0.0, -0.2], 1.0)
    for k in range(3):
        gt = make_scene(seed=k, count=3)
        write_scene_json(gt, gt_dir / f"scene{k}")
        if k < 2:
            write_scene_json(moved(gt, motion), pred_dir / f"scene{k}")
    write_scene_json(make_scene(seed=9, count=2), pred_dir / "orphan")
    return pred_dir, gt_dir


def test_folders_pair_by_name_and_report_missing(scene_folders):
    pred_dir, gt_dir = scene_folders
    pairs, warnings = pair_scenes(pred_dir, gt_dir)
    assert [p.name for p in pairs] == ["scene0", "scene1", "scene2"] and pairs[2].pred is None
    assert any("orphan" in w for w in warnings) and any("without a prediction" in w for w in warnings)
    run = evaluate_paths(pred_dir, gt_dir, FAST)
    assert run.results[0].scene.fscore[0.1] > 0.99 and run.results[2].n_pred == 0
    assert math.isinf(run.results[2].scene.chamfer_l2_sum)
    assert any("no prediction" in w for w in run.results[2].warnings)
    assert run.mean["scenes"] == 3 and run.mean["scenes_with_empty_prediction"] == 1
    table = markdown_table(run)
    header = table.splitlines()[0]
    order = [header.index(c) for c in ("CD-S", "F-Score-S", "CD-O", "F-Score-O", "IoU-B")]
    assert order == sorted(order)
    assert table.splitlines()[4].startswith("| scene2 | inf | 0.00 | inf | 0.00 | 0.0000 | 3 | 0 |")
    assert csv_text(run).splitlines()[-1].startswith("mean,")


def test_pairing_errors(tmp_path, scene_folders):
    pred_dir, gt_dir = scene_folders
    with pytest.raises(InputError, match="ground truth not found"):
        pair_scenes(pred_dir, tmp_path / "nowhere")
    with pytest.raises(InputError, match="prediction is one scene but the ground truth is a folder"):
        pair_scenes(pred_dir / "scene0", gt_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="folder holds no scene"):
        pair_scenes(pred_dir, tmp_path / "empty")


def test_cli_evaluate_folders_with_workers_writes_reports(scene_folders, tmp_path, run_cli):
    pred_dir, gt_dir = scene_folders
    out = tmp_path / "report"
    code, stdout, stderr = run_cli("evaluate", pred_dir, gt_dir, "--out", out,
                                    "--workers", "2", "--points", "1500", "--chamfer", "l1_mean")
    assert code == 0, stderr
    assert "CD-S (l1_mean)" in stdout and "scene2" in stdout and "orphan" in stderr
    doc = json.loads((out / "evaluation.json").read_text())
    assert [s["name"] for s in doc["scenes"]] == ["scene0", "scene1", "scene2"]
    assert doc["scenes"][2]["summary"]["cd_s_l2_sum"] == "inf"
    assert (out / "evaluation.md").read_text().startswith("| scene | CD-S (l1_mean) | F-Score-S")
    assert (out / "evaluation.csv").read_text().count("\n") == 5  # header, 3 scenes, mean


def test_cli_evaluate_bad_input_exit_code_2(tmp_path, run_cli):
    code, _, stderr = run_cli("evaluate", tmp_path / "a", tmp_path / "b")
    assert code == 2 and "not found" in stderr and "Traceback" not in stderr
    code, _, stderr = run_cli("evaluate", tmp_path, tmp_path, "--scale", "affine")
    assert code == 2 and "scale must be one of" in stderr


def test_glb_ground_truth_and_scene_json_prediction(tmp_path):
    from sceneforge.io import export_scene

    gt = make_scene(count=3)
    glb = export_scene(gt, tmp_path / "gt.glb")
    write_scene_json(moved(gt, Similarity(rotation_y(0.4), [0.1, 0.0, 0.0], 1.0)), tmp_path / "pred")
    run = evaluate_paths(tmp_path / "pred", glb, FAST)
    assert len(run.results) == 1 and run.results[0].scene.fscore[0.1] > 0.99 and not run.results[0].missed_ids


@pytest.mark.slow  # starts a local Ray cluster (about 15 s on 2 cores)
def test_ray_runs_folders_or_names_the_install(scene_folders):
    try:
        import ray  # noqa: F401
    except ImportError:
        from sceneforge.errors import MissingDependencyError

        with pytest.raises(MissingDependencyError, match=r"sceneforge\[ray\]"):
            evaluate_paths(*scene_folders, FAST, use_ray=True)
    else:
        run = evaluate_paths(*scene_folders, FAST, use_ray=True)
        assert [r.name for r in run.results] == ["scene0", "scene1", "scene2"]


def test_eval_imports_no_open3d_and_no_reconstruction_stage():
    import subprocess

    code = ("import sys, sceneforge.eval, sceneforge.eval.report, sceneforge.eval.runner; "
            "bad = [m for m in sys.modules if m == 'open3d' or m.split('.')[:2] in (['sceneforge', s] for s in "
            "('synth', 'perception', 'amodal', 'shape', 'pose', 'relations', 'pipeline'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, env={**__import__("os").environ,
                   "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1] / "src")})


def test_cli_symmetric_needs_label_and_order(scene_folders, run_cli):
    pred_dir, gt_dir = scene_folders
    code, _, stderr = run_cli("evaluate", pred_dir, gt_dir, "--symmetric", "table")
    assert code == 2 and "LABEL=ORDER" in stderr


def test_synthetic_engine_ground_truth_round_trip(tmp_path):
    """The engine's scene.json folders are valid ground truth: a moved copy scores perfectly, and the
    engine's resting and stacked objects are neither floating nor interpenetrating."""
    from sceneforge.io import load_scene
    from sceneforge.synth.dataset import SynthConfig
    from sceneforge.synth.runner import generate_dataset

    generate_dataset(tmp_path / "gt", SynthConfig(kind="iscene", seed=3), 2)
    motion = Similarity(rotation_y(2.0), [0.4, 0.0, -0.3], 1.0)
    for folder in sorted((tmp_path / "gt").glob("scene_*")):
        write_scene_json(moved(load_scene(folder), motion), tmp_path / "pred" / folder.name)
    run = evaluate_paths(tmp_path / "pred", tmp_path / "gt", EvalConfig(points_per_object=3000))
    assert len(run.results) == 2
    for result in run.results:
        assert result.scene.fscore[0.02] > 0.99 and result.match_method == "id" and not result.missed_ids
        assert result.plausibility_pred.floating_objects == result.plausibility_gt.floating_objects == 0
        assert result.plausibility_pred.interpenetrating_pairs == 0
