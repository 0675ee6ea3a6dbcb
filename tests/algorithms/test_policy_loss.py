"""The clipped policy-gradient loss against a per-token loop, micro-batch additivity of every
aggregation, gradients, and isolation of masked-out tokens."""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")

from rewardgym.algorithms._policy_loss import AGGREGATIONS, aggregate, clipped_policy_loss  # noqa: E402
from rewardgym.algorithms.base import LossScale  # noqa: E402
from rewardgym.core.errors import ConfigError  # noqa: E402
from tests.algorithms import reference as ref  # noqa: E402

OPTIONS = [  # clip_eps, clip_eps_high, kl_coef, with_ref
    (0.2, None, 0.0, False),
    (0.2, 0.28, 0.0, False),
    (0.1, None, 0.05, True),
    (0.2, None, 0.0, True),  # reference given only for the "kl" metric
]


def _scale(mask: list[list[float]]) -> LossScale:
    tokens = sum(1 for row in mask for m in row if m > 0)
    return LossScale(num_rows=len(mask), num_tokens=max(tokens, 1), max_tokens=ref.T + 2)


def _t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float32)


@pytest.mark.parametrize("case", ref.CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_matches_reference(case, aggregation, options):
    clip_eps, clip_eps_high, kl_coef, with_ref = options
    lp, old, reflp, adv = ref.random_logprobs(len(case.name), len(case.mask))
    scale = _scale(case.mask)
    expected, expected_metrics = ref.policy_loss(
        lp, old, adv, case.mask, (scale.num_rows, scale.num_tokens, scale.max_tokens),
        clip_eps, clip_eps_high, kl_coef, reflp if with_ref else None, aggregation,
    )  # fmt: skip
    loss, metrics = clipped_policy_loss(
        _t(lp), _t(old), _t(adv), _t(case.mask), scale,
        clip_eps=clip_eps, clip_eps_high=clip_eps_high, kl_coef=kl_coef,
        ref_logprobs=_t(reflp) if with_ref else None, aggregation=aggregation,
    )  # fmt: skip
    torch.testing.assert_close(loss, torch.tensor(expected, dtype=torch.float32))
    assert metrics.keys() == expected_metrics.keys()
    for key, value in expected_metrics.items():
        assert metrics[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_reference_cases_exercise_clipping():
    lp, old, _, adv = ref.random_logprobs(0, 12)
    _, metrics = ref.policy_loss(
        lp, old, adv, [[1.0] * ref.T] * 12, (12, 72, 8), 0.2, None, 0.0, None, "token_mean"
    )
    assert 0.1 < metrics["clip_fraction"] < 0.9


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_micro_batches_sum_to_the_full_batch(aggregation):
    case = ref.random_case(7, B=4, G=4)
    lp, old, reflp, adv = (_t(x) for x in ref.random_logprobs(7, len(case.mask)))
    mask = _t(case.mask)
    scale = _scale(case.mask)

    def run(rows: slice) -> tuple[torch.Tensor, torch.Tensor]:
        leaf = lp.clone().requires_grad_(True)
        loss, _ = clipped_policy_loss(
            leaf[rows], old[rows], adv[rows], mask[rows], scale,
            kl_coef=0.1, ref_logprobs=reflp[rows], aggregation=aggregation,
        )  # fmt: skip
        loss.backward()
        return loss.detach(), leaf.grad

    full, full_grad = run(slice(0, 16))
    first, first_grad = run(slice(0, 5))
    second, second_grad = run(slice(5, 16))
    torch.testing.assert_close(first + second, full)
    torch.testing.assert_close(first_grad + second_grad, full_grad)


def test_gradients_are_finite_and_masked_tokens_get_none():
    case = ref.random_case(3)
    lp, old, reflp, adv = (_t(x) for x in ref.random_logprobs(3, len(case.mask)))
    mask = _t(case.mask)
    # Garbage where nothing is trained must not leak into the loss or the gradient.
    old = torch.where(mask > 0, old, torch.tensor(float("-inf")))
    reflp = torch.where(mask > 0, reflp, torch.tensor(float("nan")))
    adv = torch.where(mask > 0, adv, torch.tensor(float("nan")))
    leaf = lp.clone().requires_grad_(True)
    for aggregation in AGGREGATIONS:
        leaf.grad = None
        loss, metrics = clipped_policy_loss(
            leaf, old, adv, mask, _scale(case.mask),
            kl_coef=0.1, ref_logprobs=reflp, aggregation=aggregation,
        )  # fmt: skip
        loss.backward()
        assert torch.isfinite(loss)
        assert torch.isfinite(leaf.grad).all()
        assert (leaf.grad[mask == 0] == 0).all()
        assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_ratio_one_and_zero_advantages_give_zero_loss(aggregation):
    lp = torch.randn(6, 5).requires_grad_(True)
    loss, metrics = clipped_policy_loss(
        lp, lp.detach(), torch.zeros(6, 5), torch.ones(6, 5), LossScale(6, 30, 5),
        kl_coef=0.1, ref_logprobs=lp.detach(), aggregation=aggregation,
    )  # fmt: skip
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert (lp.grad == 0).all()
    assert metrics == {
        "loss": 0.0, "clip_fraction": 0.0, "ratio_mean": 1.0, "approx_kl": 0.0, "kl": 0.0,
    }  # fmt: skip


def test_kl_in_the_loss_needs_the_reference():
    with pytest.raises(ConfigError, match=re.escape("kl_coef=0.1 adds a KL penalty to the loss")):
        clipped_policy_loss(
            torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 3),
            LossScale(2, 6, 3), kl_coef=0.1,
        )  # fmt: skip


def test_unknown_aggregation():
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "aggregation must be one of 'token_mean', 'seq_mean', 'constant', got 'seq-mean'. "
            "Did you mean 'seq_mean'?"
        ),
    ):
        aggregate(torch.zeros(2, 3), torch.ones(2, 3), LossScale(2, 6, 3), "seq-mean")
