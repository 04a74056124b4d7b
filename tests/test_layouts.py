"""Layouts: the I-Scene collision-free random layout and the open-set layout, checked physically and
geometrically with code independent of the layout's own checks (point sampling and signed distances
instead of python-fcl, the table top re-sliced from the world mesh)."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
import trimesh
from scipy.spatial import ConvexHull

from sceneforge.assets import AssetPool, generate_asset
from sceneforge.errors import InputError
from sceneforge.synth.layouts import (
    BackgroundSpec, DiscGrid, ISceneConfig, LayoutError, OpenSetConfig, arrange_iscene, arrange_open_set,
    first_accepted, iscene_layout, open_set_layout)
from sceneforge.synth.physics import BoxedMesh, check_physics, collide, distance, fcl_object, meshes_close

ISCENE_SEEDS = range(60)
OPEN_SEEDS = range(40)


@pytest.fixture(scope="module")
def pool() -> AssetPool:
    return AssetPool(variants_per_category=3, seed=0)


@pytest.fixture(scope="module")
def iscene_layouts(pool):
    return [iscene_layout(pool, seed) for seed in ISCENE_SEEDS]


@pytest.fixture(scope="module")
def stacked_layouts(pool):
    cfg = ISceneConfig(min_objects=4, max_objects=8, table_probability=1.0, max_stacked=4)
    return [iscene_layout(pool, seed, cfg) for seed in range(30)]


@pytest.fixture(scope="module")
def open_layouts(pool):
    return [open_set_layout(pool, seed) for seed in OPEN_SEEDS]


def world_meshes(layout) -> list[trimesh.Trimesh]:
    return [trimesh.Trimesh(o.pose.apply(o.mesh.vertices), o.mesh.faces, process=False) for o in layout.scene.objects]


def _penetration_depth(a: trimesh.Trimesh, b: trimesh.Trimesh, lift_a: float, rng: np.random.Generator) -> float:
    """Deepest point of a's surface (samples + vertices, lifted by ``lift_a`` metres) inside b's closed
    parts, metres (0 when none is inside)."""
    lo = np.maximum(a.bounds[0], b.bounds[0]) - 1e-9
    hi = np.minimum(a.bounds[1], b.bounds[1]) + 1e-9
    if np.any(lo > hi):
        return 0.0
    samples, _ = trimesh.sample.sample_surface(a, 3000, seed=int(rng.integers(1 << 30)))
    points = np.vstack([samples, a.vertices]) + [0.0, lift_a, 0.0]
    points = points[np.all((points >= lo) & (points <= hi), axis=1)]
    deepest = 0.0
    for part in b.split(only_watertight=True):
        candidates = points[np.all((points >= part.bounds[0]) & (points <= part.bounds[1]), axis=1)]
        if len(candidates) == 0:
            continue
        inside = candidates[part.contains(candidates)]
        if len(inside):
            deepest = max(deepest, float(trimesh.proximity.signed_distance(part, inside).max()))
    return deepest


def deepest_interpenetration(meshes, ids, supports) -> tuple[float, tuple[int, int] | None]:
    """Largest penetration depth (metres) over all pairs of world meshes, and the pair."""
    rng = np.random.default_rng(0)
    worst, worst_pair = 0.0, None
    for a, b in itertools.combinations(range(len(ids)), 2):
        # a supported object touches its support: test it lifted by 10 micrometres
        lift_a = 1e-5 if supports[ids[a]] == ids[b] else 0.0
        lift_b = 1e-5 if supports[ids[b]] == ids[a] else 0.0
        depth = max(_penetration_depth(meshes[a], meshes[b], lift_a, rng),
                    _penetration_depth(meshes[b], meshes[a], lift_b, rng))
        if depth > worst:
            worst, worst_pair = depth, (ids[a], ids[b])
    return worst, worst_pair


def assert_no_interpenetration(layout, tol: float = 1e-5) -> None:
    ids = [o.id for o in layout.scene.objects]
    depth, pair = deepest_interpenetration(world_meshes(layout), ids, layout.supports)
    assert depth <= tol, (layout.kind, layout.seed, pair, depth)


def test_interpenetration_check_is_not_blind():
    """The independent check above finds a cabinet pushed 3 cm into a wardrobe and a mug sunk into a
    table's top."""
    wardrobe, cabinet, table, mug = (generate_asset(c, 1).mesh.copy() for c in ("wardrobe", "cabinet", "table", "mug"))
    for mesh in (wardrobe, cabinet, table):
        mesh.apply_translation((0.0, -mesh.bounds[0, 1], 0.0))
    cabinet.apply_translation((wardrobe.bounds[1, 0] - cabinet.bounds[0, 0] - 0.03, 0.0, 0.0))
    depth, pair = deepest_interpenetration([wardrobe, cabinet], [1, 2], {1: 0, 2: 0})
    assert pair == (1, 2) and depth > 0.005
    cabinet.apply_translation((0.031, 0.0, 0.0))  # 1 mm apart
    assert deepest_interpenetration([wardrobe, cabinet], [1, 2], {1: 0, 2: 0})[0] == 0.0
    mug.apply_translation((0.0, table.bounds[1, 1] - mug.bounds[0, 1] - 0.004, 0.0))
    depth, _ = deepest_interpenetration([table, mug], [1, 2], {1: 0, 2: 1})
    assert depth > 0.003
    mug.apply_translation((0.0, 0.004, 0.0))  # resting exactly on the top: no penetration
    assert deepest_interpenetration([table, mug], [1, 2], {1: 0, 2: 1})[0] <= 1e-5


