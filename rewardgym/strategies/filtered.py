"""The ``filtered`` strategy: sample, keep what the algorithm selects, fine-tune on it.

Each step samples ``rollout.group_size`` episodes for each of ``rollout.prompts_per_step`` tasks
(as the ``standard`` strategy does), asks the algorithm which rows to keep,

    select(rewards (N,), scorable (N,), G) -> keep (N,) bool

and trains the algorithm's ``loss(logprobs, mask, scale)`` (an NLL, for ``rft``) on the
model-written tokens of the kept rows, the log-probs taken at temperature 1. A step that keeps
nothing makes no update (``loss`` and ``grad_norm`` 0). Metric ``kept``: rows kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from rewardgym.algorithms.base import LossScale
from rewardgym.strategies.base import LossPart, StepContext, Strategy, require_methods
from rewardgym.strategies.batch import TokenBatch
from rewardgym.strategies.standard import episode_tensors, sample_rollouts

__all__ = ["Filtered", "FilteredConfig"]


@dataclass(frozen=True)
class FilteredConfig:
    """``strategy.params`` of ``filtered`` (none yet: the algorithm's config says what to keep)."""


class Filtered(Strategy):
    """Rejection sampling: rollouts, the algorithm's selection, NLL on the kept rows."""

    def check(self, config: Any, stage: Any, algorithm: Any) -> None:
        calls = "select(rewards, scorable, group_size) and loss(logprobs, mask, scale)"
        require_methods("filtered", stage, algorithm, calls, "select", "loss")

    def step(self, ctx: StepContext, step: int) -> dict[str, float]:
        episodes, batch, metrics = sample_rollouts(ctx, step)
        rewards, scorable = episode_tensors(episodes)  # (N,), (N,)
        keep = ctx.algorithm.select(rewards, scorable, ctx.stage.rollout.group_size)  # (N,)
        mask = batch.mask * keep[:, None].float()  # (N, T)
        metrics["kept"] = float(keep.sum())
        if int(keep.sum()) == 0:
            return {**metrics, "loss": 0.0, "grad_norm": 0.0}
        scale = LossScale(
            int(keep.sum()), max(1, int(mask.sum())), ctx.stage.rollout.max_new_tokens
        )
        rows_kept = keep.nonzero().squeeze(-1)  # (K,)
        kept_mask = mask[rows_kept]  # (K, T)

        def loss(part: TokenBatch, rows: Any) -> tuple[torch.Tensor, dict[str, float]]:
            logprobs = ctx.learner.logprobs(part, 1.0)  # (k, T')
            return ctx.algorithm.loss(logprobs, kept_mask[rows, : part.mask.shape[1]], scale)

        return {**metrics, **ctx.learner.update([LossPart(batch.select(rows_kept), loss)])}
