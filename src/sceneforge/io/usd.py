"""USD scene export and loading through usd-core (``pxr``); .usda (text) or .usdc/.usd (crate).

Stage layout (Y up, metersPerUnit = 1, default prim /Scene)::

    /Scene/Objects/obj_003_chair         Xform, one matrix op = T_world_obj (scale included),
                                         custom attributes sceneforge:id, :label, :perAxisScale, :confidence
    /Scene/Objects/obj_003_chair/mesh    Mesh: points, faceVertexCounts, faceVertexIndices,
                                         primvars:displayColor (vertex or uniform = per face)
    /Scene/Background                    Mesh in world coordinates (when present)
    /Scene/Camera                        Camera, matrix op = T_world_cam @ diag(1, -1, -1, 1)

USD cameras look down -Z with +Y up like glTF, hence the OpenCV flip. The horizontal aperture is
36 (the usual full-frame millimetres; only ratios matter) and the focal length, vertical aperture
and aperture offsets follow from fx, fy, cx, cy (:func:`usd_camera_params`). The root layer's
``customLayerData["sceneforge"]`` holds a JSON document with the exact intrinsics, floor,
normalisation and metadata, so :func:`read_usd_scene` returns the same :class:`Scene`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from sceneforge.errors import InputError, MissingDependencyError, SceneFileError, UnsupportedFormatError
from sceneforge.io.atomic import atomic_path
from sceneforge.io.colors import MeshColors, apply_colors, mesh_colors
from sceneforge.io.glb import GL_FROM_CV, split_node_pose
from sceneforge.io.scene_json import SCENE_FORMAT, SCENE_VERSION, object_mesh_name
from sceneforge.types import Camera, Normalisation, Plane, Scene, SceneObject, Similarity

USD_SUFFIXES = (".usda", ".usdc", ".usd")
ROOT_PATH = "/Scene"
OBJECTS_PATH = "/Scene/Objects"
BACKGROUND_PATH = "/Scene/Background"
CAMERA_PATH = "/Scene/Camera"
LAYER_DATA_KEY = "sceneforge"
HORIZONTAL_APERTURE = 36.0
_CLIPPING_RANGE = (0.01, 1000.0)


def _pxr() -> Any:
    try:
        import pxr  # noqa: F401
        from pxr import Gf, Sdf, Usd, UsdGeom, Vt
    except ImportError as exc:
        raise MissingDependencyError("usd-core", purpose="USD export and loading") from exc
    return Usd, UsdGeom, Sdf, Gf, Vt


# ----------------------------------------------------------------------------------------------
# Camera intrinsics <-> USD camera attributes


@dataclass(frozen=True)
class UsdCameraParams:
    """USD camera attributes of a pinhole camera (lengths in the same unit, e.g. millimetres)."""

    focal_length: float
    horizontal_aperture: float
    vertical_aperture: float
    horizontal_aperture_offset: float
    vertical_aperture_offset: float


def usd_camera_params(camera: Camera, horizontal_aperture: float = HORIZONTAL_APERTURE) -> UsdCameraParams:
    """USD attributes that project like ``camera``.

    With pixel pitch p = aperture / width: focal = fx p, vertical aperture = focal height / fy.
    OpenCV puts integer pixel coordinates at pixel centres, so the image window's centre is
    (W/2 - 0.5, H/2 - 0.5); the offsets move the window from the optical axis to it (USD y is up).
    """
    pitch_x = horizontal_aperture / camera.width
    focal = camera.fx * pitch_x
    pitch_y = focal / camera.fy
    return UsdCameraParams(
        focal_length=focal,
        horizontal_aperture=horizontal_aperture,
        vertical_aperture=camera.height * pitch_y,
        horizontal_aperture_offset=(camera.width / 2.0 - 0.5 - camera.cx) * pitch_x,
        vertical_aperture_offset=(camera.cy + 0.5 - camera.height / 2.0) * pitch_y,
    )


def intrinsics_from_usd(params: UsdCameraParams, width: int, height: int) -> Camera:
    """Inverse of :func:`usd_camera_params` for an image of ``width`` x ``height`` pixels."""
    pitch_x = params.horizontal_aperture / width
    pitch_y = params.vertical_aperture / height
    fx = params.focal_length / pitch_x
    fy = params.focal_length / pitch_y
    cx = width / 2.0 - 0.5 - params.horizontal_aperture_offset / pitch_x
    cy = params.vertical_aperture_offset / pitch_y - 0.5 + height / 2.0
    return Camera.from_intrinsics(fx, fy, cx, cy, width, height)


# ----------------------------------------------------------------------------------------------
# Writing


def write_usd(scene: Scene, path: str | Path) -> Path:
    """Write ``scene`` as a USD stage, atomically; .usda gives text, .usdc/.usd binary crate."""
    path = Path(path)
    if path.suffix.lower() not in USD_SUFFIXES:
        raise UnsupportedFormatError(path, f"unknown USD type {path.suffix!r}; "
                                           f"expected one of {', '.join(USD_SUFFIXES)}")
    stage = scene_to_usd_stage(scene)
    with atomic_path(path) as tmp:
        if not stage.GetRootLayer().Export(str(tmp)):
            raise SceneFileError(path, "USD export failed")
    return path


def scene_to_usd_stage(scene: Scene) -> Any:
    """An in-memory ``Usd.Stage`` holding ``scene`` (see the module docstring for the layout)."""
    Usd, UsdGeom, Sdf, _, _ = _pxr()
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    root = UsdGeom.Xform.Define(stage, ROOT_PATH)
    stage.SetDefaultPrim(root.GetPrim())
    UsdGeom.Scope.Define(stage, OBJECTS_PATH)
    objects_doc = []
    for obj in scene.objects:
        prim_path = f"{OBJECTS_PATH}/{usd_object_name(obj)}"
        xform = UsdGeom.Xform.Define(stage, prim_path)
        _set_matrix(xform, obj.pose.matrix)
        prim = xform.GetPrim()
        prim.CreateAttribute("sceneforge:id", Sdf.ValueTypeNames.Int, custom=True).Set(int(obj.id))
        prim.CreateAttribute("sceneforge:label", Sdf.ValueTypeNames.String, custom=True).Set(obj.label)
        prim.CreateAttribute("sceneforge:perAxisScale", Sdf.ValueTypeNames.Bool, custom=True).Set(
            not obj.pose.is_uniform)
        if obj.confidence is not None:
            prim.CreateAttribute("sceneforge:confidence", Sdf.ValueTypeNames.Double, custom=True).Set(
                float(obj.confidence))
        _define_mesh(stage, f"{prim_path}/mesh", obj.mesh, f"object {obj.id} ({obj.label})")
        objects_doc.append({"prim": prim_path, "id": obj.id, "label": obj.label,
                            "per_axis_scale": not obj.pose.is_uniform, "confidence": obj.confidence})
    if scene.background is not None:
        _define_mesh(stage, BACKGROUND_PATH, scene.background, "background")
    if scene.camera is not None:
        _define_camera(stage, scene.camera)
    from sceneforge.io.scene_json import json_default

    doc = {"format": SCENE_FORMAT, "version": SCENE_VERSION, "objects": objects_doc,
           "camera": None if scene.camera is None else scene.camera.to_dict(),
           "floor": None if scene.floor is None else scene.floor.to_dict(),
           "normalisation": None if scene.normalisation is None else scene.normalisation.to_dict(),
           "metadata": scene.metadata}
    stage.GetRootLayer().customLayerData = {LAYER_DATA_KEY: json.dumps(doc, default=json_default, allow_nan=False)}
    return stage


def usd_object_name(obj: SceneObject) -> str:
    """Prim name of an object: ``obj_`` + its file stem (USD names cannot start with a digit)."""
    return "obj_" + re.sub(r"[^A-Za-z0-9_]", "_", Path(object_mesh_name(obj)).stem)


def _set_matrix(xformable: Any, T: np.ndarray) -> None:
    """One double-precision matrix op; USD matrices act on row vectors, hence the transpose."""
    _, UsdGeom, _, Gf, _ = _pxr()
    op = xformable.AddTransformOp(UsdGeom.XformOp.PrecisionDouble)
    op.Set(Gf.Matrix4d(np.asarray(T, dtype=np.float64).T.tolist()))


def _define_mesh(stage: Any, prim_path: str, mesh: trimesh.Trimesh, what: str) -> Any:
    _, UsdGeom, Sdf, _, Vt = _pxr()
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if len(vertices) == 0 or len(faces) == 0:
        raise InputError(None, f"{what} has an empty mesh ({len(vertices)} vertices, {len(faces)} faces)")
    usd_mesh = UsdGeom.Mesh.Define(stage, prim_path)
    usd_mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(vertices.astype(np.float32)))
    usd_mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(faces), 3, dtype=np.int32)))
    usd_mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(faces.reshape(-1).astype(np.int32)))
    usd_mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    usd_mesh.CreateExtentAttr(Vt.Vec3fArray.FromNumpy(
        np.stack([vertices.min(axis=0), vertices.max(axis=0)]).astype(np.float32)))
    colors = mesh_colors(mesh)
    if colors is not None:
        interpolation = UsdGeom.Tokens.uniform if colors.per_face else UsdGeom.Tokens.vertex
        rgba = colors.rgba.astype(np.float32) / 255.0
        primvar = usd_mesh.CreateDisplayColorPrimvar(interpolation)
        primvar.Set(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(rgba[:, :3])))
        if np.any(colors.rgba[:, 3] < 255):
            usd_mesh.CreateDisplayOpacityPrimvar(interpolation).Set(
                Vt.FloatArray.FromNumpy(np.ascontiguousarray(rgba[:, 3])))
    return usd_mesh


def _define_camera(stage: Any, camera: Camera) -> Any:
    _, UsdGeom, _, Gf, _ = _pxr()
    usd_camera = UsdGeom.Camera.Define(stage, CAMERA_PATH)
    _set_matrix(usd_camera, camera.T_world_cam @ GL_FROM_CV)
    params = usd_camera_params(camera)
    usd_camera.CreateProjectionAttr(UsdGeom.Tokens.perspective)
    usd_camera.CreateFocalLengthAttr(params.focal_length)
    usd_camera.CreateHorizontalApertureAttr(params.horizontal_aperture)
    usd_camera.CreateVerticalApertureAttr(params.vertical_aperture)
    usd_camera.CreateHorizontalApertureOffsetAttr(params.horizontal_aperture_offset)
    usd_camera.CreateVerticalApertureOffsetAttr(params.vertical_aperture_offset)
    usd_camera.CreateClippingRangeAttr(Gf.Vec2f(*_CLIPPING_RANGE))
    prim = usd_camera.GetPrim()
    prim.SetCustomDataByKey("sceneforge:imageWidth", int(camera.width))
    prim.SetCustomDataByKey("sceneforge:imageHeight", int(camera.height))
    return usd_camera


# ----------------------------------------------------------------------------------------------
# Reading


def read_usd_scene(path: str | Path) -> Scene:
    """Load a scene from a USD file.

    A sceneforge stage comes back with ids, labels, scale kind, intrinsics, floor and metadata.
    Any other stage becomes one object per Mesh prim (world transform decomposed as for foreign
    GLBs; metersPerUnit and a Z-up axis converted to metres and Y up), ids 1..N, labels from
    prim names, no camera.
    """
    Usd, UsdGeom, _, _, _ = _pxr()
    path = Path(path)
    if not path.is_file():
        raise SceneFileError(path, "USD file not found")
    try:
        stage = Usd.Stage.Open(str(path))
    except Exception as exc:  # pxr raises Tf.ErrorException for unreadable layers
        raise SceneFileError(path, f"cannot open USD stage ({exc})") from exc
    if stage is None:
        raise SceneFileError(path, "cannot open USD stage")
    raw = stage.GetRootLayer().customLayerData.get(LAYER_DATA_KEY)
    if raw is None:
        return _read_foreign_stage(stage, path)
    try:
        doc = json.loads(raw)
        if doc.get("format") != SCENE_FORMAT or doc.get("version") != SCENE_VERSION:
            raise SceneFileError(path, f"unsupported sceneforge USD data (format {doc.get('format')!r}, "
                                       f"version {doc.get('version')!r})")
        return _read_own_stage(stage, doc)
    except SceneFileError:
        raise
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SceneFileError(path, f"malformed sceneforge USD ({type(exc).__name__}: {exc})") from exc


def _world_matrix(prim: Any) -> np.ndarray:
    Usd, UsdGeom, _, _, _ = _pxr()
    M = UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(Usd.TimeCode.Default())
    return np.array(M, dtype=np.float64).T


def _read_own_stage(stage: Any, doc: dict[str, Any]) -> Scene:
    _, UsdGeom, _, _, _ = _pxr()
    objects = []
    for entry in doc["objects"]:
        prim = stage.GetPrimAtPath(entry["prim"])
        mesh_prim = stage.GetPrimAtPath(entry["prim"] + "/mesh")
        if not prim.IsValid() or not mesh_prim.IsValid():
            raise KeyError(f"prim {entry['prim']} or its mesh is missing")
        T_world_obj = _world_matrix(prim)
        mesh = read_usd_mesh(mesh_prim)
        T_obj_mesh = np.linalg.inv(T_world_obj) @ _world_matrix(mesh_prim)
        if not np.allclose(T_obj_mesh, np.eye(4), rtol=0, atol=1e-12):
            mesh.apply_transform(T_obj_mesh)
        pose = Similarity.from_matrix(T_world_obj, per_axis=bool(entry.get("per_axis_scale")))
        objects.append(SceneObject(int(entry["id"]), str(entry["label"]), mesh, pose, entry.get("confidence")))
    background = None
    background_prim = stage.GetPrimAtPath(BACKGROUND_PATH)
    if background_prim.IsValid():
        background = read_usd_mesh(background_prim)
        background.apply_transform(_world_matrix(background_prim))
    camera = None
    if doc.get("camera") is not None:
        camera = Camera.from_dict(doc["camera"])
        camera_prim = stage.GetPrimAtPath(CAMERA_PATH)
        if camera_prim.IsValid():
            camera = camera.with_pose(_world_matrix(camera_prim) @ GL_FROM_CV)
    return Scene(
        objects=tuple(objects), camera=camera,
        floor=None if doc.get("floor") is None else Plane.from_dict(doc["floor"]),
        background=background,
        normalisation=None if doc.get("normalisation") is None else Normalisation.from_dict(doc["normalisation"]),
        metadata=doc.get("metadata") or {},
    )


def read_usd_camera_params(stage: Any, prim_path: str = CAMERA_PATH) -> UsdCameraParams:
    """The pinhole attributes of a USD camera prim."""
    _, UsdGeom, _, _, _ = _pxr()
    cam = UsdGeom.Camera(stage.GetPrimAtPath(prim_path))
    return UsdCameraParams(
        focal_length=float(cam.GetFocalLengthAttr().Get()),
        horizontal_aperture=float(cam.GetHorizontalApertureAttr().Get()),
        vertical_aperture=float(cam.GetVerticalApertureAttr().Get()),
        horizontal_aperture_offset=float(cam.GetHorizontalApertureOffsetAttr().Get()),
        vertical_aperture_offset=float(cam.GetVerticalApertureOffsetAttr().Get()),
    )


def read_usd_mesh(prim: Any) -> trimesh.Trimesh:
    """A USD Mesh prim in its own frame as a triangle mesh (polygons fan-triangulated); displayColor
    with vertex or uniform interpolation becomes vertex or face colours."""
    _, UsdGeom, _, _, _ = _pxr()
    usd_mesh = UsdGeom.Mesh(prim)
    points = np.array(usd_mesh.GetPointsAttr().Get(), dtype=np.float64).reshape(-1, 3)
    counts = np.array(usd_mesh.GetFaceVertexCountsAttr().Get(), dtype=np.int64)
    indices = np.array(usd_mesh.GetFaceVertexIndicesAttr().Get(), dtype=np.int64)
    faces, source_face = _fan_triangulate(counts, indices)
    mesh = trimesh.Trimesh(points, faces, process=False, maintain_order=True)
    return apply_colors(mesh, _read_display_colors(usd_mesh, len(points), len(counts), source_face))


def _fan_triangulate(counts: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Polygons (counts, flat indices) -> (T, 3) triangles and the polygon each comes from."""
    if np.all(counts == 3):
        return indices.reshape(-1, 3), np.arange(len(counts))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    triangles, source = [], []
    for polygon, (start, count) in enumerate(zip(starts, counts)):
        for k in range(1, count - 1):
            triangles.append(indices[[start, start + k, start + k + 1]])
            source.append(polygon)
    return np.array(triangles, dtype=np.int64).reshape(-1, 3), np.array(source, dtype=np.int64)