def _top_hull(table: trimesh.Trimesh) -> ConvexHull:
    """Convex hull (x/z) of the table's section 2 mm below its highest point."""
    y = float(table.bounds[1, 1]) - 0.002
    segments = trimesh.intersections.mesh_plane(table, [0.0, 1.0, 0.0], [0.0, y, 0.0])
    return ConvexHull(segments.reshape(-1, 3)[:, [0, 2]])


def _expected_relation(a: np.ndarray, b: np.ndarray) -> str:
    dx, dz = a[0] - b[0], a[1] - b[1]
    if abs(dx) >= abs(dz):
        return "right_of" if dx > 0 else "left_of"
    return "in_front_of" if dz > 0 else "behind"


# ---------------------------------------------------------------------------------- I-Scene
def test_iscene_object_counts_and_discs(iscene_layouts):
    counts = []
    for layout in iscene_layouts:
        n = len(layout.scene.objects)
        counts.append(n)
        assert 2 <= n <= 12
        assert [o.id for o in layout.scene.objects] == list(range(1, n + 1))
        assert layout.discs.shape == (n, 3) and layout.kind == "iscene"
        for k, (obj, asset) in enumerate(zip(layout.scene.objects, layout.assets)):
            # r_i = s_i * r_hat_i, r_hat_i from the x/z extents; the world footprint stays in the disc
            ex, _, ez = asset.mesh.extents
            assert layout.discs[k, 2] == pytest.approx(obj.pose.s * 0.5 * math.hypot(ex, ez), rel=1e-9)
            np.testing.assert_allclose(layout.discs[k, :2], obj.pose.t[[0, 2]], atol=1e-12)
            xz = obj.pose.apply(obj.mesh.vertices)[:, [0, 2]]
            assert np.hypot(*(xz - layout.discs[k, :2]).T).max() <= layout.discs[k, 2] + 1e-9
    assert len(set(counts)) >= 5  # the count is drawn, not fixed


def test_iscene_floor_discs_keep_the_gap(iscene_layouts):
    for layout in iscene_layouts:
        floor = [k for k, o in enumerate(layout.scene.objects) if layout.supports[o.id] == 0]
        assert layout.gap > 0
        radii = layout.discs[floor, 2]
        for i, j in itertools.combinations(floor, 2):
            d = math.hypot(*(layout.discs[i, :2] - layout.discs[j, :2]))
            assert d >= layout.discs[i, 2] + layout.discs[j, 2] + layout.gap - 1e-9, (layout.seed, i, j)
        # every disc inside the final square region
        assert np.all(np.abs(layout.discs[floor, :2]) + radii[:, None] <= layout.region_half_extent + 1e-9)


def test_iscene_gap_is_mean_radius_times_density(pool):
    for seed in range(6):
        cfg = ISceneConfig(table_probability=0.0, density_range=(0.3, 0.3))
        layout = iscene_layout(pool, seed, cfg)
        assert layout.gap == pytest.approx(0.3 * float(np.mean(layout.discs[:, 2])), rel=1e-12)


