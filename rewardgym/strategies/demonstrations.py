"""The ``demonstrations`` strategy: supervised fine-tuning on prompt and response pairs.

Each step takes ``rollout.prompts_per_step`` demonstrations: from a JSONL file of
``{"prompt": ..., "response": ...}`` lines when the algorithm's config has ``source="jsonl"``
(and ``path``; read and checked in full before the model loads; batches drawn by step from a
permutation per epoch, :func:`~rewardgym.strategies.data.batch_at`), else freshly drawn tasks and
the env's gold solutions (:meth:`~rewardgym.core.env.TextEnv.solution`). A row is the prompt
(as the run's :class:`~rewardgym.strategies.prompts.PromptFormat` renders it: through the chat
template, or BOS + text), then the response and the EOS token, trained (with a chat template the
tokenizer's EOS is the end-of-turn token, ``<|im_end|>``, ``<|eot_id|>``: the row ends the
assistant's turn as the model should); the algorithm's ``loss(logprobs, mask, scale)`` (an NLL,
for ``sft``) runs on them, the log-probs taken at temperature 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rewardgym.algorithms.base import LossScale
from rewardgym.core.errors import ConfigError
from rewardgym.core.make import make
from rewardgym.strategies.base import LossPart, StepContext, Strategy, require_methods
from rewardgym.strategies.batch import TokenBatch, pack
from rewardgym.strategies.data import DEMONSTRATION_KEYS, batch_at, read_jsonl
from rewardgym.strategies.prompts import encode_text

__all__ = ["Demonstrations", "DemonstrationsConfig", "supervised_batch"]


@dataclass(frozen=True)
class DemonstrationsConfig:
    """``strategy.params`` of ``demonstrations`` (none yet: the algorithm's ``source`` and
    ``path`` say where demonstrations come from)."""


class Demonstrations(Strategy):
    """SFT: demonstrations (a JSONL file or the env's gold solutions), NLL."""

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.rows: list[dict[str, str]] | None = None  # the JSONL file's, read by check()

    def check(self, config: Any, stage: Any, algorithm: Any) -> None:
        require_methods("demonstrations", stage, algorithm, "loss(logprobs, mask, scale)", "loss")
        if getattr(algorithm.config, "source", None) == "jsonl":
            self.rows = read_jsonl(algorithm.config.path, DEMONSTRATION_KEYS, "demonstration")
            return
        env = make(config.env.id, **config.env.params)
        try:
            _, info = env.reset(seed=0)
            if env.unwrapped.solution(info["task"]) is None:
                raise ConfigError(
                    f"Stage '{stage.name}' trains {stage.algorithm.name!r} on the env's gold "
                    f"solutions, but {config.env.id} has none for its tasks. Give demonstrations "
                    "in a file instead: algorithm.params.source=jsonl algorithm.params.path=FILE."
                )
        finally:
            env.close()

    def step(self, ctx: StepContext, step: int) -> dict[str, float]:
        size = ctx.stage.rollout.prompts_per_step
        if self.rows is not None:
            rows = batch_at(self.rows, step, size, ctx.seed(step))
            pairs = [(r["prompt"], r["response"]) for r in rows]
        else:
            tasks = ctx.rollouts.sample_tasks(size, ctx.seed(step, 0))
            pairs = [(t.prompt, ctx.env.solution(t)) for t in tasks]
        batch = supervised_batch(ctx, pairs)
        scale = LossScale(batch.num_rows, max(1, int(batch.mask.sum())), batch.mask.shape[1])

        def loss(part: TokenBatch, rows: Any) -> tuple[torch.Tensor, dict[str, float]]:
            logprobs = ctx.learner.logprobs(part, 1.0)  # (n, T')
            return ctx.algorithm.loss(logprobs, part.mask, scale)

        update = ctx.learner.update([LossPart(batch, loss)])
        return {**update, "completion_tokens": float(batch.mask.sum()) / batch.num_rows}


def supervised_batch(ctx: StepContext, pairs: Sequence[tuple[str, str]]) -> TokenBatch:
    """(prompt, response) text pairs as rows: the prompt (``ctx.prompts``), then the response
    and EOS, trained."""
    eos = ctx.tokenizer.eos_token_id
    responses = [
        encode_text(ctx.tokenizer, r) + ([eos] if eos is not None else []) for _, r in pairs
    ]
    return pack(
        [ctx.prompts.prompt_ids(p) for p, _ in pairs],
        responses,
        [[1.0] * len(r) for r in responses],
        None,
        ctx.pad_id,
    )