def _read_display_colors(usd_mesh: Any, n_points: int, n_polygons: int, source_face: np.ndarray
                         ) -> MeshColors | None:
    _, UsdGeom, _, _, _ = _pxr()
    primvar = usd_mesh.GetDisplayColorPrimvar()
    if not primvar or not primvar.HasValue():
        return None
    rgb = np.array(primvar.ComputeFlattened(), dtype=np.float64).reshape(-1, 3)
    interpolation = primvar.GetInterpolation()
    opacity_primvar = usd_mesh.GetDisplayOpacityPrimvar()
    alpha = np.ones(len(rgb))
    if opacity_primvar and opacity_primvar.HasValue() and opacity_primvar.GetInterpolation() == interpolation:
        alpha = np.array(opacity_primvar.ComputeFlattened(), dtype=np.float64).reshape(-1)
    rgba = np.clip(np.round(np.concatenate([rgb, alpha[:, None]], axis=1) * 255.0), 0, 255).astype(np.uint8)
    if interpolation in (UsdGeom.Tokens.vertex, UsdGeom.Tokens.varying) and len(rgba) == n_points:
        return MeshColors(False, rgba)
    if interpolation == UsdGeom.Tokens.uniform and len(rgba) == n_polygons:
        return MeshColors(True, rgba[source_face])
    if interpolation == UsdGeom.Tokens.constant and len(rgba) == 1:
        return MeshColors(False, np.repeat(rgba, n_points, axis=0))
    return None  # faceVarying colours have no trimesh form without splitting vertices


def _read_foreign_stage(stage: Any, path: Path) -> Scene:
    Usd, UsdGeom, _, _, _ = _pxr()
    T_y_up = np.eye(4)
    if UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.z:  # (x, y, z) z-up -> (x, z, -y) y-up
        T_y_up[:3, :3] = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]
    T_y_up[:3, :3] *= float(UsdGeom.GetStageMetersPerUnit(stage))
    objects = []
    for prim in stage.Traverse():
        if not prim.IsA(UsdGeom.Mesh):
            continue
        mesh = read_usd_mesh(prim)
        if len(mesh.faces) == 0:
            continue
        mesh, pose = split_node_pose(mesh, T_y_up @ _world_matrix(prim))
        objects.append(SceneObject(len(objects) + 1, prim.GetName(), mesh, pose))
    if not objects:
        raise SceneFileError(path, "USD stage holds no mesh")
    return Scene(objects=tuple(objects), metadata={"source": str(path)})
