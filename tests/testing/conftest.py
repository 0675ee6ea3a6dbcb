"""Shared set-up for the tests of rewardgym.testing."""

from __future__ import annotations

import pytest

import rewardgym
import rewardgym.testing


@pytest.fixture(autouse=True, scope="module")
def rewardgym_imported_before_pytester():
    """Import every public module of rewardgym and load the plugins before any ``pytester``.

    pytester's in-process runs remove the modules first imported during a run when it ends, while
    rewardgym's lazily cached public names (``rewardgym.TextEnv``) and its plugin manager outlive
    the run: a class re-imported by the next run would no longer be the cached one.
    """
    for module in (rewardgym, rewardgym.testing):
        for name in module.__all__:
            getattr(module, name)
    rewardgym.load_plugins()
