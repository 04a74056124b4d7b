"""Evaluation: robust ICP alignment, the field's scene metrics in both conventions, matching, tables.

Never imports a reconstruction stage or ``synth``: scores do not depend on how a scene was made.
Open3D is imported only when an alignment runs.
"""

from sceneforge.eval.icp import AlignmentConfig, RegistrationResult, RobustICPConfig, align_point_clouds, robust_icp
from sceneforge.eval.metrics import PointCloudScores, point_cloud_scores
from sceneforge.eval.runner import EvaluationRun, evaluate_paths
from sceneforge.eval.scene_eval import EvalConfig, ObjectScores, SceneEvaluation, evaluate_scene

__all__ = ["AlignmentConfig", "EvalConfig", "EvaluationRun", "ObjectScores", "PointCloudScores",
           "RegistrationResult", "RobustICPConfig", "SceneEvaluation", "align_point_clouds", "evaluate_paths",
           "evaluate_scene", "point_cloud_scores", "robust_icp"]
