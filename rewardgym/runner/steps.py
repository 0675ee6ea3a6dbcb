"""One training step for each kind of algorithm: where the data comes from and which loss runs.

- Policy gradient (``grpo``, ``dr_grpo``, ``rloo``, ``reinforce_pp``, and plugins subclassing
  :class:`~rewardgym.algorithms.base.PolicyGradient`): rollouts -> advantages -> clipped loss,
  ``trainer.updates_per_batch`` optimizer steps per batch.
- ``rft``: rollouts -> keep the samples the algorithm selects -> NLL on them.
- ``sft``: demonstrations (env solutions or JSONL) -> NLL.
- ``dpo``: preference pairs (from rollouts, or JSONL) -> DPO loss against the reference model.

Shapes: N rows (B prompts x G samples), T response positions; P pairs for DPO.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from rewardgym.algorithms.base import Algorithm, LossScale, PolicyGradient
from rewardgym.core.config import RunConfig, Stage
from rewardgym.core.engine import Engine, SamplingParams
from rewardgym.core.errors import RewardGymError
from rewardgym.runner.batch import TokenBatch, micro_batches, pack, sequence_logprobs
from rewardgym.runner.data import batch_at
from rewardgym.runner.rollout import (
    Episode,
    RolloutCollector,
    derive_seed,
    encode_prompt,
    encode_text,
)

__all__ = [
    "StepContext",
    "optimise_parts",
    "pad_id",
    "policy_loss_fn",
    "reference_logprobs",
    "run_step",
    "train_parts",
]


@dataclass
class StepContext:
    """Everything a step needs; built by the trainer for each stage."""

    config: RunConfig
    stage: Stage
    algorithm: Algorithm
    model: torch.nn.Module
    ref_model: torch.nn.Module | None
    optimizer: torch.optim.Optimizer
    scheduler: Any
    engine: Engine
    collector: RolloutCollector
    tokenizer: Any
    max_turns: int
    data: list[dict[str, str]] | None = None  # JSONL rows, when the algorithm reads a file

    @property
    def temperature(self) -> float:
        return self.stage.rollout.temperature


def run_step(ctx: StepContext, step: int) -> dict[str, Any]:
    """Run training step ``step`` of the stage; returns its metrics."""
    start = time.perf_counter()
    name = ctx.stage.algorithm.name
    strategy = getattr(ctx.algorithm, "strategy", "standard")
    if strategy in ("anytime", "episodic"):
        from rewardgym.runner.anytime_steps import anytime_step, episodic_step

        metrics = (anytime_step if strategy == "anytime" else episodic_step)(ctx, step)
    elif isinstance(ctx.algorithm, PolicyGradient):
        metrics = _policy_gradient_step(ctx, step)
    elif name == "sft" or ctx.algorithm.data == "demonstrations":
        metrics = _sft_step(ctx, step)
    elif ctx.algorithm.data == "preferences":
        metrics = _dpo_step(ctx, step)
    elif hasattr(ctx.algorithm, "select"):
        metrics = _rft_step(ctx, step)
    else:
        raise RewardGymError(f"The runner does not know how to train algorithm {name!r}.")
    ctx.scheduler.step()
    metrics["lr"] = ctx.scheduler.get_last_lr()[0]
    metrics["time/step_s"] = time.perf_counter() - start
    return metrics


# -- data ------------------------------------------------------------------------------------------
def _rollouts(ctx: StepContext, step: int) -> tuple[list[Episode], TokenBatch, dict[str, Any]]:
    rollout = ctx.stage.rollout
    start = time.perf_counter()
    seed = derive_seed(ctx.config.seed, ctx.stage.index, step)
    tasks = ctx.collector.sample_tasks(rollout.prompts_per_step, derive_seed(seed, 0))
    params = SamplingParams(
        max_new_tokens=rollout.max_new_tokens,
        temperature=rollout.temperature,
        top_p=rollout.top_p,
        stop=rollout.stop,
        seed=derive_seed(seed, 1),
    )
    episodes = ctx.collector.collect(tasks, rollout.group_size, params)
    batch = _pack_episodes(ctx, episodes)
    n = len(episodes)
    rewards = [e.reward for e in episodes if e.scorable]
    metrics = {
        "reward": sum(rewards) / max(len(rewards), 1),
        "accuracy": sum(e.correct for e in episodes) / n,
        "unscorable": float(sum(not e.scorable for e in episodes)),
        "completion_tokens": sum(e.num_model_tokens for e in episodes) / n,
        "turns": sum(len(e.verdicts) for e in episodes) / n,
        "time/rollout_s": time.perf_counter() - start,
    }
    return episodes, batch, metrics


def _pack_episodes(ctx: StepContext, episodes: list[Episode]) -> TokenBatch:
    """Episodes as a :class:`TokenBatch`: prompt ids, then everything after them, with the
    model's tokens as the loss mask and the engine's log-probs as ``old_logprobs``."""
    return pack(
        [e.prompt_ids for e in episodes],
        [e.response_ids for e in episodes],
        [[float(m) for m in e.model_mask] for e in episodes],
        [e.logprobs for e in episodes],
        pad_id(ctx.tokenizer),
    )


def pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id
    return int(pad if pad is not None else tokenizer.eos_token_id)


def _tensors(episodes: list[Episode]) -> tuple[torch.Tensor, torch.Tensor]:
    rewards = torch.tensor([e.reward for e in episodes], dtype=torch.float)  # (N,)
    scorable = torch.tensor([e.scorable for e in episodes], dtype=torch.bool)  # (N,)
    return rewards, scorable


def _demonstrations(ctx: StepContext, step: int) -> list[tuple[str, str]]:
    size = ctx.stage.rollout.prompts_per_step
    seed = derive_seed(ctx.config.seed, ctx.stage.index, step)
    if ctx.data is not None:
        return [(r["prompt"], r["response"]) for r in batch_at(ctx.data, step, size, seed)]
    tasks = ctx.collector.sample_tasks(size, derive_seed(seed, 0))
    env = ctx.collector.sampler().unwrapped
    return [(t.prompt, env.solution(t)) for t in tasks]


def _supervised_batch(ctx: StepContext, pairs: list[tuple[str, str]]) -> TokenBatch:
    eos = ctx.tokenizer.eos_token_id
    responses = [
        encode_text(ctx.tokenizer, r) + ([eos] if eos is not None else []) for _, r in pairs
    ]
    return pack(
        [encode_prompt(ctx.tokenizer, p) for p, _ in pairs],
        responses,
        [[1.0] * len(r) for r in responses],
        None,
        pad_id(ctx.tokenizer),
    )


# -- optimisation -----------------------------------------------------------------------------------
LossFn = Callable[[TokenBatch, slice], tuple[torch.Tensor, dict[str, float]]]


def _optimise(ctx: StepContext, batch: TokenBatch, loss_fn: LossFn) -> dict[str, float]:
    """One optimizer step: micro-batches (``trainer.grad_accum``), backward, clip, step."""
    return optimise_parts(ctx, [(batch, loss_fn)])


def optimise_parts(ctx: StepContext, parts: list[tuple[TokenBatch, LossFn]]) -> dict[str, float]:
    """One optimizer step over several batches (e.g. thinking rows and summary rows, packed
    apart so that neither pays the other's padding): each split into ``trainer.grad_accum``
    micro-batches; their losses add up to the step's loss."""
    trainer = ctx.stage.trainer
    start = time.perf_counter()
    ctx.optimizer.zero_grad(set_to_none=True)
    totals: dict[str, float] = {}
    total_rows = sum(batch.num_rows for batch, _ in parts)
    for batch, loss_fn in parts:
        for rows in micro_batches(batch.num_rows, trainer.grad_accum):
            loss, metrics = loss_fn(batch.select(rows), rows)
            loss.backward()
            _accumulate(totals, metrics, (rows.stop - rows.start) / total_rows)
    params = [p for p in ctx.model.parameters() if p.requires_grad]
    grad_norm = torch.nn.utils.clip_grad_norm_(params, trainer.max_grad_norm)
    if not torch.isfinite(grad_norm):
        ctx.optimizer.zero_grad(set_to_none=True)
        raise RewardGymError(
            f"The gradient norm is {float(grad_norm)} at this step: the loss is not finite. "
            "Lower trainer.lr or check the rewards."
        )
    ctx.optimizer.step()
    totals["grad_norm"] = float(grad_norm)
    totals["time/update_s"] = time.perf_counter() - start
    return totals


def _accumulate(totals: dict[str, float], metrics: dict[str, float], weight: float) -> None:
    """Add a micro-batch's metrics: ``loss`` is summed (micro-batch losses add up to the step's
    loss), the others are averaged, weighted by the micro-batch's share of rows."""
    for key, value in metrics.items():
        share = 1.0 if key == "loss" else weight
        totals[key] = totals.get(key, 0.0) + share * float(value)


def reference_logprobs(
    ctx: StepContext, batch: TokenBatch, temperature: float
) -> torch.Tensor | None:
    if ctx.ref_model is None:
        return None
    out = torch.zeros_like(batch.old_logprobs)  # (N, T)
    with torch.no_grad():
        for rows in micro_batches(batch.num_rows, ctx.stage.trainer.grad_accum):
            part = batch.select(rows)
            lp = sequence_logprobs(ctx.ref_model, part, temperature)  # (n, T')
            out[rows, : lp.shape[1]] = lp
    return out


# -- the steps --------------------------------------------------------------------------------------
def _policy_gradient_step(ctx: StepContext, step: int) -> dict[str, Any]:
    episodes, batch, metrics = _rollouts(ctx, step)
    rewards, scorable = _tensors(episodes)
    ref = reference_logprobs(ctx, batch, ctx.temperature)  # (N, T) or None
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
    gap: list[float] = []
    loss_fn = policy_loss_fn(ctx, advantages, mask, scale, ref, ctx.temperature, gap)
    return {**metrics, **train_parts(ctx, [(batch, loss_fn)], gap)}


def policy_loss_fn(
    ctx: StepContext,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    scale: LossScale,
    ref: torch.Tensor | None,
    temperature: float,
    gap: list[float],
) -> LossFn:
    """The policy loss of a micro-batch of rows of ``advantages`` / ``mask`` / ``ref``, all
    (N, T), sampled at ``temperature``; the first call logs the sampler-vs-trainer log-prob gap
    (before any update of this batch) into ``gap``."""

    def loss_fn(part: TokenBatch, rows: slice) -> tuple[torch.Tensor, dict[str, float]]:
        width = part.mask.shape[1]
        logprobs = sequence_logprobs(ctx.model, part, temperature)  # (n, T')
        if not gap:
            diff = (logprobs.detach() - part.old_logprobs).abs() * part.mask  # (n, T')
            gap.append(float(diff.sum() / part.mask.sum().clamp(min=1)))
        return ctx.algorithm.loss(
            logprobs,
            part.old_logprobs,
            advantages[rows, :width],
            mask[rows, :width],
            scale,
            ref_logprobs=None if ref is None else ref[rows, :width],
        )

    return loss_fn


def train_parts(
    ctx: StepContext, parts: list[tuple[TokenBatch, LossFn]], gap: list[float]
) -> dict[str, float]:
    """``trainer.updates_per_batch`` optimizer steps on ``parts``, then the engine samples from
    the new weights; the update's metrics with ``logprob_gap``."""
    for _ in range(ctx.stage.trainer.updates_per_batch):
        update = optimise_parts(ctx, parts)
    ctx.engine.update_weights(ctx.model)
    return {**update, "logprob_gap": gap[0] if gap else 0.0}


def _rft_step(ctx: StepContext, step: int) -> dict[str, Any]:
    episodes, batch, metrics = _rollouts(ctx, step)
    rewards, scorable = _tensors(episodes)
    keep = ctx.algorithm.select(rewards, scorable, ctx.stage.rollout.group_size)  # (N,)
    mask = batch.mask * keep[:, None].float()  # (N, T)
    metrics["kept"] = float(keep.sum())
    if int(keep.sum()) == 0:
        return {**metrics, "loss": 0.0, "grad_norm": 0.0}
    scale = LossScale(int(keep.sum()), max(1, int(mask.sum())), ctx.stage.rollout.max_new_tokens)
    rows_kept = keep.nonzero().squeeze(-1)  # (K,)
    kept = batch.select(rows_kept)
    kept_mask = mask[rows_kept]  # (K, T)

    def loss_fn(part: TokenBatch, rows: slice) -> tuple[torch.Tensor, dict[str, float]]:
        logprobs = sequence_logprobs(ctx.model, part, 1.0)  # (k, T')
        return ctx.algorithm.loss(logprobs, kept_mask[rows, : part.mask.shape[1]], scale)

    update = _optimise(ctx, kept, loss_fn)
    ctx.engine.update_weights(ctx.model)
    return {**metrics, **update}


def _sft_step(ctx: StepContext, step: int) -> dict[str, Any]:
    batch = _supervised_batch(ctx, _demonstrations(ctx, step))
    scale = LossScale(batch.num_rows, max(1, int(batch.mask.sum())), batch.mask.shape[1])

    def loss_fn(part: TokenBatch, rows: slice) -> tuple[torch.Tensor, dict[str, float]]:
        logprobs = sequence_logprobs(ctx.model, part, 1.0)  # (n, T')
        return ctx.algorithm.loss(logprobs, part.mask, scale)

    update = _optimise(ctx, batch, loss_fn)
    ctx.engine.update_weights(ctx.model)
    return {**update, "completion_tokens": float(batch.mask.sum()) / batch.num_rows}


def _preference_batch(ctx: StepContext, step: int) -> tuple[TokenBatch, int, dict[str, Any]]:
    """Chosen rows first, then rejected rows: (2P, ...)."""
    if ctx.data is not None:
        size = ctx.stage.rollout.prompts_per_step
        rows = batch_at(ctx.data, step, size, derive_seed(ctx.config.seed, ctx.stage.index, step))
        pairs = [(r["prompt"], r["chosen"]) for r in rows] + [
            (r["prompt"], r["rejected"]) for r in rows
        ]
        return _supervised_batch(ctx, pairs), len(rows), {}
    episodes, _, metrics = _rollouts(ctx, step)
    rewards, scorable = _tensors(episodes)
    pairs = ctx.algorithm.pairs(rewards, scorable, ctx.stage.rollout.group_size)
    order = [i for i, _ in pairs] + [j for _, j in pairs]
    batch = _pack_episodes(ctx, [episodes[i] for i in order])
    return batch, len(pairs), metrics


def _dpo_step(ctx: StepContext, step: int) -> dict[str, Any]:
    batch, num_pairs, metrics = _preference_batch(ctx, step)
    metrics["pairs"] = float(num_pairs)
    if num_pairs == 0:
        return {**metrics, "loss": 0.0, "grad_norm": 0.0}
    ref = reference_logprobs(ctx, batch, 1.0)  # (2P, T)
    ref_seq = (ref * batch.mask).sum(1)  # (2P,)

    def loss_fn(part: TokenBatch, rows: slice) -> tuple[torch.Tensor, dict[str, float]]:
        logprobs = sequence_logprobs(ctx.model, part, 1.0)  # (2p, T')
        seq = (logprobs * part.mask).sum(1)  # (2p,)
        half = seq.shape[0] // 2
        ref_part = ref_seq[rows]  # (2p,)
        return ctx.algorithm.loss(
            seq[:half], seq[half:], ref_part[:half], ref_part[half:], num_pairs
        )

    update = _optimise_pairs(ctx, batch, num_pairs, loss_fn)
    ctx.engine.update_weights(ctx.model)
    return {**metrics, **update}


def _optimise_pairs(
    ctx: StepContext, batch: TokenBatch, num_pairs: int, loss_fn: LossFn
) -> dict[str, float]:
    """Like :func:`_optimise`, but a micro-batch keeps each chosen row with its rejected row."""
    parts = micro_batches(num_pairs, ctx.stage.trainer.grad_accum)
    index = [
        torch.cat([torch.arange(s.start, s.stop), torch.arange(s.start, s.stop) + num_pairs])
        for s in parts
    ]

    trainer = ctx.stage.trainer
    start = time.perf_counter()
    ctx.optimizer.zero_grad(set_to_none=True)
    totals: dict[str, float] = {}
    for rows in index:
        loss, metrics = loss_fn(batch.select(rows), rows)
        loss.backward()
        _accumulate(totals, metrics, len(rows) / (2 * num_pairs))
    grad_norm = torch.nn.utils.clip_grad_norm_(list(ctx.model.parameters()), trainer.max_grad_norm)
    ctx.optimizer.step()
    return {**totals, "grad_norm": float(grad_norm), "time/update_s": time.perf_counter() - start}
