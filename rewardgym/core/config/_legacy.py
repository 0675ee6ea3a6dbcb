"""The run-config keys of the previous release, translated (deprecated; removed in the next).

Before strategies were components, the strategy and its config sat in ``rollout``:
``rollout.strategy`` (``standard``, ``anytime`` or ``episodic``) and the sections
``rollout.anytime`` and ``rollout.episodic``, at the top level or in a stage's ``rollout``.
:func:`translate_legacy` keeps such configs working, with a :class:`DeprecationWarning` that
names the keys to use instead:

- ``rollout.anytime`` / ``rollout.episodic`` become ``strategies.anytime`` /
  ``strategies.episodic`` (in a stage: that stage's ``strategies``); keys given in the new
  sections win;
- ``rollout.strategy`` is checked as before: a stage whose algorithm trains on other rollouts
  fails with the same message as before (the strategy now follows the algorithm).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from typing import Any

from rewardgym.core.config.resolve import declared_strategy, deep_merge
from rewardgym.core.errors import ConfigError

__all__ = ["translate_legacy"]

SECTIONS = ("anytime", "episodic")
KEYS = ("strategy", *SECTIONS)
# The old rollout.strategy value each strategy's algorithms trained on.
OLD_NAME = {
    "standard": "standard",
    "filtered": "standard",
    "anytime": "anytime",
    "episodic": "episodic",
}


def translate_legacy(data: dict[str, Any], *, components: bool) -> dict[str, Any]:
    """``data`` (a plain run-config mapping) with the old rollout keys moved (see the module
    docstring). ``components`` False: the algorithms are not looked up, so ``rollout.strategy``
    is dropped unchecked."""
    if not isinstance(data, Mapping):
        return data
    stages = data.get("stages") if isinstance(data.get("stages"), list) else []
    found = [f"rollout.{k}" for k in KEYS if k in _rollout(data)]
    for i, stage in enumerate(stages):
        if isinstance(stage, Mapping):
            found += [f"stages[{i}].rollout.{k}" for k in KEYS if k in _rollout(stage)]
    if not found:
        return data
    warnings.warn(
        f"The config keys {', '.join(found)} are deprecated and will be removed in the next "
        "release: the strategy follows the algorithm (or the top-level strategy key), and its "
        "params are the strategies section of its name, e.g. strategies.anytime.budgets "
        "instead of rollout.anytime.budgets.",
        DeprecationWarning,
        stacklevel=3,
    )
    data = copy.deepcopy(data)
    top = _move(data)
    stages = data.get("stages") if isinstance(data.get("stages"), list) else []
    top_algorithm = _name(data.get("algorithm"))
    if components:
        units = [
            (s, _name(s.get("algorithm")) or top_algorithm) for s in stages if isinstance(s, dict)
        ]
        for i, (stage, algorithm) in enumerate(units or [({}, top_algorithm)]):
            own = _move(stage) if stage else {}
            _check(top, own, algorithm, i if units else None, stage.get("name", "train"))
    else:
        for stage in stages:
            if isinstance(stage, dict):
                _move(stage)
    return data


def _rollout(section: Mapping[str, Any]) -> Mapping[str, Any]:
    rollout = section.get("rollout")
    return rollout if isinstance(rollout, Mapping) else {}


def _name(section: Any) -> str | None:
    return section.get("name") if isinstance(section, Mapping) else None


def _move(section: dict[str, Any]) -> dict[str, Any]:
    """Pop the old keys from ``section``'s rollout; put its old strategy sections under its
    ``strategies`` (keys already there win). Returns the old keys."""
    rollout = section.get("rollout")
    if not isinstance(rollout, dict):
        return {}
    old = {k: rollout.pop(k) for k in KEYS if k in rollout}
    strategies = section.get("strategies")
    strategies = dict(strategies) if isinstance(strategies, Mapping) else {}
    for name in SECTIONS:
        if isinstance(old.get(name), Mapping):
            given = strategies.get(name) if isinstance(strategies.get(name), Mapping) else {}
            strategies[name] = deep_merge(dict(old[name]), given)
    if strategies:
        section["strategies"] = strategies
    return old


def _check(
    top: Mapping[str, Any], own: Mapping[str, Any], algorithm: str | None, index: int | None,
    stage: Any,
) -> None:  # fmt: skip
    """The old ``rollout.strategy`` of one stage must be what its algorithm trains on."""
    old = own.get("strategy", top.get("strategy"))
    expected = OLD_NAME.get(declared_strategy(algorithm))
    if old is None or expected is None or old == expected:
        return
    where = f"stages[{index}].rollout.strategy" if "strategy" in own else "rollout.strategy"
    raise ConfigError(
        f"Algorithm {algorithm!r} (stage '{stage}') trains on {expected!r} rollouts, but {where} "
        f"is {old!r}. Remove {where} (deprecated: the strategy follows the algorithm) or set it "
        f"to {expected}."
    )
