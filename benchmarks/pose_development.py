"""Development loop of the pose stage, on engine views the held-out benchmark never uses.

The numbers docs/ reports come from benchmarks/reconstruct.py's held-out views (seed 777). A change
to the pose stage is tried first on these development views: engine seeds 201, 204, 205, 210, 211
and 302, views 0-11 (72 views, 512x512, given depth; the split docs/pose.md's development figures
use). Three steps, each in a folder DIR:

- ``bases DIR`` reconstructs every view once with ``retrieve, initial poses`` (the ablation's base)
  and caches the result with its ground truth (DIR/bases/SEED_VIEW.pkl; 7.8 min on 2 cores
  with ``--jobs 2``). Delete DIR/bases after changing a stage before the pose stage.
- ``run DIR NAME POSE`` re-poses every cached base with the pose stage POSE (a registry name or its
  JSON description) and scores it as the ablation does (DIR/runs/NAME/SEED_VIEW.json, each written
  when its view is done: an interrupted run resumes; a folder made with another POSE, meshes or
  code is refused). ``--meshes truth``: the ground-truth meshes at the retrieved poses instead, as
  in the ablation. 8.3 min with ``--jobs 2`` for the default stage.
- ``compare DIR A B`` prints the mean scores of the runs A and B over the views both finished, and
  B − A view by view with its 95 % bootstrap interval.

    python benchmarks/pose_development.py bases runs/dev --jobs 2
    python benchmarks/pose_development.py run runs/dev full learned_optimise --jobs 2
    python benchmarks/pose_development.py run runs/dev nophys \\
        '{"name": "learned_optimise", "config": {"use_physical": false}}' --jobs 2
    python benchmarks/pose_development.py compare runs/dev full nophys
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
from pathlib import Path

from reconstruct import (ABLATION_BASE, LAYOUT, mean_table, open_work, paired_table, pipeline,
                         pose_and_score, with_truth_meshes)
from retrieve_diagnosis import HELD_OUT_SEED
from sceneforge.engine_views import write_engine_view
from sceneforge.errors import SceneforgeError
from sceneforge.eval.sampling import DEFAULT_POINTS_PER_OBJECT
from sceneforge.io.atomic import write_bytes_atomic, write_text_atomic
from sceneforge.io.inputs import load_input
from sceneforge.registry import from_description
from sceneforge.workers import run_each

DEVELOPMENT_SEEDS = (201, 204, 205, 210, 211, 302)
VIEWS_PER_SEED = 12
COLUMNS = ("CD-S", "F-Score-S", "CD-O", "F-Score-O", "IoU-B", "F-Score-S@0.02", "interpenetration m³",
           "floating m", "pose s")


def view_names(seeds=DEVELOPMENT_SEEDS, views: int = VIEWS_PER_SEED) -> list[str]:
    """'SEED_VIEW' of every development view."""
    return [f"{seed}_{index}" for seed in seeds for index in range(views)]


def build_base(name: str, folder: Path, size: int) -> str:
    """Reconstruct the view ``name`` with the ablation's base method; cache it in ``folder``."""
    seed, index = map(int, name.split("_"))
    with tempfile.TemporaryDirectory() as tmp:
        view = write_engine_view(Path(tmp), seed=seed, index=index, size=size, layout=LAYOUT)
        scene_input = load_input(view.input_dir)
    result = pipeline(ABLATION_BASE).run(scene_input)
    write_bytes_atomic(folder / f"{name}.pkl", pickle.dumps({"base": result, "truth": view.ground_truth}))
    return name


def cached_base(name: str, folder: Path, size: int = 512):
    """(the ablation base's result, ground truth) of the view ``name``, cached in ``folder`` (built
    there first when missing)."""
    if not (folder / f"{name}.pkl").exists():
        build_base(name, folder, size)
    cached = pickle.loads((folder / f"{name}.pkl").read_bytes())
    return cached["base"], cached["truth"]


def pose_view(name: str, bases: Path, description, meshes: str, points: int) -> dict[str, float]:
    """The cached base ``name`` re-posed by ``description`` and scored (:func:`reconstruct.pose_and_score`)."""
    base, truth = cached_base(name, bases)
    objects, shapes = (list(base.scene.objects), base.shapes) if meshes == "shape" else \
        (with_truth_meshes(base.scene.objects, truth), {})
    return pose_and_score(base, objects, shapes, truth, description, points)


