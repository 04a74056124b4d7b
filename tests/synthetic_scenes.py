"""A small ray-cast RGB-D scene with exact ground truth, for reconstruction tests.

Boxes and cylinders standing on a floor in front of a wall, seen by a camera tilted down; depth
and instance ids come from ray casting (trimesh, embree when available). Independent of the
engine's renderer on purpose: the test then checks the pipeline against a second implementation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from sceneforge.geometry import rotation_y
from sceneforge.preview import look_at
from sceneforge.shape.base import canonicalise
from sceneforge.types import Camera, Scene, SceneInput, SceneObject


@dataclass(frozen=True, eq=False)
class SyntheticView:
    scene_input: SceneInput
    ground_truth: Scene  # world = y-up floor frame, camera carries T_world_cam


def make_view(seed: int = 0, n_objects: int = 3, width: int = 192, height: int = 144,
              hfov_deg: float = 60.0) -> SyntheticView:
    rng = np.random.default_rng(seed)
    objects = []
    placed: list[tuple[float, float, float]] = []
    while len(objects) < n_objects:
        kind = "box" if rng.random() < 0.6 else "cylinder"
        sx, sy, sz = rng.uniform(0.3, 0.9), rng.uniform(0.3, 1.0), rng.uniform(0.3, 0.8)
        x, z = rng.uniform(-1.3, 1.3), rng.uniform(-1.2, 0.6)
        radius = 0.5 * np.hypot(sx, sz)
        if any(np.hypot(x - px, z - pz) < radius + pr + 0.05 for px, pz, pr in placed):
            continue
        placed.append((x, z, radius))
        mesh = (trimesh.creation.box((sx, sy, sz)) if kind == "box"
                else trimesh.creation.cylinder(radius=0.5 * min(sx, sz), height=sy, sections=32))
        if kind == "cylinder":
            mesh.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))
        T = np.eye(4)
        T[:3, :3] = rotation_y(rng.uniform(-np.pi / 4, np.pi / 4))
        T[:3, 3] = [x, sy / 2, z]
        mesh.apply_transform(T)
        objects.append((kind, mesh))
    floor = trimesh.creation.box((8.0, 0.02, 8.0))
    floor.apply_translation([0, -0.01, -1.0])
    wall = trimesh.creation.box((8.0, 4.0, 0.02))
    wall.apply_translation([0, 2.0, -2.5])
    eye = np.array([rng.uniform(-0.4, 0.4), rng.uniform(1.4, 1.9), rng.uniform(2.6, 3.2)])
    T_world_cam = look_at(eye, np.array([0.0, 0.3, -0.4]))
    camera = Camera.from_fov(width, height, hfov_deg, T_world_cam)
    meshes = [m for _, m in objects] + [floor, wall]
    depth, ids, shade = _ray_cast(camera, meshes)
    palette = rng.integers(40, 230, size=(len(meshes) + 1, 3))
    image = (palette[np.where(ids < 0, len(meshes), ids)] * shade[..., None]).clip(0, 255).astype(np.uint8)
    instances = np.where((ids >= 0) & (ids < len(objects)), ids + 1, 0).astype(np.int32)
    labels = {i + 1: kind for i, (kind, _) in enumerate(objects)}
    scene_input = SceneInput(image=image, instances=instances, depth=depth.astype(np.float32),
                             camera=camera.with_pose(np.eye(4)), labels=labels, source=f"synthetic-{seed}")
    gt_objects = []
    for i, (kind, mesh) in enumerate(objects):
        canonical, pose = canonicalise(mesh, 0.0)
        gt_objects.append(SceneObject(i + 1, kind, canonical, pose))
    ground_truth = Scene(objects=tuple(gt_objects), camera=camera)
    return SyntheticView(scene_input, ground_truth)


def _ray_cast(camera: Camera, meshes: list[trimesh.Trimesh]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(depth (H, W) metres along z, mesh index (H, W) or -1, Lambert shade (H, W))."""
    combined = trimesh.util.concatenate(meshes)
    owner = np.concatenate([np.full(len(m.faces), i) for i, m in enumerate(meshes)])
    H, W = camera.height, camera.width
    v, u = np.mgrid[0:H, 0:W]
    dirs_cam = np.stack([(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, np.ones_like(u, float)], -1)
    dirs_cam = dirs_cam.reshape(-1, 3)
    R, t = camera.T_world_cam[:3, :3], camera.T_world_cam[:3, 3]
    dirs = dirs_cam @ R.T
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    origins = np.repeat(t[None], len(dirs), 0)
    locations, ray_index, tri_index = combined.ray.intersects_location(origins, dirs, multiple_hits=False)
    depth = np.zeros(H * W)
    ids = np.full(H * W, -1)
    shade = np.ones(H * W)
    z = (locations - t) @ R[:, 2]
    depth[ray_index] = z
    ids[ray_index] = owner[tri_index]
    normals = combined.face_normals[tri_index]
    light = np.array([0.3, 0.9, 0.4]) / np.linalg.norm([0.3, 0.9, 0.4])
    shade[ray_index] = 0.45 + 0.55 * np.abs(normals @ light)
    return depth.reshape(H, W), ids.reshape(H, W), shade.reshape(H, W)
