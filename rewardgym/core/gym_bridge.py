"""The bridge that makes every registered rewardgym env reachable via ``gymnasium.make``.

Each id in :data:`rewardgym.core.registry.ENVS` is mirrored into Gymnasium's registry with
this module's :func:`make_from_gymnasium` as entry point, so ``gymnasium.make(id, **params)``
builds the env through rewardgym (validated config, plugin lookup). Built-in ids are mirrored
at ``import rewardgym``; plugin ids as soon as the plugins load (any registry lookup, or
``rewardgym.load_plugins()``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import registry as gym_registry

from rewardgym.core.registry import ENVS, Spec

__all__ = ["install", "make_from_gymnasium", "mirror_id", "unmirror_id"]

_ENTRY_POINT = "rewardgym.core.gym_bridge:make_from_gymnasium"


def make_from_gymnasium(rewardgym_id: str, render_mode: str | None = None, **params: Any):
    """Gymnasium's entry point for a rewardgym env: ``rewardgym.make`` with the same params."""
    from rewardgym.core.make import make

    return make(rewardgym_id, render_mode=render_mode, **params)


def mirror_id(env_id: str) -> None:
    """Register ``env_id`` with Gymnasium unless it is there already."""
    if env_id not in gym_registry:
        gym.register(id=env_id, entry_point=_ENTRY_POINT, kwargs={"rewardgym_id": env_id})


def unmirror_id(env_id: str) -> None:
    """Remove ``env_id`` from Gymnasium's registry if it was mirrored from rewardgym (an env
    whose registration was rolled back, or whose plugin was unregistered)."""
    spec = gym_registry.get(env_id)
    if spec is not None and spec.entry_point == _ENTRY_POINT:
        del gym_registry[env_id]


def _on_register(spec: Spec) -> None:
    mirror_id(spec.id)


def install() -> None:
    """Mirror every env registered now and later into Gymnasium's registry."""
    ENVS.add_listener(_on_register)
