"""Joint differentiable pose optimisation of a scene's objects (3D-RE-GEN's alignment loop, on CPU).

Per object: a pose model (planar 4-DoF when its mask touches the floor, else 5-DoF; or 7-DoF),
dense surface samples for the soft silhouette render in a square crop around the object, sparser
samples for the 3D point loss and the physical terms, and an SDF grid of its canonical mesh. The
yaw is initialised by a grid search over ``yaw_candidates`` angles (silhouette + point losses, each
object alone), the best refined beside further starts and further shapes (the shape stage's
runners-up), the lowest image loss kept; then all objects are refined together with Adam, the
physical terms coupling them (at scale-detached poses: they move objects, never resize them; a
carried object's ground is the flat top it rests on, found by ray casts at the initial poses, and
after the loop it is seated on that top when the loop left it sunk by at most the contact
tolerance); then (``project_contacts``, on by default) the poses are projected out of shallow
collisions (:mod:`sceneforge.pose.contact`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree

from sceneforge.geometry import invert_transform
from sceneforge.pose import losses as L
from sceneforge.pose.contact import Body, ContactSettings, rests_on, separate, settle, support_tops
from sceneforge.pose.models import PoseModel, PosedSimilarity, build_model, nearest_upright
from sceneforge.pose.problem import (ObjectPoseResult, PoseOptimisationResult, PoseProblem, PoseSettings,
                                     PoseTarget)
from sceneforge.pose.sdf import build_sdf_grid
from sceneforge.shape.base import has_prior_proportions
from sceneforge.types import Plane, Similarity
from sceneforge.render.soft_silhouette import (SoftSilhouetteSettings, crop_intrinsics,
                                               render_soft_silhouettes, samples_for_radius,
                                               splat_coverage)

DTYPE = torch.float32
HYPOTHESIS_MARGIN = 0.1
CROP_SUPERSAMPLE = 4  # target masks are read on a 4x finer grid than the crop
TERMS = ("silhouette", "points", "penetration", "background", "floor", "support")


@dataclass
class _Object:
    """Per-object state prepared before the loop (mutable on purpose: internal only)."""

    target: PoseTarget
    model: PoseModel
    active: bool
    status: str
    warnings: list[str]
    size: float
    render_samples: torch.Tensor      # (Nr, 3) canonical
    surface_samples: torch.Tensor     # (Ns, 3) canonical
    surface_normals: torch.Tensor     # (Ns, 3) canonical unit normals
    surface_tree: cKDTree             # of surface_samples (canonical)
    physical_samples: torch.Tensor    # (Np, 3) canonical
    contact_samples: torch.Tensor     # (Nc, 3) canonical, denser: penetration where another object is
    observed: torch.Tensor | None     # (M, 3) world
    K_crop: torch.Tensor              # (3, 3)
    target_crop: torch.Tensor         # (R, R)
    weight_crop: torch.Tensor         # (R, R)
    sdf: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None
    yaw_offset: float = 0.0
    start: str = "initial"
    projection_m: float = 0.0
    support: tuple[int, torch.Tensor] | None = None  # the supporter's id, a (3,) point of its top in its frame
    height_scale: float | None = None  # a planar model's measured height (PoseSettings.keep_measured_height)
    last_good: dict[str, torch.Tensor] | None = None


def _bodies(objects: list[_Object]) -> list[Body]:
    """The objects as :mod:`sceneforge.pose.contact` sees them (their models move in place)."""
    return [Body(o.model, o.active, o.target.mesh, o.surface_samples, o.sdf, o.size) for o in objects]


def touches_floor(mask: np.ndarray, floor_mask: np.ndarray, dilation_px: int) -> bool:
    """3D-RE-GEN's rule: the object's mask (dilated by ``dilation_px``) overlaps the floor mask."""
    grown = np.asarray(mask, dtype=bool).copy()
    for _ in range(max(0, dilation_px)):
        g = grown.copy()
        g[1:] |= grown[:-1]
        g[:-1] |= grown[1:]
        g[:, 1:] |= grown[:, :-1]
        g[:, :-1] |= grown[:, 1:]
        grown = g
    return bool(np.any(grown & np.asarray(floor_mask, dtype=bool)))


def floor_mask_from_depth(camera, depth: np.ndarray, floor, instances: np.ndarray | None = None,
                          tolerance: float = 0.03) -> np.ndarray:
    """(H, W) bool: pixels with depth whose world point lies within ``tolerance`` metres of the floor
    plane, object pixels (instances > 0) excluded."""
    from sceneforge.geometry import backproject_depth, transform_points

    H, W = depth.shape
    valid = depth > 0
    points_cam = backproject_depth(camera, depth, valid)
    points_world = transform_points(camera.T_world_cam, points_cam)
    near = np.abs(floor.signed_distance(points_world)) < tolerance
    out = np.zeros((H, W), dtype=bool)
    out[valid] = near
    if instances is not None:
        out &= instances == 0
    return out


def background_depth_map(mesh: trimesh.Trimesh, camera, long_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast the background mesh from the camera at reduced resolution.

    Returns (depth (h, w) float32 metres along camera z, 0 = no hit; K (3, 3) of that map)."""
    k = long_side / max(camera.width, camera.height)
    w, h = max(1, round(camera.width * k)), max(1, round(camera.height * k))
    ku, kv = w / camera.width, h / camera.height
    K = np.array([[ku, 0.0, 0.5 * ku - 0.5], [0.0, kv, 0.5 * kv - 0.5], [0.0, 0.0, 1.0]]) @ camera.K
    us, vs = np.meshgrid(np.arange(w) + 0.0, np.arange(h) + 0.0)
    pix = np.stack([us.ravel(), vs.ravel(), np.ones(us.size)], axis=1)
    dirs_cam = pix @ np.linalg.inv(K).T
    T = np.asarray(camera.T_world_cam)
    dirs_world = dirs_cam @ T[:3, :3].T
    origins = np.repeat(T[:3, 3][None], len(dirs_world), axis=0)
    locations, ray_index, _ = mesh.ray.intersects_location(origins, dirs_world, multiple_hits=False)
    depth = np.zeros(w * h)
    if len(ray_index):
        loc_cam = (locations - T[:3, 3]) @ T[:3, :3]
        depth[ray_index] = loc_cam[:, 2]
    return depth.reshape(h, w).astype(np.float32), K


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with at most ``count`` torch threads (more threads on busy cores are slower)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, min(count, previous)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class PoseOptimiser:
    """Optimise the poses of all objects of a :class:`PoseProblem` jointly (see module docstring)."""

    def __init__(self, settings: PoseSettings | None = None):
        self.settings = settings or PoseSettings()

    # ----- setup -------------------------------------------------------------------------------
    def _model_kind(self, problem: PoseProblem, target: PoseTarget, pose: Similarity | None = None) -> str:
        """The pose model of ``target`` placed at ``pose`` (default: its initial pose)."""
        s = self.settings
        if s.model != "auto":
            return s.model if (s.model != "planar" or s.use_planar) else "5dof"
        if not s.use_planar:
            return "5dof"
        pose = target.initial_pose if pose is None else pose
        bottom = _canonical_pivot(target.mesh)
        height = float(problem.floor.signed_distance(pose.apply(bottom[None]))[0])
        near = abs(height) < max(s.floor_height_tolerance, 0.1 * float(pose.s))
        if problem.floor_mask is None or s.floor_rule == "height":
            return "planar" if near else "5dof"
        touch = touches_floor(target.mask, problem.floor_mask, s.floor_touch_px)
        if s.floor_rule == "mask_and_height":
            touch = touch and near
        return "planar" if touch else "5dof"

    def _build_model(self, problem: PoseProblem, kind: str, target: PoseTarget, pose: Similarity,
                     height_scale: float | None) -> PoseModel:
        """``target``'s pose model of ``kind`` started at ``pose`` (its measured height, if any, held
        as the settings say)."""
        aspect = self.settings.aspect_limit if has_prior_proportions(target.mesh) else 0.0
        return build_model(kind, pose, problem.floor, _canonical_pivot(target.mesh), DTYPE, height_scale,
                           self.settings.measured_height_hold, aspect)

    def _rechoose_models(self, problem: PoseProblem, objects: list[_Object]) -> None:
        """After the yaw hypotheses are refined, decide each model again at its refined pose: the
        initial pose's bottom can be far above the floor (a floor lamp whose shape stage saw only
        the shade), the image-fitted pose's is not. A changed model restarts from that pose and
        refined aspect."""
        for o in objects:
            if not o.active:
                continue
            with torch.no_grad():
                pose = o.model().to_similarity()
            kind = self._model_kind(problem, o.target, pose)
            if kind != o.model.kind:
                aspect = o.model.log_aspect
                o.model = self._build_model(problem, kind, o.target, pose, o.height_scale)
                if aspect is not None and o.model.log_aspect is not None:  # the refined proportions go on
                    with torch.no_grad():
                        o.model.log_aspect.copy_(aspect)

    def _prepare(self, problem: PoseProblem, generator: np.random.Generator) -> list[_Object]:
        H, W = problem.camera.height, problem.camera.width
        for target in problem.targets:
            if target.mask.shape != (H, W):
                raise ValueError(f"object {target.id}: mask is {target.mask.shape[::-1]} but the camera is {W}x{H}")
        return [self._prepare_target(problem, target, generator) for target in problem.targets]

    def _prepare_target(self, problem: PoseProblem, target: PoseTarget, generator: np.random.Generator,
                        with_sdf: bool = True) -> _Object:
        """One target's pose model, samples, crop and (``with_sdf``, with the physical terms) SDF,
        its warnings and status when it is too poorly observed to move."""
        s = self.settings
        T_cam_world = invert_transform(problem.camera.T_world_cam)
        warnings: list[str] = []
        active = True
        n_pixels = int(np.count_nonzero(target.mask))
        n_points = 0 if target.points_world is None else int(len(target.points_world))
        if s.use_silhouette and n_pixels < s.min_pixels:
            warnings.append(f"only {n_pixels} mask pixels (< {s.min_pixels}): initial pose kept")
            active = False
        if s.use_points and target.points_world is not None and n_points < s.min_points:
            warnings.append(f"only {n_points} valid depth points (< {s.min_points}): initial pose kept")
            active = False
        if not s.use_silhouette and n_points < s.min_points:
            warnings.append(f"only {n_points} valid depth points and no silhouette loss: initial pose kept")
            active = False
        kind = self._model_kind(problem, target)
        height_scale = measured_height_scale(target, problem.floor, s.measured_height_tolerance) \
            if s.keep_measured_height and kind == "planar" else None
        model = self._build_model(problem, kind, target, target.initial_pose, height_scale)
        seed = int(generator.integers(2**31))
        dense, faces = trimesh.sample.sample_surface(target.mesh, s.max_render_samples, seed=seed)
        dense = dense.astype(np.float32)
        normals = np.asarray(target.mesh.face_normals, dtype=np.float32)[faces]
        box, K_crop = _crop_box(problem, target, dense, T_cam_world, s.resolution)
        fine_mask, weight_crop = _crop_masks(problem, target, box, s.resolution, CROP_SUPERSAMPLE)
        target_crop = _pool(fine_mask.astype(np.float32), CROP_SUPERSAMPLE)
        area = float(target_crop.sum()) + 1.0
        n_render = samples_for_radius(area, s.radius_px, maximum=s.max_render_samples)
        if s.splat_target:  # the target bleeds at its edge as the render does (docs/pose.md)
            target_crop = splat_coverage(fine_mask, CROP_SUPERSAMPLE, n_render / area,
                                         self._render_settings()).astype(np.float32)
        observed = None
        if target.points_world is not None and n_points > 0:
            pts = np.asarray(target.points_world, dtype=np.float32)
            if len(pts) > s.point_samples:
                pts = pts[generator.choice(len(pts), s.point_samples, replace=False)]
            observed = torch.as_tensor(pts)
        return _Object(
            target=target, model=model, active=active, status="optimised" if active else "kept_initial",
            warnings=warnings, size=float(target.initial_pose.s),
            render_samples=torch.as_tensor(dense[:n_render]),
            surface_samples=torch.as_tensor(dense[:s.surface_samples]),
            surface_normals=torch.as_tensor(normals[:s.surface_samples]),
            surface_tree=cKDTree(dense[:s.surface_samples]),
            physical_samples=torch.as_tensor(dense[:s.physical_samples]),
            contact_samples=torch.as_tensor(dense[:s.contact_samples]), height_scale=height_scale,
            observed=observed, K_crop=torch.as_tensor(K_crop, dtype=DTYPE),
            target_crop=torch.as_tensor(target_crop, dtype=DTYPE),
            weight_crop=torch.as_tensor(weight_crop, dtype=DTYPE),
            sdf=self._sdf(target.mesh, seed) if s.use_physical and with_sdf else None)

    def _sdf(self, mesh: trimesh.Trimesh, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The SDF grid of a canonical mesh: values (R, R, R) and the box's lo, hi (3,)."""
        grid = build_sdf_grid(mesh, self.settings.sdf_resolution, seed=seed)
        return (torch.as_tensor(grid.values), torch.as_tensor(grid.lo, dtype=DTYPE),
                torch.as_tensor(grid.hi, dtype=DTYPE))

    # ----- losses ------------------------------------------------------------------------------
    def _losses(self, problem: PoseProblem, objects: list[_Object], context: dict, physical: bool,
                obstacles: list[tuple[_Object, PosedSimilarity]] | None = None) -> torch.Tensor:
        """(B, len(TERMS)) unweighted per-object loss terms (zeros for disabled terms) at the models'
        current poses; the physical terms see the poses with the scale detached unless
        ``physical_scale_gradient`` (docs/pose.md). The objects collide with each other, or, when
        ``obstacles`` (objects with fixed posed models) are given, with those only; never with an
        object of their own target (a yaw hypothesis does not meet its siblings)."""
        s = self.settings
        B = len(objects)
        poses = [o.model() for o in objects]
        rows = [[torch.zeros((), dtype=DTYPE) for _ in TERMS] for _ in range(B)]
        R_cw, t_cw = context["R_cam_world"], context["t_cam_world"]
        if s.use_silhouette:
            counts = [len(o.render_samples) for o in objects]
            n_max = max(counts)
            pts = torch.zeros(B, n_max, 3, dtype=DTYPE)
            wts = torch.zeros(B, n_max, dtype=DTYPE)
            padded = []
            for i, (o, pose) in enumerate(zip(objects, poses)):
                cam = pose.apply(o.render_samples) @ R_cw.T + t_cw
                padded.append(torch.cat([cam, torch.ones(n_max - len(cam), 3, dtype=DTYPE)], 0))
                wts[i, :len(cam)] = 1.0
            pts = torch.stack(padded)
            K = torch.stack([o.K_crop for o in objects])
            sil = render_soft_silhouettes(pts, K, s.resolution, s.resolution, context["render"], wts)
            target = torch.stack([o.target_crop for o in objects])
            weight = torch.stack([o.weight_crop for o in objects])
            sil_loss = L.silhouette_loss(sil, target, weight)
            for i in range(B):
                rows[i][0] = sil_loss[i]
        for i, (o, pose) in enumerate(zip(objects, poses)):
            if s.use_points and o.observed is not None:
                with torch.no_grad():  # nearest samples in the canonical frame (a similarity keeps the order;
                    # a measured height's stretch of a few % hardly changes it)
                    local = pose.to_local(o.observed).numpy()
                nearest = torch.as_tensor(o.surface_tree.query(local)[1])
                rows[i][1] = L.point_to_surface_loss(o.observed, pose.apply(o.surface_samples),
                                                     pose.rotate_normals(o.surface_normals), o.size, nearest=nearest)
        if physical:
            poses = [o.model(scale_gradient=s.physical_scale_gradient) for o in objects]
            world_phys = [pose.apply(o.physical_samples) for o, pose in zip(objects, poses)]
            normal, offset = context["normal"], context["offset"]
            boxes, heights = zip(*(_box_and_height(w.detach(), normal) for w in world_phys))
            others = list(zip(objects, poses, boxes, heights)) if obstacles is None else \
                [(oj, pj, *_box_and_height(pj.apply(oj.physical_samples).detach(), normal)) for oj, pj in obstacles]
            world_contact = [pose.apply(o.contact_samples) for o, pose in zip(objects, poses)]
            tops_by_id = {oj.target.id: pj for oj, pj, _, _ in others}  # a support top follows its supporter
            for i, (o, pose) in enumerate(zip(objects, poses)):
                X = world_phys[i]
                pen = torch.zeros((), dtype=DTYPE)
                support_candidates = [X @ normal + offset]
                for oj, pj, box_j, height_j in others:
                    if oj.target.id == o.target.id or oj.sdf is None:
                        continue
                    if not _boxes_overlap(boxes[i], box_j, 0.1 * o.size + s.contact_tolerance * 4):
                        continue
                    near = _inside_box(world_contact[i].detach(), box_j, s.contact_tolerance)
                    top = _shared_top(o, oj, tops_by_id, normal)
                    if top is not None and len(near):  # the floor term holds this contact, exactly
                        near = near[world_contact[i][near].detach() @ normal + top >= s.contact_tolerance]
                    if len(near):
                        # an object resting on another yields: only the carried one's pose gets the gradient
                        Xi = world_contact[i][near[:s.physical_samples]]
                        Xi = Xi.detach() if rests_on(oj.model.kind, oj.active, height_j, heights[i]) else Xi
                        pose_j = pj.detached() if rests_on(o.model.kind, o.active, heights[i], height_j) else pj
                        sd = L.signed_distance_to_objects(Xi, *oj.sdf, pose_j)
                        pen = pen + torch.relu(s.contact_clearance - sd).mean()
                    if o.model.kind != "planar":  # the support moves the carried object only
                        support_candidates.append(torch.relu(L.signed_distance_to_objects(X, *oj.sdf, pj.detached())))
                rows[i][2] = pen / o.size
                if context["bg_depth"] is not None:
                    X_cam = X @ R_cw.T + t_cw
                    behind, gap = L.behind_background(X_cam, context["bg_K"], context["bg_depth"],
                                                      s.background_margin)
                    rows[i][3] = behind.mean() / o.size
                    support_candidates.append(gap)
                ground = _top_offset(o, tops_by_id, normal)  # a carried object's ground is its support's top
                if ground is None:
                    ground = offset
                else:
                    support_candidates.append(X @ normal + ground)
                rows[i][4] = L.below_floor(X, normal, ground).mean() / o.size
                if o.model.kind != "planar":
                    nearest = torch.stack(support_candidates).amin(dim=0)
                    rows[i][5] = torch.relu(nearest.amin() - s.contact_tolerance) / o.size
        return torch.stack([torch.stack(r) for r in rows])

    def _weights(self) -> torch.Tensor:
        s = self.settings
        return torch.tensor([s.weight_silhouette, s.weight_points, s.weight_penetration,
                             s.weight_background, s.weight_floor, s.weight_support], dtype=DTYPE)

    # ----- main entry --------------------------------------------------------------------------
    def optimise(self, problem: PoseProblem) -> PoseOptimisationResult:
        """Run the optimisation; never raises on a bad object (it keeps its initial pose)."""
        start = time.perf_counter()
        s = self.settings
        with torch_threads(s.num_threads):
            torch.manual_seed(s.seed)
            generator = np.random.default_rng(s.seed)
            objects = self._prepare(problem, generator)
            context = self._context(problem)
            if s.use_physical:
                self._find_supports(problem, objects, context)
            history: list[float] = []
            iterations = 0
            if objects:
                refined = self._yaw_search(problem, objects, context)
                reshaped = {o.target.id for o in objects if o.start.startswith("shape")}
                if s.use_physical and reshaped:  # a supporter's top is its new mesh's
                    self._find_supports(problem, objects, context, on=reshaped)
                self._rechoose_models(problem, objects)
                iterations = self._refine(problem, objects, context, history, s.iterations, s.use_physical,
                                          lr_fraction=s.joint_lr_fraction if refined else 1.0)
                if s.use_physical and s.seat_on_tops:
                    self._seat(objects, context)
                if s.use_physical and s.project_contacts:
                    self._project(objects, context)
            final_terms = self._final_terms(problem, objects, context)
            results = tuple(self._result(o, terms) for o, terms in zip(objects, final_terms))
        warnings = tuple(f"object {r.id}: {w}" for r in results for w in r.warnings)
        return PoseOptimisationResult(results, tuple(history), iterations, time.perf_counter() - start, warnings)

    def _render_settings(self) -> SoftSilhouetteSettings:
        """The splats of the renders and, with ``splat_target``, of the targets they are compared with."""
        return SoftSilhouetteSettings(radius_px=self.settings.radius_px)

    def _context(self, problem: PoseProblem) -> dict:
        s = self.settings
        T_cam_world = invert_transform(problem.camera.T_world_cam)
        context = {"R_cam_world": torch.as_tensor(T_cam_world[:3, :3], dtype=DTYPE),
                   "t_cam_world": torch.as_tensor(T_cam_world[:3, 3], dtype=DTYPE),
                   "normal": torch.tensor(np.array(problem.floor.normal), dtype=DTYPE),
                   "offset": float(problem.floor.offset),
                   "render": self._render_settings(),
                   "bg_depth": None, "bg_K": None}
        if s.use_physical and problem.background is not None and len(problem.background.faces):
            depth, K = background_depth_map(problem.background, problem.camera, s.background_resolution)
            context["bg_depth"] = torch.as_tensor(depth)
            context["bg_K"] = torch.as_tensor(K, dtype=DTYPE)
        return context

    def _yaw_search(self, problem: PoseProblem, objects: list[_Object], context: dict) -> bool:
        """Per object, score ``yaw_candidates`` yaw offsets (0 included) by silhouette + point
        losses; then refine the initial yaw, the ``yaw_hypotheses - 1`` best others, the target's
        ``alternative_poses`` and its ``alternative_shapes`` for ``hypothesis_iterations`` Adam steps
        each (every hypothesis alone; physical terms against the other objects held at their
        initial poses) and keep the one of the lowest refined image loss (``objects[i]`` becomes
        it: another shape brings its own samples and crop). Another hypothesis than the initial yaw must beat it by 2 %
        (scores) or by HYPOTHESIS_MARGIN (refined losses: a symmetric shape's equivalent yaws differ
        by sampling noise of a few %) to be taken. Returns whether the hypotheses were refined."""
        s = self.settings
        n = s.yaw_candidates
        if n <= 1 or not (s.use_silhouette or s.use_points):
            return False
        scores = []
        with torch.no_grad():
            obstacles = [(o, o.model()) for o in objects]  # at the initial poses, for the hypotheses' physics
            for k in range(n):
                for o in objects:
                    o.model.set_yaw(2.0 * math.pi * k / n)
                scores.append(self._image_loss(problem, objects, context))
        scores_t = torch.stack(scores)  # (n, B)
        refine = s.yaw_hypotheses > 1 and s.hypothesis_iterations > 0
        candidates = []
        for i, o in enumerate(objects):
            others = [int(k) for k in torch.argsort(scores_t[1:, i]) + 1]
            if not o.active:
                others = []
            elif not refine:
                others = [k for k in others[:1] if scores_t[k, i] < 0.98 * scores_t[0, i]]
            candidates.append([0] + others[:max(0, s.yaw_hypotheses - 1)])
        alternatives = [self._alternative_hypotheses(problem, o) if refine and o.active else [] for o in objects]
        if refine and any(len(c) + len(a) > 1 for c, a in zip(candidates, alternatives)):
            hypotheses = []
            for o, yaws, others in zip(objects, candidates, alternatives):
                for k in yaws:
                    h = dataclasses.replace(o, model=copy.deepcopy(o.model), warnings=[], yaw_offset=2.0 * math.pi * k / n)
                    h.model.set_yaw(h.yaw_offset)
                    hypotheses.append(h)
                hypotheses += others
            self._refine(problem, hypotheses, context, [], s.hypothesis_iterations, physical=s.use_physical,
                         obstacles=obstacles)
            with torch.no_grad():
                refined = self._image_loss(problem, hypotheses, context)
            start, own_shapes = 0, {}
            for i, (o, yaws, others) in enumerate(zip(objects, candidates, alternatives)):
                group = hypotheses[start:start + len(yaws) + len(others)]
                losses = refined[start:start + len(group)]
                start += len(group)
                chosen = group[_kept(losses)]
                if s.use_physical and chosen.sdf is None:
                    chosen.sdf = self._sdf(chosen.target.mesh, s.seed)
                objects[i] = dataclasses.replace(chosen, warnings=o.warnings)
                if chosen.target is not o.target:  # another shape: its own best too, should it collide
                    own = [k for k, h in enumerate(group) if h.target is o.target]
                    own_shapes[i] = dataclasses.replace(group[own[_kept(losses[own])]], warnings=o.warnings)
            if s.use_physical:
                self._keep_own_shapes_that_collide_less(problem, objects, own_shapes, context)
            return True
        for o, yaws in zip(objects, candidates):
            o.yaw_offset = 2.0 * math.pi * yaws[-1] / n
            o.model.set_yaw(o.yaw_offset)
        return False

    def _keep_own_shapes_that_collide_less(self, problem: PoseProblem, objects: list[_Object],
                                           own_shapes: dict[int, _Object], context: dict) -> None:
        """A floor (planar) object that took another shape goes back to its own (``own_shapes[i]``:
        its best own hypothesis) when that lowers the summed penetration term of the floor objects,
        all at their kept hypotheses: the shapes were chosen each against the others' initial poses,
        and two refined neighbours can overlap where neither did alone (a chair and a bench, each
        fitted to its silhouette, pushing into each other for the rest of the loop). Carried
        objects do not count: one that sank into a support's new shape settles on its top."""
        floor = [k for k, o in enumerate(objects) if o.model.kind == "planar"]
        for i, own in own_shapes.items():
            if i not in floor or own.model.kind != "planar":
                continue
            with torch.no_grad():
                scene = [objects[k] for k in floor]
                penetration = float(self._losses(problem, scene, context, physical=True)[:, 2].sum())
                scene[floor.index(i)] = own
                if float(self._losses(problem, scene, context, physical=True)[:, 2].sum()) < penetration:
                    objects[i] = own

    def _alternative_hypotheses(self, problem: PoseProblem, o: _Object) -> list[_Object]:
        """The object started at each of its target's ``alternative_poses`` (its pose model chosen
        at that pose), to be refined with the yaw hypotheses. A start for a library asset (a mesh
        with a prior's proportions, upright in its canonical frame like its initial pose) is first
        turned upright about its box centre unless the model is 7-DoF (:func:`nearest_upright`):
        the planar and 5-DoF models turn about the floor normal only, and would keep a learned
        model's tilt (a bowl tipped 12 degrees into the desk it stands on). Another mesh may be
        turned any way in its frame, and the start's tilt may be the right one (docs/pose.md)."""
        hypotheses = []
        for k, pose in enumerate(o.target.alternative_poses):
            if self.settings.model != "7dof" and has_prior_proportions(o.target.mesh):
                pose = nearest_upright(pose, o.target.initial_pose, np.array(problem.floor.normal),
                                       np.asarray(o.target.mesh.bounds, dtype=np.float64).mean(0))
            model = self._build_model(problem, self._model_kind(problem, o.target, pose), o.target, pose,
                                      o.height_scale)
            hypotheses.append(dataclasses.replace(o, warnings=[], yaw_offset=0.0, start=f"alternative {k}",
                                                  model=model))
        for k, (mesh, pose) in enumerate(o.target.alternative_shapes):
            target = dataclasses.replace(o.target, mesh=mesh, initial_pose=pose, alternative_poses=(),
                                         alternative_shapes=())
            h = self._prepare_target(problem, target, np.random.default_rng([self.settings.seed, o.target.id, k]),
                                     with_sdf=False)  # a hypothesis meets others' SDFs only: its own when chosen
            hypotheses.append(dataclasses.replace(h, warnings=[], start=f"shape {k}", support=o.support))
        return hypotheses

    def _image_loss(self, problem: PoseProblem, objects: list[_Object], context: dict) -> torch.Tensor:
        """(B,) weighted silhouette + point loss of every object at its model's current pose."""
        terms = self._losses(problem, objects, context, physical=False)
        return (terms[:, :2] * self._weights()[:2]).sum(dim=1)

    def _refine(self, problem: PoseProblem, objects: list[_Object], context: dict, history: list[float],
                iterations: int, physical: bool, lr_fraction: float = 1.0,
                obstacles: list[tuple[_Object, PosedSimilarity]] | None = None) -> int:
        """Adam on every active object's parameters for at most ``iterations`` steps (schedule in
        PoseSettings, learning rates times ``lr_fraction``); restores the poses of the lowest total
        loss; returns the steps taken."""
        s = self.settings
        groups = []
        lrs = {"translation": s.lr_translation * lr_fraction, "rotation": s.lr_rotation * lr_fraction,
               "scale": s.lr_scale * lr_fraction}
        for o in objects:
            for kind, params in o.model.parameter_groups().items():
                for p in params:
                    p.requires_grad_(o.active)
                if o.active:
                    groups.append({"params": params, "lr": lrs[kind], "base_lr": lrs[kind]})
        for o in objects:
            o.last_good = _snapshot(o.model)
        if not groups or iterations == 0:
            return 0
        optimiser = torch.optim.Adam(groups)
        weights = self._weights()
        best_loss, best_state, since_best = math.inf, None, 0
        iteration = 0
        for iteration in range(1, iterations + 1):
            fraction = s.final_lr_fraction + (1 - s.final_lr_fraction) * 0.5 * (1 + math.cos(math.pi * (iteration - 1) / iterations))
            for g in optimiser.param_groups:
                g["lr"] = g["base_lr"] * fraction
            optimiser.zero_grad(set_to_none=True)
            terms = self._losses(problem, objects, context, physical=physical, obstacles=obstacles)
            per_object = (terms * weights).sum(dim=1)
            bad = [i for i, o in enumerate(objects) if o.active and not torch.isfinite(per_object[i])]
            if bad:
                for i in bad:
                    self._stop_object(objects[i], iteration)
                best_loss, best_state, since_best = math.inf, None, 0
                if not any(o.active for o in objects):
                    break
                continue
            active = [i for i, o in enumerate(objects) if o.active]
            total = per_object[active].sum()
            value = float(total.detach())
            history.append(value)
            for i in active:
                objects[i].last_good = _snapshot(objects[i].model)
            if value < best_loss * (1 - s.min_improvement) or best_state is None:
                best_loss, since_best = value, 0
                best_state = {i: _snapshot(objects[i].model) for i in active}
            else:
                since_best += 1
                if value < best_loss:
                    best_loss = value
                    best_state = {i: _snapshot(objects[i].model) for i in active}
                if since_best >= s.patience:
                    break
            total.backward()
            optimiser.step()
        if best_state is not None:
            for i, state in best_state.items():
                if objects[i].active:
                    _restore(objects[i].model, state)
        return iteration

    def _find_supports(self, problem: PoseProblem, objects: list[_Object], context: dict,
                       on: set[int] | None = None) -> None:
        """At the starting poses, the flat top each carried object rests on (``o.support``,
        :func:`~sceneforge.pose.contact.support_tops`): its ground in the floor term (docs/pose.md).
        With ``on`` (ids of objects that took another shape), after the hypotheses: each object's
        target at its starting pose with the model it has now, and only the supports that were, or
        now are, on one of those change."""
        bodies = _bodies(objects)
        if on is not None:
            bodies = [dataclasses.replace(b, model=self._build_model(problem, o.model.kind, o.target,
                                                                      o.target.initial_pose, o.height_scale))
                      for b, o in zip(bodies, objects)]
        tops = support_tops(bodies, context["normal"])
        for o, top in zip(objects, tops):
            support = None if top is None else (objects[top.supporter].target.id, top.point)
            if on is None or any(t is not None and t[0] in on for t in (o.support, support)):
                o.support = support

    def _seat(self, objects: list[_Object], context: dict) -> None:
        """After the loop, seat each active carried object on its support's top (``o.support``): one
        whose contact samples reach below the top plane raised by ``contact_clearance`` is lifted
        along the floor normal by the difference, when that is at most ``contact_tolerance`` (a
        deeper sink is the image terms' verdict against the top; the floor term answers it during
        the loop). Translation only; the lift (m) adds to ``o.projection_m``. The floor term, a
        penalty Adam balances against the image terms, left carried objects about a millimetre into
        their tops, which the evaluation's exact intersection counts (docs/pose.md, "Seat")."""
        normal, s = context["normal"], self.settings
        with torch.no_grad():
            tops_by_id = {o.target.id: o.model() for o in objects}
            for o in objects:
                ground = _top_offset(o, tops_by_id, normal) if o.active else None
                if ground is None:
                    continue
                lift = s.contact_clearance - (float((o.model().apply(o.contact_samples) @ normal).min()) + ground)
                if 0.0 < lift <= s.contact_tolerance:
                    o.model.translate(normal * lift)
                    o.projection_m += lift

    def _project(self, objects: list[_Object], context: dict) -> None:
        """The collision-resolving projection (pose/contact.py) on the optimised poses; each active
        object's displacement (m) adds to ``o.projection_m``."""
        bodies = _bodies(objects)
        with torch.no_grad():
            before = [o.model().t.clone() for o in objects]
        settings = ContactSettings(contact=self.settings.contact_tolerance, max_drop=self.settings.settle_max_drop,
                                   max_depth=self.settings.project_max_depth)
        separate(bodies, context["normal"], context["offset"], settings)
        settle(bodies, context["normal"], context["offset"], settings)
        with torch.no_grad():
            for o, t in zip(objects, before):
                o.projection_m += float((o.model().t - t).norm())

    def _stop_object(self, o: _Object, iteration: int) -> None:
        """A non-finite loss: restore the last pose with a finite loss and freeze the object."""
        if o.last_good is not None:
            _restore(o.model, o.last_good)
        for p in o.model.parameters():
            p.requires_grad_(False)
            p.grad = None
        o.active = False
        o.status = "nan_stopped"
        o.warnings.append(f"loss became non-finite at iteration {iteration}: last good pose kept")

    def _final_terms(self, problem: PoseProblem, objects: list[_Object], context: dict) -> list[dict[str, float]]:
        """Each object's unweighted loss terms at its returned pose (report.json)."""
        if not objects:
            return []
        with torch.no_grad():
            terms = self._losses(problem, objects, context, physical=self.settings.use_physical)
        return [{name: float(value) for name, value in zip(TERMS, row)} for row in terms]

    def _result(self, o: _Object, losses: dict[str, float]) -> ObjectPoseResult:
        stretch = (1.0, 1.0, 1.0)
        if o.status == "kept_initial":
            pose = o.target.initial_pose
        else:
            with torch.no_grad():
                posed = o.model()
            pose, stretch = posed.to_similarity(), tuple(float(v) for v in posed.stretch_factors())
        return ObjectPoseResult(id=o.target.id, pose=pose, initial_pose=o.target.initial_pose,
                                model=o.model.kind, status=o.status, warnings=tuple(o.warnings), losses=losses,
                                yaw_offset_deg=math.degrees(o.yaw_offset), projection_m=o.projection_m, start=o.start,
                                rests_on=None if o.support is None or o.model.kind == "planar" else o.support[0],
                                stretch=stretch, mesh=o.target.mesh if o.start.startswith("shape") else None)


def _kept(losses: torch.Tensor) -> int:
    """Index of the hypothesis kept by its refined image loss (``losses`` (H,), the first being the
    incoming pose's): the lowest, when it beats the first by HYPOTHESIS_MARGIN, else the first."""
    best = int(torch.argmin(losses))
    return best if losses[best] < (1.0 - HYPOTHESIS_MARGIN) * losses[0] else 0


def _top_offset(o: _Object, tops_by_id: dict[int, PosedSimilarity], normal: torch.Tensor) -> float | None:
    """Offset ``d`` of the plane ``x · normal + d = 0`` through the top ``o`` rests on (its
    supporter's posed top point, detached: the carried object yields), or None when ``o`` is not a
    carried 5-DoF object or its supporter is not among ``tops_by_id`` (supporter id -> posed model)."""
    if o.support is None or o.model.kind == "planar" or o.support[0] not in tops_by_id:
        return None
    top = tops_by_id[o.support[0]].apply(o.support[1][None])[0]
    return -float((top @ normal).detach())


def _shared_top(o: _Object, oj: _Object, tops_by_id: dict[int, PosedSimilarity],
                normal: torch.Tensor) -> float | None:
    """Offset of the support top (:func:`_top_offset`) between ``o`` and ``oj`` when one rests on
    the other's, else None. The penetration term skips the samples of either within the contact
    tolerance above that top: the floor term holds the carried object on the exact top plane, while
    the 24³ SDF of a top thinner than a cell reads points just above it as inside, and pushed carried
    objects up to a centimetre off their support (docs/pose.md, "Losses")."""
    for carried, supporter in ((o, oj), (oj, o)):
        if carried.support is not None and carried.support[0] == supporter.target.id:
            return _top_offset(carried, tops_by_id, normal)
    return None


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def _restore(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for k, v in model.named_parameters():
            v.copy_(state[k])


def _box_and_height(world: torch.Tensor, normal: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], float]:
    """(N, 3) world samples -> ((3,) min corner, (3,) max corner) and their mean height along ``normal``."""
    return (world.amin(0), world.amax(0)), float(world.mean(0) @ normal)


def _inside_box(points: torch.Tensor, box: tuple[torch.Tensor, torch.Tensor], margin: float) -> torch.Tensor:
    """Indices of the (N, 3) ``points`` inside ``box`` (min, max corners) grown by ``margin``."""
    return torch.nonzero(torch.all((points >= box[0] - margin) & (points <= box[1] + margin), dim=1)).reshape(-1)


def _boxes_overlap(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor], margin: float) -> bool:
    return bool(torch.all(a[0] - margin <= b[1]) and torch.all(b[0] - margin <= a[1]))


