"""The engine contract, re-exported from :mod:`rewardgym.core.engine` where it lives.

Engine plugins may import ``Engine``, ``Generation`` and ``SamplingParams`` from either module.
"""

from __future__ import annotations

from rewardgym.core.engine import (
    FINISH_REASONS,
    WEIGHT_SYNCS,
    Engine,
    Generation,
    SamplingParams,
    WeightBroadcast,
    row_seed,
    row_seeds,
)

__all__ = [
    "FINISH_REASONS",
    "WEIGHT_SYNCS",
    "Engine",
    "Generation",
    "SamplingParams",
    "WeightBroadcast",
    "row_seed",
    "row_seeds",
]
