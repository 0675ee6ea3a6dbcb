"""The ``preferences`` strategy: chosen and rejected responses, a pairwise loss (DPO).

Pairs come from a JSONL file of ``{"prompt", "chosen", "rejected"}`` lines when the algorithm's
config has ``source="jsonl"`` (read and checked before the model loads), else from the step's
rollouts (sampled as the ``standard`` strategy does): the algorithm picks them,

    pairs(rewards (N,), scorable (N,), G) -> [(chosen row, rejected row), ...]

The batch holds the P chosen rows, then the P rejected rows (2P rows); micro-batches keep each
pair together. The algorithm's ``loss(chosen, rejected, ref_chosen, ref_rejected, num_pairs)``
runs on sequence log-probs (sums over the response tokens, at temperature 1), the reference
model's computed once for the whole batch. A step without pairs makes no update. Metric
``pairs``: pairs in the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from rewardgym.strategies.base import LossPart, StepContext, Strategy, require_methods
from rewardgym.strategies.batch import TokenBatch
from rewardgym.strategies.data import PREFERENCE_KEYS, batch_at, read_jsonl
from rewardgym.strategies.demonstrations import supervised_batch
from rewardgym.strategies.standard import episode_tensors, pack_episodes, sample_rollouts

__all__ = ["Preferences", "PreferencesConfig"]


@dataclass(frozen=True)
class PreferencesConfig:
    """``strategy.params`` of ``preferences`` (none yet: the algorithm's ``source`` and
    ``path`` say where pairs come from)."""


class Preferences(Strategy):
    """Preference pairs (a JSONL file, or best vs worst of a group), a pairwise loss."""

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.rows: list[dict[str, str]] | None = None  # the JSONL file's, read by check()

    def check(self, config: Any, stage: Any, algorithm: Any) -> None:
        calls = (
            "pairs(rewards, scorable, group_size) and loss(chosen, rejected, ref_chosen, "
            "ref_rejected, num_pairs)"
        )
        require_methods("preferences", stage, algorithm, calls, "pairs", "loss")
        if getattr(algorithm.config, "source", None) == "jsonl":
            self.rows = read_jsonl(algorithm.config.path, PREFERENCE_KEYS, "preference")

    def step(self, ctx: StepContext, step: int) -> dict[str, float]:
        batch, num_pairs, metrics = self._pairs(ctx, step)
        metrics["pairs"] = float(num_pairs)
        if num_pairs == 0:
            return {**metrics, "loss": 0.0, "grad_norm": 0.0}
        ref = ctx.learner.reference_logprobs(batch, 1.0)  # (2P, T)
        ref_seq = (ref * batch.mask).sum(1)  # (2P,)

        def loss(part: TokenBatch, rows: Any) -> tuple[torch.Tensor, dict[str, float]]:
            logprobs = ctx.learner.logprobs(part, 1.0)  # (2p, T')
            seq = (logprobs * part.mask).sum(1)  # (2p,) chosen rows, then their rejected rows
            half = seq.shape[0] // 2
            ref_part = ref_seq[rows]  # (2p,)
            return ctx.algorithm.loss(
                seq[:half], seq[half:], ref_part[:half], ref_part[half:], num_pairs
            )

        units = torch.arange(num_pairs).repeat(2)  # (2P,) a pair's two rows stay together
        return {**metrics, **ctx.learner.update([LossPart(batch, loss, units=units)])}

    def _pairs(self, ctx: StepContext, step: int) -> tuple[TokenBatch, int, dict[str, float]]:
        """Chosen rows first, then rejected rows: (2P, ...)."""
        if self.rows is not None:
            size = ctx.stage.rollout.prompts_per_step
            rows = batch_at(self.rows, step, size, ctx.seed(step))
            pairs = [(r["prompt"], r["chosen"]) for r in rows]
            pairs += [(r["prompt"], r["rejected"]) for r in rows]
            return supervised_batch(ctx, pairs), len(rows), {}
        episodes, _, metrics = sample_rollouts(ctx, step)
        rewards, scorable = episode_tensors(episodes)
        pairs = ctx.algorithm.pairs(rewards, scorable, ctx.stage.rollout.group_size)
        order = [i for i, _ in pairs] + [j for _, j in pairs]
        return pack_episodes([episodes[i] for i in order], ctx.pad_id), len(pairs), metrics
