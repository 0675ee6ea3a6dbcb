"""RLOO, REINFORCE leave-one-out (Ahmadian et al. 2024, "Back to basics"): each sample's
baseline is the mean reward of the other samples of its prompt.

Shapes: N rows = B prompts x G samples (rows of a group contiguous); T completion tokens.

    r_i'  = r_i - kl_coef * sum_t (old_lp_t - ref_lp_t)      (sequence reward with KL penalty)
    A_i   = r_i' - 1/(n-1) sum_{j != i} r_j'                 for every token of sample i

over the group's n scorable samples; a group with fewer than 2 scorable samples has no
leave-one-out baseline and gets 0. As in the paper (and TRL's RLOOTrainer), the KL to the
reference is a penalty in the sequence reward, k1 estimate from the sampling policy's log-probs,
not a term of the loss. The loss is PPO-clip on these advantages.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rewardgym.algorithms._checks import check_clip, check_fields
from rewardgym.algorithms._groups import as_groups, row_tokens
from rewardgym.algorithms._policy_loss import Aggregation
from rewardgym.algorithms.base import PolicyGradient
from rewardgym.core.errors import ConfigError

__all__ = ["RLOO", "RLOOConfig", "kl_penalised_rewards", "leave_one_out_advantages"]


@dataclass(frozen=True)
class RLOOConfig:
    """Params of ``rloo``.

    clip_eps: PPO clip range on both sides of 1.
    kl_coef: weight of the sequence KL to the reference model, subtracted from the reward;
        0 = no reference model.
    aggregation: "token_mean", "seq_mean" or "constant" (see the policy loss).
    """

    clip_eps: float = 0.2
    kl_coef: float = 0.0
    aggregation: Aggregation = "token_mean"

    def __post_init__(self) -> None:
        check_clip("rloo", self.clip_eps, None, self.kl_coef)
        check_fields("rloo", self)  # the Literal choices, by the run config's validator


def kl_penalised_rewards(
    rewards: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
    old_logprobs: torch.Tensor | None,
    ref_logprobs: torch.Tensor | None,
) -> torch.Tensor:
    """r - kl_coef * sum over the row's masked tokens of (old_lp - ref_lp); (N,)."""
    if kl_coef == 0:
        return rewards
    if old_logprobs is None or ref_logprobs is None:
        raise ConfigError(
            f"kl_coef={kl_coef} puts a KL penalty in the reward, which needs old_logprobs and "
            "ref_logprobs. Pass both, or set kl_coef to 0."
        )
    kl = torch.where(
        mask > 0, old_logprobs - ref_logprobs, torch.zeros_like(old_logprobs)
    )  # (N, T)
    return rewards - kl_coef * (kl * mask).sum(1)  # (N,)


def leave_one_out_advantages(
    rewards: torch.Tensor, scorable: torch.Tensor, group_size: int
) -> torch.Tensor:
    """r_i minus the mean of the other scorable rewards of its group; (N,), 0 on unscorable rows
    and in groups with fewer than 2 scorable rows."""
    r, m = as_groups(rewards, scorable, group_size)  # (B, G), (B, G)
    n = m.sum(1, keepdim=True)  # (B, 1) scorable rows in the group
    total = (r * m).sum(1, keepdim=True)  # (B, 1) their reward sum
    baseline = (total - r) / (n - 1).clamp(min=1)  # (B, G) mean of the others
    adv = (r - baseline) * m * (n >= 2)  # (B, G)
    return adv.reshape(-1).to(torch.float32)  # (N,)


class RLOO(PolicyGradient):
    """RLOO: leave-one-out baseline, KL penalty in the reward, PPO-clip loss."""

    config: RLOOConfig
    kl_in_reward = True  # the KL penalises each row's reward (see kl_penalised_rewards)

    def advantages(
        self, rewards, scorable, mask, group_size, *, old_logprobs=None, ref_logprobs=None
    ):
        c = self.config
        r = kl_penalised_rewards(rewards, mask, c.kl_coef, old_logprobs, ref_logprobs)  # (N,)
        adv = leave_one_out_advantages(r, scorable, group_size)  # (N,)
        return row_tokens(adv, mask)  # (N, T)
