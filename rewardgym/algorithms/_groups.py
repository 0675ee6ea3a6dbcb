"""Views of a step's rows as groups of samples of one prompt, and group statistics over the
scorable rows only.

Shapes: N rows = B prompts x G samples, rows of a group contiguous; T token positions.
"""

from __future__ import annotations

import torch

from rewardgym.core.errors import ConfigError

__all__ = ["as_groups", "group_mean", "row_tokens"]


def as_groups(
    rewards: torch.Tensor, scorable: torch.Tensor, group_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards and the scorable indicator as (B, G) float64 tensors (group statistics in double
    precision, so an all-equal group gives exactly 0 before any division); the reward of an
    unscorable row is replaced by 0 (it may be anything, even NaN, and is never used)."""
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ConfigError(f"group_size must be an int >= 1, got {group_size!r}.")
    if rewards.dim() != 1 or scorable.shape != rewards.shape:
        raise ConfigError(
            f"rewards and scorable must both have shape (N,), got {tuple(rewards.shape)} and "
            f"{tuple(scorable.shape)}."
        )
    if rewards.numel() % group_size:
        raise ConfigError(
            f"{rewards.numel()} rows cannot be split into groups of group_size={group_size}: "
            "N must be prompts x group_size, with the rows of a group contiguous."
        )
    m = scorable.reshape(-1, group_size).to(torch.float64)  # (B, G) 1 = scored
    r = rewards.reshape(-1, group_size).to(torch.float64)  # (B, G)
    r = torch.where(m > 0, r, torch.zeros_like(r))  # (B, G) unscorable rewards never leak
    return r, m


def group_mean(r: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean reward over each group's scorable rows, and their count; both (B, 1)."""
    n = m.sum(1, keepdim=True)  # (B, 1) scorable rows in the group
    mean = (r * m).sum(1, keepdim=True) / n.clamp(min=1)  # (B, 1)
    return mean, n


def row_tokens(per_row: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Broadcast a per-row value (N,) over the row's tokens, zero where the mask is 0; in the
    mask's float dtype (float32 for a bool mask)."""
    dtype = mask.dtype if mask.is_floating_point() else torch.float32
    return per_row.to(dtype)[:, None] * mask.to(dtype)  # (N, T)
