"""Synthetic pose problems for the pose tests: primitives on a floor, masks and depth by ray casting
(trimesh/embree, independent of the soft renderer under test)."""

from __future__ import annotations

import numpy as np
import trimesh

from sceneforge.geometry import backproject_depth, rotation_y, transform_points
from sceneforge.pose import PoseProblem, PoseTarget, floor_mask_from_depth
from sceneforge.types import Camera, Plane, Similarity


def look_at(eye, target) -> np.ndarray:
    """(4, 4) T_world_cam of an OpenCV camera at ``eye`` looking at ``target`` (world y up)."""
    eye = np.asarray(eye, float)
    z = np.asarray(target, float) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, -1.0, 0.0])
    x /= np.linalg.norm(x)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, np.cross(z, x), z, eye
    return T


def raycast(camera: Camera, meshes: list[trimesh.Trimesh]):
    """-> (ids (H, W) 0 = none, depth (H, W) metres along z, amodal masks list of (H, W) bool)."""
    W, H = camera.width, camera.height
    us, vs = np.meshgrid(np.arange(W) + 0.0, np.arange(H) + 0.0)
    pix = np.stack([us.ravel(), vs.ravel(), np.ones(us.size)], 1)
    T = camera.T_world_cam
    dirs = (pix @ np.linalg.inv(camera.K).T) @ T[:3, :3].T
    origins = np.repeat(T[:3, 3][None], len(dirs), 0)
    depth = np.full(W * H, np.inf)
    ids = np.zeros(W * H, int)
    amodal = []
    for k, mesh in enumerate(meshes):
        loc, ray, _ = mesh.ray.intersects_location(origins, dirs, multiple_hits=False)
        z = ((loc - T[:3, 3]) @ T[:3, :3])[:, 2]
        hit = np.zeros(W * H, bool)
        hit[ray] = True
        amodal.append(hit.reshape(H, W))
        closer = z < depth[ray]
        depth[ray[closer]] = z[closer]
        ids[ray[closer]] = k + 1
    depth[~np.isfinite(depth)] = 0.0
    return ids.reshape(H, W), depth.reshape(H, W).astype(np.float32), amodal


def canonical(mesh: trimesh.Trimesh) -> tuple[trimesh.Trimesh, float]:
    """Box-centred, unit-largest-side copy and its size."""
    m = mesh.copy()
    lo, hi = m.bounds
    m.apply_translation(-(lo + hi) / 2)
    size = float(np.max(hi - lo))
    m.apply_scale(1.0 / size)
    return m, size


DEFAULT_OBJECTS = (
    (trimesh.creation.box((1.0, 0.8, 0.6)), (-0.7, 0.0, 0.3, 0.3)),
    (trimesh.creation.cylinder(0.3, 0.9, sections=24), (0.6, 0.0, -0.2, 0.0)),
    (trimesh.creation.box((0.4, 0.2, 0.3)), (-0.7, 0.8, 0.3, 0.5)),
)


def make_scene(objects=DEFAULT_OBJECTS, size=(160, 120), perturb=(0.3, 0.08, 0.08), seed=1,
               with_background=True):
    """-> (PoseProblem with perturbed initial poses, ground-truth Similarity list, world meshes).

    objects : ((mesh, (x, bottom y, z, yaw)), ...); perturb : (yaw rad, translation m, log-scale) maxima.
    """
    W, H = size
    camera = Camera.from_fov(W, H, 60.0, look_at((0, 1.6, -3.2), (0, 0.4, 0)))
    floor = Plane(np.array([0.0, 1.0, 0.0]), 0.0)
    rng = np.random.default_rng(seed)
    truths, canon, world = [], [], []
    for mesh, (x, bottom, z, yaw) in objects:
        c, s = canonical(mesh)
        height = (c.bounds[1, 1] - c.bounds[0, 1]) * s
        pose = Similarity(rotation_y(yaw), np.array([x, bottom + height / 2, z]), s)
        truths.append(pose)
        canon.append(c)
        w = c.copy()
        w.apply_transform(pose.matrix)
        world.append(w)
    ids, depth, amodal = raycast(camera, world)
    ground = trimesh.creation.box((12.0, 0.01, 12.0))
    ground.apply_translation((0, -0.005, 0))
    _, ground_depth, _ = raycast(camera, [ground])
    floor_mask = floor_mask_from_depth(camera, np.where(ids == 0, ground_depth, 0).astype(np.float32), floor, ids)
    targets = []
    for k, (c, pose) in enumerate(zip(canon, truths)):
        visible = ids == k + 1
        points = transform_points(camera.T_world_cam, backproject_depth(camera, depth, visible))
        dyaw, dt, ds = perturb
        shift = rng.uniform(-dt, dt, 3) * np.array([1.0, 0.0 if objects[k][1][1] == 0 else 1.0, 1.0])
        initial = Similarity(rotation_y(rng.uniform(-dyaw, dyaw)) @ pose.R, pose.t + shift,
                             pose.s * np.exp(rng.uniform(-ds, ds)))
        targets.append(PoseTarget(k + 1, c, initial, amodal[k], visible, points))
    problem = PoseProblem(camera, floor, tuple(targets), floor_mask, ground if with_background else None)
    return problem, truths, world


def pose_error(estimate: Similarity, truth: Similarity) -> tuple[float, float, float]:
    """(rotation degrees, translation metres, |log scale ratio|)."""
    R = estimate.R.T @ truth.R
    angle = float(np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1))))
    return angle, float(np.linalg.norm(estimate.t - truth.t)), float(abs(np.log(estimate.s / truth.s)))
