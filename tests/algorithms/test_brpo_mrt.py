"""The ``brpo`` and ``mrt`` algorithms: their advantages against plain loops written from
PAPERS.md sections 1-2 (and the module docstrings' choices), and their configs."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

from rewardgym.algorithms.brpo import BRPO, BRPOConfig  # noqa: E402
from rewardgym.algorithms.mrt import MRT, MRTConfig  # noqa: E402
from rewardgym.core.errors import ConfigError  # noqa: E402
from tests.algorithms.test_anytime import (  # noqa: E402
    random_inputs,
    ref_advantages,
    ref_scores,
    ref_summary_advantages,
)

SEEDS = pytest.mark.parametrize("seed", range(8))


def flat(x):
    """Nested lists as one flat list (pytest.approx compares flat sequences only)."""
    return [v for item in x for v in flat(item)] if isinstance(x, list) else [x]


def close(got, want):
    assert flat(got) == pytest.approx(flat(want), abs=1e-5)


@SEEDS
@pytest.mark.parametrize("decouple", [True, False])
@pytest.mark.parametrize("variance_reduction", [True, False])
def test_brpo_advantages_match_loops(seed, decouple, variance_reduction):
    rewards, scorable, P = random_inputs(seed)[:3]
    algo = BRPO(BRPOConfig(decouple=decouple, variance_reduction=variance_reduction))
    r = torch.tensor(rewards, dtype=torch.float)
    s = torch.tensor(scorable)
    segment, summary = algo.anytime_advantages(r, s, tuple(P))
    scores, valid = ref_scores(rewards, scorable)
    want_segment = ref_advantages(scores, valid, P, 0.5, variance_reduction)
    close(segment.tolist(), want_segment)
    if decouple:
        want_summary = ref_summary_advantages(rewards, scorable)
    else:  # a summary at budget j continues its trace there: the segment's advantage
        want_summary = [
            [
                [[want_segment[b][g][j] if ok else 0.0 for ok in row] for j, row in enumerate(rg)]
                for g, rg in enumerate(rb)
            ]
            for b, rb in enumerate(scorable)
        ]
    close(summary.tolist(), want_summary)


def test_grpo_arm_is_reward_minus_group_mean():
    """One budget, one summary, base prior, no decouple, no VR: r - group mean everywhere."""
    algo = BRPO(BRPOConfig(decouple=False, variance_reduction=False))
    r = torch.tensor([[[[1.0]], [[0.0]], [[1.0]], [[1.0]]]])  # (1, 4, 1, 1)
    s = torch.ones_like(r, dtype=torch.bool)
    segment, summary = algo.anytime_advantages(r, s, (1.0,))
    assert segment.flatten().tolist() == pytest.approx([0.25, -0.75, 0.25, 0.25])
    assert summary.flatten().tolist() == pytest.approx([0.25, -0.75, 0.25, 0.25])


def ref_mrt(outcome, scorable, J, valid, episodes, G, alpha, baseline):
    """Per-episode and answer advantages from the MRT module docstring, with loops."""
    n = len(outcome)
    ep, ans = [], []
    for i in range(n):
        group = range(i // G * G, i // G * G + G)
        ok = [k for k in group if scorable[k]]
        mean = sum(outcome[k] for k in ok) / len(ok) if ok else 0.0
        row = []
        for e in range(len(J[i]) - 1):
            if not scorable[i] or e >= episodes[i]:
                row.append(0.0)
                continue
            prg = J[i][e + 1] - J[i][e] if valid[i][e + 1] and valid[i][e] else 0.0
            if baseline == "group":
                base = outcome[i] - mean
            else:
                base = outcome[i] - J[i][e] if valid[i][e] else 0.0
            row.append(base + alpha * prg)
        ep.append(row)
        if not scorable[i]:
            ans.append(0.0)
        elif baseline == "group":
            ans.append(outcome[i] - mean)
        else:
            last = episodes[i]
            ans.append(outcome[i] - J[i][last] if valid[i][last] else 0.0)
    return ep, ans


@SEEDS
@pytest.mark.parametrize("baseline", ["group", "termination"])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 2.0])
def test_mrt_advantages_match_loops(seed, baseline, alpha):
    rng = random.Random(seed)
    G, B, E = rng.choice([1, 2, 4]), rng.randint(1, 3), rng.randint(1, 5)
    n = G * B
    outcome = [float(rng.random() < 0.5) for _ in range(n)]
    scorable = [rng.random() < 0.85 for _ in range(n)]
    episodes = [rng.randint(0, E) for _ in range(n)]
    J = [[rng.choice([0.0, 0.25, 0.5, 1.0]) for _ in range(E + 1)] for _ in range(n)]
    valid = [[p <= episodes[i] and rng.random() < 0.9 for p in range(E + 1)] for i in range(n)]
    algo = MRT(MRTConfig(alpha=alpha, baseline=baseline))
    got_ep, got_ans = algo.episodic_advantages(
        torch.tensor(outcome),
        torch.tensor(scorable),
        torch.tensor(J),
        torch.tensor(valid),
        torch.tensor(episodes),
        G,
    )
    want_ep, want_ans = ref_mrt(outcome, scorable, J, valid, episodes, G, alpha, baseline)
    close(got_ep.tolist(), want_ep)
    close(got_ans.tolist(), want_ans)


def test_mrt_all_equal_outcomes_leave_only_progress():
    algo = MRT(MRTConfig(alpha=1.0))
    J = torch.tensor([[0.0, 0.5, 1.0], [0.0, 0.0, 0.0]])
    ep, ans = algo.episodic_advantages(
        torch.ones(2), torch.ones(2, dtype=torch.bool), J, torch.ones(2, 3, dtype=torch.bool),
        torch.tensor([2, 2]), 2,
    )  # fmt: skip
    assert ep.tolist() == [[0.5, 0.5], [0.0, 0.0]]
    assert ans.tolist() == [0.0, 0.0]


def test_needs_probes():
    assert MRT(MRTConfig(alpha=1.0)).needs_probes
    assert MRT(MRTConfig(alpha=0.0, baseline="termination")).needs_probes
    assert not MRT(MRTConfig(alpha=0.0)).needs_probes


@pytest.mark.parametrize(
    ("cls", "params", "words"),
    [
        (BRPOConfig, {"lam": 0}, "lam"),
        (BRPOConfig, {"decouple": "yes"}, "decouple"),
        (BRPOConfig, {"aggregation": "sum"}, "aggregation"),
        (MRTConfig, {"alpha": -1}, "alpha"),
        (MRTConfig, {"baseline": "terminal"}, "baseline"),
    ],
)
def test_config_errors(cls, params, words):
    with pytest.raises(ConfigError, match=words):
        cls(**params)


def test_strategies():
    assert BRPO.strategy == "anytime" and MRT.strategy == "episodic"
