"""Advantage math of anytime reasoning: BRPO (Qi et al. 2025, arXiv 2505.13438) and MRT (Qu,
Yang et al. 2025). Pure tensor code; the trainer builds the inputs (summaries, probes) and turns
the advantages into a loss.

Shapes: B prompts x G thinking traces (N = B * G rows, a prompt's traces contiguous); m budgets
b_1 < ... < b_m with prior P (m,); A summaries per (trace, budget); T token positions; E episodes
of an MRT trace (E + 1 probe points, the first with the empty prefix).

BRPO, with r_j = r_phi(x, z<=b_j) and j the 1-based segment (tokens in (b_{j-1}, b_j])::

    r_phi(x, z<=b_j) = mean of the A summaries' rewards                      summary_scores
    R(x, z, j)       = sum_{j'>=j} P_j' r_j'                                 dense_returns
    V1(j) = [sum_{j'<j} lam^(j-j') r_j'] / [sum_{j'<j} lam^(j-j')] * sum_{j'>=j} P_j'
    V2(j) = (1/G) sum_i R(x, z^i, j)          (the G traces of the same prompt)
    V(j)  = ((j-1)/m) V1(j) + ((m-j+1)/m) V2(j)                              brpo_baseline
    A(j)  = R(x, z, j) - V(j)        (R - V2 without variance reduction)     brpo_segment_advantages
    A(y)  = r(y) - mean of the A summaries of the same (trace, budget)       summary_advantages

MRT, with J_0 the score of a forced answer from the empty prefix and J_j after episode j::

    r_prg(z_j) = J_j - J_{j-1}                                               progress_rewards
    reward     = outcome + alpha * sum_j r_prg(z_j)                          mrt_rewards
    A          = R - R_termination                                       termination_advantages

Where PAPERS.md leaves a choice open, this module takes these (validity = "could be scored"):
- A score r_j is valid when at least one of its A summaries is scorable; its value is the mean
  over the scorable ones, and 0 (never NaN) when invalid. Unscorable rewards may be anything,
  NaN included: they are replaced by 0 before any arithmetic.
- A return R(j) is valid when every score r_j', j' >= j, is valid. ``dense_returns`` takes no
  mask: an invalid score must be 0 there (as ``summary_scores`` gives it) and so counts as 0.
- V1 sums only over valid earlier scores (weights renormalised over them). V2 averages over the
  traces of the prompt whose return at j is valid, the trace itself included (the paper's 1/G
  sum_i, not leave-one-out). When V1 or V2 is undefined (no valid earlier score, e.g. j = 1; no
  valid trace), the mix is renormalised over the defined part: V = V2 when V1 is undefined,
  V1 when V2 is; 0 when neither is. With everything valid this is exactly the paper's mix.
- An advantage (segment, summary, progress, termination) is 0 wherever its inputs are invalid.
- No division by a standard deviation anywhere (the paper's "no std"). The group statistics run in
  float64 so that all-equal groups give exactly 0; outputs have the input's float dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rewardgym.algorithms._checks import check_bool, check_number
from rewardgym.core.errors import ConfigError

__all__ = [
    "brpo_baseline",
    "brpo_segment_advantages",
    "dense_returns",
    "mrt_rewards",
    "progress_rewards",
    "summary_advantages",
    "summary_scores",
    "termination_advantages",
    "token_advantages",
]


def _out_dtype(x: torch.Tensor) -> torch.dtype:
    return x.dtype if x.is_floating_point() else torch.float32


def _check_shape(name: str, x: torch.Tensor, shape: tuple[int, ...], what: str) -> None:
    if tuple(x.shape) != tuple(shape):
        raise ConfigError(
            f"{name} must have shape {what} = {tuple(shape)}, got {tuple(x.shape)}. "
            "It needs one entry per entry of the tensor it goes with."
        )


def _check_dim(name: str, x: torch.Tensor, dim: int, what: str) -> None:
    if x.dim() != dim:
        raise ConfigError(
            f"{name} must have {dim} dims {what}, got shape {tuple(x.shape)}. "
            "See the shape legend of rewardgym.algorithms._anytime."
        )


def _masked(x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` in float64 with invalid entries replaced by 0 (they may be NaN), and ``valid`` as a
    float64 0/1 tensor."""
    v = valid.to(torch.bool)  # (...) same shape as x
    x = torch.where(v, x.to(torch.float64), torch.zeros((), dtype=torch.float64))  # (...)
    return x, v.to(torch.float64)  # (...), (...)


