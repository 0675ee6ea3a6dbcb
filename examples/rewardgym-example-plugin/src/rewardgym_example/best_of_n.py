"""``best_of_n``: a strategy shipped by a plugin. Each step samples ``n`` responses per prompt
from the current policy, keeps the best-scoring one of each prompt (when it reaches
``min_reward``), and fine-tunes on the kept responses with the algorithm's loss: best-of-n
self-distillation (expert iteration), for any algorithm of the ``demonstrations`` strategy
(``sft``), which provides ``loss(logprobs, mask, scale)``.

Use it by name: ``algorithm.name=sft strategy=best_of_n strategies.best_of_n.n=8``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rewardgym import ConfigError
from rewardgym.algorithms.base import LossScale
from rewardgym.strategies import LossPart, StepContext, Strategy, TokenBatch
from rewardgym.strategies.standard import episode_tensors, sample_rollouts


@dataclass(frozen=True)
class BestOfNConfig:
    """``strategies.best_of_n``: ``n`` samples per prompt; the best is kept when its reward is
    at least ``min_reward``."""

    n: int = 4
    min_reward: float = 1.0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"best_of_n n must be >= 1, got {self.n}.")


class BestOfN(Strategy):
    """Sample n, keep the best of each prompt, train the algorithm's NLL loss on it."""

    feeds = ("demonstrations",)  # trains the algorithms of the demonstrations strategy (sft)

    def __init__(self, config: BestOfNConfig | None = None) -> None:
        super().__init__(config or BestOfNConfig())

    def step(self, ctx: StepContext, step: int) -> dict[str, float]:
        n = self.config.n
        episodes, batch, metrics = sample_rollouts(ctx, step, group_size=n)
        rewards, scorable = episode_tensors(episodes)  # (B * n,), (B * n,)
        scores = torch.where(scorable, rewards, torch.full_like(rewards, -torch.inf))
        best = scores.view(-1, n).argmax(1)  # (B,) the first best sample of each prompt
        rows = torch.arange(best.numel()) * n + best  # (B,)
        keep = rows[scores[rows] >= self.config.min_reward]  # (K,)
        metrics["kept"] = float(keep.numel())
        if keep.numel() == 0:
            return {**metrics, "loss": 0.0, "grad_norm": 0.0}
        kept = batch.select(keep)
        scale = LossScale(kept.num_rows, max(1, int(kept.mask.sum())), kept.mask.shape[1])

        def loss(part: TokenBatch, rows: slice) -> tuple[torch.Tensor, dict[str, float]]:
            return ctx.algorithm.loss(ctx.learner.logprobs(part, 1.0), part.mask, scale)

        return {**metrics, **ctx.learner.update([LossPart(kept, loss)])}