def measured_height_scale(target: PoseTarget, floor: Plane, tolerance: float) -> float | None:
    """The scale at which ``target``'s canonical mesh (y up) spans its visible top above the floor
    (99.5th percentile of its points' heights, metres), when the mesh's proportions are a prior's
    (:func:`~sceneforge.shape.base.has_prior_proportions`) and that top lies within ``tolerance`` of
    the initial mesh's top (relative to its height, at least 1 cm): the height is measured. Else None."""
    if not has_prior_proportions(target.mesh) or target.points_world is None or len(target.points_world) < 5:
        return None
    top = float(np.percentile(floor.signed_distance(np.asarray(target.points_world, dtype=np.float64)), 99.5))
    vertices = np.asarray(target.mesh.vertices, dtype=np.float64)
    heights = floor.signed_distance(target.initial_pose.apply(vertices))
    if top <= 0.0 or abs(top - float(heights.max())) > max(0.01, tolerance * float(np.ptp(heights))):
        return None
    return top / float(np.ptp(vertices[:, 1]))


def _canonical_pivot(mesh: trimesh.Trimesh) -> np.ndarray:
    """(3,) bottom centre of the canonical bounding box (y up)."""
    lo, hi = np.asarray(mesh.bounds, dtype=np.float64)
    return np.array([0.5 * (lo[0] + hi[0]), lo[1], 0.5 * (lo[2] + hi[2])])


