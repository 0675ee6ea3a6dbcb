"""Engines for the Ray tests, in a module that Ray's workers can import (Ray puts the driver's
working directory on their path), registered by the tests under names of their own."""

from __future__ import annotations

from rewardgym.runner.engines.hf import HFEngine


class HFCopyEngine(HFEngine):
    """The ``hf`` engine under another name, declaring that it owns its weights: an actor then
    frees its own model reference and hands the trainer's weights to :meth:`load_weights`."""

    name = "hf_copy"
    owns_weights = True


class BadSyncEngine(HFEngine):
    """An engine whose ``remote_weight_sync`` answers something the pool cannot do."""

    name = "bad_sync"

    @classmethod
    def remote_weight_sync(cls, config, *, gpus=0):
        return "carrier pigeon"
