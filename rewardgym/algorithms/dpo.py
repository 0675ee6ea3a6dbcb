"""DPO, direct preference optimisation (Rafailov et al. 2023), with conservative label
smoothing (cDPO, Mitchell 2023).

Shapes: N rows = B prompts x G samples (rows of a group contiguous); P preference pairs.
Inputs to the loss are sequence log-probs: the sum of a response's token log-probs, (P,).

    h    = beta * [(lp_c - ref_c) - (lp_r - ref_r)]          implicit reward margin
    loss = sum_pairs -(1 - ls) log sigmoid(h) - ls log sigmoid(-h)   / num_pairs

with ``num_pairs`` the pairs in the whole optimizer step. Online, the pairs come from the
rollouts (:meth:`DPO.pairs`: in each group, the best and the worst scorable sample when their
rewards differ); offline, from a JSONL file of ``{"prompt", "chosen", "rejected"}`` lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

import torch
import torch.nn.functional as F

from rewardgym.algorithms._checks import check_fields, check_number, check_source
from rewardgym.algorithms._groups import as_groups
from rewardgym.algorithms.base import Algorithm
from rewardgym.core.errors import ConfigError

__all__ = ["DPO", "DPOConfig"]

Source = Literal["rollouts", "jsonl"]
SOURCES: tuple[str, ...] = get_args(Source)
PREFERENCE_KEYS = ("prompt", "chosen", "rejected")


@dataclass(frozen=True)
class DPOConfig:
    """Params of ``dpo``.

    beta: strength of the KL constraint to the reference (higher: stay closer).
    source: "rollouts" (pairs sampled and scored online) or "jsonl" (a file of pairs).
    path: the JSONL file; required when source is "jsonl", not allowed otherwise.
    label_smoothing: probability that a preference label is flipped (cDPO), in [0, 0.5).
    """

    beta: float = 0.1
    source: Source = "rollouts"
    path: str | None = None
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        check_number("dpo", "beta", self.beta, low=0, low_open=True, example=0.1)
        check_source("dpo", self.source, self.path, PREFERENCE_KEYS)
        check_number(
            "dpo", "label_smoothing", self.label_smoothing, low=0, high=0.5, high_open=True,
            example=0.1,
        )  # fmt: skip
        check_fields("dpo", self)  # the Literal choices, by the run config's validator


class DPO(Algorithm):
    """DPO on preference pairs against a frozen reference model."""

    strategy: ClassVar[str] = "preferences"
    config: DPOConfig

    @property
    def needs_reference(self) -> bool:
        return True

    def pairs(
        self, rewards: torch.Tensor, scorable: torch.Tensor, group_size: int
    ) -> list[tuple[int, int]]:
        """(chosen row, rejected row) per group: its best and worst scorable rows (the first
        of each on ties), when their rewards differ; groups in order."""
        r, m = as_groups(rewards, scorable, group_size)  # (B, G), (B, G)
        ok = m > 0  # (B, G)
        best = torch.where(ok, r, torch.full_like(r, -torch.inf)).argmax(1)  # (B,)
        worst = torch.where(ok, r, torch.full_like(r, torch.inf)).argmin(1)  # (B,)
        rows = torch.arange(r.shape[0], device=r.device)  # (B,)
        differ = ok.any(1) & (r[rows, best] > r[rows, worst])  # (B,)
        G = group_size
        return [
            (b * G + int(best[b]), b * G + int(worst[b]))
            for b in differ.nonzero().flatten().tolist()
        ]

    def loss(
        self,
        chosen_logps: torch.Tensor,
        rejected_logps: torch.Tensor,
        ref_chosen_logps: torch.Tensor,
        ref_rejected_logps: torch.Tensor,
        num_pairs: int,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The micro-batch's share of the step's DPO loss (sum over its pairs / num_pairs).

        Metrics (means over this micro-batch's pairs, for logging): ``loss``,
        ``chosen_reward`` and ``rejected_reward`` (beta x log-ratio to the reference),
        ``reward_margin`` (their difference) and ``reward_accuracy`` (fraction with
        chosen_reward > rejected_reward).
        """
        if isinstance(num_pairs, bool) or not isinstance(num_pairs, int) or num_pairs < 1:
            raise ConfigError(
                f"num_pairs must be an int >= 1 (the pairs in the whole step), got {num_pairs!r}."
            )
        beta, ls = self.config.beta, self.config.label_smoothing
        chosen_reward = beta * (chosen_logps - ref_chosen_logps)  # (P,)
        rejected_reward = beta * (rejected_logps - ref_rejected_logps)  # (P,)
        h = chosen_reward - rejected_reward  # (P,)
        per_pair = -(1 - ls) * F.logsigmoid(h) - ls * F.logsigmoid(-h)  # (P,)
        loss = per_pair.sum() / num_pairs  # ()
        return loss, _metrics(loss, chosen_reward.detach(), rejected_reward.detach())


def _metrics(loss: torch.Tensor, chosen: torch.Tensor, rejected: torch.Tensor) -> dict[str, float]:
    """Logging metrics of the DPO loss; chosen and rejected implicit rewards (P,), detached."""

    def mean(x: torch.Tensor) -> float:
        return float(x.double().mean()) if x.numel() else 0.0

    return {
        "loss": float(loss.detach()),
        "chosen_reward": mean(chosen),
        "rejected_reward": mean(rejected),
        "reward_margin": mean(chosen - rejected),
        "reward_accuracy": mean(chosen > rejected),
    }
