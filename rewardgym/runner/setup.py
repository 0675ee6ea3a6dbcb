"""Checks a run config before anything heavy loads, and builds what a run needs from it.

:func:`check_run` is called by ``rewardgym train`` and ``rewardgym eval`` (and by
:class:`~rewardgym.runner.trainer.Trainer`) before the model loads. It fails with a message that
says how to fix the problem when: the training extra (torch, transformers) is missing; a stage
has no algorithm; a name or a param is unknown (already caught by ``load_config``); the model
params do not fit the model; or a stage's strategy cannot run (its own checks: a data file
missing or malformed, an env without gold solutions for an SFT warm-up, an algorithm without the
methods the strategy calls). Each stage's algorithm and strategy are built here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rewardgym.core.config import RunConfig, Stage, build_dataclass, plan
from rewardgym.core.errors import ConfigError, MissingExtraError, require
from rewardgym.core.registry import ALGORITHMS, ENGINES, STRATEGIES

__all__ = ["DEFAULT_ENGINE", "RunPlan", "StagePlan", "check_run", "engine_name", "model_device"]

DEFAULT_ENGINE = "hf"


@dataclass(frozen=True)
class StagePlan:
    stage: Stage
    algorithm: Any  # the built Algorithm
    strategy: Any  # the built Strategy, checked against the stage (its data files read)


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
    stages = tuple(_check_stage(config, stage) for stage in plan(config)) if training else ()
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
    if stage.strategy.name is None:
        key = "strategy" if not config.stages else f"stages[{stage.index}].strategy"
        raise ConfigError(
            f"Algorithm {stage.algorithm.name!r} ({type(algorithm).__name__}) declares no "
            f"strategy (a `strategy` class attribute), so the stage does not know how to make "
            f"its data. Set {key} (one of: {', '.join(STRATEGIES.ids())})."
        )
    strategy = STRATEGIES.build(stage.strategy.name, stage.strategy.params)
    strategy.check(config, stage, algorithm)
    return StagePlan(stage, algorithm, strategy)
