"""Condition encoders of the pose model, all producing tokens of width ``dim``.

- :class:`PointTokenEncoder`: a point cloud -> a few local tokens (PointNet++-style set abstraction:
  centres, k nearest neighbours, a shared MLP on relative coordinates, max pooling).
- :class:`GeometryEncoder`: points sampled on an object's canonical mesh -> one geometry token.
- :class:`ImageEncoder`: a small CNN trained from scratch -> a grid of tokens with fixed 2D
  sinusoidal positions (image positions, not object slots).
- :class:`Dinov2Adapter`: optional frozen DINOv2 loaded from a local directory through transformers,
  with a trainable projection to ``dim``.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import torch
from torch import nn

from sceneforge.errors import InputError, MissingDependencyError


def mlp(widths: list[int], final_activation: bool = False) -> nn.Sequential:
    """Linear + GELU stack over the last dimension."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2 or final_activation:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


def fourier_features(x: torch.Tensor, bands: int) -> torch.Tensor:
    """(..., C) -> (..., C * (1 + 2 * bands)): x with sin/cos at frequencies pi * 2^k."""
    freqs = math.pi * (2.0 ** torch.arange(bands, dtype=x.dtype, device=x.device))
    angles = x[..., None] * freqs
    return torch.cat([x, angles.sin().flatten(-2), angles.cos().flatten(-2)], dim=-1)


class PointTokenEncoder(nn.Module):
    """(B, P, 3) points (+ (B, P) bool validity) -> (B, centres, dim) tokens and (B, centres) validity.

    The first ``centres`` points are the centres (the data pipeline shuffles the points, so they are
    a uniform random subset); each centre groups its ``neighbours`` nearest valid points.
    """

    def __init__(self, dim: int, centres: int = 32, neighbours: int = 16, hidden: int = 64, bands: int = 4):
        super().__init__()
        self.centres, self.neighbours, self.bands = centres, neighbours, bands
        self.local = mlp([3 * (1 + 2 * bands), hidden, hidden * 2], final_activation=True)
        self.position = mlp([3 * (1 + 2 * bands), hidden * 2])
        self.out = mlp([hidden * 2, dim, dim])

    def forward(self, points: torch.Tensor, valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        B, P, _ = points.shape
        if valid is None:
            valid = torch.ones(B, P, dtype=torch.bool, device=points.device)
        c = min(self.centres, P)
        k = min(self.neighbours, P)
        centres = points[:, :c]
        dist = torch.cdist(centres, points)
        dist = dist.masked_fill(~valid[:, None, :], float("inf"))
        idx = dist.topk(k, dim=-1, largest=False).indices                        # (B, c, k)
        grouped = torch.gather(points[:, None].expand(B, c, P, 3), 2, idx[..., None].expand(B, c, k, 3))
        group_valid = torch.gather(valid[:, None].expand(B, c, P), 2, idx)
        feats = self.local(fourier_features((grouped - centres[:, :, None]) * 4.0, self.bands))
        feats = feats.masked_fill(~group_valid[..., None], float("-inf")).amax(dim=2)
        feats = torch.nan_to_num(feats, neginf=0.0)
        tokens = self.out(feats + self.position(fourier_features(centres, self.bands)))
        return tokens, valid[:, :c]


class GeometryEncoder(nn.Module):
    """(B, M, 3) points on a unit-normalised canonical mesh -> (B, dim) geometry embedding."""

    def __init__(self, dim: int, centres: int = 16, neighbours: int = 16):
        super().__init__()
        self.tokens = PointTokenEncoder(dim, centres=centres, neighbours=neighbours)
        self.pool = mlp([2 * dim, dim, dim])

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.pool_tokens(self.local_tokens(points))

    def local_tokens(self, points: torch.Tensor) -> torch.Tensor:
        """(B, M, 3) -> (B, centres, dim) local shape tokens (before pooling)."""
        return self.tokens(points)[0]

    def pool_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, centres, dim) -> (B, dim) one geometry embedding (max and mean pooled, then an MLP)."""
        return self.pool(torch.cat([tokens.amax(dim=1), tokens.mean(dim=1)], dim=-1))


def sincos_2d(height: int, width: int, dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(height * width, dim) fixed 2D sinusoidal positions (half the channels for y, half for x)."""
    quarter = dim // 4
    freqs = 1.0 / (100.0 ** (torch.arange(quarter, device=device) / max(quarter, 1)))
    ys = torch.linspace(-1.0, 1.0, height, device=device)[:, None].expand(height, width).reshape(-1)
    xs = torch.linspace(-1.0, 1.0, width, device=device)[None, :].expand(height, width).reshape(-1)
    parts = [f(v[:, None] * freqs * math.pi * 8.0) for v in (ys, xs) for f in (torch.sin, torch.cos)]
    out = torch.cat(parts, dim=-1)
    return nn.functional.pad(out, (0, dim - out.shape[-1]))


class ImageEncoder(nn.Module):
    """Small CNN from scratch: (B, C, H, W) -> (B, H/8 * W/8, dim) tokens with 2D positions.

    Three stride-2 stages (GroupNorm + GELU); H and W must be multiples of 8.
    """

    def __init__(self, in_channels: int, dim: int, width: int = 32):
        super().__init__()

        def stage(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(a, b, 3, stride=2, padding=1), nn.GroupNorm(8, b), nn.GELU(),
                                 nn.Conv2d(b, b, 3, padding=1), nn.GroupNorm(8, b), nn.GELU())

        self.net = nn.Sequential(stage(in_channels, width), stage(width, width * 2), stage(width * 2, width * 4),
                                 nn.Conv2d(width * 4, dim, 1))
        self.dim = dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] % 8 or images.shape[-2] % 8:
            raise ValueError(f"image size must be a multiple of 8, got {tuple(images.shape[-2:])}")
        feats = self.net(images)
        _, D, h, w = feats.shape
        return feats.flatten(2).transpose(1, 2) + sincos_2d(h, w, D, images.device)


def _transformers():
    try:
        import transformers
    except ImportError as exc:
        raise MissingDependencyError("transformers", extra="dinov2", purpose="the DINOv2 image adapter") from exc
    return transformers


class Dinov2Adapter(nn.Module):
    """A pretrained DINOv2 (frozen) from a local directory + a trainable projection to ``dim``.

    (B, 3, H, W) RGB in [0, 1] -> (B, 1 + patches, dim) tokens (CLS + patch tokens), ImageNet
    normalisation applied inside. H and W must be multiples of the model's patch size.
    ``model_dir`` is a folder written by ``Dinov2Model.save_pretrained`` (config.json + weights);
    nothing is downloaded.
    """

    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)

    def __init__(self, model_dir: str | Path, dim: int, trainable: bool = False):
        super().__init__()
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise InputError(model_dir, "no DINOv2 model here (config.json missing); give a folder written by "
                                        "save_pretrained")
        transformers = _transformers()
        self.backbone = transformers.Dinov2Model.from_pretrained(str(model_dir), local_files_only=True)
        self.backbone.requires_grad_(trainable)
        self.patch_size = int(self.backbone.config.patch_size)
        self.proj = nn.Linear(int(self.backbone.config.hidden_size), dim)
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] % self.patch_size or images.shape[-2] % self.patch_size:
            raise ValueError(f"image size must be a multiple of the patch size {self.patch_size}, "
                             f"got {tuple(images.shape[-2:])}")
        hidden = self.backbone(pixel_values=(images[:, :3] - self.mean) / self.std).last_hidden_state
        return self.proj(hidden)
