"""The plugin module named by this distribution's ``rewardgym.plugins`` entry point.

rewardgym imports it when plugins load (the first registry lookup) and calls its hooks once.
It registers ``"module:attr"`` strings only, so loading the plugin imports nothing else: the
environment module is imported the first time ``example/reverse-v0`` is made, the strategy
module (which imports torch) the first time a run uses ``best_of_n``.
"""

from __future__ import annotations

from rewardgym import hookimpl

ENV_ID = "example/reverse-v0"


@hookimpl
def rewardgym_register_envs(register) -> None:
    """Register the reverse-a-word environment with its config dataclass."""
    register(
        ENV_ID,
        "rewardgym_example.reverse:ReverseEnv",
        config="rewardgym_example.reverse:ReverseConfig",
        description="Reverse a random word drawn from the env's seeded RNG (exact match).",
    )


@hookimpl
def rewardgym_register_verifiers(register) -> None:
    """Register the verifier under the same id, so it can be used without the env."""
    register(
        ENV_ID,
        "rewardgym_example.reverse:ReverseVerifier",
        description="Exact match of the reversed word after stripping surrounding whitespace.",
    )


@hookimpl
def rewardgym_register_strategies(register) -> None:
    """Register the best-of-n strategy with its config dataclass (``strategies.best_of_n``)."""
    register(
        "best_of_n",
        "rewardgym_example.best_of_n:BestOfN",
        config="rewardgym_example.best_of_n:BestOfNConfig",
        description="Sample n per prompt, fine-tune on the best one (for sft-style algorithms).",
    )
