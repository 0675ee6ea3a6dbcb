"""The clipped policy-gradient loss (PPO-clip, Schulman et al. 2017) shared by the
policy-gradient algorithms, with an optional k3 KL penalty, and the three ways of reducing
per-token losses to the micro-batch's share of the step loss.

Shapes: N rows in the micro-batch, T completion-token positions.

The aggregations are what tell the GRPO variants apart; each divides by step-wide totals
(:class:`LossScale`), so micro-batch losses add up to the full loss:

- ``token_mean``: sum(loss * mask) / scale.num_tokens -- every trained token weighs the same.
- ``seq_mean``: sum over rows of the row's masked token mean / scale.num_rows -- every row weighs
  the same (GRPO's 1/G sum_i 1/|o_i| sum_t); the row mean uses the row's own token count.
- ``constant``: sum(loss * mask) / (scale.num_rows * scale.max_tokens) -- Dr.GRPO's fixed
  normaliser, free of the length bias of the other two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch

from rewardgym.core.errors import ConfigError, did_you_mean

__all__ = [
    "AGGREGATIONS",
    "Aggregation",
    "LossScale",
    "aggregate",
    "clipped_policy_loss",
    "k3_kl",
    "masked_mean",
]

Aggregation = Literal["token_mean", "seq_mean", "constant"]
AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)


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


def aggregate(
    per_token: torch.Tensor, mask: torch.Tensor, scale: LossScale, aggregation: str
) -> torch.Tensor:
    """Reduce a per-token loss (N, T) to a scalar, by one of :data:`AGGREGATIONS`."""
    masked = torch.where(mask > 0, per_token * mask, torch.zeros_like(per_token))  # (N, T)
    if aggregation == "token_mean":
        return masked.sum() / scale.num_tokens  # () mean over the step's tokens
    if aggregation == "seq_mean":
        row_mean = masked.sum(1) / mask.sum(1).clamp(min=1)  # (N,) each row's token mean
        return row_mean.sum() / scale.num_rows  # () mean over the step's rows
    if aggregation == "constant":
        return masked.sum() / (scale.num_rows * scale.max_tokens)  # () Dr.GRPO
    raise ConfigError(
        f"aggregation must be one of {', '.join(repr(a) for a in AGGREGATIONS)}, got "
        f"{aggregation!r}.{did_you_mean(str(aggregation), AGGREGATIONS)}"
    )


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean of ``x`` over the micro-batch's masked tokens, as a float (for logging only)."""
    x = torch.where(mask > 0, x.detach() * mask, torch.zeros_like(x, dtype=mask.dtype))  # (N, T)
    return float(x.sum() / mask.sum().clamp(min=1))


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(policy || reference): exp(d) - d - 1 with d = ref - lp;
    non-negative and unbiased (Schulman 2020; the GRPO paper's KL term)."""
    d = ref_logprobs - logprobs  # (N, T)
    return torch.exp(d) - d - 1  # (N, T)


def clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    scale: LossScale,
    *,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    kl_coef: float = 0.0,
    ref_logprobs: torch.Tensor | None = None,
    aggregation: str = "token_mean",
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO-clip: per token -min(ratio * A, clip(ratio, 1 - eps_lo, 1 + eps_hi) * A), plus
    ``kl_coef`` x k3 KL to the reference when ``kl_coef`` > 0, reduced by ``aggregation``.

    eps_lo = clip_eps; eps_hi = clip_eps_high, or clip_eps when None (DAPO's clip-higher when
    larger). ``kl_coef`` > 0 needs ``ref_logprobs``. Tokens where the mask is 0 contribute
    nothing, not even NaN, whatever the log-probs there.

    Metrics (floats; means over this micro-batch's masked tokens, for logging): ``loss``,
    ``clip_fraction`` (tokens where the clipped term is the one taken: ratio above 1 + eps_hi
    with A > 0, or below 1 - eps_lo with A < 0, so their gradient is 0), ``ratio_mean``,
    ``approx_kl`` (mean of old - lp, the k1 estimate of KL(old || policy)) and ``kl`` (mean k3
    to the reference, when ``ref_logprobs`` is given).
    """
    if kl_coef > 0 and ref_logprobs is None:
        raise ConfigError(
            f"kl_coef={kl_coef} adds a KL penalty to the loss, which needs ref_logprobs, got "
            "None. Pass the reference model's log-probs, or set kl_coef to 0."
        )
    eps_lo = clip_eps
    eps_hi = clip_eps if clip_eps_high is None else clip_eps_high
    trained = mask > 0  # (N, T)
    zero = torch.zeros_like(logprobs)  # (N, T)
    log_ratio = torch.where(trained, logprobs - old_logprobs, zero)  # (N, T)
    ratio = torch.exp(log_ratio)  # (N, T)
    A = torch.where(trained, advantages.to(ratio.dtype), zero)  # (N, T)
    unclipped = ratio * A  # (N, T)
    clipped = torch.clamp(ratio, 1 - eps_lo, 1 + eps_hi) * A  # (N, T)
    per_token = -torch.minimum(unclipped, clipped)  # (N, T)
    kl = None
    if ref_logprobs is not None:
        kl = k3_kl(logprobs, torch.where(trained, ref_logprobs, logprobs.detach()))  # (N, T)
        if kl_coef > 0:
            per_token = per_token + kl_coef * kl  # (N, T)
    loss = aggregate(per_token, mask, scale, aggregation)  # ()

    is_clipped = ((ratio > 1 + eps_hi) & (A > 0)) | ((ratio < 1 - eps_lo) & (A < 0))  # (N, T)
    metrics = {
        "loss": float(loss.detach()),
        "clip_fraction": masked_mean(is_clipped.to(mask.dtype), mask),
        "ratio_mean": masked_mean(ratio, mask),
        "approx_kl": masked_mean(-log_ratio, mask),
    }
    if kl is not None:
        metrics["kl"] = masked_mean(kl, mask)
    return loss, metrics
