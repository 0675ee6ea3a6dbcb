"""Validation shared by the algorithms' config dataclasses (called from ``__post_init__``).

Each check raises :class:`~rewardgym.core.errors.ConfigError` with the algorithm and param
names, the value received, what is allowed and how to fix it. When the config is built from a
run config, the registry adds "Invalid params for algorithm '<name>': " in front.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rewardgym.core.errors import ConfigError
from rewardgym.core.params import validate_fields

__all__ = [
    "check_bool",
    "check_clip",
    "check_fields",
    "check_number",
    "check_optional_int",
    "check_source",
]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_number(
    owner: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    example: float,
) -> None:
    """``value`` is a finite number in the range given by ``low`` / ``high`` (open ends when
    ``low_open`` / ``high_open``)."""
    ok = _is_number(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if ok:
        return
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    allowed = "a number " + " and ".join(parts) if parts else "a finite number"
    raise ConfigError(
        f"{owner} {name} must be {allowed}, got {value!r}. "
        f"Set {name} to such a value (for example {example:g})."
    )


def check_bool(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{owner} {name} must be true or false, got {value!r}.")


def check_optional_int(owner: str, name: str, value: Any, *, low: int) -> None:
    """``value`` is None or an int >= ``low``."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= low):
        return
    raise ConfigError(f"{owner} {name} must be an int >= {low} or null (no limit), got {value!r}.")


def check_fields(owner: str, config: Any) -> None:
    """Every field of the config dataclass ``config`` checked against its annotation by the
    validator run configs go through (:func:`rewardgym.core.params.convert`): types, and
    closed choices typed as ``Literal`` (with a did-you-mean), also when the config is built
    directly in Python."""
    validate_fields(config, f"algorithm '{owner}'")


def check_source(owner: str, source: Any, path: Any, keys: Sequence[str]) -> None:
    """``path`` is given exactly when ``source == "jsonl"`` (the strategy reads that file; each
    line a JSON object with ``keys``); ``source`` itself is a ``Literal`` field."""
    if path is not None and (not isinstance(path, str) or not path):
        raise ConfigError(f"{owner} path must be a non-empty string, got {path!r}.")
    fields = ", ".join(repr(k) for k in keys)
    if source == "jsonl" and path is None:
        raise ConfigError(
            f"{owner} source='jsonl' needs a path: set path to a JSONL file whose lines are "
            f"objects with {fields}."
        )
    if source != "jsonl" and path is not None:
        raise ConfigError(
            f"{owner} path={path!r} is only read when source='jsonl', got source={source!r}. "
            "Set source to 'jsonl' to train on the file, or remove path."
        )


def check_clip(owner: str, clip_eps: Any, clip_eps_high: Any, kl_coef: Any) -> None:
    """The clip range and KL coefficient of a policy-gradient config."""
    check_number(owner, "clip_eps", clip_eps, low=0, low_open=True, example=0.2)
    if clip_eps_high is not None:
        check_number(owner, "clip_eps_high", clip_eps_high, low=0, low_open=True, example=0.28)
    check_number(owner, "kl_coef", kl_coef, low=0, example=0.04)
