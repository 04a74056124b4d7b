"""SceneMaker's pose model: a flow-matching transformer over per-object token quadruples.

Each object is four tokens: rotation (R), translation (T), scale (S) and geometry (G). A block runs

1. local self-attention inside each object's quadruple (switch ``local_self_attention``);
2. global self-attention over all tokens of all objects of the scene (``global_self_attention``);
   padded objects are masked out as keys;
3. decoupled cross-attention: R tokens attend to the object's own *local* context (its crop tokens,
   its normalised observed points and, with ``rotation_sees_geometry``, the local tokens of its
   canonical mesh, so rotation can be read by matching the two), T and S tokens to the *scene* context (whole-image tokens
   and scene point tokens). With ``local_cross_attention=False`` (the "w/o LCA" ablation) R tokens
   attend to the scene context like T and S. G tokens take no cross-attention;
4. an MLP;

each sub-layer pre-normalised and modulated by the flow time (DiT adaLN-zero). There is no learned
per-object slot position, so the model is equivariant to the order of the objects and takes any
object count. Poses are the 10-vector ``[r6 (6), T (3), log S (1)]`` in the observed view-centric
frame (see data.py), scaled by ``POSE_SCALE`` so each part has unit-order spread.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from sceneforge.models.encoders import Dinov2Adapter, GeometryEncoder, ImageEncoder, PointTokenEncoder, mlp

POSE_DIM = 10
ROTATION_SLICE = slice(0, 6)
TRANSLATION_SLICE = slice(6, 9)
SCALE_SLICE = slice(9, 10)
OBSERVATION_DIM = 14
IMAGE_ENCODERS = ("cnn", "dinov2")


@dataclass(frozen=True)
class PoseModelConfig:
    """Hyper-parameters of :class:`PoseModel` (saved as JSON next to the weights)."""

    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    local_self_attention: bool = True
    global_self_attention: bool = True
    local_cross_attention: bool = True
    rotation_sees_geometry: bool = True
    image_encoder: str = "cnn"
    dinov2_dir: str | None = None
    image_channels: int = 4
    crop_channels: int = 4
    cnn_width: int = 32
    scene_point_centres: int = 64
    object_point_centres: int = 16
    geometry_point_centres: int = 16

    def __post_init__(self) -> None:
        if self.image_encoder not in IMAGE_ENCODERS:
            raise ValueError(f"image_encoder must be one of {', '.join(IMAGE_ENCODERS)}, got {self.image_encoder!r}")
        if self.image_encoder == "dinov2" and not self.dinov2_dir:
            raise ValueError("image_encoder 'dinov2' needs dinov2_dir (a local save_pretrained folder)")
        if self.dim % self.heads or self.dim % 4:
            raise ValueError(f"dim must be divisible by heads and by 4, got dim={self.dim}, heads={self.heads}")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PoseModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown pose model settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)


@dataclass(frozen=True, eq=False)
class PoseConditions:
    """What the model is conditioned on, for B scenes padded to N objects.

    scene_image : (B, C, H, W) RGB in [0, 1] + normalised depth.  scene_points : (B, Ps, 3) observed
    points of the whole view in the normalised frame, scene_points_valid : (B, Ps) bool.
    crops : (B, N, Cc, h, w) per-object crop (RGB + own mask).  object_points : (B, N, P, 3)
    observed points of each object, centred on their box and divided by its largest side.
    observations : (B, N, OBSERVATION_DIM) per-object summary (box of observed points in the
    normalised frame, centroid, 2D box, pixel fraction).  mesh_points : (B, N, M, 3) samples of the
    unit-normalised canonical mesh.  object_mask : (B, N) bool, True for real objects.
    """

    scene_image: torch.Tensor
    scene_points: torch.Tensor
    scene_points_valid: torch.Tensor
    crops: torch.Tensor
    object_points: torch.Tensor
    observations: torch.Tensor
    mesh_points: torch.Tensor
    object_mask: torch.Tensor

    def repeat(self, k: int) -> PoseConditions:
        """Each scene repeated k times along the batch (scene b -> rows b*k .. b*k + k - 1)."""
        return PoseConditions(**{f.name: getattr(self, f.name).repeat_interleave(k, dim=0) for f in fields(self)})

    def to(self, device: torch.device | str) -> PoseConditions:
        return PoseConditions(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


@dataclass(frozen=True, eq=False)
class EncodedConditions:
    """Condition tokens computed once per scene and reused at every flow step.

    scene_tokens : (B, Ls, D), scene_valid : (B, Ls).  local_tokens : (B*N, Lc, D),
    local_valid : (B*N, Lc).  object_embedding : (B, N, D) geometry + observation.  object_mask : (B, N).
    """

    scene_tokens: torch.Tensor
    scene_valid: torch.Tensor
    local_tokens: torch.Tensor
    local_valid: torch.Tensor
    geometry: torch.Tensor
    observation: torch.Tensor
    object_mask: torch.Tensor

    def repeat(self, k: int) -> EncodedConditions:
        """Each scene repeated k times along the batch (the local tokens by blocks of N objects)."""
        B, N = self.object_mask.shape

        def rep_local(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(B, N, *x.shape[1:]).repeat_interleave(k, dim=0).reshape(B * k * N, *x.shape[1:])

        return EncodedConditions(self.scene_tokens.repeat_interleave(k, 0), self.scene_valid.repeat_interleave(k, 0),
                                 rep_local(self.local_tokens), rep_local(self.local_valid),
                                 self.geometry.repeat_interleave(k, 0), self.observation.repeat_interleave(k, 0),
                                 self.object_mask.repeat_interleave(k, 0))


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) times in [0, 1] -> (B, dim) sinusoidal features."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = (t.float() * 1000.0)[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1.0 + scale) + shift


class _Attention(nn.Module):
    """Multi-head attention with pre-LayerNorm, adaLN modulation and a zero-initialised gate."""

    def __init__(self, dim: int, heads: int, cross: bool):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.context_norm = nn.LayerNorm(dim) if cross else None
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, gate: torch.Tensor,
                context: torch.Tensor | None = None, context_valid: torch.Tensor | None = None) -> torch.Tensor:
        q = _modulate(self.norm(x), shift, scale)
        kv = q if self.context_norm is None else self.context_norm(context)
        pad = None if context_valid is None else ~context_valid
        out, _ = self.attn(q, kv, kv, key_padding_mask=pad, need_weights=False)
        return x + gate * out


class PoseBlock(nn.Module):
    """One transformer block (local SA, global SA, decoupled cross-attention, MLP); see the module doc."""

    def __init__(self, config: PoseModelConfig):
        super().__init__()
        D, H = config.dim, config.heads
        self.config = config
        self.local_sa = _Attention(D, H, cross=False) if config.local_self_attention else None
        self.global_sa = _Attention(D, H, cross=False) if config.global_self_attention else None
        self.local_ca = _Attention(D, H, cross=True) if config.local_cross_attention else None
        self.scene_ca = _Attention(D, H, cross=True)
        self.mlp_norm = nn.LayerNorm(D, elementwise_affine=False)
        self.mlp = mlp([D, int(D * config.mlp_ratio), D])
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 5 * 3 * D))
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: torch.Tensor, time: torch.Tensor, cond: EncodedConditions) -> torch.Tensor:
        """x : (B, N, 4, D) tokens ordered (R, T, S, G); time : (B, D)."""
        B, N, Q, D = x.shape
        mods = self.modulation(time)[:, None, None].chunk(15, dim=-1)   # each (B, 1, 1, D)
        if self.local_sa is not None:
            flat = x.reshape(B * N, Q, D)
            m = [v.repeat_interleave(N, 0).squeeze(1) for v in mods[0:3]]
            x = self.local_sa(flat, *m).reshape(B, N, Q, D)
        if self.global_sa is not None:
            keys_valid = cond.object_mask[:, :, None].expand(B, N, Q).reshape(B, N * Q)
            flat = x.reshape(B, N * Q, D)
            m = [v.squeeze(1) for v in mods[3:6]]
            x = self.global_sa(flat, *m, context=None, context_valid=keys_valid).reshape(B, N, Q, D)
        x = self._cross_attention(x, mods[6:12], cond)
        shift, scale, gate = mods[12:15]
        return x + gate * self.mlp(_modulate(self.mlp_norm(x), shift, scale))

    def _cross_attention(self, x: torch.Tensor, mods: tuple[torch.Tensor, ...], cond: EncodedConditions) -> torch.Tensor:
        B, N, _, D = x.shape
        rot, rest = x[:, :, :1], x[:, :, 1:3]
        scene_m = [v.squeeze(1) for v in mods[3:6]]                           # (B, 1, D)
        if self.local_ca is not None:
            local_m = [v.repeat_interleave(N, 0).squeeze(1) for v in mods[0:3]]  # (B*N, 1, D)
            rot = self.local_ca(rot.reshape(B * N, 1, D), *local_m, context=cond.local_tokens,
                                context_valid=cond.local_valid).reshape(B, N, 1, D)
            rest = self.scene_ca(rest.reshape(B, N * 2, D), *scene_m, context=cond.scene_tokens,
                                 context_valid=cond.scene_valid).reshape(B, N, 2, D)
        else:
            both = self.scene_ca(x[:, :, :3].reshape(B, N * 3, D), *scene_m, context=cond.scene_tokens,
                                 context_valid=cond.scene_valid).reshape(B, N, 3, D)
            rot, rest = both[:, :, :1], both[:, :, 1:3]
        return torch.cat([rot, rest, x[:, :, 3:]], dim=2)


class PoseModel(nn.Module):
    """Velocity network ``v(x_t, t | conditions)`` for poses x of shape (B, N, POSE_DIM)."""

    def __init__(self, config: PoseModelConfig | None = None):
        super().__init__()
        self.config = config = config or PoseModelConfig()
        D = config.dim
        # without local cross-attention nothing reads the crops or the normalised object points, so
        # their encoders are not built (every parameter then takes part in the loss, as DDP requires)
        local = config.local_cross_attention
        self.crop_encoder: nn.Module | None
        if config.image_encoder == "dinov2":
            self.image_encoder: nn.Module = Dinov2Adapter(config.dinov2_dir, D)
            self.crop_encoder = self.image_encoder if local else None
        else:
            self.image_encoder = ImageEncoder(config.image_channels, D, config.cnn_width)
            self.crop_encoder = ImageEncoder(config.crop_channels, D, config.cnn_width) if local else None
        self.scene_point_encoder = PointTokenEncoder(D, centres=config.scene_point_centres)
        self.object_point_encoder = PointTokenEncoder(D, centres=config.object_point_centres) if local else None
        self.geometry_encoder = GeometryEncoder(D, centres=config.geometry_point_centres)
        self.observation_encoder = mlp([OBSERVATION_DIM, D, D])
        # scene image, scene points, crop, object points, canonical-mesh tokens
        self.modality = nn.Parameter(torch.zeros(5, D))
        self.token_type = nn.Parameter(torch.zeros(4, D))        # R, T, S, G
        nn.init.normal_(self.modality, std=0.02)
        nn.init.normal_(self.token_type, std=0.02)
        self.rotation_in = nn.Linear(6, D)
        self.translation_in = nn.Linear(3, D)
        self.scale_in = nn.Linear(1, D)
        self.time_mlp = mlp([D, D, D])
        self.blocks = nn.ModuleList(PoseBlock(config) for _ in range(config.depth))
        self.out_norm = nn.LayerNorm(D, elementwise_affine=False)
        self.out_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 2 * D))
        self.rotation_out = nn.Linear(D, 6)
        self.translation_out = nn.Linear(D, 3)
        self.scale_out = nn.Linear(D, 1)
        for layer in (self.out_modulation[1], self.rotation_out, self.translation_out, self.scale_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def encode(self, cond: PoseConditions) -> EncodedConditions:
        """Condition tokens (independent of the flow state)."""
        B, N = cond.object_mask.shape
        image_tokens = self.image_encoder(cond.scene_image) + self.modality[0]
        point_tokens, point_valid = self.scene_point_encoder(cond.scene_points, cond.scene_points_valid)
        scene_tokens = torch.cat([image_tokens, point_tokens + self.modality[1]], dim=1)
        scene_valid = torch.cat([torch.ones(image_tokens.shape[:2], dtype=torch.bool, device=image_tokens.device),
                                 point_valid], dim=1)
        mesh_tokens = self.geometry_encoder.local_tokens(cond.mesh_points.flatten(0, 1))
        device = mesh_tokens.device
        parts = [mesh_tokens[:, :0]]
        valid = [torch.ones(B * N, 0, dtype=torch.bool, device=device)]
        if self.crop_encoder is not None and self.object_point_encoder is not None:
            crop_tokens = self.crop_encoder(cond.crops.flatten(0, 1)) + self.modality[2]
            obj_tokens, obj_valid = self.object_point_encoder(cond.object_points.flatten(0, 1))
            parts += [crop_tokens, obj_tokens + self.modality[3]]
            valid += [torch.ones(crop_tokens.shape[:2], dtype=torch.bool, device=device), obj_valid]
            if self.config.rotation_sees_geometry:
                parts.append(mesh_tokens + self.modality[4])
                valid.append(torch.ones(mesh_tokens.shape[:2], dtype=torch.bool, device=device))
        local_tokens, local_valid = torch.cat(parts, dim=1), torch.cat(valid, dim=1)
        geometry = self.geometry_encoder.pool_tokens(mesh_tokens).reshape(B, N, -1)
        observation = self.observation_encoder(cond.observations)
        return EncodedConditions(scene_tokens, scene_valid, local_tokens, local_valid, geometry, observation,
                                 cond.object_mask)

    def velocity(self, x_t: torch.Tensor, t: torch.Tensor, enc: EncodedConditions) -> torch.Tensor:
        """x_t : (B, N, POSE_DIM), t : (B,) -> (B, N, POSE_DIM) predicted velocity (0 on padded objects)."""
        time = self.time_mlp(timestep_embedding(t, self.config.dim))
        obs = enc.observation
        tokens = torch.stack([
            self.rotation_in(x_t[..., ROTATION_SLICE]) + obs,
            self.translation_in(x_t[..., TRANSLATION_SLICE]) + obs,
            self.scale_in(x_t[..., SCALE_SLICE]) + obs,
            enc.geometry + obs,
        ], dim=2) + self.token_type
        for block in self.blocks:
            tokens = block(tokens, time, enc)
        shift, scale = self.out_modulation(time)[:, None, None].chunk(2, dim=-1)
        tokens = _modulate(self.out_norm(tokens), shift, scale)
        out = torch.cat([self.rotation_out(tokens[:, :, 0]), self.translation_out(tokens[:, :, 1]),
                         self.scale_out(tokens[:, :, 2])], dim=-1)
        return out * enc.object_mask[..., None].to(out.dtype)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: PoseConditions) -> torch.Tensor:
        return self.velocity(x_t, t, self.encode(cond))
