"""Scene exports and loaders: GLB, USD (a and c), scene.json folders, PLY point clouds, the CLI."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from sceneforge.errors import InputError, SceneFileError, UnsupportedFormatError
from sceneforge.geometry import rotation_about_axis, rotation_y
from sceneforge.io import export_scene, load_scene, save_scene
from sceneforge.io import glb as glb_module
from sceneforge.io.glb import GL_FROM_CV, read_glb_scene, unpack_glb, write_glb
from sceneforge.io.pointclouds import load_point_cloud, save_point_cloud
from sceneforge.io.usd import intrinsics_from_usd, read_usd_camera_params, read_usd_scene, usd_camera_params, write_usd
from sceneforge.types import Camera, Normalisation, Plane, Scene, SceneObject, Similarity

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def duck(real_dir: Path) -> Path:
    return real_dir / "meshes" / "duck.glb"


def make_scene() -> Scene:
    """Three metre-scale objects (face colours, vertex colours, none; uniform and per-axis scale),
    a background, a posed camera with fx != fy and an off-centre principal point, floor, metadata."""
    rng = np.random.default_rng(7)
    box = trimesh.creation.box((0.5, 0.8, 0.3))
    box.visual.face_colors = rng.integers(0, 256, (len(box.faces), 4)).astype(np.uint8)
    ball = trimesh.creation.icosphere(subdivisions=1, radius=0.3)
    ball.visual.vertex_colors = rng.integers(0, 256, (len(ball.vertices), 4)).astype(np.uint8)
    cone = trimesh.creation.cone(radius=0.2, height=0.6, sections=12)
    cone.vertices -= cone.bounds.mean(axis=0)
    T_world_cam = np.eye(4)
    T_world_cam[:3, :3] = rotation_y(0.4) @ rotation_about_axis(np.array([1.0, 0.0, 0.0]), -0.3)
    T_world_cam[:3, 3] = [0.3, 1.5, -0.2]
    objects = (
        SceneObject(3, "chair", box, Similarity(rotation_y(0.7), np.array([0.1, -0.35, 2.0]), 1.3), 0.9),
        SceneObject(7, "lamp", ball, Similarity(rotation_about_axis(np.array([1.0, 2.0, 0.5]), 1.1),
                                                np.array([-0.4, 0.2, 2.5]), np.array([1.0, 2.0, 0.5]))),
        SceneObject(12, "table top", cone, Similarity(rotation_y(-2.0), np.array([0.8, 0.0, 3.1]), 0.75)),
    )
    background = trimesh.creation.box((4.0, 0.1, 4.0))
    background.apply_translation([0.0, -0.55, 2.0])
    return Scene(objects=objects,
                 camera=Camera.from_intrinsics(500.0, 510.0, 320.3, 239.7, 640, 480, T_world_cam),
                 floor=Plane(np.array([0.0, 1.0, 0.0]), 0.5), background=background,
                 normalisation=Normalisation(np.array([0.1, 0.0, 2.5]), 1.7),
                 metadata={"seed": 3, "layout": "test"})


def assert_same_scene(expected: Scene, got: Scene, colours: bool = True) -> None:
    assert got.ids == expected.ids
    for a, b in zip(expected.objects, got.objects):
        assert b.label == a.label
        assert b.confidence == a.confidence
        assert b.pose.is_uniform == a.pose.is_uniform
        np.testing.assert_allclose(b.pose.matrix, a.pose.matrix, rtol=0, atol=1e-12)
        np.testing.assert_allclose(b.mesh.vertices, a.mesh.vertices, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(b.mesh.faces, a.mesh.faces)
        if colours:
            assert b.mesh.visual.kind == a.mesh.visual.kind
            if a.mesh.visual.kind == "face":
                np.testing.assert_array_equal(b.mesh.visual.face_colors, a.mesh.visual.face_colors)
            elif a.mesh.visual.kind == "vertex":
                np.testing.assert_array_equal(b.mesh.visual.vertex_colors, a.mesh.visual.vertex_colors)
    np.testing.assert_allclose(got.background.vertices, expected.background.vertices, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got.background.faces, expected.background.faces)
    np.testing.assert_array_equal(got.camera.K, expected.camera.K)
    assert (got.camera.width, got.camera.height) == (expected.camera.width, expected.camera.height)
    np.testing.assert_allclose(got.camera.T_world_cam, expected.camera.T_world_cam, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.floor.normal, expected.floor.normal, atol=1e-15)
    assert got.floor.offset == expected.floor.offset
    assert got.normalisation.to_dict() == expected.normalisation.to_dict()
    assert dict(got.metadata) == dict(expected.metadata)


def glb_json(path: Path) -> dict:
    return unpack_glb(path.read_bytes(), path)[0]


# ------------------------------------------------------------------------------------------ GLB


def test_glb_round_trip_keeps_everything(tmp_path):
    scene = make_scene()
    path = write_glb(scene, tmp_path / "scene.glb")
    assert_same_scene(scene, read_glb_scene(path))
    assert_same_scene(scene, load_scene(path))


def test_glb_structure_is_valid_gltf(tmp_path):
    """No Blender here: check the container and the glTF rules a validator would check."""
    scene = make_scene()
    path = write_glb(scene, tmp_path / "scene.glb")
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<III", data, 0)
    assert (magic, version, length) == (0x46546C67, 2, len(data))
    json_length, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == 0x4E4F534A and json_length % 4 == 0
    bin_length, bin_type = struct.unpack_from("<II", data, 20 + json_length)
    assert bin_type == 0x004E4942 and bin_length % 4 == 0 and 28 + json_length + bin_length == len(data)
    doc = json.loads(data[20:20 + json_length])
    assert doc["asset"]["version"] == "2.0"
    assert doc["buffers"][0]["byteLength"] == bin_length
    for view in doc["bufferViews"]:
        assert view["byteOffset"] % 4 == 0 and view["byteOffset"] + view["byteLength"] <= bin_length
    names = [node.get("name") for node in doc["nodes"]]
    assert names == ["003_chair", "007_lamp", "012_table_top", "background", "camera"]
    assert sorted(doc["scenes"][0]["nodes"]) == list(range(5))
    document = glb_module.read_gltf_document(path)
    for mesh in doc["meshes"]:
        primitive = mesh["primitives"][0]
        accessor = doc["accessors"][primitive["attributes"]["POSITION"]]
        assert accessor["componentType"] == 5126 and accessor["type"] == "VEC3"
        positions = document.accessor(primitive["attributes"]["POSITION"])
        assert accessor["min"] == positions.min(axis=0).tolist()
        assert accessor["max"] == positions.max(axis=0).tolist()
        indices = document.accessor(primitive["indices"])
        assert indices.max() < accessor["count"] and len(indices) % 3 == 0
    camera_node = doc["nodes"][4]
    perspective = doc["cameras"][camera_node["camera"]]["perspective"]
    assert perspective["yfov"] == pytest.approx(2 * np.arctan(240 / 510.0), abs=1e-12)
    assert perspective["aspectRatio"] == pytest.approx(640 / 480)
    T_world_glcam = np.asarray(camera_node["matrix"]).reshape(4, 4).T
    # the glTF camera looks down its -z: that direction is the OpenCV camera's +z (forward)
    forward_world = scene.camera.T_world_cam[:3, :3] @ [0.0, 0.0, 1.0]
    np.testing.assert_allclose(T_world_glcam[:3, :3] @ [0.0, 0.0, -1.0], forward_world, atol=1e-12)
    down_world = scene.camera.T_world_cam[:3, :3] @ [0.0, 1.0, 0.0]
    np.testing.assert_allclose(T_world_glcam[:3, :3] @ [0.0, 1.0, 0.0], -down_world, atol=1e-12)
    assert doc["nodes"][0]["extras"] == {"id": 3, "label": "chair"}


def test_glb_opened_with_trimesh_shows_named_nodes_in_place(tmp_path):
    """An independent reader (trimesh) sees the named nodes and the same world geometry."""
    scene = make_scene()
    path = write_glb(scene, tmp_path / "scene.glb")
    loaded = trimesh.load_scene(path)
    assert {"003_chair", "007_lamp", "012_table_top", "background"} <= set(loaded.graph.nodes_geometry)
    assert loaded.has_camera
    assert loaded.camera.fov[1] == pytest.approx(np.degrees(2 * np.arctan(240 / 510.0)))
    np.testing.assert_allclose(loaded.camera_transform, scene.camera.T_world_cam @ GL_FROM_CV, atol=1e-12)
    for obj in scene.objects:
        name = f"{obj.id:03d}_{obj.label.replace(' ', '_')}"
        T, geometry = loaded.graph[name]
        world = trimesh.transform_points(loaded.geometry[geometry].vertices, T)
        expected = obj.world_mesh().vertices
        # face-coloured meshes are split per corner: compare as point sets
        dist = np.linalg.norm(world[:, None, :] - expected[None, :, :], axis=2)
        assert dist.min(axis=1).max() < 1e-6 and dist.min(axis=0).max() < 1e-6


def test_glb_without_camera_background_or_objects(tmp_path):
    empty = write_glb(Scene(), tmp_path / "empty.glb")
    assert read_glb_scene(empty).objects == ()
    assert "buffers" not in glb_json(empty)
    one = Scene(objects=(SceneObject(1, "box", trimesh.creation.box()),))
    got = read_glb_scene(write_glb(one, tmp_path / "one.glb"))
    assert got.camera is None and got.background is None and got.floor is None
    np.testing.assert_allclose(got.objects[0].pose.matrix, np.eye(4), atol=0)


def test_glb_rejects_empty_mesh_and_broken_files(tmp_path):
    with pytest.raises(UnsupportedFormatError, match=r"scene.gltf: GLB scenes are written to .glb files, got '.gltf'"):
        write_glb(make_scene(), tmp_path / "scene.gltf")
    empty_mesh = Scene(objects=(SceneObject(4, "ghost", trimesh.Trimesh()),))
    with pytest.raises(InputError, match="object 4 .ghost. has an empty mesh"):
        write_glb(empty_mesh, tmp_path / "x.glb")
    assert not (tmp_path / "x.glb").exists()
    good = write_glb(make_scene(), tmp_path / "good.glb").read_bytes()
    (tmp_path / "cut.glb").write_bytes(good[:len(good) // 2])
    with pytest.raises(SceneFileError, match="cut.glb: GLB file is truncated"):
        read_glb_scene(tmp_path / "cut.glb")
    (tmp_path / "junk.glb").write_bytes(b"not a gltf at all")
    with pytest.raises(SceneFileError, match="junk.glb: neither a GLB nor glTF JSON"):
        read_glb_scene(tmp_path / "junk.glb")


def test_glb_face_colours_with_an_unused_vertex_round_trip(tmp_path):
    mesh = trimesh.Trimesh(np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0.25, 0.5, 0.75], [1, 1, 0]]),
                           np.array([[0, 1, 2], [1, 4, 2]]), process=False)
    mesh.visual.face_colors = np.array([[255, 0, 0, 255], [0, 0, 255, 128]], dtype=np.uint8)
    scene = Scene(objects=(SceneObject(5, "sheet", mesh),))
    got = read_glb_scene(write_glb(scene, tmp_path / "sheet.glb")).object(5).mesh
    np.testing.assert_allclose(got.vertices, mesh.vertices, atol=1e-7)  # vertex 3 is used by no face
    np.testing.assert_array_equal(got.faces, mesh.faces)
    np.testing.assert_array_equal(got.visual.face_colors, mesh.visual.face_colors)


# scripts/setup.sh installs the validator here when npm exists; GLTF_VALIDATOR_DIR points elsewhere
GLTF_VALIDATOR_DIR = Path(os.environ.get("GLTF_VALIDATOR_DIR", Path(__file__).parents[1] / ".tools" / "gltf-validator"))


@pytest.mark.skipif(not (GLTF_VALIDATOR_DIR / "node_modules" / "gltf-validator").is_dir(),
                    reason="no Khronos glTF validator: install npm and rerun scripts/setup.sh, or set "
                           "GLTF_VALIDATOR_DIR to a folder with node_modules/gltf-validator")
@pytest.mark.parametrize("which", ["full", "empty", "duck"])
def test_glb_passes_the_khronos_validator(tmp_path, which, duck):
    scene = {"full": make_scene, "empty": Scene, "duck": lambda: load_scene(duck)}[which]()
    path = write_glb(scene, tmp_path / "scene.glb")
    script = ("const v=require('gltf-validator');const fs=require('fs');"
              "v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[1])))"
              ".then(r=>console.log(JSON.stringify(r.issues)));")
    result = subprocess.run(["node", "-e", script, str(path)], capture_output=True, text=True, check=True,
                            cwd=GLTF_VALIDATOR_DIR)
    issues = json.loads(result.stdout)
    assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, issues["messages"]


def test_duck_loads_as_a_foreign_glb(duck):
    scene = load_scene(duck)
    assert scene.ids == [1]
    obj = scene.objects[0]
    assert obj.label == "LOD3spShape"  # the node has no name: the mesh name is used
    assert obj.pose.is_uniform and obj.pose.s == pytest.approx(0.01, rel=1e-6)
    assert scene.camera is None
    reference = trimesh.load_scene(duck).to_mesh()  # trimesh flattens the node graph itself
    np.testing.assert_allclose(obj.world_mesh().vertices, reference.vertices, atol=1e-6)
    assert obj.mesh.visual.kind == "vertex"  # the texture is sampled to vertex colours


def test_glb_without_scene_extras_keeps_node_ids_and_background(tmp_path):
    """Tools that re-export a GLB often keep node extras but drop the scene's: ids survive."""
    scene = make_scene()
    doc, blob = unpack_glb(write_glb(scene, tmp_path / "scene.glb").read_bytes())
    del doc["scenes"][0]["extras"]
    (tmp_path / "stripped.glb").write_bytes(glb_module.pack_glb(doc, blob))
    got = read_glb_scene(tmp_path / "stripped.glb")
    assert got.ids == [3, 7, 12] and [o.label for o in got.objects] == ["chair", "lamp", "table top"]
    for a, b in zip(scene.objects, got.objects):
        np.testing.assert_allclose(b.world_mesh().vertices, a.world_mesh().vertices, atol=1e-6)
        np.testing.assert_array_equal(b.mesh.faces, a.mesh.faces)
    np.testing.assert_array_equal(got.object(3).mesh.visual.face_colors, scene.object(3).mesh.visual.face_colors)
    np.testing.assert_allclose(got.background.vertices, scene.background.vertices, atol=1e-6)
    del doc["nodes"][1]["extras"]  # one untagged object: back to plain foreign numbering
    (tmp_path / "mixed.glb").write_bytes(glb_module.pack_glb(doc, blob))
    assert sorted(o.label for o in read_glb_scene(tmp_path / "mixed.glb").objects) == \
        ["003_chair", "007_lamp", "012_table_top", "background"]


