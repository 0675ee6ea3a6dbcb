"""BRPO (Qi et al. 2025, arXiv 2505.13438): anytime reasoning with Budget Relative Policy
Optimization. Trains on ``anytime`` rollouts: G thinking traces per prompt, each cut at budgets
b_1 < ... < b_m and answered A times at each budget (summaries).

Shapes: B prompts x G traces (N = B * G rows, a prompt's traces contiguous); m budgets; A
summaries per (trace, budget).

- Thinking tokens of segment j (tokens in (b_{j-1}, b_j]) get A(j) = R(x, z, j) - V(j), with the
  dense return R(x, z, j) = sum_{j' >= j} P_j' r_phi(x, z<=b_j') and the baseline V the mix of
  the trace's own discounted earlier scores (V1, decay ``lam``) and the group mean (V2); without
  ``variance_reduction`` V = V2 (see :mod:`rewardgym.algorithms._anytime`).
- Summary tokens: with ``decouple`` (the decoupled summary policy), r(y) minus the mean of the A
  summaries of the same (trace, budget), every budget trained alike (the paper's uniform prior
  for the summary loss). Without it, a summary at budget j is treated as the continuation of
  its trace there and gets the trace's segment advantage A(j) (a choice: the paper does not spell
  out the coupled form).
- The loss is PPO-clip with token sums divided by a constant, traces x b_m (``constant``
  aggregation; summary tokens count in the sum), no KL, no entropy bonus.

The paper's GRPO arm in the same pipeline is this algorithm with one budget (b_m), one summary,
the ``base`` prior, no decoupling and no variance reduction: every token of a trace and its
summary gets r - group mean (Dr.GRPO). The ``anytime_grpo`` preset sets exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from rewardgym.algorithms._anytime import (
    brpo_segment_advantages,
    summary_advantages,
    summary_scores,
)
from rewardgym.algorithms._checks import check_bool, check_clip, check_fields, check_number
from rewardgym.algorithms._policy_loss import Aggregation
from rewardgym.algorithms.base import PolicyGradient

__all__ = ["BRPO", "BRPOConfig"]


@dataclass(frozen=True)
class BRPOConfig:
    """Params of ``brpo``.

    lam: decay of the trace's own earlier scores in the baseline V1 (0 < lam; paper 0.5).
    decouple: train summaries with their own advantage r(y) - mean of the A summaries.
    variance_reduction: the V1/V2 baseline mix (False: the group mean V2 only).
    clip_eps, clip_eps_high: PPO clip range (clip_eps_high None = clip_eps).
    kl_coef: weight of a k3 KL to the reference model in the loss (paper: 0).
    aggregation: "constant" (paper), "token_mean" or "seq_mean".

    The budgets, the prior and the number of summaries are rollout settings
    (``rollout.anytime``), shared with budget evaluation.
    """

    lam: float = 0.5
    decouple: bool = True
    variance_reduction: bool = True
    clip_eps: float = 0.2
    clip_eps_high: float | None = None
    kl_coef: float = 0.0
    aggregation: Aggregation = "constant"

    def __post_init__(self) -> None:
        check_number("brpo", "lam", self.lam, low=0, low_open=True, example=0.5)
        check_bool("brpo", "decouple", self.decouple)
        check_bool("brpo", "variance_reduction", self.variance_reduction)
        check_clip("brpo", self.clip_eps, self.clip_eps_high, self.kl_coef)
        check_fields("brpo", self)  # the Literal choices, by the run config's validator


class BRPO(PolicyGradient):
    """BRPO: per-segment advantages for thinking tokens, per-summary advantages for answers."""

    config: BRPOConfig
    strategy: ClassVar[str] = "anytime"

    def anytime_advantages(
        self, summary_rewards: torch.Tensor, scorable: torch.Tensor, prior: tuple[float, ...]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Advantages of the thinking segments, (B, G, m), and of the summaries,
        (B, G, m, A), from the summaries' rewards and scorability, both (B, G, m, A), and the
        budget prior P (m,). Unscorable summaries get 0."""
        c = self.config
        scores, valid = summary_scores(summary_rewards, scorable)  # (B, G, m), (B, G, m)
        segment = brpo_segment_advantages(
            scores, valid, prior, c.lam, c.variance_reduction
        )  # (B, G, m)
        if c.decouple:
            summary = summary_advantages(summary_rewards, scorable)  # (B, G, m, A)
        else:
            summary = segment[..., None] * scorable.to(segment.dtype)  # (B, G, m, A)
        return segment, summary
