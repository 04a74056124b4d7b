"""Rotations in the continuous 6D representation (Zhou et al. 2019) through roma.

The 6D vector of a rotation matrix is its first two columns, ``[R[:, 0], R[:, 1]]`` (6,), and a 6D
vector is mapped back with Gram-Schmidt (``roma.special_gramschmidt``), so any 6D vector with two
independent halves gives a proper rotation.
"""

from __future__ import annotations

import torch


def _roma():
    try:
        import roma
    except ImportError as exc:
        from sceneforge.errors import MissingDependencyError
        raise MissingDependencyError("roma", extra="learn", purpose="6D rotations") from exc
    return roma


def matrix_to_6d(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 6): first column then second column."""
    return R[..., :, :2].transpose(-1, -2).reshape(*R.shape[:-2], 6)


def sixd_to_matrix(r6: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) rotation matrices (Gram-Schmidt of the two columns)."""
    columns = r6.reshape(*r6.shape[:-1], 2, 3).transpose(-1, -2)
    return _roma().special_gramschmidt(columns)


def geodesic_angle(R_a: torch.Tensor, R_b: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) x2 -> (...,) angle of ``R_a^T R_b`` in radians."""
    return _roma().rotmat_geodesic_distance(R_a, R_b)


def rotvec_to_matrix(w: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle vectors (radians) -> (..., 3, 3) rotation matrices."""
    return _roma().rotvec_to_rotmat(w)


def uniform_rotations(shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    """(*shape, 3, 3) rotations drawn uniformly on SO(3) (normalised Gaussian quaternions)."""
    q = torch.randn(*shape, 4, generator=generator)
    return _roma().unitquat_to_rotmat(q / q.norm(dim=-1, keepdim=True))
