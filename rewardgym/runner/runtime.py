"""What a run holds while it trains or evaluates: the model, its tokenizer, the engine and the
envs, built from a checked :class:`~rewardgym.runner.setup.RunPlan` and closed together.

The run owns what it starts, and nothing is installed process-wide. With Ray
(``ray.engines`` or ``ray.verifier_workers``), :func:`build_runtime` connects to Ray first
(:func:`~rewardgym.runner.ray_pool.start_ray`, which returns a
:class:`~rewardgym.runner.ray_pool.RayRuntime`). With ``ray.verifier_workers > 0`` that runtime
holds the run's verifier pool on Ray workers, and every env the run makes gets it
(``make(env_id, verifier_pool=pool)``); envs made elsewhere in the process keep their default
pool (:func:`~rewardgym.core.verify.shared_pool`).

How prompts reach the model: :func:`build_runtime` builds the run's
:class:`~rewardgym.strategies.prompts.PromptFormat` from the tokenizer and ``model.chat`` (the
collector carries it, as ``collector.prompts``) and renders one real prompt of the env with it
(and one reply, for a multi-turn env), so that a chat template that cannot render them, or
``model.chat`` keys that would be ignored, fail before any step.

Where the Ray runtime lives: on the rollout collector that :func:`build_runtime` returns, as
``collector.ray_runtime`` (None without Ray). The collector makes the envs that score through
the runtime's pool, and callers hand it back to :func:`close_runtime`, which closes the envs,
then the engine, then the Ray runtime. So :func:`build_runtime` keeps its 5-tuple and no module
global is needed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rewardgym.core.make import make
from rewardgym.core.registry import ENGINES
from rewardgym.runner.setup import RunPlan, engine_name, model_device
from rewardgym.strategies.prompts import PromptFormat
from rewardgym.strategies.rollouts import RolloutCollector

__all__ = ["build_runtime", "close_runtime"]


def build_runtime(plan: RunPlan) -> tuple[Any, Any, Any, RolloutCollector, int]:
    """Model, tokenizer, engine, a rollout collector on the env, and the env's max turns.
    Close them with :func:`close_runtime` ``(collector, engine)``."""
    from rewardgym.runner.models import load_model

    config = plan.config
    model, tokenizer = load_model(
        config.model.name_or_path, plan.model_params, config.model.dtype, model_device(config)
    )
    model.eval()  # no dropout: sampling and training see the same function
    ray_runtime = None
    if config.ray.enabled:
        from rewardgym.runner.ray_pool import start_ray

        ray_runtime = start_ray(config.ray)
    engine = None
    try:
        engine = _build_engine(plan, model, tokenizer)
        pool = None if ray_runtime is None else ray_runtime.verifier_pool
        env_id, env_params = config.env.id, dict(config.env.params)
        prompts = PromptFormat(
            tokenizer, config.model.chat, turn_separator=config.rollout.turn_separator
        )
        probe = make(env_id, verifier_pool=pool, **env_params)
        try:
            max_turns = int(getattr(probe.unwrapped, "max_turns", 1))
            _check_prompts(prompts, probe, max_turns)
        finally:
            probe.close()
        collector = RolloutCollector(
            lambda: make(env_id, verifier_pool=pool, **env_params),
            engine,
            tokenizer,
            max_context=int(getattr(model.config, "max_position_embeddings", 2048)),
            env_threads=config.rollout.env_threads,
            prompts=prompts,
        )
    except BaseException:
        _close_all(None, engine, ray_runtime)
        raise
    collector.ray_runtime = ray_runtime  # what close_runtime closes last
    return model, tokenizer, engine, collector, max_turns


def _check_prompts(prompts: PromptFormat, env: Any, max_turns: int) -> None:
    """With a chat template, render the env's first prompt (and, for a multi-turn env, a reply
    in its role); with ``model.chat.think_end`` / ``answer_cue``, apply them to the env's
    answer-forcing protocol: a ConfigError now rather than at a step."""
    if prompts.templated:
        prompt, _ = env.reset(seed=0)
        reply = "Your answer is incorrect. Please try again." if max_turns > 1 else None
        prompts.check(prompt, reply=reply, role=prompts.reply_role(env))
    if prompts.chat.think_end is not None or prompts.chat.answer_cue is not None:
        prompts.forcing(env)


def _build_engine(plan: RunPlan, model: Any, tokenizer: Any) -> Any:
    """The run's engine: in this process, or ``ray.engines`` actors on the Ray cluster that
    :func:`build_runtime` connected to."""
    config = plan.config
    if config.ray.engines > 0:
        from rewardgym.runner.ray_pool import RayEnginePool

        spec = {
            "name_or_path": config.model.name_or_path,
            "params": dataclasses.asdict(plan.model_params),
            "dtype": config.model.dtype,
        }
        return RayEnginePool(
            model, engine_name(config), dict(config.engine.params), spec, config.ray
        )
    spec = ENGINES.get(engine_name(config))
    return spec.load()(model, tokenizer, ENGINES.make_config(spec.id, config.engine.params))


def close_runtime(collector: Any, engine: Any) -> None:
    """Close what :func:`build_runtime` started: the envs, the engine, and the run's Ray
    runtime (its verifier pool, and Ray itself when the run started it)."""
    _close_all(collector, engine, getattr(collector, "ray_runtime", None))


def _close_all(collector: Any, engine: Any, ray_runtime: Any) -> None:
    """Close each that is not None, in this order, even when an earlier one raises."""
    try:
        try:
            if collector is not None:
                collector.close()
        finally:
            if engine is not None:
                engine.close()
    finally:
        if ray_runtime is not None:
            ray_runtime.close()
