"""GRPO and Dr.GRPO advantages against per-group loops, and their losses' aggregations."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rewardgym.algorithms.base import LossScale  # noqa: E402
from rewardgym.algorithms.dr_grpo import DrGRPO, DrGRPOConfig  # noqa: E402
from rewardgym.algorithms.grpo import GRPO, GRPOConfig, group_advantages  # noqa: E402
from tests.algorithms import reference as ref  # noqa: E402

CASES = pytest.mark.parametrize("case", ref.CASES, ids=lambda c: c.name)


def _inputs(case: ref.Case):
    return (
        torch.tensor(case.rewards),
        torch.tensor(case.scorable),
        torch.tensor(case.mask),
    )


@CASES
@pytest.mark.parametrize("scale_by_std", [True, False])
def test_group_advantages_match_reference(case, scale_by_std):
    rewards, scorable, _ = _inputs(case)
    got = group_advantages(rewards, scorable, case.G, scale_by_std, 1e-4)
    expected = ref.grpo(case.rewards, case.scorable, case.G, scale_by_std, 1e-4)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float32))


@CASES
def test_grpo_advantages_broadcast_over_trained_tokens(case):
    rewards, scorable, mask = _inputs(case)
    algo = GRPO(GRPOConfig(std_eps=1e-3))
    got = algo.advantages(rewards, scorable, mask, case.G)
    expected = ref.broadcast(ref.grpo(case.rewards, case.scorable, case.G, True, 1e-3), case.mask)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float32))


@CASES
def test_dr_grpo_advantages_are_mean_centred_only(case):
    rewards, scorable, mask = _inputs(case)
    got = DrGRPO(DrGRPOConfig()).advantages(rewards, scorable, mask, case.G)
    expected = ref.broadcast(ref.grpo(case.rewards, case.scorable, case.G, False), case.mask)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float32))


def test_edge_cases_by_hand():
    s = torch.tensor([True] * 4)
    zero = torch.zeros(4)
    torch.testing.assert_close(group_advantages(torch.zeros(4), s, 4), zero)  # all wrong
    torch.testing.assert_close(group_advantages(torch.ones(4), s, 4), zero)  # all right
    torch.testing.assert_close(group_advantages(torch.full((4,), 0.1), s, 4), zero)
    one = torch.tensor([False, True, False, False])  # a lone scorable row
    torch.testing.assert_close(group_advantages(torch.tensor([1.0, 1.0, 0, 0]), one, 4), zero)
    # Unbiased std: rewards 1, 0 -> mean 0.5, std sqrt(0.5), advantages +-0.5 / sqrt(0.5).
    two = group_advantages(torch.tensor([1.0, 0.0]), torch.tensor([True, True]), 2, eps=0.0)
    torch.testing.assert_close(two, torch.tensor([0.5**0.5, -(0.5**0.5)]))
    nan = torch.tensor([1.0, float("nan"), 0.0, 5.0])  # an unscorable reward is never read
    scorable = torch.tensor([True, False, True, True])
    assert torch.isfinite(group_advantages(nan, scorable, 4)).all()


def test_dr_grpo_loss_uses_the_constant_normaliser():
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # (N, T)
    lp = torch.zeros(2, 3)
    adv = torch.tensor([[1.0, 1.0, 0.0], [2.0, 0.0, 0.0]])
    scale = LossScale(num_rows=2, num_tokens=3, max_tokens=5)
    loss, _ = DrGRPO(DrGRPOConfig()).loss(lp, lp, adv, mask, scale)
    torch.testing.assert_close(loss, torch.tensor(-4.0 / 10))  # -(1 + 1 + 2) / (2 x 5)
    loss, _ = GRPO(GRPOConfig()).loss(lp, lp, adv, mask, scale)  # seq_mean
    torch.testing.assert_close(loss, torch.tensor(-(1.0 + 2.0) / 2))
    loss, _ = GRPO(GRPOConfig(aggregation="token_mean")).loss(lp, lp, adv, mask, scale)
    torch.testing.assert_close(loss, torch.tensor(-4.0 / 3))


@pytest.mark.parametrize(
    "algo", [GRPO(GRPOConfig(kl_coef=0.04)), DrGRPO(DrGRPOConfig(kl_coef=0.04))], ids=repr
)
def test_loss_gradients_are_finite(algo):
    case = ref.random_case(11)
    rewards, scorable, mask = _inputs(case)
    lp, old, reflp, _ = (torch.tensor(x) for x in ref.random_logprobs(11, len(case.mask)))
    adv = algo.advantages(rewards, scorable, mask, case.G, old_logprobs=old, ref_logprobs=reflp)
    leaf = lp.clone().requires_grad_(True)
    loss, metrics = algo.loss(leaf, old, adv, mask, LossScale(12, 40, 8), ref_logprobs=reflp)
    loss.backward()
    assert torch.isfinite(leaf.grad).all() and leaf.grad.abs().sum() > 0
    assert set(metrics) == {"loss", "clip_fraction", "ratio_mean", "approx_kl", "kl"}
