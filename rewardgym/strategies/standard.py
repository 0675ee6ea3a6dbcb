"""The ``standard`` strategy: G samples per prompt, scored by the env, one policy-gradient update.

Each step draws ``rollout.prompts_per_step`` tasks, samples ``rollout.group_size`` episodes per
task through the env (multi-turn envs run their turns; the env's replies are context, never
trained on), and hands the algorithm (a :class:`~rewardgym.algorithms.base.PolicyGradient`)

    advantages(rewards (N,), scorable (N,), mask (N, T), G, old_logprobs=, ref_logprobs=)

then trains ``loss(...)`` on every sampled token of the scorable rows. Shapes: N rows = B
prompts x G samples (a prompt's rows contiguous); T response positions.

**Group rewards.** ``group_reward: adactrl`` replaces each sample's reward by AdaCtrl's, which
needs the whole group (its accuracy and its longest response;
:func:`rewardgym.core.shaping.adactrl_group`): accuracy term + ``length_weight`` x cosine length
term (correct ``[Easy]`` answers of Easy questions) + ``format_weight`` x the difficulty-tag
term, the tag read from the start of the sample's first turn. Unscorable samples stay
unscorable.

The helpers here are shared by every strategy that ends in a policy-gradient update:
:func:`sample_rollouts`, :func:`pack_episodes`, :func:`policy_loss` and :func:`policy_update`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from rewardgym.algorithms.base import LossScale, PolicyGradient
from rewardgym.core.engine import SamplingParams
from rewardgym.core.errors import ConfigError
from rewardgym.core.shaping import adactrl_group, parse_difficulty_tag
from rewardgym.strategies.base import LossFn, LossPart, StepContext, Strategy
from rewardgym.strategies.batch import TokenBatch, pack
from rewardgym.strategies.rollouts import Episode, score_metrics

__all__ = [
    "AdaCtrlParams",
    "Standard",
    "StandardConfig",
    "pack_episodes",
    "policy_loss",
    "policy_update",
    "sample_rollouts",
]


@dataclass(frozen=True)
class AdaCtrlParams:
    """AdaCtrl's group reward (see :func:`rewardgym.core.shaping.adactrl_group`)."""

    easy_threshold: float = 0.625
    length_weight: float = 0.5
    format_weight: float = 0.5
    length_requires_correct: bool = True
    hard_length_term: bool = False


@dataclass(frozen=True)
class StandardConfig:
    """``strategy.params`` of ``standard``. ``group_reward``: ``none`` (the env's rewards) or
    ``adactrl`` (AdaCtrl's group reward, with ``adactrl``'s weights)."""

    group_reward: Literal["none", "adactrl"] = "none"
    adactrl: AdaCtrlParams = field(default_factory=AdaCtrlParams)


class Standard(Strategy):
    """G samples per prompt through the env, advantages, one clipped policy-gradient update."""

    config: StandardConfig

    def __init__(self, config: StandardConfig | None = None) -> None:
        super().__init__(config or StandardConfig())

    def check(self, config: Any, stage: Any, algorithm: Any) -> None:
        need_policy_gradient(algorithm, stage, "standard", "advantages")

    def step(self, ctx: StepContext, step: int) -> dict[str, float]:
        episodes, batch, metrics = sample_rollouts(ctx, step)
        rewards, scorable = episode_tensors(episodes)  # (N,), (N,)
        if self.config.group_reward == "adactrl":
            rewards, scorable, extra = adactrl_rewards(
                episodes, ctx.stage.rollout.group_size, self.config.adactrl
            )
            metrics = {**metrics, **extra}
        ref = ctx.learner.reference_logprobs(batch, ctx.stage.rollout.temperature)  # (N, T)
        mask = batch.mask * scorable[:, None].float()  # (N, T) unscorable rows are not trained
        advantages = ctx.algorithm.advantages(
            rewards,
            scorable,
            mask,
            ctx.stage.rollout.group_size,
            old_logprobs=batch.old_logprobs,
            ref_logprobs=ref,
        )  # (N, T)
        scale = LossScale(
            num_rows=max(1, int(scorable.sum())),
            num_tokens=max(1, int(mask.sum())),
            max_tokens=ctx.stage.rollout.max_new_tokens * ctx.max_turns,
        )
        loss = policy_loss(ctx, advantages, mask, scale, ref, ctx.stage.rollout.temperature)
        return {**metrics, **ctx.learner.update([LossPart(batch, loss, sampled=True)])}


# -- shared helpers ----------------------------------------------------------------------------
def need_policy_gradient(algorithm: Any, stage: Any, strategy: str, method: str) -> None:
    """A config error unless ``algorithm`` is a PolicyGradient with ``method``."""
    if isinstance(algorithm, PolicyGradient) and callable(getattr(algorithm, method, None)):
        return
    raise ConfigError(
        f"The '{strategy}' strategy (stage '{stage.name}') trains a PolicyGradient algorithm "
        f"with {method}(); {stage.algorithm.name!r} ({type(algorithm).__name__}) is not one. "
        "Use the strategy its algorithm declares (leave strategy unset)."
    )


