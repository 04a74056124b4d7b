"""GLB (binary glTF 2.0) scene export and loading.

Layout of a sceneforge GLB::

    node "003_chair"    matrix = T_world_obj (scale included), mesh = canonical mesh (+ COLOR_0)
    node "background"   world mesh, identity transform (when the scene has one)
    node "camera"       perspective camera, matrix = T_world_cam @ diag(1, -1, -1, 1)

glTF cameras look down -Z with +Y up; our cameras are OpenCV (z forward, y down), hence the flip.
The scene's ``extras.sceneforge`` holds what glTF cannot say exactly: object ids, labels, uniform vs
per-axis scale, confidences, the exact intrinsics, floor plane, normalisation and metadata. Each
object node also carries ``extras`` ``{"id", "label"}`` (Blender shows them as custom properties).

Face colours have no glTF form: such a mesh is written with one vertex per face corner (COLOR_0
per corner, so viewers show the colours) plus a uint32 accessor, named by the mesh's
``extras.source_vertex_accessor``, giving each written vertex's original index, from which
:func:`read_glb_scene` rebuilds the mesh exactly (glTF forbids UNSIGNED_INT vertex attributes).
Positions are float32 (glTF has no float64 vertex type); transforms and intrinsics are exact.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from sceneforge.errors import InputError, SceneFileError, UnsupportedFormatError
from sceneforge.io.atomic import write_bytes_atomic
from sceneforge.io.colors import MeshColors, apply_colors, mesh_colors
from sceneforge.io.scene_json import SCENE_FORMAT, SCENE_VERSION, object_mesh_name
from sceneforge.types import Camera, Normalisation, Plane, Scene, SceneObject, Similarity

EXTRAS_KEY = "sceneforge"
BACKGROUND_NODE = "background"
CAMERA_NODE = "camera"
# Maps points of the glTF / USD camera frame (x right, y up, looking down -z) to the OpenCV camera
# frame and back (it is its own inverse): T_world_gltfcam = T_world_cam @ GL_FROM_CV.
GL_FROM_CV = np.diag([1.0, -1.0, -1.0, 1.0])

_GLB_MAGIC = 0x46546C67  # "glTF"
_CHUNK_JSON = 0x4E4F534A
_CHUNK_BIN = 0x004E4942
_FLOAT, _UINT, _UBYTE, _USHORT, _UBYTE_SIGNED, _SHORT = 5126, 5125, 5121, 5123, 5120, 5122
_COMPONENT_DTYPES = {_FLOAT: np.float32, _UINT: np.uint32, _UBYTE: np.uint8, _USHORT: np.uint16,
                     _UBYTE_SIGNED: np.int8, _SHORT: np.int16}
_TYPE_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_TRIANGLES = 4
_ZNEAR, _ZFAR = 0.01, 1000.0


# ----------------------------------------------------------------------------------------------
# Writing


def write_glb(scene: Scene, path: str | Path) -> Path:
    """Write ``scene`` as a binary glTF file, atomically; returns the path."""
    path = Path(path)
    if path.suffix.lower() != ".glb":
        raise UnsupportedFormatError(path, f"GLB scenes are written to .glb files, got {path.suffix!r}")
    write_bytes_atomic(path, scene_to_glb_bytes(scene))
    return path


def scene_to_glb_bytes(scene: Scene) -> bytes:
    """The GLB file of ``scene`` as bytes (see the module docstring for the layout)."""
    builder = _GltfBuilder()
    objects_extras = []
    for obj in scene.objects:
        name = Path(object_mesh_name(obj)).stem
        mesh_index = builder.add_mesh(name, obj.mesh, f"object {obj.id} ({obj.label})")
        builder.add_node({"name": name, "mesh": mesh_index, "matrix": _gltf_matrix(obj.pose.matrix),
                          "extras": {"id": int(obj.id), "label": str(obj.label)}})
        objects_extras.append({"node": name, "id": obj.id, "label": obj.label,
                               "per_axis_scale": not obj.pose.is_uniform, "confidence": obj.confidence})
    if scene.background is not None:
        mesh_index = builder.add_mesh(BACKGROUND_NODE, scene.background, "background")
        builder.add_node({"name": BACKGROUND_NODE, "mesh": mesh_index})
    if scene.camera is not None:
        builder.add_camera(CAMERA_NODE, scene.camera)
    builder.set_scene_extras({EXTRAS_KEY: _json_safe({
        "format": SCENE_FORMAT,
        "version": SCENE_VERSION,
        "objects": objects_extras,
        "background": None if scene.background is None else BACKGROUND_NODE,
        "camera": None if scene.camera is None else scene.camera.to_dict(),
        "camera_node": None if scene.camera is None else CAMERA_NODE,
        "floor": None if scene.floor is None else scene.floor.to_dict(),
        "normalisation": None if scene.normalisation is None else scene.normalisation.to_dict(),
        "metadata": scene.metadata,
    })})
    return builder.to_glb()


def gltf_camera(camera: Camera) -> dict[str, Any]:
    """glTF perspective camera of ``camera``: yfov from fy and the height, aspect = width / height."""
    return {"type": "perspective", "perspective": {
        "yfov": float(2.0 * np.arctan(0.5 * camera.height / camera.fy)),
        "aspectRatio": camera.width / camera.height,
        "znear": _ZNEAR, "zfar": _ZFAR}}


class _GltfBuilder:
    """Collects glTF JSON and one binary buffer; every buffer view starts 4-byte aligned."""

    def __init__(self) -> None:
        self.doc: dict[str, Any] = {
            "asset": {"version": "2.0", "generator": "sceneforge"},
            "scene": 0, "scenes": [{"nodes": []}], "nodes": [], "meshes": [],
            "accessors": [], "bufferViews": [], "buffers": [],
        }
        self.blob = bytearray()

    def add_accessor(self, data: np.ndarray, gltf_type: str, target: int | None,
                     with_bounds: bool = False, normalized: bool = False) -> int:
        """Append ``data`` ((N,) or (N, k), one of the glTF component dtypes); returns its accessor."""
        component = {np.dtype(v): k for k, v in _COMPONENT_DTYPES.items()}[data.dtype]
        data = np.ascontiguousarray(data)
        self.blob.extend(b"\x00" * (-len(self.blob) % 4))
        view: dict[str, Any] = {"buffer": 0, "byteOffset": len(self.blob), "byteLength": data.nbytes}
        if target is not None:
            view["target"] = target
        self.blob.extend(data.astype(data.dtype.newbyteorder("<"), copy=False).tobytes())
        self.doc["bufferViews"].append(view)
        accessor: dict[str, Any] = {"bufferView": len(self.doc["bufferViews"]) - 1,
                                    "componentType": component, "count": int(len(data)), "type": gltf_type}
        if normalized:
            accessor["normalized"] = True
        if with_bounds:
            flat = data.reshape(len(data), -1)
            accessor["min"] = flat.min(axis=0).tolist()
            accessor["max"] = flat.max(axis=0).tolist()
        self.doc["accessors"].append(accessor)
        return len(self.doc["accessors"]) - 1

    def add_mesh(self, name: str, mesh: trimesh.Trimesh, what: str) -> int:
        """Append one triangle mesh (with its colours); returns the glTF mesh index."""
        vertices = np.asarray(mesh.vertices, dtype=np.float64)
        faces = np.asarray(mesh.faces, dtype=np.int64)
        if len(vertices) == 0 or len(faces) == 0:
            raise InputError(None, f"{what} has an empty mesh ({len(vertices)} vertices, {len(faces)} faces)")
        colors = mesh_colors(mesh)
        attributes: dict[str, int] = {}
        extras: dict[str, Any] = {}
        if colors is not None and colors.per_face:
            vertices, faces, corner_rgba, source = _unmerge_face_colors(vertices, faces, colors.rgba)
            attributes["COLOR_0"] = self.add_accessor(corner_rgba, "VEC4", _ARRAY_BUFFER, normalized=True)
            # glTF forbids UNSIGNED_INT vertex attributes: the indices sit in an accessor named by extras
            extras["face_colors"] = True
            extras["source_vertex_accessor"] = self.add_accessor(source.astype(np.uint32), "SCALAR", None)
            extras["source_vertex_count"] = int(len(mesh.vertices))
        elif colors is not None:
            attributes["COLOR_0"] = self.add_accessor(colors.rgba, "VEC4", _ARRAY_BUFFER, normalized=True)
        attributes["POSITION"] = self.add_accessor(vertices.astype(np.float32), "VEC3", _ARRAY_BUFFER,
                                                   with_bounds=True)
        indices = self.add_accessor(faces.reshape(-1).astype(np.uint32), "SCALAR", _ELEMENT_ARRAY_BUFFER)
        mesh_doc: dict[str, Any] = {"name": name, "primitives": [
            {"attributes": attributes, "indices": indices, "mode": _TRIANGLES}]}
        if extras:
            mesh_doc["extras"] = extras
        self.doc["meshes"].append(mesh_doc)
        return len(self.doc["meshes"]) - 1

    def add_node(self, node: dict[str, Any]) -> int:
        """Append a root node; an identity ``matrix`` is left out."""
        if "matrix" in node and np.allclose(node["matrix"], np.eye(4).reshape(-1), rtol=0, atol=0):
            node = {k: v for k, v in node.items() if k != "matrix"}
        self.doc["nodes"].append(node)
        index = len(self.doc["nodes"]) - 1
        self.doc["scenes"][0]["nodes"].append(index)
        return index

    def add_camera(self, name: str, camera: Camera) -> int:
        self.doc.setdefault("cameras", []).append(gltf_camera(camera))
        return self.add_node({"name": name, "camera": len(self.doc["cameras"]) - 1,
                              "matrix": _gltf_matrix(camera.T_world_cam @ GL_FROM_CV)})

    def set_scene_extras(self, extras: dict[str, Any]) -> None:
        self.doc["scenes"][0]["extras"] = extras

    def to_glb(self) -> bytes:
        if self.blob:
            self.blob.extend(b"\x00" * (-len(self.blob) % 4))
            self.doc["buffers"] = [{"byteLength": len(self.blob)}]
        # glTF forbids empty arrays: leave out whatever this scene does not use
        doc = {key: value for key, value in self.doc.items() if value != []}
        doc["scenes"] = [{k: v for k, v in scene.items() if v != []} for scene in doc["scenes"]]
        return pack_glb(doc, bytes(self.blob))


def _unmerge_face_colors(vertices: np.ndarray, faces: np.ndarray, face_rgba: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One vertex per face corner, then any vertex no face uses, so that face colours become
    corner colours. Returns (vertices (M, 3), faces (F, 3), rgba (M, 4) uint8, source index (M,))."""
    source = faces.reshape(-1)
    unused = np.setdiff1d(np.arange(len(vertices)), source)
    source = np.concatenate([source, unused])
    corner_rgba = np.repeat(face_rgba, 3, axis=0)
    unused_rgba = np.full((len(unused), 4), 255, dtype=np.uint8)
    rgba = np.concatenate([corner_rgba, unused_rgba]).astype(np.uint8)
    return vertices[source], np.arange(faces.size).reshape(-1, 3), rgba, source