def test_iscene_larger_discs_are_placed_first(iscene_layouts):
    for layout in iscene_layouts:
        has_table = bool(layout.support_tops)
        floor = [k for k, o in enumerate(layout.scene.objects) if layout.supports[o.id] == 0]
        rest = floor[1:] if has_table else floor
        assert np.all(np.diff(layout.discs[rest, 2]) <= 1e-12), layout.seed
        if has_table:
            assert layout.assets[0].category in ("table", "desk", "nightstand") and floor[0] == 0


def test_iscene_objects_rest_and_do_not_interpenetrate(iscene_layouts):
    for layout in iscene_layouts:
        meshes = world_meshes(layout)
        for obj, mesh in zip(layout.scene.objects, meshes):
            support = layout.supports[obj.id]
            height = 0.0 if support == 0 else float(meshes[support - 1].bounds[1, 1])
            assert abs(float(mesh.bounds[0, 1]) - height) <= 1e-6, (layout.seed, obj.id)
        assert_no_interpenetration(layout)


def test_stacked_objects_lie_inside_the_table_top(stacked_layouts):
    n_stacked = 0
    for layout in stacked_layouts:
        meshes = world_meshes(layout)
        assert layout.supports[1] == 0 and 1 in layout.support_tops
        table = meshes[0]
        hull = _top_hull(table)
        top = float(table.bounds[1, 1])
        assert layout.support_tops[1].height == pytest.approx(top, abs=1e-9)
        # the first stacked object is anchored at the top polygon's centroid, its disc inside the polygon
        first = min(i for i, s in layout.supports.items() if s == 1)
        polygon = hull.points[hull.vertices]
        x, z = polygon[:, 0], polygon[:, 1]
        cross = x * np.roll(z, -1) - np.roll(x, -1) * z
        centroid = np.array([((x + np.roll(x, -1)) * cross).sum(), ((z + np.roll(z, -1)) * cross).sum()]) / (3 * cross.sum())
        np.testing.assert_allclose(layout.discs[first - 1, :2], centroid, atol=1e-6)
        nearest_edge = float(-(hull.equations[:, :2] @ centroid + hull.equations[:, 2]).max())
        assert layout.discs[first - 1, 2] <= nearest_edge + 1e-6
        for obj, mesh in zip(layout.scene.objects, meshes):
            if layout.supports[obj.id] != 1:
                continue
            n_stacked += 1
            assert abs(float(mesh.bounds[0, 1]) - top) <= 1e-6  # touching the top
            xz = mesh.vertices[:, [0, 2]]
            inside = hull.equations[:, :2] @ xz.T + hull.equations[:, 2:3]
            assert np.all(inside <= 1e-6), (layout.seed, obj.id, float(inside.max()))
        assert len(layout.scene.objects) >= 4
        assert_no_interpenetration(layout)
    assert n_stacked >= 12


def test_fixed_object_count_is_kept_when_stacked_objects_do_not_fit(pool):
    cfg = ISceneConfig(min_objects=6, max_objects=6, table_probability=1.0, max_stacked=5)
    for seed in range(25):
        layout = iscene_layout(pool, seed, cfg)
        assert len(layout.scene.objects) == 6, seed


def test_relations_hold_by_their_definition(iscene_layouts, stacked_layouts, open_layouts):
    for layout in iscene_layouts + stacked_layouts + open_layouts:
        objects = {o.id: o for o in layout.scene.objects}
        meshes = dict(zip(objects, world_meshes(layout)))
        centre = {i: o.pose.t[[0, 2]] for i, o in objects.items()}
        seen = set()
        for rel in layout.relations:
            pair = frozenset((rel.subject, rel.object))
            assert pair not in seen  # one relation per pair
            seen.add(pair)
            if rel.relation == "on_top_of":
                assert layout.supports[rel.subject] == rel.object
                assert meshes[rel.subject].bounds[0, 1] == pytest.approx(meshes[rel.object].bounds[1, 1], abs=1e-6)
            else:
                assert rel.subject < rel.object
                assert rel.relation == _expected_relation(centre[rel.subject], centre[rel.object])
        assert len(seen) == len(objects) * (len(objects) - 1) // 2
        assert layout.scene.metadata["layout"]["relations"] == [r.to_dict() for r in layout.relations]


