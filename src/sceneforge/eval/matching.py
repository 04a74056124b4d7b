"""Matching predicted objects to ground-truth objects.

By id when every predicted id is a ground-truth id (a reconstruction of an engine view keeps the
instance ids of its masks and may skip objects); otherwise by the Hungarian algorithm on a cost
``(1 - IoU of the axis-aligned boxes) + centroid distance / scene diagonal``. Pairs that neither
overlap nor lie within ``max_distance`` (a share of the ground-truth scene diagonal) are refused.
Unmatched ground-truth objects are *missed*, unmatched predictions *extra*; both are reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from sceneforge.eval.boxes import aabb_iou

MatchMode = Literal["auto", "id", "hungarian"]
MATCH_MODES = ("auto", "id", "hungarian")


@dataclass(frozen=True)
class Matching:
    """pairs : (pred index, gt index) pairs; missed : gt indices without a prediction; extra : pred
    indices without a ground truth; method : "id" or "hungarian"."""

    pairs: tuple[tuple[int, int], ...]
    missed: tuple[int, ...]
    extra: tuple[int, ...]
    method: str


def match_by_id(pred_ids: Sequence[int], gt_ids: Sequence[int]) -> Matching:
    """Pairs objects with equal ids; the rest are missed or extra."""
    gt_index = {int(i): k for k, i in enumerate(gt_ids)}
    pairs = tuple((p, gt_index[int(i)]) for p, i in enumerate(pred_ids) if int(i) in gt_index)
    matched_gt = {g for _, g in pairs}
    matched_pred = {p for p, _ in pairs}
    return Matching(pairs, tuple(g for g in range(len(gt_ids)) if g not in matched_gt),
                    tuple(p for p in range(len(pred_ids)) if p not in matched_pred), "id")


def match_by_boxes(pred_boxes: Sequence[np.ndarray], gt_boxes: Sequence[np.ndarray],
                   max_distance: float = 0.25) -> Matching:
    """Hungarian matching on (1 - AABB IoU) + centroid distance / scene diagonal.

    pred_boxes, gt_boxes : (2, 3) [min, max] boxes in the same frame. A pair is refused when its
    IoU is 0 and its centroids are further apart than ``max_distance`` scene diagonals.
    """
    n_pred, n_gt = len(pred_boxes), len(gt_boxes)
    if n_pred == 0 or n_gt == 0:
        return Matching((), tuple(range(n_gt)), tuple(range(n_pred)), "hungarian")
    gt_stack = np.stack([np.asarray(b, dtype=np.float64) for b in gt_boxes])
    diagonal = float(np.linalg.norm(gt_stack[:, 1].max(axis=0) - gt_stack[:, 0].min(axis=0))) or 1.0
    iou = np.array([[aabb_iou(p, g) for g in gt_boxes] for p in pred_boxes])
    pred_c = np.stack([_centre(b) for b in pred_boxes])
    gt_c = np.stack([_centre(b) for b in gt_boxes])
    distance = np.linalg.norm(pred_c[:, None, :] - gt_c[None, :, :], axis=2) / diagonal
    distance = np.where(np.isfinite(distance), distance, 1e6)
    cost = (1.0 - iou) + distance
    rows, cols = linear_sum_assignment(cost)
    pairs = tuple((int(p), int(g)) for p, g in zip(rows, cols)
                  if iou[p, g] > 0 or distance[p, g] <= max_distance)
    matched_pred = {p for p, _ in pairs}
    matched_gt = {g for _, g in pairs}
    return Matching(tuple(sorted(pairs, key=lambda pg: pg[1])),
                    tuple(g for g in range(n_gt) if g not in matched_gt),
                    tuple(p for p in range(n_pred) if p not in matched_pred), "hungarian")


def _centre(box: np.ndarray) -> np.ndarray:
    box = np.asarray(box, dtype=np.float64)
    return 0.5 * (box[0] + box[1])


def match_objects(pred_ids: Sequence[int], gt_ids: Sequence[int], pred_boxes: Sequence[np.ndarray],
                  gt_boxes: Sequence[np.ndarray], mode: MatchMode = "auto",
                  max_distance: float = 0.25) -> Matching:
    """Match by id ("id"), by boxes ("hungarian"), or "auto": by id when the predicted ids are
    distinct and all among the ground truth's (skipped objects then count as missed), by boxes
    otherwise."""
    if mode not in MATCH_MODES:
        raise ValueError(f"match mode must be one of {', '.join(MATCH_MODES)}, got {mode!r}")
    pred_set = {int(i) for i in pred_ids}
    ids_are_gt_ids = (len(pred_set) == len(pred_ids) > 0) and pred_set <= {int(i) for i in gt_ids}
    if mode == "id" or (mode == "auto" and ids_are_gt_ids):
        return match_by_id(pred_ids, gt_ids)
    return match_by_boxes(pred_boxes, gt_boxes, max_distance)
