"""Soft silhouette renderer: gradients against finite differences, agreement with ray casting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from pose_scenes import look_at, raycast
from sceneforge.render.soft_silhouette import (SoftSilhouetteSettings, crop_intrinsics, splat_coverage,
                                               render_soft_silhouettes, samples_for_radius)
from sceneforge.types import Camera


def _tiny_case(dtype=torch.float64):
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(2, 6, 3, generator=gen, dtype=dtype) * torch.tensor([0.8, 0.8, 0.5], dtype=dtype)
    points = points + torch.tensor([-0.4, -0.4, 2.0], dtype=dtype)
    K = torch.tensor([[9.0, 0.0, 5.5], [0.0, 9.0, 4.5], [0.0, 0.0, 1.0]], dtype=dtype)
    return points, K


@pytest.mark.parametrize("radius", [0.8, 1.5, 2.0, 3.0])
def test_gradients_match_finite_differences(radius):
    points, K = _tiny_case()
    points.requires_grad_(True)
    settings = SoftSilhouetteSettings(radius_px=radius, opacity=0.7)
    assert torch.autograd.gradcheck(lambda p: render_soft_silhouettes(p, K, 9, 12, settings), (points,),
                                    eps=1e-6, atol=1e-5, rtol=1e-3)


def test_gradients_with_respect_to_intrinsics_and_weights():
    points, K = _tiny_case()
    K = K.clone().requires_grad_(True)
    weights = torch.full((2, 6), 0.7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda k, w: render_soft_silhouettes(points, k, 9, 12, weights=w), (K, weights),
                                    eps=1e-6, atol=1e-5, rtol=1e-3)


def test_render_is_continuous_across_pixel_boundaries():
    """Moving a sample across a pixel boundary changes the image by O(step), not by a jump."""
    K = torch.tensor([[10.0, 0.0, 5.0], [0.0, 10.0, 5.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    xs = torch.linspace(0.049, 0.051, 41, dtype=torch.float64)  # u crosses 5.5 at x = 0.05
    images = [render_soft_silhouettes(torch.tensor([[[float(x), 0.0, 1.0]]], dtype=torch.float64), K, 11, 11)
              for x in xs]
    steps = [float((a - b).abs().max()) for a, b in zip(images[1:], images[:-1])]
    assert max(steps) < 1e-2


def test_silhouette_matches_ray_casting():
    camera = Camera.from_fov(128, 96, 60.0, look_at((0, 1.5, -3), (0, 0.4, 0)))
    box = trimesh.creation.box((1.0, 0.8, 0.6))
    box.apply_translation((0.2, 0.4, 0.0))
    _, _, (truth,) = raycast(camera, [box])
    settings = SoftSilhouetteSettings(radius_px=1.5)
    n = samples_for_radius(float(truth.sum()), settings.radius_px)
    samples, _ = trimesh.sample.sample_surface(box, n, seed=0)
    T = np.linalg.inv(camera.T_world_cam)
    cam = torch.tensor(samples @ T[:3, :3].T + T[:3, 3], dtype=torch.float32)[None]
    sil = render_soft_silhouettes(cam, torch.tensor(camera.K, dtype=torch.float32), 96, 128, settings)[0].numpy()
    rendered = sil > 0.5
    iou = (rendered & truth).sum() / (rendered | truth).sum()
    assert iou > 0.88
    assert sil[truth].mean() > 0.9 and sil[~truth].mean() < 0.02
    assert sil.sum() / truth.sum() == pytest.approx(1.0, abs=0.05)  # soft area unbiased


def test_crop_intrinsics_map_pixels_like_the_crop():
    K = np.array([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]])
    box = (20.0, 10.0, 40.0, 40.0)
    Kc = crop_intrinsics(K, box, 80)
    p = np.array([0.1, -0.05, 1.0])
    u, v = (K @ p)[:2] / p[2]
    uc, vc = (Kc @ p)[:2] / p[2]
    assert uc == pytest.approx((u - 20.0) * 2 - 0.5) and vc == pytest.approx((v - 10.0) * 2 - 0.5)


def test_points_behind_the_camera_and_padding_are_ignored():
    K = torch.tensor([[10.0, 0, 5.0], [0, 10.0, 5.0], [0, 0, 1.0]])
    behind = torch.tensor([[[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]]])
    sil = render_soft_silhouettes(behind, K, 11, 11, weights=torch.tensor([[1.0, 0.0]]))
    assert float(sil.max()) == 0.0
    sil = render_soft_silhouettes(behind, K, 11, 11)
    assert float(sil[0, 5, 5]) == pytest.approx(SoftSilhouetteSettings().opacity)


def test_bad_settings_and_shapes_are_rejected():
    with pytest.raises(ValueError, match="radius_px"):
        SoftSilhouetteSettings(radius_px=0.0)
    with pytest.raises(ValueError, match="opacity"):
        SoftSilhouetteSettings(opacity=1.0)
    with pytest.raises(ValueError, match="points_cam"):
        render_soft_silhouettes(torch.zeros(4, 3), torch.eye(3), 4, 4)


def test_a_splatted_target_bleeds_at_its_edge_as_a_render_of_points_filling_it():
    """Random points filling a disc, rendered: their soft silhouette is wider than the disc (its
    0.5 level lies outside the edge, so a hard target made the silhouette loss shrink objects).
    The disc seen through the same splats (``splat_coverage``, the expected render of such points)
    matches the mean of such renders; the hard disc does not."""
    settings = SoftSilhouetteSettings(radius_px=2.0, opacity=0.8)
    size, supersample, radius = 48, 4, 14.0
    fine = (np.arange(size * supersample) + 0.5) / supersample - 0.5
    disc = (fine[:, None] - 23.5) ** 2 + (fine[None, :] - 23.5) ** 2 < radius ** 2
    hard = disc.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    density = 2.0 / (0.6 * settings.radius_px) ** 2  # samples_for_radius's, front and back
    rng = np.random.default_rng(0)
    n = int(density * np.pi * radius ** 2)
    renders = []
    for _ in range(16):
        angle, distance = rng.uniform(0, 2 * np.pi, n), radius * np.sqrt(rng.uniform(0, 1, n))
        points = np.stack([23.5 + distance * np.cos(angle), 23.5 + distance * np.sin(angle), np.ones(n)], axis=1)
        renders.append(render_soft_silhouettes(torch.as_tensor(points[None]), torch.eye(3, dtype=torch.float64),
                                               size, size, settings)[0].numpy())
    render = np.mean(renders, axis=0)
    target = splat_coverage(disc, supersample, density, settings)
    assert target.shape == (size, size) and 0.0 <= target.min() and target.max() < 1.0
    assert (render > 0.5).sum() > 1.04 * (hard > 0.5).sum()  # the render bleeds
    assert abs((target > 0.5).sum() / (render > 0.5).sum() - 1.0) < 0.01
    assert np.abs(target - render).mean() < 0.25 * np.abs(hard - render).mean()
    edge = np.abs(render - 0.5) < 0.45
    assert abs((target - render)[edge].mean()) < 0.03 and (hard - render)[edge].mean() < -0.1  # hard: too small
    with pytest.raises(ValueError, match="coverage"):
        splat_coverage(disc[:-1], supersample, density, settings)
