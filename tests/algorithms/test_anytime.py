"""BRPO and MRT advantage math against slow loops written straight from PAPERS.md sections 1-2
(plain Python floats, nested loops), on random inputs and the edge cases."""

from __future__ import annotations

import math
import random
import re

import pytest

torch = pytest.importorskip("torch")

from rewardgym.algorithms._anytime import (  # noqa: E402
    brpo_baseline,
    brpo_segment_advantages,
    dense_returns,
    mrt_rewards,
    progress_rewards,
    summary_advantages,
    summary_scores,
    termination_advantages,
    token_advantages,
)
from rewardgym.core.errors import ConfigError  # noqa: E402

SEEDS = pytest.mark.parametrize("seed", range(12))
NAN = float("nan")

# ---------------------------------------------------------------- slow references


def ref_scores(rewards, scorable):
    """r_phi(x, z<=b_j) = mean of the scorable summaries; valid = any scorable."""
    scores, valid = [], []
    for rb, sb in zip(rewards, scorable, strict=True):
        scores.append([]), valid.append([])
        for rg, sg in zip(rb, sb, strict=True):
            row_s, row_v = [], []
            for ra, sa in zip(rg, sg, strict=True):
                kept = [r for r, s in zip(ra, sa, strict=True) if s]
                row_s.append(sum(kept) / len(kept) if kept else 0.0)
                row_v.append(bool(kept))
            scores[-1].append(row_s), valid[-1].append(row_v)
    return scores, valid


def ref_return(s, P, j):
    """R(x, z, j) = sum_{j' >= j} P_j' r_j' for one trace (0-based j)."""
    return sum(P[k] * s[k] for k in range(j, len(P)))


def ref_baseline_parts(scores, valid, P, lam, b, g, j):
    """V1, V2 (None when undefined) of trace g of prompt b at 0-based segment j."""
    m = len(P)
    s, v = scores[b][g], valid[b][g]
    num = sum(lam ** (j - k) * s[k] for k in range(j) if v[k])
    den = sum(lam ** (j - k) for k in range(j) if v[k])
    v1 = num / den * sum(P[k] for k in range(j, m)) if any(v[k] for k in range(j)) else None
    rets = [
        ref_return(scores[b][i], P, j)
        for i in range(len(scores[b]))
        if all(valid[b][i][k] for k in range(j, m))
    ]
    v2 = sum(rets) / len(rets) if rets else None
    return v1, v2


def ref_V(scores, valid, P, lam, b, g, j):
    m = len(P)
    v1, v2 = ref_baseline_parts(scores, valid, P, lam, b, g, j)
    jj = j + 1  # 1-based segment
    w1 = (jj - 1) / m if v1 is not None else 0.0
    w2 = (m - jj + 1) / m if v2 is not None else 0.0
    if w1 + w2 == 0:
        return 0.0
    return (w1 * (v1 or 0.0) + w2 * (v2 or 0.0)) / (w1 + w2)


def ref_advantages(scores, valid, P, lam, variance_reduction):
    out = []
    for b in range(len(scores)):
        out.append([])
        for g in range(len(scores[b])):
            row = []
            for j in range(len(P)):
                if not all(valid[b][g][k] for k in range(j, len(P))):
                    row.append(0.0)
                    continue
                if variance_reduction:
                    base = ref_V(scores, valid, P, lam, b, g, j)
                else:
                    base = ref_baseline_parts(scores, valid, P, lam, b, g, j)[1]
                row.append(ref_return(scores[b][g], P, j) - base)
            out[-1].append(row)
    return out


def ref_summary_advantages(rewards, scorable):
    out = []
    for rb, sb in zip(rewards, scorable, strict=True):
        out.append([])
        for rg, sg in zip(rb, sb, strict=True):
            out[-1].append([])
            for ra, sa in zip(rg, sg, strict=True):
                kept = [r for r, s in zip(ra, sa, strict=True) if s]
                mean = sum(kept) / len(kept) if kept else 0.0
                out[-1][-1].append([r - mean if s else 0.0 for r, s in zip(ra, sa, strict=True)])
    return out


