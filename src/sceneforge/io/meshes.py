"""Reading and writing single meshes (PLY, OBJ, STL, GLB/GLTF, OFF) through trimesh."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from sceneforge.errors import SceneFileError, UnsupportedFormatError
from sceneforge.io.atomic import atomic_path

MESH_SUFFIXES = (".ply", ".obj", ".stl", ".glb", ".gltf", ".off")


def load_mesh(path: str | Path) -> trimesh.Trimesh:
    """One triangle mesh from a file; a multi-mesh GLB is merged into one mesh in its scene frame.

    Vertices are kept exactly as stored (no merging or reordering)."""
    path = Path(path)
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise UnsupportedFormatError(path, f"unknown mesh type {path.suffix!r}; expected one of {', '.join(MESH_SUFFIXES)}")
    if not path.is_file():
        raise SceneFileError(path, "mesh file not found")
    try:
        loaded = trimesh.load(path, process=False, maintain_order=True)
    except Exception as exc:  # trimesh raises many types for broken files
        raise SceneFileError(path, f"cannot read mesh ({type(exc).__name__}: {exc})") from exc
    if isinstance(loaded, trimesh.Scene):
        loaded = loaded.to_mesh() if loaded.geometry else None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise SceneFileError(path, "file holds no triangle mesh")
    if not np.all(np.isfinite(loaded.vertices)):
        raise SceneFileError(path, "mesh has NaN or infinite vertices")
    return loaded


def save_mesh(mesh: trimesh.Trimesh, path: str | Path) -> None:
    """Write one mesh atomically; the format follows the suffix (binary PLY for .ply)."""
    path = Path(path)
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise UnsupportedFormatError(path, f"unknown mesh type {path.suffix!r}; expected one of {', '.join(MESH_SUFFIXES)}")
    with atomic_path(path) as tmp:
        mesh.export(tmp, file_type=path.suffix.lower().lstrip("."))


def ply_bytes(mesh: trimesh.Trimesh) -> bytes:
    """The binary PLY file of a mesh, as :func:`save_mesh` writes it to a ``.ply`` path."""
    return mesh.export(file_type="ply")
