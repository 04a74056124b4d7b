"""Scene layouts for the synthetic engine: I-Scene collision-free random layouts and SceneMaker-style
open-set layouts. Both return a :class:`Layout`: a ground-truth :class:`~sceneforge.types.Scene`
plus the layout's metadata.

World frame (both kinds): metres, y up, the floor is the plane y = 0 (``scene.floor``); "front" is
+z, the side a default viewer stands on when looking towards -z, so +x is to that viewer's right.

Relations (``Layout.relations``, also in ``scene.metadata["layout"]["relations"]``) are facts about
the world x/z frame above, never about a camera:

- ``A on_top_of B``: B is A's support (A's lowest point lies on B's top, its footprint inside B's
  top polygon).
- For every other pair (A, B) with ids A < B, exactly one horizontal relation from the offset of the
  footprint centres d = c_A - c_B (x, z): if |dx| >= |dz|, ``A right_of B`` when dx > 0 else
  ``A left_of B``; otherwise ``A in_front_of B`` when dz > 0 else ``A behind B``.

Supports: ``Layout.supports[id]`` is 0 for the floor, else the id of the supporting object.

I-Scene random layout (:func:`iscene_layout`, :func:`arrange_iscene`), after the appendix of I-Scene
("Collision-free Random Layout"): each floor object is a disc of radius r_i = s_i * r^_i, r^_i half
the diagonal of the canonical x/z extents (so any yaw stays inside the disc), s_i the sampled scale;
gap = mean(r) * s with s drawn from ``density_range`` (small s = dense); centres are drawn uniformly in
a square region by a variable-radius Poisson-disk routine placing larger radii first (a table first
of all), accepting x_i only if ||x_i - x_j|| >= r_i + r_j + gap for every placed j, with a uniform
grid of cell (min r + gap) / sqrt(2) for the checks; after ``max_tries`` rejected candidates the
region grows by 10 %, at most ``max_expansions`` times, then :class:`LayoutError`. Stacked objects go
on the table top: the table is sliced 2 mm below its top, the top polygon is the convex hull of the
section, the first stacked object is anchored at the polygon's centroid and scaled to fit by the
distance from the centroid to the nearest edge (s = min(s_sampled, d_edge / r^)); further stacked
objects are Poisson-disk sampled inside the polygon (disc inside, gap kept), shrinking by 10 % steps
down to ``min_stack_scale`` before giving up.

Open-set layout (:func:`open_set_layout`, :func:`arrange_open_set`), after SceneMaker's dataset:
2-5 objects, random rotations (uniform on SO(3) by default), each dropped so its lowest point touches
the floor, placed at random in a region without interpenetration (discs that do not overlap are
accepted at once; overlapping, non-nested discs are accepted when python-fcl finds at least
``min_clearance`` metres between the meshes, so objects can tuck into each other's gaps), a ground
texture of fractal Perlin noise (:class:`GroundSpec`) and a random solid or gradient background
(:class:`BackgroundSpec`); the renderer draws both.

Meshes in ``layout.scene.objects`` are the assets' canonical meshes (shared with the
:class:`~sceneforge.assets.AssetPool`, do not modify them in place); poses are uniform-scale
:class:`~sceneforge.types.Similarity` transforms ``T_world_obj``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import trimesh

from sceneforge.assets import Asset, AssetPool
from sceneforge.errors import InputError, SceneforgeError
from sceneforge.geometry.transforms import rotation_y
from sceneforge.synth.meshmemo import MeshMemo
from sceneforge.synth.noise import fractal_noise, mean_colour, noise_texture
from sceneforge.synth.physics import (
    FLOOR,
    ApartMemo,
    BoxedMesh,
    boxes_apart,
    check_physics,
    collide,
    distance,
    fcl_object,
    meshes_close,
    set_translation,
)
from sceneforge.types import Plane, Scene, SceneObject, Similarity

RELATIONS = ("left_of", "right_of", "in_front_of", "behind", "on_top_of")
BACKGROUND_KINDS = ("solid", "vertical_gradient", "radial_gradient")
WORLD_FRAME = "world: metres, y up, floor y=0, +z front, +x right of a viewer facing -z"
_SLICE_DEPTH = 0.002  # metres below the top at which a support is sliced


class LayoutError(SceneforgeError, RuntimeError):
    """Layout parameters that cannot be satisfied for one scene (retry budget exhausted, object too
    large for its support). ``kind`` and ``seed`` name the scene."""

    def __init__(self, kind: str, seed: int | None, problem: str):
        self.kind, self.seed, self.problem = kind, seed, problem
        super().__init__(f"{kind} layout (seed {seed}): {problem}")

    def __reduce__(self):  # pickled by its arguments: raised in a worker process, it reaches the driver
        return type(self), (self.kind, self.seed, self.problem)


# --------------------------------------------------------------------------------- result types
@dataclass(frozen=True)
class Relation:
    """``subject relation object`` with object ids; relation in :data:`RELATIONS`."""

    subject: int
    relation: str
    object: int

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "relation": self.relation, "object": self.object}


@dataclass(frozen=True, eq=False)
class BackgroundSpec:
    """What the renderer draws behind the scene.

    kind : "solid" (colours[0]), "vertical_gradient" (colours[0] at the top row -> colours[1] at the
        bottom row) or "radial_gradient" (colours[0] at the image centre -> colours[1] at the corners).
    colours : RGB uint8 triples.
    """

    kind: str
    colours: tuple[tuple[int, int, int], ...]

    def __post_init__(self) -> None:
        if self.kind not in BACKGROUND_KINDS:
            raise InputError(None, f"background kind {self.kind!r} unknown; allowed: {', '.join(BACKGROUND_KINDS)}")
        need = 1 if self.kind == "solid" else 2
        if len(self.colours) != need:
            raise InputError(None, f"a {self.kind} background needs {need} colour(s), got {len(self.colours)}")
        object.__setattr__(self, "colours", tuple(tuple(int(c) for c in rgb) for rgb in self.colours))

    def image(self, width: int, height: int) -> np.ndarray:
        """(height, width, 3) uint8 background picture."""
        a = np.asarray(self.colours[0], dtype=np.float64)
        if self.kind == "solid":
            return np.broadcast_to(a.astype(np.uint8), (height, width, 3)).copy()
        b = np.asarray(self.colours[1], dtype=np.float64)
        if self.kind == "vertical_gradient":
            t = np.broadcast_to(np.linspace(0.0, 1.0, height)[:, None], (height, width))
        else:
            yy, xx = np.mgrid[0:height, 0:width]
            r = np.hypot((xx - (width - 1) / 2) / max(width / 2, 1), (yy - (height - 1) / 2) / max(height / 2, 1))
            t = np.clip(r / math.sqrt(2.0), 0.0, 1.0)
        return np.rint((1 - t)[..., None] * a + t[..., None] * b).astype(np.uint8)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "colours": [list(c) for c in self.colours]}


@dataclass(frozen=True, eq=False)
class GroundSpec:
    """The floor's look: a square of side ``size`` metres on y = 0 centred at the origin.

    texture : (H, W, 3) uint8, or None for a plain ``colour``; row 0 lies at z = -size/2 and column 0
        at x = -size/2 (rows grow towards +z, columns towards +x).
    colour : RGB uint8, the plain colour (the texture's mean when there is one).
    params : JSON-able recipe (noise cells, octaves, colours) to regenerate the texture.
    """

    size: float
    colour: tuple[int, int, int]
    texture: np.ndarray | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "colour": list(self.colour), "textured": self.texture is not None, **dict(self.params)}


@dataclass(frozen=True, eq=False)
class SupportTop:
    """The flat top of a support in world coordinates: ``height`` metres and ``polygon`` (K, 2) x/z,
    convex, counter-clockwise seen from above (+y)."""

    height: float
    polygon: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"height": self.height, "polygon": np.round(self.polygon, 6).tolist()}


@dataclass(frozen=True, eq=False)
class Layout:
    """A sampled layout.

    scene : objects (ids 1..N in placement order) with canonical meshes and Similarity poses; floor
        plane y = 0; ``scene.metadata["layout"]`` holds :meth:`to_dict`.
    kind : "iscene" or "open_set". seed : the seed it was made from.
    assets : ``assets[k]`` is the asset of ``scene.objects[k]``.
    relations : see the module docstring. supports : id -> support id (0 = floor).
    discs : (N, 3) float64 world (x, z, radius) footprint discs, metres.
    gap : clearance between floor discs, metres (open-set: 0).
    region_half_extent : final half side of the square sampling region, metres.
    support_tops : id -> :class:`SupportTop` of every object that carries others.
    ground, background : what the renderer draws (None = its defaults).
    """

    scene: Scene
    kind: str
    seed: int
    assets: tuple[Asset, ...]
    relations: tuple[Relation, ...]
    supports: Mapping[int, int]
    discs: np.ndarray
    gap: float
    region_half_extent: float
    support_tops: Mapping[int, SupportTop]
    ground: GroundSpec | None
    background: BackgroundSpec | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (no meshes, no texture pixels)."""
        objects = []
        for k, (obj, asset) in enumerate(zip(self.scene.objects, self.assets)):
            objects.append({"id": obj.id, "category": asset.category, "asset_key": asset.key,
                            "support": int(self.supports[obj.id]), "scale": float(obj.pose.s),
                            "disc": [float(v) for v in self.discs[k]]})
        return {"kind": self.kind, "seed": self.seed, "frame": WORLD_FRAME, "gap": self.gap,
                "region_half_extent": self.region_half_extent, "objects": objects,
                "relations": [r.to_dict() for r in self.relations],
                "support_tops": {str(i): t.to_dict() for i, t in self.support_tops.items()},
                "ground": None if self.ground is None else self.ground.to_dict(),
                "background": None if self.background is None else self.background.to_dict()}


# ------------------------------------------------------------------------------------ configs
def _check_range(name: str, pair: tuple[float, float], low: float, high: float) -> None:
    a, b = pair
    if not (low <= a <= b <= high):
        raise InputError(None, f"{name}={tuple(pair)} is invalid; need {low:g} <= min <= max <= {high:g}")


def _check_int(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise InputError(None, f"{name}={value!r} is out of range; allowed: an integer in [{low}, {high}]")


@dataclass(frozen=True)
class ISceneConfig:
    """Parameters of the I-Scene random layout (see the module docstring).

    min_objects, max_objects : total object count range, inclusive, within [1, 64] (paper: 2-12).
    table_probability : chance that a support (table, desk, nightstand) is placed first and carries
        1..max_stacked objects.
    scale_range : uniform range of the per-object scale s_i (1 = the asset's real size).
    density_range : range of s in gap = mean(r) * s.
    max_tries : rejected candidates per object before the region grows by 10 %.
    max_expansions : region growths allowed before LayoutError.
    region_half_extent : initial half side (metres) of the square region; None = from the disc areas.
    min_stack_scale : smallest scale a stacked object may be shrunk to while fitting its support.
    rotation : "yaw" (uniform yaw per object) or "none".
    verify : run the physics check (python-fcl) on the result; a failure raises LayoutError.
    """

    min_objects: int = 2
    max_objects: int = 12
    table_probability: float = 0.5
    max_stacked: int = 3
    scale_range: tuple[float, float] = (0.85, 1.15)
    density_range: tuple[float, float] = (0.05, 0.6)
    max_tries: int = 100
    max_expansions: int = 20
    region_half_extent: float | None = None
    min_stack_scale: float = 0.3
    rotation: str = "yaw"
    verify: bool = True

    def __post_init__(self) -> None:
        _check_int("min_objects", self.min_objects, 1, 64)
        _check_int("max_objects", self.max_objects, self.min_objects, 64)
        _check_int("max_stacked", self.max_stacked, 0, 16)
        _check_int("max_tries", self.max_tries, 1, 100_000)
        _check_int("max_expansions", self.max_expansions, 0, 1000)
        if not 0.0 <= self.table_probability <= 1.0:
            raise InputError(None, f"table_probability={self.table_probability} is out of range; allowed: [0, 1]")
        _check_range("scale_range", self.scale_range, 1e-3, 1e3)
        _check_range("density_range", self.density_range, 0.0, 10.0)
        if self.region_half_extent is not None and not self.region_half_extent > 0:
            raise InputError(None, f"region_half_extent={self.region_half_extent} must be positive metres or None")
        if not 0.0 < self.min_stack_scale <= 1e3:
            raise InputError(None, f"min_stack_scale={self.min_stack_scale} is out of range; allowed: (0, 1000]")
        if self.rotation not in ("yaw", "none"):
            raise InputError(None, f"rotation={self.rotation!r} is invalid; allowed: 'yaw', 'none'")


@dataclass(frozen=True)
class OpenSetConfig:
    """Parameters of the SceneMaker-style open-set layout (see the module docstring).

    min_objects, max_objects : count range, inclusive, within [1, 32] (paper: 2-5).
    rotation : "any" (uniform on SO(3), then dropped on the floor) or "yaw" (upright, random yaw).
    size_range : when not None, each object is scaled so its largest side is uniform in this range
        (metres), which keeps a mug and a bed on a comparable scale; None = ``scale_range`` x real size.
    scale_range : uniform scale range used when ``size_range`` is None.
    min_clearance : smallest mesh-to-mesh distance (metres) for overlapping discs (fcl).
    spread : initial region half side = spread * sqrt(sum r_i^2) metres.
    max_tries, max_expansions : as in :class:`ISceneConfig`.
    texture_size, noise_cells, noise_octaves : ground texture pixels per side and Perlin lattice.
    ground_scale : ground square side = ground_scale * 2 * final region half side (>= 2 m).
    verify : run the physics check on the result.
    """

    min_objects: int = 2
    max_objects: int = 5
    rotation: str = "any"
    size_range: tuple[float, float] | None = (0.3, 1.0)
    scale_range: tuple[float, float] = (0.8, 1.2)
    min_clearance: float = 0.005
    spread: float = 1.2
    max_tries: int = 100
    max_expansions: int = 20
    texture_size: int = 128
    noise_cells: int = 4
    noise_octaves: int = 4
    ground_scale: float = 3.0
    verify: bool = True

    def __post_init__(self) -> None:
        _check_int("min_objects", self.min_objects, 1, 32)
        _check_int("max_objects", self.max_objects, self.min_objects, 32)
        _check_int("max_tries", self.max_tries, 1, 100_000)
        _check_int("max_expansions", self.max_expansions, 0, 1000)
        _check_int("texture_size", self.texture_size, 8, 4096)
        _check_int("noise_cells", self.noise_cells, 1, 256)
        _check_int("noise_octaves", self.noise_octaves, 1, 8)
        if self.rotation not in ("any", "yaw"):
            raise InputError(None, f"rotation={self.rotation!r} is invalid; allowed: 'any', 'yaw'")
        if self.size_range is not None:
            _check_range("size_range", self.size_range, 1e-3, 100.0)
        _check_range("scale_range", self.scale_range, 1e-3, 1e3)
        if not 0.0 <= self.min_clearance <= 1.0:
            raise InputError(None, f"min_clearance={self.min_clearance} is out of range; allowed: [0, 1] metres")
        if not 0.1 <= self.spread <= 100.0:
            raise InputError(None, f"spread={self.spread} is out of range; allowed: [0.1, 100]")
        if not 1.0 <= self.ground_scale <= 100.0:
            raise InputError(None, f"ground_scale={self.ground_scale} is out of range; allowed: [1, 100]")


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(None, f"layout seed must be a non-negative integer, got {seed!r}")
    return int(seed)


# -------------------------------------------------------------------------- Poisson-disk placement
class DiscGrid:
    """Uniform grid over placed discs (centre, radius) for separation checks.

    cell : grid cell side (metres), I-Scene uses (min r + gap) / sqrt(2).
    """

    def __init__(self, cell: float):
        self.cell = float(cell)
        self.cells: dict[tuple[int, int], list[int]] = {}
        self.centres: list[np.ndarray] = []
        self.radii: list[float] = []
        self.r_max = 0.0

    def _key(self, p: np.ndarray) -> tuple[int, int]:
        return int(math.floor(p[0] / self.cell)), int(math.floor(p[1] / self.cell))

    def _many_cells(self, r: float, gap: float) -> tuple[bool, int]:
        """(whether the window of cells within reach (r + r_max + gap) holds more cells than there
        are placed discs, so that checking every disc is cheaper and gives the same answer; reach)."""
        reach = int(math.ceil((r + self.r_max + gap) / self.cell))
        return (2 * reach + 1) ** 2 > 4 * len(self.centres), reach

    def fits(self, p: np.ndarray, r: float, gap: float) -> bool:
        """True when ||p - c_j|| >= r + r_j + gap for every placed disc j."""
        return self.first_fit(np.asarray(p, dtype=np.float64)[None], r, gap) == 0

    def first_fit(self, points: np.ndarray, r: float, gap: float) -> int | None:
        """Index of the first of the points (T, 2) where a disc of radius r :meth:`fits`, or None.

        Looks through the grid cells within reach of each point in turn, or, when that window is
        larger than the number of placed discs (few discs, or radii that differ a lot), compares
        every point with every disc in one array operation."""
        points = np.asarray(points, dtype=np.float64)
        if not self.centres:
            return 0 if len(points) else None
        brute, reach = self._many_cells(r, gap)
        if brute:
            c = np.asarray(self.centres)
            d = np.hypot(points[:, None, 0] - c[None, :, 0], points[:, None, 1] - c[None, :, 1])
            ok = np.all(d >= r + np.asarray(self.radii)[None] + gap, axis=1)
            return int(np.argmax(ok)) if ok.any() else None
        return next((k for k, p in enumerate(points) if self._fits_in_cells(p, r, gap, reach)), None)

    def _fits_in_cells(self, p: np.ndarray, r: float, gap: float, reach: int) -> bool:
        kx, kz = self._key(p)
        for ix in range(kx - reach, kx + reach + 1):
            for iz in range(kz - reach, kz + reach + 1):
                for j in self.cells.get((ix, iz), ()):
                    if math.hypot(p[0] - self.centres[j][0], p[1] - self.centres[j][1]) < r + self.radii[j] + gap:
                        return False
        return True

    def add(self, p: np.ndarray, r: float) -> None:
        self.cells.setdefault(self._key(p), []).append(len(self.centres))
        self.centres.append(np.asarray(p, dtype=np.float64))
        self.radii.append(float(r))
        self.r_max = max(self.r_max, float(r))


def first_accepted(rng: np.random.Generator, room: float, max_tries: int,
                   first: Callable[[np.ndarray], int | None]) -> np.ndarray | None:
    """The first of up to ``max_tries`` uniform candidates in [-room, room]^2 that is accepted, or
    None; ``rng`` is left exactly as if the candidates had been drawn one at a time until then.

    first : (T, 2) candidates -> index of the first acceptable one, or None. All tries are drawn at
    once and judged together, then the generator is rewound and advanced by the draws actually used."""
    state = rng.bit_generator.state
    candidates = rng.uniform(-room, room, size=(max_tries, 2))
    k = first(candidates)
    if k is None:
        return None
    rng.bit_generator.state = state
    rng.uniform(-room, room, size=(k + 1, 2))
    return candidates[k]


def poisson_disc_place(radii: np.ndarray, gap: float, region_half: float, rng: np.random.Generator,
                       max_tries: int, max_expansions: int, kind: str = "iscene",
                       seed: int | None = None) -> tuple[np.ndarray, float]:
    """Place discs in the given order (I-Scene: table first, then larger radii first).

    radii : (N,) metres. Centres are uniform in [-L + r, L - r]^2 (disc inside the square of half side
    L); a candidate is kept when ||x_i - x_j|| >= r_i + r_j + gap for all placed j. After ``max_tries``
    rejections L grows by 10 %; more than ``max_expansions`` growths raise :class:`LayoutError`.
    Returns ((N, 2) x/z centres, final L).
    """
    radii = np.asarray(radii, dtype=np.float64)
    grid = DiscGrid((float(radii.min()) + gap) / math.sqrt(2.0))
    centres = np.zeros((len(radii), 2))
    expansions = 0
    for i, r in enumerate(radii):
        while True:
            room = region_half - r
            if room >= 0:
                p = first_accepted(rng, room, max_tries, lambda cands: grid.first_fit(cands, r, gap))
                if p is not None:
                    centres[i] = p
                    grid.add(p, r)
                    break
            if expansions >= max_expansions:
                raise LayoutError(kind, seed, f"could not place object {i + 1} of {len(radii)} (disc radius {r:.3f} m, "
                                              f"gap {gap:.3f} m) in a {2 * region_half:.2f} m square after {max_tries} tries "
                                              f"and {expansions} region expansions; allow more (max_tries, "
                                              f"max_expansions), fewer objects or a larger region")
            region_half *= 1.1
            expansions += 1
    return centres, region_half


# ------------------------------------------------------------------------------- support tops
def _convex_hull_2d(points: np.ndarray) -> np.ndarray:
    """(K, 2) counter-clockwise convex hull of (N, 2) points (scipy's Qhull; 2D hulls come ordered
    counter-clockwise)."""
    from scipy.spatial import ConvexHull, QhullError

    pts = np.unique(np.round(points, 9), axis=0)
    if len(pts) < 3:
        return pts
    try:
        return pts[ConvexHull(pts).vertices]
    except QhullError:  # collinear points: no area
        return pts[:2]


def polygon_centroid(polygon: np.ndarray) -> np.ndarray:
    """(2,) area centroid of a simple (K, 2) polygon."""
    x, z = polygon[:, 0], polygon[:, 1]
    xn, zn = np.roll(x, -1), np.roll(z, -1)
    cross = x * zn - xn * z
    area = cross.sum() / 2.0
    if abs(area) < 1e-12:
        return polygon.mean(axis=0)
    return np.array([((x + xn) * cross).sum(), ((z + zn) * cross).sum()]) / (6.0 * area)


def edge_distance(polygon: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N,) signed distance from points (N, 2) to the edges of a convex counter-clockwise polygon
    (K, 2): positive inside, the distance to the nearest edge line."""
    a = polygon
    b = np.roll(polygon, -1, axis=0)
    e = b - a
    length = np.linalg.norm(e, axis=1)
    rel = np.asarray(points, dtype=np.float64)[:, None, :] - a[None]
    cross = e[None, :, 0] * rel[..., 1] - e[None, :, 1] * rel[..., 0]
    return (cross / length[None]).min(axis=1)


def support_top(mesh: trimesh.Trimesh, depth: float = _SLICE_DEPTH) -> SupportTop:
    """The top of ``mesh``: slice ``depth`` metres below its highest point (at most a quarter of its
    height) and take the convex hull of the section in x/z, counter-clockwise in (x, z) coordinates
    (the convention of :func:`edge_distance`). Coordinates are the mesh's own (world or local)."""
    top = float(mesh.bounds[1, 1])
    depth = min(depth, 0.25 * float(mesh.extents[1]))
    segments = trimesh.intersections.mesh_plane(mesh, np.array([0.0, 1.0, 0.0]), np.array([0.0, top - depth, 0.0]))
    if len(segments) == 0:
        raise InputError(None, "support mesh has no section just below its top")
    hull = _convex_hull_2d(segments.reshape(-1, 3)[:, [0, 2]])
    if len(hull) < 3:
        raise InputError(None, "support top is degenerate (section has no area)")
    return SupportTop(top, hull)


_TOP_CACHE: dict[tuple[str, float], SupportTop] = {}


def _scaled_top(asset: Asset, scale: float) -> SupportTop:
    """Support top of ``asset``'s canonical mesh scaled by ``scale`` (cached per asset key and scale)."""
    key = (asset.key, round(float(scale), 12))
    if key not in _TOP_CACHE:
        if len(_TOP_CACHE) > 4096:
            _TOP_CACHE.clear()
        mesh = trimesh.Trimesh(np.asarray(asset.mesh.vertices) * scale, asset.mesh.faces, process=False)
        _TOP_CACHE[key] = support_top(mesh)
    return _TOP_CACHE[key]


# -------------------------------------------------------------------------------- relations
def horizontal_relation(centre_a: np.ndarray, centre_b: np.ndarray) -> str:
    """Relation of A to B from footprint centres (x, z) by the dominant axis (module docstring)."""
    dx, dz = float(centre_a[0] - centre_b[0]), float(centre_a[1] - centre_b[1])
    if abs(dx) >= abs(dz):
        return "right_of" if dx > 0 else "left_of"
    return "in_front_of" if dz > 0 else "behind"


def compute_relations(ids: Sequence[int], centres: np.ndarray, supports: Mapping[int, int]) -> tuple[Relation, ...]:
    """on_top_of for each supported object, then one horizontal relation per other pair (A < B)."""
    out = [Relation(i, "on_top_of", supports[i]) for i in ids if supports[i] != FLOOR]
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            ia, ib = ids[a], ids[b]
            if supports[ia] == ib or supports[ib] == ia:
                continue
            out.append(Relation(ia, horizontal_relation(centres[a], centres[b]), ib))
    return tuple(out)


# --------------------------------------------------------------------------------- I-Scene
@dataclass
class _Placed:
    asset: Asset
    scale: float
    yaw: float
    centre: np.ndarray  # world x/z
    base_y: float  # world height of the lowest point
    support: int = FLOOR

    @property
    def radius(self) -> float:
        return self.scale * self.asset.footprint_radius

    def pose(self) -> Similarity:
        t = np.array([self.centre[0], self.base_y - self.scale * float(self.asset.mesh.bounds[0, 1]), self.centre[1]])
        return Similarity(rotation_y(self.yaw), t, self.scale)


def _place_on_top(top_local: SupportTop, assets: Sequence[Asset], rng: np.random.Generator, cfg: ISceneConfig,
                  gap_scale: float, seed: int, drop_unfit: bool) -> list[tuple[Asset, float, np.ndarray]]:
    """Stacked objects in the support's local x/z frame: (asset, scale, centre)."""
    poly = top_local.polygon
    anchor = polygon_centroid(poly)
    placed: list[tuple[Asset, float, np.ndarray]] = []
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    for k, asset in enumerate(assets):
        r_hat = asset.footprint_radius
        s = float(rng.uniform(*cfg.scale_range))
        gap = gap_scale * r_hat * s
        if k == 0:
            d_edge = float(edge_distance(poly, anchor[None])[0])
            s = min(s, d_edge / r_hat)
            if s >= cfg.min_stack_scale:
                placed.append((asset, s, anchor))
                continue
            problem = (f"stacked {asset.category} (footprint radius {r_hat:.3f} m) does not fit on the support top: "
                       f"nearest edge {d_edge:.3f} m from the centroid needs scale {s:.3f} < min_stack_scale "
                       f"{cfg.min_stack_scale}")
        else:
            spot = None
            while s >= cfg.min_stack_scale and spot is None:
                r = s * r_hat
                candidates = rng.uniform(lo, hi, size=(cfg.max_tries, 2))  # the tries, drawn at once
                ok = edge_distance(poly, candidates) >= r
                for a2, s2, c in placed:
                    ok &= np.hypot(*(candidates - c).T) >= r + s2 * a2.footprint_radius + gap
                if np.any(ok):
                    spot = candidates[int(np.argmax(ok))]
                else:
                    s *= 0.9
            if spot is not None:
                placed.append((asset, s, spot))
                continue
            problem = (f"no room on the support top for stacked object {k + 1} ({asset.category}) even at "
                       f"min_stack_scale {cfg.min_stack_scale}")
        if not drop_unfit:
            raise LayoutError("iscene", seed, problem)
    return placed


def _initial_region(radii: np.ndarray, gap: float) -> float:
    return 0.5 * float(np.sqrt(np.sum((2.0 * radii + gap) ** 2)))


def _arrange_iscene(floor_assets: Sequence[Asset], table: Asset | None, stacked: Sequence[Asset],
                    rng: np.random.Generator, seed: int, cfg: ISceneConfig, drop_unfit: bool,
                    refill: Callable[[], Asset] | None = None) -> Layout:
    """The I-Scene procedure. The table's scale and its stacked objects are settled first, so that a
    stacked object left out (``drop_unfit``) can be replaced by a floor object from ``refill`` and
    the object count stays what was drawn."""
    items = ([table] if table is not None else []) + list(floor_assets)
    if not items:
        raise InputError(None, "an I-Scene layout needs at least one floor object or a table")
    density = float(rng.uniform(*cfg.density_range))
    on_top: list[tuple[Asset, float, np.ndarray]] = []
    table_scale: list[float] = []
    if table is not None:
        table_scale = [float(rng.uniform(*cfg.scale_range))]
        if stacked:
            top_local = _scaled_top(table, table_scale[0])
            on_top = _place_on_top(top_local, stacked, rng, cfg, density, seed, drop_unfit)
            if refill is not None:
                items += [refill() for _ in range(len(stacked) - len(on_top))]
    first = len(table_scale)
    scales = np.array(table_scale + [float(v) for v in rng.uniform(*cfg.scale_range, size=len(items) - first)])
    yaws = rng.uniform(0.0, 2.0 * np.pi, size=len(items)) if cfg.rotation == "yaw" else np.zeros(len(items))
    radii = np.array([s * a.footprint_radius for s, a in zip(scales, items)])
    gap = float(radii.mean()) * density
    order = list(range(first)) + sorted(range(first, len(items)), key=lambda k: -radii[k])
    region = cfg.region_half_extent if cfg.region_half_extent is not None else _initial_region(radii, gap)
    centres, region = poisson_disc_place(radii[order], gap, region, rng, cfg.max_tries, cfg.max_expansions, "iscene", seed)
    placed = [_Placed(items[k], float(scales[k]), float(yaws[k]), centres[n], 0.0) for n, k in enumerate(order)]
    tops: dict[int, SupportTop] = {}
    if table is not None and stacked:
        base = placed[0]
        top_local = _scaled_top(base.asset, base.scale)
        R2 = rotation_y(base.yaw)[[0, 2]][:, [0, 2]]  # x/z block of the yaw rotation
        height = base.scale * (float(base.asset.mesh.bounds[1, 1]) - float(base.asset.mesh.bounds[0, 1]))
        for asset, s, c_local in on_top:
            centre = base.centre + R2 @ c_local
            placed.append(_Placed(asset, s, float(rng.uniform(0, 2 * np.pi)) if cfg.rotation == "yaw" else 0.0,
                                  centre, height, support=1))
        tops[1] = SupportTop(height, base.centre[None] + top_local.polygon @ R2.T)
    return _finish("iscene", seed, placed, gap, region, tops, None, None, cfg.verify)


def arrange_iscene(floor_assets: Sequence[Asset], seed: int, *, table: Asset | None = None,
                   stacked: Sequence[Asset] = (), config: ISceneConfig | None = None) -> Layout:
    """I-Scene layout of given assets: ``table`` (optional) first, then ``floor_assets`` by decreasing
    disc radius, ``stacked`` on the table's top. Unsatisfiable parameters raise :class:`LayoutError`."""
    cfg = config or ISceneConfig()
    seed = _check_seed(seed)
    if stacked and table is None:
        raise InputError(None, f"{len(stacked)} stacked object(s) given without a table to carry them")
    return _arrange_iscene(floor_assets, table, stacked, np.random.default_rng(seed), seed, cfg, drop_unfit=False)


def iscene_layout(pool: AssetPool, seed: int, config: ISceneConfig | None = None) -> Layout:
    """Random I-Scene layout: N ~ U{min_objects..max_objects} assets drawn from ``pool``; with
    probability ``table_probability`` a support category is drawn first and carries 1..max_stacked
    stackable objects (those that cannot fit are redrawn up to 4 times, then left out and replaced by
    floor objects, so the scene has exactly N objects)."""
    cfg = config or ISceneConfig()
    seed = _check_seed(seed)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    supports = pool.categories_with_tag("support")
    stackable = pool.categories_with_tag("stackable")
    floor_cats = pool.categories_with_tag("floor") or pool.categories
    table, stacked = None, []
    if supports and stackable and n >= 2 and cfg.max_stacked > 0 and rng.uniform() < cfg.table_probability:
        table = pool.sample(rng, supports)
        n_stacked = int(rng.integers(1, min(cfg.max_stacked, n - 1) + 1))
        stacked = _fitting_stackables(pool, rng, stackable, table, n_stacked, cfg)
        n -= 1 + len(stacked)
    floor_assets = [pool.sample(rng, floor_cats) for _ in range(n)]
    return _arrange_iscene(floor_assets, table, stacked, rng, seed, cfg, drop_unfit=True,
                           refill=lambda: pool.sample(rng, floor_cats))


def _fitting_stackables(pool: AssetPool, rng: np.random.Generator, categories: Sequence[str], table: Asset,
                        count: int, cfg: ISceneConfig) -> list[Asset]:
    """Draw ``count`` stackable assets whose footprint fits the table top at min_stack_scale
    (largest table scale); each slot tries 5 draws and is left empty when none fits."""
    top = _scaled_top(table, cfg.scale_range[0])
    room = float(edge_distance(top.polygon, polygon_centroid(top.polygon)[None])[0])
    out = []
    for _ in range(count):
        for _try in range(5):
            asset = pool.sample(rng, categories)
            if asset.footprint_radius * cfg.min_stack_scale <= room:
                out.append(asset)
                break
    return out


# -------------------------------------------------------------------------------- open set
def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """(3, 3) rotation uniform on SO(3) (a random unit quaternion)."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _sample_background(rng: np.random.Generator) -> BackgroundSpec:
    kind = BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))]
    colours = [tuple(int(c) for c in rng.integers(0, 256, size=3)) for _ in range(1 if kind == "solid" else 2)]
    return BackgroundSpec(kind, tuple(colours))


def _sample_ground(rng: np.random.Generator, size_m: float, cfg: OpenSetConfig) -> GroundSpec:
    a = tuple(int(c) for c in rng.integers(40, 220, size=3))
    b = tuple(int(np.clip(c + d, 0, 255)) for c, d in zip(a, rng.integers(-90, 91, size=3)))
    noise = fractal_noise(cfg.texture_size, cfg.noise_cells, cfg.noise_octaves, rng)
    texture = noise_texture(noise, a, b)
    texture.setflags(write=False)
    mean = tuple(int(c) for c in np.rint(mean_colour(texture)))
    params = {"noise": "perlin_fractal", "cells": cfg.noise_cells, "octaves": cfg.noise_octaves,
              "texture_size": cfg.texture_size, "colour_a": list(a), "colour_b": list(b)}
    return GroundSpec(float(size_m), mean, texture, params)


def arrange_open_set(assets: Sequence[Asset], seed: int, config: OpenSetConfig | None = None) -> Layout:
    """Open-set layout of given assets (module docstring); raises :class:`LayoutError` when they cannot
    be placed within the retry budget."""
    cfg = config or OpenSetConfig()
    seed = _check_seed(seed)
    return _arrange_open_set(list(assets), np.random.default_rng(seed), seed, cfg)


def open_set_layout(pool: AssetPool, seed: int, config: OpenSetConfig | None = None) -> Layout:
    """Random open-set layout: N ~ U{min_objects..max_objects} assets of any category from ``pool``."""
    cfg = config or OpenSetConfig()
    seed = _check_seed(seed)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    return _arrange_open_set([pool.sample(rng) for _ in range(n)], rng, seed, cfg)


def _arrange_open_set(assets: list[Asset], rng: np.random.Generator, seed: int, cfg: OpenSetConfig) -> Layout:
    if not assets:
        raise InputError(None, "an open-set layout needs at least one asset")
    rotations, scales, local_vertices, radii, lifts = [], [], [], [], []
    for asset in assets:
        R = _random_rotation(rng) if cfg.rotation == "any" else rotation_y(float(rng.uniform(0, 2 * np.pi)))
        if cfg.size_range is not None:
            s = float(rng.uniform(*cfg.size_range)) / float(np.max(asset.extents))
        else:
            s = float(rng.uniform(*cfg.scale_range))
        v = (s * np.asarray(asset.mesh.vertices)) @ R.T
        rotations.append(R)
        scales.append(s)
        lifts.append(-float(v[:, 1].min()))
        radii.append(float(np.hypot(v[:, 0], v[:, 2]).max()))
        local_vertices.append(v)
    radii_a = np.array(radii)
    support = np.stack([footprint_support(v[:, [0, 2]]) for v in local_vertices])  # (N, 2, M)
    order = sorted(range(len(assets)), key=lambda k: -radii_a[k])
    region = cfg.spread * float(np.sqrt(np.sum(radii_a ** 2)))
    centres = np.zeros((len(assets), 2))
    meshes = []  # each asset rotated, scaled and lifted onto the floor, with its bounding box
    for asset, R, s, v, lift in zip(assets, rotations, scales, local_vertices, lifts):
        meshes.append(_boxed_mesh(v + [0.0, lift, 0.0], asset.mesh, R, s, [0.0, lift, 0.0]))
    cores: dict[int, Any] = {}
    boxes: dict[int, Any] = {}
    apart = ApartMemo()  # pairs found apart at their final spots need no second test in the physics check

    def spot(k: int) -> np.ndarray:
        """(3,) translation of asset k at its centre."""
        return np.array([centres[k][0], 0.0, centres[k][1]])

    def core(k: int) -> Any:
        """fcl object of the largest faces of asset k (see _open_set_first_fit), at its centre."""
        if k not in cores:
            used, faces = largest_faces(assets[k].mesh)
            cores[k] = fcl_object(local_vertices[k][used] + [0.0, lifts[k], 0.0], faces)
            set_translation(cores[k], spot(k))
        return cores[k]

    def box(k: int, at: np.ndarray | None = None) -> Any:
        """fcl box object of asset k's bounding box, at the translation ``at`` (3,) or at its centre."""
        if k not in boxes:
            boxes[k] = meshes[k].box_object(spot(k))
        return meshes[k].move_box(boxes[k], spot(k) if at is None else at)

    def close(k: int, at: np.ndarray, i: int) -> bool:
        """True when asset k at the translation ``at`` and asset i at its centre are nearer than the clearance."""
        return meshes_close(meshes[k], at, meshes[i], spot(i), cfg.min_clearance, apart)

    placed: list[int] = []
    expansions = 0
    for k in order:
        r = radii_a[k]
        done = False
        while not done:
            room = region - r
            if room >= 0:
                p = first_accepted(rng, room, cfg.max_tries,
                                   lambda cands: _open_set_first_fit(k, cands, placed, centres, radii_a, support, core,
                                                                     box, close, cfg.min_clearance))
                if p is not None:
                    centres[k] = p
                    if k in cores:
                        set_translation(cores[k], spot(k))
                    placed.append(k)
                    done = True
            if done:
                break
            if expansions >= cfg.max_expansions:
                raise LayoutError("open_set", seed, f"could not place object {len(placed) + 1} of {len(assets)} "
                                                    f"({assets[k].category}, footprint radius {r:.3f} m) in a "
                                                    f"{2 * region:.2f} m square after {cfg.max_tries} tries and "
                                                    f"{expansions} region expansions")
            region *= 1.1
            expansions += 1
    items = []
    for n, k in enumerate(placed):
        items.append((assets[k], rotations[k], scales[k], np.array([centres[k][0], lifts[k], centres[k][1]]), radii_a[k]))
    ground = _sample_ground(rng, max(2.0, cfg.ground_scale * 2.0 * region), cfg)
    background = _sample_background(rng)
    objects, supports, discs = [], {}, []
    for n, (asset, R, s, t, r) in enumerate(items):
        objects.append(SceneObject(n + 1, asset.category, asset.mesh, Similarity(R, t, s)))
        supports[n + 1] = FLOOR
        discs.append([t[0], t[2], r])
    boxed = {n: (meshes[k], spot(k)) for n, k in enumerate(placed)}
    return _make_layout("open_set", seed, objects, [it[0] for it in items], supports, np.array(discs), 0.0, region,
                        {}, ground, background, cfg.verify, boxed, apart)


#: Unit x/z directions (M, 2) along which footprints are compared before any fcl call.
_SUPPORT_DIRECTIONS = np.stack([np.cos(np.arange(16) * np.pi / 16), np.sin(np.arange(16) * np.pi / 16)], axis=1)


def footprint_support(points_xz: np.ndarray) -> np.ndarray:
    """(2, M) least and greatest projection of x/z points (V, 2), metres, on each of the M unit
    directions of ``_SUPPORT_DIRECTIONS``: the object lies between these lines along each direction."""
    projection = np.asarray(points_xz, dtype=np.float64) @ _SUPPORT_DIRECTIONS.T
    return np.stack([projection.min(axis=0), projection.max(axis=0)])


#: Faces of an asset in its "core" collision object (the largest ones: see _open_set_first_fit). The
#: size changes no layout (a core only rejects spots the exact test rejects too), only the cost: a
#: bigger core rejects more spots before the exact test but takes longer to build (~2.5 us per face);
#: 48-80 cost least on the benchmark's open-set scenes (fcl 1.8 -> 1.5 ms per scene against 16).
CORE_FACES = 64


@MeshMemo
def largest_faces(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """The CORE_FACES largest faces of a mesh (any uniform scale and rotation keeps the order):
    (U,) indices of the vertices they use and (F', 3) faces indexing those."""
    faces = np.asarray(mesh.faces)
    tri = np.asarray(mesh.vertices, dtype=np.float64)[faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    chosen = faces[np.argsort(-area, kind="stable")[:CORE_FACES]]
    used, inverse = np.unique(chosen, return_inverse=True)
    return used, inverse.reshape(-1, 3)


@MeshMemo
def _canonical_bounds(mesh: trimesh.Trimesh) -> np.ndarray:
    """(2, 3) [min, max] of a mesh's vertices, metres."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    return np.stack([vertices.min(axis=0), vertices.max(axis=0)])


def _boxed_mesh(posed_vertices: np.ndarray, canonical: trimesh.Trimesh, R: np.ndarray, scale, t) -> BoxedMesh:
    """``posed_vertices`` (N, 3) (``canonical``'s vertices turned by ``R``, scaled by ``scale``
    (scalar or (3,)) and moved by ``t`` (3,)) with ``canonical``'s bounding box posed the same way."""
    lo, hi = _canonical_bounds(canonical)
    return BoxedMesh(np.asarray(posed_vertices), np.asarray(canonical.faces), R,
                     R @ (scale * 0.5 * (lo + hi)) + t, scale * 0.5 * (hi - lo))


#: Candidate spots of an open-set object judged together first (see _open_set_first_fit): 94 % of the
#: objects placed after the first fit one of the first 8 of 100 (the benchmark's scenes).
FIRST_FIT_BATCH = 8


def _open_set_first_fit(k: int, candidates: np.ndarray, placed: Sequence[int], centres: np.ndarray,
                        radii: np.ndarray, support: np.ndarray, core: Callable[[int], Any],
                        box: Callable[..., Any], close: Callable[[int, np.ndarray, int], bool],
                        clearance: float) -> int | None:
    """Index of the first candidate centre (T, 2) where object ``k`` fits, or None: every placed
    disc is clear by ``clearance``, or overlaps without nesting (one footprint inside the other,
    where it could hide) and the meshes are at least ``clearance`` apart. Those are apart when their
    footprints' projections on one of the support directions (``support``: (N, 2, M) per object, at
    its centre) are, or when their bounding boxes (``box(i)``, ``box(k, at)``: fcl boxes, nothing to
    build) are more than the clearance apart. Otherwise a candidate is rejected when the fcl objects
    of a few of the largest faces (``core``, built once per object) already collide or come nearer
    than the clearance (those faces are part of the meshes), and else decided by ``close(k, at, i)``
    (exact: fcl on the faces of each mesh near the other's box). The disc and projection tests run
    on the first ``FIRST_FIT_BATCH`` candidates at once and then, when none of those fits, on the
    others at once (most objects fit one of the first few), the rest on candidates in order until
    one fits."""
    if not placed:
        return 0 if len(candidates) else None
    for batch in (slice(0, FIRST_FIT_BATCH), slice(FIRST_FIT_BATCH, None)):
        found = _open_set_first_fit_of(k, candidates[batch], placed, centres, radii, support, core, box, close,
                                       clearance)
        if found is not None:
            return batch.start + found
    return None


def _open_set_first_fit_of(k: int, candidates: np.ndarray, placed: Sequence[int], centres: np.ndarray,
                           radii: np.ndarray, support: np.ndarray, core: Callable[[int], Any],
                           box: Callable[..., Any], close: Callable[[int, np.ndarray, int], bool],
                           clearance: float) -> int | None:
    """:func:`_open_set_first_fit` of all ``candidates`` at once (``placed`` not empty)."""
    if not len(candidates):
        return None
    j = np.asarray(placed)
    d = np.hypot(candidates[:, None, 0] - centres[j, 0][None], candidates[:, None, 1] - centres[j, 1][None])
    clear = d >= radii[k] + radii[j][None] + clearance
    nested = d + np.minimum(radii[k], radii[j])[None] <= np.maximum(radii[k], radii[j])[None]
    check = ~clear
    if check.any():  # a gap between the projections along some direction bounds the distance from below
        at_k = candidates @ _SUPPORT_DIRECTIONS.T  # (T, M)
        at_j = centres[j] @ _SUPPORT_DIRECTIONS.T  # (J, M)
        low_k, high_k = at_k + support[k, 0], at_k + support[k, 1]
        low_j, high_j = at_j + support[j, 0], at_j + support[j, 1]
        gap = np.maximum(low_k[:, None] - high_j[None], low_j[None] - high_k[:, None]).max(axis=2)  # (T, J)
        check &= ~(gap >= clearance)
    for t in np.flatnonzero(~np.any(~clear & nested, axis=1)):
        if check[t].any():
            at = np.array([candidates[t, 0], 0.0, candidates[t, 1]])
            box_k = box(k, at)
            near = [i for i in j[check[t]] if not boxes_apart(box_k, box(i), clearance)]
            if not near:
                return int(t)
            set_translation(core(k), at)
            if any(collide(core(k), core(i)) or distance(core(k), core(i)) < clearance for i in near):
                continue
            if any(close(k, at, i) for i in near):
                continue
        return int(t)
    return None


# --------------------------------------------------------------------------------- assembly
def _finish(kind: str, seed: int, placed: Sequence[_Placed], gap: float, region: float,
            tops: Mapping[int, SupportTop], ground: GroundSpec | None, background: BackgroundSpec | None,
            verify: bool) -> Layout:
    objects = [SceneObject(n + 1, p.asset.category, p.asset.mesh, p.pose()) for n, p in enumerate(placed)]
    supports = {n + 1: p.support for n, p in enumerate(placed)}
    discs = np.array([[p.centre[0], p.centre[1], p.radius] for p in placed])
    return _make_layout(kind, seed, objects, [p.asset for p in placed], supports, discs, gap, region, tops,
                        ground, background, verify)


def _make_layout(kind: str, seed: int, objects: Sequence[SceneObject], assets: Sequence[Asset],
                 supports: Mapping[int, int], discs: np.ndarray, gap: float, region: float,
                 tops: Mapping[int, SupportTop], ground: GroundSpec | None, background: BackgroundSpec | None,
                 verify: bool, boxed: Mapping[int, tuple[BoxedMesh, np.ndarray]] | None = None,
                 apart: ApartMemo | None = None) -> Layout:
    """The Layout of placed objects; ``verify`` runs the physics check (with ``boxed``: position ->
    the posed mesh in its own frame with its box, and its translation, and ``apart``: pairs of those
    the placement found apart; see ``check_physics``)."""
    ids = [o.id for o in objects]
    relations = compute_relations(ids, discs[:, :2], supports)
    discs = np.array(discs, dtype=np.float64)
    discs.setflags(write=False)
    shell = Layout(Scene(tuple(objects), floor=Plane(np.array([0.0, 1.0, 0.0]), 0.0)), kind, seed, tuple(assets),
                   relations, dict(supports), discs, float(gap), float(region), dict(tops), ground, background)
    scene = Scene(tuple(objects), floor=Plane(np.array([0.0, 1.0, 0.0]), 0.0), metadata={"layout": shell.to_dict()})
    layout = Layout(scene, kind, seed, tuple(assets), relations, dict(supports), discs, float(gap), float(region),
                    dict(tops), ground, background)
    if verify:
        world = [trimesh.Trimesh(o.pose.apply(o.mesh.vertices), o.mesh.faces, process=False) for o in objects]
        if boxed is None:  # each posed mesh with its posed canonical bounding box, in world coordinates
            boxed = {k: (_boxed_mesh(m.vertices, o.mesh, o.pose.R, o.pose.scale_xyz, o.pose.t), np.zeros(3))
                     for k, (o, m) in enumerate(zip(objects, world))}
        report = check_physics(world, ids, supports, boxed=boxed, memo=apart)
        if not report.ok:
            raise LayoutError(kind, seed, f"physics check failed: interpenetrating {list(report.penetrating)}, "
                                          f"not resting {list(report.not_resting)}")
    return layout
