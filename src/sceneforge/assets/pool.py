"""AssetPool: a bounded, cached set of assets to draw layouts from.

Variant ``k`` of procedural category ``c`` is ``generate_asset(c, seed_for(seed, c, k))``, built on
first use and kept; drawing an asset is then only an index draw, so a layout costs no mesh
building after warm-up, and a renderer can key GPU buffers by ``asset.key``. Pools in several
processes can share what they build through a ``store`` folder (one pickle per asset): a process
loads an asset another one built (~0.05 ms) instead of building it again (~1.6 ms), together with the
values derived from it that the builder stored with it (:class:`StoreExtras`). User assets (from
:func:`load_user_assets`) join the pool under their category. Tags of user categories: the
procedural category's tags when the name matches one, else ``floor``, plus ``stackable`` when the
asset's largest side is under 0.5 m.
"""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sceneforge.assets.base import Asset
from sceneforge.assets.procedural import CATEGORIES, REGISTRY, generate_asset
from sceneforge.errors import InputError
from sceneforge.io.atomic import write_bytes_atomic

TAGS = ("floor", "stackable", "support")


def variant_seed(pool_seed: int, category: str, index: int) -> int:
    """Stable int seed of variant ``index`` of ``category`` in a pool seeded with ``pool_seed``."""
    state = np.random.SeedSequence([int(pool_seed), zlib.crc32(category.encode()), int(index)]).generate_state(2)
    return int(state[0]) << 32 | int(state[1])


@dataclass(frozen=True)
class StoreExtras:
    """Values derived from a procedural asset that travel with it through a pool's store, so that a
    process loading the asset need not derive them again (e.g. the engine's per-mesh memos).

    compute(asset) : called on each asset the pool builds, before it is stored; a picklable value.
    restore(asset, value) : called on each asset loaded from the store with the value stored with it.
    """

    compute: Callable[[Asset], Any]
    restore: Callable[[Asset, Any], None]


class AssetPool:
    """Procedural categories (``variants_per_category`` each, lazily built) plus user assets.

    categories : procedural category names to include (default: all of :data:`CATEGORIES`).
    variants_per_category : how many distinct procedural assets per category (>= 1).
    seed : pool seed; the same seed gives the same assets.
    user_assets : extra assets, grouped by their ``category``.
    store : a folder shared with pools in other processes (e.g. the workers of one run, which trust
        each other's pickles): a procedural asset is loaded from it when there (files are named by
        category and variant seed, so pools of any settings can share one), else built and written
        to it atomically. None = build every asset in this process.
    extras : values stored with each asset built here and restored with each asset loaded from
        ``store`` (:class:`StoreExtras`); None = none.
    """

    def __init__(self, categories: Iterable[str] | None = None, variants_per_category: int = 8, seed: int = 0,
                 user_assets: Sequence[Asset] = (), store: str | Path | None = None,
                 extras: StoreExtras | None = None):
        names = tuple(CATEGORIES if categories is None else categories)
        unknown = [c for c in names if c not in REGISTRY]
        if unknown:
            raise InputError(None, f"unknown asset categories {unknown}; categories are {', '.join(CATEGORIES)}")
        if isinstance(variants_per_category, bool) or not isinstance(variants_per_category, int) or variants_per_category < 1:
            raise InputError(None, f"variants_per_category must be an integer >= 1, got {variants_per_category!r}")
        self.procedural_categories = names
        self.variants_per_category = variants_per_category
        self.seed = int(seed)
        self.store = None if store is None else Path(store)
        self.extras = extras
        self._cache: dict[tuple[str, int], Asset] = {}
        self._user: dict[str, list[Asset]] = {}
        for asset in user_assets:
            self._user.setdefault(asset.category, []).append(asset)
        if not names and not self._user:
            raise InputError(None, "the asset pool is empty: give at least one category or user asset")

    @property
    def categories(self) -> tuple[str, ...]:
        """Every category in the pool, procedural first, then user categories (sorted)."""
        extra = sorted(c for c in self._user if c not in self.procedural_categories)
        return self.procedural_categories + tuple(extra)

    def tags(self, category: str) -> frozenset[str]:
        if category in REGISTRY:
            return REGISTRY[category].tags
        assets = self._user.get(category, [])
        small = bool(assets) and max(float(np.max(a.extents)) for a in assets) < 0.5
        return frozenset({"floor", "stackable"} if small else {"floor"})

    def categories_with_tag(self, tag: str) -> tuple[str, ...]:
        if tag not in TAGS:
            raise InputError(None, f"unknown category tag {tag!r}; allowed: {', '.join(TAGS)}")
        return tuple(c for c in self.categories if tag in self.tags(c))

    def count(self, category: str) -> int:
        """Number of assets available in ``category``."""
        n_proc = self.variants_per_category if category in self.procedural_categories else 0
        return n_proc + len(self._user.get(category, []))

    def get(self, category: str, index: int) -> Asset:
        """Asset ``index`` of ``category``: procedural variants first, then user assets."""
        n = self.count(category)
        if n == 0:
            raise InputError(None, f"category {category!r} is not in the pool; categories are {', '.join(self.categories)}")
        if not 0 <= index < n:
            raise InputError(None, f"asset index {index} out of range [0, {n - 1}] for {category!r}")
        if category in self.procedural_categories and index < self.variants_per_category:
            key = (category, index)
            if key not in self._cache:
                self._cache[key] = self._procedural(category, variant_seed(self.seed, category, index))
            return self._cache[key]
        offset = self.variants_per_category if category in self.procedural_categories else 0
        return self._user[category][index - offset]

    def _procedural(self, category: str, seed: int) -> Asset:
        """generate_asset(category, seed), through the store when there is one. A stored file holds
        ``(asset, extras value or None)``."""
        if self.store is None:
            return generate_asset(category, seed)
        path = self.store / f"{category}-{seed}.pkl"
        try:
            asset, extra = pickle.loads(path.read_bytes())
        except FileNotFoundError:
            asset = generate_asset(category, seed)
            extra = None if self.extras is None else self.extras.compute(asset)
            write_bytes_atomic(path, pickle.dumps((asset, extra), protocol=pickle.HIGHEST_PROTOCOL))
        else:
            if self.extras is not None and extra is not None:
                self.extras.restore(asset, extra)
        return asset

    def sample(self, rng: np.random.Generator, categories: Sequence[str] | None = None) -> Asset:
        """One asset: a uniform category from ``categories`` (default: all), then a uniform variant."""
        names = tuple(self.categories if categories is None else categories)
        if not names:
            raise InputError(None, "no category to sample from")
        category = names[int(rng.integers(len(names)))]
        return self.get(category, int(rng.integers(self.count(category))))
