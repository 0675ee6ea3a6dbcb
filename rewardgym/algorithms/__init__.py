"""Policy-optimisation algorithms: pure tensor math, one algorithm per module.

Algorithms import rewardgym.core only; never rewardgym.runner. The training runner and the
first algorithms arrive with the training issue; this package fixes the layer for the import
rules checked in tests/test_layers.py.
"""
