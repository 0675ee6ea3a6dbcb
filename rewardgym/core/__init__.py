"""rewardgym's core layer: types, spaces, the environment API, wrappers, registries, config,
errors and the verifier pool.

This package imports no torch, no plugin and no other rewardgym layer (``plugins``, ``envs``,
``algorithms``, ``runner``, ``testing``, ``cli``); ``.importlinter`` at the repository root
states these rules and ``tests/test_layers.py`` checks them. Import from the submodules
(``rewardgym.core.env``, ...) or from the public API in :mod:`rewardgym`.
"""
