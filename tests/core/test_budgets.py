import random
import re

import pytest

from rewardgym.core.budgets import PRIORS, BudgetSchedule
from rewardgym.core.errors import ConfigError

BRPO = (2000, 4000, 6000, 8000)


# -- priors --------------------------------------------------------------------------------------
def test_priors():
    assert PRIORS == ("base", "uniform", "linear")
    assert BudgetSchedule(BRPO, "base").probs == (0.0, 0.0, 0.0, 1.0)
    assert BudgetSchedule(BRPO).probs == (0.25,) * 4
    assert BudgetSchedule(BRPO, "linear").probs == pytest.approx((0.1, 0.2, 0.3, 0.4))
    explicit = BudgetSchedule([10, 20], [0.3, 0.7])
    assert explicit.budgets == (10, 20) and explicit.prior == (0.3, 0.7)
    assert explicit.probs == (0.3, 0.7)
    assert hash(explicit) == hash(BudgetSchedule((10, 20), (0.3, 0.7)))
    assert BudgetSchedule((5,), "base").probs == (1.0,)
    assert BudgetSchedule(BRPO).max_budget == 8000


@pytest.mark.parametrize(
    ("budgets", "prior", "message"),
    [
        (
            (),
            "uniform",
            "BudgetSchedule budgets must be a non-empty sequence of token counts, got (). "
            "Pass e.g. budgets=(2000, 4000, 6000, 8000).",
        ),
        (
            8000,
            "uniform",
            "BudgetSchedule budgets must be a sequence, got 8000. "
            "Pass e.g. budgets=(2000, 4000, 6000, 8000).",
        ),
        (
            (2000, 1000, 4000),
            "uniform",
            "BudgetSchedule budgets must be strictly increasing, got 1000 after 2000 at index 1 "
            "in (2000, 1000, 4000). Sort them and drop duplicates: (1000, 2000, 4000).",
        ),
        (
            (10, 10),
            "uniform",
            "BudgetSchedule budgets must be strictly increasing, got 10 after 10 at index 1 in "
            "(10, 10). Sort them and drop duplicates: (10,).",
        ),
        (
            (0, 10),
            "uniform",
            "BudgetSchedule budgets must be >= 1 token, got 0 at index 0 in (0, 10). "
            "Drop it or use a positive budget.",
        ),
        (
            (10, 20.5),
            "uniform",
            "BudgetSchedule budgets must be ints (token counts), got 20.5 at index 1 in "
            "(10, 20.5). Pass whole numbers of tokens.",
        ),
        (
            (10, 20),
            (0.5, 0.4),
            "BudgetSchedule prior probabilities must sum to 1 (within 1e-06), got sum 0.9 for "
            "(0.5, 0.4). Divide each by the sum, or use one of 'base', 'uniform', 'linear'.",
        ),
        (
            (10, 20, 30),
            (0.5, 0.5),
            "BudgetSchedule prior has 2 probabilities for 3 budgets (10, 20, 30); give one "
            "probability per budget.",
        ),
        (
            (10, 20),
            (1.5, -0.5),
            "BudgetSchedule prior probabilities must be finite numbers >= 0, got -0.5 at index "
            "1 in (1.5, -0.5).",
        ),
        (
            (10, 20),
            "unifrom",
            "BudgetSchedule prior 'unifrom' is not known; expected one of 'base', 'uniform', "
            "'linear' or a tuple of probabilities, one per budget. Did you mean 'uniform'?",
        ),
        (
            (10, 20),
            "geometric",
            "BudgetSchedule prior 'geometric' is not known; expected one of 'base', 'uniform', "
            "'linear' or a tuple of probabilities, one per budget.",
        ),
    ],
)
def test_bad_schedules(budgets, prior, message):
    with pytest.raises(ConfigError, match=re.escape(message) + "$"):
        BudgetSchedule(budgets, prior)


def test_prior_sum_tolerance():
    assert BudgetSchedule((1, 2, 3), (1 / 3, 1 / 3, 1 / 3 + 5e-7)).probs[2] > 1 / 3
    with pytest.raises(ConfigError, match="must sum to 1"):
        BudgetSchedule((1, 2, 3), (1 / 3, 1 / 3, 1 / 3 + 5e-6))


