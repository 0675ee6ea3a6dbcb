"""rewardgym: reinforcement learning of language models on tasks with verifiable rewards.

``import rewardgym`` is light: it imports no torch and loads no plugin. Plugins load at the
first registry lookup (``rewardgym.make``, ``rewardgym.ENVS.ids()``, ...), once. Public names
are resolved lazily on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rewardgym._version import __version__

# name -> module that defines it
_EXPORTS: dict[str, str] = {
    "make": "rewardgym.core.make",
    "make_verifier": "rewardgym.core.make",
    "TextEnv": "rewardgym.core.env",
    "TextSpace": "rewardgym.core.spaces",
    "TokenBudget": "rewardgym.core.wrappers",
    "RewardShaping": "rewardgym.core.shaping",
    "SelfCorrection": "rewardgym.core.self_correction",
    "FormatTerm": "rewardgym.core.shaping",
    "LengthPenalty": "rewardgym.core.shaping",
    "Task": "rewardgym.core.types",
    "Completion": "rewardgym.core.types",
    "Verdict": "rewardgym.core.types",
    "Verifier": "rewardgym.core.verifier",
    "VerifierPool": "rewardgym.core.verify",
    "ENVS": "rewardgym.core.registry",
    "VERIFIERS": "rewardgym.core.registry",
    "ALGORITHMS": "rewardgym.core.registry",
    "ENGINES": "rewardgym.core.registry",
    "STRATEGIES": "rewardgym.core.registry",
    "PRESETS": "rewardgym.core.registry",
    "RunConfig": "rewardgym.core.config",
    "load_config": "rewardgym.core.config",
    "hookimpl": "rewardgym.plugins.hookspecs",
    "load_plugins": "rewardgym.plugins.manager",
    "get_plugin_manager": "rewardgym.plugins.manager",
    "RewardGymError": "rewardgym.core.errors",
    "UnknownNameError": "rewardgym.core.errors",
    "RegistrationError": "rewardgym.core.errors",
    "DuplicateRegistrationError": "rewardgym.core.errors",
    "ConfigError": "rewardgym.core.errors",
    "MissingExtraError": "rewardgym.core.errors",
    "PluginError": "rewardgym.core.errors",
    "EnvError": "rewardgym.core.errors",
    "VerifierPoolError": "rewardgym.core.errors",
    "CheckError": "rewardgym.core.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]

if TYPE_CHECKING:
    from rewardgym.core.config import RunConfig, load_config
    from rewardgym.core.env import TextEnv
    from rewardgym.core.errors import (
        CheckError,
        ConfigError,
        DuplicateRegistrationError,
        EnvError,
        MissingExtraError,
        PluginError,
        RegistrationError,
        RewardGymError,
        UnknownNameError,
        VerifierPoolError,
    )
    from rewardgym.core.make import make, make_verifier
    from rewardgym.core.registry import ALGORITHMS, ENGINES, ENVS, PRESETS, STRATEGIES, VERIFIERS
    from rewardgym.core.self_correction import SelfCorrection
    from rewardgym.core.shaping import FormatTerm, LengthPenalty, RewardShaping
    from rewardgym.core.spaces import TextSpace
    from rewardgym.core.types import Completion, Task, Verdict
    from rewardgym.core.verifier import Verifier
    from rewardgym.core.verify import VerifierPool
    from rewardgym.core.wrappers import TokenBudget
    from rewardgym.plugins.hookspecs import hookimpl
    from rewardgym.plugins.manager import get_plugin_manager, load_plugins


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rewardgym' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


def _load_plugins() -> None:
    from rewardgym.plugins.manager import load_plugins

    load_plugins()


def _wire() -> None:
    """Install the lazy plugin loader and mirror built-in env ids into Gymnasium's registry."""
    from rewardgym.core import gym_bridge, registry
    from rewardgym.plugins.builtin import ENVS as builtin_envs

    registry.set_plugin_loader(_load_plugins)
    for env_id, *_ in builtin_envs:
        gym_bridge.mirror_id(env_id)
    gym_bridge.install()


_wire()