def test_horizontal_relations_cover_all_four_directions(iscene_layouts):
    kinds = {r.relation for layout in iscene_layouts for r in layout.relations}
    assert {"left_of", "right_of", "in_front_of", "behind"} <= kinds


def test_iscene_is_deterministic(pool):
    other = AssetPool(variants_per_category=3, seed=0)
    for seed in (3, 17):
        a, b = iscene_layout(pool, seed), iscene_layout(other, seed)
        assert [x.key for x in a.assets] == [x.key for x in b.assets]
        for oa, ob in zip(a.scene.objects, b.scene.objects):
            np.testing.assert_array_equal(oa.pose.R, ob.pose.R)
            np.testing.assert_array_equal(oa.pose.t, ob.pose.t)
            assert oa.pose.s == ob.pose.s
            np.testing.assert_array_equal(oa.mesh.vertices, ob.mesh.vertices)
        assert a.scene.metadata == b.scene.metadata
    assert iscene_layout(pool, 3).scene.metadata != iscene_layout(pool, 4).scene.metadata


def test_disc_grid_agrees_with_brute_force():
    rng = np.random.default_rng(2)
    radii = rng.uniform(0.05, 0.8, size=40)
    gap = 0.07
    grid = DiscGrid((radii.min() + gap) / math.sqrt(2.0))
    centres = []
    for r in radii:
        p = rng.uniform(-4, 4, size=2)
        brute = all(math.hypot(*(p - c)) >= r + rc + gap for c, rc in centres)
        assert grid.fits(p, r, gap) == brute
        if brute:
            grid.add(p, r)
            centres.append((p, r))
    assert len(centres) > 10
    for _ in range(500):  # probes near placed discs, including the many-cells path
        p, r = rng.uniform(-4, 4, size=2), float(rng.uniform(0.01, 1.5))
        assert grid.fits(p, r, gap) == all(math.hypot(*(p - c)) >= r + rc + gap for c, rc in centres)


def test_disc_grid_first_fit_agrees_with_single_checks():
    rng = np.random.default_rng(5)
    gap = 0.05
    for radii in (rng.uniform(0.2, 0.3, size=60), rng.uniform(0.02, 1.2, size=8)):  # cells path, brute path
        grid = DiscGrid((radii.min() + gap) / math.sqrt(2.0))
        for r in radii:
            p = rng.uniform(-5, 5, size=2)
            if grid.fits(p, r, gap):
                grid.add(p, r)
        for r in (0.05, 0.25, 0.9):
            for _ in range(20):
                probes = rng.uniform(-5, 5, size=(15, 2))
                fitting = [k for k, p in enumerate(probes)
                           if all(math.hypot(*(p - c)) >= r + rc + gap for c, rc in zip(grid.centres, grid.radii))]
                assert grid.first_fit(probes, r, gap) == (fitting[0] if fitting else None)


def test_first_accepted_leaves_the_generator_as_one_try_at_a_time():
    for seed in range(20):
        accept = np.random.default_rng(100 + seed).uniform(size=50) > 0.93  # some tries pass

        def first(cands: np.ndarray) -> int | None:
            passing = np.flatnonzero(accept[:len(cands)])
            return int(passing[0]) if len(passing) else None

        batched, one_by_one = np.random.default_rng(seed), np.random.default_rng(seed)
        got = first_accepted(batched, 1.7, 30, first)
        want = None
        for k in range(30):
            p = one_by_one.uniform(-1.7, 1.7, size=2)
            if accept[k]:
                want = p
                break
        assert (got is None) == (want is None)
        if want is not None:
            np.testing.assert_array_equal(got, want)
        assert batched.uniform() == one_by_one.uniform()  # the same stream position afterwards
    rng, reference = np.random.default_rng(1), np.random.default_rng(1)
    assert first_accepted(rng, 1.0, 7, lambda c: None) is None
    reference.uniform(-1.0, 1.0, size=(7, 2))
    assert rng.uniform() == reference.uniform()


def test_region_grows_by_ten_percent_steps():
    chairs = [generate_asset("chair", s) for s in range(6)]
    cfg = ISceneConfig(region_half_extent=0.2, max_expansions=60, density_range=(0.2, 0.2))
    layout = arrange_iscene(chairs, 5, config=cfg)
    steps = math.log(layout.region_half_extent / 0.2) / math.log(1.1)
    assert steps >= 1 and abs(steps - round(steps)) < 1e-6