# ---------------------------------------------------------------- inputs


def random_inputs(seed):
    """Summary rewards (B, G, m, A) with unscorable ones set to NaN, scorable, and a prior."""
    rng = random.Random(seed)
    B, G, m, A = rng.randint(2, 3), rng.randint(1, 4), rng.randint(1, 4), rng.randint(1, 4)
    p_unscorable = rng.choice([0.0, 0.15, 0.4])
    scorable = [
        [[[rng.random() >= p_unscorable for _ in range(A)] for _ in range(m)] for _ in range(G)]
        for _ in range(B)
    ]
    rewards = [
        [
            [
                [rng.choice([0.0, 1.0, round(rng.uniform(-1, 2), 3)]) if s else NAN for s in sa]
                for sa in sg
            ]
            for sg in sb
        ]
        for sb in scorable
    ]
    weights = [rng.random() + 0.1 for _ in range(m)]
    P = [w / sum(weights) for w in weights]
    return rewards, scorable, P


def T(x, dtype=torch.float32):
    return torch.tensor(x, dtype=dtype)


def check_brpo(rewards, scorable, P, lam=0.5):
    """summary_scores, dense_returns, brpo_baseline and both advantages against the loops."""
    scores, valid = summary_scores(T(rewards), torch.tensor(scorable))
    s_ref, v_ref = ref_scores(rewards, scorable)
    torch.testing.assert_close(scores, T(s_ref))
    assert valid.tolist() == v_ref
    B, G, m = len(s_ref), len(s_ref[0]), len(P)
    R_ref = [
        [[ref_return(s_ref[b][g], P, j) for j in range(m)] for g in range(G)] for b in range(B)
    ]
    torch.testing.assert_close(dense_returns(scores, P), T(R_ref))
    V_ref = [
        [[ref_V(s_ref, v_ref, P, lam, b, g, j) for j in range(m)] for g in range(G)]
        for b in range(B)
    ]
    torch.testing.assert_close(brpo_baseline(scores, valid, T(P), lam), T(V_ref))
    for vr in (True, False):
        got = brpo_segment_advantages(scores, valid, P, lam, variance_reduction=vr)
        torch.testing.assert_close(got, T(ref_advantages(s_ref, v_ref, P, lam, vr)))
    return scores, valid


# ---------------------------------------------------------------- BRPO


@SEEDS
@pytest.mark.parametrize("lam", [0.5, 1.0, 0.2])
def test_brpo_matches_reference_loops(seed, lam):
    check_brpo(*random_inputs(seed), lam=lam)


@SEEDS
def test_summary_advantages_match_reference(seed):
    rewards, scorable, _ = random_inputs(seed)
    got = summary_advantages(T(rewards), torch.tensor(scorable))
    torch.testing.assert_close(got, T(ref_summary_advantages(rewards, scorable)))
    assert not torch.isnan(got).any()


def _grid(B, G, m, A, value):
    return [
        [[[value(b, g, j, a) for a in range(A)] for j in range(m)] for g in range(G)]
        for b in range(B)
    ]


def _all(B, G, m, A, flag=True):
    return _grid(B, G, m, A, lambda *_: flag)


@pytest.mark.parametrize("value", [0.0, 1.0, 0.3])
@pytest.mark.parametrize("G", [1, 3])
def test_constant_rewards_give_zero_advantages(value, G):
    B, m, A = 2, 4, 3
    rewards = _grid(B, G, m, A, lambda *_: value)
    P = [0.1, 0.2, 0.3, 0.4]
    scores, valid = check_brpo(rewards, _all(B, G, m, A), P)
    for vr in (True, False):
        adv = brpo_segment_advantages(scores, valid, P, variance_reduction=vr)
        torch.testing.assert_close(adv, torch.zeros(B, G, m))
    torch.testing.assert_close(
        summary_advantages(T(rewards), torch.tensor(_all(B, G, m, A))), torch.zeros(B, G, m, A)
    )