def pack_glb(doc: dict[str, Any], blob: bytes) -> bytes:
    """GLB container: 12-byte header, JSON chunk (space padded), BIN chunk (zero padded, if any)."""
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")
    text += b" " * (-len(text) % 4)
    chunks = struct.pack("<II", len(text), _CHUNK_JSON) + text
    if blob:
        blob = blob + b"\x00" * (-len(blob) % 4)
        chunks += struct.pack("<II", len(blob), _CHUNK_BIN) + blob
    return struct.pack("<III", _GLB_MAGIC, 2, 12 + len(chunks)) + chunks


def _gltf_matrix(T: np.ndarray) -> list[float]:
    """(4, 4) column-vector matrix -> glTF's 16 numbers in column-major order."""
    return [float(v) for v in np.asarray(T, dtype=np.float64).T.reshape(-1)]


def _json_safe(value: Any) -> Any:
    """Round trip through JSON so numpy values become plain numbers (errors name the value)."""
    from sceneforge.io.scene_json import json_default

    return json.loads(json.dumps(value, default=json_default, allow_nan=False))


# ----------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True, eq=False)
class GltfDocument:
    """A parsed glTF file: its JSON and the bytes of each of its buffers."""

    json: dict[str, Any]
    buffers: tuple[bytes, ...]
    path: Path

    def accessor(self, index: int) -> np.ndarray:
        """Accessor ``index`` as an (N,) or (N, k) array of its component dtype (no normalisation)."""
        acc = self.json["accessors"][index]
        if "sparse" in acc or "bufferView" not in acc:
            raise SceneFileError(self.path, f"accessor {index} is sparse or has no buffer view; not supported here")
        view = self.json["bufferViews"][acc["bufferView"]]
        dtype = np.dtype(_COMPONENT_DTYPES[acc["componentType"]]).newbyteorder("<")
        width = _TYPE_WIDTH[acc["type"]]
        count = int(acc["count"])
        start = int(view.get("byteOffset", 0)) + int(acc.get("byteOffset", 0))
        stride = int(view.get("byteStride", 0)) or dtype.itemsize * width
        buffer = self.buffers[view["buffer"]]
        if start + stride * (count - 1) + dtype.itemsize * width > len(buffer):
            raise SceneFileError(self.path, f"accessor {index} reads past the end of its buffer")
        rows = np.ndarray((count, width), dtype=dtype, buffer=buffer, offset=start, strides=(stride, dtype.itemsize))
        out = np.array(rows, dtype=dtype.newbyteorder("="))
        return out[:, 0] if width == 1 else out


