"""Evaluating a policy on an env: accuracy, pass@k, reward and length; and accuracy at
thinking budgets.

Tasks are drawn with ``eval.seed`` (not the training seeds), ``eval.samples`` completions each
at ``eval.temperature``; multi-turn envs run their full episodes. pass@k uses the unbiased
estimator of Chen et al. (2021): ``1 - C(n - c, k) / C(n, k)`` per task, averaged.

With ``eval.budgets`` set, the same tasks also get a budget evaluation
(:func:`evaluate_budgets`): ``eval.samples`` thinking traces per task up to the largest budget,
and one forced answer at 0 tokens and at each budget (the anytime rollout's suffix and score).
It reports the accuracy at each point, the anytime accuracy (``sum_j P_j acc_j`` with
``eval.budget_prior``, as BRPO), the final accuracy (at b_m), the normalised regret
``1 - (1/b_m) * integral_0^b_m acc(c) dc`` with ``acc`` piecewise linear between the points
(MRT's metric, with the budgets as the points), and the mean thinking length.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rewardgym.core.budgets import BudgetSchedule
from rewardgym.core.config import EvalSection, RunConfig
from rewardgym.core.engine import SamplingParams
from rewardgym.core.types import Task
from rewardgym.strategies.rollouts import Episode, RolloutCollector, derive_seed, score_metrics
from rewardgym.strategies.thinking import force_answers, think

__all__ = [
    "evaluate",
    "evaluate_budgets",
    "evaluate_config",
    "normalised_regret",
    "pass_at_k",
    "summarise",
]


def pass_at_k(n: int, c: int, k: int) -> float:
    """The probability that at least one of k samples (of n, c of them correct) is correct."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def evaluate(
    collector: RolloutCollector,
    section: EvalSection,
    *,
    max_new_tokens: int,
    stop: Sequence[str] = (),
    batch_tasks: int = 64,
) -> dict[str, Any]:
    """Evaluate the collector's engine on ``section.episodes`` tasks; a JSON-ready dict."""
    start = time.perf_counter()
    tasks = collector.sample_tasks(section.episodes, derive_seed(section.seed, 0))
    episodes: list[Episode] = []
    for first in range(0, len(tasks), batch_tasks):
        params = SamplingParams(
            max_new_tokens=section.max_new_tokens or max_new_tokens,
            temperature=section.temperature,
            top_p=section.top_p,
            stop=tuple(stop),
            seed=derive_seed(section.seed, 1, first),
        )
        episodes += collector.collect(tasks[first : first + batch_tasks], section.samples, params)
    result = summarise(episodes, section.samples, section.pass_k)
    schedule = section.budget_schedule
    if schedule is not None:
        result["budgets"] = evaluate_budgets(
            collector,
            tasks,
            schedule,
            samples=section.samples,
            params=SamplingParams(
                max_new_tokens=section.max_new_tokens or max_new_tokens,
                temperature=section.temperature,
                top_p=section.top_p,
                stop=tuple(stop),
                seed=section.seed,
            ),
            batch_tasks=batch_tasks,
        )
    result["time_s"] = round(time.perf_counter() - start, 3)
    return result