# --------------------------------------------------------------------------------- open set
def test_open_set_counts_rest_rotations_and_no_interpenetration(open_layouts):
    tilted = 0
    for layout in open_layouts:
        n = len(layout.scene.objects)
        assert 2 <= n <= 5 and layout.kind == "open_set"
        for obj, mesh in zip(layout.scene.objects, world_meshes(layout)):
            assert layout.supports[obj.id] == 0
            assert abs(float(mesh.bounds[0, 1])) <= 1e-6
            tilted += obj.pose.R[1, 1] < 0.9  # the object's up axis is not world up
        assert_no_interpenetration(layout)
    assert tilted >= 5


def test_open_set_ground_and_background(open_layouts):
    kinds = set()
    for layout in open_layouts:
        texture = layout.ground.texture
        assert texture.shape == (128, 128, 3) and texture.dtype == np.uint8
        a, b = (np.asarray(layout.ground.params[k], dtype=np.float64) for k in ("colour_a", "colour_b"))
        grey = texture[..., int(np.argmax(np.abs(a - b)))].astype(np.float64)  # the channel the noise moves most
        assert grey.std() > 0.05 * np.abs(a - b).max()
        # Perlin noise is smooth: neighbours differ far less than pixels drawn at random
        neighbour = np.abs(np.diff(grey, axis=1)).mean()
        shuffled = np.abs(np.diff(np.random.default_rng(0).permutation(grey.ravel()))).mean()
        assert neighbour < 0.5 * shuffled
        assert layout.ground.params["noise"] == "perlin_fractal" and layout.ground.size >= 2.0
        kinds.add(layout.background.kind)
        picture = layout.background.image(40, 30)
        assert picture.shape == (30, 40, 3)
        if layout.background.kind == "vertical_gradient":
            np.testing.assert_array_equal(picture[0, 0], layout.background.colours[0])
            np.testing.assert_array_equal(picture[-1, 0], layout.background.colours[1])
    assert len(kinds) >= 2


def test_open_set_is_deterministic(pool):
    a, b = open_set_layout(pool, 9), open_set_layout(AssetPool(variants_per_category=3, seed=0), 9)
    for oa, ob in zip(a.scene.objects, b.scene.objects, strict=True):
        np.testing.assert_array_equal(oa.pose.R, ob.pose.R)
        np.testing.assert_array_equal(oa.pose.t, ob.pose.t)
    np.testing.assert_array_equal(a.ground.texture, b.ground.texture)
    assert a.background.to_dict() == b.background.to_dict()



def test_core_size_changes_no_open_set_layout(pool, monkeypatch):
    """A core (an asset's largest faces) only rejects spots the exact test rejects too, so its size
    changes the cost of placement, never the layout."""
    from sceneforge.synth import layouts

    def poses(core_faces: int) -> list[list[bytes]]:
        monkeypatch.setattr(layouts, "CORE_FACES", core_faces)
        layouts.largest_faces._memo.clear()
        cfg = OpenSetConfig(min_objects=5, max_objects=8)
        return [[o.pose.matrix.tobytes() for o in open_set_layout(pool, seed, cfg).scene.objects] for seed in range(25)]

    try:
        assert poses(1) == poses(16) == poses(64) == poses(10_000)
    finally:
        layouts.largest_faces._memo.clear()


def test_open_set_first_fit_batch_changes_no_layout(pool, monkeypatch):
    """Candidates judged in a first batch and then the rest give the spot of judging all at once."""
    from sceneforge.synth import layouts

    def poses(batch: int) -> list[list[bytes]]:
        monkeypatch.setattr(layouts, "FIRST_FIT_BATCH", batch)
        cfg = OpenSetConfig(min_objects=5, max_objects=8, max_tries=40)
        return [[o.pose.matrix.tobytes() for o in open_set_layout(pool, seed, cfg).scene.objects] for seed in range(25)]

    assert poses(1) == poses(8) == poses(40) == poses(1000)


