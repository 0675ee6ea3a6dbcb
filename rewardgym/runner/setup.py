"""Checks a run config before anything heavy loads, and builds what a run needs from it.

:func:`check_run` is called by ``rewardgym train`` and ``rewardgym eval`` (and by
:class:`~rewardgym.runner.trainer.Trainer`) before the model loads. It fails with a message that
says how to fix the problem when: the training extra (torch, transformers) is missing; a stage
has no algorithm; a name or a param is unknown (already caught by ``load_config``); the model
params do not fit the model; a data file is missing or malformed; the env has no gold solutions
for an SFT warm-up from the env; or the rollout strategy is not the one the algorithm trains on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rewardgym.core.config import RunConfig, Stage, build_dataclass
from rewardgym.core.errors import ConfigError, MissingExtraError, require
from rewardgym.core.make import make
from rewardgym.core.registry import ALGORITHMS, ENGINES

__all__ = ["DEFAULT_ENGINE", "RunPlan", "StagePlan", "check_run", "engine_name", "model_device"]

DEFAULT_ENGINE = "hf"


@dataclass(frozen=True)
class StagePlan:
    stage: Stage
    algorithm: Any  # the built Algorithm
    data: list[dict[str, str]] | None  # JSONL rows the algorithm trains on, if any


@dataclass(frozen=True)
class RunPlan:
    config: RunConfig
    stages: tuple[StagePlan, ...]
    model_params: Any  # the model params dataclass


def engine_name(config: RunConfig) -> str:
    return config.engine.name or DEFAULT_ENGINE


def check_run(config: RunConfig, *, training: bool = True) -> RunPlan:
    """Everything about ``config`` that can be checked without loading the model."""
    require("torch", "training", "training and evaluating models")
    require("transformers", "training", "training and evaluating models")
    from rewardgym.runner.model_config import model_params_class

    name = config.model.name_or_path
    model_params = build_dataclass(
        model_params_class(name), config.model.params, component=f"model '{name}'"
    )
    ENGINES.make_config(engine_name(config), config.engine.params)
    _check_packages(config)
    model_device(config)
    stages = tuple(_check_stage(config, stage) for stage in config.plan()) if training else ()
    return RunPlan(config, stages, model_params)


def model_device(config: RunConfig) -> str:
    """The device the policy trains on: ``model.device``, with "auto" resolved (the first CUDA
    GPU when torch sees one, else the CPU). A CUDA device torch cannot see is an error."""
    import torch

    device = config.model.device
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            raise ConfigError(
                f"model.device is {device!r}, but torch sees {count} CUDA GPU(s). Use "
                "model.device=cpu, or auto to pick a GPU only when there is one."
            )
    return device


def _check_packages(config: RunConfig) -> None:
    """The packages the engine and Ray need, found without importing them (vLLM takes seconds
    to import)."""
    from importlib.util import find_spec

    if engine_name(config) == "vllm" and find_spec("vllm") is None:
        from rewardgym.runner.engines.vllm import missing_vllm

        raise missing_vllm()
    if config.ray.enabled and find_spec("ray") is None:
        raise MissingExtraError("ray", "ray", "ray.engines and ray.verifier_workers")


def _check_stage(config: RunConfig, stage: Stage) -> StagePlan:
    where = "algorithm.name" if not config.stages else f"stages[{stage.index}].algorithm.name"
    if stage.algorithm.name is None:
        raise ConfigError(
            f"No algorithm is set ({where}). Choose one of: {', '.join(ALGORITHMS.ids())} "
            f"(e.g. rewardgym train CONFIG {where.replace('.name', '')}.name=grpo)."
        )
    algorithm = ALGORITHMS.build(stage.algorithm.name, stage.algorithm.params)
    _check_strategy(config, stage, algorithm)
    return StagePlan(stage, algorithm, _stage_data(config, stage, algorithm))


def _check_strategy(config: RunConfig, stage: Stage, algorithm: Any) -> None:
    """The stage's rollout.strategy must be the one its algorithm trains on (algorithms that do
    not sample rollouts, such as sft, ignore it)."""
    needed = getattr(algorithm, "strategy", "standard")
    if algorithm.data != "rollouts" or getattr(algorithm.config, "source", None) == "jsonl":
        return
    have = stage.rollout.strategy
    if have != needed:
        where = (
            "rollout.strategy" if not config.stages else f"stages[{stage.index}].rollout.strategy"
        )
        raise ConfigError(
            f"Algorithm {stage.algorithm.name!r} (stage '{stage.name}') trains on {needed!r} "
            f"rollouts, but {where} is {have!r}. Set {where}={needed}"
            + (" (with rollout.anytime.budgets)" if needed == "anytime" else "")
            + (" (with rollout.episodic.markers)" if needed == "episodic" else "")
            + "."
        )


def _stage_data(config: RunConfig, stage: Stage, algorithm: Any) -> list[dict[str, str]] | None:
    from rewardgym.runner.data import DEMONSTRATION_KEYS, PREFERENCE_KEYS, read_jsonl

    source = getattr(algorithm.config, "source", None)
    if source == "jsonl":
        if algorithm.data == "preferences":
            return read_jsonl(algorithm.config.path, PREFERENCE_KEYS, "preference")
        return read_jsonl(algorithm.config.path, DEMONSTRATION_KEYS, "demonstration")
    if algorithm.data == "demonstrations":
        _check_env_solutions(config, stage)
    return None


def _check_env_solutions(config: RunConfig, stage: Stage) -> None:
    """SFT from the env needs gold solutions; check the env gives one for a sample task."""
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
