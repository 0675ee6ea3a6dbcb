"""Evaluating a policy on an env: accuracy, pass@k, reward and length.

Tasks are drawn with ``eval.seed`` (not the training seeds), ``eval.samples`` completions each
at ``eval.temperature``; multi-turn envs run their full episodes. pass@k uses the unbiased
estimator of Chen et al. (2021): ``1 - C(n - c, k) / C(n, k)`` per task, averaged.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from rewardgym.core.config import EvalSection, RunConfig
from rewardgym.runner.engines.base import SamplingParams
from rewardgym.runner.rollout import Episode, RolloutCollector, derive_seed

__all__ = ["evaluate", "evaluate_config", "pass_at_k", "summarise"]


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
    result["time_s"] = round(time.perf_counter() - start, 3)
    return result


def summarise(episodes: Sequence[Episode], samples: int, pass_k: Sequence[int]) -> dict[str, Any]:
    """Accuracy, pass@k, mean reward, mean generated tokens, turns and unscorable counts."""
    n = len(episodes)
    groups = [episodes[i : i + samples] for i in range(0, n, samples)]
    result: dict[str, Any] = {
        "episodes": len(groups),
        "samples_per_task": samples,
        "accuracy": sum(e.correct for e in episodes) / max(n, 1),
        "mean_reward": sum(e.reward for e in episodes) / max(n, 1),
        "mean_length": sum(e.num_model_tokens for e in episodes) / max(n, 1),
        "mean_turns": sum(len(e.verdicts) for e in episodes) / max(n, 1),
        "unscorable": sum(not e.scorable for e in episodes),
    }
    for k in pass_k:
        scores = [pass_at_k(len(g), sum(e.correct for e in g), k) for g in groups]
        result[f"pass@{k}"] = sum(scores) / max(len(scores), 1)
    return result


def evaluate_config(config: RunConfig) -> dict[str, Any]:
    """Load the config's model and evaluate it on the config's env (``rewardgym eval``)."""
    from rewardgym.runner.setup import check_run
    from rewardgym.runner.trainer import build_runtime

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
        collector.close()
        engine.close()
    return {
        "env": config.env.id,
        "model": config.model.name_or_path,
        "eval": {k: v for k, v in vars(config.eval).items()},
        **result,
    }
