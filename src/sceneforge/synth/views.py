"""Render a ground-truth :class:`~sceneforge.types.Scene` from cameras spread around it.

The scene's objects become instances (instance id = object id); a :class:`SceneLook` says how the
ground, the sky or backdrop and the light look (default: a plain ground square on the scene's floor
plane, y = 0 when absent, and a sky gradient). Views where an object is not
visible (fully occluded or out of frame: fewer than ``min_visible_pixels`` pixels) are dropped, as
I-Scene does, or kept with the object marked invisible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sceneforge.errors import InputError
from sceneforge.geometry.view_centric import ViewCentricFrame, view_centric_frames
from sceneforge.render.scene import (
    MAX_INSTANCE_ID,
    Backdrop,
    Environment,
    Ground,
    Lighting,
    RenderMesh,
    RenderOutput,
    RenderScene,
)
from sceneforge.synth.cameras import OrbitSpec, orbit_cameras
from sceneforge.synth.meshmemo import hull_points
from sceneforge.types import Camera, Plane, Scene

OCCLUSION_POLICIES = ("drop", "mark")


@dataclass(frozen=True)
class ViewSettings:
    """Cameras and visibility rules of the rendered views.

    orbit : where the cameras go and their intrinsics.
    occlusion : "drop" (a view where any object shows fewer than ``min_visible_pixels`` pixels is
        discarded) or "mark" (kept; the object is listed as invisible in that view).
    min_visible_pixels : pixels an object needs to count as visible, >= 1.
    normals : also render camera-frame normals.
    ground_margin : the ground square's half side is this many times the scene radius (>= 1).
    """

    orbit: OrbitSpec = field(default_factory=OrbitSpec)
    occlusion: str = "drop"
    min_visible_pixels: int = 1
    normals: bool = False
    ground_margin: float = 12.0

    def __post_init__(self) -> None:
        if self.occlusion not in OCCLUSION_POLICIES:
            raise InputError(None, f"occlusion must be one of {', '.join(OCCLUSION_POLICIES)}, got {self.occlusion!r}")
        if isinstance(self.min_visible_pixels, bool) or not isinstance(self.min_visible_pixels, int) \
                or self.min_visible_pixels < 1:
            raise InputError(None, f"min_visible_pixels must be an integer >= 1, got {self.min_visible_pixels!r}")
        if not float(self.ground_margin) >= 1.0:
            raise InputError(None, f"ground_margin must be >= 1, got {self.ground_margin}")


@dataclass(frozen=True, eq=False)
class SynthView:
    """One kept view: camera, rendered passes, visibility and the view-centric frame.

    index : position among the kept views.  candidate : index of its camera among the orbit's.
    visible_pixels : object id -> pixels in the instance map.
    """

    index: int
    candidate: int
    camera: Camera
    render: RenderOutput
    frame: ViewCentricFrame
    visible_pixels: Mapping[int, int]
    min_visible_pixels: int

    def is_visible(self, object_id: int) -> bool:
        return self.visible_pixels.get(object_id, 0) >= self.min_visible_pixels

    @property
    def visible_ids(self) -> list[int]:
        return [i for i in self.visible_pixels if self.is_visible(i)]


@dataclass(frozen=True, eq=False)
class ViewSet:
    """The views of one scene: the kept ones and the candidate indices that were dropped."""

    views: tuple[SynthView, ...]
    dropped: tuple[int, ...]
    n_candidates: int


def scene_bounds(scene: Scene) -> np.ndarray:
    """(2, 3) world box [min, max] of all posed objects, metres."""
    if not scene.objects:
        raise InputError(None, "scene has no objects to render")
    points = np.concatenate([o.pose.apply(hull_points(o.mesh)) for o in scene.objects])
    return np.stack([points.min(axis=0), points.max(axis=0)])


@dataclass(frozen=True, eq=False)
class SceneLook:
    """How a scene looks beyond its objects (not part of the ground truth).

    ground : the ground to draw; None = a plain ground square sized from the scene (``ground_margin``).
    environment : sky (Environment) or image-space Backdrop behind everything.
    lighting : the directional light.
    """

    ground: Ground | None = None
    environment: Environment | Backdrop = field(default_factory=Environment)
    lighting: Lighting = field(default_factory=Lighting)


def _bounding_sphere(box: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (3,) and radius (metres, >= 1 mm) of the sphere around a (2, 3) box."""
    return 0.5 * (box[0] + box[1]), max(0.5 * float(np.linalg.norm(box[1] - box[0])), 1e-3)


