"""Dataset writer: scene input folders, view-centric data, determinism, resume, errors.

Uses a small layout of trimesh primitives (registered as a kind in this process) so it does not
depend on the asset library; the built-in kinds are covered in test_synth_runner.py.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from folder_digest import folder_digest
from sceneforge.errors import InputError
from sceneforge.geometry import backproject_depth, transform_points
from sceneforge.geometry.view_centric import box_normalisation, normalisation_matrix
from sceneforge.io.scene_json import read_scene_json
from sceneforge.synth.cameras import OrbitSpec
from sceneforge.synth.dataset import SynthConfig, existing_scenes, register_layout
from sceneforge.synth.kinds import SynthScene
from sceneforge.synth.runner import generate_dataset
from sceneforge.synth.views import ViewSettings
from sceneforge.synth.writer import PNG_FILTERS, depth_to_millimetres, encode_png
from sceneforge.types import Camera, Normalisation, Plane, Scene, SceneObject, Similarity

pytest.importorskip("moderngl")
cv2 = pytest.importorskip("cv2")


def primitives_kind(seed: int, options) -> SynthScene:
    """2-4 coloured primitives on a row, random yaw and colour, resting on y = 0."""
    rng = np.random.default_rng(seed)
    makers = [lambda: trimesh.creation.box((0.6, 0.5, 0.4)), lambda: trimesh.creation.icosphere(2, 0.3),
              lambda: trimesh.creation.cylinder(0.2, 0.7, sections=16), lambda: trimesh.creation.cone(0.3, 0.5, sections=16)]
    labels = ["box", "ball", "can", "cone"]
    objects = []
    for k in range(int(rng.integers(2, 5))):
        shape = int(rng.integers(len(makers)))
        mesh = makers[shape]()
        mesh.apply_translation(-mesh.bounds.mean(axis=0))
        mesh.visual.face_colors = [*rng.integers(40, 230, size=3), 255]
        scale = float(rng.uniform(0.8, 1.2))
        yaw = float(rng.uniform(0, 2 * np.pi))
        R = trimesh.transformations.rotation_matrix(yaw, [0, 1, 0])[:3, :3]
        height = scale * (mesh.bounds[1, 1] - mesh.bounds[0, 1]) / 2
        objects.append(SceneObject(k + 1, labels[shape], mesh, Similarity(R, [0.9 * k, height, 0.3 * (k % 2)], scale)))
    scene = Scene(tuple(objects), floor=Plane(np.array([0.0, 1.0, 0.0]), 0.0),
                  metadata={"layout": {"kind": "test_primitives", "seed": seed, "relations": []}})
    return SynthScene(scene)


def hidden_kind(seed: int, options) -> SynthScene:
    """A small ball inside a big box: never visible from outside."""
    box = trimesh.creation.box((1.0, 1.0, 1.0))
    ball = trimesh.creation.icosphere(1, 0.1)
    objects = (SceneObject(1, "box", box, Similarity(t=[0.0, 0.5, 0.0])),
               SceneObject(2, "ball", ball, Similarity(t=[0.0, 0.5, 0.0])))
    return SynthScene(Scene(objects, floor=Plane(np.array([0.0, 1.0, 0.0]), 0.0)))


register_layout("test_primitives", primitives_kind)
register_layout("test_hidden", hidden_kind)


def _config(seed=3, views=3, occlusion="drop", depth_format="both", kind="test_primitives",
            intrinsics=None) -> SynthConfig:
    orbit = OrbitSpec(n_views=views, width=80, height=60, hfov_deg=60.0, intrinsics=intrinsics)
    return SynthConfig(kind=kind, seed=seed, views=ViewSettings(orbit=orbit, occlusion=occlusion),
                       depth_format=depth_format)



@pytest.mark.parametrize("intrinsics", [None, (75.0, 66.0, 43.3, 25.8)])
def test_views_are_scene_input_folders_consistent_with_scene_json(tmp_path, intrinsics):
    report = generate_dataset(tmp_path, _config(intrinsics=intrinsics), n_scenes=2)
    assert report.generated == 2 and report.skipped == 0 and report.views + report.dropped_views == 6
    scene_dir = tmp_path / "scene_000000"
    truth = read_scene_json(scene_dir)
    meta = truth.metadata["synth"]
    assert meta["kind"] == "test_primitives" and meta["n_candidates"] == 3
    assert truth.metadata["layout"]["kind"] == "test_primitives"
    views = sorted((scene_dir / "views").iterdir())
    assert [v.name for v in views] == [f"{i:04d}" for i in range(len(views))] and views
    for view_dir in views:
        names = {p.name for p in view_dir.iterdir()}
        assert names == {"rgb.png", "instances.png", "depth.png", "depth.npy", "camera.json", "labels.json", "view.json"}
        camera = Camera.from_dict(json.loads((view_dir / "camera.json").read_text()))
        rgb = cv2.imread(str(view_dir / "rgb.png"), cv2.IMREAD_UNCHANGED)
        instances = cv2.imread(str(view_dir / "instances.png"), cv2.IMREAD_UNCHANGED)
        depth_mm = cv2.imread(str(view_dir / "depth.png"), cv2.IMREAD_UNCHANGED)
        depth_m = np.load(view_dir / "depth.npy")
        assert rgb.shape == (60, 80, 3) and instances.dtype == np.uint16 and depth_mm.dtype == np.uint16
        assert depth_m.dtype == np.float32 and (camera.width, camera.height) == (80, 60)
        if intrinsics is not None:
            assert (camera.fx, camera.fy, camera.cx, camera.cy) == intrinsics
        np.testing.assert_array_equal(depth_mm, np.where(depth_m * 1000 <= 65535, np.rint(depth_m * 1000), 0))
        labels = json.loads((view_dir / "labels.json").read_text())
        ids = sorted(int(i) for i in np.unique(instances) if i > 0)
        assert sorted(int(k) for k in labels) == ids == sorted(o.id for o in truth.objects)  # "drop": all visible
        assert all(labels[str(o.id)] == o.label for o in truth.objects)
        # depth back-projects onto the ground-truth meshes of scene.json, per instance
        for obj in truth.objects:
            points = transform_points(camera.T_world_cam, backproject_depth(camera, depth_mm / 1000.0, instances == obj.id))
            world = obj.world_mesh()
            _, dist, _ = trimesh.proximity.closest_point(world, points)
            assert np.median(dist) < 1e-3
        _check_view_centric(json.loads((view_dir / "view.json").read_text()), truth, camera)
    _check_with_project_reader(views[0], truth)


def _check_view_centric(doc, truth: Scene, camera: Camera) -> None:
    T_cam_world = np.asarray(doc["T_cam_world"])
    np.testing.assert_allclose(T_cam_world @ camera.T_world_cam, np.eye(4), atol=1e-9)
    norm = Normalisation.from_dict(doc["normalisation"])
    assert norm.frame == "camera"
    all_points = []
    for entry in doc["objects"]:
        obj = truth.object(entry["id"])
        T_cam_obj = np.asarray(entry["T_cam_obj"])
        np.testing.assert_allclose(T_cam_obj, T_cam_world @ obj.pose.matrix, atol=1e-9)
        np.testing.assert_allclose(np.asarray(entry["T_norm_obj"]), normalisation_matrix(norm) @ T_cam_obj, atol=1e-9)
        all_points.append(transform_points(np.asarray(entry["T_norm_obj"]), obj.mesh.vertices))
        assert entry["visible"] and entry["visible_pixels"] > 0
    points = np.concatenate(all_points)
    # the normalised scene spans [-0.5, 0.5] along its largest side and is centred
    np.testing.assert_allclose(points.max(axis=0) + points.min(axis=0), 0.0, atol=1e-6)  # PLY is float32
    assert abs(float(np.max(points.max(axis=0) - points.min(axis=0))) - 1.0) < 1e-6
    # and undoing the normalisation gives camera-frame metres back
    cam_points = norm.undo(points)
    reference = box_normalisation(cam_points)
    np.testing.assert_allclose(reference.centre, norm.centre, atol=1e-6)


def _check_with_project_reader(view_dir: Path, truth: Scene) -> None:
    """Validate with sceneforge.io.inputs.load_input when the project's reader exists."""
    try:
        from sceneforge.io.inputs import load_input
    except ImportError:
        return
    scene_input = load_input(view_dir)
    assert scene_input.camera is not None and scene_input.depth is not None
    assert set(scene_input.labels.values()) <= {o.label for o in truth.objects}
    assert sorted(scene_input.ids.tolist()) == sorted(o.id for o in truth.objects)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    generate_dataset(tmp_path / "a", _config(seed=5), n_scenes=2)
    generate_dataset(tmp_path / "b", _config(seed=5), n_scenes=2)
    generate_dataset(tmp_path / "c", _config(seed=6), n_scenes=2)
    a, b, c = (folder_digest(tmp_path / x) for x in "abc")
    assert a == b
    assert a["scene_000000/views/0000/rgb.png"] != c["scene_000000/views/0000/rgb.png"]


