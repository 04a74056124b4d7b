"""Same-process A/B of the synthetic engine: CPU per scene by stage, another checkout against this one.

On a machine shared with other jobs, the CPU time of a stage moves by more than one change between
two runs (the load, the other jobs' caches). Here both engines run in one process, on the same warm
scenes, in alternating batches (the order turned each round), so any drift hits both alike. The
other checkout's package is copied under another name (``sceneforge_other``, its import lines
rewritten), so both are imported side by side, each with its own asset pool and GL context. Each
batch calls ``build_scene_files`` (layout, render, encode; nothing is written) on scenes 0..N-1 of
the benchmark's settings (``synth_throughput.make_config``); the files of both engines are compared
first (format names aside, which carry the package name). Usage::

    PYTHONPATH=src python benchmarks/synth_ab_cpu.py --other /path/to/other/checkout --scenes 60 --rounds 10
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("LP_NUM_THREADS", "1")  # as in a worker process

from synth_throughput import make_config

OTHER = "sceneforge_other"
STAGES = ("layout", "render", "encode")
_IMPORT = re.compile(r"^(\s*)(from|import) sceneforge(?=[.\s])", re.MULTILINE)


def import_other(checkout: Path, into: Path) -> None:
    """Copy ``checkout``'s src/sceneforge to ``into``/sceneforge_other with its import lines rewritten,
    and put ``into`` on sys.path."""
    target = into / OTHER
    shutil.copytree(checkout / "src" / "sceneforge", target, ignore=shutil.ignore_patterns("__pycache__"))
    for path in target.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        text = _IMPORT.sub(lambda m: f"{m[1]}{m[2]} {OTHER}", text)
        text = re.sub(rf"^(\s*)import {OTHER}$", rf"\1import {OTHER} as sceneforge", text, flags=re.MULTILINE)
        path.write_text(text, encoding="utf-8")
    sys.path.insert(0, str(into))


def engine(package: str, kind: str, views: int, size: int, objects: int, seed: int) -> Callable[[int], Any]:
    """``index -> SceneFiles`` of ``package``'s engine for the benchmark's settings."""
    dataset = importlib.import_module(f"{package}.synth.dataset")
    rasterizer = importlib.import_module(f"{package}.render.rasterizer").Rasterizer()
    config = dataset.SynthConfig.from_dict(make_config(kind, views, size, objects, seed).to_dict())
    return lambda index: dataset.build_scene_files(index, config, rasterizer)


def same_files(a: Any, b: Any) -> bool:
    """The two SceneFiles hold the same files, bytes included (the package name in format fields aside)."""
    def norm(data: bytes) -> bytes:
        return data.replace(f'"{OTHER}.'.encode(), b'"sceneforge.')
    return a.files.keys() == b.files.keys() and all(norm(a.files[k]) == norm(b.files[k]) for k in a.files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", type=Path, required=True, help="the other checkout (its src/sceneforge is used)")
    parser.add_argument("--scenes", type=int, default=60, help="scenes per batch")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--objects", type=int, default=5)
    parser.add_argument("--kinds", nargs="+", default=["openset", "iscene"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print("| kind | engine | layout | render | encode | total | (CPU ms per scene: median / smallest over rounds) |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="synth-ab-") as tmp:
        import_other(args.other.resolve(), Path(tmp))
        for kind in args.kinds:
            engines = {name: engine(package, kind, args.views, args.size, args.objects, args.seed)
                       for name, package in (("other", OTHER), ("this", "sceneforge"))}
            warm = {name: [build(i) for i in range(args.scenes)] for name, build in engines.items()}  # pools built
            identical = all(same_files(a, b) for a, b in zip(warm["other"], warm["this"]))
            del warm
            gc.collect()
            ms: dict[str, dict[str, list[float]]] = {name: {k: [] for k in (*STAGES, "total")} for name in engines}
            for r in range(args.rounds):
                for name in (list(engines) if r % 2 == 0 else list(engines)[::-1]):
                    stages = dict.fromkeys(STAGES, 0.0)
                    start = time.process_time()
                    for i in range(args.scenes):
                        for stage, seconds in engines[name](i).cpu_seconds.items():
                            stages[stage] += seconds
                    stages["total"] = time.process_time() - start
                    for k, v in stages.items():
                        ms[name][k].append(1000 * v / args.scenes)
            for name, cols in ms.items():
                cells = [f"{sorted(v)[len(v) // 2]:.2f} / {min(v):.2f}" for v in cols.values()]
                print(f"| {kind} | {name} | " + " | ".join(cells) + f" | files identical: {identical} |", flush=True)
    print(f"{args.rounds} rounds of {args.scenes} warm scenes per engine and kind, {args.views} views at "
          f"{args.size}x{args.size}, {args.objects} objects; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
