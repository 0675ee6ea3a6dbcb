"""Generation engines: the :class:`~rewardgym.core.engine.Engine` contract and its
implementations (``hf``: :class:`~rewardgym.runner.engines.hf.HFEngine`, batched sampling with
the trainer's own transformers model). Engines are found through the ``engines`` registry by
name; this package imports only the contract, never an implementation.
"""

from rewardgym.core.engine import FINISH_REASONS, Engine, Generation, SamplingParams

__all__ = ["FINISH_REASONS", "Engine", "Generation", "SamplingParams"]