def test_one_budget_is_group_baseline_times_prior():
    rng = random.Random(3)
    B, G, A = 3, 4, 2
    rewards = _grid(B, G, 1, A, lambda *_: float(rng.random() < 0.5))
    scores, valid = check_brpo(rewards, _all(B, G, 1, A), [1.0])
    P = 0.7  # any prior mass: m = 1 gives R = P r and V = V2
    r = scores[..., 0]  # (B, G)
    expected = P * (r - r.mean(1, keepdim=True))  # (B, G)
    for vr in (True, False):
        adv = brpo_segment_advantages(scores, valid, [P], variance_reduction=vr)
        torch.testing.assert_close(adv[..., 0], expected)


def test_single_trace_without_variance_reduction_has_zero_advantage():
    rewards, scorable, P = random_inputs(5)
    rewards = [rb[:1] for rb in rewards]  # G = 1
    scorable = [[[[True] * len(sa) for sa in sg] for sg in sb[:1]] for sb in scorable]
    rewards = [
        [[[0.0 if math.isnan(r) else r for r in ra] for ra in rg] for rg in rb] for rb in rewards
    ]
    scores, valid = check_brpo(rewards, scorable, P)
    adv = brpo_segment_advantages(scores, valid, P, variance_reduction=False)
    torch.testing.assert_close(adv, torch.zeros_like(adv))


def test_whole_trace_budget_unscorable():
    B, G, m, A = 2, 3, 4, 2
    rng = random.Random(11)
    rewards = _grid(B, G, m, A, lambda *_: float(rng.random() < 0.5))
    scorable = _grid(B, G, m, A, lambda b, g, j, a: not (b == 0 and g == 1 and j == 2))
    scores, valid = check_brpo(rewards, scorable, [0.25] * 4)
    assert valid[0, 1].tolist() == [True, True, False, True]
    adv = brpo_segment_advantages(scores, valid, [0.25] * 4)
    assert adv[0, 1, :3].tolist() == [0.0, 0.0, 0.0]  # their returns miss a term
    # Every budget of every trace unscorable: no NaN, all zero.
    none = _all(B, G, m, A, False)
    nan_rewards = _grid(B, G, m, A, lambda *_: NAN)
    scores, valid = check_brpo(nan_rewards, none, [0.25] * 4)
    assert not valid.any()
    adv = brpo_segment_advantages(scores, valid, [0.25] * 4)
    torch.testing.assert_close(adv, torch.zeros(B, G, m))


def test_earlier_budgets_unscorable_fall_back_to_group_baseline():
    rewards = [[[[1.0], [0.0], [1.0]], [[0.0], [1.0], [1.0]], [[1.0], [1.0], [0.0]]]]
    scorable = [[[[False], [False], [True]], [[True], [True], [True]], [[True], [True], [True]]]]
    P = [0.2, 0.3, 0.5]
    scores, valid = check_brpo(rewards, scorable, P)
    V = brpo_baseline(scores, valid, P)
    R = dense_returns(scores, P)
    v2 = (R[0, :, 2]).mean()  # all three traces are valid at the last segment
    torch.testing.assert_close(V[0, 0, 2], v2)  # V1 undefined for trace 0: V = V2


def test_trace_ending_before_first_budget_sees_equal_scores():
    """A trace shorter than b_1 is summarised whole at every budget: equal scores across j.
    Then V1 = r * sum_{j'>=j} P_j' = R, so A = ((m-j+1)/m) (R - V2)."""
    B, G, m, A = 2, 4, 4, 3
    rng = random.Random(7)
    per_trace = _grid(B, G, 1, A, lambda *_: float(rng.random() < 0.5))
    rewards = [[[per_trace[b][g][0]] * m for g in range(G)] for b in range(B)]
    P = [0.1, 0.2, 0.3, 0.4]
    scores, valid = check_brpo(rewards, _all(B, G, m, A), P)
    assert (scores == scores[..., :1]).all()
    R = dense_returns(scores, P)
    v2 = R.mean(1, keepdim=True)
    factor = torch.tensor([(m - j + 1) / m for j in range(1, m + 1)])
    adv = brpo_segment_advantages(scores, valid, P)
    torch.testing.assert_close(adv, factor * (R - v2))


