"""Cameras of the synthetic engine: views spread evenly around a scene, looking at its centre.

I-Scene renders 150 views "evenly distributed from all directions looking at the scene center". Our
scenes stand on a ground plane, so views are spread over a band of elevations above it: azimuths
follow the golden angle and heights are evenly spaced in sin(elevation) (equal area on the sphere),
the Fibonacci-sphere construction restricted to the band. A seeded random azimuth offset turns the
whole set per scene, and each view draws its distance from a range.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sceneforge.errors import InputError
from sceneforge.geometry.transforms import cross3
from sceneforge.types import Camera

GOLDEN_ANGLE = np.pi * (3.0 - np.sqrt(5.0))
MAX_VIEWS = 100_000
MAX_IMAGE_SIDE = 8192


@dataclass(frozen=True)
class OrbitSpec:
    """How views are placed around a scene.

    n_views : views per scene, 1..100000 (I-Scene uses 150).
    elevation_deg : (min, max) camera elevation above the horizontal plane through the scene
        centre, degrees, within [-89, 89].
    distance_factor : (min, max) camera distance to the centre as a multiple of the distance at
        which the scene's bounding sphere exactly fills the narrower field of view (>= 1 keeps it
        entirely in frame).
    width, height : image size in pixels.  hfov_deg : horizontal field of view, degrees, (0, 180).
    intrinsics : (fx, fy, cx, cy) in pixels to use instead of ``hfov_deg`` (any focal lengths and
        principal point, OpenCV convention), or None.
    """

    n_views: int = 4
    elevation_deg: tuple[float, float] = (15.0, 55.0)
    distance_factor: tuple[float, float] = (0.9, 1.3)
    width: int = 256
    height: int = 256
    hfov_deg: float = 55.0
    intrinsics: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        _check_int("views", self.n_views, 1, MAX_VIEWS)
        _check_int("width", self.width, 1, MAX_IMAGE_SIDE)
        _check_int("height", self.height, 1, MAX_IMAGE_SIDE)
        _check_range("elevation_deg", self.elevation_deg, -89.0, 89.0)
        _check_range("distance_factor", self.distance_factor, 0.05, 100.0)
        if not 0.0 < float(self.hfov_deg) < 180.0:
            raise InputError(None, f"hfov_deg must be in (0, 180) degrees, got {self.hfov_deg}")
        if self.intrinsics is not None:
            values = tuple(float(x) for x in self.intrinsics)
            if len(values) != 4 or not all(np.isfinite(values)) or values[0] <= 0 or values[1] <= 0:
                raise InputError(None, f"intrinsics must be (fx, fy, cx, cy) with fx, fy > 0, got {self.intrinsics!r}")
            object.__setattr__(self, "intrinsics", values)
        object.__setattr__(self, "elevation_deg", tuple(float(x) for x in self.elevation_deg))
        object.__setattr__(self, "distance_factor", tuple(float(x) for x in self.distance_factor))

    def base_camera(self) -> Camera:
        """The camera of every view, at the world origin: ``intrinsics`` when given, else square
        pixels with the principal point at the image centre and ``hfov_deg``."""
        if self.intrinsics is not None:
            return Camera.from_intrinsics(*self.intrinsics, self.width, self.height)
        return Camera.from_fov(self.width, self.height, self.hfov_deg)


def _check_int(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise InputError(None, f"{name} must be an integer in [{low}, {high}], got {value!r}")


def _check_range(name: str, pair: tuple[float, float], low: float, high: float) -> None:
    try:
        a, b = (float(x) for x in pair)
    except (TypeError, ValueError) as exc:
        raise InputError(None, f"{name} must be a (min, max) pair, got {pair!r}") from exc
    if not (low <= a <= b <= high):
        raise InputError(None, f"{name} must satisfy {low:g} <= min <= max <= {high:g}, got ({a:g}, {b:g})")


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 1.0, 0.0])) -> np.ndarray:
    """(4, 4) T_world_cam of an OpenCV camera at ``eye`` looking at ``target`` (z forward, y down).

    The image x axis stays horizontal (perpendicular to ``up``). Raises ValueError when the view
    direction is parallel to ``up``.
    """
    eye = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    norm = np.linalg.norm(forward)
    if norm == 0:
        raise ValueError("eye and target coincide")
    forward /= norm
    right = cross3(forward, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("view direction is parallel to the up vector")
    right /= np.linalg.norm(right)
    down = cross3(forward, right)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = right, down, forward, eye
    return T


def fit_distance(radius: float, camera: Camera) -> float:
    """Distance (metres) at which a sphere of ``radius`` touches the narrower half field of view."""
    half_h = np.arctan(0.5 * camera.width / camera.fx)
    half_v = np.arctan(0.5 * camera.height / camera.fy)
    return float(radius / np.sin(min(half_h, half_v)))


def orbit_directions(n_views: int, elevation_deg: tuple[float, float], azimuth_offset: float) -> np.ndarray:
    """(n, 3) unit vectors from the scene centre to each camera (world, y-up), evenly spread.

    View i has azimuth ``offset + i * golden_angle`` and sin(elevation) at the centre of the i-th of
    n equal slices of [sin(min), sin(max)].
    """
    lo, hi = np.sin(np.radians(elevation_deg))
    i = np.arange(n_views)
    sin_elevation = lo + (hi - lo) * (i + 0.5) / n_views
    azimuth = azimuth_offset + i * GOLDEN_ANGLE
    cos_elevation = np.sqrt(np.clip(1.0 - sin_elevation**2, 0.0, 1.0))
    return np.stack([cos_elevation * np.sin(azimuth), sin_elevation, cos_elevation * np.cos(azimuth)], axis=1)


@lru_cache(maxsize=16)
def _base_camera(spec: OrbitSpec) -> Camera:
    """``spec.base_camera()``, made once per spec (a Camera is immutable)."""
    return spec.base_camera()


def orbit_cameras(centre: np.ndarray, radius: float, spec: OrbitSpec, rng: np.random.Generator) -> list[Camera]:
    """``spec.n_views`` cameras looking at ``centre`` (world, metres) around a bounding sphere of ``radius``.

    Uses ``rng`` for the azimuth offset (one draw) and the distances (one per view), in that order.
    """
    if not radius > 0:
        raise ValueError(f"scene radius must be positive, got {radius}")
    base = _base_camera(spec)
    centre = np.asarray(centre, dtype=np.float64)
    offset = rng.uniform(0.0, 2.0 * np.pi)
    factors = rng.uniform(*spec.distance_factor, size=spec.n_views)
    directions = orbit_directions(spec.n_views, spec.elevation_deg, offset)
    d_fit = fit_distance(radius, base)
    return [base.with_pose(look_at(centre + f * d_fit * d, centre)) for f, d in zip(factors, directions)]
