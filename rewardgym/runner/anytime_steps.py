"""Training steps on anytime (BRPO) and episodic (MRT) rollouts.

Shapes: B prompts x G traces (N = B * G rows, a prompt's traces contiguous); m budgets; A
summaries per (trace, budget); T token positions of a packed batch; E the most episodes of any
trace in the step.

- ``anytime``: G traces per prompt of at most b_m tokens; A summaries at every budget. The
  thinking rows (prompt + trace) and the summary rows (prompt + trace[:b_j] + suffix, then the
  summary) are packed apart and trained in one optimizer step; the inserted suffix is in the
  summary rows' context, so it is never trained on. Summary rows are trained at the summary
  sampling temperature (the log-prob convention of the engine).
- ``episodic``: G traces per prompt of at most ``rollout.max_new_tokens`` tokens; one final
  answer after each whole trace (the outcome, trained on); K probes at each episode boundary
  (scores only). A row is prompt + trace + suffix (masked) + final answer.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import replace
from typing import Any

import torch

from rewardgym.algorithms._anytime import token_advantages
from rewardgym.algorithms.base import LossScale
from rewardgym.core.engine import SamplingParams
from rewardgym.runner.anytime import ForcedAnswer, Trace, episode_cuts, force_answers, think
from rewardgym.runner.batch import TokenBatch, pack
from rewardgym.runner.prefix import Continuations, continuations, prefix_logprobs
from rewardgym.runner.rollout import derive_seed
from rewardgym.runner.steps import (
    StepContext,
    pad_id,
    policy_loss_fn,
    reference_logprobs,
    train_parts,
)

__all__ = ["anytime_step", "episodic_step"]


def _traces(ctx: StepContext, step: int, max_tokens: int) -> tuple[list[Trace], int]:
    rollout = ctx.stage.rollout
    seed = derive_seed(ctx.config.seed, ctx.stage.index, step)
    tasks = ctx.collector.sample_tasks(rollout.prompts_per_step, derive_seed(seed, 0))
    params = SamplingParams(
        max_tokens, rollout.temperature, rollout.top_p, rollout.stop, derive_seed(seed, 1)
    )
    env = ctx.collector.sampler().unwrapped
    return think(ctx.engine, ctx.tokenizer, env, tasks, rollout.group_size, params), seed


def _answers(
    ctx: StepContext, traces: list[Trace], cuts: list[list[int]], samples: int, params: Any
) -> list[ForcedAnswer]:
    env = ctx.collector.sampler().unwrapped
    return force_answers(ctx.engine, ctx.tokenizer, env, traces, cuts, samples, params)


def _update(ctx: StepContext, parts: list[tuple], num_rows: int, max_tokens: int) -> dict:
    """Optimizer steps on ``parts`` = [(batch, adv, mask, temperature)], then the engine sees
    the new weights."""
    scale = LossScale(
        num_rows=max(1, num_rows),
        num_tokens=max(1, int(sum(float(mask.sum()) for _, _, mask, _ in parts))),
        max_tokens=max(1, max_tokens),
    )
    gap: list[float] = []
    fns = []
    for batch, adv, mask, temperature in parts:
        ref = reference_logprobs(ctx, batch, temperature)  # (n, T) or None
        fns.append((batch, policy_loss_fn(ctx, adv, mask, scale, ref, temperature, gap)))
    return train_parts(ctx, fns, gap)


# -- anytime (BRPO) ---------------------------------------------------------------------------------
def anytime_step(ctx: StepContext, step: int) -> dict[str, Any]:
    rollout = ctx.stage.rollout
    anytime = rollout.anytime
    schedule = anytime.schedule
    start = time.perf_counter()
    traces, seed = _traces(ctx, step, schedule.max_budget)
    temperature = rollout.temperature
    if anytime.summary_temperature is not None:
        temperature = anytime.summary_temperature
    params = SamplingParams(
        anytime.summary_max_tokens, temperature, rollout.top_p, rollout.stop, derive_seed(seed, 2)
    )
    cuts = [schedule.cut_points(len(t)) for t in traces]
    answers = _answers(ctx, traces, cuts, anytime.summaries, params)
    rollout_s = time.perf_counter() - start

    n, m, a = len(traces), len(schedule.budgets), anytime.summaries
    shape = (n // rollout.group_size, rollout.group_size, m, a)
    rewards = torch.tensor([x.reward for x in answers], dtype=torch.float).reshape(shape)
    scorable = torch.tensor([x.verdict.scorable for x in answers]).reshape(shape)
    segment_adv, summary_adv = ctx.algorithm.anytime_advantages(rewards, scorable, schedule.probs)

    pad = pad_id(ctx.tokenizer)
    thinking = pack(
        [t.prompt_ids for t in traces],
        [t.ids for t in traces],
        [[1.0] * len(t) for t in traces],
        [t.logprobs for t in traces],
        pad,
    )
    segments = torch.full(thinking.mask.shape, -1, dtype=torch.long)  # (N, T)
    for i, trace in enumerate(traces):
        segments[i, : len(trace)] = torch.tensor(schedule.segments(len(trace)), dtype=torch.long)
    think_adv = token_advantages(segment_adv.reshape(n, m), segments, thinking.mask)  # (N, T)
    if anytime.shared_prefix:
        conts = continuations(answers, pad)
        cont_adv = summary_adv.reshape(-1, 1).to(conts.mask.dtype) * conts.mask  # (NmA, C)
        update = _shared_prefix_update(
            ctx, thinking, think_adv, conts, cont_adv, schedule.max_budget, temperature
        )
    else:
        summaries = pack(
            [x.context for x in answers],
            [x.ids for x in answers],
            [[float(x.verdict.scorable)] * len(x.ids) for x in answers],
            [x.logprobs for x in answers],
            pad,
        )
        summary_tok = summary_adv.reshape(-1, 1).to(summaries.mask.dtype) * summaries.mask
        parts = [
            (thinking, think_adv, thinking.mask, rollout.temperature),
            (summaries, summary_tok, summaries.mask, temperature),
        ]
        update = _update(ctx, parts, n, schedule.max_budget)
    return {
        **_anytime_metrics(traces, answers, schedule, shape),
        **update,
        "time/rollout_s": rollout_s,
    }


def _shared_prefix_update(
    ctx: StepContext,
    thinking: TokenBatch,
    think_adv: torch.Tensor,
    conts: Continuations,
    cont_adv: torch.Tensor,
    max_tokens: int,
    answer_temperature: float,
) -> dict[str, Any]:
    """Optimizer steps where each micro-batch of traces runs once, with the summaries of its
    prefixes continuing from the traces' KV cache (:mod:`rewardgym.runner.prefix`)."""
    scale = LossScale(
        num_rows=thinking.num_rows,
        num_tokens=max(1, int(thinking.mask.sum() + conts.mask.sum())),
        max_tokens=max(1, max_tokens),
    )
    temperature = ctx.stage.rollout.temperature
    gap: list[float] = []

    def loss_fn(part: TokenBatch, rows: slice) -> tuple[torch.Tensor, dict[str, float]]:
        sub, keep = conts.select(rows)
        think_lp, cont_lp = prefix_logprobs(ctx.model, part, sub, temperature, answer_temperature)
        ref_think = ref_cont = None
        if ctx.ref_model is not None:
            with torch.no_grad():
                ref_think, ref_cont = prefix_logprobs(
                    ctx.ref_model, part, sub, temperature, answer_temperature
                )  # (n, T), (r, C)
        if not gap:
            diff = (think_lp.detach() - part.old_logprobs).abs() * part.mask  # (n, T)
            gap.append(float(diff.sum() / part.mask.sum().clamp(min=1)))
        width = part.mask.shape[1]
        loss, metrics = ctx.algorithm.loss(
            think_lp, part.old_logprobs, think_adv[rows, :width], part.mask, scale,
            ref_logprobs=ref_think,
        )  # fmt: skip
        if sub.num_rows:
            more, other = ctx.algorithm.loss(
                cont_lp, sub.old_logprobs, cont_adv[keep], sub.mask, scale, ref_logprobs=ref_cont
            )
            loss = loss + more
            metrics = {k: (v + other[k]) / (1 if k == "loss" else 2) for k, v in metrics.items()}
        return loss, metrics

    return train_parts(ctx, [(thinking, loss_fn)], gap)


