"""DPO: pairs from rollouts, the sigmoid loss with label smoothing against a loop, micro-batch
additivity and metrics."""

from __future__ import annotations

import math
import random

import pytest

torch = pytest.importorskip("torch")

from rewardgym.algorithms.dpo import DPO, DPOConfig  # noqa: E402
from tests.algorithms import reference as ref  # noqa: E402


def _inputs(seed: int, P: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[-rng.uniform(5, 40) for _ in range(P)] for _ in range(4)]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("beta,label_smoothing", [(0.1, 0.0), (0.5, 0.2), (2.0, 0.0)])
def test_loss_matches_reference(seed, beta, label_smoothing):
    inputs = _inputs(seed, 5)
    algo = DPO(DPOConfig(beta=beta, label_smoothing=label_smoothing))
    loss, metrics = algo.loss(*(torch.tensor(x, dtype=torch.float64) for x in inputs), 7)
    expected = ref.dpo(*inputs, 7, beta, label_smoothing)
    torch.testing.assert_close(loss, torch.tensor(expected, dtype=torch.float64))
    chosen = [beta * (c - rc) for c, rc in zip(inputs[0], inputs[2], strict=True)]
    rejected = [beta * (r - rr) for r, rr in zip(inputs[1], inputs[3], strict=True)]
    assert metrics["loss"] == pytest.approx(expected)
    assert metrics["chosen_reward"] == pytest.approx(sum(chosen) / 5)
    assert metrics["rejected_reward"] == pytest.approx(sum(rejected) / 5)
    assert metrics["reward_margin"] == pytest.approx((sum(chosen) - sum(rejected)) / 5)
    wins = sum(c > r for c, r in zip(chosen, rejected, strict=True))
    assert metrics["reward_accuracy"] == pytest.approx(wins / 5)


def test_equal_policy_and_reference_give_log_2():
    logps = torch.tensor([-3.0, -5.0], requires_grad=True)
    loss, metrics = DPO(DPOConfig()).loss(logps, logps, logps.detach(), logps.detach(), 2)
    assert float(loss.detach()) == pytest.approx(math.log(2))
    assert metrics["reward_margin"] == 0.0 and metrics["reward_accuracy"] == 0.0


def test_micro_batches_sum_to_the_full_batch_and_gradients_are_finite():
    inputs = [torch.tensor(x) for x in _inputs(9, 6)]
    algo = DPO(DPOConfig())

    def run(rows: slice):
        c = inputs[0].clone().requires_grad_(True)
        r = inputs[1].clone().requires_grad_(True)
        loss, _ = algo.loss(c[rows], r[rows], inputs[2][rows], inputs[3][rows], 6)
        loss.backward()
        return loss.detach(), c.grad, r.grad

    full = run(slice(0, 6))
    a, b = run(slice(0, 2)), run(slice(2, 6))
    for x, y, z in zip(a, b, full, strict=True):
        torch.testing.assert_close(x + y, z)
    assert torch.isfinite(full[1]).all() and (full[1] < 0).all()  # raise chosen log-probs
    assert (full[2] > 0).all()  # lower rejected ones
    empty, metrics = algo.loss(*(torch.zeros(0) for _ in range(4)), 6)
    assert float(empty) == 0.0 and metrics["reward_accuracy"] == 0.0


def _pairs(rewards, scorable, G):
    return DPO(DPOConfig()).pairs(torch.tensor(rewards), torch.tensor(scorable), G)


def test_pairs_by_hand():
    rewards = [0.0, 1.0, 0.5, 1.0, 0.1, 0.1, 0.1, 0.1, 9.0, 0.0, -9.0, 1.0]
    scorable = [True, True, True, True, True, True, True, True, False, True, False, True]
    # Group 0: best is row 1 (the first of the two 1.0s), worst row 0; group 1 all equal;
    # group 2: unscorable rows 8 and 10 are ignored.
    assert _pairs(rewards, scorable, 4) == [(1, 0), (11, 9)]
    assert _pairs([1.0, 0.0], [True, True], 1) == []  # G = 1: nothing to compare
    assert _pairs([1.0, 0.0, 1.0], [True, False, False], 3) == []  # one scorable row


@pytest.mark.parametrize("case", ref.CASES, ids=lambda c: c.name)
def test_pairs_match_a_loop(case):
    expected = []
    for rows in ref.groups(case):
        scored = [i for i in rows if case.scorable[i]]
        if not scored:
            continue
        best = max(scored, key=lambda i: (case.rewards[i], -i))
        worst = min(scored, key=lambda i: (case.rewards[i], i))
        if case.rewards[best] > case.rewards[worst]:
            expected.append((best, worst))
    assert _pairs(case.rewards, case.scorable, case.G) == expected
