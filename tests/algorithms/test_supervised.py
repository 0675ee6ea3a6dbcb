"""SFT and RFT: the masked NLL against a loop, micro-batch additivity, and RFT's selection."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rewardgym.algorithms._policy_loss import AGGREGATIONS  # noqa: E402
from rewardgym.algorithms.base import LossScale  # noqa: E402
from rewardgym.algorithms.rft import RFT, RFTConfig  # noqa: E402
from rewardgym.algorithms.sft import SFT, SFTConfig  # noqa: E402
from tests.algorithms import reference as ref  # noqa: E402


def _f32(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float32)


def _scale(mask) -> LossScale:
    tokens = sum(1 for row in mask for m in row if m > 0)
    return LossScale(len(mask), max(tokens, 1), ref.T)


@pytest.mark.parametrize("case", ref.CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
@pytest.mark.parametrize("algo_cls", [(SFT, SFTConfig), (RFT, RFTConfig)], ids=["sft", "rft"])
def test_nll_matches_reference(case, aggregation, algo_cls):
    cls, config = algo_cls
    lp = ref.random_logprobs(1, len(case.mask))[0]
    scale = _scale(case.mask)
    loss, metrics = cls(config(aggregation=aggregation)).loss(_f32(lp), _f32(case.mask), scale)
    expected = ref.nll(
        lp, case.mask, (scale.num_rows, scale.num_tokens, scale.max_tokens), aggregation
    )
    torch.testing.assert_close(loss, torch.tensor(expected, dtype=torch.float32))
    pairs = [
        (x, k) for row, m in zip(lp, case.mask, strict=True) for x, k in zip(row, m, strict=True)
    ]
    tokens = [-x for x, k in pairs if k > 0]
    assert metrics["loss"] == pytest.approx(expected, rel=1e-5)
    assert metrics["nll"] == pytest.approx(sum(tokens) / max(len(tokens), 1), rel=1e-5)


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_micro_batches_sum_to_the_full_batch(aggregation):
    case = ref.random_case(6, B=4, G=2)
    lp, mask = _f32(ref.random_logprobs(6, 8)[0]), _f32(case.mask)
    algo, scale = SFT(SFTConfig(aggregation=aggregation)), _scale(case.mask)
    full, _ = algo.loss(lp, mask, scale)
    parts = [algo.loss(lp[rows], mask[rows], scale)[0] for rows in (slice(0, 3), slice(3, 8))]
    torch.testing.assert_close(parts[0] + parts[1], full)


def test_nll_gradient_is_minus_one_over_tokens():
    lp = torch.full((2, 3), -1.0, requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    loss, _ = SFT(SFTConfig()).loss(lp, mask, LossScale(2, 3, 3))
    loss.backward()
    torch.testing.assert_close(lp.grad, -mask / 3)


def _select(rewards, scorable, G, **config):
    return (
        RFT(RFTConfig(**config)).select(torch.tensor(rewards), torch.tensor(scorable), G).tolist()
    )


def test_rft_keeps_scorable_rows_at_or_above_the_threshold():
    rewards = [1.0, 0.1, 1.0, 1.0, 0.0, 0.0, 1.5, 0.99]
    scorable = [True, True, False, True, True, True, True, True]
    assert _select(rewards, scorable, 4) == [True, False, False, True, False, False, True, False]
    assert _select(rewards, scorable, 4, threshold=0.1) == [
        True, True, False, True, False, False, True, True,
    ]  # fmt: skip
    assert _select(rewards, scorable, 4, threshold=0.1, max_per_prompt=1) == [
        True, False, False, False, False, False, True, False,
    ]  # fmt: skip
    assert _select(rewards, scorable, 1, max_per_prompt=1) == _select(rewards, scorable, 1)
    assert _select([0.0] * 4, [True] * 4, 2) == [False] * 4


@pytest.mark.parametrize("case", ref.CASES, ids=lambda c: c.name)
def test_rft_selection_matches_a_loop(case):
    got = _select(case.rewards, case.scorable, case.G, threshold=0.1, max_per_prompt=2)
    expected = []
    for rows in ref.groups(case):
        kept = 0
        for i in rows:
            keep = case.scorable[i] and case.rewards[i] >= 0.1 and kept < 2
            kept += keep
            expected.append(keep)
    assert got == expected
