"""REINFORCE++ (Hu 2025): REINFORCE with a token-level KL penalty in the reward and advantages
whitened over the whole batch, with no critic and no per-prompt normalisation.

Shapes: N rows = B prompts x G samples (rows of a group contiguous); T completion tokens.

    kl_t  = old_lp_t - ref_lp_t                              (k1, sampling policy vs reference)
    r_t   = r * [t is the row's last trained token] - kl_coef * kl_t     (trained tokens t)
    G_t   = sum_{s >= t, s trained} r_s                      (return, gamma = 1)
    A_t   = (G_t - mean(G)) / (std(G) + 1e-8)                over the trained tokens of the
                                                             scorable rows of the whole batch

``baseline="group"`` is REINFORCE++-baseline: r is first replaced by r - mean of its group's
scorable rewards. The std is the population one (divides by the token count), as in OpenRLHF's
masked whitening; with thousands of tokens the choice does not matter. Returns and whitening are
computed in float64: with all-equal returns the std is 0 and float32 rounding in the mean would
otherwise be blown up by 1 / 1e-8 into advantages of order 1. The KL is in the reward
only, so the loss (PPO-clip) has no KL term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch

from rewardgym.algorithms._checks import check_clip, check_fields
from rewardgym.algorithms._groups import as_groups, group_mean
from rewardgym.algorithms._policy_loss import Aggregation
from rewardgym.algorithms.base import PolicyGradient
from rewardgym.core.errors import ConfigError

__all__ = ["BASELINES", "WHITEN_EPS", "ReinforcePP", "ReinforcePPConfig", "token_returns", "whiten"]

Baseline = Literal["none", "group"]
BASELINES: tuple[str, ...] = get_args(Baseline)
WHITEN_EPS = 1e-8


@dataclass(frozen=True)
class ReinforcePPConfig:
    """Params of ``reinforce_pp``.

    clip_eps: PPO clip range on both sides of 1.
    kl_coef: weight of the token-level KL penalty (k1, old - ref) in the reward;
        0 = no reference model.
    baseline: "none" (REINFORCE++) or "group" (REINFORCE++-baseline: subtract the group mean
        reward first).
    aggregation: "token_mean", "seq_mean" or "constant" (see the policy loss).
    """

    clip_eps: float = 0.2
    kl_coef: float = 0.0
    baseline: Baseline = "none"
    aggregation: Aggregation = "token_mean"

    def __post_init__(self) -> None:
        check_clip("reinforce_pp", self.clip_eps, None, self.kl_coef)
        check_fields("reinforce_pp", self)  # the Literal choices, by the run config's validator


def token_returns(
    rewards: torch.Tensor, mask: torch.Tensor, token_kl: torch.Tensor | None, kl_coef: float
) -> torch.Tensor:
    """G_t (N, T), float64: the row's reward at its last trained token, minus kl_coef x KL at
    every trained token, summed from t to the end (gamma = 1); 0 on untrained tokens."""
    trained = mask > 0  # (N, T)
    T = mask.shape[1]
    pos = torch.arange(T, device=mask.device).expand_as(mask)  # (N, T)
    last = torch.where(trained, pos, torch.full_like(pos, -1)).amax(1)  # (N,) -1 = no tokens
    token_r = torch.zeros(mask.shape, dtype=torch.float64, device=mask.device)  # (N, T)
    if token_kl is not None and kl_coef != 0:
        token_r = torch.where(trained, -kl_coef * token_kl.to(token_r.dtype), token_r)  # (N, T)
    has = last >= 0  # (N,)
    end = torch.where(has, rewards.to(token_r.dtype), torch.zeros_like(token_r[:, 0]))  # (N,)
    token_r = token_r.scatter_add(1, last.clamp(min=0)[:, None], end[:, None])  # (N, T)
    returns = token_r.flip(1).cumsum(1).flip(1)  # (N, T) sum over s >= t
    return returns * trained  # (N, T)


def whiten(x: torch.Tensor, weight: torch.Tensor, eps: float = WHITEN_EPS) -> torch.Tensor:
    """(x - mean) / (std + eps) with mean and population std over the positions where weight is
    1; those positions only are kept, the rest are 0."""
    count = weight.sum()
    if count == 0:
        return torch.zeros_like(x)
    mean = (x * weight).sum() / count  # ()
    var = (((x - mean) * weight) ** 2).sum() / count  # () population variance
    return (x - mean) / (var.sqrt() + eps) * weight  # same shape as x


class ReinforcePP(PolicyGradient):
    """REINFORCE++: token-level KL in the return, batch-whitened advantages, PPO-clip loss."""

    config: ReinforcePPConfig
    kl_in_reward = True  # the KL goes into the per-token returns

    def advantages(
        self, rewards, scorable, mask, group_size, *, old_logprobs=None, ref_logprobs=None
    ):
        c = self.config
        r, m = as_groups(rewards, scorable, group_size)  # (B, G), (B, G)
        if c.baseline == "group":
            r = (r - group_mean(r, m)[0]) * m  # (B, G) REINFORCE++-baseline
        token_kl = None
        if c.kl_coef > 0:
            if old_logprobs is None or ref_logprobs is None:
                raise ConfigError(
                    f"reinforce_pp kl_coef={c.kl_coef} puts a KL penalty in the reward, which "
                    "needs old_logprobs and ref_logprobs. Pass both, or set kl_coef to 0."
                )
            token_kl = old_logprobs - ref_logprobs  # (N, T) k1
        weight = mask * m.reshape(-1, 1)  # (N, T) trained tokens of scorable rows
        returns = token_returns(r.reshape(-1), weight, token_kl, c.kl_coef)  # (N, T)
        return whiten(returns, (weight > 0).to(returns.dtype)).to(torch.float32)  # (N, T)
