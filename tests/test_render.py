"""The EGL rasteriser against independent references: embree ray casting, closest points, known answers."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from sceneforge.geometry import backproject_depth, project_points, transform_points
from sceneforge.render import Backdrop, Environment, Ground, Lighting, RenderMesh, RenderScene
from sceneforge.render.projection import gl_projection_from_camera, pixel_from_clip
from sceneforge.render.rasterizer import RenderError, shared_rasterizer
from sceneforge.render.scene import mesh_corner_attributes
from sceneforge.synth.cameras import look_at
from sceneforge.types import Camera, Plane

pytest.importorskip("moderngl")


@pytest.fixture(scope="module")
def rasterizer():
    return shared_rasterizer()


def _coloured(mesh: trimesh.Trimesh, rgb: tuple[int, int, int]) -> trimesh.Trimesh:
    mesh.visual.face_colors = [*rgb, 255]
    return mesh


def _pose(R: np.ndarray, t, scale=1.0) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R * np.asarray(scale, dtype=np.float64)[None] if np.ndim(scale) else R * scale
    T[:3, 3] = t
    return T


def _test_scene() -> RenderScene:
    """Box, sphere, cylinder and a scaled, rotated cone on the ground, partly occluding each other."""
    rot = trimesh.transformations.rotation_matrix
    box = _coloured(trimesh.creation.box((0.8, 0.6, 0.5)), (200, 60, 50))
    sphere = _coloured(trimesh.creation.icosphere(3, 0.35), (60, 190, 70))
    cylinder = _coloured(trimesh.creation.cylinder(0.2, 0.9, sections=24), (60, 80, 200))
    cone = _coloured(trimesh.creation.cone(0.3, 0.6, sections=24), (220, 200, 40))
    return RenderScene(
        meshes=[
            RenderMesh(box, _pose(rot(0.4, [0, 1, 0])[:3, :3], [0.0, 0.3, 0.0]), 1),
            RenderMesh(sphere, _pose(np.eye(3), [0.55, 0.35, 0.45]), 2),
            RenderMesh(cylinder, _pose(rot(np.pi / 2, [1, 0, 0])[:3, :3], [-0.6, 0.2, 0.3], (1.0, 1.0, 1.3)), 3),
            RenderMesh(cone, _pose(rot(0.7, [0, 0, 1])[:3, :3], [0.2, 0.4, -0.7], 0.8), 17),
        ],
        ground=Ground(half_extent=6.0),
    )


def _camera(width=200, height=150) -> Camera:
    T = look_at(np.array([2.0, 1.6, 2.6]), np.array([0.0, 0.3, 0.0]))
    # non-square pixels, principal point off the centre
    return Camera.from_intrinsics(0.9 * width, 0.85 * width, 0.47 * width, 0.53 * height, width, height, T)


def _raycast(scene: RenderScene, camera: Camera, with_ground: bool):
    """Reference by embree: per pixel (instance id, depth z, camera-frame normal) through pixel centres."""
    meshes, face_ids = [], []
    for m in scene.meshes:
        world = m.mesh.copy()
        world.apply_transform(m.T_world_obj)
        meshes.append(world)
        face_ids.append(np.full(len(world.faces), m.instance_id))
    if with_ground:
        plane = trimesh.creation.box((2 * scene.ground.half_extent, 1e-9, 2 * scene.ground.half_extent))
        plane = trimesh.Trimesh(plane.vertices * [1, 0, 1], plane.faces)
        meshes.append(plane)
        face_ids.append(np.zeros(len(plane.faces), dtype=int))
    merged = trimesh.util.concatenate(meshes)
    ids_of_face = np.concatenate(face_ids)
    H, W = camera.height, camera.width
    v, u = np.mgrid[0:H, 0:W]
    rays_cam = np.stack([(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, np.ones_like(u, float)], -1).reshape(-1, 3)
    R, origin = camera.T_world_cam[:3, :3], camera.T_world_cam[:3, 3]
    directions = rays_cam @ R.T
    intersector = trimesh.ray.ray_pyembree.RayMeshIntersector(merged)
    tri, ray, loc = intersector.intersects_id(np.repeat(origin[None], len(directions), 0), directions,
                                              multiple_hits=False, return_locations=True)
    ids = np.zeros(H * W, dtype=np.int64)
    depth = np.zeros(H * W)
    normals = np.zeros((H * W, 3))
    ids[ray] = ids_of_face[tri]
    depth[ray] = (loc - origin) @ R[:, 2]
    n_cam = merged.face_normals[tri] @ R
    flip = np.sum(n_cam * rays_cam[ray], axis=1) > 0
    n_cam[flip] *= -1
    normals[ray] = n_cam
    return ids.reshape(H, W), depth.reshape(H, W), normals.reshape(H, W, 3)


def _boundary(ids: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose 3x3 neighbourhood holds more than one id."""
    padded = np.pad(ids, 1, mode="edge")
    H, W = ids.shape
    out = np.zeros_like(ids, dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            out |= padded[1 + dy:1 + dy + H, 1 + dx:1 + dx + W] != ids
    return out


def test_projection_matches_opencv_projection():
    cam = _camera(123, 77)
    rng = np.random.default_rng(0)
    points = rng.uniform([-1, -1, 0.5], [1, 1, 5], size=(50, 3))
    P = gl_projection_from_camera(cam, 0.1, 10.0)
    np.testing.assert_allclose(pixel_from_clip(cam, P, points), project_points(cam, points)[0], atol=1e-9)
    with pytest.raises(ValueError, match="near < far"):
        gl_projection_from_camera(cam, 2.0, 1.0)


@pytest.mark.parametrize("size", [(200, 150), (97, 131)])
def test_instances_depth_normals_match_raycast(rasterizer, size):
    scene = _test_scene()
    cam = _camera(*size)
    out = rasterizer.render_views(scene, [cam], normals=True)[0]
    ref_ids, ref_depth, ref_normals = _raycast(scene, cam, with_ground=True)
    assert out.rgb.shape == (size[1], size[0], 3) and out.instances.dtype == np.uint16
    # every object is visible and the id map agrees except on a few boundary pixels
    assert set(np.unique(out.instances)) == {0, 1, 2, 3, 17}
    boundary = _boundary(ref_ids)
    wrong = out.instances != ref_ids
    assert not np.any(wrong & ~boundary), "id mismatch away from object boundaries"
    assert wrong.sum() <= 0.05 * boundary.sum()
    # depth along z equals the ray-cast depth where both hit the same surface
    inner = ~boundary & (ref_ids >= 0) & (ref_depth > 0)
    assert np.all(out.depth[ref_depth == 0] == 0)
    np.testing.assert_allclose(out.depth[inner], ref_depth[inner], atol=1e-4, rtol=1e-5)
    cos = np.sum(out.normals[inner] * ref_normals[inner], axis=-1)
    # flat face normals: only a pixel on an edge between two faces may pick the neighbouring face
    assert np.mean(cos > np.cos(np.radians(1.0))) > 0.999 and np.all(cos > np.cos(np.radians(20.0)))


def test_depth_backprojects_onto_posed_meshes(rasterizer):
    pcu = pytest.importorskip("point_cloud_utils")
    scene = _test_scene()
    cam = _camera(240, 180)
    out = rasterizer.render_views(scene, [cam])[0]
    for m in scene.meshes:
        mask = out.instances == m.instance_id
        points_world = transform_points(cam.T_world_cam, backproject_depth(cam, out.depth, mask))
        world = m.mesh.copy()
        world.apply_transform(m.T_world_obj)
        dist, _, _ = pcu.closest_points_on_mesh(points_world, np.asarray(world.vertices), np.asarray(world.faces))
        assert len(dist) > 50
        assert np.median(dist) < 1e-3, f"instance {m.instance_id}: median {np.median(dist):.2e} m"
        assert np.percentile(dist, 95) < 5e-3
    # ground pixels lie on y = 0
    ground = (out.instances == 0) & (out.depth > 0)
    points_world = transform_points(cam.T_world_cam, backproject_depth(cam, out.depth, ground))
    assert np.median(np.abs(points_world[:, 1])) < 1e-3


@pytest.mark.parametrize("size,K", [((64, 48), (60.0, 60.0, 31.5, 23.5)), ((257, 131), (300.0, 280.0, 100.25, 70.75))])
def test_small_sphere_lands_on_its_projected_pixel(rasterizer, size, K):
    """Pixel convention: a small sphere's mask centroid is the OpenCV projection of its centre."""
    W, H = size
    cam = Camera.from_intrinsics(*K, W, H)  # camera frame = world frame
    centre = np.array([[0.05, -0.03, 2.0]])
    uv = project_points(cam, centre)[0][0]
    sphere = trimesh.creation.icosphere(4, 0.2)
    out = rasterizer.render_views(RenderScene([RenderMesh(sphere, _pose(np.eye(3), centre[0]), 5)]), [cam])[0]
    v, u = np.nonzero(out.instances == 5)
    assert len(u) > 10
    assert abs(u.mean() - uv[0]) < 0.1 and abs(v.mean() - uv[1]) < 0.1  # a half-pixel shift fails


def test_lambert_shading_known_answer(rasterizer):
    """A face seen head-on, lit at 60 degrees: rgb = albedo * (ambient + diffuse * cos 60)."""
    box = _coloured(trimesh.creation.box((2.0, 2.0, 2.0)), (200, 100, 40))
    light = Lighting(direction_world=(0.0, np.sin(np.radians(60)), np.cos(np.radians(60))), ambient=0.2, diffuse=0.6)
    cam = Camera.from_fov(32, 32, 40.0, look_at(np.array([0.0, 0.0, 4.0]), np.zeros(3)))
    out = rasterizer.render_views(RenderScene([RenderMesh(box, np.eye(4), 1)], lighting=light), [cam])[0]
    expected = np.array([200, 100, 40]) * (0.2 + 0.6 * 0.5)
    np.testing.assert_allclose(out.rgb[16, 16].astype(float), expected, atol=1.0)
    assert np.all(out.instances[12:20, 12:20] == 1)


def test_ground_texture_and_sky(rasterizer):
    """Top-down view of a 2x2-colour texture: each quadrant shows its colour, lit from straight above."""
    texture = np.zeros((8, 8, 3), np.uint8)
    texture[:4, :4], texture[:4, 4:], texture[4:, :4], texture[4:, 4:] = (250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0)
    ground = Ground(texture=texture, tile_size=2.0, half_extent=1.0, centre_xz=np.array([1.0, 1.0]))
    light = Lighting(direction_world=(0.0, 1.0, 0.0), ambient=0.3, diffuse=0.7)
    T = np.eye(4)
    T[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]  # columns: x right, image down = world +z, looking down -y
    T[:3, 3] = [1.0, 3.0, 1.0]
    cam = Camera.from_fov(64, 64, 60.0, T)
    env = Environment(zenith=(0.0, 0.0, 0.0), horizon=(0.0, 0.0, 0.0), nadir=(0.0, 0.0, 0.0))
    out = rasterizer.render_views(RenderScene([], ground=ground, lighting=light, environment=env), [cam])[0]

    def pixel_of(x, z):
        uv, _ = project_points(cam, transform_points(np.linalg.inv(T), np.array([[x, 0.0, z]])))
        return int(round(uv[0, 1])), int(round(uv[0, 0]))

    assert tuple(out.rgb[pixel_of(0.5, 0.5)]) == (250, 0, 0)      # texture row < 4, column < 4
    assert tuple(out.rgb[pixel_of(1.5, 0.5)]) == (0, 250, 0)
    assert tuple(out.rgb[pixel_of(0.5, 1.5)]) == (0, 0, 250)
    assert tuple(out.rgb[pixel_of(1.5, 1.5)]) == (250, 250, 0)
    np.testing.assert_allclose(out.depth[pixel_of(1.0, 1.0)], 3.0, atol=1e-5)
    # beyond the ground square: sky (black here), no depth, no instance
    assert tuple(out.rgb[0, 0]) == (0, 0, 0) and out.depth[0, 0] == 0 and out.instances.max() == 0


def test_sky_gradient_brightens_towards_horizon(rasterizer):
    cam = Camera.from_fov(16, 64, 90.0, look_at(np.array([0.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])))
    env = Environment(zenith=(0.0, 0.0, 1.0), horizon=(1.0, 1.0, 1.0), nadir=(0.0, 0.0, 0.0))
    out = rasterizer.render_views(RenderScene([], environment=env), [cam])[0]
    column = out.rgb[:, 8, 0].astype(int)
    assert column[0] < column[31] and column[63] < column[33]   # horizon is in the middle row
    assert out.depth.max() == 0


def test_visible_pixels_and_vertex_colours(rasterizer):
    sphere = trimesh.creation.icosphere(2, 0.5)
    sphere.visual.vertex_colors = np.tile([10, 20, 250, 255], (len(sphere.vertices), 1))
    attrs = mesh_corner_attributes(sphere)
    assert attrs.shape == (3 * len(sphere.faces), 9)
    np.testing.assert_allclose(attrs[:, 6:], np.tile([10 / 255, 20 / 255, 250 / 255], (len(attrs), 1)), atol=1e-6)
    cam = Camera.from_fov(40, 40, 50.0, look_at(np.array([0.0, 0.0, 3.0]), np.zeros(3)))
    out = rasterizer.render_views(RenderScene([RenderMesh(sphere, np.eye(4), 9)]), [cam])[0]
    counts = out.visible_pixels([9, 4])
    assert counts[9] == int(np.sum(out.instances == 9)) > 0 and counts[4] == 0


def test_one_upload_many_cameras_is_deterministic(rasterizer):
    scene = _test_scene()
    cams = [_camera(), _camera().with_pose(look_at(np.array([-2.0, 2.0, 2.0]), np.zeros(3)))]
    with rasterizer.upload(scene) as uploaded:
        first = [rasterizer.render(uploaded, c) for c in cams]
        again = rasterizer.render(uploaded, cams[0])
    assert not np.array_equal(first[0].rgb, first[1].rgb)
    assert np.array_equal(first[0].rgb, again.rgb) and np.array_equal(first[0].depth, again.depth)


def test_kept_mesh_buffers_are_reused_and_render_the_same(rasterizer, monkeypatch):
    from sceneforge.render import rasterizer as rasterizer_module

    scene = _test_scene()
    cam = _camera()
    with rasterizer.upload(scene) as uploaded:
        plain = rasterizer.render(uploaded, cam)
    with rasterizer.upload(scene, reuse_meshes=True) as first:
        buffers = [d.vbo for d in first.drawables]
    with rasterizer.upload(scene, reuse_meshes=True) as second:  # after the first scene was released
        assert [d.vbo for d in second.drawables] == buffers
        kept = rasterizer.render(second, cam)
    for a, b in ((plain.rgb, kept.rgb), (plain.instances, kept.instances), (plain.depth, kept.depth)):
        assert np.array_equal(a, b)
    monkeypatch.setattr(rasterizer_module, "KEPT_MESH_BYTES", 1)  # over budget: unused meshes are dropped
    other = RenderScene([RenderMesh(trimesh.creation.icosphere(1, 0.3), np.eye(4), 1)])
    with rasterizer.upload(scene, reuse_meshes=True) as live, rasterizer.upload(other, reuse_meshes=True):
        assert [k.mesh for k in rasterizer._kept.values()] == [m.mesh for m in scene.meshes] + [other.meshes[0].mesh]
        again = rasterizer.render(live, cam)  # a live scene's buffers are never dropped under it
    assert np.array_equal(again.rgb, plain.rgb)
    with rasterizer.upload(other, reuse_meshes=True):
        assert [k.mesh for k in rasterizer._kept.values()] == [other.meshes[0].mesh]


def test_invalid_inputs_are_named(rasterizer):
    box = trimesh.creation.box()
    with pytest.raises(ValueError, match=r"instance_id must be in \[1, 65535\], got 0"):
        RenderMesh(box, np.eye(4), 0)
    with pytest.raises(ValueError, match="instance ids must be unique"):
        RenderScene([RenderMesh(box, np.eye(4), 1), RenderMesh(box, np.eye(4), 1)])
    with pytest.raises(ValueError, match="horizontal"):
        Ground(plane=Plane(np.array([1.0, 1.0, 0.0]), 0.0))
    with pytest.raises(ValueError, match="texture must be"):
        Ground(texture=np.zeros((4, 4), np.uint8))
    with pytest.raises(RenderError, match="exceeds the largest side"):
        rasterizer.render_views(RenderScene([]), [Camera.from_fov(9000, 10, 60.0)])


@pytest.mark.parametrize("kind", ["solid", "vertical_gradient", "radial_gradient"])
def test_backdrop_matches_its_formula(rasterizer, kind):
    a, b = np.array([200.0, 30.0, 10.0]), np.array([10.0, 90.0, 250.0])
    W, H = 40, 30
    backdrop = Backdrop(kind, tuple(a / 255), tuple(b / 255))
    out = rasterizer.render_views(RenderScene([], environment=backdrop), [Camera.from_fov(W, H, 60.0)])[0]
    v, u = np.mgrid[0:H, 0:W].astype(float)
    if kind == "solid":
        t = np.zeros((H, W))
    elif kind == "vertical_gradient":
        t = v / (H - 1)
    else:
        t = np.clip(np.hypot((u - (W - 1) / 2) / (W / 2), (v - (H - 1) / 2) / (H / 2)) / np.sqrt(2), 0, 1)
    expected = (1 - t)[..., None] * a + t[..., None] * b
    np.testing.assert_allclose(out.rgb.astype(float), expected, atol=1.01)
    with pytest.raises(ValueError, match="backdrop kind must be one of"):
        Backdrop("stars")


def test_ground_texture_origin_shifts_the_pattern(rasterizer):
    texture = np.zeros((16, 16, 3), np.uint8)
    texture[:8, :8], texture[:8, 8:], texture[8:, :8], texture[8:, 8:] = (250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0)
    ground = Ground(texture=texture, tile_size=4.0, texture_origin_xz=np.array([-2.0, -2.0]), half_extent=2.0)
    T = np.eye(4)
    T[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]
    T[:3, 3] = [0.0, 5.0, 0.0]
    cam = Camera.from_fov(64, 64, 60.0, T)
    light = Lighting(direction_world=(0.0, 1.0, 0.0), ambient=0.3, diffuse=0.7)
    out = rasterizer.render_views(RenderScene([], ground=ground, lighting=light), [cam])[0]
    # texture row 0 column 0 sits at x, z in [-2, 0]: the image's top-left quadrant (image down = +z)
    assert tuple(out.rgb[16, 16]) == (250, 0, 0) and tuple(out.rgb[16, 47]) == (0, 250, 0)
    assert tuple(out.rgb[47, 16]) == (0, 0, 250) and tuple(out.rgb[47, 47]) == (250, 250, 0)


def test_ground_takes_the_planes_np_allclose_takes_for_horizontal():
    """Ground checks its plane's normal against +y as np.allclose(normal, +y, atol=1e-9) would."""
    rng = np.random.default_rng(0)
    normals = [np.array([0.0, 1.0, 0.0]), np.array([1e-9, 1.0, 0.0]), np.array([0.0, 1.0, -1.1e-9])]
    normals += [np.array([0.0, 1.0, 0.0]) + rng.normal(size=3) * 10.0 ** rng.uniform(-12, -4) for _ in range(2000)]
    taken = 0
    for n in normals:
        plane = Plane(n, 0.0)
        horizontal = np.allclose(plane.normal, [0.0, 1.0, 0.0], atol=1e-9)
        if horizontal:
            Ground(plane=plane)
            taken += 1
        else:
            with pytest.raises(ValueError, match="ground plane must be horizontal"):
                Ground(plane=plane)
    assert 0 < taken < len(normals)
