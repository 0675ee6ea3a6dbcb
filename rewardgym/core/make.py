"""``make``: build a registered environment or verifier by id, with validated params."""

from __future__ import annotations

from typing import Any

from rewardgym.core.env import TextEnv
from rewardgym.core.registry import ENVS, VERIFIERS
from rewardgym.core.verifier import Verifier

__all__ = ["make", "make_verifier"]


def make(
    id: str, *, render_mode: str | None = None, verifier_pool: Any = None, **params: Any
) -> TextEnv:
    """Create the environment registered as ``id``.

    ``verifier_pool``: the pool the env scores with when its verifier runs in worker processes
    (:meth:`~rewardgym.core.env.TextEnv.use_verifier_pool`); None: the env's default.

    ``params`` are validated against the env's config dataclass (unknown keys and wrong types
    raise :class:`~rewardgym.core.errors.ConfigError` with a did-you-mean). The env's ``spec``
    is Gymnasium's spec for the same id.
    """
    from gymnasium.envs.registration import registry as gym_registry

    env = ENVS.build(id, params)
    if not isinstance(env, TextEnv):
        raise TypeError(
            f"The entry point of environment '{id}' returned {type(env).__name__}, "
            "which is not a rewardgym TextEnv."
        )
    if render_mode is not None:
        if render_mode not in env.metadata.get("render_modes", []):
            raise ValueError(
                f"render_mode={render_mode!r} is not supported by '{id}'; choose one of "
                f"{env.metadata.get('render_modes', [])} or None."
            )
        env.render_mode = render_mode
    env.spec = gym_registry.get(id)
    if verifier_pool is not None:
        env.use_verifier_pool(verifier_pool)
    return env


def make_verifier(id: str, **params: Any) -> Verifier:
    """Create the verifier registered as ``id`` with validated params."""
    verifier = VERIFIERS.build(id, params)
    if not isinstance(verifier, Verifier):
        raise TypeError(
            f"The entry point of verifier '{id}' returned {type(verifier).__name__}, "
            "which is not a rewardgym Verifier."
        )
    return verifier