def render_scene_for(scene: Scene, settings: ViewSettings, look: SceneLook | None = None,
                     box: np.ndarray | None = None) -> RenderScene:
    """The rasteriser's description of a scene: meshes (instance id = object id), ground, sky, light.

    box : the scene's :func:`scene_bounds` when already known."""
    look = SceneLook() if look is None else look
    for o in scene.objects:
        if not 1 <= o.id <= MAX_INSTANCE_ID:
            raise InputError(None, f"object id {o.id} cannot be an instance id: must be in [1, {MAX_INSTANCE_ID}]")
    meshes = [RenderMesh(o.mesh, o.pose.matrix, o.id) for o in scene.objects]
    ground = look.ground
    if ground is None:
        centre, radius = _bounding_sphere(scene_bounds(scene) if box is None else box)
        floor = scene.floor if scene.floor is not None else Plane(np.array([0.0, 1.0, 0.0]), 0.0)
        ground = Ground(plane=floor, centre_xz=centre[[0, 2]], half_extent=radius * settings.ground_margin)
    return RenderScene(meshes, ground=ground, environment=look.environment, lighting=look.lighting)


def scene_cameras(scene: Scene, orbit: OrbitSpec, rng: np.random.Generator,
                  box: np.ndarray | None = None) -> list[Camera]:
    """The orbit's candidate cameras around the scene's bounding sphere (centre of its box).

    box : the scene's :func:`scene_bounds` when already known."""
    centre, radius = _bounding_sphere(scene_bounds(scene) if box is None else box)
    return orbit_cameras(centre, radius, orbit, rng)


def render_views(scene: Scene, settings: ViewSettings, rng: np.random.Generator, rasterizer: Any,
                 look: SceneLook | None = None, reuse_meshes: bool = False) -> ViewSet:
    """Render the candidate views of ``scene``, apply the occlusion policy, attach view-centric frames.

    rasterizer : a :class:`~sceneforge.render.rasterizer.Rasterizer` (one per process; reused).
    reuse_meshes : keep the meshes' GPU buffers for later scenes (meshes never modified in place,
        such as an asset pool's; see ``Rasterizer.upload``).
    """
    box = scene_bounds(scene)
    cameras = scene_cameras(scene, settings.orbit, rng, box)
    ids = [o.id for o in scene.objects]
    poses = [o.pose.matrix for o in scene.objects]
    points = [hull_points(o.mesh) for o in scene.objects]  # the same boxes as all vertices
    rendered: list[tuple[int, Camera, RenderOutput, dict[int, int]]] = []
    dropped: list[int] = []
    with rasterizer.upload(render_scene_for(scene, settings, look, box), reuse_meshes=reuse_meshes) as uploaded:
        for candidate, camera in enumerate(cameras):
            out = rasterizer.render(uploaded, camera, normals=settings.normals)
            pixels = out.visible_pixels(ids)
            if settings.occlusion == "drop" and min(pixels.values()) < settings.min_visible_pixels:
                dropped.append(candidate)
                continue
            rendered.append((candidate, camera, out, pixels))
    cameras_kept = [camera.T_world_cam for _, camera, _, _ in rendered]
    frames = view_centric_frames(cameras_kept, ids, poses, points) if rendered else []
    kept = tuple(SynthView(n, candidate, camera, out, frame, pixels, settings.min_visible_pixels)
                 for n, ((candidate, camera, out, pixels), frame) in enumerate(zip(rendered, frames)))
    return ViewSet(kept, tuple(dropped), len(cameras))
