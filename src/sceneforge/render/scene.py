"""What the rasteriser draws and what it returns: plain frozen dataclasses, no GL here.

A :class:`RenderScene` is a list of coloured meshes with world poses and instance ids, an optional
textured ground plane, an environment (sky gradient seen where nothing is drawn) and a directional
light. A :class:`RenderOutput` holds the rendered passes of one camera.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import trimesh

from sceneforge.types import Plane, frozen_array

#: Albedo used for meshes that carry no colour, RGB in [0, 1].
DEFAULT_ALBEDO = (0.7, 0.7, 0.7)
#: Largest instance id an index map of 16 bits can hold.
MAX_INSTANCE_ID = 65535


@dataclass(frozen=True, eq=False)
class RenderMesh:
    """One drawable object.

    mesh : trimesh.Trimesh in its own frame (metres); colours come from its face or vertex colours.
    T_world_obj : (4, 4) float64 pose, may include (per-axis) scale.
    instance_id : written into the instance map, 1..65535 (0 is background).
    """

    mesh: trimesh.Trimesh
    T_world_obj: np.ndarray
    instance_id: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "T_world_obj", frozen_array(self.T_world_obj, shape=(4, 4), name="T_world_obj"))
        object.__setattr__(self, "instance_id", int(self.instance_id))
        if not 1 <= self.instance_id <= MAX_INSTANCE_ID:
            raise ValueError(f"instance_id must be in [1, {MAX_INSTANCE_ID}], got {self.instance_id}")
        if len(self.mesh.faces) == 0:
            raise ValueError(f"mesh of instance {self.instance_id} has no faces")


@dataclass(frozen=True, eq=False)
class Ground:
    """A square of the plane ``plane`` drawn under the scene (instance id 0, but with depth).

    plane : the ground plane; only horizontal planes (normal +y, world y-up) are supported.
    centre_xz : (2,) world x, z of the square's centre, metres.  half_extent : half its side, metres.
    colour : RGB in [0, 1], used when ``texture`` is None.
    texture : (H, W, 3) uint8 image tiled over the ground in world x/z, or None: texture pixel
        [r, c] covers x - ox in [c, c + 1] * tile_size / W and z - oz in [r, r + 1] * tile_size / H
        (mod tile_size), with (ox, oz) = ``texture_origin_xz``: rows grow towards +z, columns towards +x.
    tile_size : metres covered by one copy of the texture (both directions).
    texture_origin_xz : (2,) world x, z of the texture's corner (row 0, column 0), metres.
    """

    plane: Plane = field(default_factory=lambda: Plane(np.array([0.0, 1.0, 0.0]), 0.0))
    centre_xz: np.ndarray = field(default_factory=lambda: np.zeros(2))
    half_extent: float = 50.0
    colour: tuple[float, float, float] = (0.55, 0.52, 0.48)
    texture: np.ndarray | None = None
    tile_size: float = 2.0
    texture_origin_xz: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def __post_init__(self) -> None:
        object.__setattr__(self, "texture_origin_xz", frozen_array(self.texture_origin_xz, shape=(2,), name="texture_origin_xz"))
        nx, ny, nz = self.plane.normal.tolist()  # np.allclose(normal, +y, atol=1e-9) on floats, faster
        if not (abs(nx) <= 1e-9 and abs(ny - 1.0) <= 1e-9 + 1e-5 and abs(nz) <= 1e-9):
            raise ValueError(f"ground plane must be horizontal with normal +y, got {self.plane.normal.tolist()}")
        object.__setattr__(self, "centre_xz", frozen_array(self.centre_xz, shape=(2,), name="centre_xz"))
        if not self.half_extent > 0 or not self.tile_size > 0:
            raise ValueError(f"ground half_extent and tile_size must be positive, got {self.half_extent}, {self.tile_size}")
        if self.texture is not None:
            tex = frozen_array(self.texture, dtype=np.uint8, name="texture")
            if tex.ndim != 3 or tex.shape[2] != 3:
                raise ValueError(f"ground texture must be (H, W, 3) uint8, got {tex.shape}")
            object.__setattr__(self, "texture", tex)

    @property
    def height(self) -> float:
        """World y of the ground, metres."""
        return -self.plane.offset


@dataclass(frozen=True)
class Environment:
    """Sky gradient seen where no surface is drawn: RGB in [0, 1] by the world elevation of the ray."""

    zenith: tuple[float, float, float] = (0.45, 0.62, 0.85)
    horizon: tuple[float, float, float] = (0.86, 0.89, 0.93)
    nadir: tuple[float, float, float] = (0.35, 0.33, 0.30)


BACKDROP_KINDS = ("solid", "vertical_gradient", "radial_gradient")


@dataclass(frozen=True)
class Backdrop:
    """A picture behind the scene in image space (instead of a sky), RGB in [0, 1].

    kind : "solid" (colour_a), "vertical_gradient" (colour_a on the top row -> colour_b on the bottom
        row) or "radial_gradient" (colour_a at the image centre -> colour_b at the corners, by the
        distance r = hypot((u - cx) / (W / 2), (v - cy) / (H / 2)) / sqrt(2) from the image centre).
    """

    kind: str = "solid"
    colour_a: tuple[float, float, float] = (0.8, 0.8, 0.8)
    colour_b: tuple[float, float, float] = (0.8, 0.8, 0.8)

    def __post_init__(self) -> None:
        if self.kind not in BACKDROP_KINDS:
            raise ValueError(f"backdrop kind must be one of {', '.join(BACKDROP_KINDS)}, got {self.kind!r}")


@dataclass(frozen=True)
class Lighting:
    """Lambert + ambient: ``albedo * (ambient + diffuse * max(0, n . l))``.

    direction_world : (3,) direction *towards* the light (need not be unit).
    """

    direction_world: tuple[float, float, float] = (0.35, 1.0, 0.55)
    ambient: float = 0.35
    diffuse: float = 0.7


@dataclass(frozen=True, eq=False)
class RenderScene:
    """Everything one rasteriser upload needs; ``environment`` is a sky (Environment) or a Backdrop."""

    meshes: tuple[RenderMesh, ...]
    ground: Ground | None = None
    environment: Environment | Backdrop = field(default_factory=Environment)
    lighting: Lighting = field(default_factory=Lighting)

    def __post_init__(self) -> None:
        object.__setattr__(self, "meshes", tuple(self.meshes))
        ids = [m.instance_id for m in self.meshes]
        if len(set(ids)) != len(ids):
            raise ValueError(f"instance ids must be unique, got {ids}")


@dataclass(frozen=True, eq=False)
class RenderOutput:
    """The passes of one rendered camera, pixel (u, v) at ``[v, u]`` (OpenCV convention).

    rgb : (H, W, 3) uint8.
    instances : (H, W) uint16 instance ids, 0 = background and ground.
    depth : (H, W) float32 metres along the camera z axis, 0 where nothing (not even ground) was hit.
    normals : (H, W, 3) float32 unit normals in the camera frame, turned towards the camera,
        0 where nothing was hit; None when not requested.
    """

    rgb: np.ndarray
    instances: np.ndarray
    depth: np.ndarray
    normals: np.ndarray | None = None

    def visible_pixels(self, instance_ids: list[int] | tuple[int, ...]) -> dict[int, int]:
        """Pixel count of each requested instance id (0 when not visible)."""
        wanted = [int(i) for i in instance_ids]
        if len(wanted) <= 8:  # one comparison pass per id: faster than a sort for a few ids
            return {i: int(np.count_nonzero(self.instances == i)) if 0 <= i <= 65535 else 0 for i in wanted}
        present, counts = np.unique(self.instances, return_counts=True)  # a 16-bit sort: faster than bincount
        found = dict(zip(present.tolist(), counts.tolist()))
        return {i: found.get(i, 0) for i in wanted}


def mesh_corner_attributes(mesh: trimesh.Trimesh) -> np.ndarray:
    """Triangle soup of a mesh: (3F, 9) float32 rows of position (3), face normal (3), RGB (3).

    Per-face colours stay flat; vertex colours are kept per corner; no colour gives DEFAULT_ALBEDO.
    """
    faces = np.asarray(mesh.faces)
    positions = np.asarray(mesh.vertices, dtype=np.float64)[faces].reshape(-1, 3)
    normals = np.repeat(_face_normals(mesh), 3, axis=0)
    colours = _corner_colours(mesh).reshape(-1, 3)
    return np.concatenate([positions, normals, colours], axis=1).astype(np.float32)


def _face_normals(mesh: trimesh.Trimesh) -> np.ndarray:
    """(F, 3) unit face normals from the winding; degenerate faces get +y."""
    tri = np.asarray(mesh.vertices, dtype=np.float64)[np.asarray(mesh.faces)]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.where(length > 0, n / np.maximum(length, 1e-300), np.array([0.0, 1.0, 0.0]))


def _corner_colours(mesh: trimesh.Trimesh) -> np.ndarray:
    """(F, 3, 3) RGB in [0, 1] per face corner."""
    F = len(mesh.faces)
    visual = mesh.visual
    kind = getattr(visual, "kind", None)
    if kind == "face":
        rgb = np.asarray(visual.face_colors)[:, :3].astype(np.float64) / 255.0
        return np.repeat(rgb[:, None, :], 3, axis=1)
    if kind == "vertex":
        rgb = np.asarray(visual.vertex_colors)[:, :3].astype(np.float64) / 255.0
        return rgb[np.asarray(mesh.faces)]
    if kind == "texture":
        rgb = np.asarray(visual.to_color().vertex_colors)[:, :3].astype(np.float64) / 255.0
        return rgb[np.asarray(mesh.faces)]
    return np.broadcast_to(np.asarray(DEFAULT_ALBEDO), (F, 3, 3)).copy()
