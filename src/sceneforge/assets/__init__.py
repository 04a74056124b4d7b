"""Asset library: procedural everyday objects and furniture, and user mesh folders.

Public API (stable; the synthetic engine's layouts, renderer and dataset writer build on it):

- :class:`Asset` -- canonical mesh (metres; box centred at origin, y up, front +z) with per-face
  colours in ``mesh.visual.face_colors``, per-face ``part_ids`` into ``part_names``, ``category``,
  JSON-able ``params``, ``size_prior`` (:class:`SizePrior`), a unique ``key`` and ``source``.
- :func:`generate_asset` ``(category, seed, **overrides) -> Asset`` and :data:`CATEGORIES`,
  :data:`REGISTRY`, :func:`categories_with_tag` (``"floor"``, ``"stackable"``, ``"support"``),
  :func:`size_prior`.
- :func:`load_user_assets` ``(root) -> UserAssetLibrary`` (assets + skipped files).
- :class:`AssetPool` -- a small cache that samples assets per category from a seed, so layouts
  reuse a bounded set of meshes (and a renderer can cache their GPU buffers by ``asset.key``).
"""

from sceneforge.assets.base import Asset, Part, SizePrior
from sceneforge.assets.pool import AssetPool
from sceneforge.assets.procedural import (
    CATEGORIES, REGISTRY, CategorySpec, categories_with_tag, generate_asset, size_prior)
from sceneforge.assets.user_folder import (
    SkippedFile, UserAssetLibrary, UserAssetWarning, canonical_user_asset, load_user_assets)

__all__ = [
    "Asset", "AssetPool", "CATEGORIES", "CategorySpec", "Part", "REGISTRY", "SizePrior", "SkippedFile",
    "UserAssetLibrary", "UserAssetWarning", "canonical_user_asset", "categories_with_tag", "generate_asset",
    "load_user_assets", "size_prior",
]
