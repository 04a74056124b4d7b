"""What the pose optimisation's physical terms do to scale, interpenetration and floating.

On development engine views (never the benchmark's seed 777), the retrieval's objects (and the
ground-truth meshes at the retrieval's poses, as in benchmarks/reconstruct.py's ablation) are
re-posed by pose-stage variants given as JSON settings; per variant: the scene scores of
benchmarks/reconstruct.py (CD-S, IoU-B, F-Score-S@0.02, eval's interpenetration volume and floating
distance), the eval's scale error, and the signed mean log scale change against the initial pose
(and, with ground-truth meshes, against the true scale), so a term that biases the scale shows as a
shift of ``log s`` between variants; with ``--pairs``, every overlapping pair of objects (its volume,
pose models and support). The retrieval results are cached under ``--cache``.

    python benchmarks/pose_physics_diagnosis.py --seed 3 --views 6
    python benchmarks/pose_physics_diagnosis.py --seed 5 --views 6 --variants '{"no penetration": {"weight_penetration": 0}}'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sceneforge.eval.physics import PlacedObject, measured_pairs
from sceneforge.registry import create

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pose_development import cached_base  # noqa: E402
from reconstruct import score_view, with_truth_meshes  # noqa: E402
from retrieve_diagnosis import HELD_OUT_SEED  # noqa: E402

DEFAULT_VARIANTS = {"initial": None, "full model": {}, "w/o physical terms": {"use_physical": False}}
COLUMNS = ("CD-S", "IoU-B", "F-Score-S@0.02", "interpenetration m³", "floating m", "scale")


def base_results(seed: int, views: int, cache: Path):
    """[(retrieve result, ground truth)] for views 0..views-1 of ``seed``, cached in ``cache`` as
    benchmarks/pose_development.py caches its bases."""
    return [cached_base(f"{seed}_{index}", cache) for index in range(views)]


def log_scales(objects, reference) -> np.ndarray:
    """(K,) log of each object's scale over the reference object's of the same id."""
    ref = {o.id: float(o.pose.s) for o in reference}
    return np.array([np.log(float(o.pose.s) / ref[o.id]) for o in objects if o.id in ref])


def log_true_scales(objects, truth) -> np.ndarray:
    """(K,) log of each object's scale (ground-truth mesh of largest side 1) over its true largest
    side (metres)."""
    gt = {o.id: o for o in truth.objects}
    out = []
    for o in objects:
        lo, hi = gt[o.id].mesh.bounds
        out.append(np.log(float(o.pose.s) / float(np.max((hi - lo) * gt[o.id].pose.scale_xyz))))
    return np.array(out)


def overlapping_pairs(objects, min_volume: float = 1e-9) -> list[tuple[int, int, float, bool]]:
    """[(id a, id b, intersection volume m³, exact)] of the posed objects' pairs that overlap by more
    than ``min_volume`` (eval's measure: the union of each object's closed parts)."""
    placed = []
    for o in objects:
        mesh = o.world_mesh()
        placed.append(PlacedObject(mesh, np.asarray(mesh.bounding_box_oriented.vertices), mesh.vertices))
    return [(objects[a].id, objects[b].id, volume, exact) for a, b, volume, exact in measured_pairs(placed)
            if volume > min_volume]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--views", type=int, default=6)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--variants", default=None, help="JSON {name: pose settings} added to the defaults")
    parser.add_argument("--only", default=None, help="JSON {name: pose settings} instead of the defaults")
    parser.add_argument("--meshes", default="both", choices=("retrieve", "truth", "both"))
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sceneforge_pose_diag")
    parser.add_argument("--points", type=int, default=2048)
    parser.add_argument("--objects", action="store_true", help="print one row per object and variant")
    parser.add_argument("--pairs", action="store_true", help="print every overlapping pair per variant")
    args = parser.parse_args(argv)
    if args.seed == HELD_OUT_SEED:
        raise SystemExit(f"seed {HELD_OUT_SEED} is the held-out benchmark's: diagnose on another seed")
    variants = dict(DEFAULT_VARIANTS) if args.only is None else {"initial": None, **json.loads(args.only)}
    variants.update(json.loads(args.variants) if args.variants else {})
    sources = ("retrieve", "truth") if args.meshes == "both" else (args.meshes,)
    rows = {(src, name): [] for src in sources for name in variants}
    for index, (base, truth) in enumerate(base_results(args.seed, args.first + args.views, args.cache)):
        if index < args.first:
            continue
        for src in sources:
            objects = list(base.scene.objects) if src == "retrieve" else with_truth_meshes(base.scene.objects, truth)
            for name, settings in variants.items():
                posed, cpu, report = objects, 0.0, {}
                if settings is not None:
                    start = time.process_time()
                    refined = create("pose", "optimise", **settings).refine(base.perception, objects, base.amodal)
                    cpu = time.process_time() - start
                    posed = list(refined.objects)
                    report = {r["id"]: r for r in refined.report["objects"]}
                    if args.objects:
                        for r in refined.report["objects"]:
                            terms = " ".join(f"{k[:4]} {v:.3g}" for k, v in r["losses"].items())
                            print(f"  view {index} {src} {name} id {r['id']} {r['model']}: {terms}")
                if args.pairs:
                    labels = {o.id: o.label for o in posed}
                    for ia, ib, volume, exact in overlapping_pairs(posed):
                        who = " ".join(f"{i} {labels[i]} ({report[i]['model']}, rests on {report[i]['rests_on']})"
                                       if i in report else f"{i} {labels[i]}" for i in (ia, ib))
                        print(f"  pair view {index} {src} {name}: {volume:.2e} m³{'' if exact else ' (boxes)'}: {who}")
                row = score_view(dataclasses.replace(base.scene, objects=tuple(posed)), truth, args.points,
                                 reference_only=False)
                row["cpu s"] = cpu
                row["log s/s0"] = float(np.mean(log_scales(posed, objects)))
                if src == "truth":
                    row["log s/s_true"] = float(np.mean(log_true_scales(posed, truth)))
                rows[(src, name)].append(row)
        print(f"view {index} done", flush=True)
    extra = ("log s/s0", "log s/s_true", "cpu s")
    print(f"\nseed {args.seed}, views {args.first}-{args.first + args.views - 1}")
    print("| meshes | variant | " + " | ".join(COLUMNS + extra) + " |")
    print("|---|---|" + "---|" * (len(COLUMNS) + len(extra)))
    for (src, name), rs in rows.items():
        cells = []
        for c in COLUMNS + extra:
            v = np.array([r.get(c, np.nan) for r in rs], dtype=float)
            v = v[np.isfinite(v)]
            cells.append("n/a" if not len(v) else (f"{v.mean():.2e}" if c in ("CD-S", "interpenetration m³") else f"{v.mean():.4f}"))
        print(f"| {src} | {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