def test_resume_after_kill_makes_only_the_missing_scenes(tmp_path):
    out = tmp_path / "out"
    generate_dataset(out, _config(), n_scenes=3)
    before = folder_digest(out)
    keep = out / "scene_000000" / "scene.json"
    stamp = keep.stat().st_mtime_ns
    # what a killed run leaves: a missing scene and its half-written hidden temp folder
    import shutil
    shutil.rmtree(out / "scene_000002")
    leftover = out / ".scene_000002.k1ll3d.tmp"
    (leftover / "views").mkdir(parents=True)
    (leftover / "scene.json").write_text("{half")
    store = out / ".assets.k1ll3d.tmp"  # the asset store the workers of a killed run shared
    store.mkdir()
    (store / "chair-1.pkl").write_bytes(b"half")
    events = []
    report = generate_dataset(out, _config(), n_scenes=3, on_scene=events.append)
    assert report.generated == 1 and report.skipped == 2 and [e.index for e in events] == [2]
    assert not leftover.exists() and not store.exists()
    assert folder_digest(out) == before
    assert keep.stat().st_mtime_ns == stamp
    # asking for more scenes extends the dataset
    report = generate_dataset(out, _config(), n_scenes=4)
    assert report.generated == 1 and existing_scenes(out) == {0, 1, 2, 3}