def _crop_box(problem: PoseProblem, target: PoseTarget, samples: np.ndarray, T_cam_world: np.ndarray,
              resolution: int, padding: float = 0.25) -> tuple[tuple[float, float, float, float], np.ndarray]:
    """Square crop around the target mask and the initially projected object, padded."""
    cam = problem.camera
    world = target.initial_pose.apply(samples.astype(np.float64))
    pc = world @ T_cam_world[:3, :3].T + T_cam_world[:3, 3]
    pc = pc[pc[:, 2] > 1e-3]
    us, vs = [], []
    if len(pc):
        uv = pc @ cam.K.T
        us.append(uv[:, 0] / uv[:, 2])
        vs.append(uv[:, 1] / uv[:, 2])
    mv, mu = np.nonzero(target.mask)
    if len(mu):
        us.append(mu.astype(np.float64))
        vs.append(mv.astype(np.float64))
    u = np.clip(np.concatenate(us), -cam.width, 2 * cam.width)
    v = np.clip(np.concatenate(vs), -cam.height, 2 * cam.height)
    cu, cv = 0.5 * (u.min() + u.max()), 0.5 * (v.min() + v.max())
    side = max(u.max() - u.min(), v.max() - v.min(), 8.0) * (1 + 2 * padding)
    box = (cu - side / 2, cv - side / 2, side, side)
    return box, crop_intrinsics(cam.K, box, resolution)


