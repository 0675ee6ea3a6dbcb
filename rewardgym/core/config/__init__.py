"""The run config: one structured, validated description of a training or evaluation run.

Split by job:

- :mod:`~rewardgym.core.config.schema`: the sections (frozen dataclasses), each validated when
  built: unknown keys, wrong types, closed choices (``Literal``) and ranges fail with the key,
  the value received and what was expected;
- :mod:`~rewardgym.core.config.loading`: :func:`load_config` (presets, YAML files, mappings,
  ``base:`` chains, omegaconf dotlist overrides) and :func:`to_yaml`;
- :mod:`~rewardgym.core.config.resolve`: components looked up in their registries, their params
  validated and filled with defaults, stages resolved once (:func:`plan`), each stage's strategy
  named and checked against its algorithm.

:func:`build_dataclass` is the validator every component's params go through. Nothing here
imports torch; omegaconf is imported only when a config is loaded or printed.
"""

from __future__ import annotations

from rewardgym.core.config.loading import load_config, preset_names, to_yaml
from rewardgym.core.config.resolve import plan, resolve
from rewardgym.core.config.schema import (
    AlgorithmSection,
    EngineSection,
    EnvSection,
    EvalSection,
    ModelSection,
    RaySection,
    RolloutSection,
    RunConfig,
    Stage,
    StageSection,
    StrategySection,
    TrainerSection,
    to_dict,
)
from rewardgym.core.params import build_dataclass

__all__ = [
    "AlgorithmSection",
    "EngineSection",
    "EnvSection",
    "EvalSection",
    "ModelSection",
    "RaySection",
    "RolloutSection",
    "RunConfig",
    "Stage",
    "StageSection",
    "StrategySection",
    "TrainerSection",
    "build_dataclass",
    "load_config",
    "plan",
    "preset_names",
    "resolve",
    "to_dict",
    "to_yaml",
]
