"""GRPO (Shao et al. 2024, DeepSeekMath): the group of G samples of a prompt is its own baseline.

Shapes: N rows = B prompts x G samples (rows of a group contiguous); T completion tokens.

    A_i = (r_i - mean_g(r)) / (std_g(r) + eps)          for every token of sample i

with mean and std over the group's scorable samples only. The std is the unbiased one (divides
by n - 1), as in TRL's GRPOTrainer and the public GRPO implementations, so that runs compare
with theirs; it is defined only for n >= 2, and a group with fewer than 2 scorable samples has
no baseline to compare against, so its advantages are 0. The loss is PPO-clip with an optional
k3 KL to the reference in the loss, averaged per sequence, then over sequences (``seq_mean``,
the paper's 1/G sum_i 1/|o_i| sum_t).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rewardgym.algorithms._checks import check_bool, check_clip, check_fields, check_number
from rewardgym.algorithms._groups import as_groups, group_mean, row_tokens
from rewardgym.algorithms._policy_loss import Aggregation
from rewardgym.algorithms.base import PolicyGradient

__all__ = ["GRPO", "GRPOConfig", "group_advantages"]


@dataclass(frozen=True)
class GRPOConfig:
    """Params of ``grpo``.

    clip_eps: PPO clip range below 1 (and above, unless clip_eps_high is set).
    clip_eps_high: clip range above 1 (DAPO's clip-higher, e.g. 0.28); None = clip_eps.
    kl_coef: weight of the k3 KL to the reference model in the loss; 0 = no reference model.
    scale_by_std: divide by the group's reward std (False: r - mean only).
    std_eps: added to the std, so an all-equal group gives 0 rather than 0/0.
    aggregation: "seq_mean" (paper), "token_mean" (DAPO) or "constant" (Dr.GRPO).
    """

    clip_eps: float = 0.2
    clip_eps_high: float | None = None
    kl_coef: float = 0.0
    scale_by_std: bool = True
    std_eps: float = 1e-4
    aggregation: Aggregation = "seq_mean"

    def __post_init__(self) -> None:
        check_clip("grpo", self.clip_eps, self.clip_eps_high, self.kl_coef)
        check_bool("grpo", "scale_by_std", self.scale_by_std)
        check_number("grpo", "std_eps", self.std_eps, low=0, low_open=True, example=1e-4)
        check_fields("grpo", self)  # the Literal choices, by the run config's validator


def group_advantages(
    rewards: torch.Tensor,
    scorable: torch.Tensor,
    group_size: int,
    scale_by_std: bool = True,
    eps: float = 1e-4,
) -> torch.Tensor:
    """One advantage per row (N,): (r - group mean) / (group std + eps), or r - group mean
    without ``scale_by_std``; mean and unbiased std over the group's scorable rows; 0 on
    unscorable rows and in groups with fewer than 2 scorable rows."""
    r, m = as_groups(rewards, scorable, group_size)  # (B, G), (B, G)
    mean, n = group_mean(r, m)  # (B, 1), (B, 1)
    adv = (r - mean) * m  # (B, G) baseline over scorable rows only
    if scale_by_std:
        var = (adv**2).sum(1, keepdim=True) / (n - 1).clamp(min=1)  # (B, 1) unbiased
        adv = adv / (var.sqrt() + eps)  # (B, G)
    adv = adv * (n >= 2)  # (B, G) a lone scorable sample has nothing to compare with
    return adv.reshape(-1).to(torch.float32)  # (N,)


class GRPO(PolicyGradient):
    """GRPO: group-normalised advantages, PPO-clip loss, optional KL in the loss."""

    config: GRPOConfig

    def advantages(
        self, rewards, scorable, mask, group_size, *, old_logprobs=None, ref_logprobs=None
    ):
        c = self.config
        adv = group_advantages(rewards, scorable, group_size, c.scale_by_std, c.std_eps)  # (N,)
        return row_tokens(adv, mask)  # (N, T)