# -- segments ------------------------------------------------------------------------------------
def _segment_by_definition(budgets, t):
    """j_t = min{j : b_j >= t}, 0-based."""
    return min(j for j, b in enumerate(budgets) if b >= t)


def test_segments_match_the_definition_on_random_schedules():
    rng = random.Random(0)
    for _ in range(200):
        m = rng.randint(1, 6)
        budgets = sorted(rng.sample(range(1, 60), m))
        schedule = BudgetSchedule(budgets)
        for t in range(1, budgets[-1] + 1):
            assert schedule.segment_of(t) == _segment_by_definition(budgets, t)
        length = rng.randint(0, budgets[-1])
        expected = [_segment_by_definition(budgets, t) for t in range(1, length + 1)]
        assert schedule.segments(length) == expected


def test_segment_bounds():
    schedule = BudgetSchedule((2, 5))
    assert schedule.segments(5) == [0, 0, 1, 1, 1]
    assert schedule.segments(0) == []
    assert schedule.segment_of(2) == 0 and schedule.segment_of(3) == 1
    message = "token position t must be an int in [1, 5] (1-based, at most the largest budget)"
    for t in (0, 6, 2.0):
        with pytest.raises(ValueError, match=re.escape(message)):
            schedule.segment_of(t)
    with pytest.raises(ValueError, match=re.escape("trace length must be an int in [0, 5]")):
        schedule.segments(6)


def test_cut_points():
    schedule = BudgetSchedule(BRPO)
    assert schedule.cut_points(1500) == [1500] * 4  # shorter than the first budget: whole each time
    assert schedule.cut_points(5000) == [2000, 4000, 5000, 5000]  # between budgets
    assert schedule.cut_points(6000) == [2000, 4000, 6000, 6000]  # exactly on a budget
    assert schedule.cut_points(9000) == list(BRPO)  # longer than the last
    assert schedule.cut_points(0) == [0, 0, 0, 0]
    with pytest.raises(ValueError, match=re.escape("trace length must be an int >= 0, got -1")):
        schedule.cut_points(-1)


# -- evenly spaced budgets, anytime score --------------------------------------------------------
def test_evenly_spaced():
    table = BudgetSchedule.evenly_spaced(8000, 32)
    assert table.budgets == tuple(range(250, 8001, 250)) and table.prior == "uniform"
    assert BudgetSchedule.evenly_spaced(10, 3).budgets == (3, 6, 10)
    assert BudgetSchedule.evenly_spaced(7, 7, "linear").budgets == tuple(range(1, 8))
    assert BudgetSchedule.evenly_spaced(10, 2, [0.25, 0.75]).prior == (0.25, 0.75)
    with pytest.raises(ConfigError, match=re.escape("count must be an int >= 1, got 0")):
        BudgetSchedule.evenly_spaced(10, 0)
    message = (
        "BudgetSchedule.evenly_spaced max_budget must be an int >= count (4) so that the 4 "
        "budgets are distinct token counts, got 3. Use fewer budgets or a larger max_budget."
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        BudgetSchedule.evenly_spaced(3, 4)


def test_anytime_score():
    acc = (0.2, 0.4, 0.5, 0.7)
    assert BudgetSchedule(BRPO).anytime_score(acc) == pytest.approx(0.45)
    assert BudgetSchedule(BRPO, "base").anytime_score(acc) == pytest.approx(0.7)
    linear = 0.1 * 0.2 + 0.2 * 0.4 + 0.3 * 0.5 + 0.4 * 0.7
    assert BudgetSchedule(BRPO, "linear").anytime_score(acc) == pytest.approx(linear)
    with pytest.raises(ValueError, match=re.escape("one accuracy per budget (4), got 3")):
        BudgetSchedule(BRPO).anytime_score(acc[:3])
    with pytest.raises(ValueError, match="finite numbers"):
        BudgetSchedule(BRPO).anytime_score((0.1, float("nan"), 0.2, 0.3))


def test_the_segmenter_moved_to_the_episodic_strategy_with_a_shim():
    import rewardgym.core.budgets as budgets
    from rewardgym.strategies import episodic

    with pytest.warns(DeprecationWarning, match="moved to rewardgym.strategies.episodic"):
        assert budgets.EpisodeSegmenter is episodic.EpisodeSegmenter
    with pytest.raises(AttributeError, match="has no attribute 'Segmenter'"):
        budgets.Segmenter  # noqa: B018
