"""MRT (Qu, Yang et al. 2025, Meta Reinforcement Fine-Tuning): reward each episode of a thinking
trace for the progress it makes. Trains on ``episodic`` rollouts: G traces per prompt, split
into episodes at marker paragraphs, with K forced answers (probes) after the empty prefix and
after each episode, and one final answer after the whole trace.

Shapes: N rows = B prompts x G traces (rows of a group contiguous); E the most episodes of any
trace in the step (a trace with E_i episodes has E_i + 1 probe points, the rest invalid).

    J_j        = mean correctness of the K probes after episode j (J_0: empty prefix)
    r_prg(z_j) = J_j - J_{j-1}
    group:       A(episode j) = (R - mean_g R) + alpha * r_prg(z_j),   A(answer) = R - mean_g R
    termination: A(episode j) = (R - J_{j-1}) + alpha * r_prg(z_j),    A(answer) = R - J_{E_i}

R is the outcome reward of the final answer. J_{j-1} is the reward of terminating instead of
running episode j (a forced answer from the same prefix), so ``termination`` is the paper's
A = R - R_termination in place of the group mean. Choices made where the paper leaves room:

- The progress bonus is dense: each episode's tokens get their own r_prg (summed over a trace's
  tokens this is alpha * sum_j r_prg, the paper's objective; as one trajectory-level reward the
  sum would telescope to J_E - J_0).
- No division by a standard deviation (as Dr.GRPO); ``alpha=0`` with the ``group`` baseline is
  outcome-only GRPO in the same pipeline (the ``episodic_grpo`` preset), and then no probes are
  sampled.
- A row whose outcome is unscorable gets 0 everywhere; an invalid J (every probe unscorable)
  gives 0 progress and 0 termination advantage where it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

import torch

from rewardgym.algorithms._anytime import progress_rewards
from rewardgym.algorithms._checks import check_clip, check_fields, check_number
from rewardgym.algorithms._groups import as_groups, group_mean
from rewardgym.algorithms._policy_loss import Aggregation
from rewardgym.algorithms.base import PolicyGradient

__all__ = ["BASELINES", "MRT", "MRTConfig"]

Baseline = Literal["group", "termination"]
BASELINES: tuple[str, ...] = get_args(Baseline)


@dataclass(frozen=True)
class MRTConfig:
    """Params of ``mrt``.

    alpha: weight of the progress bonus (>= 0; 0 = outcome reward only).
    baseline: "group" (R - group mean) or "termination" (R - J of the prefix before the episode).
    clip_eps, clip_eps_high: PPO clip range (clip_eps_high None = clip_eps).
    kl_coef: weight of a k3 KL to the reference model in the loss.
    aggregation: "token_mean", "seq_mean" or "constant".

    Episodes and probes are rollout settings (``rollout.episodic``).
    """

    alpha: float = 1.0
    baseline: Baseline = "group"
    clip_eps: float = 0.2
    clip_eps_high: float | None = None
    kl_coef: float = 0.0
    aggregation: Aggregation = "token_mean"

    def __post_init__(self) -> None:
        check_number("mrt", "alpha", self.alpha, low=0, example=1.0)
        check_clip("mrt", self.clip_eps, self.clip_eps_high, self.kl_coef)
        check_fields("mrt", self)  # the Literal choices, by the run config's validator


class MRT(PolicyGradient):
    """MRT: outcome advantage plus a dense per-episode progress bonus."""

    config: MRTConfig
    strategy: ClassVar[str] = "episodic"

    @property
    def needs_probes(self) -> bool:
        """Whether the step must sample probes (not for outcome-only GRPO)."""
        return self.config.alpha > 0 or self.config.baseline == "termination"

    def episodic_advantages(
        self,
        outcome: torch.Tensor,
        scorable: torch.Tensor,
        J: torch.Tensor,
        J_valid: torch.Tensor,
        num_episodes: torch.Tensor,
        group_size: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Advantages of each episode's tokens, (N, E), and of the final answer, (N,), from the
        outcome (N,), its scorability (N,), the probe scores J and their validity
        (N, E + 1), and each row's episode count (N,)."""
        c = self.config
        n, points = J.shape
        r, m = as_groups(outcome, scorable, group_size)  # (B, G), (B, G)
        mean, _ = group_mean(r, m)  # (B, 1)
        R = r.reshape(-1)  # (N,) float64, 0 where unscorable
        ok = m.reshape(-1)  # (N,) 1 = scorable
        valid = J_valid.to(torch.bool)  # (N, E + 1)
        j = torch.where(valid, J.to(torch.float64), torch.zeros((), dtype=torch.float64))
        progress = progress_rewards(j, valid).to(torch.float64)  # (N, E)
        episode = torch.arange(points - 1)[None, :] < num_episodes[:, None]  # (N, E)
        if c.baseline == "group":
            base = (R - mean.expand(-1, group_size).reshape(-1))[:, None]  # (N, 1)
            episode_adv = base + c.alpha * progress  # (N, E)
            answer_adv = base[:, 0]  # (N,)
        else:
            episode_adv = (R[:, None] - j[:, :-1]) * valid[:, :-1] + c.alpha * progress  # (N, E)
            last = num_episodes.long().clamp(max=points - 1)[:, None]  # (N, 1)
            answer_adv = (R - j.gather(1, last)[:, 0]) * valid.gather(1, last)[:, 0]  # (N,)
        episode_adv = episode_adv * episode * ok[:, None]  # (N, E)
        answer_adv = answer_adv * ok  # (N,)
        return episode_adv.to(torch.float32), answer_adv.to(torch.float32)
