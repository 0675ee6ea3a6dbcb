"""Checks a run config before anything heavy loads, and builds what a run needs from it.

:func:`check_run` is called by ``rewardgym train`` and ``rewardgym eval`` (and by
:class:`~rewardgym.runner.trainer.Trainer`) before the model loads. It fails with a message that
says how to fix the problem when: the training extra (torch, transformers) is missing; a stage
has no algorithm; a name or a param is unknown (already caught by ``load_config``); the model
params do not fit the model; or a stage's strategy cannot run (its own checks: a data file
missing or malformed, an env without gold solutions for an SFT warm-up, an algorithm without the
methods the strategy calls); or ``trainer.micro_batch_tokens`` cannot hold one row of the
stage's longest first turn. Each stage's algorithm and strategy are built here, once.

The memory features are checked here too, when they do not fit together or on the device
(``model.dtype`` and ``trainer.mixed_precision``: see :mod:`~rewardgym.runner.precision`;
``model.lora`` without peft, or with vLLM's NCCL weight sync); what needs the loaded model
(``model.dtype: auto``, LoRA's target modules) is checked right after it loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rewardgym.core.config import RunConfig, Stage, build_dataclass, plan
from rewardgym.core.errors import ConfigError, MissingExtraError, require
from rewardgym.core.registry import ALGORITHMS, ENGINES, STRATEGIES

__all__ = [
    "DEFAULT_ENGINE",
    "RunPlan",
    "StagePlan",
    "check_loaded_dtype",
    "check_run",
    "engine_name",
    "model_device",
]

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
    _check_memory(config, model_device(config), training)
    stages = tuple(_check_stage(config, stage) for stage in plan(config)) if training else ()
    return RunPlan(config, stages, model_params)


def _check_memory(config: RunConfig, device: str, training: bool) -> None:
    """The memory features (``model.dtype``, each stage's ``trainer.mixed_precision``,
    ``model.lora``) against each other and the device; the checks that need the loaded model
    (``model.dtype: auto``, LoRA target modules) run right after it loads."""
    from importlib.util import find_spec

    from rewardgym.runner.precision import check_precision, supported_dtypes

    mixed = _mixed_precisions(config)
    if config.model.dtype not in ("float32", "auto") or any(v != "none" for _, v in mixed):
        supported = supported_dtypes(device)
        check_precision(
            config.model.dtype, mixed, device=device, supported=supported, training=training
        )
    if config.model.lora is None or not training:
        return
    if find_spec("peft") is None:
        raise MissingExtraError("peft", "training", "LoRA adapters (model.lora)")
    if engine_name(config) == "vllm" and config.engine.params.get("weight_sync") == "nccl":
        raise ConfigError(
            "model.lora cannot be combined with engine.params.weight_sync=nccl (the broadcast "
            "sends the peft model's own parameters, not the merged base weights vLLM holds). "
            "Use engine.params.weight_sync=reload, or train without model.lora."
        )


def check_loaded_dtype(config: RunConfig, dtype: Any, *, training: bool = True) -> None:
    """With ``model.dtype: auto``, the dtype the checkpoint loaded in (a torch dtype) checked
    as :func:`check_run` checks a named one (called right after the model loads)."""
    from rewardgym.runner.precision import check_precision, dtype_name, supported_dtypes

    name = dtype_name(dtype)
    if config.model.dtype != "auto" or name == "float32":
        return
    device = model_device(config)
    check_precision(
        name,
        _mixed_precisions(config),
        device=device,
        supported=supported_dtypes(device),
        training=training,
        dtype_key=f"model.dtype (auto: the checkpoint's {name})",
    )


def _mixed_precisions(config: RunConfig) -> list[tuple[str, str]]:
    """Each stage's ``trainer.mixed_precision``, with the key it comes from."""
    return [
        (_stage_key(config, s.index, "trainer", "mixed_precision"), s.trainer.mixed_precision)
        for s in plan(config)
    ]


def _stage_key(config: RunConfig, index: int, section: str, key: str) -> str:
    """The config key a stage's value comes from: the stage's own, or the top-level one."""
    if config.stages and key in getattr(config.stages[index], section):
        return f"stages[{index}].{section}.{key}"
    return f"{section}.{key}"


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
    _check_token_budget(stage)
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


def _check_token_budget(stage: Stage) -> None:
    """``trainer.micro_batch_tokens`` must hold one row of the stage's longest first turn: its
    prompt (at least one token, checked at run time) and ``rollout.max_new_tokens``."""
    budget, longest = stage.trainer.micro_batch_tokens, stage.rollout.max_new_tokens + 1
    if budget is not None and budget < longest:
        raise ConfigError(
            f"trainer.micro_batch_tokens is {budget} in stage '{stage.name}', less than one row "
            f"of it: a prompt (at least 1 token) and rollout.max_new_tokens="
            f"{stage.rollout.max_new_tokens} response tokens. Set trainer.micro_batch_tokens "
            f"to at least {longest} (a few rows' worth; prompt lengths are checked at run "
            "time), or null to form micro-batches by trainer.grad_accum rows."
        )
