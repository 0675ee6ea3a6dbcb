"""Rejection-sampling fine-tuning (STaR, Zelikman et al. 2022; RFT, Yuan et al. 2023): sample,
keep the samples the verifier scores at least ``threshold``, fine-tune on them with NLL.

Shapes: N rows = B prompts x G samples (rows of a group contiguous); T completion tokens.

:meth:`RFT.select` picks the rows; the trainer zeroes the mask of the others and calls
:meth:`RFT.loss`, the SFT loss on what is left. ``max_per_prompt`` caps the samples kept per
prompt (the first ones in sampling order), so easy prompts do not dominate the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from rewardgym.algorithms._checks import check_fields, check_number, check_optional_int
from rewardgym.algorithms._groups import as_groups
from rewardgym.algorithms._policy_loss import Aggregation
from rewardgym.algorithms.base import Algorithm, LossScale
from rewardgym.algorithms.sft import nll_loss

__all__ = ["RFT", "RFTConfig"]


@dataclass(frozen=True)
class RFTConfig:
    """Params of ``rft``.

    threshold: a sample is kept when its reward is >= threshold (1.0: only correct answers).
    max_per_prompt: keep at most this many samples per prompt (the first ones); None = all.
    aggregation: "token_mean", "seq_mean" or "constant" (see the policy loss).
    """

    threshold: float = 1.0
    max_per_prompt: int | None = None
    aggregation: Aggregation = "token_mean"

    def __post_init__(self) -> None:
        check_number("rft", "threshold", self.threshold, example=1.0)
        check_optional_int("rft", "max_per_prompt", self.max_per_prompt, low=1)
        check_fields("rft", self)  # the Literal choices, by the run config's validator


class RFT(Algorithm):
    """Rejection-sampling fine-tuning: NLL on the rollouts whose reward reaches the threshold."""

    strategy: ClassVar[str] = "filtered"
    config: RFTConfig

    def select(
        self, rewards: torch.Tensor, scorable: torch.Tensor, group_size: int
    ) -> torch.Tensor:
        """Rows to train on, bool (N,): scorable, reward >= threshold, at most max_per_prompt
        per group (the first ones)."""
        r, m = as_groups(rewards, scorable, group_size)  # (B, G), (B, G)
        keep = (m > 0) & (r >= self.config.threshold)  # (B, G)
        if self.config.max_per_prompt is not None:
            rank = keep.to(torch.int64).cumsum(1)  # (B, G) 1-based rank among kept rows
            keep = keep & (rank <= self.config.max_per_prompt)  # (B, G)
        return keep.reshape(-1)  # (N,)

    def loss(
        self, logprobs: torch.Tensor, mask: torch.Tensor, scale: LossScale
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Masked NLL (the mask is already 0 on rows not selected); logprobs and mask (N, T)."""
        return nll_loss(logprobs, mask, scale, self.config.aggregation)
