"""The data model every stage shares: frozen dataclasses with shapes and units.

Conventions (DESIGN.md): metres; OpenCV camera frame (x right, y down, z forward); y-up world;
4x4 column-vector transforms named ``T_a_b`` mapping frame-b points into frame a; canonical object
frame = bounding box centred at the origin, y up, front facing +z.

Arrays are copied to read-only float64 (or the documented dtype) on construction, so a frozen
object really cannot change under a stage that holds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import trimesh

from sceneforge.errors import CameraError, DepthError, MaskError


def frozen_array(array: Any, dtype: Any = np.float64, shape: tuple[int | None, ...] | None = None,
            name: str = "array") -> np.ndarray:
    """A read-only copy of ``array`` as ``dtype``, checked against ``shape`` (None = any)."""
    out = np.array(array, dtype=dtype, copy=True)
    if shape is not None and out.shape != shape:  # an exact match needs no per-axis look
        if out.ndim != len(shape) or any(s is not None and s != o for s, o in zip(shape, out.shape)):
            raise ValueError(f"{name} must have shape {shape}, got {out.shape}")
    out.setflags(write=False)
    return out


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True, eq=False)
class Camera:
    """Pinhole camera in the OpenCV convention.

    K : (3, 3) float64, intrinsics in pixels (fx, fy > 0; no skew expected).
    width, height : image size in pixels.
    T_world_cam : (4, 4) float64, camera-to-world rigid transform (identity: world = camera frame).
    """

    K: np.ndarray
    width: int
    height: int
    T_world_cam: np.ndarray = field(default_factory=lambda: np.eye(4))

    def __post_init__(self) -> None:
        _set(self, "K", frozen_array(self.K, shape=(3, 3), name="K"))
        _set(self, "T_world_cam", frozen_array(self.T_world_cam, shape=(4, 4), name="T_world_cam"))
        _set(self, "width", int(self.width))
        _set(self, "height", int(self.height))
        if not np.all(np.isfinite(self.K)):
            raise CameraError(None, f"intrinsics must be finite, got K={self.K.tolist()}")
        if self.K[0, 0] <= 0 or self.K[1, 1] <= 0:
            raise CameraError(None, f"focal length must be positive, got fx={self.fx:g}, fy={self.fy:g}")
        if self.width <= 0 or self.height <= 0:
            raise CameraError(None, f"image size must be positive, got {self.width}x{self.height}")

    @classmethod
    def from_intrinsics(cls, fx: float, fy: float, cx: float, cy: float, width: int, height: int,
                        T_world_cam: np.ndarray | None = None) -> Camera:
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        return cls(K, width, height, np.eye(4) if T_world_cam is None else T_world_cam)

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float = 60.0,
                 T_world_cam: np.ndarray | None = None) -> Camera:
        """Square pixels, principal point at the image centre ((W-1)/2, (H-1)/2: OpenCV puts integer
        coordinates at pixel centres), horizontal field of view in degrees."""
        if not 0.0 < hfov_deg < 180.0:
            raise CameraError(None, f"horizontal field of view must be in (0, 180) degrees, got {hfov_deg}")
        f = 0.5 * width / np.tan(np.radians(hfov_deg) / 2.0)
        return cls.from_intrinsics(f, f, (width - 1) / 2.0, (height - 1) / 2.0, width, height, T_world_cam)

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @property
    def hfov_deg(self) -> float:
        return float(np.degrees(2.0 * np.arctan(0.5 * self.width / self.fx)))

    def with_pose(self, T_world_cam: np.ndarray) -> Camera:
        """This camera (the same checked, read-only intrinsics) at the pose ``T_world_cam`` (4, 4)."""
        camera = object.__new__(Camera)
        _set(camera, "K", self.K)
        _set(camera, "width", self.width)
        _set(camera, "height", self.height)
        _set(camera, "T_world_cam", frozen_array(T_world_cam, shape=(4, 4), name="T_world_cam"))
        return camera

    def to_dict(self) -> dict[str, Any]:
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy, "width": self.width,
                "height": self.height, "T_world_cam": self.T_world_cam.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Camera:
        T = data.get("T_world_cam")
        return cls.from_intrinsics(data["fx"], data["fy"], data["cx"], data["cy"], data["width"],
                                   data["height"], None if T is None else np.asarray(T))


@dataclass(frozen=True, eq=False)
class Similarity:
    """Similarity transform ``x' = R @ (s * x) + t`` (scale first, then rotation, then translation).

    R : (3, 3) float64 rotation (det +1).
    t : (3,) float64 translation, metres.
    s : uniform scale (float) or per-axis scale (3,) along the object's own axes; positive.
    """

    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    t: np.ndarray = field(default_factory=lambda: np.zeros(3))
    s: float | np.ndarray = 1.0

    def __post_init__(self) -> None:
        _set(self, "R", frozen_array(self.R, shape=(3, 3), name="R"))
        _set(self, "t", frozen_array(self.t, shape=(3,), name="t"))
        s = np.asarray(self.s, dtype=np.float64)
        if s.ndim == 0:
            _set(self, "s", float(s))
        else:
            _set(self, "s", frozen_array(s, shape=(3,), name="s"))
        if np.any(np.asarray(self.s) <= 0) or not np.all(np.isfinite(self.s)):
            raise ValueError(f"scale must be positive and finite, got {self.s}")

    @property
    def is_uniform(self) -> bool:
        return isinstance(self.s, float)

    @property
    def scale_xyz(self) -> np.ndarray:
        """(3,) per-axis scale (the uniform scale repeated when uniform)."""
        return np.full(3, self.s) if self.is_uniform else np.asarray(self.s)

    @property
    def matrix(self) -> np.ndarray:
        """(4, 4) float64 homogeneous matrix ``[R @ diag(s) | t]`` (a new array)."""
        T = np.eye(4)
        T[:3, :3] = self.R * self.s  # a uniform s as a number: the products of the per-axis form, faster
        T[:3, 3] = self.t
        return T

    @classmethod
    def from_matrix(cls, T: np.ndarray, per_axis: bool = False, atol: float = 1e-6) -> Similarity:
        """Decompose ``T = [R diag(s) | t]``. Column norms give s; the rotation is projected onto
        SO(3). With ``per_axis=False`` the columns must share one norm (within ``atol``, relative)."""
        T = np.asarray(T, dtype=np.float64)
        if T.shape != (4, 4):
            raise ValueError(f"expected a (4, 4) matrix, got {T.shape}")
        A = T[:3, :3]
        s = np.linalg.norm(A, axis=0)
        if np.any(s <= 0):
            raise ValueError("matrix has a zero-length axis: not a similarity")
        R = A / s[None, :]
        U, _, Vt = np.linalg.svd(R)
        if np.linalg.det(U @ Vt) < 0:
            raise ValueError("matrix contains a reflection: not a similarity")
        R = U @ Vt
        if per_axis:
            return cls(R, T[:3, 3], s)
        if np.ptp(s) > atol * max(1.0, float(s.mean())):
            raise ValueError(f"matrix has per-axis scale {s.tolist()}; use per_axis=True")
        return cls(R, T[:3, 3], float(s.mean()))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """points : (N, 3) in the source frame -> (N, 3) in the target frame."""
        points = np.asarray(points, dtype=np.float64)
        return (points * self.s) @ self.R.T + self.t  # s a number or (3,): the per-axis products either way

    def inverse(self) -> Similarity:
        """Inverse of a uniform similarity (per-axis scale has no inverse of this form)."""
        if not self.is_uniform:
            raise ValueError("only a uniform-scale similarity has an inverse of the same form")
        inv_s = 1.0 / float(self.s)
        return Similarity(self.R.T, -inv_s * (self.R.T @ self.t), inv_s)

    def __matmul__(self, other: Similarity) -> Similarity:
        """Composition ``(self @ other).apply(x) == self.apply(other.apply(x))``; ``self`` uniform."""
        if not self.is_uniform:
            raise ValueError("composition needs a uniform-scale left operand")
        s = float(self.s)
        return Similarity(self.R @ other.R, self.apply(other.t[None])[0],
                          s * other.s if other.is_uniform else s * np.asarray(other.s))


@dataclass(frozen=True, eq=False)
class Plane:
    """Plane ``normal . x + offset = 0``; ``normal`` (3,) unit length, pointing to the free side (up)."""

    normal: np.ndarray
    offset: float

    def __post_init__(self) -> None:
        n = np.asarray(self.normal, dtype=np.float64)
        norm = float(np.linalg.norm(n))
        if n.shape != (3,) or not np.isfinite(norm) or norm == 0:
            raise ValueError(f"plane normal must be a non-zero (3,) vector, got {self.normal}")
        _set(self, "normal", frozen_array(n / norm))
        _set(self, "offset", float(self.offset) / norm)

    @classmethod
    def from_point_normal(cls, point: np.ndarray, normal: np.ndarray) -> Plane:
        n = np.asarray(normal, dtype=np.float64)
        n = n / np.linalg.norm(n)
        return cls(n, -float(n @ np.asarray(point, dtype=np.float64)))

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """points : (N, 3) metres -> (N,) signed distance, positive on the normal's side."""
        return np.asarray(points, dtype=np.float64) @ self.normal + self.offset

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) -> (N, 3) closest points on the plane."""
        points = np.asarray(points, dtype=np.float64)
        return points - self.signed_distance(points)[:, None] * self.normal[None, :]

    def to_dict(self) -> dict[str, Any]:
        return {"normal": self.normal.tolist(), "offset": self.offset}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plane:
        return cls(np.asarray(data["normal"]), float(data["offset"]))


@dataclass(frozen=True, eq=False)
class Normalisation:
    """Scene normalisation ``p_norm = (p - centre) / scale`` in the named frame.

    I-Scene's view-centric normalisation: frame "camera", centre = bounding-box centre of the scene
    in that camera's frame, scale = the box's largest side (metres).
    """

    centre: np.ndarray
    scale: float
    frame: str = "camera"

    def __post_init__(self) -> None:
        _set(self, "centre", frozen_array(self.centre, shape=(3,), name="centre"))
        _set(self, "scale", float(self.scale))
        if not self.scale > 0:
            raise ValueError(f"normalisation scale must be positive, got {self.scale}")

    def apply(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, dtype=np.float64) - self.centre) / self.scale

    def undo(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float64) * self.scale + self.centre

    def to_dict(self) -> dict[str, Any]:
        return {"centre": self.centre.tolist(), "scale": self.scale, "frame": self.frame}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Normalisation:
        return cls(np.asarray(data["centre"]), float(data["scale"]), str(data.get("frame", "camera")))


@dataclass(frozen=True, eq=False)
class SceneInput:
    """One image with its instance masks, and optionally depth, camera and labels.

    image : (H, W, 3) uint8 RGB.
    instances : (H, W) int32 index map; 0 = background, each other value one object id; or None
        when no masks were given (a segmentation stage must then provide them). A map that is
        given must hold at least one instance.
    depth : (H, W) float32 metres along the camera z axis; 0 marks invalid pixels; or None.
    camera : Camera of size (W, H), or None when unknown (a stage then assumes a default).
    labels : object id -> category name, for the ids that have one.
    source : where it was read from, used in error messages.
    warnings : what the reader repaired or assumed (e.g. invalid depth pixels masked).
    """

    image: np.ndarray
    instances: np.ndarray | None
    depth: np.ndarray | None = None
    camera: Camera | None = None
    labels: Mapping[int, str] = field(default_factory=dict)
    source: str = "<memory>"
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        image = frozen_array(self.image, dtype=np.uint8)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"{self.source}: image must be (H, W, 3) RGB, got {image.shape}")
        H, W = image.shape[:2]
        _set(self, "image", image)
        if self.instances is not None:
            instances = frozen_array(self.instances, dtype=np.int32)
            if instances.shape != (H, W):
                raise MaskError(self.source, f"instance map is {_hw(instances.shape)} but the image is {W}x{H}")
            if not np.any(instances > 0):
                raise MaskError(self.source, "instance map has no instance (every pixel is background)")
            if np.any(instances < 0):
                raise MaskError(self.source, "instance map has negative ids")
            _set(self, "instances", instances)
        if self.depth is not None:
            depth = frozen_array(self.depth, dtype=np.float32)
            if depth.shape != (H, W):
                raise DepthError(self.source, f"depth is {_hw(depth.shape)} but the image is {W}x{H}")
            if not np.all(np.isfinite(depth)) or np.any(depth < 0):
                raise DepthError(self.source, "depth has NaN, inf or negative values; mark invalid pixels with 0")
            if not np.any(depth > 0):
                raise DepthError(self.source, "depth has no valid pixel")
            _set(self, "depth", depth)
        if self.camera is not None and (self.camera.width, self.camera.height) != (W, H):
            raise CameraError(self.source, f"camera is {self.camera.width}x{self.camera.height} "
                                           f"but the image is {W}x{H}")
        _set(self, "labels", {int(k): str(v) for k, v in self.labels.items()})
        _set(self, "warnings", tuple(self.warnings))

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def ids(self) -> np.ndarray:
        """(K,) int32 sorted object ids present in the instance map (empty without masks)."""
        if self.instances is None:
            return np.zeros(0, dtype=np.int32)
        ids = np.unique(self.instances)
        return ids[ids > 0]

    def mask(self, object_id: int) -> np.ndarray:
        """(H, W) bool mask of one object."""
        if self.instances is None:
            raise MaskError(self.source, "no instance masks were given")
        return self.instances == object_id

    def pixel_counts(self) -> dict[int, int]:
        """Object id -> number of pixels (empty without masks)."""
        if self.instances is None:
            return {}
        ids, counts = np.unique(self.instances, return_counts=True)
        return {int(i): int(c) for i, c in zip(ids, counts) if i > 0}

    @property
    def depth_valid(self) -> np.ndarray | None:
        """(H, W) bool, True where depth is known; None without depth."""
        return None if self.depth is None else self.depth > 0


def _hw(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]}" if len(shape) >= 2 else str(shape)


PlacedMesh = tuple[trimesh.Trimesh, Similarity]  # a canonical mesh (as SceneObject's) and its pose T_world_obj


@dataclass(frozen=True, eq=False)
class SceneObject:
    """One object: a canonical mesh and the similarity that places it in the world.

    mesh : trimesh.Trimesh in the canonical frame (box centred at the origin, y up, front +z), metres.
    pose : Similarity T_world_obj.
    confidence : in [0, 1], or None when the stage gives none.
    """

    id: int
    label: str
    mesh: trimesh.Trimesh
    pose: Similarity = field(default_factory=Similarity)
    confidence: float | None = None

    def world_mesh(self) -> trimesh.Trimesh:
        """A copy of the mesh with the pose applied (world coordinates)."""
        out = self.mesh.copy()
        out.apply_transform(self.pose.matrix)
        return out

    def world_bounds(self) -> np.ndarray:
        """(2, 3) axis-aligned box [min, max] of the posed mesh, metres."""
        v = self.pose.apply(self.mesh.vertices)
        return np.stack([v.min(axis=0), v.max(axis=0)])


@dataclass(frozen=True, eq=False)
class Scene:
    """Objects with camera, floor plane, background mesh and normalisation, all in the world frame.

    background : trimesh.Trimesh in world coordinates, or None.
    metadata : free JSON-serialisable information (source, layout kind, relations, seed...).
    """

    objects: tuple[SceneObject, ...] = ()
    camera: Camera | None = None
    floor: Plane | None = None
    background: trimesh.Trimesh | None = None
    normalisation: Normalisation | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _set(self, "objects", tuple(self.objects))
        ids = [o.id for o in self.objects]
        if len(set(ids)) != len(ids):
            raise ValueError(f"object ids must be unique, got {ids}")
        _set(self, "metadata", dict(self.metadata))

    @property
    def ids(self) -> list[int]:
        return [o.id for o in self.objects]

    def object(self, object_id: int) -> SceneObject:
        for o in self.objects:
            if o.id == object_id:
                return o
        raise KeyError(f"no object with id {object_id}; ids are {self.ids}")
