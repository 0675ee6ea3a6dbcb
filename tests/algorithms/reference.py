"""Slow references written straight from the papers' definitions, with plain Python loops over
rows and tokens (floats, no vectorisation), and the cases the vectorised code is checked on.

Everything here takes and returns Python lists; rows of a group are contiguous (row i belongs
to group i // G); a token is trained where mask > 0.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

T = 6  # token positions in the generated cases


@dataclass(frozen=True)
class Case:
    """A batch of scored rollouts: rewards (N), scorable (N), mask (N x T), group size G."""

    name: str
    rewards: list[float]
    scorable: list[bool]
    mask: list[list[float]]
    G: int


def _random_mask(rng: random.Random, n: int) -> list[list[float]]:
    """Rows of random length, some with a gap (env-reply tokens of a multi-turn episode), some
    empty."""
    rows = []
    for _ in range(n):
        length = rng.randint(0, T)
        row = [1.0 if t < length else 0.0 for t in range(T)]
        if length >= 4 and rng.random() < 0.5:
            row[rng.randint(1, length - 2)] = 0.0
        rows.append(row)
    return rows


def random_case(seed: int, B: int = 3, G: int = 4) -> Case:
    rng = random.Random(seed)
    n = B * G
    rewards = [rng.choice([0.0, 0.1, 1.0, round(rng.uniform(-1, 2), 3)]) for _ in range(n)]
    scorable = [rng.random() > 0.2 for _ in range(n)]
    return Case(f"random{seed}", rewards, scorable, _random_mask(rng, n), G)


def _full(n: int) -> list[list[float]]:
    return [[1.0] * T for _ in range(n)]


def edge_cases() -> list[Case]:
    rng = random.Random(99)
    return [
        Case("all_zero", [0.0] * 8, [True] * 8, _full(8), 4),
        Case("all_one", [1.0] * 8, [True] * 8, _full(8), 4),
        Case("all_point_one", [0.1] * 8, [True] * 8, _random_mask(rng, 8), 4),
        Case(
            "unscorable_rows",
            [1.0, 0.0, 7.0, 1.0, 0.0, 0.5, 1.0, -3.0],
            [True, True, False, True, False, True, True, False],
            _random_mask(rng, 8),
            4,
        ),
        Case(
            "one_scorable_in_group",
            [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0],
            [False, True, False, False, True, True, True, True],
            _full(8),
            4,
        ),
        Case("all_unscorable", [1.0, 0.0, 1.0, 0.0], [False] * 4, _full(4), 2),
        Case(
            "empty_masks",
            [1.0, 0.0, 0.5, 1.0, 0.0, 0.0],
            [True] * 6,
            [[0.0] * T, [1.0] * T, [0.0] * T, [1.0, 1.0, 0.0, 0.0, 0.0, 0.0], [0.0] * T, [1.0] * T],
            3,
        ),
        Case("G1", [1.0, 0.0, 0.3, 1.0], [True, True, True, False], _random_mask(rng, 4), 1),
    ]


CASES = [random_case(seed) for seed in range(5)] + edge_cases()


def groups(case: Case):
    """Each group's row indices."""
    return [range(b * case.G, (b + 1) * case.G) for b in range(len(case.rewards) // case.G)]


def broadcast(per_row: list[float], mask: list[list[float]]) -> list[list[float]]:
    return [[per_row[i] if m > 0 else 0.0 for m in row] for i, row in enumerate(mask)]


# -- advantages -------------------------------------------------------------------------------------
def grpo(rewards, scorable, G, scale_by_std=True, eps=1e-4) -> list[float]:
    """(r_i - mean) / (std + eps), mean and unbiased std over the group's scorable rows."""
    out = [0.0] * len(rewards)
    for b in range(len(rewards) // G):
        rows = [i for i in range(b * G, (b + 1) * G) if scorable[i]]
        if len(rows) < 2:
            continue
        mean = sum(rewards[i] for i in rows) / len(rows)
        std = math.sqrt(sum((rewards[i] - mean) ** 2 for i in rows) / (len(rows) - 1))
        for i in rows:
            out[i] = (rewards[i] - mean) / (std + eps) if scale_by_std else rewards[i] - mean
    return out


def rloo(rewards, scorable, G) -> list[float]:
    """r_i - mean of the other scorable rewards of the group."""
    out = [0.0] * len(rewards)
    for b in range(len(rewards) // G):
        rows = [i for i in range(b * G, (b + 1) * G) if scorable[i]]
        if len(rows) < 2:
            continue
        for i in rows:
            others = [rewards[j] for j in rows if j != i]
            out[i] = rewards[i] - sum(others) / len(others)
    return out


def kl_penalised(rewards, mask, kl_coef, old, ref) -> list[float]:
    """r - kl_coef * sum over trained tokens of (old - ref)."""
    out = []
    for i, r in enumerate(rewards):
        kl = sum(old[i][t] - ref[i][t] for t in range(len(mask[i])) if mask[i][t] > 0)
        out.append(r - kl_coef * kl)
    return out


def reinforce_pp(rewards, scorable, mask, G, kl_coef=0.0, old=None, ref=None, baseline="none"):
    """REINFORCE++: token rewards (r at the last trained token, -kl_coef * (old - ref) at every
    trained token), returns with gamma = 1, whitened over the trained tokens of scorable rows."""
    n = len(rewards)
    r = list(rewards)
    if baseline == "group":
        for b in range(n // G):
            rows = [i for i in range(b * G, (b + 1) * G) if scorable[i]]
            mean = sum(rewards[i] for i in rows) / max(len(rows), 1)
            for i in rows:
                r[i] = rewards[i] - mean
    returns = [[0.0] * len(mask[i]) for i in range(n)]
    values = []
    for i in range(n):
        trained = [t for t in range(len(mask[i])) if mask[i][t] > 0]
        if not scorable[i] or not trained:
            continue
        running = 0.0
        for t in reversed(trained):
            kl = old[i][t] - ref[i][t] if kl_coef else 0.0
            running += -kl_coef * kl + (r[i] if t == trained[-1] else 0.0)
            returns[i][t] = running
            values.append(running)
    out = [[0.0] * len(mask[i]) for i in range(n)]
    if not values:
        return out
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    for i in range(n):
        for t in range(len(mask[i])):
            if scorable[i] and mask[i][t] > 0:
                out[i][t] = (returns[i][t] - mean) / (std + 1e-8)
    return out


# -- losses -----------------------------------------------------------------------------------------
def aggregate(per_token, mask, num_rows, num_tokens, max_tokens, aggregation) -> float:
    total, row_means = 0.0, 0.0
    for i, row in enumerate(mask):
        row_sum = sum(per_token[i][t] for t in range(len(row)) if row[t] > 0)
        total += row_sum
        row_means += row_sum / max(sum(1 for m in row if m > 0), 1)
    if aggregation == "token_mean":
        return total / num_tokens
    if aggregation == "seq_mean":
        return row_means / num_rows
    return total / (num_rows * max_tokens)


def policy_loss(lp, old, adv, mask, scale, clip_eps, clip_eps_high, kl_coef, ref, aggregation):
    """PPO-clip per token, + kl_coef * k3, aggregated. Returns (loss, metrics)."""
    hi = clip_eps if clip_eps_high is None else clip_eps_high
    per_token = [[0.0] * len(row) for row in mask]
    clipped = ratios = approx = kls = count = 0.0
    for i, row in enumerate(mask):
        for t, m in enumerate(row):
            if m <= 0:
                continue
            ratio = math.exp(lp[i][t] - old[i][t])
            A = adv[i][t]
            loss = -min(ratio * A, min(max(ratio, 1 - clip_eps), 1 + hi) * A)
            if ref is not None:
                d = ref[i][t] - lp[i][t]
                kl = math.exp(d) - d - 1
                kls += kl
                loss += kl_coef * kl
            per_token[i][t] = loss
            clipped += (ratio > 1 + hi and A > 0) or (ratio < 1 - clip_eps and A < 0)
            ratios += ratio
            approx += old[i][t] - lp[i][t]
            count += 1
    count = max(count, 1)
    value = aggregate(per_token, mask, *scale, aggregation)
    metrics = {
        "loss": value,
        "clip_fraction": clipped / count,
        "ratio_mean": ratios / count,
        "approx_kl": approx / count,
    }
    if ref is not None:
        metrics["kl"] = kls / count
    return value, metrics


def nll(lp, mask, scale, aggregation) -> float:
    return aggregate([[-x for x in row] for row in lp], mask, *scale, aggregation)


def dpo(chosen, rejected, ref_chosen, ref_rejected, num_pairs, beta, label_smoothing) -> float:
    """Sum over pairs of -(1-ls) log sigma(h) - ls log sigma(-h), divided by num_pairs."""
    total = 0.0
    for c, r, rc, rr in zip(chosen, rejected, ref_chosen, ref_rejected, strict=True):
        h = beta * ((c - rc) - (r - rr))
        log_sig = -math.log1p(math.exp(-h))
        log_sig_neg = -math.log1p(math.exp(h))
        total += -(1 - label_smoothing) * log_sig - label_smoothing * log_sig_neg
    return total / num_pairs


def random_logprobs(seed: int, n: int, spread: float = 0.3):
    """Token log-probs lp, old and ref (n x T), old and ref within about ``spread`` of lp (so
    some ratios leave a 0.2 clip range), and advantages (n x T)."""
    rng = random.Random(seed)
    lp = [[-rng.uniform(0.05, 3.0) for _ in range(T)] for _ in range(n)]
    old = [[x + rng.gauss(0, spread) for x in row] for row in lp]
    ref = [[x + rng.gauss(0, spread) for x in row] for row in lp]
    adv = [[rng.gauss(0, 1) for _ in range(T)] for _ in range(n)]
    return lp, old, ref, adv
