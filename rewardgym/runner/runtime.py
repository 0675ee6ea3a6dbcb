"""What a run holds while it trains or evaluates: the model, its tokenizer, the engine and the
envs, built from a checked :class:`~rewardgym.runner.setup.RunPlan` and closed together."""

from __future__ import annotations

import dataclasses
from typing import Any

from rewardgym.core.make import make
from rewardgym.core.registry import ENGINES
from rewardgym.runner.rollout import RolloutCollector
from rewardgym.runner.setup import RunPlan, engine_name, model_device

__all__ = ["build_runtime", "close_runtime"]


def build_runtime(plan: RunPlan) -> tuple[Any, Any, Any, RolloutCollector, int]:
    """Model, tokenizer, engine, a rollout collector on the env, and the env's max turns."""
    from rewardgym.runner.models import load_model

    config = plan.config
    model, tokenizer = load_model(
        config.model.name_or_path, plan.model_params, config.model.dtype, model_device(config)
    )
    model.eval()  # no dropout: sampling and training see the same function
    engine = _build_engine(plan, model, tokenizer)
    env_id, env_params = config.env.id, dict(config.env.params)
    probe = make(env_id, **env_params)
    max_turns = int(getattr(probe.unwrapped, "max_turns", 1))
    probe.close()
    collector = RolloutCollector(
        lambda: make(env_id, **env_params),
        engine,
        tokenizer,
        max_context=int(getattr(model.config, "max_position_embeddings", 2048)),
        turn_separator=config.rollout.turn_separator,
        env_threads=config.rollout.env_threads,
    )
    return model, tokenizer, engine, collector, max_turns


def _build_engine(plan: RunPlan, model: Any, tokenizer: Any) -> Any:
    """The run's engine: in this process, or ``ray.engines`` actors (then Ray starts first,
    with the verifier pool on Ray when ``ray.verifier_workers`` is set)."""
    config = plan.config
    if config.ray.enabled:
        from rewardgym.runner.ray_pool import start_ray_runtime

        start_ray_runtime(config.ray)
    if config.ray.engines > 0:
        from rewardgym.runner.ray_pool import RayEnginePool

        spec = {
            "name_or_path": config.model.name_or_path,
            "params": dataclasses.asdict(plan.model_params),
            "dtype": config.model.dtype,
        }
        try:
            return RayEnginePool(
                model, engine_name(config), dict(config.engine.params), spec, config.ray
            )
        except BaseException:
            from rewardgym.runner.ray_pool import close_ray_runtime

            close_ray_runtime()
            raise
    spec = ENGINES.get(engine_name(config))
    return spec.load()(model, tokenizer, ENGINES.make_config(spec.id, config.engine.params))


def close_runtime(collector: Any, engine: Any) -> None:
    """Close what :func:`build_runtime` started: envs, the engine, and the Ray runtime."""
    try:
        collector.close()
        engine.close()
    finally:
        from rewardgym.runner.ray_pool import close_ray_runtime

        close_ray_runtime()