@pytest.mark.parametrize("relative", [True, False])
def test_write_files_makes_nested_folders_and_refuses_existing_files(tmp_path, monkeypatch, relative):
    """The same folder with names relative to an open folder descriptor (POSIX) or with full paths."""
    from sceneforge.io import atomic

    monkeypatch.setattr(atomic, "_RELATIVE_TO_FOLDER", relative and atomic._RELATIVE_TO_FOLDER)
    files = {"scene.json": b"{}", "views/0000/rgb.png": b"\x89PNG" * 1000, "views/0001/view.json": b"[1]",
             "objects/001_mug.ply": b"ply", "a/b/c/d.bin": bytes(range(256)), "views/0000/empty": b""}
    (tmp_path / "views").mkdir()  # a folder that exists already is used as it is
    atomic.write_files(tmp_path, files)
    written = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert written == files
    with pytest.raises(FileExistsError):
        atomic.write_files(str(tmp_path), {"views/0001/view.json": b"again"})
    assert (tmp_path / "views/0001/view.json").read_bytes() == b"[1]"


def test_failure_mid_write_leaves_no_scene_folder(tmp_path, monkeypatch):
    from sceneforge.synth import dataset

    out = tmp_path / "out"
    original = dataset.write_files

    def failing_write(folder, files):
        original(folder, dict(list(files.items())[:4]))  # some files written, then the disk is full
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(dataset, "write_files", failing_write)
    with pytest.raises(OSError, match="disk full"):
        generate_dataset(out, _config(), n_scenes=1)
    monkeypatch.undo()
    assert existing_scenes(out) == set()
    assert [p.name for p in out.iterdir()] == ["dataset.json"]
    assert generate_dataset(out, _config(), n_scenes=1).generated == 1