# ----------------------------------------------------------------------------- physics check
def test_physics_check_sees_interpenetration_nesting_and_floating():
    a = trimesh.creation.box((1, 1, 1))
    a.apply_translation((0, 0.5, 0))
    b = a.copy()
    b.apply_translation((0.5, 0, 0))
    inner = trimesh.creation.box((0.2, 0.2, 0.2))
    inner.apply_translation((0, 0.5, 0))
    high = a.copy()
    high.apply_translation((3, 0.2, 0))
    report = check_physics([a, b, inner, high], [1, 2, 3, 4], {1: 0, 2: 0, 3: 0, 4: 0})
    assert (1, 2) in report.penetrating and (1, 3) in report.penetrating
    assert set(report.not_resting) == {3, 4}
    on_top = trimesh.creation.box((0.3, 0.3, 0.3))
    on_top.apply_translation((0, 1.15, 0))
    assert check_physics([a, on_top], [1, 2], {1: 0, 2: 1}).ok
    sunk = on_top.copy()
    sunk.apply_translation((0, -0.05, 0))
    assert check_physics([a, sunk], [1, 2], {1: 0, 2: 1}).penetrating == ((1, 2),)


def _boxed(mesh: trimesh.Trimesh, R: np.ndarray, scale: float) -> BoxedMesh:
    """``mesh`` scaled and rotated about its box centre, with its rotated box (as the open-set layout)."""
    lo, hi = mesh.bounds
    return BoxedMesh((scale * np.asarray(mesh.vertices)) @ R.T, np.asarray(mesh.faces), R,
                     R @ (scale * 0.5 * (lo + hi)), scale * 0.5 * (hi - lo))


def test_physics_check_with_boxed_meshes_agrees_with_whole_meshes():
    rot = trimesh.transformations.rotation_matrix(0.4, [0.3, 1.0, 0.2])[:3, :3]
    parts = [trimesh.creation.box((1, 1, 1)), trimesh.creation.box((0.4, 0.4, 0.4)),
             trimesh.creation.box((0.2, 0.2, 0.2)), generate_asset("chair", 2).mesh]
    spots = [np.array([0.0, 0.5, 0.0]), np.array([0.6, 0.2, 0.0]), np.array([0.0, 0.5, 0.0]),
             np.array([0.0, 0.6, 1.2])]  # overlaps the first; nested in the first; near, box overlapping
    boxed = {k: (_boxed(m, rot, 1.0), t) for k, (m, t) in enumerate(zip(parts, spots))}
    meshes = [trimesh.Trimesh(b.vertices + t, b.faces, process=False) for b, t in boxed.values()]
    ids, supports = [1, 2, 3, 4], {1: 0, 2: 0, 3: 0, 4: 0}
    expected = check_physics(meshes, ids, supports)
    assert (1, 2) in expected.penetrating and (1, 3) in expected.penetrating
    got = check_physics(meshes, ids, supports, boxed=boxed)
    assert got.penetrating == expected.penetrating and got.not_resting == expected.not_resting
    # support and supported: resting exactly on the top passes, sunk 5 mm in fails (the contact lift)
    table = generate_asset("table", 1).mesh
    top = float(table.bounds[1, 1])
    for sink, penetrating in ((0.0, ()), (0.005, ((1, 2),))):
        cup = generate_asset("mug", 0).mesh
        at = np.array([0.05, top - cup.bounds[0, 1] - sink, 0.0])
        boxed = {0: (_boxed(table, np.eye(3), 1.0), np.zeros(3)), 1: (_boxed(cup, np.eye(3), 1.0), at)}
        meshes = [trimesh.Trimesh(b.vertices + t, b.faces, process=False) for b, t in boxed.values()]
        plain = check_physics(meshes, [1, 2], {1: 0, 2: 1})
        assert plain.penetrating == penetrating
        assert check_physics(meshes, [1, 2], {1: 0, 2: 1}, boxed=boxed).penetrating == penetrating


