"""preview.png of a reconstruction: input | reprojected object masks over it | two novel views.

Rendering uses the project's EGL rasteriser (:mod:`sceneforge.render`); where no OpenGL context can
be made, a point-splat z-buffer of surface samples (numpy only) stands in, so a preview is always
written.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import trimesh
from PIL import Image

from sceneforge.geometry import invert_transform, project_points, rotation_y, transform_points
from sceneforge.types import Camera, Scene


@dataclass(frozen=True, eq=False)
class SplatRender:
    """rgb (H, W, 3) uint8, ids (H, W) int32 (0 = none, -1 = background), depth (H, W) metres (inf = empty)."""

    rgb: np.ndarray
    ids: np.ndarray
    depth: np.ndarray


def id_colour(object_id: int) -> np.ndarray:
    """A stable saturated colour (3,) uint8 for an object id."""
    rng = np.random.default_rng(object_id * 7919 + 17)
    hue = rng.random()
    rgb = np.array([abs(hue * 6 - 3) - 1, 2 - abs(hue * 6 - 2), 2 - abs(hue * 6 - 4)])
    return (np.clip(rgb, 0, 1) * 200 + 40).astype(np.uint8)


def splat(camera: Camera, points_world: np.ndarray, colours: np.ndarray, ids: np.ndarray,
          radius: int = 1) -> SplatRender:
    """Z-buffer (N, 3) world points with (N, 3) uint8 colours and (N,) int ids into ``camera``."""
    H, W = camera.height, camera.width
    rgb = np.full((H, W, 3), 255, np.uint8)
    id_map = np.zeros((H, W), np.int32)
    depth = np.full((H, W), np.inf)
    if len(points_world) == 0:
        return SplatRender(rgb, id_map, depth)
    pts_cam = transform_points(invert_transform(camera.T_world_cam), points_world)
    uv, z = project_points(camera, pts_cam)
    ok = z > 1e-3
    uv, z, colours, ids = uv[ok], z[ok], colours[ok], ids[ok]
    order = np.argsort(-z)  # far first, near overwrite
    uv, z, colours, ids = uv[order], z[order], colours[order], ids[order]
    u0 = np.round(uv[:, 0]).astype(int)
    v0 = np.round(uv[:, 1]).astype(int)
    for dv in range(-radius, radius + 1):
        for du in range(-radius, radius + 1):
            u, v = u0 + du, v0 + dv
            inside = (u >= 0) & (u < W) & (v >= 0) & (v < H)
            u, v, zz = u[inside], v[inside], z[inside]
            flat = v * W + u
            # the last write wins for duplicates; the nearest point is last thanks to the sort
            closer = zz <= depth.ravel()[flat]
            flat, sel = flat[closer], np.nonzero(inside)[0][closer]
            depth.ravel()[flat] = z[sel]
            rgb.reshape(-1, 3)[flat] = colours[sel]
            id_map.ravel()[flat] = ids[sel]
    return SplatRender(rgb, id_map, depth)


def scene_points(scene: Scene, n_object: int = 40000, n_background: int = 60000,
                 include_background: bool = True, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Surface samples of the scene: (points (N, 3) world, colours (N, 3) uint8, ids (N,) int)."""
    rng = np.random.default_rng(seed)
    pts, cols, ids = [], [], []
    for obj in scene.objects:
        mesh = obj.world_mesh()
        count = max(2000, n_object // max(len(scene.objects), 1))
        samples = _sample(mesh, count, rng)
        shade = _shading(mesh, samples)
        pts.append(samples)
        cols.append((id_colour(obj.id)[None, :] * shade[:, None]).astype(np.uint8))
        ids.append(np.full(len(samples), obj.id, np.int32))
    if include_background and scene.background is not None and len(scene.background.faces):
        bg = scene.background
        samples, face = trimesh.sample.sample_surface(bg, n_background, seed=int(rng.integers(1 << 31)))
        colours = np.full((len(samples), 3), 170, np.uint8)
        vc = getattr(bg.visual, "vertex_colors", None)
        if vc is not None and len(vc) == len(bg.vertices):
            colours = vc[bg.faces[face, 0], :3].astype(np.uint8)
        pts.append(samples)
        cols.append(colours)
        ids.append(np.full(len(samples), -1, np.int32))
    if not pts:
        return np.zeros((0, 3)), np.zeros((0, 3), np.uint8), np.zeros(0, np.int32)
    return np.concatenate(pts), np.concatenate(cols), np.concatenate(ids)


def _sample(mesh: trimesh.Trimesh, count: int, rng: np.random.Generator) -> np.ndarray:
    if len(mesh.faces) == 0:
        return np.asarray(mesh.vertices, dtype=np.float64)
    samples, _ = trimesh.sample.sample_surface(mesh, count, seed=int(rng.integers(1 << 31)))
    return np.asarray(samples)


def _shading(mesh: trimesh.Trimesh, samples: np.ndarray) -> np.ndarray:
    """Cheap height shading in [0.6, 1] so shapes read in the splat views."""
    y = samples[:, 1]
    span = max(float(np.ptp(y)), 1e-6)
    return 0.6 + 0.4 * (y - y.min()) / span


def novel_camera(camera: Camera, centre_world: np.ndarray, yaw_deg: float, lift_deg: float = 20.0) -> Camera:
    """The input camera orbited about the vertical axis through ``centre_world`` by ``yaw_deg`` and
    raised by ``lift_deg``, looking at the centre (same intrinsics)."""
    eye = camera.T_world_cam[:3, 3]
    offset = eye - centre_world
    offset = rotation_y(np.radians(yaw_deg)) @ offset
    horizontal = np.hypot(offset[0], offset[2])
    distance = np.linalg.norm(offset)
    elevation = np.arctan2(offset[1], horizontal) + np.radians(lift_deg)
    elevation = float(np.clip(elevation, np.radians(5), np.radians(80)))
    direction = np.array([offset[0], 0.0, offset[2]]) / max(horizontal, 1e-9)
    new_offset = distance * (np.cos(elevation) * direction + np.array([0.0, np.sin(elevation), 0.0]))
    return camera.with_pose(look_at(centre_world + new_offset, centre_world))


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 1.0, 0.0])) -> np.ndarray:
    """T_world_cam (4, 4) of an OpenCV camera at ``eye`` looking at ``target`` (world y up)."""
    z = np.asarray(target, float) - np.asarray(eye, float)
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-6:
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, z], axis=1)
    T[:3, 3] = eye
    return T