def test_resume_with_other_settings_is_refused(tmp_path):
    generate_dataset(tmp_path, _config(views=3), n_scenes=1)
    with pytest.raises(InputError, match=r"differing settings: views\.orbit\.n_views=3->4"):
        generate_dataset(tmp_path, _config(views=4), n_scenes=1)


def test_fully_occluded_object_drops_views_or_is_marked_invisible(tmp_path):
    report = generate_dataset(tmp_path / "drop", _config(kind="test_hidden", views=2), n_scenes=1)
    assert report.views == 0 and report.dropped_views == 2
    meta = read_scene_json(tmp_path / "drop" / "scene_000000").metadata["synth"]
    assert meta["dropped_candidates"] == [0, 1] and meta["views"] == []
    report = generate_dataset(tmp_path / "mark", _config(kind="test_hidden", views=2, occlusion="mark"), n_scenes=1)
    assert report.views == 2 and report.dropped_views == 0
    view = tmp_path / "mark" / "scene_000000" / "views" / "0001"
    assert json.loads((view / "labels.json").read_text()) == {"1": "box"}
    objects = {o["id"]: o for o in json.loads((view / "view.json").read_text())["objects"]}
    assert objects[1]["visible"] and not objects[2]["visible"] and objects[2]["visible_pixels"] == 0
    meta = read_scene_json(tmp_path / "mark" / "scene_000000").metadata["synth"]
    assert meta["views"][1]["invisible"] == [2]


@pytest.mark.parametrize("make,match", [
    (lambda: OrbitSpec(n_views=0), r"views must be an integer in \[1, 100000\], got 0"),
    (lambda: OrbitSpec(elevation_deg=(10, 95)), r"elevation_deg must satisfy -89 <= min <= max <= 89, got \(10, 95\)"),
    (lambda: OrbitSpec(width=0), r"width must be an integer in \[1, 8192\], got 0"),
    (lambda: ViewSettings(occlusion="hide"), r"occlusion must be one of drop, mark, got 'hide'"),
    (lambda: SynthConfig(kind="nope"), r"unknown layout kind 'nope'; allowed: .*iscene"),
    (lambda: SynthConfig(seed=-1), r"seed must be an integer >= 0, got -1"),
    (lambda: SynthConfig(png_compression=12), r"png_compression must be in \[0, 9\], got 12"),
    (lambda: SynthConfig(depth_format="exr"), r"depth_format must be one of png, npy, both, got 'exr'"),
])
def test_invalid_settings_name_value_and_range(make, match):
    with pytest.raises(InputError, match=match):
        make()


def test_invalid_counts(tmp_path):
    with pytest.raises(InputError, match=r"scenes must be an integer in \[1, 10000000\], got 0"):
        generate_dataset(tmp_path, _config(), n_scenes=0)
    with pytest.raises(InputError, match=r"workers must be an integer in \[1, 1024\], got 0"):
        generate_dataset(tmp_path, _config(), n_scenes=1, workers=0)


def test_config_round_trips_through_json():
    config = _config(views=7, occlusion="mark")
    orbit = OrbitSpec(n_views=2, width=50, height=40, intrinsics=(60.0, 55.0, 20.0, 22.0))
    with_k = SynthConfig(kind="test_primitives", views=ViewSettings(orbit=orbit))
    assert SynthConfig.from_dict(json.loads(json.dumps(with_k.to_dict()))) == with_k
    again = SynthConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_png_encoder_round_trips_through_opencv_and_pillow():
    from io import BytesIO

    from PIL import Image

    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (37, 53, 3), dtype=np.uint8), rng.integers(0, 65536, (20, 31), dtype=np.uint16),
              rng.integers(0, 256, (9, 1), dtype=np.uint8), np.zeros((1, 1), np.uint16)]
    for image, png_filter, level in itertools.product(images, PNG_FILTERS, (0, 1, 3, 6, 9)):
        data = encode_png(image, level, png_filter)
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if image.ndim == 3:
            decoded = decoded[:, :, ::-1]  # OpenCV decodes to BGR
        np.testing.assert_array_equal(decoded.reshape(image.shape), image)
        np.testing.assert_array_equal(np.asarray(Image.open(BytesIO(data))).reshape(image.shape), image)
    with pytest.raises(InputError, match="PNG encoding needs"):
        encode_png(np.zeros((4, 4, 2), np.uint8), 1)
    with pytest.raises(InputError, match="png_filter must be one of none, sub, up"):
        encode_png(np.zeros((4, 4), np.uint8), 1, "paeth")