def test_meshes_close_agrees_with_fcl_on_whole_meshes():
    """The faces near the other's box decide as fcl on the whole meshes does, at the open-set clearance
    and for touching, on assets placed at random near each other (many of them close or crossing)."""
    rng = np.random.default_rng(5)
    assets = [generate_asset(c, 0).mesh for c in ("chair", "table", "lamp", "mug", "plant_pot", "shelf", "teapot")]
    outcomes = set()
    for trial in range(120):
        a, b = (_boxed(assets[int(rng.integers(len(assets)))], trimesh.transformations.random_rotation_matrix(
            rng.random(3))[:3, :3], float(rng.uniform(0.3, 1.5))) for _ in range(2))
        ta, tb = np.zeros(3), rng.normal(scale=0.35, size=3)
        whole_a, whole_b = fcl_object(a.vertices, a.faces), fcl_object(b.vertices, b.faces)
        whole_a.setTranslation(ta)
        whole_b.setTranslation(tb)
        hit = collide(whole_a, whole_b)
        for gap in (0.0, 0.005, 0.05):
            expected = hit or (gap > 0 and distance(whole_a, whole_b) < gap)
            assert meshes_close(a, ta, b, tb, gap) == expected, (trial, gap)
            outcomes.add(expected)
    assert outcomes == {True, False}



def test_apart_memo_answers_only_what_was_found_before(monkeypatch):
    """A memo answers a pair found apart by a gap for that gap or a smaller one, in either order, and
    only at the same translations; its answers are what the test itself gives."""
    from sceneforge.synth import physics

    rng = np.random.default_rng(8)
    assets = [generate_asset(c, 0).mesh for c in ("chair", "table", "mug", "teapot")]
    tests = []
    original = physics._meshes_close
    monkeypatch.setattr(physics, "_meshes_close", lambda *args: tests.append(args) or original(*args))
    memo = physics.ApartMemo()
    outcomes = set()
    for _ in range(40):
        a, b = (_boxed(assets[int(rng.integers(len(assets)))], trimesh.transformations.random_rotation_matrix(
            rng.random(3))[:3, :3], float(rng.uniform(0.3, 1.5))) for _ in range(2))
        ta, tb = rng.normal(scale=0.1, size=3), rng.normal(scale=0.4, size=3)
        close = physics.meshes_close(a, ta, b, tb, 0.02, memo)
        outcomes.add(close)
        # (arguments, gap, answered from the memo when the pair was found 2 cm apart)
        for args, gap, remembered in (((a, ta, b, tb), 0.0, True), ((b, tb, a, ta), 0.02, True),
                                      ((a, ta, b, tb), 0.03, False), ((a, ta, b, tb + [0.0, 0.0, 1e-9]), 0.0, False)):
            n = len(tests)
            assert physics.meshes_close(*args, gap, memo) == original(*args, gap)
            assert (len(tests) == n + 1) == (close or not remembered)
    assert outcomes == {True, False}

# -------------------------------------------------------------------------- errors and limits
def test_unsatisfiable_layouts_fail_fast_with_a_typed_error():
    beds = [generate_asset("bed", s) for s in range(4)]
    start = time.perf_counter()
    with pytest.raises(LayoutError, match=r"iscene layout \(seed 3\): could not place object \d of 4") as info:
        arrange_iscene(beds, 3, config=ISceneConfig(region_half_extent=1.0, max_expansions=0))
    assert info.value.seed == 3 and info.value.kind == "iscene"
    with pytest.raises(LayoutError, match=r"open_set layout \(seed 1\): could not place object"):
        arrange_open_set(beds, 1, OpenSetConfig(size_range=None, spread=0.1, max_expansions=0, max_tries=50))
    table = generate_asset("table", 0)
    with pytest.raises(LayoutError, match=r"stacked bed .* does not fit on the support top"):
        arrange_iscene([], 2, table=table, stacked=[beds[0]], config=ISceneConfig(min_stack_scale=0.8))
    assert time.perf_counter() - start < 2.0


