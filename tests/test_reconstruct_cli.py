"""sceneforge reconstruct / demo on the command line: engine views, the arc2017 frame, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def engine_view(tmp_path_factory):
    from sceneforge.engine_views import write_engine_view

    return write_engine_view(tmp_path_factory.mktemp("engine"), seed=1, size=192)


def test_reconstruct_engine_view_folder(run_cli, engine_view, tmp_path):
    out = tmp_path / "out"
    code, stdout, stderr = run_cli("reconstruct", "--input", engine_view.input_dir, "--out", out, "--pose", "initial")
    assert code == 0, stderr
    assert "reconstructed 3 objects" in stdout and "time per stage" in stdout
    for name in ("scene.glb", "scene.usda", "scene.json", "preview.png", "report.json"):
        assert (out / name).is_file()
    report = json.loads((out / "report.json").read_text())
    assert report["pipeline"]["shape"]["name"] == "retrieve"
    assert report["pipeline"]["pose"]["resolved"]["name"] == "initial"


def test_reconstruct_image_and_seg_options_visible_backend(run_cli, engine_view, tmp_path):
    view = engine_view.input_dir
    out = tmp_path / "out"
    code, stdout, stderr = run_cli("reconstruct", "--image", view / "rgb.png", "--seg", view / "instances.png",
                                   "--depth", view / "depth.png", "--camera", view / "camera.json",
                                   "--labels", view / "labels.json", "--out", out, "--shape", "visible",
                                   "--pose", "initial", "--format", "json")
    assert code == 0, stderr
    assert (out / "scene.json").is_file() and not (out / "scene.glb").exists()
    assert json.loads((out / "report.json").read_text())["objects"]["1"]["backend"] == "visible"


def test_reconstruct_arc2017_npz(run_cli, arc2017_npz, tmp_path):
    out = tmp_path / "arc"
    code, stdout, stderr = run_cli("reconstruct", "--input", arc2017_npz, "--out", out, "--pose", "initial")
    assert code == 0, stderr
    assert "reconstructed 8 objects" in stdout
    report = json.loads((out / "report.json").read_text())
    assert "largest background plane" in " ".join(report["assumptions"])  # a bin seen from above
    assert report["depth_consistency_median_m"] < 0.02  # measured 0.0076 m
    assert "masks mark occluded parts" in stderr


def test_skipped_object_is_reported(run_cli, engine_view, tmp_path):
    from sceneforge.io.images import read_instance_map

    view = tmp_path / "view"
    shutil.copytree(engine_view.input_dir, view)
    instances = read_instance_map(view / "instances.png").astype(np.uint16)
    instances[0:2, 0:2] = 99  # two pixels: nothing is left after erosion
    Image.fromarray(instances).save(view / "instances.png")
    out = tmp_path / "out"
    code, _, stderr = run_cli("reconstruct", "--input", view, "--out", out, "--pose", "initial")
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    assert any(w.startswith("object 99 skipped: mask (4 px) is empty after 2 px erosion") for w in report["warnings"])
    assert "99" in report["skipped"] and "99" not in report["objects"]
    assert "object 99 skipped" in stderr


def test_bad_input_exits_2(run_cli, engine_view, tmp_path):
    view = tmp_path / "view"
    shutil.copytree(engine_view.input_dir, view)
    Image.fromarray(np.zeros((192, 192), np.uint16)).save(view / "depth.png")
    code, _, stderr = run_cli("reconstruct", "--input", view, "--out", tmp_path / "a")
    assert code == 2 and "depth has no valid pixel" in stderr
    code, _, stderr = run_cli("reconstruct", "--out", tmp_path / "b")
    assert code == 2 and "exactly one of --input" in stderr
    code, _, stderr = run_cli("reconstruct", "--input", engine_view.input_dir, "--shape", "diffusion",
                              "--out", tmp_path / "c")
    assert code == 2 and "unknown shape component 'diffusion'" in stderr
    tiny = tmp_path / "tiny"
    shutil.copytree(engine_view.input_dir, tiny)
    ids = np.zeros((192, 192), np.uint16)
    ids[5:7, 5:7] = 1
    Image.fromarray(ids).save(tiny / "instances.png")
    code, _, stderr = run_cli("reconstruct", "--input", tiny, "--out", tmp_path / "d")
    assert code == 2 and "nothing can be reconstructed" in stderr
    assert not (tmp_path / "d").exists()


def test_demo_prints_scores(run_cli, tmp_path):
    out = tmp_path / "demo"
    code, stdout, stderr = run_cli("demo", "--out", out, "--size", "192", "--seed", "1")
    assert code == 0, stderr
    assert "camera frame, no alignment" in stdout and "robust-ICP aligned" in stdout
    scores = json.loads((out / "scores.json").read_text())
    assert scores["camera_frame_no_alignment"]["fscore_s@0.1"] >= 0.6
    assert (out / "engine" / "scene.json").is_file() and (out / "engine" / "views" / "0000" / "rgb.png").is_file()
    assert (out / "preview.png").is_file()
    # the evaluate command, with its default sampling, reproduces the demo's camera-frame score
    code, stdout, stderr = run_cli("evaluate", out, out / "ground_truth", "--frame", "camera", "--no-align",
                                   "--tau", 0.1, "--out", tmp_path / "eval")
    assert code == 0, stderr
    evaluation = json.loads((tmp_path / "eval" / "evaluation.json").read_text())["scenes"][0]["summary"]
    demo_row = scores["camera_frame_no_alignment"]
    assert evaluation["n_gt"] == demo_row["n_gt"] and evaluation["n_pred"] == demo_row["n_pred"]
    # same samples (seeded by object id); the loaded meshes went through float32 PLY files
    assert evaluation["fscore_s@0.1"] == pytest.approx(demo_row["fscore_s@0.1"], abs=1e-3)


def test_config_file_reruns_a_reports_pipeline(run_cli, engine_view, tmp_path):
    first = tmp_path / "first"
    code, _, stderr = run_cli("reconstruct", "--input", engine_view.input_dir, "--out", first, "--shape", "visible",
                              "--pose", "initial")
    assert code == 0, stderr
    config = tmp_path / "pipeline.json"
    config.write_text(json.dumps(json.loads((first / "report.json").read_text())["pipeline"]))
    second = tmp_path / "second"
    code, _, stderr = run_cli("reconstruct", "--input", engine_view.input_dir, "--out", second, "--config", config)
    assert code == 0, stderr
    report = json.loads((second / "report.json").read_text())
    assert report["pipeline"]["shape"]["name"] == "visible" and report["pipeline"]["pose"]["requested"]["name"] == "initial"
    code, _, stderr = run_cli("reconstruct", "--input", engine_view.input_dir, "--out", tmp_path / "x",
                              "--config", tmp_path / "missing.json")
    assert code == 2 and "pipeline config file not found" in stderr
    # a setting beside "name" (not under "config") is an error, not silently dropped; nothing is written
    misplaced = tmp_path / "misplaced.json"
    misplaced.write_text(json.dumps({"pose": {"name": "optimise", "iterations": 5}}))
    code, _, stderr = run_cli("reconstruct", "--input", engine_view.input_dir, "--out", tmp_path / "y",
                              "--config", misplaced)
    assert code == 2 and "move 'iterations' into \"config\"" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "y").exists()
    # a setting out of its range: the file and the setting are named
    out_of_range = tmp_path / "out_of_range.json"
    out_of_range.write_text(json.dumps({"pose": {"name": "optimise", "config": {"aspect_limit": -1}}}))
    code, _, stderr = run_cli("reconstruct", "--input", engine_view.input_dir, "--out", tmp_path / "z",
                              "--config", out_of_range)
    assert code == 2 and "Traceback" not in stderr and not (tmp_path / "z").exists()
    assert f"{out_of_range}: pose component 'optimise': aspect_limit must be >= 0" in " ".join(stderr.split())