def _anytime_metrics(traces, answers, schedule, shape) -> dict[str, float]:
    correct = torch.tensor([x.verdict.correct for x in answers], dtype=torch.float)
    per_budget = correct.reshape(shape).mean(dim=(0, 1, 3))  # (m,)
    metrics = {
        f"accuracy/b{b}": float(acc) for b, acc in zip(schedule.budgets, per_budget, strict=True)
    }
    metrics["anytime_accuracy"] = schedule.anytime_score([float(x) for x in per_budget])
    metrics["accuracy"] = float(per_budget[-1])
    metrics["reward"] = sum(x.reward for x in answers if x.verdict.scorable) / max(
        1, sum(x.verdict.scorable for x in answers)
    )
    metrics["unscorable"] = float(sum(not x.verdict.scorable for x in answers))
    metrics["think_tokens"] = sum(len(t) for t in traces) / len(traces)
    metrics["think_ended"] = sum(t.ended for t in traces) / len(traces)
    metrics["completion_tokens"] = metrics["think_tokens"]
    metrics["summary_tokens"] = sum(len(x.ids) for x in answers) / max(1, len(answers))
    return metrics


# -- episodic (MRT) ---------------------------------------------------------------------------------
def episodic_step(ctx: StepContext, step: int) -> dict[str, Any]:
    rollout = ctx.stage.rollout
    episodic = rollout.episodic
    start = time.perf_counter()
    traces, seed = _traces(ctx, step, rollout.max_new_tokens)
    final_params = SamplingParams(
        episodic.probe_max_tokens,
        rollout.temperature,
        rollout.top_p,
        rollout.stop,
        derive_seed(seed, 2),
    )
    finals = _answers(ctx, traces, [[len(t)] for t in traces], 1, final_params)
    n = len(traces)
    if ctx.algorithm.needs_probes:
        points = [episode_cuts(ctx.tokenizer, t, episodic.segmenter) for t in traces]
        probe_params = replace(
            final_params, temperature=episodic.probe_temperature, seed=derive_seed(seed, 3)
        )
        probes = _answers(ctx, traces, points, episodic.probes, probe_params)
    else:  # outcome only: one episode per trace, no probes
        points = [[0, len(t)] if len(t) else [0] for t in traces]
        probes = []
    J, J_valid = _probe_scores(probes, points, n, episodic.probes)  # (N, E + 1), (N, E + 1)
    num_episodes = torch.tensor([len(p) - 1 for p in points])  # (N,)
    rollout_s = time.perf_counter() - start

    outcome = torch.tensor([f.reward for f in finals], dtype=torch.float)  # (N,)
    scorable = torch.tensor([f.verdict.scorable for f in finals])  # (N,)
    episode_adv, answer_adv = ctx.algorithm.episodic_advantages(
        outcome, scorable, J, J_valid, num_episodes, rollout.group_size
    )  # (N, E), (N,)
    batch, adv = _episodic_rows(ctx, traces, finals, points, episode_adv, answer_adv)
    mask = batch.mask * scorable[:, None].float()  # (N, T) unscorable rows are not trained
    max_tokens = rollout.max_new_tokens + episodic.probe_max_tokens
    update = _update(
        ctx, [(batch, adv, mask, rollout.temperature)], int(scorable.sum()), max_tokens
    )
    metrics = _episodic_metrics(traces, finals, J, J_valid, num_episodes, bool(probes))
    return {**metrics, **update, "time/rollout_s": rollout_s}


