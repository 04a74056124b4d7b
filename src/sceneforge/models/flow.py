"""Rectified flow (flow matching with straight paths) and its Euler sampler.

Convention: ``t = 0`` is noise ``x0 ~ N(0, I)``, ``t = 1`` is data ``x1``. The path is
``x_t = (1 - t) x0 + t x1`` and its velocity ``v = x1 - x0`` does not depend on ``t``; a network
``v_theta(x_t, t)`` is regressed onto it, and samples are drawn by integrating
``dx/dt = v_theta(x, t)`` from ``t = 0`` to ``t = 1``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

TIME_SAMPLINGS = ("uniform", "logit_normal")


@dataclass(frozen=True, eq=False)
class FlowSample:
    """One training draw of the flow: noisy point, its time and the velocity to regress.

    x_t, velocity : (..., D) like the data.  t : (B,) in [0, 1].
    """

    x_t: torch.Tensor
    t: torch.Tensor
    velocity: torch.Tensor


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``(1 - t) x0 + t x1``; x0, x1 : (B, ...), t : (B,) broadcast over the trailing dimensions."""
    t = t.reshape(t.shape + (1,) * (x1.dim() - t.dim())).to(x1.dtype)
    return (1.0 - t) * x0 + t * x1


def velocity_target(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """The constant velocity of the straight path from x0 to x1: ``x1 - x0``."""
    return x1 - x0


def sample_times(batch: int, generator: torch.Generator | None = None, kind: str = "logit_normal",
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """(batch,) training times in (0, 1): uniform, or logit-normal (SD3; more weight mid-path)."""
    if kind == "uniform":
        return torch.rand(batch, generator=generator, device=device)
    if kind == "logit_normal":
        return torch.sigmoid(torch.randn(batch, generator=generator, device=device))
    raise ValueError(f"time sampling must be one of {', '.join(TIME_SAMPLINGS)}, got {kind!r}")


def flow_training_sample(x1: torch.Tensor, generator: torch.Generator | None = None,
                         time_sampling: str = "logit_normal") -> FlowSample:
    """Draw noise and times for data ``x1`` (B, ...) and return the noisy point and target velocity."""
    x0 = torch.randn(x1.shape, generator=generator, dtype=x1.dtype, device=x1.device)
    t = sample_times(x1.shape[0], generator, time_sampling, x1.device)
    return FlowSample(interpolate(x0, x1, t), t, velocity_target(x0, x1))


def euler_sample(velocity_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x0: torch.Tensor,
                 steps: int) -> torch.Tensor:
    """Integrate ``dx/dt = velocity_fn(x, t)`` from t = 0 (x0, (B, ...)) to t = 1 in ``steps`` Euler steps.

    ``velocity_fn`` receives x and t of shape (B,). A velocity that does not depend on x or t is
    integrated exactly: the result is ``x0 + v``.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    x = x0
    dt = 1.0 / steps
    for i in range(steps):
        t = torch.full((x.shape[0],), i * dt, dtype=x.dtype, device=x.device)
        x = x + dt * velocity_fn(x, t)
    return x
