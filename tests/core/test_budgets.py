import random
import re

import pytest

from rewardgym.core.budgets import DEFAULT_MARKERS, PRIORS, BudgetSchedule, EpisodeSegmenter
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


# -- episodes ------------------------------------------------------------------------------------
def _trace(*paragraphs, sep="\n\n"):
    return sep.join(paragraphs)


def _check_episodes(segmenter, text):
    episodes = segmenter.episodes(text)
    assert "".join(episodes) == text
    assert len(episodes) == len(segmenter.cuts(text)) + 1
    return episodes


def test_paragraphs():
    text = "  a\nb  \n\n\n \t \nc\r\n\r\nd\n"
    spans = EpisodeSegmenter().paragraphs(text)
    assert [text[a:b] for a, b in spans] == ["  a\nb", "c", "d"]
    assert EpisodeSegmenter().paragraphs("") == []
    assert EpisodeSegmenter().paragraphs("\n\n  \n") == []


def test_marker_at_the_start_never_cuts_at_zero():
    seg = EpisodeSegmenter(min_gap=0)
    text = _trace("Wait, start.", "Wait, again.")
    assert seg.cuts(text) == [len("Wait, start.\n\n")]
    assert _check_episodes(seg, text) == ["Wait, start.\n\n", "Wait, again."]


def test_markers_and_min_gap():
    paras = ["Let x = 2.", "So y = 4.", "Wait, y = 3?", "Check.", "More.", "But wait, no.", "Ok."]
    text = _trace(*paras)
    starts = [s for s, _ in EpisodeSegmenter().paragraphs(text)]
    # min_gap=2: "Wait" at paragraph 2 is within 2 of the start (0): ignored; "But wait" at 5 cuts
    assert EpisodeSegmenter().cuts(text) == [starts[5]]
    assert EpisodeSegmenter(min_gap=1).cuts(text) == [starts[2], starts[5]]
    assert EpisodeSegmenter(min_gap=0).cuts(text) == [starts[2], starts[5]]
    episodes = _check_episodes(EpisodeSegmenter(min_gap=1), text)
    assert episodes[1] == "Wait, y = 3?\n\nCheck.\n\nMore.\n\n"
    # an ignored marker does not move the previous cut: with min_gap=3 paragraph 5 is 5 > 3 away
    assert EpisodeSegmenter(min_gap=3).cuts(text) == [starts[5]]
    # a cut does move it: 2 and 4 with min_gap=1 -> 4 is only 2 after 2
    close = _trace("a", "b", "Wait.", "c", "Alternatively, d", "e")
    s = [a for a, _ in EpisodeSegmenter().paragraphs(close)]
    assert EpisodeSegmenter(min_gap=1).cuts(close) == [s[2], s[4]]
    assert EpisodeSegmenter(min_gap=2).cuts(close) == [s[4]]  # 2 is within 2 of the start
    assert EpisodeSegmenter(min_gap=2).cuts(_trace("a", "b", "c", "Wait.", "d", "Wait.")) == [
        len("a\n\nb\n\nc\n\n")
    ]


def test_merge_every():
    paras = ["p0", "Wait 1", "p2", "Wait 3", "p4", "Wait 5", "p6", "Wait 7"]
    text = _trace(*paras)
    starts = [s for s, _ in EpisodeSegmenter().paragraphs(text)]
    assert EpisodeSegmenter(min_gap=0).cuts(text) == [starts[1], starts[3], starts[5], starts[7]]
    merged = EpisodeSegmenter(min_gap=0, merge_every=2)
    assert merged.cuts(text) == [starts[3], starts[7]]
    assert _check_episodes(merged, text) == [
        "p0\n\nWait 1\n\np2\n\n",
        "Wait 3\n\np4\n\nWait 5\n\np6\n\n",
        "Wait 7",
    ]
    assert EpisodeSegmenter(min_gap=0, merge_every=3).cuts(text) == [starts[5]]
    assert EpisodeSegmenter(min_gap=0, merge_every=5).cuts(text) == []


def test_no_markers():
    seg = EpisodeSegmenter(min_gap=0)
    text = _trace("First.", "Then wait, it says Wait inside.", "waiting lowercase.")
    assert seg.cuts(text) == []
    assert _check_episodes(seg, text) == [text]
    assert _check_episodes(seg, "") == [""]
    assert EpisodeSegmenter(markers=(), min_gap=0).cuts(_trace("a", "Wait.")) == []


def test_windows_newlines_and_indentation():
    seg = EpisodeSegmenter(min_gap=0)
    text = "Start.\r\nStill start.\r\n\r\n  But hold on, a thing.\r\n\r\nAlternatively\r\n"
    cuts = seg.cuts(text)
    assert cuts == [text.index("  But hold on"), text.index("Alternatively")]
    episodes = _check_episodes(seg, text)
    assert episodes[0] == "Start.\r\nStill start.\r\n\r\n"
    assert episodes[2] == "Alternatively\r\n"


def test_marker_must_be_a_whole_word():
    seg = EpisodeSegmenter(min_gap=0)
    for head in ("Waiting for it", "Waits", "Alternativelyish", "wait, lowercase", "**Wait**"):
        assert seg.cuts(_trace("a", head)) == [], head
    for head in ("Wait", "Wait,", "Wait...", "Wait\nno", "Wait3", "But wait: x"):
        assert seg.cuts(_trace("a", head)) == [3], head
    assert seg.cuts(_trace("a", "Is there another way to think about this?Yes")) == [3]
    assert DEFAULT_MARKERS[0] == "Wait" and len(DEFAULT_MARKERS) == 6


def test_a_marker_inside_a_paragraph_does_not_cut():
    text = "a\n\nb\n\nc\nWait, this line is not a paragraph start.\n\nd"
    assert EpisodeSegmenter(min_gap=0).cuts(text) == []


def test_episodes_concatenate_on_random_traces():
    rng = random.Random(1)
    pieces = ["Wait", "But wait,", "x = 1", "Waiting", "  Alternatively", "", " ", "ok\nthen"]
    for _ in range(300):
        sep = rng.choice(["\n\n", "\r\n\r\n", "\n \n\n", "\n"])
        text = sep.join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        seg = EpisodeSegmenter(min_gap=rng.randint(0, 3), merge_every=rng.randint(1, 3))
        cuts = seg.cuts(text)
        assert cuts == sorted(set(cuts)) and 0 not in cuts
        _check_episodes(seg, text)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"markers": "Wait"},
            "EpisodeSegmenter markers must be a sequence, got 'Wait'. "
            "Pass e.g. markers=('Wait', 'Alternatively').",
        ),
        (
            {"markers": ("Wait", "")},
            "EpisodeSegmenter markers must be non-empty strings that do not start with whitespace "
            "(leading whitespace in the text is skipped), got '' at index 1 in ('Wait', '').",
        ),
        ({"min_gap": -1}, "EpisodeSegmenter min_gap must be an int >= 0, got -1"),
        ({"merge_every": 0}, "EpisodeSegmenter merge_every must be an int >= 1, got 0"),
        ({"merge_every": True}, "EpisodeSegmenter merge_every must be an int >= 1, got True"),
    ],
)
def test_bad_segmenters(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message) + "$"):
        EpisodeSegmenter(**kwargs)


def test_markers_list_becomes_a_tuple():
    seg = EpisodeSegmenter(markers=["Hmm"])
    assert seg.markers == ("Hmm",)
    assert seg.cuts("a\n\nb\n\nc\n\nHmm, no.") == [len("a\n\nb\n\nc\n\n")]
