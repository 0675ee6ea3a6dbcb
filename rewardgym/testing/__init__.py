"""Testing kit for environment, verifier and plugin authors.

- :func:`check_env`: run an environment through rewardgym's checks (Gymnasium's own checker,
  seeded determinism, garbage actions scored not crashed, finite rewards, episodes that end).
- :func:`check_verifier`: expected verdicts for given cases, determinism, pickling, and hostile
  inputs contained by a :class:`~rewardgym.core.verify.VerifierPool`.
- :class:`ScriptedPolicy` and :func:`run_episode`: play episodes with fixed completions.
- :data:`HOSTILE_RESPONSES`: the hostile model outputs the checkers use.
- a pytest plugin (active wherever rewardgym is installed) with the fixtures ``make_env``,
  ``rewardgym_plugin``, ``verifier_pool``, ``scripted_policy``, ``check_env`` and
  ``check_verifier``, and the ``gpu`` marker. See ``docs/testing.md``.

Names are imported lazily, so the pytest plugin (which imports this package in every pytest
session) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "check_env": "rewardgym.testing._env_checks",
    "check_verifier": "rewardgym.testing._verifier_checks",
    "CheckReport": "rewardgym.testing._report",
    "CheckResult": "rewardgym.testing._report",
    "ScriptedPolicy": "rewardgym.testing._policy",
    "run_episode": "rewardgym.testing._policy",
    "Episode": "rewardgym.testing._policy",
    "HOSTILE_RESPONSES": "rewardgym.testing._hostile",
}

__all__ = [
    "HOSTILE_RESPONSES",
    "CheckReport",
    "CheckResult",
    "Episode",
    "ScriptedPolicy",
    "check_env",
    "check_verifier",
    "run_episode",
]

if TYPE_CHECKING:
    from rewardgym.testing._env_checks import check_env
    from rewardgym.testing._hostile import HOSTILE_RESPONSES
    from rewardgym.testing._policy import Episode, ScriptedPolicy, run_episode
    from rewardgym.testing._report import CheckReport, CheckResult
    from rewardgym.testing._verifier_checks import check_verifier


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rewardgym.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
