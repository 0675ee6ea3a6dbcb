"""The runner: models, engines, rollouts, the training loop, checkpoints and evaluation.

The only layer that may import torch or know about GPUs. Importing any runner module without
the ``training`` extra raises :class:`~rewardgym.core.errors.MissingExtraError` naming the pip
command.
"""

from rewardgym.core.errors import require

require("torch", "training", "training and evaluating models")
require("transformers", "training", "training and evaluating models")