def test_dtype_follows_input():
    rewards, scorable, P = random_inputs(2)
    scores, valid = summary_scores(T(rewards, torch.float64), torch.tensor(scorable))
    assert scores.dtype == torch.float64
    assert brpo_segment_advantages(scores, valid, P).dtype == torch.float64


# ---------------------------------------------------------------- tokens


@SEEDS
def test_token_advantages_gather_segments(seed):
    rng = random.Random(seed)
    N, m, Tn = rng.randint(1, 6), rng.randint(1, 4), rng.randint(1, 8)
    adv = [[rng.uniform(-1, 1) for _ in range(m)] for _ in range(N)]
    mask = [[float(rng.random() < 0.7) for _ in range(Tn)] for _ in range(N)]
    ids = [[rng.randrange(m) if mk else -1 for mk in row] for row in mask]
    expected = [[adv[i][ids[i][t]] * mask[i][t] for t in range(Tn)] for i in range(N)]
    got = token_advantages(T(adv), torch.tensor(ids), T(mask))
    torch.testing.assert_close(got, T(expected))


def test_token_advantages_rejects_out_of_range_ids():
    msg = "segment_ids of trained tokens must be in [0, 1] (m=2 budgets), got [2]."
    with pytest.raises(ConfigError, match=re.escape(msg)):
        token_advantages(torch.zeros(1, 2), torch.tensor([[0, 2]]), torch.ones(1, 2))


# ---------------------------------------------------------------- MRT


@SEEDS
def test_mrt_matches_reference(seed):
    rng = random.Random(seed)
    N, E = rng.randint(1, 6), rng.randint(0, 5)
    valid = [[rng.random() > 0.2 for _ in range(E + 1)] for _ in range(N)]
    J = [[rng.choice([0.0, 0.125, 0.5, 1.0]) if v else NAN for v in row] for row in valid]
    expected = [
        [J[i][j] - J[i][j - 1] if valid[i][j] and valid[i][j - 1] else 0.0 for j in range(1, E + 1)]
        for i in range(N)
    ]
    prg = progress_rewards(T(J), torch.tensor(valid))
    torch.testing.assert_close(prg, T(expected).reshape(N, E))
    outcome = [float(rng.random() < 0.5) for _ in range(N)]
    alpha = rng.choice([0.0, 0.5, 2.0])
    total = [outcome[i] + alpha * sum(expected[i]) for i in range(N)]
    torch.testing.assert_close(mrt_rewards(T(outcome), prg, alpha), T(total))
    R_term = [rng.random() for _ in range(N)]
    ok = [rng.random() > 0.3 for _ in range(N)]
    R = [r if v else NAN for r, v in zip(outcome, ok, strict=True)]
    adv = [R[i] - R_term[i] if ok[i] else 0.0 for i in range(N)]
    torch.testing.assert_close(termination_advantages(T(R), T(R_term), torch.tensor(ok)), T(adv))


# ---------------------------------------------------------------- errors


def test_errors_say_what_is_wrong():
    s, v = torch.zeros(2, 3, 4), torch.ones(2, 3, 4, dtype=torch.bool)
    with pytest.raises(ConfigError, match=re.escape("prior must have shape (m,) = (4,)")):
        brpo_baseline(s, v, [0.5, 0.5])
    with pytest.raises(ConfigError, match=re.escape("brpo lam must be a number > 0, got 0.0.")):
        brpo_segment_advantages(s, v, [0.25] * 4, lam=0.0)
    with pytest.raises(ConfigError, match=re.escape("valid must have shape (B, G, m)")):
        brpo_baseline(s, v[..., :2], [0.25] * 4)
    with pytest.raises(ConfigError, match=re.escape("summary_rewards must have 4 dims")):
        summary_scores(s, v)
    with pytest.raises(ConfigError, match=re.escape("mrt alpha must be a number >= 0")):
        mrt_rewards(torch.zeros(2), torch.zeros(2, 3), -1.0)