def test_huge_scene_with_default_budget_ends_quickly(pool):
    cfg = ISceneConfig(min_objects=64, max_objects=64, density_range=(10.0, 10.0), max_tries=20,
                       max_expansions=3, region_half_extent=0.5)
    start = time.perf_counter()
    with pytest.raises(LayoutError, match=r"after 20 tries and 3 region expansions"):
        iscene_layout(pool, 0, cfg)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("make, message", [
    (lambda: ISceneConfig(max_objects=100), r"max_objects=100 is out of range; allowed: an integer in \[2, 64\]"),
    (lambda: ISceneConfig(min_objects=0), r"min_objects=0 is out of range; allowed: an integer in \[1, 64\]"),
    (lambda: ISceneConfig(scale_range=(2.0, 1.0)), r"scale_range=\(2\.0, 1\.0\) is invalid; need 0\.001 <= min"),
    (lambda: ISceneConfig(table_probability=1.5), r"table_probability=1\.5 is out of range; allowed: \[0, 1\]"),
    (lambda: ISceneConfig(rotation="roll"), r"rotation='roll' is invalid; allowed: 'yaw', 'none'"),
    (lambda: OpenSetConfig(max_objects=40), r"max_objects=40 is out of range; allowed: an integer in \[2, 32\]"),
    (lambda: OpenSetConfig(rotation="tumble"), r"rotation='tumble' is invalid; allowed: 'any', 'yaw'"),
    (lambda: OpenSetConfig(min_clearance=2.0), r"min_clearance=2\.0 is out of range; allowed: \[0, 1\] metres"),
    (lambda: BackgroundSpec("plaid", ((1, 2, 3),)), r"background kind 'plaid' unknown; allowed: solid"),
])
def test_invalid_arguments_name_the_value_and_range(make, message):
    with pytest.raises(InputError, match=message):
        make()


def test_invalid_layout_calls(pool):
    with pytest.raises(InputError, match=r"layout seed must be a non-negative integer, got -1"):
        iscene_layout(pool, -1)
    with pytest.raises(InputError, match=r"1 stacked object\(s\) given without a table"):
        arrange_iscene([], 0, stacked=[generate_asset("mug", 0)])
    with pytest.raises(InputError, match="needs at least one asset"):
        arrange_open_set([], 0)


@pytest.mark.slow
def test_many_seeds_keep_every_invariant(pool):
    """300 I-Scene (half with a table and stacked objects) and 100 open-set layouts through the
    independent checks: disc gap, resting, stacked inside the top, no interpenetration, relations."""
    stacked_cfg = ISceneConfig(table_probability=1.0, max_stacked=5)
    for seed in range(1000, 1300):
        layout = iscene_layout(pool, seed, stacked_cfg if seed % 2 else None)
        meshes = world_meshes(layout)
        floor = [k for k, o in enumerate(layout.scene.objects) if layout.supports[o.id] == 0]
        for i, j in itertools.combinations(floor, 2):
            d = math.hypot(*(layout.discs[i, :2] - layout.discs[j, :2]))
            assert d >= layout.discs[i, 2] + layout.discs[j, 2] + layout.gap - 1e-9
        for obj, mesh in zip(layout.scene.objects, meshes):
            support = layout.supports[obj.id]
            height = 0.0 if support == 0 else float(meshes[support - 1].bounds[1, 1])
            assert abs(float(mesh.bounds[0, 1]) - height) <= 1e-6
            if support:
                hull = _top_hull(meshes[support - 1])
                inside = hull.equations[:, :2] @ mesh.vertices[:, [0, 2]].T + hull.equations[:, 2:3]
                assert np.all(inside <= 1e-6)
        assert 2 <= len(meshes) <= 12
        assert_no_interpenetration(layout)
    for seed in range(1000, 1100):
        layout = open_set_layout(pool, seed)
        assert 2 <= len(layout.scene.objects) <= 5
        for mesh in world_meshes(layout):
            assert abs(float(mesh.bounds[0, 1])) <= 1e-6
        assert_no_interpenetration(layout)


def test_layouts_with_user_meshes(tmp_path, real_dir):
    """User meshes (not watertight) join a pool and go through both layouts and their checks."""
    import shutil

    from sceneforge.assets import load_user_assets

    for category, name in (("animal", "bunny.ply"), ("toy", "duck.glb")):
        (tmp_path / category).mkdir()
        shutil.copy(real_dir / "meshes" / name, tmp_path / category / name)
    library = load_user_assets(tmp_path)
    pool = AssetPool(["table"], 2, 0, user_assets=library.assets)
    used = set()
    for seed in range(6):
        for layout in (iscene_layout(pool, seed, ISceneConfig(table_probability=1.0)), open_set_layout(pool, seed)):
            used |= {a.category for a in layout.assets}
            meshes = world_meshes(layout)
            for obj, mesh in zip(layout.scene.objects, meshes):
                support = layout.supports[obj.id]
                height = 0.0 if support == 0 else float(meshes[support - 1].bounds[1, 1])
                assert abs(float(mesh.bounds[0, 1]) - height) <= 1e-6
    assert {"animal", "toy"} <= used