def sample_rollouts(
    ctx: StepContext, step: int, group_size: int | None = None
) -> tuple[list[Episode], TokenBatch, dict[str, float]]:
    """The step's episodes (``rollout.prompts_per_step`` tasks x ``group_size`` samples,
    ``rollout.group_size`` by default; a task's rows contiguous), packed as a batch, and their
    metrics (``reward``, ``accuracy``, ``unscorable``, ``completion_tokens``, ``turns``,
    ``time/rollout_s``)."""
    rollout = ctx.stage.rollout
    start = time.perf_counter()
    tasks = ctx.rollouts.sample_tasks(rollout.prompts_per_step, ctx.seed(step, 0))
    params = SamplingParams(
        max_new_tokens=rollout.max_new_tokens,
        temperature=rollout.temperature,
        top_p=rollout.top_p,
        stop=rollout.stop,
        seed=ctx.seed(step, 1),
    )
    episodes = ctx.rollouts.collect(tasks, group_size or rollout.group_size, params)
    batch = pack_episodes(episodes, ctx.pad_id)
    n = len(episodes)
    metrics = {
        **score_metrics(
            [e.reward for e in episodes],
            [e.scorable for e in episodes],
            [e.correct for e in episodes],
        ),
        "completion_tokens": sum(e.num_model_tokens for e in episodes) / n,
        "turns": sum(len(e.verdicts) for e in episodes) / n,
        "time/rollout_s": time.perf_counter() - start,
    }
    return episodes, batch, metrics


def episode_tensors(episodes: Sequence[Episode]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards (N,) float and scorability (N,) bool of ``episodes``."""
    rewards = torch.tensor([e.reward for e in episodes], dtype=torch.float)  # (N,)
    scorable = torch.tensor([e.scorable for e in episodes], dtype=torch.bool)  # (N,)
    return rewards, scorable


def pack_episodes(episodes: Sequence[Episode], pad_id: int) -> TokenBatch:
    """Episodes as a :class:`TokenBatch`: prompt ids, then everything after them, with the
    model's tokens as the loss mask and the engine's log-probs as ``old_logprobs``."""
    return pack(
        [e.prompt_ids for e in episodes],
        [e.response_ids for e in episodes],
        [[float(m) for m in e.model_mask] for e in episodes],
        [e.logprobs for e in episodes],
        pad_id,
    )


def adactrl_rewards(
    episodes: Sequence[Episode], group_size: int, params: AdaCtrlParams
) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """AdaCtrl's group rewards of ``episodes`` (N,), their scorability (N,) and metrics."""
    rewards: list[float] = []
    easy = tagged = groups = 0
    for first in range(0, len(episodes), group_size):
        group = episodes[first : first + group_size]
        correct = [e.correct if e.scorable else None for e in group]
        tags = [parse_difficulty_tag(e.texts[0] if e.texts else "") for e in group]
        result = adactrl_group(
            correct,
            [e.num_model_tokens for e in group],
            tags,
            easy_threshold=params.easy_threshold,
            length_weight=params.length_weight,
            format_weight=params.format_weight,
            length_requires_correct=params.length_requires_correct,
            hard_length_term=params.hard_length_term,
        )
        rewards += [0.0 if r is None else r for r in result.rewards]
        groups += 1
        easy += result.difficulty == "easy"
        tagged += sum(t is not None for t in tags)
    scorable = torch.tensor([e.scorable for e in episodes], dtype=torch.bool)  # (N,)
    metrics = {
        "adactrl/easy_groups": easy / max(groups, 1),
        "adactrl/tagged": tagged / max(len(episodes), 1),
    }
    return torch.tensor(rewards, dtype=torch.float), scorable, metrics


def policy_loss(
    ctx: StepContext,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    scale: LossScale,
    ref: torch.Tensor | None,
    temperature: float,
) -> LossFn:
    """The algorithm's policy loss on a micro-batch of rows of ``advantages`` / ``mask`` /
    ``ref`` (all (N, T)), the log-probs taken at ``temperature`` (the sampling one)."""

    def loss(part: TokenBatch, rows: Any) -> tuple[torch.Tensor, dict[str, float]]:
        width = part.mask.shape[1]
        logprobs = ctx.learner.logprobs(part, temperature)  # (n, T')
        return ctx.algorithm.loss(
            logprobs,
            part.old_logprobs,
            advantages[rows, :width],
            mask[rows, :width],
            scale,
            ref_logprobs=None if ref is None else ref[rows, :width],
        )

    return loss


def policy_update(
    ctx: StepContext,
    parts: Sequence[tuple[TokenBatch, torch.Tensor, torch.Tensor, float]],
    num_rows: int,
    max_tokens: int,
) -> dict[str, float]:
    """One update on ``parts`` = [(batch, advantages (n, T), mask (n, T), temperature)]: the
    algorithm's loss on each, with one :class:`LossScale` for the whole step (``num_rows``,
    the parts' trained tokens, ``max_tokens``)."""
    scale = LossScale(
        num_rows=max(1, num_rows),
        num_tokens=max(1, int(sum(float(mask.sum()) for _, _, mask, _ in parts))),
        max_tokens=max(1, max_tokens),
    )
    losses = []
    for batch, advantages, mask, temperature in parts:
        ref = ctx.learner.reference_logprobs(batch, temperature)  # (n, T) or None
        loss = policy_loss(ctx, advantages, mask, scale, ref, temperature)
        losses.append(LossPart(batch, loss, sampled=True))
    return ctx.learner.update(losses)
