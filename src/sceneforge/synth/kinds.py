"""The layout kinds of ``sceneforge synth``: adapters from the layout library to rendered scenes.

A kind is a function ``(layout_seed, options) -> SynthScene``. Built in:

- ``iscene``: :func:`sceneforge.synth.layouts.iscene_layout` (collision-free random layout, tables
  with stacked objects), plain ground and sky.
- ``openset``: :func:`sceneforge.synth.layouts.open_set_layout` (SceneMaker-style: 2-5 objects,
  random rotations, Perlin-noise ground texture, solid or gradient backdrop).

``options`` holds ``pool_seed`` (the dataset seed: which asset variants exist), optionally
``variants_per_category`` and ``categories`` for the :class:`~sceneforge.assets.AssetPool`, and any
field of the kind's layout config (ISceneConfig / OpenSetConfig), e.g. ``max_objects``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sceneforge.errors import InputError
from sceneforge.render.scene import Backdrop, Ground
from sceneforge.synth.views import SceneLook
from sceneforge.types import Scene

POOL_OPTIONS = ("pool_seed", "variants_per_category", "categories")


@dataclass(frozen=True, eq=False)
class SynthScene:
    """A ground-truth scene and how to draw what is not an object."""

    scene: Scene
    look: SceneLook = field(default_factory=SceneLook)


_POOLS: dict[tuple[Any, ...], Any] = {}
_STORE: dict[str, Path] = {}


def share_assets(store: str | Path | None) -> None:
    """Let this process's asset pools share built assets through ``store`` (a folder, or None for
    none), e.g. with the other worker processes of a run: ``AssetPool(store=...)``, each asset with
    its hull points and PLY bytes (:data:`~sceneforge.synth.meshmemo.ASSET_MEMOS`)."""
    _POOLS.clear()
    _STORE.clear()
    if store is not None:
        _STORE["path"] = Path(store)


def asset_pool(options: Mapping[str, Any]) -> Any:
    """The process's cached AssetPool for these pool options (assets are built once per process, or
    once per run with :func:`share_assets`)."""
    from sceneforge.assets import AssetPool
    from sceneforge.synth.meshmemo import ASSET_MEMOS

    categories = options.get("categories")
    key = (int(options.get("pool_seed", 0)), int(options.get("variants_per_category", 8)),
           None if categories is None else tuple(categories))
    if key not in _POOLS:
        _POOLS[key] = AssetPool(categories=key[2], variants_per_category=key[1], seed=key[0],
                                store=_STORE.get("path"), extras=ASSET_MEMOS)
    return _POOLS[key]


def pool_size(options: Mapping[str, Any]) -> int:
    """Number of procedural assets in the pool these options select (categories x variants)."""
    from sceneforge.assets import AssetPool

    categories = options.get("categories")
    pool = AssetPool(categories=None if categories is None else tuple(categories),
                     variants_per_category=int(options.get("variants_per_category", 8)))
    return len(pool.procedural_categories) * pool.variants_per_category


def build_pool(options: Mapping[str, Any], share: int = 0, shares: int = 1) -> int:
    """Build share ``share`` of ``shares`` of the procedural assets of this process's pool for
    ``options`` (every ``shares``-th asset in category-then-variant order, from the ``share``-th),
    with their hull points and PLY bytes; the other shares are left to other processes, which load
    them from the run's store (:func:`share_assets`). Returns how many assets the share holds."""
    from sceneforge.synth.meshmemo import ASSET_MEMOS

    if not 0 <= share < shares:
        raise InputError(None, f"share must be in [0, {shares - 1}], got {share!r}")
    pool = asset_pool(options)
    keys = [(c, k) for c in pool.procedural_categories for k in range(pool.variants_per_category)]
    for category, index in keys[share::shares]:
        asset = pool.get(category, index)
        if pool.store is None:  # with a store, the pool computed them while building it
            ASSET_MEMOS.compute(asset)
    return len(keys[share::shares])


def _layout_config(cls: type, options: Mapping[str, Any]) -> Any:
    fields = {k: v for k, v in options.items() if k not in POOL_OPTIONS}
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(fields) - known)
    if unknown:
        raise InputError(None, f"unknown layout options {unknown}; {cls.__name__} takes {', '.join(sorted(known))}")
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    return cls(**fields)


def look_of(layout: Any) -> SceneLook:
    """SceneLook from a Layout's GroundSpec (a textured square centred at the origin) and BackgroundSpec."""
    ground = None
    spec = layout.ground
    if spec is not None:
        half = 0.5 * float(spec.size)
        ground = Ground(centre_xz=np.zeros(2), half_extent=half, colour=tuple(np.asarray(spec.colour) / 255.0),
                        texture=spec.texture, tile_size=float(spec.size), texture_origin_xz=np.array([-half, -half]))
    background = layout.background
    if background is None:
        return SceneLook(ground=ground)
    a = tuple(np.asarray(background.colours[0], float) / 255.0)
    b = tuple(np.asarray(background.colours[-1], float) / 255.0)
    return SceneLook(ground=ground, environment=Backdrop(background.kind, a, b))


def iscene_kind(seed: int, options: Mapping[str, Any]) -> SynthScene:
    from sceneforge.synth.layouts import ISceneConfig, iscene_layout

    layout = iscene_layout(asset_pool(options), seed, _layout_config(ISceneConfig, options))
    return SynthScene(layout.scene, look_of(layout))


def openset_kind(seed: int, options: Mapping[str, Any]) -> SynthScene:
    from sceneforge.synth.layouts import OpenSetConfig, open_set_layout

    layout = open_set_layout(asset_pool(options), seed, _layout_config(OpenSetConfig, options))
    return SynthScene(layout.scene, look_of(layout))


KINDS: dict[str, Callable[[int, Mapping[str, Any]], SynthScene]] = {"iscene": iscene_kind, "openset": openset_kind}
