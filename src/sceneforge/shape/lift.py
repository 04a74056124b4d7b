"""Lift: complete an object's visible points into a closed mesh without any learned prior.

1. Yaw: the turn about +y whose footprint rectangle of the visible points is smallest (robust
   extents; a 2 degree sweep plus the PCA and view-direction candidates), reduced to (-45, 45]
   degrees so that the face most turned to the camera is the front (+z).
2. Thickness along the horizontal axis closest to the viewing direction: mirror the visible points
   about a vertical plane behind the visible surface for a range of thicknesses; a mirrored point
   that projects where the observed depth is clearly behind it would have been seen, so it
   contradicts the image (free-space violation). Keep the largest thickness whose mirror is
   consistent.
3. Box: the yaw-aligned box of the visible and mirrored points, extended down to the floor when the
   object is near it (floor contact), and up/sideways over the amodal (occluded) part.
4. Occupancy: voxels of the box (about ``resolution`` cells on the largest side) that no observed
   depth sees through (free-space carving, i.e. the single-view visual hull behind the surface),
   plus the voxels holding visible points; closed, hole-filled, largest component; marching cubes
   -> a watertight mesh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy import ndimage

from sceneforge.geometry import project_points, rotation_y, transform_points
from sceneforge.perception.base import PerceptionResult
from sceneforge.registry import register
from sceneforge.shape.base import ShapeBackend, ShapeContext, ShapeError, ShapeResult, canonicalise


@dataclass(frozen=True)
class ThicknessChoice:
    """Chosen extent along the depth axis (metres) and the violation share of its mirror."""

    thickness: float
    violation: float
    candidates: int


@register("shape", "lift")
class LiftShape(ShapeBackend):
    """Visible points -> closed mesh by symmetry/extrusion and free-space carving (module docstring).

    resolution : voxels on the box's largest side.
    max_violation : largest share of mirrored points allowed to contradict the depth.
    contact_m : an object whose lowest point is this close to the floor (or 15% of its height)
        is extended down to it.
    max_mirror_elevation_deg : an object whose viewing ray descends more steeply than this is seen
        from above; its horizontal extent is not mirrored (the hidden part is under the visible
        top, which the floor contact and the carving already fill).
    """

    def __init__(self, *, resolution: int = 40, max_violation: float = 0.03, contact_m: float = 0.08,
                 n_thickness: int = 10, use_amodal: bool = True, max_mirror_elevation_deg: float = 65.0) -> None:
        self.max_mirror_elevation_deg = float(max_mirror_elevation_deg)
        self.resolution = int(resolution)
        self.max_violation = float(max_violation)
        self.contact_m = float(contact_m)
        self.n_thickness = int(n_thickness)
        self.use_amodal = bool(use_amodal)

    def reconstruct(self, context: ShapeContext) -> ShapeResult:
        perception = context.perception
        points = np.asarray(context.observation.points_world, dtype=np.float64)
        if len(points) < 4:
            raise ShapeError(f"only {len(points)} points")
        eye = perception.camera_centre_world()
        view = points.mean(axis=0) - eye
        ray_elevation = float(np.degrees(np.arcsin(min(1.0, abs(view[1]) / max(np.linalg.norm(view), 1e-9)))))
        view[1] = 0.0
        view = view / max(np.linalg.norm(view), 1e-9) if np.linalg.norm(view) > 1e-6 else np.array([0.0, 0.0, -1.0])
        yaw = choose_yaw(points, view)
        R = rotation_y(yaw)
        local = points @ R  # object-frame coordinates (x, y, z) of the turned frame
        # depth axis: the horizontal object axis closest to the viewing direction, pointing away
        view_local = R.T @ view
        depth_axis = 0 if abs(view_local[0]) > abs(view_local[2]) else 2
        across_axis = 2 - depth_axis
        sign = 1.0 if view_local[depth_axis] >= 0 else -1.0
        t = sign * local[:, depth_axis]
        t_front, t_back = np.percentile(t, [1.0, 99.0])
        across = np.percentile(local[:, across_axis], [0.5, 99.5])
        if ray_elevation > self.max_mirror_elevation_deg:  # seen from above: the hidden side is below, not behind
            choice = ThicknessChoice(max(float(t_back - t_front), 0.01), 0.0, 0)
        else:
            choice = self._thickness(points, t, t_front, t_back, float(across[1] - across[0]),
                                     R[:, depth_axis] * sign, perception)
        extra = self._amodal_points(context) @ R if self.use_amodal else np.zeros((0, 3))

        lo = np.percentile(local, 0.5, axis=0)
        hi = np.percentile(local, 99.5, axis=0)
        if len(extra):
            lo[1] = min(lo[1], extra[:, 1].min())
            hi[1] = max(hi[1], extra[:, 1].max())
            lo[across_axis] = min(lo[across_axis], extra[:, across_axis].min())
            hi[across_axis] = max(hi[across_axis], extra[:, across_axis].max())
        front, back = t_front, t_front + choice.thickness
        lo[depth_axis], hi[depth_axis] = (front, back) if sign > 0 else (-back, -front)
        height = hi[1] - lo[1]
        on_floor = lo[1] < max(self.contact_m, 0.15 * height)
        if on_floor:
            lo[1] = 0.0
        occupancy, origin, cell = self._occupancy(lo, hi, R, local, perception)
        mesh_local = occupancy_to_mesh(occupancy, origin, cell)
        mesh_world = mesh_local.copy()
        mesh_world.vertices = mesh_local.vertices @ R.T
        canonical, pose = canonicalise(mesh_world, yaw)
        confidence = float(np.clip((1.0 - choice.violation) * (1.0 - 0.5 * context.amodal.occluded_fraction), 0, 1))
        info = {"backend": "lift", "yaw_deg": float(np.degrees(yaw)), "thickness_m": choice.thickness,
                "visible_depth_extent_m": float(t_back - t_front), "mirror_violation": choice.violation,
                "floor_contact": bool(on_floor), "ray_elevation_deg": ray_elevation, "voxels": int(occupancy.sum()),
                "watertight": bool(canonical.is_watertight)}
        return ShapeResult(canonical, pose, confidence, info)

    # ------------------------------------------------------------ thickness
    def _thickness(self, points: np.ndarray, t: np.ndarray, t_front: float, t_back: float, across: float,
                   axis_world: np.ndarray, perception: PerceptionResult) -> ThicknessChoice:
        visible_extent = max(float(t_back - t_front), 0.01)
        top = max(2.0 * visible_extent, across, visible_extent)
        candidates = np.unique(np.concatenate([[visible_extent, 1.5 * visible_extent, 2.0 * visible_extent],
                                               np.linspace(visible_extent, top, self.n_thickness)]))
        sample = points if len(points) <= 3000 else points[np.random.default_rng(0).choice(len(points), 3000, replace=False)]
        t_sample = sample @ axis_world
        best = ThicknessChoice(visible_extent, free_space_violation(sample, perception), len(candidates))
        for thickness in candidates:
            mirror_at = t_front + 0.5 * thickness
            mirrored = sample + (2.0 * (mirror_at - t_sample))[:, None] * axis_world[None, :]
            violation = free_space_violation(mirrored, perception)
            if violation <= self.max_violation and thickness >= best.thickness:
                best = ThicknessChoice(float(thickness), violation, len(candidates))
        return best

    # --------------------------------------------------------------- amodal
    def _amodal_points(self, context: ShapeContext) -> np.ndarray:
        """World points of the occluded (amodal-only) pixels at the object's median camera depth."""
        hidden = context.amodal.mask & ~context.observation.mask
        if not hidden.any():
            return np.zeros((0, 3))
        perception = context.perception
        camera = perception.camera
        z = float(np.median(perception.to_camera(context.observation.points_world)[:, 2]))
        v, u = np.nonzero(hidden)
        pts = np.stack([(u - camera.cx) * z / camera.fx, (v - camera.cy) * z / camera.fy, np.full(len(u), z)], 1)
        world = transform_points(perception.T_world_cam, pts)
        return world[world[:, 1] > 0.0]

    # ------------------------------------------------------------ occupancy
    def _occupancy(self, lo: np.ndarray, hi: np.ndarray, R: np.ndarray, local_points: np.ndarray,
                   perception: PerceptionResult) -> tuple[np.ndarray, np.ndarray, float]:
        size = np.maximum(hi - lo, 1e-3)
        cell = float(size.max()) / self.resolution
        dims = np.maximum(np.ceil(size / cell).astype(int), 1)
        axes = [lo[i] + (np.arange(dims[i]) + 0.5) * cell for i in range(3)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        keep = ~free_space_mask(grid @ R.T, perception, margin=1.0 * cell)
        keep &= grid[:, 1] >= -0.5 * cell
        occupancy = keep.reshape(dims)
        index = np.floor((local_points - lo) / cell).astype(int)
        inside = np.all((index >= 0) & (index < dims), axis=1)
        occupancy[tuple(index[inside].T)] = True
        occupancy = ndimage.binary_closing(np.pad(occupancy, 2), iterations=1)[2:-2, 2:-2, 2:-2]
        occupancy = ndimage.binary_fill_holes(occupancy)
        labels, count = ndimage.label(occupancy)
        if count == 0:
            raise ShapeError("free-space carving removed every voxel")
        if count > 1:
            sizes = ndimage.sum(occupancy, labels, index=np.arange(1, count + 1))
            occupancy = labels == (1 + int(np.argmax(sizes)))
        return occupancy, lo, cell


def choose_yaw(points_world: np.ndarray, view_dir: np.ndarray, step_deg: float = 2.0) -> float:
    """Yaw (radians, in (-pi/4, pi/4]) whose footprint rectangle of the points is smallest.

    points_world : (N, 3) metres, y up.  view_dir : (3,) horizontal viewing direction.
    Robust extents (2nd-98th percentile) ignore stray points.
    """
    xz = points_world[:, [0, 2]] - points_world[:, [0, 2]].mean(axis=0)
    candidates = list(np.radians(np.arange(0.0, 90.0, step_deg)))
    cov = np.cov(xz.T) if len(xz) > 2 else np.eye(2)
    _, vecs = np.linalg.eigh(cov)
    candidates.append(float(np.arctan2(vecs[0, -1], vecs[1, -1])))
    candidates.append(float(np.arctan2(view_dir[0], view_dir[2])))
    best, best_area = 0.0, np.inf
    for yaw in candidates:
        c, s = np.cos(yaw), np.sin(yaw)
        x = xz[:, 0] * c - xz[:, 1] * s
        z = xz[:, 0] * s + xz[:, 1] * c
        area = np.ptp(np.percentile(x, [2, 98])) * np.ptp(np.percentile(z, [2, 98]))
        if area < best_area - 1e-12:
            best, best_area = float(yaw), float(area)
    return wrap_quarter_turn(best)


def wrap_quarter_turn(yaw: float) -> float:
    """Reduce a yaw modulo 90 degrees into (-pi/4, pi/4]."""
    q = np.pi / 2
    out = (yaw + q / 2) % q - q / 2
    return float(q / 2 if np.isclose(out, -q / 2) else out)


def free_space_mask(points_world: np.ndarray, perception: PerceptionResult, margin: float) -> np.ndarray:
    """(N,) bool: True where the observed depth at the point's pixel lies more than
    ``margin + 1%`` of the depth behind the point, i.e. the camera saw through it. Points outside
    the image, behind the camera or on invalid depth are never marked."""
    camera = perception.camera
    pts_cam = perception.to_camera(points_world)
    uv, z = project_points(camera, pts_cam)
    u = np.round(uv[:, 0]).astype(np.int64, copy=False) if len(uv) else np.zeros(0, np.int64)
    v = np.round(uv[:, 1]).astype(np.int64, copy=False) if len(uv) else np.zeros(0, np.int64)
    inside = (z > 1e-6) & (u >= 0) & (u < camera.width) & (v >= 0) & (v < camera.height)
    out = np.zeros(len(points_world), dtype=bool)
    observed = perception.depth[v[inside], u[inside]]
    out[inside] = (observed > 0) & (observed > z[inside] + margin + 0.01 * z[inside])
    return out


def free_space_violation(points_world: np.ndarray, perception: PerceptionResult, margin: float = 0.03) -> float:
    """Share of points (or of points below the floor) that contradict the observed depth."""
    if len(points_world) == 0:
        return 0.0
    seen_through = free_space_mask(points_world, perception, margin)
    below_floor = points_world[:, 1] < -margin
    return float(np.mean(seen_through | below_floor))


def occupancy_to_mesh(occupancy: np.ndarray, origin: np.ndarray, cell: float) -> trimesh.Trimesh:
    """Marching cubes (scikit-image) of a padded boolean grid -> watertight mesh.

    occupancy : (X, Y, Z) bool, voxel (i, j, k) centred at origin + (i + 0.5, j + 0.5, k + 0.5) * cell.
    """
    from skimage.measure import marching_cubes

    padded = np.pad(occupancy.astype(np.float32), 1)
    smooth = ndimage.gaussian_filter(padded, sigma=0.6)
    level = min(0.5, 0.5 * float(smooth.max()))
    verts, faces, _, _ = marching_cubes(smooth, level=level)
    verts = origin + (verts - 1.0 + 0.5) * cell
    mesh = trimesh.Trimesh(verts, faces[:, ::-1], process=True)
    if mesh.volume < 0:
        mesh.invert()
    return mesh
