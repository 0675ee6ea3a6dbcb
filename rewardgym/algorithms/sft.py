"""Supervised fine-tuning: the negative log-likelihood of demonstration responses.

Shapes: N rows (prompt + response each), T response-token positions.

    loss = - sum_{i,t} mask_it * log p(y_it | x_i, y_i<t) / normaliser

with the normaliser chosen by ``aggregation`` (``token_mean`` by default: every demonstration
token weighs the same; see the policy loss for the others), over the whole optimizer step.
Demonstrations come from the env's gold solutions (``source="env"``) or a JSONL file of
``{"prompt": ..., "response": ...}`` lines (``source="jsonl"``, read by the trainer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

import torch

from rewardgym.algorithms._checks import check_fields, check_source
from rewardgym.algorithms._policy_loss import Aggregation, aggregate, masked_mean
from rewardgym.algorithms.base import Algorithm, LossScale

__all__ = ["SFT", "SFTConfig", "nll_loss"]

Source = Literal["env", "jsonl"]
SOURCES: tuple[str, ...] = get_args(Source)
DEMONSTRATION_KEYS = ("prompt", "response")


@dataclass(frozen=True)
class SFTConfig:
    """Params of ``sft``.

    source: "env" (the env's gold solutions) or "jsonl" (a file of demonstrations).
    path: the JSONL file; required when source is "jsonl", not allowed otherwise.
    aggregation: "token_mean", "seq_mean" or "constant" (see the policy loss).
    """

    source: Source = "env"
    path: str | None = None
    aggregation: Aggregation = "token_mean"

    def __post_init__(self) -> None:
        check_source("sft", self.source, self.path, DEMONSTRATION_KEYS)
        check_fields("sft", self)  # the Literal choices, by the run config's validator


def nll_loss(
    logprobs: torch.Tensor, mask: torch.Tensor, scale: LossScale, aggregation: str
) -> tuple[torch.Tensor, dict[str, float]]:
    """Masked negative log-likelihood, the micro-batch's share of the step loss; metrics
    ``loss`` and ``nll`` (mean NLL per trained token of this micro-batch, for logging)."""
    nll = -logprobs  # (N, T)
    loss = aggregate(nll, mask, scale, aggregation)  # ()
    return loss, {"loss": float(loss.detach()), "nll": masked_mean(nll, mask)}


class SFT(Algorithm):
    """Supervised fine-tuning on demonstrations."""

    strategy: ClassVar[str] = "demonstrations"
    config: SFTConfig

    def loss(
        self, logprobs: torch.Tensor, mask: torch.Tensor, scale: LossScale
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Masked NLL of the demonstration tokens; logprobs and mask (N, T)."""
        return nll_loss(logprobs, mask, scale, self.config.aggregation)
