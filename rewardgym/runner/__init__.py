"""The runner: models, engines, rollouts, the training loop, checkpoints and distribution.

The only layer that may import torch or know about GPUs. It arrives with the training issue;
this package fixes the layer for the import rules checked in tests/test_layers.py.
"""
