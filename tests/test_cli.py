"""The command line: `sceneforge info` on every real sample; bad input -> exit code 2, one message,
no traceback."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sceneforge.errors import DepthError, InputError, MissingDependencyError
from sceneforge.synth.layouts import LayoutError



SRC = Path(__file__).resolve().parents[1] / "src"


def real_samples(real: Path) -> list[list[str]]:
    rgbd = real / "rgbd"
    samples = [[str(p)] for p in sorted((real / "midi3d").glob("*_rgb.png"))]
    samples += [[str(p)] for p in sorted((real / "scenemaker").iterdir())]
    samples += [[str(real / "scenegen" / "0005153")]]
    samples += [
        [str(rgbd / "redwood_color.jpg"), "--depth", str(rgbd / "redwood_depth.png"), "--camera",
         str(rgbd / "camera_primesense.json")],
        [str(rgbd / "tum_color.png"), "--depth", str(rgbd / "tum_depth.png"), "--depth-encoding", "tum"],
        [str(rgbd / "sun_color.jpg"), "--depth", str(rgbd / "sun_depth.png"), "--depth-encoding", "sun"],
        [str(rgbd / "nyu_color.ppm"), "--depth", str(rgbd / "nyu_depth.pgm")],
    ]
    return samples


def test_info_on_every_real_sample(run_cli, real_dir, arc2017_npz):
    samples = real_samples(real_dir) + [[str(arc2017_npz)]]
    assert len(samples) == 15
    for args in samples:
        code, out, err = run_cli("info", *args)
        assert code == 0, (args, err)
        assert "image:" in out and "camera:" in out
        if "--depth" in args or args[0].endswith(".npz"):
            assert "depth: " in out and " m (median" in out


def test_info_prints_instances_and_camera(run_cli, arc2017_npz):
    code, out, _ = run_cli("info", arc2017_npz)
    assert code == 0
    assert "8 instances" in out and "hanes_socks" in out and "fx=517.62" in out and "640x480" in out


@pytest.mark.parametrize("command", [["--help"], ["info", "--help"]])
def test_help(run_cli, command):
    code, out, _ = run_cli(*command)
    assert code == 0 and "Usage" in out


def test_bad_input_exits_2_with_message(run_cli, tmp_path):
    (tmp_path / "rgb.png").write_bytes(b"garbage")
    code, out, err = run_cli("info", tmp_path)
    assert code == 2
    assert "rgb.png: not a readable image" in err and "Traceback" not in err + out


def test_mask_size_error_from_the_real_entry_point(tmp_path):
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(tmp_path / "rgb.png")
    ids = np.zeros((10, 10), np.uint8)
    ids[2:5, 2:5] = 1
    Image.fromarray(ids).save(tmp_path / "instances.png")
    proc = subprocess.run([sys.executable, "-m", "sceneforge.cli", "info", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "COLUMNS": "300", "PYTHONPATH": str(SRC)})
    assert proc.returncode == 2
    assert "instance map is 10x10 but the image is 32x24" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("error", [
    DepthError("depth.png", "no valid pixel"),
    InputError(None, "scenes=-1 is out of range"),
    MissingDependencyError("ray", "ray", "running on a Ray cluster"),
    LayoutError("iscene", 3, "could not place object 1 of 4"),
])
def test_typed_errors_survive_pickling(error):
    """Worker processes send their errors to the driver pickled: type, message and fields survive."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error) and vars(copy) == vars(error)
