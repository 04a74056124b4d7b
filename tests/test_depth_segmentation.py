"""Instance masks from depth alone (sceneforge.perception.depth_segmentation)."""

from __future__ import annotations

import numpy as np
import pytest

from sceneforge.errors import DepthError
from sceneforge.perception.depth_segmentation import depth_components, segment_objects_from_depth
from sceneforge.types import Camera
from synthetic_scenes import make_view


def best_iou(truth: np.ndarray, instances: np.ndarray) -> float:
    ids = [i for i in np.unique(instances[truth]) if i != 0]
    return max(((truth & (instances == i)).sum() / (truth | (instances == i)).sum() for i in ids), default=0.0)


@pytest.mark.parametrize("seed", [0, 1, 3, 5])
def test_ray_cast_objects_on_a_floor_before_a_wall_are_found(seed):
    view = make_view(seed=seed)
    scene_input = view.scene_input
    segmentation = segment_objects_from_depth(scene_input.camera, scene_input.depth)
    truth = scene_input.instances
    assert segmentation.instances.max() == truth.max() == 3  # floor and wall removed, nothing else
    for object_id in range(1, 4):
        assert best_iou(truth == object_id, segmentation.instances) >= 0.85  # measured 0.91-0.98
    # the floor normal points up (image-up in this camera tilted down) and the camera is above it
    assert segmentation.floor_normal_cam @ np.array([0.0, -1.0, 0.0]) > 0.8
    assert 1.2 < segmentation.floor_offset_cam < 2.2


def test_depth_components_cut_at_depth_jumps():
    depth = np.full((6, 8), 2.0, np.float32)
    depth[:, 4:] = 3.0  # a jump of 50 %: two components
    depth[2, 1] = 2.05  # 2.5 %: still linked
    labels = depth_components(depth, np.ones_like(depth, bool), edge_ratio=0.03)
    assert len(np.unique(labels)) == 2 and labels[0, 0] != labels[0, 7] and labels[2, 1] == labels[0, 0]
    masked = np.ones_like(depth, bool)
    masked[:, 2] = False  # a gap in the mask splits the left part too
    assert len(np.unique(depth_components(depth, masked, 0.03))) == 4  # 0 + three parts


def test_real_redwood_frame_gives_the_chair(real_dir):
    from sceneforge.io.inputs import load_input

    folder = real_dir / "rgbd"
    scene_input = load_input(folder / "redwood_color.jpg", depth=folder / "redwood_depth.png",
                             camera=folder / "camera_primesense.json", depth_encoding="mm")
    instances = segment_objects_from_depth(scene_input.camera, scene_input.depth).instances
    assert instances.max() == 1  # the chair; walls, window, curtains and floor are background
    v, u = np.nonzero(instances == 1)
    assert 300 < u.mean() < 560 and 150 < v.mean() < 400 and (instances == 1).sum() > 20000


def test_depth_without_floor_or_valid_pixels_is_a_clear_error():
    camera = Camera.from_fov(64, 48, 60.0)
    with pytest.raises(DepthError, match="valid depth pixels"):
        segment_objects_from_depth(camera, np.zeros((48, 64), np.float32))
    wall = np.full((48, 64), 2.0, np.float32)  # a fronto-parallel wall: no plane faces image-up
    with pytest.raises(DepthError, match="no floor-like plane"):
        segment_objects_from_depth(camera, wall)
