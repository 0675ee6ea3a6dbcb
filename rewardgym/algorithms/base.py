"""The algorithm contracts, and the step-wide loss normalisers (:class:`LossScale`).

An :class:`Algorithm` is built from its frozen config dataclass and does tensor math only. It
declares, by name, the strategy it trains with (``strategy``): the strategy produces each
step's data, calls the algorithm's methods for that kind of data, and has the trainer
back-propagate the loss. The built-in pairings:

- ``standard`` (:class:`PolicyGradient`: ``advantages``, ``loss``): GRPO, Dr.GRPO, RLOO,
  REINFORCE++;
- ``anytime`` (a PolicyGradient with ``anytime_advantages``): BRPO;
- ``episodic`` (a PolicyGradient with ``episodic_advantages``): MRT;
- ``demonstrations`` (``loss(logprobs, mask, scale)``): SFT;
- ``filtered`` (``select``, ``loss(logprobs, mask, scale)``): RFT;
- ``preferences`` (``pairs``, ``loss`` on sequence log-probs): DPO.

A run config that pairs an algorithm with a strategy that cannot train it fails when it loads.

Shapes: N rows = B prompts x G samples (the rows of a group are contiguous: row i belongs to
group i // G); T completion-token positions.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from rewardgym.algorithms._policy_loss import LossScale, clipped_policy_loss

__all__ = ["Algorithm", "LossScale", "PolicyGradient"]


class Algorithm:
    """Base class of every algorithm. Subclasses set ``strategy`` (the registered name of the
    strategy they train with) and implement the methods that strategy calls."""

    strategy: ClassVar[str]

    def __init__(self, config: Any) -> None:
        self.config = config  # the algorithm's frozen config dataclass

    @property
    def needs_reference(self) -> bool:
        """True when the trainer must keep a frozen reference model and pass its log-probs."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


class PolicyGradient(Algorithm):
    """A policy-gradient algorithm on scored rollouts: advantages, then a clipped ratio loss.

    The trainer calls :meth:`advantages` once on the whole step's batch, then :meth:`loss` on
    each micro-batch with the same :class:`LossScale`. A reference model is needed exactly when
    the config's ``kl_coef`` is above 0.
    """

    kl_in_reward: ClassVar[bool] = False  # True: kl_coef penalises the reward, not the loss
    # "standard" calls advantages(); a subclass trained by "anytime" implements
    # anytime_advantages(), one trained by "episodic" episodic_advantages().
    strategy: ClassVar[str] = "standard"

    @property
    def needs_reference(self) -> bool:
        return float(getattr(self.config, "kl_coef", 0.0)) > 0.0

    def advantages(
        self,
        rewards: torch.Tensor,
        scorable: torch.Tensor,
        mask: torch.Tensor,
        group_size: int,
        *,
        old_logprobs: torch.Tensor | None = None,
        ref_logprobs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-token advantages (N, T) from rewards (N,), scorable (N,) bool and mask (N, T);
        0 on masked-out tokens and on unscorable rows."""
        raise NotImplementedError(f"{type(self).__name__} must implement advantages()")

    def loss(
        self,
        logprobs: torch.Tensor,
        old_logprobs: torch.Tensor,
        advantages: torch.Tensor,
        mask: torch.Tensor,
        scale: LossScale,
        *,
        ref_logprobs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The micro-batch's share of the step loss (a scalar with grad) and logging metrics.

        Default: :func:`~rewardgym.algorithms._policy_loss.clipped_policy_loss` with the
        config's ``clip_eps``, ``clip_eps_high`` (if any) and ``aggregation`` (a class attribute
        ``aggregation`` wins), and its ``kl_coef`` in the loss unless ``kl_in_reward`` is True
        (then the KL was spent in :meth:`advantages`, and ``ref_logprobs`` only logs ``kl``).
        """
        c = self.config
        return clipped_policy_loss(
            logprobs, old_logprobs, advantages, mask, scale,
            clip_eps=c.clip_eps, clip_eps_high=getattr(c, "clip_eps_high", None),
            kl_coef=0.0 if self.kl_in_reward else c.kl_coef, ref_logprobs=ref_logprobs,
            aggregation=getattr(self, "aggregation", None) or c.aggregation,
        )  # fmt: skip
