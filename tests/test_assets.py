"""Asset library: every procedural category, canonical frame, colours and parts, shape parameters,
size priors, determinism, argument errors, user mesh folders and the contact sheet."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy.spatial import Delaunay

from sceneforge.assets import (
    CATEGORIES, REGISTRY, AssetPool, UserAssetWarning, categories_with_tag, generate_asset, load_user_assets,
    size_prior)
from sceneforge.errors import InputError

SEEDS = (0, 1, 2, 3, 4)

# (category, overrides, part in front, part behind): the front of every asset faces +z
FRONT_BACK = [
    ("chair", {"base": "four_legs"}, "seat", "back"),
    ("sofa", {}, "cushion", "back"),
    ("bed", {}, "mattress", "headboard"),
    ("monitor", {}, "screen", "stand"),
    ("tv", {"stand": "pedestal"}, "screen", "stand"),
    ("cabinet", {"front": "doors"}, "door", "body"),
    ("nightstand", {"front": "drawers"}, "drawer", "body"),
    ("wardrobe", {}, "door", "body"),
    ("desk", {"drawer_unit": "left"}, "drawer", "top"),
    ("laptop", {"lid_angle_deg": 110.0}, "keyboard", "lid"),
]


def _part_mask(asset, name: str) -> np.ndarray:
    return np.asarray(asset.part_ids) == asset.part_names.index(name)


def _part_centre(asset, name: str) -> np.ndarray:
    faces = np.asarray(asset.mesh.faces)[_part_mask(asset, name)]
    return np.asarray(asset.mesh.vertices)[np.unique(faces)].mean(axis=0)


# ------------------------------------------------------------------------------ every category
def test_registry_has_the_issue_categories():
    wanted = {"table", "chair", "sofa", "bed", "shelf", "cabinet", "desk", "stool", "bench", "lamp", "monitor",
              "tv", "laptop", "mug", "cup", "bottle", "bowl", "plate", "vase", "plant_pot", "book", "box",
              "teapot", "bin"}
    assert wanted <= set(CATEGORIES)
    assert len(CATEGORIES) >= 24
    assert set(categories_with_tag("support")) <= set(categories_with_tag("floor"))
    assert categories_with_tag("stackable") and categories_with_tag("support")


@pytest.mark.parametrize("category", CATEGORIES)
def test_category_builds_canonical_coloured_assets(category):
    prior = size_prior(category)
    for seed in SEEDS:
        asset = generate_asset(category, seed)
        mesh = asset.mesh
        assert len(mesh.faces) > 0 and np.all(np.isfinite(mesh.vertices))
        # canonical frame: bounding box centred at the origin
        lo, hi = mesh.bounds
        np.testing.assert_allclose((lo + hi) / 2.0, 0.0, atol=1e-6)
        # closed parts -> a watertight mesh with outward faces (positive volume)
        assert mesh.is_watertight and mesh.volume > 0
        # size prior: the whole bounding box lies within the category's real-world range
        assert np.all(asset.extents >= prior.low - 1e-9) and np.all(asset.extents <= prior.high + 1e-9), (
            seed, asset.extents, prior.low, prior.high)
        # per-face colours and part ids; each part carries one colour
        colours = asset.face_colours
        assert colours.shape == (len(mesh.faces), 4) and colours.dtype == np.uint8
        assert asset.part_ids.shape == (len(mesh.faces),)
        assert set(np.unique(asset.part_ids)) == set(range(len(asset.part_names)))
        for pid in range(len(asset.part_names)):
            assert len(np.unique(colours[asset.part_ids == pid], axis=0)) == 1
        assert asset.key == f"procedural/{category}/seed={seed}" and asset.category == category


@pytest.mark.parametrize("category", CATEGORIES)
def test_assets_stand_upright_on_their_bottom(category):
    """y is up: the centre of mass lies above the support polygon of the vertices on the box bottom,
    so the object stands (a lying or upside-down object would topple or not touch the bottom)."""
    for seed in SEEDS[:3]:
        mesh = generate_asset(category, seed).mesh
        bottom = np.asarray(mesh.vertices)[mesh.vertices[:, 1] < mesh.bounds[0, 1] + 1e-3][:, [0, 2]]
        assert len(bottom) >= 3
        com = mesh.center_mass
        assert com[1] < mesh.bounds[1, 1]
        assert Delaunay(bottom).find_simplex(com[[0, 2]]) >= 0, (seed, com)


@pytest.mark.parametrize("category, overrides, front, back", FRONT_BACK)
def test_front_faces_plus_z(category, overrides, front, back):
    for seed in SEEDS[:3]:
        asset = generate_asset(category, seed, **overrides)
        assert _part_centre(asset, front)[2] > _part_centre(asset, back)[2] + 1e-3, seed


def test_handles_and_spouts_point_to_plus_x():
    mug = generate_asset("mug", 0, handle_shape="round")
    teapot = generate_asset("teapot", 0, handle_style="top")
    assert _part_centre(mug, "handle")[0] > _part_centre(mug, "body")[0] + 0.01
    assert _part_centre(teapot, "spout")[0] > _part_centre(teapot, "body")[0] + 0.01


# ---------------------------------------------------------------------------- shape parameters
def _normalised_signature(asset, n: int = 16) -> np.ndarray:
    """Occupancy of an n^3 grid over the bounding box scaled to a unit cube (size-free shape)."""
    mesh = asset.mesh
    lo, hi = mesh.bounds
    centres = (np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3) + 0.5) / n
    points = lo + centres * (hi - lo)
    inside = np.zeros(len(points), dtype=bool)
    for part in mesh.split(only_watertight=True):  # parts overlap: test each closed part
        inside |= part.contains(points)
    return inside


def _shape_differs(a, b) -> bool:
    if a.part_names != b.part_names or len(a.mesh.faces) != len(b.mesh.faces):
        return True
    return float(np.mean(_normalised_signature(a) != _normalised_signature(b))) > 0.01


def test_shape_signature_ignores_size():
    """The comparison used below sees a uniformly or anisotropically scaled copy as the same shape."""
    a = generate_asset("chair", 3)
    mesh = a.mesh.copy()
    mesh.apply_scale([1.3, 0.8, 1.1])
    scaled = type(a)(mesh, a.part_ids, a.part_names, a.category, a.params, a.size_prior, a.key)
    assert not _shape_differs(a, scaled)


@pytest.mark.parametrize("category", [c for c in CATEGORIES if REGISTRY[c].shape_variants])
def test_shape_parameters_change_the_shape(category):
    for first, second in REGISTRY[category].shape_variants:
        for seed in (0, 1):
            a, b = generate_asset(category, seed, **first), generate_asset(category, seed, **second)
            assert _shape_differs(a, b), (first, second, seed)


def test_every_category_has_a_shape_variant():
    assert all(REGISTRY[c].shape_variants for c in CATEGORIES)


def test_leg_count_arm_rests_and_handles_are_parts():
    three = generate_asset("stool", 5, leg_count=3)
    four = generate_asset("stool", 5, leg_count=4)
    legs = [len(trimesh.Trimesh(s.mesh.vertices, s.mesh.faces[_part_mask(s, "leg")]).split(only_watertight=True))
            for s in (three, four)]
    assert legs == [3, 4]
    assert "arm" in generate_asset("chair", 2, arm_rests=True).part_names
    assert "arm" not in generate_asset("chair", 2, arm_rests=False).part_names
    assert all("handle" in generate_asset("mug", seed).part_names for seed in SEEDS)
    round_mug, square_mug = generate_asset("mug", 1, handle_shape="round"), generate_asset("mug", 1, handle_shape="square")
    assert len(round_mug.mesh.faces) != len(square_mug.mesh.faces)
    thin = generate_asset("chair", 4, base="four_legs", leg_thickness=0.025)
    thick = generate_asset("chair", 4, base="four_legs", leg_thickness=0.06)
    assert thick.mesh.extents[1] == pytest.approx(thin.mesh.extents[1])
    leg_volume = [trimesh.Trimesh(c.mesh.vertices, c.mesh.faces[_part_mask(c, "leg")]).volume for c in (thin, thick)]
    assert leg_volume[1] > 3 * leg_volume[0]


def test_override_keeps_every_other_parameter():
    base = generate_asset("table", 7)
    changed = generate_asset("table", 7, base="pedestal")
    assert changed.params["base"] == "pedestal"
    for name, value in base.params.items():
        if name not in ("base", "fit_scale"):
            assert changed.params[name] == value, name


# --------------------------------------------------------------------------------- determinism
def test_same_seed_same_asset_and_different_seed_different_asset():
    for category in ("chair", "plant_pot", "teapot"):
        a, b = generate_asset(category, 11), generate_asset(category, 11)
        np.testing.assert_array_equal(a.mesh.vertices, b.mesh.vertices)
        np.testing.assert_array_equal(a.face_colours, b.face_colours)
        assert a.params == b.params and a.key == b.key
        c = generate_asset(category, 12)
        assert c.params != a.params
    gen_a, gen_b = np.random.default_rng(5), np.random.default_rng(5)
    assert generate_asset("mug", gen_a).key == generate_asset("mug", gen_b).key


def test_pool_is_deterministic_and_cached():
    pool_a, pool_b = AssetPool(["mug", "table"], variants_per_category=3, seed=4), AssetPool(["mug", "table"], 3, 4)
    a, b = pool_a.get("table", 2), pool_b.get("table", 2)
    np.testing.assert_array_equal(a.mesh.vertices, b.mesh.vertices)
    assert pool_a.get("table", 2) is a
    assert pool_a.sample(np.random.default_rng(1)).key == pool_b.sample(np.random.default_rng(1)).key
    assert AssetPool(["mug"], 3, seed=5).get("mug", 0).key != pool_a.get("mug", 0).key


def test_pools_sharing_a_store_build_each_asset_once(tmp_path, monkeypatch):
    from sceneforge.assets import pool as pool_module

    first = AssetPool(["mug", "table"], 3, seed=4, store=tmp_path)
    built = first.get("table", 1)
    assert len(list(tmp_path.glob("table-*.pkl"))) == 1

    def no_building(*args, **kwargs):
        raise AssertionError("the asset should have been loaded from the store")

    monkeypatch.setattr(pool_module, "generate_asset", no_building)
    loaded = AssetPool(["table"], 3, seed=4, store=tmp_path).get("table", 1)  # other settings, same asset
    assert loaded is not built and loaded.key == built.key and loaded.params == built.params
    np.testing.assert_array_equal(loaded.mesh.vertices, built.mesh.vertices)
    np.testing.assert_array_equal(loaded.mesh.faces, built.mesh.faces)
    np.testing.assert_array_equal(loaded.face_colours, built.face_colours)
    np.testing.assert_array_equal(loaded.part_ids, built.part_ids)


def test_pool_store_keeps_extras_with_each_asset(tmp_path):
    from sceneforge.assets.pool import StoreExtras

    computed, restored = [], []
    extras = StoreExtras(compute=lambda asset: computed.append(asset.key) or len(asset.mesh.faces),
                         restore=lambda asset, value: restored.append((asset.key, value)))
    built = AssetPool(["box"], 2, seed=1, store=tmp_path, extras=extras).get("box", 0)
    assert computed == [built.key] and not restored
    loaded = AssetPool(["box"], 2, seed=1, store=tmp_path, extras=extras).get("box", 0)
    assert computed == [built.key] and restored == [(built.key, len(built.mesh.faces))]
    # a pool without extras reads the same store (and one with extras a store written without them)
    assert AssetPool(["box"], 2, seed=1, store=tmp_path).get("box", 0).key == loaded.key
    AssetPool(["box"], 2, seed=1, store=tmp_path).get("box", 1)
    AssetPool(["box"], 2, seed=1, store=tmp_path, extras=extras).get("box", 1)
    assert len(restored) == 1


def _hull_point_sets(rng: np.random.Generator) -> list[np.ndarray]:
    """Point sets like the library's hulls (boxes, tapered legs, wedges) and harder ones: random
    clouds, points inside the hull, repeated points, points closer than trimesh's merge tolerance,
    a flat set."""
    sets = []
    for _ in range(40):
        lo, size = rng.uniform(-1, 1, 3), rng.uniform(0.001, 1.0, 3)
        corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
        box = lo + corners * size
        sets.append(box)
        taper = box.copy()
        taper[corners[:, 1] == 1, 0] *= rng.uniform(0.3, 1.0)
        sets.append(taper)
        sets.append(rng.normal(size=(int(rng.integers(5, 40)), 3)))
        sets.append(np.vstack([box, lo + rng.uniform(0.2, 0.8, (5, 3)) * size, box[:2]]))
    near = rng.normal(size=(12, 3))
    sets.append(np.vstack([near, near[:1] + 1e-10]))
    sets.append(np.column_stack([rng.normal(size=(9, 2)), np.zeros(9)])[:, [0, 2, 1]] + [0, 0, 1e-12])
    return sets


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")  # trimesh on flat sets
def test_convex_hull_gives_trimesh_hull_arrays():
    from sceneforge.assets.primitives import convex_hull

    for points in _hull_point_sets(np.random.default_rng(5)):
        try:
            expected = trimesh.convex.convex_hull(points)
        except Exception as exc:  # trimesh cannot make it either: ours must fail the same way
            with pytest.raises(type(exc)):
                convex_hull(points)
            continue
        got = convex_hull(points)
        np.testing.assert_array_equal(got.vertices, expected.vertices)
        np.testing.assert_array_equal(got.faces, expected.faces)
        assert got.faces.dtype == expected.faces.dtype and got.vertices.dtype == expected.vertices.dtype


# -------------------------------------------------------------------------------- bad arguments
def test_bad_arguments_name_the_value_and_the_range():
    with pytest.raises(InputError, match=r"leg_count=7 is out of range; allowed: an integer in \[3, 4\]"):
        generate_asset("stool", 0, leg_count=7)
    with pytest.raises(InputError, match=r"leg_taper=2\.0 is out of range; allowed: a number in \[0\.5, 1\]"):
        generate_asset("table", 0, leg_taper=2.0)
    with pytest.raises(InputError, match=r"base='wheels'.*one of \['four_legs', 'three_legs', 'pedestal'\]"):
        generate_asset("table", 0, base="wheels")
    with pytest.raises(InputError, match=r"unknown chair parameter\(s\) \['leg_colour_typo'\]"):
        generate_asset("chair", 0, leg_colour_typo=1)
    with pytest.raises(InputError, match=r"unknown asset category 'spaceship'; categories are table"):
        generate_asset("spaceship", 0)
    with pytest.raises(InputError, match=r"asset seed must be a non-negative integer.*-3"):
        generate_asset("mug", -3)
    with pytest.raises(InputError, match=r"unknown category tag 'flying'; allowed: floor, stackable, support"):
        categories_with_tag("flying")
    with pytest.raises(InputError, match=r"variants_per_category must be an integer >= 1, got 0"):
        AssetPool(variants_per_category=0)
    with pytest.raises(InputError, match=r"unknown asset categories \['spaceship'\]"):
        AssetPool(["spaceship"])


# ------------------------------------------------------------------------------- user meshes
@pytest.fixture
def user_folder(tmp_path: Path, real_dir: Path) -> Path:
    meshes = real_dir / "meshes"
    root = tmp_path / "user"
    (root / "animal").mkdir(parents=True)
    (root / "toy").mkdir()
    (root / "teapot").mkdir()
    (root / "broken").mkdir()
    shutil.copy(meshes / "bunny.ply", root / "animal" / "bunny.ply")
    shutil.copy(meshes / "duck.glb", root / "toy" / "duck.glb")
    trimesh.load(meshes / "teapot.stl", force="mesh").export(root / "teapot" / "teapot.obj")
    (root / "broken" / "garbage.glb").write_bytes(b"glTF\x02\x00\x00\x00 this is not a binary gltf" * 3)
    (root / "broken" / "empty.obj").write_text("# no vertices\n")
    (root / "notes.txt").write_text("not a mesh")
    return root


def test_user_folder_loads_meshes_and_skips_broken_files(user_folder: Path):
    with pytest.warns(UserAssetWarning) as caught:
        library = load_user_assets(user_folder)
    assert library.n_skipped == 2 and len(caught) == 2
    assert sorted(Path(s.path).name for s in library.skipped) == ["empty.obj", "garbage.glb"]
    assert all(s.problem for s in library.skipped)
    messages = sorted(str(w.message) for w in caught)
    assert "skipping user mesh" in messages[0] and "empty.obj" in messages[0]
    assert "skipping user mesh" in messages[1] and "garbage.glb" in messages[1]
    assert library.categories == ("animal", "teapot", "toy")
    for asset in library.assets:
        lo, hi = asset.mesh.bounds
        np.testing.assert_allclose((lo + hi) / 2.0, 0.0, atol=1e-6)
        assert asset.face_colours.shape == (len(asset.mesh.faces), 4)
        assert np.all(asset.part_ids == 0) and asset.part_names == ("body",)
        assert asset.source.startswith(str(user_folder)) and asset.key.startswith(f"user/{asset.category}/")
    # a category named like a procedural one takes that category's size; others the default size
    teapot = library.by_category("teapot")[0]
    assert float(np.max(teapot.extents)) == pytest.approx(float(np.max(size_prior("teapot").mean)))
    assert float(np.max(library.by_category("animal")[0].extents)) == pytest.approx(0.3)
    # user assets join a pool under their category
    pool = AssetPool(["table"], 2, 0, user_assets=library.assets)
    assert set(pool.categories) == {"table", "animal", "teapot", "toy"}
    assert pool.get("toy", 0) is library.by_category("toy")[0]


def test_user_folder_errors(tmp_path: Path):
    with pytest.raises(InputError, match="user mesh folder not found"):
        load_user_assets(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no mesh file \(\.ply"):
        load_user_assets(tmp_path / "empty")
    only_broken = tmp_path / "broken" / "cat"
    only_broken.mkdir(parents=True)
    (only_broken / "x.ply").write_bytes(b"ply\nformat nonsense\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        library = load_user_assets(tmp_path / "broken")
    assert library.assets == () and library.n_skipped == 1
    assert any(issubclass(w.category, UserAssetWarning) and "x.ply" in str(w.message) for w in caught)


# ----------------------------------------------------------------------------- contact sheet
def test_contact_sheet_draws_each_asset(tmp_path: Path):
    from sceneforge.assets.preview import asset_thumbnail, contact_sheet

    assets = [generate_asset(c, 1) for c in ("chair", "mug", "lamp")]
    sheet = np.asarray(contact_sheet(assets, columns=2, cell=96))
    assert sheet.shape == (2 * (96 + 28), 2 * 96, 3)
    for k in range(3):
        x, y = (k % 2) * 96, (k // 2) * (96 + 28)
        cell = sheet[y:y + 96, x:x + 96]
        assert np.mean(np.any(cell < 240, axis=-1)) > 0.05  # something drawn in every cell
    empty = sheet[124:124 + 96, 96:192]
    assert np.all(empty == 255)
    thumb = np.asarray(asset_thumbnail(assets[0], 64))
    assert thumb.shape == (64, 64, 3)