def _probe_scores(
    probes: list[ForcedAnswer], points: list[list[int]], n: int, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """J (mean reward of the scorable probes at each point) and whether any was scorable;
    (N, E + 1), points past a row's last one invalid."""
    width = max(2, max(len(p) for p in points))
    total = torch.zeros(n, width, dtype=torch.float64)  # (N, E + 1)
    count = torch.zeros(n, width, dtype=torch.float64)  # (N, E + 1)
    for probe in probes:
        if probe.verdict.scorable:
            total[probe.trace, probe.point] += probe.reward
            count[probe.trace, probe.point] += 1
    return total / count.clamp(min=1), count > 0


def _episodic_rows(ctx, traces, finals, points, episode_adv, answer_adv):
    """Rows prompt + trace + suffix + final answer, and their per-token advantages (N, T):
    each trace token gets its episode's advantage, answer tokens the answer's; the suffix 0."""
    responses, masks, logprobs, advs = [], [], [], []
    for i, (trace, final) in enumerate(zip(traces, finals, strict=True)):
        suffix = final.context[len(trace.prompt_ids) + len(trace) :]
        responses.append((*trace.ids, *suffix, *final.ids))
        masks.append([1.0] * len(trace) + [0.0] * len(suffix) + [1.0] * len(final.ids))
        logprobs.append((*trace.logprobs, *(0.0,) * len(suffix), *final.logprobs))
        episodes = [bisect.bisect_right(points[i], k) - 1 for k in range(len(trace))]
        row = [float(episode_adv[i, e]) for e in episodes]
        advs.append(row + [0.0] * len(suffix) + [float(answer_adv[i])] * len(final.ids))
    batch = pack([t.prompt_ids for t in traces], responses, masks, logprobs, pad_id(ctx.tokenizer))
    adv = torch.zeros(batch.mask.shape)  # (N, T)
    for i, row in enumerate(advs):
        adv[i, : len(row)] = torch.tensor(row)
    return batch, adv * batch.mask


def _episodic_metrics(traces, finals, J, J_valid, num_episodes, probed: bool) -> dict[str, float]:
    n = len(traces)
    metrics = {
        "accuracy": sum(f.verdict.correct for f in finals) / n,
        "reward": sum(f.reward for f in finals if f.verdict.scorable)
        / max(1, sum(f.verdict.scorable for f in finals)),
        "unscorable": float(sum(not f.verdict.scorable for f in finals)),
        "think_tokens": sum(len(t) for t in traces) / n,
        "think_ended": sum(t.ended for t in traces) / n,
        "completion_tokens": sum(len(t) + len(f.ids) for t, f in zip(traces, finals, strict=True))
        / n,
        "episodes": float(num_episodes.float().mean()),
    }
    if probed:
        last = num_episodes.clamp(min=0)[:, None]  # (N, 1)
        j_end = J.gather(1, last)[:, 0]  # (N,)
        metrics["probe_J0"] = float(J[:, 0][J_valid[:, 0]].mean()) if J_valid[:, 0].any() else 0.0
        end_ok = J_valid.gather(1, last)[:, 0]  # (N,)
        metrics["probe_Jend"] = float(j_end[end_ok].mean()) if end_ok.any() else 0.0
    return metrics
