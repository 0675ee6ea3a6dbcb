"""rewardgym's pytest plugin, active in every pytest session where rewardgym is installed
(entry point ``pytest11``).

Fixtures (see ``pytest --fixtures``):

- ``make_env``: ``make_env(id_or_env, **params)`` builds (or adopts) an env, closed after the test.
- ``rewardgym_plugin``: ``rewardgym_plugin(plugin, name=None)`` registers a plugin module or
  object for the duration of the test.
- ``verifier_pool``: a one-worker :class:`~rewardgym.core.verify.VerifierPool` (5 s timeout).
- ``scripted_policy``: the :class:`~rewardgym.testing.ScriptedPolicy` class.
- ``check_env``, ``check_verifier``: the checkers.

Marker: ``@pytest.mark.gpu`` skips a test unless torch is installed and sees a CUDA GPU.

This module is imported by pytest at start-up, so it imports nothing from rewardgym at module
level beyond the package itself, and loads no rewardgym plugin: fixtures import what they use.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

GPU_MARKER = "gpu: needs a CUDA GPU (skipped unless torch is installed and sees one)"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", GPU_MARKER)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    reason = no_gpu_reason()
    if reason:
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason=reason))


def no_gpu_reason() -> str:
    """Why ``gpu`` tests cannot run here, or ``""`` when a CUDA GPU is available.

    torch is imported only if it is installed (and only when a ``gpu`` test was collected)."""
    if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
        return "needs a CUDA GPU: torch is not installed"
    try:
        import torch
    except Exception as exc:
        return f"needs a CUDA GPU: importing torch failed ({type(exc).__name__}: {exc})"
    if not torch.cuda.is_available():
        return "needs a CUDA GPU: torch.cuda.is_available() is False"
    return ""


@pytest.fixture
def make_env() -> Iterator[Callable[..., Any]]:
    """``make_env(id_or_env, **params)``: ``rewardgym.make(id, **params)``, or an env you built;
    every env it returns is closed after the test."""
    envs: list[Any] = []

    def factory(id_or_env: Any, **params: Any) -> Any:
        if isinstance(id_or_env, str):
            from rewardgym.core.make import make

            env = make(id_or_env, **params)
        elif params:
            raise TypeError(
                f"make_env got an env instance ({type(id_or_env).__name__}) and params "
                f"{sorted(params)}; params only apply to an id: make_env('ns/name-v0', **params)."
            )
        else:
            env = id_or_env
        envs.append(env)
        return env

    yield factory
    errors = []
    for env in reversed(envs):
        try:
            env.close()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def rewardgym_plugin() -> Iterator[Callable[..., Any]]:
    """``rewardgym_plugin(plugin, name=None) -> PluginInfo``: register a plugin module or object
    (its hooks run now, filling the registries) and unregister it, with everything it
    registered, after the test. ``name`` defaults to the object's ``__name__``."""
    from rewardgym.plugins.manager import get_plugin_manager

    manager = get_plugin_manager()
    names: list[str] = []

    def register(plugin: Any, name: str | None = None) -> Any:
        if name is None:
            name = getattr(plugin, "__name__", None) or type(plugin).__name__
        info = manager.register(plugin, name=name)
        names.append(name)
        return info

    yield register
    for name in reversed(names):
        if name in manager.plugins:  # the test may have unregistered it itself
            manager.unregister(name)


@pytest.fixture
def verifier_pool() -> Iterator[Any]:
    """A :class:`~rewardgym.core.verify.VerifierPool` with one worker and a 5 s timeout, closed
    after the test. Pass the verifier per call:
    ``verifier_pool.verify(response, task, verifier)``."""
    from rewardgym.core.verify import VerifierPool

    with VerifierPool(workers=1, timeout=5.0) as pool:
        yield pool


@pytest.fixture
def scripted_policy() -> type:
    """The :class:`~rewardgym.testing.ScriptedPolicy` class: ``scripted_policy(["Answer: 4"])``."""
    from rewardgym.testing._policy import ScriptedPolicy

    return ScriptedPolicy


@pytest.fixture(name="check_env")
def check_env_fixture() -> Callable[..., Any]:
    """:func:`rewardgym.testing.check_env`: ``check_env("ns/name-v0")`` raises on a failed check."""
    from rewardgym.testing._env_checks import check_env

    return check_env


@pytest.fixture(name="check_verifier")
def check_verifier_fixture() -> Callable[..., Any]:
    """:func:`rewardgym.testing.check_verifier`: ``check_verifier(verifier, cases)``."""
    from rewardgym.testing._verifier_checks import check_verifier

    return check_verifier
