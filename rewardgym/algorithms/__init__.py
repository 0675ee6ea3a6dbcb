"""Policy-optimisation algorithms: pure tensor math, one algorithm per module.

``base`` (the :class:`~rewardgym.algorithms.base.Algorithm` and
:class:`~rewardgym.algorithms.base.PolicyGradient` contracts, :class:`LossScale`),
``_policy_loss`` (the clipped policy-gradient loss and its aggregations), ``grpo``, ``dr_grpo``,
``rloo``, ``reinforce_pp``, ``sft``, ``rft``, ``dpo``; private helpers ``_groups`` (rows as
prompt groups, statistics over scorable rows) and ``_checks`` (config validation). Algorithms
import rewardgym.core only, never the runner: inputs are tensors and masks, outputs a loss and a
metrics dict.

They need torch (the ``training`` extra): importing any algorithm module without it raises
:class:`~rewardgym.core.errors.MissingExtraError` naming the pip command.
"""

from rewardgym.core.errors import require

require("torch", "training", "rewardgym's training algorithms")
