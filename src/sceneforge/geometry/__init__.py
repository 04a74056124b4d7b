"""Pure geometric functions: transforms, rotations, camera projection."""

from sceneforge.geometry.camera import backproject_depth, project_points
from sceneforge.geometry.transforms import (
    cross3,
    invert_transform,
    make_transform,
    project_to_so3,
    rotation_about_axis,
    rotation_y,
    transform_points,
)

__all__ = ["backproject_depth", "cross3", "invert_transform", "make_transform", "project_points", "project_to_so3",
           "rotation_about_axis", "rotation_y", "transform_points"]
