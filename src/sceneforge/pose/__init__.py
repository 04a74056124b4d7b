"""The pose stage: differentiable pose optimisation (3D-RE-GEN's planar / 5-DoF / 7-DoF models,
silhouette, 3D point and physical losses), batched over a scene's objects, on CPU."""

from sceneforge.pose.models import MODEL_KINDS, FreeModel, FullModel, PlanarModel, build_model
from sceneforge.pose.optimise import PoseOptimiser, floor_mask_from_depth, touches_floor
from sceneforge.pose.problem import (ObjectPoseResult, PoseOptimisationResult, PoseProblem, PoseSettings,
                                     PoseTarget)

__all__ = ["MODEL_KINDS", "FreeModel", "FullModel", "ObjectPoseResult", "PlanarModel", "PoseOptimisationResult",
           "PoseOptimiser", "PoseProblem", "PoseSettings", "PoseTarget", "build_model", "floor_mask_from_depth",
           "touches_floor"]
