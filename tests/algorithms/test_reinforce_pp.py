"""REINFORCE++ token returns and batch whitening against a per-token loop."""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")

from rewardgym.algorithms.base import LossScale  # noqa: E402
from rewardgym.algorithms.reinforce_pp import ReinforcePP, ReinforcePPConfig, token_returns  # noqa: E402
from rewardgym.core.errors import ConfigError  # noqa: E402
from tests.algorithms import reference as ref  # noqa: E402


def _f32(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float32)


def _advantages(case, kl_coef, baseline, old, reflp):
    algo = ReinforcePP(ReinforcePPConfig(kl_coef=kl_coef, baseline=baseline))
    return algo.advantages(
        _f32(case.rewards), torch.tensor(case.scorable), _f32(case.mask), case.G,
        old_logprobs=_f32(old), ref_logprobs=_f32(reflp),
    )  # fmt: skip


@pytest.mark.parametrize("case", ref.CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("kl_coef", [0.0, 0.1])
@pytest.mark.parametrize("baseline", ["none", "group"])
def test_advantages_match_reference(case, kl_coef, baseline):
    _, old, reflp, _ = ref.random_logprobs(8, len(case.mask))
    got = _advantages(case, kl_coef, baseline, old, reflp)
    expected = ref.reinforce_pp(
        case.rewards, case.scorable, case.mask, case.G, kl_coef, old, reflp, baseline
    )
    torch.testing.assert_close(got, _f32(expected), rtol=1e-5, atol=1e-5)


def test_returns_by_hand():
    mask = torch.tensor([[1.0, 1.0, 0.0, 1.0, 0.0], [0.0] * 5])  # a gap (env reply), an empty row
    kl = torch.tensor([[0.1, 0.2, 9.0, 0.3, 9.0], [1.0] * 5])
    got = token_returns(torch.tensor([1.0, 1.0]), mask, kl, 1.0)
    # Row 0: token rewards -0.1, -0.2, (skipped), 1 - 0.3; returns summed from the end.
    expected = torch.tensor([[0.4, 0.5, 0.0, 0.7, 0.0], [0.0] * 5], dtype=torch.float64)
    torch.testing.assert_close(got, expected)


def test_all_equal_returns_whiten_to_zero():
    case = next(c for c in ref.CASES if c.name == "all_point_one")
    got = _advantages(case, 0.0, "none", case.mask, case.mask)
    assert (got == 0).all()


def test_whitened_over_the_batch():
    case = ref.random_case(4)
    got = _advantages(case, 0.1, "none", *ref.random_logprobs(4, len(case.mask))[1:3])
    trained = _f32(case.mask).bool() & torch.tensor(case.scorable)[:, None]
    values = got[trained].double()
    assert abs(float(values.mean())) < 1e-6
    assert float(values.std(unbiased=False)) == pytest.approx(1.0, abs=1e-5)
    assert (got[~trained] == 0).all()


def test_kl_needs_both_logprobs_and_stays_out_of_the_loss():
    algo = ReinforcePP(ReinforcePPConfig(kl_coef=0.1))
    assert algo.needs_reference
    with pytest.raises(
        ConfigError, match=re.escape("reinforce_pp kl_coef=0.1 puts a KL penalty in the reward")
    ):
        algo.advantages(torch.zeros(2), torch.ones(2, dtype=torch.bool), torch.ones(2, 3), 2)
    lp = torch.zeros(2, 3).requires_grad_(True)
    loss, metrics = algo.loss(
        lp, lp.detach(), torch.zeros(2, 3), torch.ones(2, 3), LossScale(2, 6, 3),
        ref_logprobs=torch.full((2, 3), -1.0),
    )  # fmt: skip
    loss.backward()
    assert float(loss.detach()) == 0.0 and metrics["kl"] > 0
    assert torch.isfinite(lp.grad).all()