def _crop_masks(problem: PoseProblem, target: PoseTarget, box: tuple[float, float, float, float],
                resolution: int, supersample: int) -> tuple[np.ndarray, np.ndarray]:
    """The target mask in the crop on a ``supersample`` times finer grid ((R·s, R·s) bool) and the
    area-averaged pixel weights ((R, R)). Weight 0: outside the image, or visible pixels of other
    objects outside this object's mask (they may hide it)."""
    H, W = target.mask.shape
    u0, v0, side, _ = box
    step = side / (resolution * supersample)
    offs = (np.arange(resolution * supersample) + 0.5) * step
    uu = np.floor(u0 + offs + 0.5).astype(np.int64)
    vv = np.floor(v0 + offs + 0.5).astype(np.int64)
    inside_u = (uu >= 0) & (uu < W)
    inside_v = (vv >= 0) & (vv < H)
    uc, vc = np.clip(uu, 0, W - 1), np.clip(vv, 0, H - 1)
    inside = inside_v[:, None] & inside_u[None, :]
    mask = target.mask[np.ix_(vc, uc)] & inside
    occluders = np.zeros((H, W), dtype=bool)
    for other in problem.targets:
        if other.id != target.id:
            occluders |= other.visible_mask if other.visible_mask is not None else other.mask
    hidden = occluders[np.ix_(vc, uc)] & ~mask
    weight = inside & ~hidden
    return mask, _pool(weight.astype(np.float32), supersample)


def _pool(fine: np.ndarray, supersample: int) -> np.ndarray:
    """(R·s, R·s) -> (R, R) means over s x s blocks."""
    n = fine.shape[0] // supersample
    return fine.reshape(n, supersample, n, supersample).mean(axis=(1, 3))
