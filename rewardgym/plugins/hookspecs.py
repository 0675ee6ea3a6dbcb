"""Every hook a rewardgym plugin can implement.

A plugin is a module (or object) named by an entry point in the group ``rewardgym.plugins``::

    [project.entry-points."rewardgym.plugins"]
    acme = "acme_rg.plugin"

and implements any of these hooks, marked with :data:`hookimpl`. Hooks are called with keyword
arguments; an implementation may accept any subset of a hook's arguments. The registration hooks
are called once per plugin, the first time any registry is looked up (plugins load lazily), and
their return values are ignored. Plugin modules are imported at discovery time, so they must not
import torch or other heavy libraries at module level: register ``"module:attr"`` strings and
let rewardgym import the module when the entry is built.

Every hook here is documented in ``docs/hooks.md``; a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "rewardgym"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[..., Any]


@hookspec
def rewardgym_register_envs(register: Register) -> None:
    """Register environments.

    Called once per plugin when plugins load. Call
    ``register(id, entry_point, *, config=None, description="")`` for each environment:

    - ``id``: ``"namespace/name-vN"``, e.g. ``"acme/countdown-v0"``;
    - ``entry_point``: ``"module:Class"`` (or the class) of a :class:`rewardgym.TextEnv`,
      called as ``Class(config)`` when it has a config, else ``Class()``;
    - ``config``: ``"module:ConfigDataclass"`` (or the class) whose fields are the env's params.

    Registering an id that is already taken raises ``DuplicateRegistrationError`` naming both
    origins. Returns nothing.
    """


@hookspec
def rewardgym_register_verifiers(register: Register) -> None:
    """Register verifiers.

    Called once per plugin when plugins load. Call
    ``register(id, entry_point, *, config=None, description="")`` with an id of the form
    ``"namespace/name-vN"`` and a ``"module:Class"`` entry point of a
    :class:`rewardgym.Verifier` subclass (built as ``Class(config)`` or ``Class()``).
    Returns nothing.
    """


@hookspec
def rewardgym_register_strategies(register: Register) -> None:
    """Register strategies: how a training step's data is produced and handed to the algorithm.

    Called once per plugin when plugins load. Call
    ``register(name, entry_point, *, config=None, description="")`` with a lower-case ``name``
    (named by an algorithm's ``strategy`` attribute, or by ``strategy`` in a run config) and
    ``"module:attr"`` strings for a :class:`rewardgym.strategies.Strategy` subclass, built as
    ``Class(config)`` (or ``Class()`` without a config), and its config dataclass (the run
    config's ``strategies.<name>`` section is validated against it). Returns nothing.
    """


@hookspec
def rewardgym_register_algorithms(register: Register) -> None:
    """Register policy-optimisation algorithms.

    Called once per plugin when plugins load. Call
    ``register(name, entry_point, *, config=None, description="")`` with a lower-case ``name``
    (selected in a run config as ``algorithm.name``) and ``"module:attr"`` strings for the
    algorithm and its config dataclass (``algorithm.params`` are validated against it).
    Returns nothing.
    """


@hookspec
def rewardgym_register_engines(register: Register) -> None:
    """Register generation engines.

    Called once per plugin when plugins load. Call
    ``register(name, entry_point, *, config=None, description="")`` with a lower-case ``name``
    (selected as ``engine.name``) and ``"module:attr"`` strings for the engine class and its
    config dataclass. Returns nothing.
    """


@hookspec
def rewardgym_register_presets(register: Register) -> None:
    """Register run-config presets.

    Called once per plugin when plugins load. Call ``register(name, resource, *,
    description="")`` where ``resource`` is ``"package:path/inside/package.yaml"``; the preset
    is then selectable by name (``rewardgym config NAME``, ``rewardgym train NAME``).
    Returns nothing.
    """


HOOK_NAMES = (
    "rewardgym_register_envs",
    "rewardgym_register_verifiers",
    "rewardgym_register_strategies",
    "rewardgym_register_algorithms",
    "rewardgym_register_engines",
    "rewardgym_register_presets",
)