def load_run(folder: Path) -> dict[str, dict[str, float]]:
    """The finished views of a run: {view name: scores}."""
    if not (folder / "settings.json").exists():
        raise SceneforgeError(f"{folder}: no run there (make it with the 'run' command)")
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*_*.json"))}


def bases_command(args) -> int:
    if HELD_OUT_SEED in args.seeds:
        raise SceneforgeError(f"seed {HELD_OUT_SEED} is the held-out benchmark's: develop on other seeds")
    folder = args.dir / "bases"
    folder.mkdir(parents=True, exist_ok=True)
    todo = [n for n in view_names(args.seeds, args.views) if not (folder / f"{n}.pkl").exists()]
    print(f"{folder}: {len(todo)} view(s) to reconstruct", flush=True)
    run_each(build_base, todo, (folder, args.size), args.jobs, lambda name, _: print(f"base {name}", flush=True))
    return 0


def run_command(args) -> int:
    try:
        description = json.loads(args.pose) if args.pose.lstrip().startswith(("{", '"')) else args.pose
    except json.JSONDecodeError as exc:
        raise SceneforgeError(f"pose description {args.pose!r} is not valid JSON: {exc}") from exc
    from_description("pose", description)  # an unknown stage or setting stops here, before any view
    bases = args.dir / "bases"
    names = sorted(p.stem for p in bases.glob("*_*.pkl"))
    if not names:
        raise SceneforgeError(f"{bases}: no cached views (run the 'bases' command first)")
    work = args.dir / "runs" / args.name
    open_work(work, {"pose": description, "meshes": args.meshes, "points": args.points},
              "run name", Path(__file__))
    todo = [n for n in names if not (work / f"{n}.json").exists()]
    print(f"{work}: {len(names) - len(todo)} of {len(names)} view(s) already done", flush=True)

    def finished(name: str, row: dict) -> None:
        write_text_atomic(work / f"{name}.json", json.dumps(row, default=float))
        print(f"{name}: IoU-B {row['IoU-B']:.4f}, F-Score-S@0.02 {row['F-Score-S@0.02']:.2f}, "
              f"pose {row['pose s']:.1f} s", flush=True)

    run_each(pose_view, todo, (bases, description, args.meshes, args.points), args.jobs, finished)
    return 0


def compare_command(args) -> int:
    runs = {name: load_run(args.dir / "runs" / name) for name in (args.a, args.b)}
    shared = sorted(set(runs[args.a]) & set(runs[args.b]))
    if not shared:
        raise SceneforgeError(f"runs {args.a} and {args.b} share no finished view")
    rows = {name: [run[v] for v in shared] for name, run in runs.items()}
    print(f"{len(shared)} views\n\n{mean_table(rows, COLUMNS, first='run')}\n\n"
          f"{paired_table(rows, reference=args.a, columns=COLUMNS)}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    bases = commands.add_parser("bases", help="reconstruct and cache the development views")
    bases.add_argument("dir", type=Path)
    bases.add_argument("--seeds", type=int, nargs="+", default=list(DEVELOPMENT_SEEDS))
    bases.add_argument("--views", type=int, default=VIEWS_PER_SEED, help="views per seed (0..N-1)")
    bases.add_argument("--size", type=int, default=512)
    bases.add_argument("--jobs", type=int, default=1)
    run = commands.add_parser("run", help="re-pose the cached views with a pose stage and score them")
    run.add_argument("dir", type=Path)
    run.add_argument("name", help="the run's name (its folder under DIR/runs)")
    run.add_argument("pose", help="pose stage: a registry name or its JSON description")
    run.add_argument("--meshes", choices=("shape", "truth"), default="shape",
                     help="the shape stage's meshes (with its alternative shapes) or the ground truth's")
    run.add_argument("--points", type=int, default=DEFAULT_POINTS_PER_OBJECT)
    run.add_argument("--jobs", type=int, default=1)
    compare = commands.add_parser("compare", help="mean scores of two runs and their paired differences")
    compare.add_argument("dir", type=Path)
    compare.add_argument("a")
    compare.add_argument("b")
    args = parser.parse_args(argv)
    try:
        return {"bases": bases_command, "run": run_command, "compare": compare_command}[args.command](args)
    except SceneforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
