"""Point-cloud metrics: Chamfer distance in both conventions, F-score, Hausdorff.

Two Chamfer conventions are in use in the field and they differ by orders of magnitude, so each
has its own name and neither is called bare "CD":

- ``chamfer_l2_sum``: mean *squared* nearest-neighbour distance, pred->gt plus gt->pred
  (MIDI-3D, SceneGen, I-Scene tables).
- ``chamfer_l1_mean``: mean *unsquared* nearest-neighbour distance, averaged over the two
  directions (Gen3DSR).

The F-score at ``tau`` is the harmonic mean of precision (share of predicted points within ``tau``
of the ground truth) and recall (share of ground-truth points within ``tau`` of the prediction), on
unsquared distances. All values are fractions in [0, 1] here; report tables print them as percent
like the papers do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

DEFAULT_TAU = 0.1
REPORTED_TAUS = (0.1, 0.05, 0.02)


@dataclass(frozen=True)
class PointCloudScores:
    """Scores of a predicted point cloud against a ground-truth one (same units as the clouds).

    chamfer_l2_sum : mean squared NN distance pred->gt + gt->pred (MIDI-3D / SceneGen convention).
    chamfer_l1_mean : (mean NN distance pred->gt + gt->pred) / 2 (Gen3DSR convention).
    fscore, precision, recall : per threshold tau, fractions in [0, 1].
    hausdorff : largest NN distance over both directions.
    An empty prediction has infinite distances and F-score 0.
    """

    chamfer_l2_sum: float
    chamfer_l1_mean: float
    hausdorff: float
    fscore: Mapping[float, float] = field(default_factory=dict)
    precision: Mapping[float, float] = field(default_factory=dict)
    recall: Mapping[float, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"chamfer_l2_sum": self.chamfer_l2_sum, "chamfer_l1_mean": self.chamfer_l1_mean,
                "hausdorff": self.hausdorff,
                "fscore": {str(k): v for k, v in self.fscore.items()},
                "precision": {str(k): v for k, v in self.precision.items()},
                "recall": {str(k): v for k, v in self.recall.items()}}


def nearest_distances(query: np.ndarray, reference: np.ndarray, workers: int = -1,
                      tree: cKDTree | None = None) -> np.ndarray:
    """Unsquared distance from each query point to its nearest reference point.

    query : (N, 3), reference : (M, 3) with M > 0; workers : query threads (-1: all cores).
    Returns (N,) float64.
    """
    tree = cKDTree(np.asarray(reference, dtype=np.float64)) if tree is None else tree
    distances, _ = tree.query(np.asarray(query, dtype=np.float64), k=1, workers=workers)
    return np.asarray(distances, dtype=np.float64)


def fscore_from_distances(d_pred_to_gt: np.ndarray, d_gt_to_pred: np.ndarray,
                          tau: float) -> tuple[float, float, float]:
    """(fscore, precision, recall) at ``tau`` from the two unsquared NN distance arrays."""
    if tau <= 0:
        raise ValueError(f"F-score threshold tau must be positive, got {tau}")
    precision = float(np.mean(d_pred_to_gt < tau)) if len(d_pred_to_gt) else 0.0
    recall = float(np.mean(d_gt_to_pred < tau)) if len(d_gt_to_pred) else 0.0
    total = precision + recall
    return (2.0 * precision * recall / total if total > 0 else 0.0), precision, recall


def scores_from_distances(d_pred_to_gt: np.ndarray, d_gt_to_pred: np.ndarray,
                          taus: Sequence[float] = REPORTED_TAUS) -> PointCloudScores:
    """PointCloudScores from the two (unsquared) nearest-neighbour distance arrays."""
    if len(d_pred_to_gt) == 0 or len(d_gt_to_pred) == 0:
        return empty_prediction_scores(taus)
    fs, ps, rs = {}, {}, {}
    for tau in taus:
        fs[float(tau)], ps[float(tau)], rs[float(tau)] = fscore_from_distances(d_pred_to_gt, d_gt_to_pred, tau)
    return PointCloudScores(
        chamfer_l2_sum=float(np.mean(d_pred_to_gt ** 2) + np.mean(d_gt_to_pred ** 2)),
        chamfer_l1_mean=float(0.5 * (np.mean(d_pred_to_gt) + np.mean(d_gt_to_pred))),
        hausdorff=float(max(d_pred_to_gt.max(), d_gt_to_pred.max())),
        fscore=fs, precision=ps, recall=rs)


def empty_prediction_scores(taus: Sequence[float] = REPORTED_TAUS) -> PointCloudScores:
    """The documented score of an empty prediction: infinite distances, F-score 0."""
    zeros = {float(t): 0.0 for t in taus}
    return PointCloudScores(np.inf, np.inf, np.inf, dict(zeros), dict(zeros), dict(zeros))


def point_cloud_scores(pred: np.ndarray, gt: np.ndarray, taus: Sequence[float] = REPORTED_TAUS,
                       workers: int = -1) -> PointCloudScores:
    """Chamfer (both conventions), F-score at each tau and Hausdorff of pred (N, 3) vs gt (M, 3).

    The ground truth must not be empty; an empty prediction scores F 0 and infinite distances.
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 3)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 3)
    if len(gt) == 0:
        raise ValueError("ground-truth point cloud is empty: nothing to score against")
    if not np.all(np.isfinite(gt)):
        raise ValueError("ground-truth point cloud has NaN or infinite coordinates")
    pred = pred[np.all(np.isfinite(pred), axis=1)]
    if len(pred) == 0:
        return empty_prediction_scores(taus)
    d_pg = nearest_distances(pred, gt, workers)
    d_gp = nearest_distances(gt, pred, workers)
    return scores_from_distances(d_pg, d_gp, taus)


def mean_scores(scores: Sequence[PointCloudScores]) -> PointCloudScores:
    """Average of several PointCloudScores (object level: mean over matched objects).

    An infinite member makes the mean infinite, as it should. Empty input -> empty_prediction_scores.
    """
    if not scores:
        return empty_prediction_scores()
    taus = list(scores[0].fscore)

    def avg(getter) -> float:
        return float(np.mean([getter(s) for s in scores]))

    return PointCloudScores(
        chamfer_l2_sum=avg(lambda s: s.chamfer_l2_sum),
        chamfer_l1_mean=avg(lambda s: s.chamfer_l1_mean),
        hausdorff=avg(lambda s: s.hausdorff),
        fscore={t: avg(lambda s, t=t: s.fscore[t]) for t in taus},
        precision={t: avg(lambda s, t=t: s.precision[t]) for t in taus},
        recall={t: avg(lambda s, t=t: s.recall[t]) for t in taus})