def reprojected_ids(scene: Scene, camera: Camera) -> np.ndarray:
    """(H, W) int32 object ids of the reconstructed objects seen from ``camera`` (0 = none)."""
    rendered = egl_render(scene, [camera], include_background=False)
    if rendered is not None:
        return rendered[0].ids
    pts, cols, ids = scene_points(scene, n_object=120000, include_background=False)
    return splat(camera, pts, cols, ids, radius=1).ids


def novel_views(scene: Scene, cameras: list[Camera]) -> list[np.ndarray]:
    """(H, W, 3) uint8 renders of the objects (id colours) and the background from ``cameras``."""
    rendered = egl_render(scene, cameras, include_background=True)
    if rendered is not None:
        return [r.rgb for r in rendered]
    pts, cols, pid = scene_points(scene)
    return [splat(camera, pts, cols, pid, radius=1).rgb for camera in cameras]


def egl_render(scene: Scene, cameras: list[Camera], include_background: bool) -> list[SplatRender] | None:
    """Render with the EGL rasteriser: objects in their id colours (Lambert shaded), the background
    mesh in its vertex colours, white behind. None when no OpenGL context can be created."""
    from sceneforge.errors import SceneforgeError

    try:
        from sceneforge.render.rasterizer import shared_rasterizer

        rasterizer = shared_rasterizer()
    except (SceneforgeError, ImportError):
        return None
    from sceneforge.render.scene import Backdrop, RenderMesh, RenderScene

    meshes, index_to_id = [], {}
    for index, obj in enumerate(scene.objects, start=1):
        if len(obj.mesh.faces) == 0:
            continue
        mesh = obj.mesh.copy()
        mesh.visual = trimesh.visual.ColorVisuals(mesh, face_colors=np.append(id_colour(obj.id), 255))
        meshes.append(RenderMesh(mesh, obj.pose.matrix, index))
        index_to_id[index] = obj.id
    background_index = len(scene.objects) + 1
    if include_background and scene.background is not None and len(scene.background.faces):
        meshes.append(RenderMesh(scene.background, np.eye(4), background_index))
    if not meshes:
        return None
    lookup = np.zeros(background_index + 1, np.int32)
    for index, object_id in index_to_id.items():
        lookup[index] = object_id
    lookup[background_index] = -1
    white = Backdrop("solid", (1.0, 1.0, 1.0), (1.0, 1.0, 1.0))
    outputs = rasterizer.render_views(RenderScene(tuple(meshes), environment=white), list(cameras))
    return [SplatRender(o.rgb, lookup[o.instances.astype(np.int64)], np.where(o.depth > 0, o.depth, np.inf))
            for o in outputs]


def preview_image(image: np.ndarray, scene: Scene, panel_height: int = 320) -> np.ndarray:
    """(h, 4w, 3) uint8 strip: input | reprojected masks over it | two novel views."""
    camera = scene.camera
    if camera is None:
        raise ValueError("a preview needs the scene's camera")
    ids = reprojected_ids(scene, camera)
    overlay = np.asarray(image).copy()
    for object_id in np.unique(ids[ids > 0]):
        m = ids == object_id
        overlay[m] = (0.45 * overlay[m] + 0.55 * id_colour(int(object_id))).astype(np.uint8)
    centres = [obj.pose.t for obj in scene.objects]
    centre = np.mean(centres, axis=0) if centres else camera.T_world_cam[:3, 3] + camera.T_world_cam[:3, 2]
    views = novel_views(scene, [novel_camera(camera, centre, yaw) for yaw in (-40.0, 40.0)])
    panels = [np.asarray(image), overlay] + views
    scale = panel_height / camera.height
    size = (max(1, int(round(camera.width * scale))), panel_height)
    resized = [np.asarray(Image.fromarray(p).resize(size, Image.BILINEAR)) for p in panels]
    return np.concatenate(resized, axis=1)


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
