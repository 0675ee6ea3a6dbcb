"""The config classes of the ``reasoning_gym/<dataset>-v0`` environments (private to
:mod:`rewardgym.envs.reasoning_gym`).

Each environment takes its dataset's own config dataclass as params, through a thin subclass made
on first use and reached as ``CONFIGS.<dataset>`` (``"rewardgym.envs._reasoning_gym_config:
CONFIGS.countdown"`` in the registry). The subclass has the same fields and defaults; it differs
from the dataset's class in two ways only:

- it runs the dataset's own ``validate()`` when it is built, so a bad value (``min_numbers`` above
  ``max_numbers``) fails when the run config is loaded, as a :class:`ConfigError`, not when the
  environment is first made;
- where reasoning-gym's default value contradicts its own annotation (in 0.1.25:
  ``polynomial_multiplication.variables: tuple[str] = ("x", "y", "z")``,
  ``intermediate_integration.symbols: tuple = "x"`` and ``rearc.diff_ub: int = 0.2``), the
  annotation is widened to also accept values of the default's type (``tuple[str] | tuple``,
  ``tuple | str``, ``int | float``), so the default, and a config that repeats it, validate.
  :func:`widened_fields` lists them.

Importing this module imports nothing from reasoning-gym; resolving ``CONFIGS.<dataset>`` does.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from rewardgym.core.config import to_dict
from rewardgym.core.errors import ConfigError, RegistrationError, UnknownNameError, did_you_mean
from rewardgym.core.errors import require as _require
from rewardgym.core.params import ParamContext, build_dataclass, convert, field_types

__all__ = ["CONFIGS", "dataset_classes", "to_dataset_config", "widened_fields"]

EXTRA = "reasoning-gym"
_CHECK = ParamContext("a reasoning-gym default")


def dataset_classes(dataset: str) -> tuple[type, type]:
    """``(dataset class, config class)`` of a reasoning-gym dataset; did-you-mean when unknown."""
    factory = _require("reasoning_gym.factory", EXTRA, f"The reasoning-gym dataset '{dataset}'")
    DATASETS = factory.DATASETS  # noqa: N806 - reasoning-gym's name

    if dataset not in DATASETS:
        raise UnknownNameError(
            f"reasoning-gym has no dataset named '{dataset}'.{did_you_mean(dataset, DATASETS)} "
            f"It has {len(DATASETS)}: see 'rewardgym list', or reasoning_gym.factory.DATASETS."
        )
    return DATASETS[dataset]


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _fits(value: Any, annotation: Any) -> bool:
    """Whether ``value``, written out as YAML would give it, passes the params validator."""
    try:
        convert(to_dict(value), annotation, "default", _CHECK)
    except (ConfigError, RegistrationError):
        return False
    return True


def widened_fields(config_cls: type) -> dict[str, Any]:
    """Fields whose default does not fit their own annotation, with the widened annotation:
    ``annotation | type(default)`` (``Optional`` for a ``None`` default), or ``Any`` when even
    that does not fit."""
    hints = field_types(config_cls, _CHECK)
    widened: dict[str, Any] = {}
    for f in dataclasses.fields(config_cls):
        default = _default(f)
        if not f.init or default is dataclasses.MISSING or _fits(default, hints[f.name]):
            continue
        wider = hints[f.name] | (None if default is None else type(default))
        widened[f.name] = wider if _fits(default, wider) else Any
    return widened


def _validate(config: Any, dataset: str) -> None:
    """The dataset's own ``validate()`` (assert-based in reasoning-gym) as a ConfigError."""
    check = getattr(config, "validate", None)
    if not callable(check):
        return
    try:
        check()
    except (AssertionError, ValueError, TypeError) as exc:
        reason = str(exc) or f"{type(exc).__name__} in {type(config).__name__}.validate()"
        raise ConfigError(f"reasoning-gym rejected the config of '{dataset}': {reason}") from exc


def _make_config_class(dataset: str) -> type:
    _, base = dataset_classes(dataset)
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__qualname__": f"CONFIGS.{dataset}",
        "__doc__": f"Params of reasoning-gym's '{dataset}' dataset: the fields of "
        f"{base.__module__}.{base.__qualname__}, checked by its validate() when built.",
        "__annotations__": {},
    }
    fields = {f.name: f for f in dataclasses.fields(base)}
    for name, annotation in widened_fields(base).items():
        f = fields[name]
        namespace["__annotations__"][name] = annotation
        if f.default is not dataclasses.MISSING:
            namespace[name] = dataclasses.field(default=f.default)
        else:
            namespace[name] = dataclasses.field(default_factory=f.default_factory)
    inherited = getattr(base, "__post_init__", None)

    def __post_init__(self: Any) -> None:
        if inherited is not None:
            inherited(self)
        _validate(self, dataset)

    namespace["__post_init__"] = __post_init__
    return dataclasses.dataclass(type(base.__name__, (base,), namespace))


class _Configs:
    """``CONFIGS.<dataset>``: the config class of ``reasoning_gym/<dataset>-v0``, made once."""

    def __init__(self) -> None:
        self._classes: dict[str, type] = {}
        self._lock = threading.Lock()

    def __getattr__(self, dataset: str) -> type:
        if dataset.startswith("__"):
            raise AttributeError(dataset)
        with self._lock:
            cls = self._classes.get(dataset)
            if cls is None:
                cls = self._classes[dataset] = _make_config_class(dataset)
            return cls

    def __repr__(self) -> str:
        return f"<reasoning-gym config classes made so far: {sorted(self._classes)}>"


CONFIGS = _Configs()


def to_dataset_config(dataset: str, config: Any) -> Any:
    """``config`` as an instance of the dataset's own config class, validated.

    Accepts ``None`` (the defaults), a mapping of params (validated like registry params), an
    instance of ``CONFIGS.<dataset>`` or of the dataset's own config class.
    """
    _, own = dataset_classes(dataset)
    if config is None:
        config = {}
    if isinstance(config, Mapping):
        component = f"reasoning-gym dataset '{dataset}'"
        config = build_dataclass(getattr(CONFIGS, dataset), config, component=component)
    if not isinstance(config, own):
        raise ConfigError(
            f"The config of reasoning-gym dataset '{dataset}' must be a {own.__qualname__}, a "
            f"mapping of its params or None; got {type(config).__name__}."
        )
    if type(config) is not own:
        values = {f.name: getattr(config, f.name) for f in dataclasses.fields(own) if f.init}
        config = own(**values)
    _validate(config, dataset)
    return config
