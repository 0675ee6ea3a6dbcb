"""Resolving a run config: components looked up, params filled, stages merged, once.

:func:`resolve` takes a :class:`~rewardgym.core.config.schema.RunConfig` whose sections are
valid on their own and

- looks the env id, strategy, algorithm and engine names up in their registries (a
  did-you-mean for a typo) and validates each component's ``params`` against its config
  dataclass, replacing them with the full, defaults-filled params;
- resolves every stage (:class:`~rewardgym.core.config.schema.Stage`): the top-level sections
  merged with the stage's (nested mappings key by key), the strategy named, and the strategy
  checked against the algorithm;
- stores the stages on the config, so that :func:`plan` never merges them again.

**Which strategy a stage runs.** An algorithm declares the strategy it trains with (its
``strategy`` class attribute, e.g. ``"standard"`` for ``grpo``). A stage runs its own
``strategy`` when it names one; else the top level's ``strategy``, when the stage keeps the
top-level algorithm; else the one its algorithm declares. A named strategy must be the
algorithm's, or one that declares it can train the algorithm's kind (``feeds``); anything else
is a :class:`~rewardgym.core.errors.ConfigError` here, before any model loads.

**Its params** are the ``strategies`` section of its name: the stage's own keys over the top
level's, key by key. Every section given is checked (a strategy name with a did-you-mean, its
params against the strategy's config dataclass), whether a stage runs it or not; the resolved
config lists, under ``strategies``, the full params of every strategy it names or runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from rewardgym.core.config.schema import (
    AlgorithmSection,
    RolloutSection,
    RunConfig,
    Stage,
    StageSection,
    StrategySection,
    TrainerSection,
    to_dict,
)
from rewardgym.core.errors import ConfigError, RegistrationError, UnknownNameError
from rewardgym.core.params import RUN_CONFIG, build
from rewardgym.core.registry import ALGORITHMS, ENGINES, ENVS, STRATEGIES, Registry

__all__ = ["declared_strategy", "deep_merge", "plan", "resolve"]

# What an algorithm written before strategies were components trained on, by its ``data``.
_LEGACY_DATA = {"demonstrations": "demonstrations", "preferences": "preferences"}
_warned: set[Any] = set()


def plan(config: RunConfig) -> tuple[Stage, ...]:
    """The stages to run, in order: the ``stages`` list resolved against the top-level
    sections, or one stage named ``train`` made of the top-level sections. Resolved once per
    config: by :func:`resolve` (components looked up), or here on first use (sections only)."""
    if config.resolved is None:
        stages = _stages(config, components=False)
        object.__setattr__(config, "resolved", stages)
    return config.resolved


def resolve(config: RunConfig, *, components: bool = True) -> RunConfig:
    """``config`` with its components' params resolved (when ``components``) and its stages
    resolved once (see the module docstring)."""
    if components:
        config = _resolve_top_level(config)
    stages = _stages(config, components=components)
    if components:
        used = dict(config.strategies)
        for stage in stages:
            if stage.strategy.name is not None and stage.strategy.name not in used:
                used[stage.strategy.name] = _strategy_params(stage.strategy.name, {}, "strategies")
        sections = tuple(
            replace(section, algorithm=to_dict(stage.algorithm), strategy=stage.strategy.name)
            for section, stage in zip(config.stages, stages, strict=False)
        )
        config = replace(config, strategies=used, stages=sections)
    object.__setattr__(config, "resolved", stages)
    return config


def declared_strategy(algorithm_name: str | None) -> str | None:
    """The strategy the registered algorithm ``algorithm_name`` trains with, or None when it
    declares none (or there is no such algorithm: its lookup reports that elsewhere).

    Deprecated, for one release: an algorithm without a ``strategy`` attribute that still
    declares ``data = "demonstrations"`` / ``"preferences"`` (or ``"rollouts"`` with a
    ``select`` method) trains with ``demonstrations`` / ``preferences`` (``filtered``), with a
    :class:`DeprecationWarning`."""
    if algorithm_name is None or algorithm_name not in ALGORITHMS:
        return None
    try:
        algorithm = ALGORITHMS.get(algorithm_name).load()
    except RegistrationError:
        return None
    name = getattr(algorithm, "strategy", None)
    if isinstance(name, str):
        return name
    data = getattr(algorithm, "data", None)
    legacy = _LEGACY_DATA.get(data)
    if legacy is None and data == "rollouts" and hasattr(algorithm, "select"):
        legacy = "filtered"
    if legacy is not None and algorithm not in _warned:
        _warned.add(algorithm)
        warnings.warn(
            f"Algorithm '{algorithm_name}' declares data = {data!r} but no strategy: it trains "
            f"with the '{legacy}' strategy. Declare strategy = {legacy!r} on the class; "
            "inferring it from `data` will be removed in the next release.",
            DeprecationWarning,
            stacklevel=2,
        )
    return legacy


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` on top; nested sections are merged key by key, everything
    else (lists included) is replaced. ``params`` mappings merge key by key too."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# -- top level ---------------------------------------------------------------------------------
def _resolve_top_level(config: RunConfig) -> RunConfig:
    env = replace(
        config.env, params=_component_params(ENVS, "env.id", config.env.id, config.env.params)
    )
    sections: dict[str, Any] = {"env": env}
    for name, registry in (("algorithm", ALGORITHMS), ("engine", ENGINES)):
        section = getattr(config, name)
        if section.name is None:
            _no_params_without_name(name, section.params, registry)
            continue
        params = _component_params(registry, f"{name}.name", section.name, section.params)
        sections[name] = replace(section, params=params)
    if config.strategy is not None:
        _lookup(STRATEGIES, "strategy", config.strategy)
    sections["strategies"] = {
        name: _strategy_params(name, params, "strategies")
        for name, params in config.strategies.items()
    }
    for i, stage in enumerate(config.stages):
        if stage.strategy is not None:
            _lookup(STRATEGIES, f"stages[{i}].strategy", stage.strategy)
        for name, params in stage.strategies.items():
            merged = deep_merge(config.strategies.get(name, {}), params)
            _strategy_params(name, merged, f"stages[{i}].strategies")
    return replace(config, **sections)


def _no_params_without_name(name: str, params: Mapping[str, Any], registry: Registry) -> None:
    if params:
        known = ", ".join(registry.ids())
        known = f"one of: {known}" if known else f"no {registry.kind}s are registered yet"
        raise ConfigError(
            f"{name}.params is set but {name}.name is not. Set {name}.name ({known}) or "
            f"remove {name}.params."
        )


def _lookup(registry: Registry, key: str, name: str) -> None:
    try:
        registry.get(name)
    except UnknownNameError as exc:
        raise ConfigError(f"{key}: {exc}") from exc


def _component_params(registry: Registry, key: str, name: str, params: Mapping[str, Any]) -> dict:
    _lookup(registry, key, name)
    validated = registry.make_config(name, params)
    return {} if validated is None else to_dict(validated)


def _strategy_params(name: str, params: Mapping[str, Any], where: str) -> dict:
    """The full params of strategy ``name``, given in the section ``where`` (for messages)."""
    _lookup(STRATEGIES, where, name)
    validated = STRATEGIES.make_config(name, params)
    return {} if validated is None else to_dict(validated)


# -- stages ------------------------------------------------------------------------------------
def _stages(config: RunConfig, *, components: bool) -> tuple[Stage, ...]:
    if not config.stages:
        stage = Stage(
            0, "train", config.algorithm, StrategySection(), config.trainer, config.rollout
        )
        return (_with_strategy(config, stage, None, components),)
    return tuple(
        _resolve_stage(config, i, section, components) for i, section in enumerate(config.stages)
    )


def _resolve_stage(config: RunConfig, index: int, section: StageSection, components: bool) -> Stage:
    where = f"stages[{index}] ({section.name})"
    algorithm = dict(section.algorithm)
    same_algorithm = "name" not in algorithm or algorithm["name"] == config.algorithm.name
    if same_algorithm:
        params = {**config.algorithm.params, **algorithm.get("params", {})}
        algorithm = {**to_dict(config.algorithm), **algorithm, "params": params}
    built = []
    for name, cls, base, overrides in (
        ("algorithm", AlgorithmSection, {}, algorithm),
        ("trainer", TrainerSection, to_dict(config.trainer), section.trainer),
        ("rollout", RolloutSection, to_dict(config.rollout), section.rollout),
    ):
        built.append(_build_section(cls, deep_merge(base, overrides), where, name))
    algorithm_section, trainer, rollout = built
    if components and algorithm_section.name is not None:
        key = f"stages[{index}].algorithm.name"
        params = _component_params(
            ALGORITHMS, key, algorithm_section.name, algorithm_section.params
        )
        algorithm_section = replace(algorithm_section, params=params)
    stage = Stage(index, section.name, algorithm_section, StrategySection(), trainer, rollout)
    return _with_strategy(config, stage, section, components)


def _build_section(cls: type, data: dict[str, Any], where: str, name: str) -> Any:
    try:
        return build(cls, data, RUN_CONFIG, f"{where}.{name}.")
    except ConfigError as exc:
        if where in str(exc):
            raise
        raise ConfigError(f"In {where}: {exc}") from exc


def _with_strategy(
    config: RunConfig, stage: Stage, section: StageSection | None, components: bool
) -> Stage:
    """``stage`` with its strategy named and its params merged (see the module docstring);
    with ``components``, the params validated and the strategy checked against the algorithm."""
    keeps_algorithm = section is None or stage.algorithm.name == config.algorithm.name
    declared = declared_strategy(stage.algorithm.name) if components else None
    if section is not None and section.strategy is not None:
        name, key = section.strategy, f"stages[{stage.index}].strategy"
    elif keeps_algorithm and config.strategy is not None:
        name, key = config.strategy, "strategy"
    else:
        name, key = declared, None
    if name is None:
        return stage
    own = section.strategies.get(name, {}) if section is not None else {}
    params = deep_merge(config.strategies.get(name, {}), own)
    if components:
        if key is not None:
            _check_feeds(stage, name, declared, key)
        params = _component_params(STRATEGIES, f"strategies.{name}", name, params)
    return replace(stage, strategy=StrategySection(name, params))


def _check_feeds(stage: Stage, name: str, declared: str | None, key: str) -> None:
    """A named strategy must be the algorithm's own, or declare it trains the algorithm's kind."""
    if declared is None or name == declared:
        return
    try:
        feeds = tuple(getattr(STRATEGIES.get(name).load(), "feeds", ()))
    except (UnknownNameError, RegistrationError) as exc:
        raise ConfigError(f"{key}: {exc}") from exc
    if declared in feeds:
        return
    can = f" ('{name}' can train the algorithms of: {', '.join(feeds)})" if feeds else ""
    raise ConfigError(
        f"Algorithm {stage.algorithm.name!r} (stage '{stage.name}') trains with the "
        f"{declared!r} strategy, but {key} is {name!r}{can}. Set {key}={declared}, or remove it "
        "to use the algorithm's own strategy."
    )
