"""scene.json: the project's plain-text scene description, with meshes in files beside it.

Layout of a scene folder (all paths in the JSON are relative to it)::

    scene.json
    objects/<id>_<label>.ply     canonical mesh of each object (object frame)
    background.ply               background mesh in world coordinates (optional)

scene.json holds ``format``, ``version``, ``camera`` (fx fy cx cy width height T_world_cam),
``floor`` (normal, offset), ``normalisation`` (centre, scale, frame), ``background`` and
``objects``: per object ``id``, ``label``, ``mesh``, ``pose`` (4x4 T_world_obj including scale),
``scale`` (number, or [sx, sy, sz] for per-axis), ``box`` (world AABB ``min``/``max``) and
``confidence``; plus free ``metadata``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from sceneforge.errors import SceneFileError
from sceneforge.io.atomic import write_bytes_atomic
from sceneforge.io.compact_json import compact_json
from sceneforge.io.meshes import load_mesh, ply_bytes
from sceneforge.types import Camera, Normalisation, Plane, Scene, SceneObject, Similarity

SCENE_FORMAT = "sceneforge.scene"
SCENE_VERSION = 1


def object_mesh_name(obj: SceneObject) -> str:
    """Relative path of an object's canonical mesh inside a scene folder."""
    label = re.sub(r"[^A-Za-z0-9_-]+", "_", obj.label).strip("_") or "object"
    return f"objects/{obj.id:03d}_{label}.ply"


def scene_to_dict(scene: Scene) -> dict[str, Any]:
    """The JSON document of a scene (meshes referenced by their relative file names)."""
    objects = []
    for obj in scene.objects:
        box = obj.world_bounds()
        objects.append({
            "id": obj.id,
            "label": obj.label,
            "mesh": object_mesh_name(obj),
            "pose": obj.pose.matrix.tolist(),
            "scale": obj.pose.s if obj.pose.is_uniform else obj.pose.scale_xyz.tolist(),
            "box": {"min": box[0].tolist(), "max": box[1].tolist()},
            "confidence": obj.confidence,
        })
    return {
        "format": SCENE_FORMAT,
        "version": SCENE_VERSION,
        "camera": None if scene.camera is None else scene.camera.to_dict(),
        "floor": None if scene.floor is None else scene.floor.to_dict(),
        "normalisation": None if scene.normalisation is None else scene.normalisation.to_dict(),
        "background": None if scene.background is None else "background.ply",
        "objects": objects,
        "metadata": scene.metadata,
    }


def scene_json_files(scene: Scene, mesh_file: Callable[[trimesh.Trimesh], bytes] = ply_bytes,
                     indent: int | None = 2) -> dict[str, bytes]:
    """A scene folder in memory: relative path -> bytes, meshes first and scene.json last.

    mesh_file : PLY bytes of a mesh (e.g. a cached :func:`~sceneforge.io.meshes.ply_bytes`).
    indent : JSON indentation; None writes one compact line (several times faster to encode).
    """
    files = {object_mesh_name(obj): mesh_file(obj.mesh) for obj in scene.objects}
    if scene.background is not None:
        files["background.ply"] = mesh_file(scene.background)
    doc = scene_to_dict(scene)
    if indent is None:
        files["scene.json"] = compact_json(doc, default=json_default)
    else:
        files["scene.json"] = (json.dumps(doc, indent=indent, default=json_default) + "\n").encode("utf-8")
    return files


def write_scene_json(scene: Scene, folder: str | Path) -> Path:
    """Write scene.json and its meshes into ``folder`` (created if needed); returns the JSON path."""
    folder = Path(folder)
    for rel, data in scene_json_files(scene).items():
        write_bytes_atomic(folder / rel, data)
    return folder / "scene.json"


def read_scene_json(path: str | Path) -> Scene:
    """Load a scene from scene.json (or a folder holding one), meshes included."""
    path = Path(path)
    if path.is_dir():
        path = path / "scene.json"
    if not path.is_file():
        raise SceneFileError(path, "scene file not found")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SceneFileError(path, f"not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != SCENE_FORMAT:
        raise SceneFileError(path, f"not a sceneforge scene (expected \"format\": \"{SCENE_FORMAT}\")")
    if doc.get("version") != SCENE_VERSION:
        raise SceneFileError(path, f"unsupported scene version {doc.get('version')!r}; this reader knows {SCENE_VERSION}")
    folder = path.parent
    try:
        objects = tuple(_object_from_dict(o, folder) for o in doc.get("objects", []))
        return Scene(
            objects=objects,
            camera=None if doc.get("camera") is None else Camera.from_dict(doc["camera"]),
            floor=None if doc.get("floor") is None else Plane.from_dict(doc["floor"]),
            background=None if doc.get("background") is None else load_mesh(folder / doc["background"]),
            normalisation=None if doc.get("normalisation") is None else Normalisation.from_dict(doc["normalisation"]),
            metadata=doc.get("metadata") or {},
        )
    except SceneFileError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise SceneFileError(path, f"malformed scene ({type(exc).__name__}: {exc})") from exc


def _object_from_dict(data: dict[str, Any], folder: Path) -> SceneObject:
    per_axis = isinstance(data.get("scale"), list)
    pose = Similarity.from_matrix(np.asarray(data["pose"], dtype=np.float64), per_axis=per_axis)
    return SceneObject(id=int(data["id"]), label=str(data.get("label", "object")),
                       mesh=load_mesh(folder / data["mesh"]), pose=pose,
                       confidence=data.get("confidence"))


def json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
