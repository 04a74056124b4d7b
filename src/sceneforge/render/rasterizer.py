"""Headless EGL rasteriser (moderngl): RGB, instance ids, metric depth and normals in one pass.

One :class:`Rasterizer` owns one GL context with its programs and framebuffers; create it once per
process (:func:`shared_rasterizer`) and reuse it. A scene is uploaded once (:meth:`Rasterizer.upload`,
one vertex buffer per mesh) and then rendered from any number of cameras of any size and intrinsics.

On a CPU machine EGL runs on Mesa llvmpipe; on a GPU machine on the NVIDIA driver. Geometry is drawn
in the OpenCV camera frame with a projection that puts integer pixel coordinates at pixel centres
(projection.py), so depth back-projects with :func:`sceneforge.geometry.backproject_depth` exactly.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import trimesh

from sceneforge.errors import MissingDependencyError, SceneforgeError
from sceneforge.geometry.transforms import invert_transform
from sceneforge.render import shaders
from sceneforge.render.projection import gl_projection_from_camera
from sceneforge.render.scene import (
    BACKDROP_KINDS,
    Backdrop,
    RenderOutput,
    RenderScene,
    mesh_corner_attributes,
)
from sceneforge.types import Camera

#: Largest image side the rasteriser accepts, pixels.
MAX_IMAGE_SIDE = 8192
#: GPU memory for mesh buffers kept across scenes (``upload(reuse_meshes=True)``), bytes.
KEPT_MESH_BYTES = 256 * 2**20
_VERTEX_FORMAT = ("3f 3f 3f", "in_pos", "in_normal", "in_colour")


class RenderError(SceneforgeError, RuntimeError):
    """The GL context cannot be created or a render request is impossible."""


def _import_moderngl() -> Any:
    try:
        import moderngl
    except ImportError as exc:
        raise MissingDependencyError("moderngl", purpose="rendering") from exc
    return moderngl


@dataclass
class _Drawable:
    """One uploaded mesh: its vertex array and how to place it. ``kept``: the buffers belong to the
    rasteriser's kept meshes (released by it, not with the scene)."""

    vao: Any
    vbo: Any
    T_world_obj: np.ndarray
    instance_id: int
    kept: _KeptMesh | None = None


@dataclass
class _KeptMesh:
    """GPU buffers of one mesh kept across scenes; ``users``: uploaded scenes not yet released that
    draw it (only unused entries are dropped)."""

    mesh: trimesh.Trimesh
    vbo: Any
    vao: Any
    users: int = 0


