"""Episodes of a thinking trace (the episodic strategy's segmenter): paragraphs, markers,
``min_gap`` and merging, checked against the rules the module docstring states."""

import random
import re

import pytest

from rewardgym.core.errors import ConfigError
from rewardgym.strategies.episodic import DEFAULT_MARKERS, EpisodeSegmenter


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