def test_foreign_glb_with_mirror_and_per_axis_scale(tmp_path):
    """A hand-made glTF: node 'crate' mirrored with per-axis scale under a translated parent."""
    source = trimesh.Scene()
    box = trimesh.creation.box((1.0, 2.0, 3.0))
    T_child = np.eye(4)
    T_child[:3, :3] = rotation_y(0.5) @ np.diag([-2.0, 0.5, 1.5])
    source.add_geometry(box, node_name="crate", geom_name="crate_mesh", transform=T_child)
    path = tmp_path / "foreign.glb"
    path.write_bytes(source.export(file_type="glb"))
    scene = read_glb_scene(path)
    crate = scene.object(1)
    assert crate.label == "crate" and not crate.pose.is_uniform
    np.testing.assert_allclose(sorted(crate.pose.scale_xyz), [0.5, 1.5, 2.0], atol=1e-6)
    np.testing.assert_allclose(crate.world_mesh().vertices, trimesh.transform_points(box.vertices, T_child),
                               atol=1e-6)
    assert crate.world_mesh().volume > 0  # the mirror was folded in with the winding fixed


# ------------------------------------------------------------------------------------------ USD


@pytest.mark.parametrize("suffix", [".usda", ".usdc"])
def test_usd_round_trip_keeps_everything(tmp_path, suffix):
    scene = make_scene()
    path = write_usd(scene, tmp_path / f"scene{suffix}")
    head = path.read_bytes()[:9]
    assert head == b"#usda 1.0" if suffix == ".usda" else head[:8] == b"PXR-USDC"
    assert_same_scene(scene, read_usd_scene(path))
    assert_same_scene(scene, load_scene(path))