def read_gltf_document(path: str | Path) -> GltfDocument:
    """Parse a .glb or .gltf file (embedded data URIs and external buffer files both work)."""
    path = Path(path)
    if not path.is_file():
        raise SceneFileError(path, "glTF file not found")
    data = path.read_bytes()
    if data[:4] == b"glTF":
        doc, blob = unpack_glb(data, path)
    else:
        try:
            doc, blob = json.loads(data.decode("utf-8")), None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SceneFileError(path, f"neither a GLB nor glTF JSON ({exc})") from exc
    if not isinstance(doc, dict) or not str(doc.get("asset", {}).get("version", "")).startswith("2"):
        raise SceneFileError(path, "not a glTF 2.0 document (asset.version must be \"2.0\")")
    buffers = tuple(_load_buffer(b, blob, path) for b in doc.get("buffers", []))
    return GltfDocument(doc, buffers, path)


def unpack_glb(data: bytes, path: str | Path = "<bytes>") -> tuple[dict[str, Any], bytes | None]:
    """Split a GLB container into its JSON document and its BIN chunk (None when absent)."""
    if len(data) < 20:
        raise SceneFileError(path, "GLB file is truncated (shorter than its header)")
    magic, version, length = struct.unpack_from("<III", data, 0)
    if magic != _GLB_MAGIC or version != 2:
        raise SceneFileError(path, f"not a GLB version 2 file (magic {magic:#x}, version {version})")
    if length > len(data):
        raise SceneFileError(path, f"GLB file is truncated ({len(data)} of {length} bytes)")
    offset, doc, blob = 12, None, None
    while offset + 8 <= length:
        chunk_length, chunk_type = struct.unpack_from("<II", data, offset)
        chunk = data[offset + 8: offset + 8 + chunk_length]
        if len(chunk) != chunk_length:
            raise SceneFileError(path, "GLB chunk runs past the end of the file")
        if chunk_type == _CHUNK_JSON and doc is None:
            try:
                doc = json.loads(chunk.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise SceneFileError(path, f"GLB JSON chunk does not parse ({exc})") from exc
        elif chunk_type == _CHUNK_BIN and blob is None:
            blob = chunk
        offset += 8 + chunk_length
    if doc is None:
        raise SceneFileError(path, "GLB file has no JSON chunk")
    return doc, blob


def _load_buffer(buffer: dict[str, Any], glb_blob: bytes | None, path: Path) -> bytes:
    uri = buffer.get("uri")
    if uri is None:
        if glb_blob is None:
            raise SceneFileError(path, "buffer without uri but the file has no BIN chunk")
        return glb_blob
    if uri.startswith("data:"):
        return base64.b64decode(uri.split(",", 1)[1])
    external = path.parent / uri
    if not external.is_file():
        raise SceneFileError(path, f"external buffer {uri!r} not found next to the file")
    return external.read_bytes()


def read_glb_scene(path: str | Path) -> Scene:
    """Load a scene from a .glb / .gltf file.

    A sceneforge GLB comes back with full fidelity (ids, labels, scale kind, intrinsics, floor...).
    Any other glTF becomes one object per mesh node: its world transform decomposed into a
    :class:`Similarity` (per-axis scale when the axes differ; a mirror is folded into the mesh; a
    shear is baked into the mesh with an identity pose), ids 1..N in node order, labels from node
    names (the mesh name for unnamed nodes). When every mesh node but a "background" one carries
    sceneforge's node extras ``{"id", "label"}`` (a sceneforge GLB re-exported by a tool that drops
    scene extras), those ids and labels and the background are kept.
    A foreign file has no camera (glTF gives no image size).
    """
    path = Path(path)
    document = read_gltf_document(path)
    scenes = document.json.get("scenes") or [{}]
    extras = (scenes[document.json.get("scene", 0)].get("extras") or {}).get(EXTRAS_KEY)
    if isinstance(extras, dict) and extras.get("format") == SCENE_FORMAT:
        try:
            return _read_own_scene(document, extras)
        except SceneFileError:
            raise
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise SceneFileError(path, f"malformed sceneforge GLB ({type(exc).__name__}: {exc})") from exc
    return _read_foreign_scene(document)


def _read_own_scene(document: GltfDocument, extras: dict[str, Any]) -> Scene:
    if extras.get("version") != SCENE_VERSION:
        raise SceneFileError(document.path, f"unsupported sceneforge GLB version {extras.get('version')!r}; "
                                            f"this reader knows {SCENE_VERSION}")
    nodes = _nodes_by_name(document)
    world = _world_matrices(document.json)
    objects = []
    for entry in extras["objects"]:
        index = nodes[entry["node"]]
        mesh = _read_mesh(document, document.json["nodes"][index]["mesh"])
        pose = Similarity.from_matrix(world[index], per_axis=bool(entry.get("per_axis_scale")))
        objects.append(SceneObject(int(entry["id"]), str(entry["label"]), mesh, pose, entry.get("confidence")))
    background = None
    if extras.get("background") is not None:
        index = nodes[extras["background"]]
        background = _read_mesh(document, document.json["nodes"][index]["mesh"])
        background.apply_transform(world[index])
    camera = None
    if extras.get("camera") is not None:
        camera = Camera.from_dict(extras["camera"])
        if extras.get("camera_node") in nodes:
            camera = camera.with_pose(world[nodes[extras["camera_node"]]] @ GL_FROM_CV)
    return Scene(
        objects=tuple(objects), camera=camera,
        floor=None if extras.get("floor") is None else Plane.from_dict(extras["floor"]),
        background=background,
        normalisation=None if extras.get("normalisation") is None else Normalisation.from_dict(extras["normalisation"]),
        metadata=extras.get("metadata") or {},
    )


def _nodes_by_name(document: GltfDocument) -> dict[str, int]:
    return {node["name"]: i for i, node in enumerate(document.json.get("nodes", [])) if "name" in node}


def _read_mesh(document: GltfDocument, mesh_index: int) -> trimesh.Trimesh:
    """A sceneforge-written glTF mesh (one indexed triangle primitive) as a trimesh mesh."""
    mesh_doc = document.json["meshes"][mesh_index]
    primitive = mesh_doc["primitives"][0]
    if primitive.get("mode", _TRIANGLES) != _TRIANGLES:
        raise SceneFileError(document.path, f"mesh {mesh_doc.get('name', mesh_index)!r} is not a triangle mesh")
    attributes = primitive["attributes"]
    vertices = document.accessor(attributes["POSITION"]).astype(np.float64)
    faces = document.accessor(primitive["indices"]).astype(np.int64).reshape(-1, 3)
    rgba = None if "COLOR_0" not in attributes else _as_rgba_uint8(document, attributes["COLOR_0"])
    colors = None if rgba is None else MeshColors(False, rgba)
    mesh_extras = mesh_doc.get("extras") or {}
    if mesh_extras.get("face_colors") and "source_vertex_accessor" in mesh_extras:
        source = document.accessor(mesh_extras["source_vertex_accessor"]).astype(np.int64)
        count = int(mesh_doc["extras"]["source_vertex_count"])
        original = np.zeros((count, 3))
        original[source] = vertices
        face_rgba = rgba[faces[:, 0]] if rgba is not None else None
        faces = source[faces]
        vertices = original
        colors = None if face_rgba is None else MeshColors(True, face_rgba)
    mesh = trimesh.Trimesh(vertices, faces, process=False, maintain_order=True)
    return apply_colors(mesh, colors)


def _as_rgba_uint8(document: GltfDocument, index: int) -> np.ndarray:
    """COLOR_0 accessor (float, normalised ubyte or ushort; VEC3 or VEC4) -> (N, 4) uint8."""
    raw = document.accessor(index)
    if raw.dtype == np.uint8:
        values = raw.astype(np.float64) / 255.0
    elif raw.dtype == np.uint16:
        values = raw.astype(np.float64) / 65535.0
    else:
        values = raw.astype(np.float64)
    if values.shape[1] == 3:
        values = np.concatenate([values, np.ones((len(values), 1))], axis=1)
    return np.clip(np.round(values * 255.0), 0, 255).astype(np.uint8)


def node_local_matrix(node: dict[str, Any]) -> np.ndarray:
    """(4, 4) local transform of a glTF node, from ``matrix`` or from ``translation/rotation/scale``."""
    if "matrix" in node:
        return np.asarray(node["matrix"], dtype=np.float64).reshape(4, 4).T
    x, y, z, w = node.get("rotation", [0.0, 0.0, 0.0, 1.0])
    R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                  [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                  [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    T = np.eye(4)
    T[:3, :3] = R * np.asarray(node.get("scale", [1.0, 1.0, 1.0]), dtype=np.float64)[None, :]
    T[:3, 3] = node.get("translation", [0.0, 0.0, 0.0])
    return T


def _world_matrices(doc: dict[str, Any]) -> dict[int, np.ndarray]:
    """World (4, 4) transform of every node reachable from the scene roots."""
    nodes = doc.get("nodes", [])
    scene = (doc.get("scenes") or [{"nodes": list(range(len(nodes)))}])[doc.get("scene", 0)]
    world: dict[int, np.ndarray] = {}
    stack = [(i, np.eye(4)) for i in scene.get("nodes", [])]
    while stack:
        index, T_world_parent = stack.pop()
        if index in world:
            continue
        world[index] = T_world_parent @ node_local_matrix(nodes[index])
        stack.extend((child, world[index]) for child in nodes[index].get("children", []))
    return world


@dataclass(frozen=True, eq=False)
class _ForeignMesh:
    label: str
    mesh: trimesh.Trimesh
    pose: Similarity
    node_extras: dict[str, Any]

    @property
    def tagged_id(self) -> int | None:
        """The object id sceneforge wrote into the node's extras, if it survived."""
        value = self.node_extras.get("id")
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _read_foreign_scene(document: GltfDocument) -> Scene:
    """Any glTF: one object per mesh node, loaded through trimesh (textures sampled to colours)."""
    try:
        loaded = trimesh.load_scene(document.path, process=False, maintain_order=True)
    except Exception as exc:  # trimesh raises many types for broken files
        raise SceneFileError(document.path, f"cannot read glTF ({type(exc).__name__}: {exc})") from exc
    named = {node["name"]: node for node in document.json.get("nodes", []) if "name" in node}
    found = []
    for node_name in loaded.graph.nodes_geometry:
        T_world_node, geometry_name = loaded.graph[node_name]
        geometry = loaded.geometry[geometry_name]
        if not isinstance(geometry, trimesh.Trimesh) or len(geometry.faces) == 0:
            continue
        node = named.get(node_name) or {}
        if _has_source_vertices(document, node):  # a face-coloured sceneforge mesh: rebuild it exactly
            geometry = _read_mesh(document, node["mesh"])
        mesh, pose = split_node_pose(geometry.copy(), np.asarray(T_world_node, dtype=np.float64))
        mesh = apply_colors(trimesh.Trimesh(mesh.vertices, mesh.faces, process=False), mesh_colors(mesh))
        extras = node.get("extras")
        found.append(_ForeignMesh(str(node_name if node_name in named else geometry_name), mesh, pose,
                                  extras if isinstance(extras, dict) else {}))
    if not found:
        raise SceneFileError(document.path, "glTF file holds no triangle mesh")
    metadata = {"source": str(document.path)}
    retagged = _retagged_scene(found, metadata)
    if retagged is not None:
        return retagged
    return Scene(objects=tuple(SceneObject(k + 1, f.label, f.mesh, f.pose) for k, f in enumerate(found)),
                 metadata=metadata)


def _has_source_vertices(document: GltfDocument, node: dict[str, Any]) -> bool:
    if not isinstance(node.get("mesh"), int) or node["mesh"] >= len(document.json.get("meshes", [])):
        return False
    extras = document.json["meshes"][node["mesh"]].get("extras") or {}
    return isinstance(extras, dict) and "source_vertex_accessor" in extras


def _retagged_scene(found: list[_ForeignMesh], metadata: dict[str, Any]) -> Scene | None:
    """A sceneforge GLB re-exported by a tool that dropped the scene extras but kept node extras:
    every mesh node but one "background" carries a unique id. None when that is not the case."""
    tagged = [f for f in found if f.tagged_id is not None]
    rest = [f for f in found if f.tagged_id is None]
    if not tagged or len({f.tagged_id for f in tagged}) != len(tagged):
        return None
    if rest and not (len(rest) == 1 and rest[0].label == BACKGROUND_NODE):
        return None
    objects = sorted((SceneObject(f.tagged_id, str(f.node_extras.get("label", f.label)), f.mesh, f.pose)
                      for f in tagged), key=lambda o: o.id)
    background = _posed(rest[0].mesh, rest[0].pose) if rest else None
    return Scene(objects=tuple(objects), background=background, metadata=metadata)


def _posed(mesh: trimesh.Trimesh, pose: Similarity) -> trimesh.Trimesh:
    out = mesh.copy()
    out.apply_transform(pose.matrix)
    return out


def split_node_pose(mesh: trimesh.Trimesh, T_world_node: np.ndarray) -> tuple[trimesh.Trimesh, Similarity]:
    """Decompose a node transform into a similarity; fold a mirror, or bake a shear, into the mesh."""
    if np.linalg.det(T_world_node[:3, :3]) < 0:
        mirror = np.diag([-1.0, 1.0, 1.0, 1.0])
        mesh.apply_transform(mirror)  # trimesh reverses the winding for a reflection
        T_world_node = T_world_node @ mirror
    pose = Similarity.from_matrix(T_world_node, per_axis=True)
    scale = pose.scale_xyz
    if np.ptp(scale) <= 1e-6 * scale.max():
        pose = Similarity(pose.R, pose.t, float(scale.mean()))
    # float32 files store rotations to about 1e-7; anything further off is a shear
    if not np.allclose(pose.matrix[:3, :3], T_world_node[:3, :3], rtol=0, atol=1e-5 * scale.max()):
        mesh.apply_transform(T_world_node)
        pose = Similarity()
    return mesh, pose