def evaluate_budgets(
    collector: RolloutCollector,
    tasks: Sequence[Task],
    schedule: BudgetSchedule,
    *,
    samples: int,
    params: SamplingParams,
    batch_tasks: int = 64,
) -> dict[str, Any]:
    """Accuracy of forced answers at 0 thinking tokens and at each budget of ``schedule``, on
    ``samples`` traces per task; answers are sampled with ``params`` (at most
    ``params.max_new_tokens`` tokens), traces with the same temperature and top-p."""
    env = collector.sampler().unwrapped
    engine, prompts = collector.engine, collector.prompts
    points = [0, *schedule.budgets]
    correct = [0] * len(points)
    lengths, ended = [], []
    seed = 0 if params.seed is None else params.seed
    for first in range(0, len(tasks), batch_tasks):
        trace_params = replace(
            params, max_new_tokens=schedule.max_budget, seed=derive_seed(seed, 3, first)
        )
        traces = think(
            engine, prompts, env, tasks[first : first + batch_tasks], samples, trace_params
        )
        cuts = [[0, *schedule.cut_points(len(t))] for t in traces]
        answer_params = replace(params, seed=derive_seed(seed, 4, first))
        answers = force_answers(engine, prompts, env, traces, cuts, 1, answer_params)
        for answer in answers:
            correct[answer.point] += answer.verdict.correct
        lengths += [len(t) for t in traces]
        ended += [t.ended for t in traces]
    n = max(len(lengths), 1)
    accuracy = [c / n for c in correct]
    return {
        "budgets": points,
        "accuracy": accuracy,
        "prior": list(schedule.prior) if isinstance(schedule.prior, tuple) else schedule.prior,
        "anytime_accuracy": schedule.anytime_score(accuracy[1:]),
        "final_accuracy": accuracy[-1],
        "normalised_regret": normalised_regret(points, accuracy),
        "think_tokens": sum(lengths) / n,
        "think_ended": sum(ended) / n,
        "samples_per_task": samples,
        "episodes": len(tasks),
    }


def normalised_regret(budgets: Sequence[int], accuracy: Sequence[float]) -> float:
    """``1 - (1/C0) * integral_0^C0 acc(c) dc`` with C0 the last budget and ``acc`` piecewise
    linear through the points (budgets must start at 0 and increase)."""
    if len(budgets) != len(accuracy) or len(budgets) < 2 or budgets[0] != 0:
        raise ValueError(
            f"normalised_regret needs >= 2 points starting at budget 0, one accuracy each; got "
            f"budgets {list(budgets)} and {len(accuracy)} accuracies"
        )
    area = sum(
        (b1 - b0) * (a0 + a1) / 2
        for b0, b1, a0, a1 in zip(budgets, budgets[1:], accuracy, accuracy[1:], strict=False)
    )
    return 1.0 - area / budgets[-1]


def summarise(episodes: Sequence[Episode], samples: int, pass_k: Sequence[int]) -> dict[str, Any]:
    """Accuracy, pass@k, mean reward (over the scorable samples only: an unscorable one is
    counted in ``unscorable``, never averaged in as 0), mean generated tokens and turns."""
    n = len(episodes)
    groups = [episodes[i : i + samples] for i in range(0, n, samples)]
    scores = score_metrics(
        [e.reward for e in episodes], [e.scorable for e in episodes], [e.correct for e in episodes]
    )
    result: dict[str, Any] = {
        "episodes": len(groups),
        "samples_per_task": samples,
        "accuracy": scores["accuracy"],
        "mean_reward": scores["reward"],
        "mean_length": sum(e.num_model_tokens for e in episodes) / max(n, 1),
        "mean_turns": sum(len(e.verdicts) for e in episodes) / max(n, 1),
        "unscorable": int(scores["unscorable"]),
    }
    for k in pass_k:
        scores = [pass_at_k(len(g), sum(e.correct for e in g), k) for g in groups]
        result[f"pass@{k}"] = sum(scores) / max(len(scores), 1)
    return result


def evaluate_config(config: RunConfig) -> dict[str, Any]:
    """Load the config's model and evaluate it on the config's env (``rewardgym eval``)."""
    from rewardgym.runner.runtime import build_runtime, close_runtime
    from rewardgym.runner.setup import check_run

    plan = check_run(config, training=False)
    _, _, engine, collector, _ = build_runtime(plan)
    try:
        result = evaluate(
            collector,
            config.eval,
            max_new_tokens=config.rollout.max_new_tokens,
            stop=config.rollout.stop,
        )
    finally:
        close_runtime(collector, engine)
    return {
        "env": config.env.id,
        "model": config.model.name_or_path,
        "eval": {k: v for k, v in vars(config.eval).items()},
        **result,
    }