@pytest.mark.parametrize("suffix", [".usda", ".usdc"])
def test_usd_stage_layout_read_with_pxr(tmp_path, suffix):
    from pxr import Usd, UsdGeom

    scene = make_scene()
    stage = Usd.Stage.Open(str(write_usd(scene, tmp_path / f"scene{suffix}")))
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y
    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert stage.GetDefaultPrim().GetPath().pathString == "/Scene"
    for obj, name in zip(scene.objects, ["obj_003_chair", "obj_007_lamp", "obj_012_table_top"]):
        prim = stage.GetPrimAtPath(f"/Scene/Objects/{name}")
        assert prim.IsA(UsdGeom.Xform)
        assert prim.GetAttribute("sceneforge:id").Get() == obj.id
        assert prim.GetAttribute("sceneforge:label").Get() == obj.label
        local = np.array(UsdGeom.Xformable(prim).GetLocalTransformation(), dtype=np.float64).T
        np.testing.assert_allclose(local, obj.pose.matrix, rtol=0, atol=1e-12)
        mesh = UsdGeom.Mesh(stage.GetPrimAtPath(f"/Scene/Objects/{name}/mesh"))
        np.testing.assert_allclose(np.array(mesh.GetPointsAttr().Get()), obj.mesh.vertices, atol=1e-6)
        assert list(mesh.GetFaceVertexIndicesAttr().Get()) == obj.mesh.faces.reshape(-1).tolist()
    colour = UsdGeom.Mesh(stage.GetPrimAtPath("/Scene/Objects/obj_003_chair/mesh")).GetDisplayColorPrimvar()
    assert colour.GetInterpolation() == UsdGeom.Tokens.uniform
    assert UsdGeom.Mesh(stage.GetPrimAtPath("/Scene/Background"))
    camera_prim = stage.GetPrimAtPath("/Scene/Camera")
    assert camera_prim.IsA(UsdGeom.Camera)
    T_world_usdcam = np.array(UsdGeom.Xformable(camera_prim).GetLocalTransformation()).T
    np.testing.assert_allclose(T_world_usdcam, scene.camera.T_world_cam @ GL_FROM_CV, atol=1e-12)
    # the intrinsics follow from the camera attributes alone (float32 attributes: ~1e-7 relative)
    derived = intrinsics_from_usd(read_usd_camera_params(stage), 640, 480)
    np.testing.assert_allclose(derived.K, scene.camera.K, rtol=1e-6)


