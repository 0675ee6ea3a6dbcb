"""Thinking budgets and reasoning episodes: where a long trace is cut and scored.

Two anytime-reasoning methods score a thinking trace at points along it (PAPERS.md sections 1
and 2); this module says *where* those points are. It is pure Python: the trainer builds the
prompts and the advantage math (``rewardgym.algorithms._anytime``) turns the scores into a loss.

**BRPO** (Qi et al. 2025, arXiv 2505.13438) scores a trace at token budgets b_1 < ... < b_m
drawn with a prior P (:class:`BudgetSchedule`):

- priors: ``base`` (P_m = 1), ``uniform`` (P_j = 1/m), ``linear`` (P_j = b_j / sum_k b_k), or
  explicit probabilities;
- a trace is scored at each b_j: on its first b_j tokens, or whole when it ended before b_j
  (:meth:`~BudgetSchedule.cut_points`);
- thinking token t (1-based) lies in segment j_t = min{j : b_j >= t}, i.e. tokens in
  (b_{j-1}, b_j] (:meth:`~BudgetSchedule.segment_of`, :meth:`~BudgetSchedule.segments`); its
  return is R(x, z, j_t) = sum_{j >= j_t} P_j r_phi(x, z<=b_j);
- anytime accuracy = sum_j P_j acc_j (:meth:`~BudgetSchedule.anytime_score`); the paper's
  tables use 32 evenly spaced budgets (:meth:`BudgetSchedule.evenly_spaced`).

**MRT** (Qu, Yang et al. 2025) scores a trace at the end of each *episode*
(:class:`EpisodeSegmenter`): split the trace on blank lines; start a new episode at a paragraph
that begins with a reconsideration marker ("Wait", "But wait", ...); ignore a marker within
``min_gap`` paragraphs of the previous cut; optionally merge every k episodes.

Choices made where PAPERS.md leaves room (the MRT ones checked against the authors'
``break_into_meta_steps``):

- Segment indices are 0-based in this API (j_t - 1); token positions are 1-based as in the paper.
- A paragraph is a maximal run of non-blank lines; a blank line is empty or whitespace only, and
  one or more of them separate paragraphs (the reference splits on ``"\\n\\n"`` exactly).
  ``"\\r\\n"`` line breaks work the same as ``"\\n"``.
- "Begins with a marker": after optional leading whitespace, case-sensitive, and when the marker
  ends with a letter the next character must not be a letter (so "Waiting" and "Waits" do not
  cut, "Wait," and "Wait." do; the reference's plain ``startswith`` would cut at "Waiting").
- "Within min_gap paragraphs": a marker paragraph p cuts only when p - c > min_gap, c being the
  paragraph of the previous cut and 0 (the trace start) before the first; an ignored marker
  does not move c. This is the reference's ``prev_i in (i, i-1, i-2)`` test for min_gap = 2.
- Merging every k episodes keeps every k-th cut, after the min_gap rule.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from rewardgym.core.errors import ConfigError, did_you_mean

__all__ = ["DEFAULT_MARKERS", "PRIORS", "BudgetSchedule", "EpisodeSegmenter"]

PRIORS = ("base", "uniform", "linear")
PRIOR_SUM_TOLERANCE = 1e-6

DEFAULT_MARKERS = (
    "Wait",
    "But wait",
    "Alternatively",
    "Is there another way to think about this?",
    "But let me double-check",
    "But hold on",
)


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _as_tuple(owner: str, name: str, value: Any, example: str) -> tuple:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ConfigError(
            f"{owner} {name} must be a sequence, got {value!r}. Pass e.g. {name}={example}."
        )
    return tuple(value)


# -- budgets (BRPO) ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BudgetSchedule:
    """Token budgets b_1 < ... < b_m and the prior P over them (BRPO).

    ``budgets`` are token counts, strictly increasing, each >= 1. ``prior`` is a name from
    :data:`PRIORS` or explicit probabilities, one per budget, each >= 0, summing to 1 within
    1e-6 (kept as given, not renormalised). Lists are stored as tuples, so a schedule is hashable.
    """

    budgets: tuple[int, ...]
    prior: str | tuple[float, ...] = "uniform"

    def __post_init__(self) -> None:
        object.__setattr__(self, "budgets", _check_budgets(self.budgets))
        object.__setattr__(self, "prior", _check_prior(self.prior, self.budgets))

    @property
    def probs(self) -> tuple[float, ...]:
        """P_1..P_m, one probability per budget."""
        m = len(self.budgets)
        if self.prior == "base":
            return (0.0,) * (m - 1) + (1.0,)
        if self.prior == "uniform":
            return (1.0 / m,) * m
        if self.prior == "linear":
            total = sum(self.budgets)
            return tuple(b / total for b in self.budgets)
        return self.prior  # explicit probabilities, checked in __post_init__

    @property
    def max_budget(self) -> int:
        """b_m, the largest budget: the most thinking tokens a trace gets."""
        return self.budgets[-1]

    def segment_of(self, t: int) -> int:
        """0-based index of the segment token position ``t`` (1-based) lies in: j_t - 1 with
        j_t = min{j : b_j >= t}. Raises ValueError unless 1 <= t <= b_m."""
        if not _is_int(t) or not 1 <= t <= self.max_budget:
            raise ValueError(
                f"token position t must be an int in [1, {self.max_budget}] (1-based, at most "
                f"the largest budget), got {t!r}"
            )
        return bisect.bisect_left(self.budgets, t)

    def segments(self, length: int) -> list[int]:
        """Segment index (0-based) of each of the tokens 1..``length`` of a trace; ``length``
        entries. Raises ValueError unless 0 <= length <= b_m."""
        if not _is_int(length) or not 0 <= length <= self.max_budget:
            raise ValueError(
                f"trace length must be an int in [0, {self.max_budget}] (a trace is cut at the "
                f"largest budget), got {length!r}"
            )
        out: list[int] = []
        previous = 0
        for j, b in enumerate(self.budgets):
            end = min(b, length)
            out.extend([j] * (end - previous))  # tokens in (b_{j-1}, b_j], clipped to length
            if end == length:
                break
            previous = end
        return out

    def cut_points(self, length: int) -> list[int]:
        """How many tokens of a ``length``-token trace are scored at each budget:
        min(b_j, length) for each j (a trace that ended before b_j is scored whole at b_j).
        Any ``length`` >= 0 is accepted; one longer than b_m is cut at the budgets."""
        if not _is_int(length) or length < 0:
            raise ValueError(f"trace length must be an int >= 0, got {length!r}")
        return [min(b, int(length)) for b in self.budgets]

    @classmethod
    def evenly_spaced(
        cls, max_budget: int, count: int, prior: str | Sequence[float] = "uniform"
    ) -> BudgetSchedule:
        """``count`` budgets evenly spaced up to ``max_budget``: floor(max_budget * k / count)
        for k = 1..count (so 8000, 32 gives 250, 500, ..., 8000). Needs count <= max_budget."""
        if not _is_int(count) or count < 1:
            raise ConfigError(
                f"BudgetSchedule.evenly_spaced count must be an int >= 1, got {count!r}"
            )
        if not _is_int(max_budget) or max_budget < count:
            raise ConfigError(
                f"BudgetSchedule.evenly_spaced max_budget must be an int >= count ({count}) so that "
                f"the {count} budgets are distinct token counts, got {max_budget!r}. Use fewer "
                f"budgets or a larger max_budget."
            )
        budgets = tuple(max_budget * k // count for k in range(1, count + 1))
        return cls(budgets, prior=prior)  # a list prior becomes a tuple in __post_init__

    def anytime_score(self, accuracies: Sequence[float]) -> float:
        """Anytime accuracy: sum_j P_j acc_j, given the accuracy at each budget."""
        acc = tuple(accuracies)
        if len(acc) != len(self.budgets):
            raise ValueError(
                f"anytime_score needs one accuracy per budget ({len(self.budgets)}), got "
                f"{len(acc)}: {acc!r}"
            )
        if not all(isinstance(a, Real) and math.isfinite(a) for a in acc):
            raise ValueError(f"anytime_score accuracies must be finite numbers, got {acc!r}")
        return math.fsum(p * a for p, a in zip(self.probs, acc, strict=True))


def _check_budgets(budgets: Any) -> tuple[int, ...]:
    owner, example = "BudgetSchedule", "(2000, 4000, 6000, 8000)"
    values = _as_tuple(owner, "budgets", budgets, example)
    if not values:
        raise ConfigError(
            f"{owner} budgets must be a non-empty sequence of token counts, got {budgets!r}. "
            f"Pass e.g. budgets={example}."
        )
    for i, b in enumerate(values):
        if not _is_int(b):
            raise ConfigError(
                f"{owner} budgets must be ints (token counts), got {b!r} at index {i} in "
                f"{values!r}. Pass whole numbers of tokens."
            )
        if b < 1:
            raise ConfigError(
                f"{owner} budgets must be >= 1 token, got {b!r} at index {i} in {values!r}. "
                f"Drop it or use a positive budget."
            )
    values = tuple(int(b) for b in values)
    for i in range(1, len(values)):
        if values[i] <= values[i - 1]:
            raise ConfigError(
                f"{owner} budgets must be strictly increasing, got {values[i]} after "
                f"{values[i - 1]} at index {i} in {values!r}. Sort them and drop duplicates: "
                f"{tuple(sorted(set(values)))!r}."
            )
    return values


def _check_prior(prior: Any, budgets: tuple[int, ...]) -> str | tuple[float, ...]:
    owner = "BudgetSchedule"
    if isinstance(prior, str):
        if prior not in PRIORS:
            names = ", ".join(repr(p) for p in PRIORS)
            raise ConfigError(
                f"{owner} prior {prior!r} is not known; expected one of {names} or a tuple of "
                f"probabilities, one per budget.{did_you_mean(prior, PRIORS)}"
            )
        return prior
    probs = _as_tuple(owner, "prior", prior, "'uniform'")
    if len(probs) != len(budgets):
        raise ConfigError(
            f"{owner} prior has {len(probs)} probabilities for {len(budgets)} budgets "
            f"{budgets!r}; give one probability per budget."
        )
    for i, p in enumerate(probs):
        if isinstance(p, bool) or not isinstance(p, Real) or not math.isfinite(p) or p < 0:
            raise ConfigError(
                f"{owner} prior probabilities must be finite numbers >= 0, got {p!r} at index "
                f"{i} in {probs!r}."
            )
    probs = tuple(float(p) for p in probs)
    total = math.fsum(probs)
    if abs(total - 1.0) > PRIOR_SUM_TOLERANCE:
        raise ConfigError(
            f"{owner} prior probabilities must sum to 1 (within {PRIOR_SUM_TOLERANCE:g}), got "
            f"sum {total:g} for {probs!r}. Divide each by the sum, or use one of "
            f"{', '.join(repr(p) for p in PRIORS)}."
        )
    return probs


# -- episodes (MRT) ------------------------------------------------------------------------------
# A paragraph: a line with a non-whitespace character, then any such lines right after it.
_PARAGRAPH = re.compile(r"^[^\S\n]*\S.*(?:\n[^\S\n]*\S.*)*", re.MULTILINE)


@dataclass(frozen=True)
class EpisodeSegmenter:
    """Splits a thinking trace into MRT episodes at paragraphs that begin with a marker.

    ``markers`` are matched case-sensitively at a paragraph's start (see the module docstring
    for the exact rule); ``min_gap`` >= 0 paragraphs must separate a cut from the previous one
    (strictly more than ``min_gap``, as in the reference code); ``merge_every`` >= 1 merges
    every k consecutive episodes into one. An empty ``markers`` tuple never cuts.
    """

    markers: tuple[str, ...] = DEFAULT_MARKERS
    min_gap: int = 2
    merge_every: int = 1

    def __post_init__(self) -> None:
        owner = "EpisodeSegmenter"
        markers = _as_tuple(owner, "markers", self.markers, "('Wait', 'Alternatively')")
        for i, m in enumerate(markers):
            if not isinstance(m, str) or not m or m[0].isspace():
                raise ConfigError(
                    f"{owner} markers must be non-empty strings that do not start with "
                    f"whitespace (leading whitespace in the text is skipped), got {m!r} at index "
                    f"{i} in {markers!r}."
                )
        object.__setattr__(self, "markers", markers)
        for name, low in (("min_gap", 0), ("merge_every", 1)):
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                raise ConfigError(f"{owner} {name} must be an int >= {low}, got {value!r}")

    def paragraphs(self, text: str) -> list[tuple[int, int]]:
        """``(start, end)`` character spans of the paragraphs of ``text``, split on one or more
        blank lines. A span starts at the start of the paragraph's first line (indentation
        included) and ends after its last non-whitespace character."""
        spans = []
        for match in _PARAGRAPH.finditer(text):
            start = match.start()
            spans.append((start, start + len(match.group().rstrip())))
        return spans

    def _starts_with_marker(self, paragraph: str) -> bool:
        """Whether ``paragraph`` begins with one of the markers (after optional whitespace)."""
        head = paragraph.lstrip()
        for m in self.markers:
            if head.startswith(m):
                after = head[len(m) : len(m) + 1]
                if not (m[-1].isalpha() and after.isalpha()):  # "Waiting" is not "Wait"
                    return True
        return False

    def cuts(self, text: str) -> list[int]:
        """Sorted character offsets where a new episode starts; never 0. Each is the start of
        a paragraph that begins with a marker, kept when it is more than ``min_gap``
        paragraphs after the previous cut, then every ``merge_every``-th of those."""
        cuts: list[int] = []
        previous = 0  # paragraph index of the last cut; the trace start counts as one
        for p, (start, end) in enumerate(self.paragraphs(text)):
            if p - previous > self.min_gap and self._starts_with_marker(text[start:end]):
                cuts.append(start)
                previous = p
        k = self.merge_every
        return cuts[k - 1 :: k]  # episodes e*k .. e*k + k-1 become one

    def episodes(self, text: str) -> list[str]:
        """``text`` split at :meth:`cuts`: ``len(cuts) + 1`` pieces that concatenate back to
        ``text`` (``[""]`` for an empty text). Separating blank lines stay at the end of the
        episode before them."""
        bounds = [0, *self.cuts(text), len(text)]
        return [text[a:b] for a, b in itertools.pairwise(bounds)]
