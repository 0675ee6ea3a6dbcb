"""The ``anytime`` strategy (BRPO, Qi et al. 2025, arXiv 2505.13438): thinking traces cut at
token budgets, answers forced at each cut, one update on traces and answers.

Shapes: B prompts x G traces (N = B * G rows, a prompt's traces contiguous); m budgets; A
summaries per (trace, budget); T token positions of a packed batch; R = N * m * A summaries of at
most C continuation tokens.

Each step:

1. **Traces.** G thinking traces per prompt of at most b_m tokens (the largest budget), stopped
   at the env's end-of-thinking marker (:func:`~rewardgym.strategies.thinking.think`).
2. **Summaries.** Each trace is cut at every budget (``BudgetSchedule.cut_points``: a trace that
   ended before b_j is whole at b_j) and A answers are forced from each cut at
   ``summary_temperature`` with at most ``summary_max_tokens`` tokens, scored by the env's
   :class:`~rewardgym.core.forcing.AnswerForcing` (:func:`~rewardgym.strategies.thinking.
   force_answers`).
3. **Advantages.** The algorithm turns the summaries' rewards and scorability, (B, G, m, A), and
   the prior into advantages of the thinking segments (B, G, m) and of the summaries
   (B, G, m, A): ``anytime_advantages(rewards, scorable, prior)``. Thinking token t gets its
   segment's (tokens in (b_{j-1}, b_j] are segment j).
4. **Update.** One optimizer step on the trace rows (prompt + trace, at the rollout temperature)
   and the summary rows (at the summary temperature); the inserted suffix is context, never
   trained. With ``shared_prefix`` each trace row runs once and its summaries continue from its
   KV cache (:meth:`~rewardgym.strategies.base.Learner.prefix_logprobs`: the same log-probs and
   gradients as separate rows, 3.4x less update time measured on digit_sum); without, every
   summary is its own row (prompt + trace[:b_j] + suffix, then the summary).

Metrics: ``accuracy/b<j>`` (the summaries' accuracy at each budget), ``anytime_accuracy``
(sum_j P_j acc_j), ``accuracy`` (at b_m), ``reward`` and ``unscorable`` (over the summaries),
``think_tokens``, ``think_ended``, ``summary_tokens``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rewardgym.algorithms._anytime import token_advantages
from rewardgym.algorithms.base import LossScale
from rewardgym.core.budgets import BudgetSchedule
from rewardgym.core.config.schema import budget_schedule
from rewardgym.core.engine import SamplingParams
from rewardgym.core.errors import ConfigError
from rewardgym.strategies.base import LossPart, StepContext, Strategy
from rewardgym.strategies.batch import Continuations, TokenBatch, pack
from rewardgym.strategies.rollouts import score_metrics
from rewardgym.strategies.standard import need_policy_gradient, policy_update
from rewardgym.strategies.thinking import ForcedAnswer, Trace, continuations, force_answers, think

__all__ = ["Anytime", "AnytimeConfig"]


@dataclass(frozen=True)
class AnytimeConfig:
    """``strategy.params`` of ``anytime``: each thinking trace is cut at ``budgets`` (thinking
    tokens, strictly increasing; the largest caps the trace) and ``summaries`` forced answers
    of at most ``summary_max_tokens`` tokens are sampled at each budget, at
    ``summary_temperature`` (None: the rollout's). ``prior``: ``base``, ``uniform``,
    ``linear`` or one probability per budget (the weights of the anytime objective).
    ``shared_prefix``: train a trace and the summaries of its prefixes in one pass over the
    trace (its KV cache reused; same gradients) instead of one full row per summary."""

    budgets: tuple[int, ...] = (2000, 4000, 6000, 8000)
    prior: str | tuple[float, ...] = "uniform"
    summaries: int = 4
    summary_max_tokens: int = 128
    summary_temperature: float | None = None
    shared_prefix: bool = True

    def __post_init__(self) -> None:
        for key in ("summaries", "summary_max_tokens"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)!r}.")
        t = self.summary_temperature
        if t is not None and t < 0:
            raise ConfigError(f"summary_temperature must be >= 0 (0: greedy), got {t!r}.")
        self.schedule  # noqa: B018 -- budgets and prior are valid together

    @property
    def schedule(self) -> BudgetSchedule:
        """The budgets and prior as a :class:`~rewardgym.core.budgets.BudgetSchedule`."""
        return budget_schedule(self.budgets, self.prior, "budgets / prior")


class Anytime(Strategy):
    """BRPO's data: traces, summaries forced at every budget; per-segment and per-summary
    advantages from the algorithm's ``anytime_advantages``."""

    config: AnytimeConfig

    def __init__(self, config: AnytimeConfig | None = None) -> None:
        super().__init__(config or AnytimeConfig())

    def check(self, config: Any, stage: Any, algorithm: Any) -> None:
        need_policy_gradient(algorithm, stage, "anytime", "anytime_advantages")

    def step(self, ctx: StepContext, step: int) -> dict[str, float]:
        rollout, c = ctx.stage.rollout, self.config
        schedule = c.schedule
        start = time.perf_counter()
        tasks = ctx.rollouts.sample_tasks(rollout.prompts_per_step, ctx.seed(step, 0))
        trace_params = SamplingParams(
            schedule.max_budget, rollout.temperature, rollout.top_p, rollout.stop, ctx.seed(step, 1)
        )
        traces = think(ctx.engine, ctx.prompts, ctx.env, tasks, rollout.group_size, trace_params)
        temperature = (
            rollout.temperature if c.summary_temperature is None else c.summary_temperature
        )
        params = SamplingParams(
            c.summary_max_tokens, temperature, rollout.top_p, rollout.stop, ctx.seed(step, 2)
        )
        cuts = [schedule.cut_points(len(t)) for t in traces]
        answers = force_answers(ctx.engine, ctx.prompts, ctx.env, traces, cuts, c.summaries, params)
        rollout_s = time.perf_counter() - start

        n, m = len(traces), len(schedule.budgets)
        shape = (n // rollout.group_size, rollout.group_size, m, c.summaries)
        rewards = torch.tensor([x.reward for x in answers], dtype=torch.float).reshape(shape)
        scorable = torch.tensor([x.verdict.scorable for x in answers]).reshape(shape)
        segment_adv, summary_adv = ctx.algorithm.anytime_advantages(
            rewards, scorable, schedule.probs
        )  # (B, G, m), (B, G, m, A)

        thinking = pack(
            [t.prompt_ids for t in traces],
            [t.ids for t in traces],
            [[1.0] * len(t) for t in traces],
            [t.logprobs for t in traces],
            ctx.pad_id,
        )
        segments = torch.full(thinking.mask.shape, -1, dtype=torch.long)  # (N, T)
        for i, trace in enumerate(traces):
            segments[i, : len(trace)] = torch.tensor(schedule.segments(len(trace)))
        think_adv = token_advantages(segment_adv.reshape(n, m), segments, thinking.mask)  # (N, T)
        if c.shared_prefix:
            conts = continuations(answers, ctx.pad_id)
            cont_adv = summary_adv.reshape(-1, 1).to(conts.mask.dtype) * conts.mask  # (R, C)
            update = _shared_prefix_update(
                ctx, thinking, think_adv, conts, cont_adv, schedule.max_budget, temperature
            )
        else:
            summaries = pack(
                [x.context for x in answers],
                [x.ids for x in answers],
                [[float(x.verdict.scorable)] * len(x.ids) for x in answers],
                [x.logprobs for x in answers],
                ctx.pad_id,
            )
            summary_tok = summary_adv.reshape(-1, 1).to(summaries.mask.dtype) * summaries.mask
            parts = [
                (thinking, think_adv, thinking.mask, rollout.temperature),
                (summaries, summary_tok, summaries.mask, temperature),
            ]
            update = policy_update(ctx, parts, n, schedule.max_budget)
        metrics = _metrics(traces, answers, schedule, shape)
        return {**metrics, **update, "time/rollout_s": rollout_s}


def _shared_prefix_update(
    ctx: StepContext,
    thinking: TokenBatch,
    think_adv: torch.Tensor,
    conts: Continuations,
    cont_adv: torch.Tensor,
    max_tokens: int,
    answer_temperature: float,
) -> dict[str, Any]:
    """One update where each micro-batch of traces runs once, with the summaries of its
    prefixes continuing from the traces' KV cache."""
    scale = LossScale(
        num_rows=thinking.num_rows,
        num_tokens=max(1, int(thinking.mask.sum() + conts.mask.sum())),
        max_tokens=max(1, max_tokens),
    )
    temperature = ctx.stage.rollout.temperature
    learner, algorithm = ctx.learner, ctx.algorithm

    def loss(part: TokenBatch, rows: slice) -> tuple[torch.Tensor, dict[str, float]]:
        sub, keep = conts.select(rows)
        think_lp, cont_lp = learner.prefix_logprobs(part, sub, temperature, answer_temperature)
        ref_think = ref_cont = None
        if learner.has_reference:
            ref_think, ref_cont = learner.prefix_logprobs(
                part, sub, temperature, answer_temperature, reference=True
            )  # (n, T), (r, C)
        width = part.mask.shape[1]
        total, metrics = algorithm.loss(
            think_lp, part.old_logprobs, think_adv[rows, :width], part.mask, scale,
            ref_logprobs=ref_think,
        )  # fmt: skip
        if sub.num_rows:
            more, other = algorithm.loss(
                cont_lp, sub.old_logprobs, cont_adv[keep], sub.mask, scale, ref_logprobs=ref_cont
            )
            total = total + more
            metrics = {k: (v + other[k]) / (1 if k == "loss" else 2) for k, v in metrics.items()}
        return total, metrics

    return learner.update([LossPart(thinking, loss, sampled=True)])


def _metrics(
    traces: Sequence[Trace],
    answers: Sequence[ForcedAnswer],
    schedule: BudgetSchedule,
    shape: tuple[int, ...],
) -> dict[str, float]:
    correct = torch.tensor([x.verdict.correct for x in answers], dtype=torch.float)
    per_budget = correct.reshape(shape).mean(dim=(0, 1, 3))  # (m,)
    metrics = {
        f"accuracy/b{b}": float(acc) for b, acc in zip(schedule.budgets, per_budget, strict=True)
    }
    metrics["anytime_accuracy"] = schedule.anytime_score([float(x) for x in per_budget])
    scores = score_metrics(
        [x.reward for x in answers],
        [x.verdict.scorable for x in answers],
        [x.verdict.correct for x in answers],
    )
    metrics["accuracy"] = float(per_budget[-1])
    metrics["reward"], metrics["unscorable"] = scores["reward"], scores["unscorable"]
    metrics["think_tokens"] = sum(len(t) for t in traces) / len(traces)
    metrics["think_ended"] = sum(t.ended for t in traces) / len(traces)
    metrics["completion_tokens"] = metrics["think_tokens"]
    metrics["summary_tokens"] = sum(len(x.ids) for x in answers) / max(1, len(answers))
    return metrics