@pytest.mark.parametrize("suffix", [".usda", ".usdc"])
def test_usd_passes_the_usd_validators(tmp_path, suffix):
    """usd-core's own validators (stage metadata, encapsulation, attribute types, ...)."""
    from pxr import Usd, UsdGeom, UsdValidation

    validators = UsdValidation.ValidationRegistry().GetOrLoadAllValidators()
    context = UsdValidation.ValidationContext(validators)
    stage = Usd.Stage.Open(str(write_usd(make_scene(), tmp_path / f"scene{suffix}")))
    assert [e.GetMessage() for e in context.Validate(stage)] == []
    bare = Usd.Stage.CreateInMemory()  # the same validators do flag a stage without metadata
    UsdGeom.Mesh.Define(bare, "/mesh")
    assert {e.GetName() for e in context.Validate(bare)} >= {"MissingMetersPerUnitMetadata", "MissingUpAxisMetadata"}


def test_usd_camera_projects_like_the_opencv_camera(tmp_path):
    """USD's own frustum (Gf.Camera) projects points to the same pixels as K: an independent check
    of the focal length, apertures, offsets and the axis flip."""
    from pxr import Usd, UsdGeom

    scene = make_scene()
    camera = scene.camera
    stage = Usd.Stage.Open(str(write_usd(scene, tmp_path / "scene.usda")))
    frustum = UsdGeom.Camera(stage.GetPrimAtPath("/Scene/Camera")).GetCamera(Usd.TimeCode.Default()).frustum
    view, projection = np.array(frustum.ComputeViewMatrix()), np.array(frustum.ComputeProjectionMatrix())
    points_cam = np.array([[0.3, -0.2, 2.0], [-0.5, 0.4, 3.0], [0.0, 0.0, 1.0], [1.1, 0.7, 1.5]])
    points_world = points_cam @ camera.T_world_cam[:3, :3].T + camera.T_world_cam[:3, 3]
    clip = np.c_[points_world, np.ones(len(points_world))] @ view @ projection  # USD: row vectors
    ndc = clip[:, :3] / clip[:, 3:]
    usd_pixels = np.c_[(ndc[:, 0] + 1) / 2 * camera.width - 0.5, (1 - ndc[:, 1]) / 2 * camera.height - 0.5]
    opencv = points_cam @ camera.K.T
    np.testing.assert_allclose(usd_pixels, opencv[:, :2] / opencv[:, 2:], atol=1e-4)