def test_depth_to_millimetres_rounds_and_zeroes_the_unrepresentable():
    depth = np.array([[0.0, 1.2344, 1.2346, 65.535, 65.536, -1.0, np.nan, np.inf]], np.float32)
    assert depth_to_millimetres(depth).tolist() == [[0, 1234, 1235, 65535, 0, 0, 0, 0]]


def test_hull_points_give_the_boxes_of_all_vertices_and_are_computed_once():
    from sceneforge.synth.meshmemo import MeshMemo, hull_points

    rng = np.random.default_rng(4)
    mesh = trimesh.creation.annulus(0.2, 0.5, 0.3)  # concave: many vertices inside the hull's span
    points = hull_points(mesh)
    assert len(points) < len(mesh.vertices) and hull_points(mesh) is points
    for _ in range(10):
        pose = Similarity(trimesh.transformations.random_rotation_matrix(rng.uniform(size=3))[:3, :3],
                          rng.normal(size=3), float(rng.uniform(0.5, 2.0)))
        every, hull = pose.apply(mesh.vertices), pose.apply(points)
        np.testing.assert_allclose(hull.min(axis=0), every.min(axis=0), atol=1e-12)
        np.testing.assert_allclose(hull.max(axis=0), every.max(axis=0), atol=1e-12)
    flat = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 0, 1]], [[0, 1, 2]])  # degenerate hull: all vertices
    assert len(hull_points(flat)) == 3
    calls = []
    counted = MeshMemo(lambda m: calls.append(m) or len(calls))
    assert counted(mesh) == counted(mesh) == 1 and counted(flat) == 2


def test_mesh_memo_takes_a_value_computed_elsewhere():
    from sceneforge.synth.meshmemo import MeshMemo

    calls = []
    counted = MeshMemo(lambda m: calls.append(m) or len(calls))
    mesh = trimesh.creation.box()
    counted.remember(mesh, 42)
    assert counted(mesh) == 42 and not calls
    assert counted(trimesh.creation.box()) == 1  # another mesh object: computed


def test_asset_store_carries_hull_points_and_ply_bytes(tmp_path, monkeypatch):
    """A worker that loads an asset another one built gets its memos with it: the same values,
    without computing them again."""
    from sceneforge.assets import AssetPool
    from sceneforge.synth import meshmemo

    built = AssetPool(["mug"], 2, seed=3, store=tmp_path, extras=meshmemo.ASSET_MEMOS).get("mug", 1)
    points, ply = meshmemo.hull_points(built.mesh), meshmemo.mesh_ply_bytes(built.mesh)

    def no_computing(mesh):
        raise AssertionError("the memo should have come with the stored asset")

    monkeypatch.setattr(meshmemo.hull_points, "_fn", no_computing)
    monkeypatch.setattr(meshmemo.mesh_ply_bytes, "_fn", no_computing)
    loaded = AssetPool(["mug"], 2, seed=3, store=tmp_path, extras=meshmemo.ASSET_MEMOS).get("mug", 1)
    assert loaded is not built
    loaded_points = meshmemo.hull_points(loaded.mesh)
    np.testing.assert_array_equal(loaded_points, points)
    assert not loaded_points.flags.writeable
    assert meshmemo.mesh_ply_bytes(loaded.mesh) == ply
