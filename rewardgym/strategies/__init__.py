"""Strategies: how a training step's data is produced and handed to the algorithm.

The contract is in :mod:`rewardgym.strategies.base`; the built-in strategies are one module
each: ``standard``, ``filtered``, ``demonstrations``, ``preferences``, ``anytime``,
``episodic``. Shared building blocks: :mod:`~rewardgym.strategies.rollouts` (multi-turn
rollouts), :mod:`~rewardgym.strategies.thinking` (thinking traces and forced answers),
:mod:`~rewardgym.strategies.batch` (rows of token ids as tensors) and, for strategies that end
in a policy-gradient update, the helpers of :mod:`~rewardgym.strategies.standard`.
"""

from __future__ import annotations

from rewardgym.strategies.base import Learner, LossFn, LossPart, StepContext, Strategy
from rewardgym.strategies.batch import Continuations, TokenBatch, micro_batches, pack

__all__ = [
    "Continuations",
    "Learner",
    "LossFn",
    "LossPart",
    "StepContext",
    "Strategy",
    "TokenBatch",
    "micro_batches",
    "pack",
]
