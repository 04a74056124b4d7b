"""Signed distance grids of canonical meshes, sampled differentiably with torch.

Choice (documented for the physical terms): each object's canonical mesh gets a dense SDF grid
once, before optimisation; during optimisation, points are mapped into the other object's
canonical frame (differentiable in both poses) and the grid is sampled trilinearly with
``torch.nn.functional.grid_sample``. Outside the grid's box the distance to the box is added, so
the value stays a (conservative) distance far away.

Meshes made of overlapping closed parts (the engine's and the asset library's furniture: a desk is
a top, legs and drawers, each a closed box, that overlap) are treated as the union of their
connected components: the grid is the minimum of the components' signed distances (CSG union:
exact outside, a conservative depth inside). A single ray-parity or distance query on the whole
mesh gets such meshes wrong: a point where two parts overlap crosses two surfaces and reads as
*outside* (on engine furniture 5-17 % of the interior, measured against generalised winding
numbers), and the faces of a part buried in another count as surface. Meshes with more than
``max_parts`` components (scans, noise) are taken whole.

Each component's distances come from Open3D's RaycastingScene when it is installed (exact unsigned
distance; inside/outside by a majority vote of ``sign_rays`` ray parity tests, which tolerates
small holes of the reconstructed meshes), else from numpy/scipy only:
- sign: generalised winding number (sum of solid angles of the faces, Van Oosterom-Strackee),
  robust to small holes; inside where it exceeds 0.5 (cost queries x faces: fine for small meshes);
- magnitude: distance to the nearest of dense surface samples (KD-tree), accurate to about half
  the sample spacing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree


@dataclass(frozen=True, eq=False)
class SdfGrid:
    """values : (D, D, D) float32 signed distances (negative inside) in canonical units, indexed
    [z, y, x] (grid_sample's layout). lo, hi : (3,) box corners (x, y, z) of the grid, canonical."""

    values: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def winding_numbers(mesh: trimesh.Trimesh, points: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """(N, 3) query points -> (N,) generalised winding numbers (≈1 inside, ≈0 outside)."""
    tri = np.asarray(mesh.triangles, dtype=np.float64)  # (F, 3, 3)
    out = np.empty(len(points))
    for start in range(0, len(points), chunk):
        p = points[start:start + chunk, None, None, :]
        a, b, c = (tri[None, :, k, :] - p[:, :, 0, :] for k in range(3))
        la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
        det = np.einsum("nfi,nfi->nf", a, np.cross(b, c))
        den = (la * lb * lc + np.einsum("nfi,nfi->nf", a, b) * lc
               + np.einsum("nfi,nfi->nf", b, c) * la + np.einsum("nfi,nfi->nf", c, a) * lb)
        out[start:start + chunk] = np.arctan2(det, den).sum(axis=1) / (2.0 * np.pi)
    return out


def mesh_parts(mesh: trimesh.Trimesh, max_parts: int = 32) -> list[trimesh.Trimesh]:
    """The connected components of ``mesh`` (by shared vertices), or ``[mesh]`` when it has one or
    more than ``max_parts`` of them."""
    parts = mesh.split(only_watertight=False)
    return list(parts) if 1 < len(parts) <= max_parts else [mesh]


def build_sdf_grid(mesh: trimesh.Trimesh, resolution: int = 24, padding: float = 0.1,
                   surface_samples: int = 20000, seed: int = 0, max_parts: int = 32) -> SdfGrid:
    """SDF grid of ``mesh`` (the union of its parts, module docstring) over its bounding box grown by
    ``padding`` of its largest side."""
    bounds = np.asarray(mesh.bounds, dtype=np.float64)
    pad = padding * float(np.max(bounds[1] - bounds[0]))
    lo, hi = bounds[0] - pad, bounds[1] + pad
    axes = [np.linspace(lo[k], hi[k], resolution) for k in range(3)]
    zz, yy, xx = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    query = np.stack([xx, yy, zz], axis=-1).reshape(-1, 3)
    parts = mesh_parts(mesh, max_parts)
    try:
        values = np.min([_open3d_sdf(part, query) for part in parts], axis=0)
    except ImportError:
        total = float(sum(part.area for part in parts)) or 1.0
        values = np.min([_numpy_sdf(part, query, max(64, round(surface_samples * part.area / total)), seed)
                         for part in parts], axis=0)
    return SdfGrid(values.reshape(resolution, resolution, resolution).astype(np.float32), lo, hi)


def _numpy_sdf(mesh: trimesh.Trimesh, query: np.ndarray, surface_samples: int, seed: int) -> np.ndarray:
    """(N,) signed distances without Open3D: KD-tree distance to surface samples, winding-number sign."""
    samples, _ = trimesh.sample.sample_surface(mesh, surface_samples, seed=seed)
    distance, _ = cKDTree(samples).query(query)
    return np.where(winding_numbers(mesh, query) > 0.5, -distance, distance)


def _open3d_sdf(mesh: trimesh.Trimesh, query: np.ndarray, sign_rays: int = 5) -> np.ndarray:
    """(N,) signed distances with Open3D (raises ImportError without it)."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.asarray(mesh.vertices, dtype=np.float32)),
                        o3d.core.Tensor(np.asarray(mesh.faces, dtype=np.uint32)))
    points = o3d.core.Tensor(query.astype(np.float32))
    distance = scene.compute_distance(points, nthreads=1).numpy()
    inside = scene.compute_occupancy(points, nthreads=1, nsamples=sign_rays).numpy() > 0.5
    return np.where(inside, -distance, distance)


def sample_sdf(grid: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Trilinear SDF lookup, of one grid or of B grids at once.

    grid : (D, D, D) values indexed [z, y, x], or (B, D, D, D); lo, hi : (3,) box, or (B, 3);
    points : (N, 3) in the grid's frame, or (B, N, 3). Returns (N,) or (B, N) signed distances;
    outside the box, the value at the nearest box point plus the distance to the box.
    """
    single = grid.dim() == 3
    if single:
        grid, lo, hi, points = grid[None], lo[None], hi[None], points[None]
    lo, hi = lo[:, None], hi[:, None]
    clamped = torch.minimum(torch.maximum(points, lo), hi)
    outside = torch.linalg.norm(points - clamped + 1e-12, dim=-1)
    outside = torch.where((points - clamped).abs().amax(dim=-1) > 0, outside, torch.zeros_like(outside))
    normalised = 2.0 * (clamped - lo) / (hi - lo) - 1.0
    values = torch.nn.functional.grid_sample(grid[:, None], normalised[:, None, None],
                                             mode="bilinear", align_corners=True)
    values = values.reshape(outside.shape) + outside
    return values[0] if single else values
