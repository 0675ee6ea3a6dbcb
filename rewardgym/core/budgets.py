"""Thinking budgets: where a long thinking trace is cut and scored, and how the scores combine.

A :class:`BudgetSchedule` holds token budgets b_1 < ... < b_m and a prior P over them. It is
used wherever a trace is scored at budgets: the ``anytime`` strategy (dense per-budget returns;
see :mod:`rewardgym.strategies.anytime`) and budget evaluation (``eval.budgets``). Pure Python.

- priors: ``base`` (P_m = 1), ``uniform`` (P_j = 1/m), ``linear`` (P_j = b_j / sum_k b_k), or
  explicit probabilities;
- a trace is scored at each b_j: on its first b_j tokens, or whole when it ended before b_j
  (:meth:`~BudgetSchedule.cut_points`);
- thinking token t (1-based) lies in segment j_t = min{j : b_j >= t}, i.e. tokens in
  (b_{j-1}, b_j] (:meth:`~BudgetSchedule.segment_of`, :meth:`~BudgetSchedule.segments`);
  segment indices are 0-based in this API (j_t - 1), token positions 1-based;
- anytime accuracy = sum_j P_j acc_j (:meth:`~BudgetSchedule.anytime_score`); papers on anytime
  reasoning report 32 evenly spaced budgets (:meth:`BudgetSchedule.evenly_spaced`).

``EpisodeSegmenter`` (episodes of a trace at reconsideration markers) moved to
:mod:`rewardgym.strategies.episodic`; importing it from here still works for one release, with a
:class:`DeprecationWarning`.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from rewardgym.core.errors import ConfigError, did_you_mean

__all__ = ["PRIORS", "BudgetSchedule"]

PRIORS = ("base", "uniform", "linear")
PRIOR_SUM_TOLERANCE = 1e-6


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _as_tuple(owner: str, name: str, value: Any, example: str) -> tuple:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ConfigError(
            f"{owner} {name} must be a sequence, got {value!r}. Pass e.g. {name}={example}."
        )
    return tuple(value)


# -- budgets -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BudgetSchedule:
    """Token budgets b_1 < ... < b_m and the prior P over them.

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


_MOVED = {"EpisodeSegmenter", "DEFAULT_MARKERS"}


def __getattr__(name: str):
    """``EpisodeSegmenter`` and ``DEFAULT_MARKERS`` moved to ``rewardgym.strategies.episodic``
    (deprecated here; removed in the next release)."""
    if name in _MOVED:
        import importlib
        import warnings

        warnings.warn(
            f"rewardgym.core.budgets.{name} moved to rewardgym.strategies.episodic.{name}; "
            "the old name will be removed in the next release.",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module("rewardgym.strategies.episodic"), name)
    raise AttributeError(f"module 'rewardgym.core.budgets' has no attribute {name!r}")