def test_usd_camera_params_known_answers():
    centred = Camera.from_fov(640, 480, hfov_deg=90.0)  # principal point at ((W-1)/2, (H-1)/2)
    params = usd_camera_params(centred)
    assert params.horizontal_aperture == 36.0
    assert params.focal_length == pytest.approx(18.0)  # 90 degrees: focal = aperture / 2
    assert params.vertical_aperture == pytest.approx(36.0 * 480 / 640)
    assert params.horizontal_aperture_offset == pytest.approx(0.0, abs=1e-12)
    assert params.vertical_aperture_offset == pytest.approx(0.0, abs=1e-12)
    shifted = Camera.from_intrinsics(320.0, 320.0, 319.5 + 64.0, 239.5 + 48.0, 640, 480)
    params = usd_camera_params(shifted)
    # principal point 64 px right of centre: the window (right of the axis in OpenCV) moves left
    assert params.horizontal_aperture_offset == pytest.approx(-64.0 * 36.0 / 640)
    assert params.vertical_aperture_offset == pytest.approx(48.0 * 36.0 / 640)  # y down -> USD y up
    np.testing.assert_allclose(intrinsics_from_usd(params, 640, 480).K, shifted.K, atol=1e-9)


def test_usd_rejects_unknown_suffix_and_reads_foreign_stage(tmp_path):
    from pxr import Usd, UsdGeom

    with pytest.raises(UnsupportedFormatError, match="unknown USD type '.obj'"):
        write_usd(make_scene(), tmp_path / "scene.obj")
    stage = Usd.Stage.CreateNew(str(tmp_path / "foreign.usda"))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 0.01)
    quad = UsdGeom.Mesh.Define(stage, "/World/quad")
    quad.CreatePointsAttr([(0, 0, 0), (100, 0, 0), (100, 100, 0), (0, 100, 0)])
    quad.CreateFaceVertexCountsAttr([4])
    quad.CreateFaceVertexIndicesAttr([0, 1, 2, 3])
    stage.GetRootLayer().Save()
    scene = read_usd_scene(tmp_path / "foreign.usda")
    quad_object = scene.object(1)
    assert quad_object.label == "quad" and len(quad_object.mesh.faces) == 2
    # centimetres, z up -> metres, y up: (100, 100, 0) lands at (1, 0, -1)
    np.testing.assert_allclose(quad_object.world_mesh().vertices[2], [1.0, 0.0, -1.0], atol=1e-12)


