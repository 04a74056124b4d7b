"""Seeded, area-weighted point sampling on mesh surfaces.

MIDI-3D samples 20,480 points per object; that is the default here too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

DEFAULT_POINTS_PER_OBJECT = 20_480


def finite_faces(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float64 vertices and (F', 3) faces, keeping only faces whose three vertices are finite."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
    if len(faces) == 0:
        return vertices, faces
    finite_vertex = np.all(np.isfinite(vertices), axis=1)
    return vertices, faces[np.all(finite_vertex[faces], axis=1)]


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) triangle areas in square metres."""
    if len(faces) == 0:
        return np.zeros(0)
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    return 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)


@dataclass(frozen=True, eq=False)
class SurfaceSample:
    """Points on a surface with the unit normals of the faces they lie on.

    points : (N, 3) float64 metres.  normals : (N, 3) float64 unit vectors, or None when the surface
    has no area (the points are then its vertices).
    """

    points: np.ndarray
    normals: np.ndarray | None

    def __len__(self) -> int:
        return len(self.points)


def sample_surface_with_normals(mesh: trimesh.Trimesh, count: int = DEFAULT_POINTS_PER_OBJECT,
                                seed: int = 0) -> SurfaceSample:
    """``count`` points drawn uniformly by area on the mesh surface, reproducible for a seed.

    Faces with a NaN or infinite vertex are ignored. A mesh without area (no faces, or all faces
    degenerate) gives its finite vertices instead (resampled to ``count``) with no normals, and an
    empty (0, 3) sample when it has none.
    """
    if count <= 0:
        raise ValueError(f"count must be positive, got {count}")
    rng = np.random.default_rng(seed)
    vertices, faces = finite_faces(mesh)
    areas = face_areas(vertices, faces)
    total = float(areas.sum())
    if not total > 0 or not np.isfinite(total):
        finite = vertices[np.all(np.isfinite(vertices), axis=1)]
        if len(finite) == 0:
            return SurfaceSample(np.zeros((0, 3)), None)
        return SurfaceSample(finite[rng.integers(0, len(finite), size=count)], None)
    face_index = rng.choice(len(faces), size=count, p=areas / total)
    r1, r2 = rng.random(count), rng.random(count)
    flip = r1 + r2 > 1.0
    r1[flip], r2[flip] = 1.0 - r1[flip], 1.0 - r2[flip]
    tri = vertices[faces[face_index]]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    points = tri[:, 0] + r1[:, None] * e1 + r2[:, None] * e2
    normals = np.cross(e1, e2)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
    return SurfaceSample(points, normals)


def sample_surface(mesh: trimesh.Trimesh, count: int = DEFAULT_POINTS_PER_OBJECT,
                   seed: int = 0) -> np.ndarray:
    """(count, 3) float64 points of :func:`sample_surface_with_normals` (or (0, 3))."""
    return sample_surface_with_normals(mesh, count, seed).points


def mesh_is_degenerate(mesh: trimesh.Trimesh) -> bool:
    """True when the mesh has no finite face with positive area."""
    vertices, faces = finite_faces(mesh)
    return not float(face_areas(vertices, faces).sum()) > 0