def _prior(prior: torch.Tensor | Sequence[float], m: int) -> torch.Tensor:
    """The budget prior as a float64 (m,) tensor: finite, >= 0, one entry per budget."""
    p = torch.as_tensor(prior, dtype=torch.float64)  # (m,)
    if p.dim() != 1 or p.numel() != m:
        raise ConfigError(
            f"prior must have shape (m,) = ({m},) (one probability per budget), got "
            f"{tuple(p.shape)}. Pass BudgetSchedule.probs of the schedule the scores were made with."
        )
    if not bool(torch.isfinite(p).all()) or bool((p < 0).any()):
        raise ConfigError(
            f"prior must hold finite probabilities >= 0, got {p.tolist()}. "
            "Pass BudgetSchedule.probs."
        )
    return p


# ---------------------------------------------------------------- BRPO


def summary_scores(
    summary_rewards: torch.Tensor, scorable: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """r_phi(x, z<=b_j): the mean reward of the scorable summaries of each (trace, budget),
    (B, G, m), and whether any was scorable, bool (B, G, m); the score is 0 where none was."""
    _check_dim("summary_rewards", summary_rewards, 4, "(B, G, m, A)")
    _check_shape("scorable", scorable, tuple(summary_rewards.shape), "(B, G, m, A)")
    r, s = _masked(summary_rewards, scorable)  # (B, G, m, A), (B, G, m, A)
    n = s.sum(-1)  # (B, G, m) scorable summaries
    scores = r.sum(-1) / n.clamp(min=1)  # (B, G, m)
    return scores.to(_out_dtype(summary_rewards)), n > 0  # (B, G, m), (B, G, m)


def _returns64(scores: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """sum_{j'>=j} P_j' r_j' as a reverse cumulative sum over the budget axis, float64."""
    weighted = scores.to(torch.float64) * p  # (B, G, m) P_j r_j
    return weighted.flip(-1).cumsum(-1).flip(-1)  # (B, G, m)


def dense_returns(scores: torch.Tensor, prior: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """R(x, z, j) = sum_{j'>=j} P_j' r_phi(x, z<=b_j'), (B, G, m). An invalid score must be 0
    in ``scores`` (``summary_scores`` makes it so) and then counts as 0."""
    _check_dim("scores", scores, 3, "(B, G, m)")
    p = _prior(prior, scores.shape[-1])  # (m,)
    return _returns64(scores, p).to(_out_dtype(scores))  # (B, G, m)


def _return_valid(v: torch.Tensor) -> torch.Tensor:
    """1 where every score j' >= j of the trace is valid: a reverse cumulative product."""
    return v.flip(-1).cumprod(-1).flip(-1)  # (B, G, m) float64 0/1


def _group_baseline(R: torch.Tensor, rv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """V2(j): mean of R(x, z^i, j) over the prompt's traces with a valid return at j, broadcast
    to every trace, and whether any trace was valid; both (B, G, m)."""
    n = rv.sum(1, keepdim=True)  # (B, 1, m) traces with a valid return
    v2 = (R * rv).sum(1, keepdim=True) / n.clamp(min=1)  # (B, 1, m)
    return v2.expand_as(R), (n > 0).to(torch.float64).expand_as(R)  # (B, G, m), (B, G, m)


def _decay_baseline(
    s: torch.Tensor, v: torch.Tensor, p: torch.Tensor, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """V1(j): the lam-discounted mean of the trace's own valid earlier scores times the prior
    mass left, sum_{j'>=j} P_j', and whether any earlier score was valid; both (B, G, m)."""
    m = s.shape[-1]
    j = torch.arange(m, dtype=torch.float64)  # (m,) 0-based; j - j' is the same 1-based
    lag = j[:, None] - j[None, :]  # (m, m) lag[j, j'] = j - j'
    earlier = (lag > 0).to(torch.float64)  # (m, m) j' < j
    w = torch.where(lag > 0, lam**lag, torch.zeros((), dtype=torch.float64))  # (m, m)
    num = (s * v) @ w.T  # (B, G, m) sum_{j'<j, valid} lam^(j-j') r_j'
    den = v @ w.T  # (B, G, m) sum_{j'<j, valid} lam^(j-j')
    defined = (v @ earlier.T > 0).to(torch.float64)  # (B, G, m) any valid j' < j
    mass_left = p.flip(0).cumsum(0).flip(0)  # (m,) sum_{j'>=j} P_j'
    v1 = num / torch.where(defined > 0, den, torch.ones_like(den)) * mass_left  # (B, G, m)
    return v1 * defined, defined  # (B, G, m), (B, G, m)


def _brpo_parts(scores, valid, prior, lam):
    """R, its validity, V1 and V2 with their definedness; all float64 (B, G, m)."""
    _check_dim("scores", scores, 3, "(B, G, m)")
    _check_shape("valid", valid, tuple(scores.shape), "(B, G, m)")
    check_number("brpo", "lam", lam, low=0, low_open=True, example=0.5)
    s, v = _masked(scores, valid)  # (B, G, m), (B, G, m)
    p = _prior(prior, s.shape[-1])  # (m,)
    R = _returns64(s, p)  # (B, G, m) invalid scores count as 0
    rv = _return_valid(v)  # (B, G, m)
    v1, d1 = _decay_baseline(s, v, p, lam)  # (B, G, m), (B, G, m)
    v2, d2 = _group_baseline(R, rv)  # (B, G, m), (B, G, m)
    return R, rv, v1, d1, v2, d2


def _mix(v1, d1, v2, d2) -> torch.Tensor:
    """V = ((j-1)/m) V1 + ((m-j+1)/m) V2, renormalised over the defined parts."""
    m = v1.shape[-1]
    j = torch.arange(1, m + 1, dtype=torch.float64)  # (m,) 1-based segment
    w1 = (j - 1) / m * d1  # (B, G, m)
    w2 = (m - j + 1) / m * d2  # (B, G, m)
    total = w1 + w2  # (B, G, m) 1 when both are defined
    mixed = (w1 * v1 + w2 * v2) / torch.where(total > 0, total, torch.ones_like(total))
    return mixed  # (B, G, m)


def brpo_baseline(
    scores: torch.Tensor,
    valid: torch.Tensor,
    prior: torch.Tensor | Sequence[float],
    lam: float = 0.5,
) -> torch.Tensor:
    """The BRPO baseline V(j) = ((j-1)/m) V1 + ((m-j+1)/m) V2 of every (trace, segment),
    (B, G, m); see the module docstring for V1, V2 and the rules for invalid scores."""
    _, _, v1, d1, v2, d2 = _brpo_parts(scores, valid, prior, lam)
    return _mix(v1, d1, v2, d2).to(_out_dtype(scores))  # (B, G, m)


def brpo_segment_advantages(
    scores: torch.Tensor,
    valid: torch.Tensor,
    prior: torch.Tensor | Sequence[float],
    lam: float = 0.5,
    variance_reduction: bool = True,
) -> torch.Tensor:
    """A(j) = R(x, z, j) - V(j) for the thinking tokens of segment j, (B, G, m); with
    ``variance_reduction=False`` the plain group baseline, R - V2. 0 where R is invalid."""
    check_bool("brpo", "variance_reduction", variance_reduction)
    R, rv, v1, d1, v2, d2 = _brpo_parts(scores, valid, prior, lam)
    baseline = _mix(v1, d1, v2, d2) if variance_reduction else v2  # (B, G, m)
    adv = (R - baseline) * rv  # (B, G, m)
    return adv.to(_out_dtype(scores))  # (B, G, m)


def summary_advantages(summary_rewards: torch.Tensor, scorable: torch.Tensor) -> torch.Tensor:
    """A(y) = r(y) - mean of the scorable summaries of the same (trace, budget), (B, G, m, A);
    0 for an unscorable summary (the decoupled summary policy)."""
    _check_dim("summary_rewards", summary_rewards, 4, "(B, G, m, A)")
    _check_shape("scorable", scorable, tuple(summary_rewards.shape), "(B, G, m, A)")
    r, s = _masked(summary_rewards, scorable)  # (B, G, m, A), (B, G, m, A)
    mean = r.sum(-1, keepdim=True) / s.sum(-1, keepdim=True).clamp(min=1)  # (B, G, m, 1)
    adv = (r - mean) * s  # (B, G, m, A)
    return adv.to(_out_dtype(summary_rewards))  # (B, G, m, A)


def token_advantages(
    segment_adv: torch.Tensor, segment_ids: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Each thinking token's segment advantage, segment_adv[i, segment_ids[i, t]], times the
    mask, (N, T). ``segment_ids`` are 0-based (``BudgetSchedule.segments``); where the mask is 0
    they are ignored and may be anything (e.g. -1 on padding)."""
    _check_dim("segment_adv", segment_adv, 2, "(N, m)")
    _check_dim("segment_ids", segment_ids, 2, "(N, T)")
    _check_shape("mask", mask, tuple(segment_ids.shape), "(N, T)")
    n, m = segment_adv.shape
    if segment_ids.shape[0] != n:
        raise ConfigError(
            f"segment_ids has {segment_ids.shape[0]} rows but segment_adv has {n}: both need one "
            "row per trace (N = B * G). Reshape the (B, G, m) advantages with .reshape(-1, m)."
        )
    trained = mask != 0  # (N, T)
    ids = segment_ids.long()  # (N, T)
    bad = trained & ((ids < 0) | (ids >= m))  # (N, T)
    if bool(bad.any()):
        raise ConfigError(
            f"segment_ids of trained tokens must be in [0, {m - 1}] (m={m} budgets), got "
            f"{sorted(set(ids[bad].tolist()))[:5]}. Build them with BudgetSchedule.segments for "
            "the schedule the advantages were computed with."
        )
    dtype = mask.dtype if mask.is_floating_point() else torch.float32
    per_token = segment_adv.gather(1, ids.clamp(0, m - 1))  # (N, T)
    return per_token.to(dtype) * mask.to(dtype)  # (N, T)


# ---------------------------------------------------------------- MRT


def progress_rewards(J: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """r_prg(z_j) = J_j - J_{j-1} for episodes j = 1..E, (N, E); J_0 is the meta-prover's score
    from the empty prefix. 0 where either side is invalid."""
    _check_dim("J", J, 2, "(N, E + 1)")
    _check_shape("valid", valid, tuple(J.shape), "(N, E + 1)")
    j, v = _masked(J, valid)  # (N, E + 1), (N, E + 1)
    both = v[:, 1:] * v[:, :-1]  # (N, E)
    return ((j[:, 1:] - j[:, :-1]) * both).to(_out_dtype(J))  # (N, E)


def mrt_rewards(outcome: torch.Tensor, progress: torch.Tensor, alpha: float) -> torch.Tensor:
    """outcome + alpha * sum_j r_prg(z_j), (N,)."""
    check_number("mrt", "alpha", alpha, low=0, example=1.0)
    _check_dim("outcome", outcome, 1, "(N,)")
    _check_dim("progress", progress, 2, "(N, E)")
    if progress.shape[0] != outcome.shape[0]:
        raise ConfigError(
            f"progress has {progress.shape[0]} rows but outcome has {outcome.shape[0]}: "
            "both need one row per trace."
        )
    total = outcome.to(torch.float64) + alpha * progress.to(torch.float64).sum(1)  # (N,)
    return total.to(_out_dtype(outcome))  # (N,)


def termination_advantages(
    R: torch.Tensor, R_term: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """A = R - R_termination, (N,): a continuing rollout's return against one that terminates
    now from the same prefix; 0 where invalid."""
    _check_dim("R", R, 1, "(N,)")
    _check_shape("R_term", R_term, tuple(R.shape), "(N,)")
    _check_shape("valid", valid, tuple(R.shape), "(N,)")
    v = valid.to(torch.bool)  # (N,)
    diff = R.to(torch.float64) - R_term.to(torch.float64)  # (N,) may be NaN where invalid
    adv = torch.where(v, diff, torch.zeros((), dtype=torch.float64))  # (N,)
    return adv.to(_out_dtype(R))  # (N,)