# ------------------------------------------------------------------------------ scene folders


def test_save_scene_writes_the_output_folder_and_loads_back(tmp_path):
    scene = make_scene()
    out = save_scene(scene, tmp_path / "out", extra={"report.json": b"{}\n", "sub/preview.png": b"png"})
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert names == ["background.ply", "objects/003_chair.ply", "objects/007_lamp.ply",
                     "objects/012_table_top.ply", "report.json", "scene.glb", "scene.json", "scene.usda",
                     "sub/preview.png"]
    assert_same_scene(scene, load_scene(out), colours=False)  # PLY keeps colours its own way
    assert_same_scene(scene, load_scene(out / "scene.json"), colours=False)
    assert_same_scene(scene, load_scene(out / "scene.glb"))
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left behind


def test_save_scene_formats_and_arguments(tmp_path):
    scene = make_scene()
    out = save_scene(scene, tmp_path / "glb_only", formats=("glb",))
    assert sorted(p.name for p in out.iterdir()) == ["scene.glb"]
    assert_same_scene(scene, load_scene(out))  # a folder with only scene.glb loads through it
    out = save_scene(scene, tmp_path / "usdc_only", formats=("usdc",))
    assert_same_scene(scene, load_scene(out))
    with pytest.raises(InputError, match=r"unknown scene formats \['obj'\]"):
        save_scene(scene, tmp_path / "bad", formats=("glb", "obj"))
    with pytest.raises(InputError, match="must be a relative path inside"):
        save_scene(scene, tmp_path / "bad", extra={"../escape.txt": b"x"})
    assert not (tmp_path / "bad").exists() and not (tmp_path / "escape.txt").exists()
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("keep me")
    with pytest.raises(InputError, match="not a scene output folder; refusing to replace it"):
        save_scene(scene, precious)
    assert (precious / "thesis.tex").read_text() == "keep me"


