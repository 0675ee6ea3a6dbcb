"""The exception tree of rewardgym.

Every error rewardgym raises on purpose derives from :class:`RewardGymError`, with a second,
natural built-in base so that ``except KeyError`` and friends keep working::

    RewardGymError
     +-- UnknownNameError (KeyError)          no env / verifier / algorithm / engine / preset by that name
     +-- RegistrationError (ValueError)       a malformed id or entry point at register time
     |    +-- DuplicateRegistrationError      one id registered twice; names both origins
     +-- ConfigError (ValueError)             unknown key, wrong type, bad value in a config
     +-- MissingExtraError (ImportError)      an optional dependency is not installed
     +-- PluginError (RuntimeError)           a plugin broke a contract (e.g. an unknown hook name)
     +-- EnvError (RuntimeError)              an environment used out of order (step before reset, ...)
     +-- VerifierPoolError (RuntimeError)     the verifier pool is closed, cannot start workers, or
     |                                        cannot send a verifier or task to them
     +-- CheckError (AssertionError)          a checker in ``rewardgym.testing`` found a problem

Messages say what went wrong, the value received, what was expected and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "CheckError",
    "ConfigError",
    "DuplicateRegistrationError",
    "EnvError",
    "MissingExtraError",
    "PluginError",
    "RegistrationError",
    "RewardGymError",
    "UnknownNameError",
    "VerifierPoolError",
    "did_you_mean",
    "first_line",
]


class RewardGymError(Exception):
    """Base class of every error rewardgym raises on purpose."""


class UnknownNameError(RewardGymError, KeyError):
    """A name (env id, verifier id, algorithm, engine, preset, config key) is not known."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class RegistrationError(RewardGymError, ValueError):
    """A registration is malformed: bad id, bad ``"module:attr"`` string, bad config class."""


class DuplicateRegistrationError(RegistrationError):
    """One id was registered twice. The message names both origins."""


class ConfigError(RewardGymError, ValueError):
    """A configuration value is unknown, of the wrong type, or out of range."""


class MissingExtraError(RewardGymError, ImportError):
    """An optional dependency is missing. The message gives the pip command that installs it."""

    def __init__(self, module: str, extra: str, feature: str, hint: str = "") -> None:
        super().__init__(
            f"{feature} needs the Python package '{module}', which is not installed. "
            f"Install it with: pip install 'rewardgym[{extra}]'" + (f". {hint}" if hint else "")
        )
        self.module, self.extra, self.feature = module, extra, feature


class PluginError(RewardGymError, RuntimeError):
    """A plugin broke the plugin contract (for example it implements an unknown hook)."""


class EnvError(RewardGymError, RuntimeError):
    """An environment was used out of order (step before reset, step after the episode ended)."""


class VerifierPoolError(RewardGymError, RuntimeError):
    """The verifier pool is closed, its workers cannot start, or a verifier or task cannot be sent
    to them (not picklable, or not importable in a fresh interpreter)."""


class CheckError(RewardGymError, AssertionError):
    """A checker in :mod:`rewardgym.testing` found a problem. The message lists every failure."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type's name when it has none: how an error
    from a library is quoted inside a rewardgym message."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def did_you_mean(name: str, candidates: Iterable[str], *, n: int = 1) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest candidate, or ``""`` when none is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.6)
    if not matches:
        return ""
    if len(matches) == 1:
        return f" Did you mean '{matches[0]}'?"
    return " Did you mean one of: " + ", ".join(f"'{m}'" for m in matches) + "?"


def require(module: str, extra: str, feature: str):
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra, feature) from exc
