"""Dr.GRPO (Liu et al. 2025, "Understanding R1-Zero-like training"): GRPO without its two
biases.

Shapes: N rows = B prompts x G samples (rows of a group contiguous); T completion tokens.

    A_i = r_i - mean_g(r)                               for every token of sample i

- no division by the group's std (which up-weights too-easy and too-hard prompts);
- the loss sums over tokens and divides by a constant, rows x max tokens (``constant``
  aggregation), instead of by each response's length (which favours long wrong answers).

The mean is over the group's scorable samples; groups with fewer than 2 give 0 (with one
sample, r - mean is 0 anyway). KL to the reference, when kl_coef > 0, is the k3 term in the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

from rewardgym.algorithms._checks import check_clip
from rewardgym.algorithms._groups import row_tokens
from rewardgym.algorithms.base import PolicyGradient
from rewardgym.algorithms.grpo import group_advantages

__all__ = ["DrGRPO", "DrGRPOConfig"]


@dataclass(frozen=True)
class DrGRPOConfig:
    """Params of ``dr_grpo``.

    clip_eps: PPO clip range below 1 (and above, unless clip_eps_high is set).
    clip_eps_high: clip range above 1; None = clip_eps.
    kl_coef: weight of the k3 KL to the reference model in the loss; 0 = no reference model.
    """

    clip_eps: float = 0.2
    clip_eps_high: float | None = None
    kl_coef: float = 0.0

    def __post_init__(self) -> None:
        check_clip("dr_grpo", self.clip_eps, self.clip_eps_high, self.kl_coef)


class DrGRPO(PolicyGradient):
    """Dr.GRPO: group-mean baseline without std, constant loss normaliser."""

    config: DrGRPOConfig
    aggregation = "constant"  # sum(loss * mask) / (rows x max_tokens), fixed by the method

    def advantages(
        self, rewards, scorable, mask, group_size, *, old_logprobs=None, ref_logprobs=None
    ):
        adv = group_advantages(rewards, scorable, group_size, scale_by_std=False)  # (N,)
        return row_tokens(adv, mask)  # (N, T)