class UploadedScene:
    """A :class:`RenderScene` whose meshes live in GPU buffers of one rasteriser; release when done."""

    def __init__(self, rasterizer: Rasterizer, scene: RenderScene, drawables: list[_Drawable],
                 ground_texture: Any, bounds_world: np.ndarray):
        self.rasterizer = rasterizer
        self.scene = scene
        self.drawables = drawables
        self.ground_texture = ground_texture
        self.bounds_world = bounds_world  # (2, 3) box of everything drawn, for near/far

    def release(self) -> None:
        """Free the GPU buffers (the rasteriser stays usable)."""
        for d in self.drawables:
            if d.kept is None:
                d.vao.release()
                d.vbo.release()
            else:
                d.kept.users -= 1
        if self.ground_texture is not None:
            self.ground_texture.release()
        self.drawables, self.ground_texture = [], None

    def __enter__(self) -> UploadedScene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Rasterizer:
    """A GL context with the surface and background programs and one framebuffer per image size.

    backend : "egl" (headless, default) or None for moderngl's default (a window system).
    device_index : EGL device to use (GPU index on a multi-GPU machine).
    """

    def __init__(self, backend: str | None = "egl", device_index: int = 0):
        moderngl = _import_moderngl()
        kwargs: dict[str, Any] = {"require": 330}
        if backend is not None:
            kwargs.update(backend=backend, device_index=device_index)
        try:
            self.ctx = moderngl.create_standalone_context(**kwargs)
        except Exception as exc:  # moderngl raises plain Exception for missing EGL/driver
            raise RenderError(f"cannot create an OpenGL 3.3 context (backend={backend!r}): {exc}") from exc
        self._moderngl = moderngl
        self.surface_program = self.ctx.program(vertex_shader=shaders.SURFACE_VERTEX,
                                                fragment_shader=shaders.SURFACE_FRAGMENT)
        self.background_program = self.ctx.program(vertex_shader=shaders.BACKGROUND_VERTEX,
                                                   fragment_shader=shaders.BACKGROUND_FRAGMENT)
        self.background_vao = self.ctx.vertex_array(self.background_program, [])
        self.background_program["albedo_texture"].value = 0
        self._targets: dict[tuple[int, int, bool], tuple[Any, list[Any]]] = {}
        # kept mesh buffers by id(mesh), least recently used first (see upload's reuse_meshes)
        self._kept: OrderedDict[int, _KeptMesh] = OrderedDict()
        self._kept_bytes = 0

    @property
    def renderer_name(self) -> str:
        """The GL renderer string, e.g. 'llvmpipe (LLVM 15.0.6, 256 bits)' or an NVIDIA GPU name."""
        return str(self.ctx.info["GL_RENDERER"])

    def upload(self, scene: RenderScene, reuse_meshes: bool = False) -> UploadedScene:
        """Upload every mesh of ``scene`` once (triangle soup with face normals and colours).

        reuse_meshes : keep each mesh's GPU buffer after the scene is released and use it again when
            a later scene holds the same mesh object (up to KEPT_MESH_BYTES, least recently used
            dropped first). Only for meshes that are never modified in place, such as an asset pool's.
        """
        drawables = []
        lows, highs = [], []
        for m in scene.meshes:
            if reuse_meshes:
                kept = self._kept_mesh(m.mesh)
                kept.users += 1
                drawables.append(_Drawable(kept.vao, kept.vbo, np.asarray(m.T_world_obj), m.instance_id, kept))
            else:
                vbo, vao = self._mesh_buffers(m.mesh)
                drawables.append(_Drawable(vao, vbo, np.asarray(m.T_world_obj), m.instance_id))
            corners = _box_corners(np.asarray(m.mesh.bounds))
            world = corners @ m.T_world_obj[:3, :3].T + m.T_world_obj[:3, 3]
            lows.append(world.min(axis=0))
            highs.append(world.max(axis=0))
        texture = None
        if scene.ground is not None:
            g = scene.ground
            c = np.array([g.centre_xz[0], g.height, g.centre_xz[1]])
            lows.append(c - [g.half_extent, 0.0, g.half_extent])
            highs.append(c + [g.half_extent, 0.0, g.half_extent])
            if g.texture is not None:
                texture = self._ground_texture(g.texture)
        bounds = np.stack([np.min(lows, axis=0), np.max(highs, axis=0)]) if lows else np.zeros((2, 3))
        self._drop_unused_kept()
        return UploadedScene(self, scene, drawables, texture, bounds)

    def render(self, uploaded: UploadedScene, camera: Camera, normals: bool = False,
               near: float | None = None, far: float | None = None) -> RenderOutput:
        """Render one camera. near/far default to the uploaded scene's depth range (metres)."""
        if uploaded.rasterizer is not self:
            raise RenderError("scene was uploaded to another rasteriser")
        W, H = camera.width, camera.height
        if max(W, H) > MAX_IMAGE_SIDE:
            raise RenderError(f"image size {W}x{H} exceeds the largest side {MAX_IMAGE_SIDE}")
        T_cam_world = invert_transform(camera.T_world_cam)
        if near is None or far is None:
            auto_near, auto_far = _depth_range(uploaded.bounds_world, T_cam_world)
            near = auto_near if near is None else near
            far = auto_far if far is None else far
        fbo, textures = self._framebuffer(W, H, normals)
        fbo.use()
        ctx = self.ctx
        ctx.disable(self._moderngl.CULL_FACE | self._moderngl.BLEND)
        ctx.enable(self._moderngl.DEPTH_TEST)
        ctx.depth_func = "1"  # always: the background pass writes every pixel of every target, no clear needed
        self._draw_background(uploaded, camera, far)
        ctx.depth_func = "<="
        P = gl_projection_from_camera(camera, near, far)
        self._set_frame_uniforms(uploaded, P, T_cam_world, far)
        self._draw_meshes(uploaded.drawables, T_cam_world)
        ctx.disable(self._moderngl.DEPTH_TEST)
        return self._read(fbo, W, H, normals)

    def render_views(self, scene: RenderScene, cameras: list[Camera], normals: bool = False) -> list[RenderOutput]:
        """Upload ``scene`` once, render every camera, free the buffers."""
        with self.upload(scene) as uploaded:
            return [self.render(uploaded, cam, normals=normals) for cam in cameras]

    def release(self) -> None:
        """Free the framebuffers, the kept mesh buffers and the context."""
        for fbo, textures in self._targets.values():
            fbo.release()
            for t in textures:
                t.release()
        self._targets.clear()
        for kept in self._kept.values():
            kept.vao.release()
            kept.vbo.release()
        self._kept.clear()
        self._kept_bytes = 0
        self.ctx.release()

    # -- internals ---------------------------------------------------------------------------

    def _mesh_buffers(self, mesh: trimesh.Trimesh) -> tuple[Any, Any]:
        """A new vertex buffer and vertex array of one mesh."""
        vbo = self.ctx.buffer(mesh_corner_attributes(mesh).tobytes())
        return vbo, self.ctx.vertex_array(self.surface_program, [(vbo, *_VERTEX_FORMAT)])

    def _kept_mesh(self, mesh: trimesh.Trimesh) -> _KeptMesh:
        """The kept buffers of ``mesh`` (by identity; the entry holds the mesh, so the id stays its own)."""
        kept = self._kept.get(id(mesh))
        if kept is not None and kept.mesh is mesh:
            self._kept.move_to_end(id(mesh))
            return kept
        vbo, vao = self._mesh_buffers(mesh)
        kept = self._kept[id(mesh)] = _KeptMesh(mesh, vbo, vao)
        self._kept_bytes += vbo.size
        return kept

    def _drop_unused_kept(self) -> None:
        """Release least recently used kept meshes that no live upload draws, down to KEPT_MESH_BYTES."""
        if self._kept_bytes <= KEPT_MESH_BYTES:
            return
        for key in [k for k, kept in self._kept.items() if kept.users == 0]:
            if self._kept_bytes <= KEPT_MESH_BYTES:
                break
            kept = self._kept.pop(key)
            self._kept_bytes -= kept.vbo.size
            kept.vao.release()
            kept.vbo.release()

    def _framebuffer(self, W: int, H: int, normals: bool) -> tuple[Any, list[Any]]:
        key = (W, H, normals)
        if key not in self._targets:
            ctx = self.ctx
            textures = [ctx.texture((W, H), 4, dtype="f1"), ctx.texture((W, H), 1, dtype="f4"),
                        ctx.texture((W, H), 1, dtype="u2")]
            if normals:
                textures.append(ctx.texture((W, H), 4, dtype="f4"))
            depth = ctx.depth_renderbuffer((W, H))
            fbo = ctx.framebuffer(color_attachments=textures, depth_attachment=depth)
            self._targets[key] = (fbo, textures + [depth])
        return self._targets[key]

    def _ground_texture(self, image: np.ndarray) -> Any:
        img = np.ascontiguousarray(image)  # row r of the image is texture t = (r + 0.5) / H, i.e. world +z
        tex = self.ctx.texture((img.shape[1], img.shape[0]), 3, img.tobytes(), alignment=1)
        tex.repeat_x = tex.repeat_y = True
        tex.build_mipmaps()
        tex.filter = (self._moderngl.LINEAR_MIPMAP_LINEAR, self._moderngl.LINEAR)
        return tex

    def _draw_background(self, uploaded: UploadedScene, camera: Camera, far: float) -> None:
        """Full-screen pass: ground plane (analytic ray hit) or sky; fills every pixel and the depth buffer."""
        scene = uploaded.scene
        env, light, ground = scene.environment, scene.lighting, scene.ground
        prog = self.background_program
        prog["K_inv"].write(_mat(np.linalg.inv(camera.K)))
        prog["R_world_cam"].write(_mat(camera.T_world_cam[:3, :3]))
        prog["cam_pos_world"].value = tuple(camera.T_world_cam[:3, 3])
        prog["far_plane"].value = float(far)
        if isinstance(env, Backdrop):
            prog["backdrop_kind"].value = 1 + BACKDROP_KINDS.index(env.kind)
            prog["colour_a"].value = tuple(env.colour_a)
            prog["colour_b"].value = tuple(env.colour_b)
        else:
            prog["backdrop_kind"].value = 0
            prog["zenith"].value = tuple(env.zenith)
            prog["horizon"].value = tuple(env.horizon)
            prog["nadir"].value = tuple(env.nadir)
        prog["image_size"].value = (float(camera.width), float(camera.height))
        prog["has_ground"].value = ground is not None
        if ground is not None:
            prog["ground_y"].value = ground.height
            prog["ground_centre"].value = tuple(ground.centre_xz)
            prog["ground_half_extent"].value = float(ground.half_extent)
            prog["ground_colour"].value = tuple(ground.colour)
            prog["tile_size"].value = float(ground.tile_size)
            prog["texture_origin"].value = tuple(ground.texture_origin_xz)
            side = 1.0 if camera.T_world_cam[1, 3] >= ground.height else -1.0  # the side the camera sees
            n_world = np.array([0.0, side, 0.0])
            l_world = np.asarray(light.direction_world, dtype=np.float64)
            lambert = max(float(n_world @ l_world) / float(np.linalg.norm(l_world)), 0.0)
            prog["ground_shade"].value = float(light.ambient + light.diffuse * lambert)
            prog["ground_normal_cam"].value = tuple(camera.T_world_cam[:3, :3].T @ n_world)
        prog["textured"].value = uploaded.ground_texture is not None
        if uploaded.ground_texture is not None:
            uploaded.ground_texture.use(location=0)
        self.background_vao.render(self._moderngl.TRIANGLES, vertices=3)

    def _set_frame_uniforms(self, uploaded: UploadedScene, P: np.ndarray, T_cam_world: np.ndarray,
                            far: float) -> None:
        light = uploaded.scene.lighting
        l_world = np.asarray(light.direction_world, dtype=np.float64)
        l_cam = T_cam_world[:3, :3] @ (l_world / np.linalg.norm(l_world))
        prog = self.surface_program
        prog["P"].write(_mat(P))
        prog["far_plane"].value = float(far)
        prog["light_cam"].value = tuple(l_cam)
        prog["ambient"].value = float(light.ambient)
        prog["diffuse"].value = float(light.diffuse)

    def _draw_meshes(self, drawables: list[_Drawable], T_cam_world: np.ndarray) -> None:
        """Draw every mesh; their model-view and normal matrices computed for all meshes at once."""
        if not drawables:
            return
        prog = self.surface_program
        T_cam_obj = T_cam_world @ np.stack([d.T_world_obj for d in drawables])
        N_cam_obj = np.linalg.inv(T_cam_obj[:, :3, :3]).transpose(0, 2, 1)
        # column-major float32 bytes, as GLSL expects
        model_view = np.ascontiguousarray(T_cam_obj.transpose(0, 2, 1), dtype=np.float32)
        normal = np.ascontiguousarray(N_cam_obj.transpose(0, 2, 1), dtype=np.float32)
        for d, mv, n in zip(drawables, model_view, normal):
            prog["T_cam_obj"].write(mv.tobytes())
            prog["N_cam_obj"].write(n.tobytes())
            prog["instance_id"].value = d.instance_id
            d.vao.render(self._moderngl.TRIANGLES)

    def _read(self, fbo: Any, W: int, H: int, normals: bool) -> RenderOutput:
        rgb = np.frombuffer(fbo.read(attachment=0, components=3, alignment=1), np.uint8).reshape(H, W, 3)
        depth = np.frombuffer(fbo.read(attachment=1, components=1, dtype="f4"), np.float32).reshape(H, W)
        ids = np.frombuffer(fbo.read(attachment=2, components=1, dtype="u2", alignment=1),
                            np.uint16).reshape(H, W)
        nrm = None
        if normals:
            nrm = np.frombuffer(fbo.read(attachment=3, components=3, dtype="f4"), np.float32).reshape(H, W, 3)
        return RenderOutput(rgb=rgb, instances=ids, depth=depth, normals=nrm)


def _mat(M: np.ndarray) -> bytes:
    """Column-major float32 bytes of a matrix, as GLSL expects."""
    return np.ascontiguousarray(np.asarray(M, dtype=np.float32).T).tobytes()


def _box_corners(bounds: np.ndarray) -> np.ndarray:
    """(2, 3) [min, max] -> (8, 3) corners."""
    idx = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    return bounds[idx, [0, 1, 2]]


def _depth_range(bounds_world: np.ndarray, T_cam_world: np.ndarray) -> tuple[float, float]:
    """near/far (metres) that enclose a world box seen from a camera, with margins."""
    corners = _box_corners(bounds_world)
    z = corners @ T_cam_world[2, :3] + T_cam_world[2, 3]
    far = max(float(z.max()) * 1.05, 1.0)
    return 1e-3, far


_SHARED: dict[int, Rasterizer] = {}


def shared_rasterizer(backend: str | None = "egl", device_index: int = 0) -> Rasterizer:
    """The rasteriser of this process, created on first use (one GL context per worker process)."""
    pid = os.getpid()
    if pid not in _SHARED:
        _SHARED.clear()  # a forked child must not use its parent's context
        _SHARED[pid] = Rasterizer(backend=backend, device_index=device_index)
    return _SHARED[pid]
