"""The algorithm contracts the trainer is written against, and the step-wide loss normalisers.

An :class:`Algorithm` is built from its frozen config dataclass and does tensor math only: the
trainer collects data, calls the algorithm, and back-propagates what it returns. ``data`` says
which data the trainer must bring: ``"rollouts"`` (sampled from the env and scored),
``"demonstrations"`` (prompt and response pairs) or ``"preferences"`` (chosen / rejected pairs).

Shapes: N rows = B prompts x G samples (the rows of a group are contiguous: row i belongs to
group i // G); T completion-token positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from rewardgym.core.errors import ConfigError

__all__ = ["DATA_KINDS", "Algorithm", "LossScale", "PolicyGradient"]

DATA_KINDS = ("rollouts", "demonstrations", "preferences")


@dataclass(frozen=True)
class LossScale:
    """Totals over the whole optimizer step (every micro-batch), so that the micro-batch losses
    sum to exactly the full-batch loss. Every loss divides by these, never by a micro-batch's own
    counts.

    num_rows: rows in the step (>= 1).
    num_tokens: trained tokens (mask sum) in the step (>= 1; the trainer clamps).
    max_tokens: the constant normaliser length (rollout.max_new_tokens x turns, >= 1).
    """

    num_rows: int
    num_tokens: int
    max_tokens: int

    def __post_init__(self) -> None:
        for name in ("num_rows", "num_tokens", "max_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"LossScale {name} must be an int >= 1, got {value!r}. Clamp the step's "
                    f"count to at least 1 (a step with nothing to train should skip the loss)."
                )


class Algorithm:
    """Base class of every algorithm. Subclasses set ``data`` (one of :data:`DATA_KINDS`) and
    implement the methods the trainer calls for that kind of data."""

    data: ClassVar[str]

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

    data: ClassVar[str] = "rollouts"
    kl_in_reward: ClassVar[bool] = False  # True: kl_coef penalises the reward, not the loss
    # The rollout strategy the algorithm trains on (rollout.strategy must match): "standard"
    # (calls advantages()), "anytime" (BRPO-style: anytime_advantages()) or "episodic"
    # (MRT-style: episodic_advantages()).
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
        from rewardgym.algorithms._policy_loss import clipped_policy_loss

        c = self.config
        return clipped_policy_loss(
            logprobs, old_logprobs, advantages, mask, scale,
            clip_eps=c.clip_eps, clip_eps_high=getattr(c, "clip_eps_high", None),
            kl_coef=0.0 if self.kl_in_reward else c.kl_coef, ref_logprobs=ref_logprobs,
            aggregation=getattr(self, "aggregation", None) or c.aggregation,
        )  # fmt: skip