def test_failing_save_keeps_the_previous_folder(tmp_path, monkeypatch):
    first = make_scene()
    out = save_scene(first, tmp_path / "out")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken(scene):
        raise RuntimeError("disk full")

    monkeypatch.setattr(glb_module, "scene_to_glb_bytes", broken)
    second = Scene(objects=first.objects[:1])
    with pytest.raises(RuntimeError, match="disk full"):
        save_scene(second, out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    with pytest.raises(RuntimeError, match="disk full"):
        save_scene(second, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()
    with pytest.raises(RuntimeError, match="disk full"):
        save_scene(first, tmp_path / "late", formats=("json",), write_more=lambda folder: broken(None))
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failing_file_export_keeps_the_previous_file(tmp_path, monkeypatch):
    from pxr import Sdf

    scene = make_scene()
    glb = write_glb(scene, tmp_path / "scene.glb")
    usd = write_usd(scene, tmp_path / "scene.usda")
    old_glb, old_usd = glb.read_bytes(), usd.read_bytes()
    monkeypatch.setattr(glb_module, "scene_to_glb_bytes", lambda s: (_ for _ in ()).throw(OSError("no space")))
    with pytest.raises(OSError, match="no space"):
        write_glb(Scene(), glb)
    monkeypatch.setattr(Sdf.Layer, "Export", lambda self, *a, **k: False)
    with pytest.raises(SceneFileError, match="scene.usda: USD export failed"):
        write_usd(Scene(), usd)
    assert glb.read_bytes() == old_glb and usd.read_bytes() == old_usd
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.glb", "scene.usda"]


def test_load_scene_dispatch_errors(tmp_path):
    (tmp_path / "mesh.obj").write_text("v 0 0 0\n")
    with pytest.raises(UnsupportedFormatError, match=r"mesh.obj: unknown scene type '.obj'"):
        load_scene(tmp_path / "mesh.obj")
    with pytest.raises(SceneFileError, match="missing.glb: scene file not found"):
        load_scene(tmp_path / "missing.glb")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SceneFileError, match="empty: folder holds no scene file"):
        load_scene(tmp_path / "empty")
    with pytest.raises(UnsupportedFormatError, match="cannot export to '.fbx'"):
        export_scene(make_scene(), tmp_path / "scene.fbx")


# ------------------------------------------------------------------------------- point clouds


@pytest.mark.parametrize("with_colors", [False, True])
@pytest.mark.parametrize("with_normals", [False, True])
def test_point_cloud_round_trip(tmp_path, with_colors, with_normals):
    rng = np.random.default_rng(1)
    points = rng.uniform(-3.0, 3.0, (500, 3))
    colors = rng.integers(0, 256, (500, 3)).astype(np.uint8) if with_colors else None
    normals = rng.normal(size=(500, 3)) if with_normals else None
    path = save_point_cloud(tmp_path / "cloud.ply", points, colors, normals)
    cloud = load_point_cloud(path)
    np.testing.assert_allclose(cloud.points, points, rtol=0, atol=1e-6)
    if with_colors:
        np.testing.assert_array_equal(cloud.colors, colors)
    else:
        assert cloud.colors is None
    if with_normals:
        np.testing.assert_allclose(cloud.normals, normals, rtol=0, atol=1e-6)
    else:
        assert cloud.normals is None
    # an independent reader agrees
    import open3d as o3d

    o3d_cloud = o3d.io.read_point_cloud(str(path))
    np.testing.assert_allclose(np.asarray(o3d_cloud.points), points, atol=1e-6)
    assert o3d_cloud.has_colors() == with_colors and o3d_cloud.has_normals() == with_normals
    if with_colors:
        np.testing.assert_allclose(np.asarray(o3d_cloud.colors) * 255.0, colors, atol=1e-6)


def test_point_cloud_errors_and_atomicity(tmp_path):
    points = np.zeros((4, 3))
    with pytest.raises(InputError, match=r"points must have shape \(N, 3\), got \(4, 2\)"):
        save_point_cloud(tmp_path / "a.ply", np.zeros((4, 2)))
    with pytest.raises(InputError, match=r"colors must be uint8 RGB in 0..255, got int64 in \[0, 300\]"):
        save_point_cloud(tmp_path / "a.ply", points, colors=np.array([[0, 0, 0]] * 3 + [[300, 0, 0]]))
    with pytest.raises(InputError, match=r"normals must have shape \(4, 3\), got \(3, 3\)"):
        save_point_cloud(tmp_path / "a.ply", points, normals=np.zeros((3, 3)))
    with pytest.raises(InputError, match="a.ply: points contain NaN"):
        save_point_cloud(tmp_path / "a.ply", np.full((2, 3), np.nan))
    with pytest.raises(UnsupportedFormatError, match="point clouds are written as .ply, got '.xyz'"):
        save_point_cloud(tmp_path / "a.xyz", points)
    assert list(tmp_path.iterdir()) == []
    path = save_point_cloud(tmp_path / "a.ply", points)
    (tmp_path / "cut.ply").write_bytes(path.read_bytes()[:-10])
    with pytest.raises(SceneFileError, match="cut.ply: PLY file is truncated"):
        load_point_cloud(tmp_path / "cut.ply")


def test_point_cloud_reads_ascii_bunny(real_dir):
    cloud = load_point_cloud(real_dir / "meshes" / "bunny.ply")
    assert len(cloud) == 8171 and cloud.colors is None and cloud.normals is None
    np.testing.assert_allclose(cloud.points[0], [-0.036872, 0.127727, 0.00440925], rtol=1e-6)


# ---------------------------------------------------------------------------------------- CLI


def test_cli_export_converts_between_formats(tmp_path):
    from typer.testing import CliRunner

    from sceneforge.cli import app

    scene = make_scene()
    save_scene(scene, tmp_path / "src", formats=("json",))
    runner = CliRunner()
    for target in ["scene.glb", "scene.usdc", "folder"]:
        result = runner.invoke(app, ["export", str(tmp_path / "src" / "scene.json"), "--out", str(tmp_path / target)])
        assert result.exit_code == 0, result.output
        assert "wrote" in result.output and "3 objects" in result.output
        assert_same_scene(scene, load_scene(tmp_path / target), colours=False)


def test_cli_export_error_exits_with_code_2(tmp_path):
    save_scene(Scene(objects=(SceneObject(1, "box", trimesh.creation.box()),)), tmp_path / "src", formats=("glb",))
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    result = subprocess.run([sys.executable, "-m", "sceneforge.cli", "export", str(tmp_path / "src"),
                             "--out", str(tmp_path / "scene.fbx")], capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert "cannot export to '.fbx'" in result.stderr
