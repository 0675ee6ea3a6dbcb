"""RLOO leave-one-out advantages and its KL-penalised reward against per-group loops."""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")

from rewardgym.algorithms.base import LossScale  # noqa: E402
from rewardgym.algorithms.rloo import RLOO, RLOOConfig, leave_one_out_advantages  # noqa: E402
from rewardgym.core.errors import ConfigError  # noqa: E402
from tests.algorithms import reference as ref  # noqa: E402


def _f32(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float32)


@pytest.mark.parametrize("case", ref.CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("kl_coef", [0.0, 0.05])
def test_advantages_match_reference(case, kl_coef):
    _, old, reflp, _ = ref.random_logprobs(5, len(case.mask))
    algo = RLOO(RLOOConfig(kl_coef=kl_coef))
    got = algo.advantages(
        _f32(case.rewards), torch.tensor(case.scorable), _f32(case.mask), case.G,
        old_logprobs=_f32(old), ref_logprobs=_f32(reflp),
    )  # fmt: skip
    rewards = ref.kl_penalised(case.rewards, case.mask, kl_coef, old, reflp)
    expected = ref.broadcast(ref.rloo(rewards, case.scorable, case.G), case.mask)
    torch.testing.assert_close(got, _f32(expected))


def test_leave_one_out_by_hand():
    got = leave_one_out_advantages(
        torch.tensor([1.0, 0.0, 0.0, 9.0]), torch.tensor([True, True, True, False]), 4
    )
    # Row 0: 1 - mean(0, 0) = 1; rows 1, 2: 0 - mean(1, 0) = -0.5; row 3 unscorable.
    torch.testing.assert_close(got, torch.tensor([1.0, -0.5, -0.5, 0.0]))
    single = leave_one_out_advantages(torch.tensor([1.0, 0.0]), torch.tensor([True, False]), 2)
    torch.testing.assert_close(single, torch.zeros(2))
    g1 = leave_one_out_advantages(torch.tensor([1.0, 0.0]), torch.tensor([True, True]), 1)
    torch.testing.assert_close(g1, torch.zeros(2))


def test_kl_is_in_the_reward_not_the_loss():
    algo = RLOO(RLOOConfig(kl_coef=0.5))
    assert algo.needs_reference
    lp = torch.zeros(2, 3)
    reflp = torch.full((2, 3), -1.0)
    mask, scale = torch.ones(2, 3), LossScale(2, 6, 3)
    loss, metrics = algo.loss(lp, lp, torch.zeros(2, 3), mask, scale, ref_logprobs=reflp)
    assert float(loss) == 0.0 and metrics["kl"] > 0  # logged, not added
    with pytest.raises(ConfigError, match=re.escape("kl_coef=0.5 puts a KL penalty in the reward")):
        algo.advantages(torch.zeros(2), torch.ones(2, dtype=torch.bool), mask, 2)


def test_loss_gradients_are_finite():
    case = ref.random_case(2)
    lp, old, _, _ = (_f32(x) for x in ref.random_logprobs(2, len(case.mask)))
    mask = _f32(case.mask)
    algo = RLOO(RLOOConfig())
    adv = algo.advantages(_f32(case.rewards), torch.tensor(case.scorable), mask, case.G)
    leaf = lp.clone().requires_grad_(True)
    loss, _ = algo.loss(leaf, old, adv, mask, LossScale(12, 40, 8))
    loss.backward()
    assert torch.isfinite(leaf.grad).all()
