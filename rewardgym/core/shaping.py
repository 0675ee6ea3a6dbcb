"""Reward shaping: small terms added to a verifier's reward, usable with any environment.

Two kinds of terms:

- **Per-sample terms** see one completion, its verdict and its task, and return a float:
  :class:`FormatTerm` (a regex the response must match) and :class:`LengthPenalty` (a token
  budget). Any object with a ``name`` and ``__call__(completion, verdict, task) -> float`` is a
  term (:class:`ShapingTerm`). The :class:`RewardShaping` wrapper adds them to an env's reward
  at every step and records each in ``info["reward_terms"]``; :func:`shaped_reward` does the
  same outside an env.
- **Group terms** need every sample of one prompt (group accuracy, the longest response), so
  they are pure functions the runner calls once a group is scored: :func:`adactrl_rewards`
  (AdaCtrl's difficulty tag and cosine length term) and :func:`adactrl_group` (its terms).

Lengths are :func:`~rewardgym.core.wrappers.count_tokens`: token ids when the completion
carries them, else characters.

**Unscorable stays unscorable.** A verdict with ``reward=None`` says nothing about the policy;
adding a format bonus to it would invent a reward. So for such a verdict no term is evaluated:
:func:`shaped_reward` returns ``None``, :class:`RewardShaping` passes the env's reward through
unchanged (the ``0.0`` placeholder, with ``info["scorable"] = False`` and the verdict kept in
``info["verdict"]``) and records every term as ``None``, and group functions return ``None``
for samples whose ``correct`` is ``None``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from rewardgym.core.errors import ConfigError, EnvError
from rewardgym.core.types import Completion, Task, Verdict, as_completion
from rewardgym.core.wrappers import count_tokens

__all__ = [
    "DIFFICULTY_TAGS",
    "AdaCtrlGroup",
    "FormatTerm",
    "LengthPenalty",
    "RewardShaping",
    "ShapingTerm",
    "adactrl_group",
    "adactrl_rewards",
    "cosine_length_term",
    "parse_difficulty_tag",
    "shaped_reward",
    "term_values",
]


@runtime_checkable
class ShapingTerm(Protocol):
    """A per-sample term: a ``name`` (the key in ``info["reward_terms"]``) and a call that
    returns a finite float for a scorable verdict."""

    name: str

    def __call__(self, completion: Completion, verdict: Verdict, task: Task | None) -> float: ...


def _check_number(owner: str, name: str, value: Any, *, low: float | None = None) -> None:
    ok = not isinstance(value, bool) and isinstance(value, Real) and math.isfinite(value)
    if not ok or (low is not None and value < low):
        expected = "a finite number" + ("" if low is None else f" >= {low:g}")
        raise ConfigError(f"{owner} {name} must be {expected}, got {value!r}")


# -- per-sample terms --------------------------------------------------------------------------
@dataclass(frozen=True)
class FormatTerm:
    """``matched`` when the response matches ``pattern``, else ``unmatched``.

    The pattern is compiled with ``re.DOTALL`` (``.`` crosses lines) and searched anywhere in
    the text, or matched against all of it with ``fullmatch=True``. Example, the
    think-then-answer format: ``FormatTerm(r"<think>.*</think>\\s*<answer>.*</answer>\\s*",
    fullmatch=True, matched=0.1)``. Write patterns without nested quantifiers: the response is
    model output of any length.
    """

    pattern: str
    matched: float = 1.0
    unmatched: float = 0.0
    fullmatch: bool = False
    name: str = "format"
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str):
            raise ConfigError(
                f"FormatTerm pattern must be a str, got {type(self.pattern).__name__}"
            )
        try:
            regex = re.compile(self.pattern, re.DOTALL)
        except re.error as exc:
            raise ConfigError(
                f"FormatTerm pattern {self.pattern!r} is not a valid regex: {exc}"
            ) from None
        _check_number("FormatTerm", "matched", self.matched)
        _check_number("FormatTerm", "unmatched", self.unmatched)
        _check_name("FormatTerm", self.name)
        object.__setattr__(self, "_regex", regex)

    def __call__(self, completion: Completion, verdict: Verdict, task: Task | None) -> float:
        match = (self._regex.fullmatch if self.fullmatch else self._regex.search)(completion.text)
        return float(self.matched if match else self.unmatched)


@dataclass(frozen=True)
class LengthPenalty:
    """A penalty for completions longer than a budget (DAPO's soft overlong punishment).

    With L the completion's length: 0 for L <= budget - buffer; falling linearly to -scale
    across the ``buffer`` tokens below the budget; -scale past the budget. ``buffer=0`` makes
    it a step. ``only_correct=True`` penalises correct answers only (wrong ones get 0).
    """

    budget: int
    buffer: int = 0
    scale: float = 1.0
    only_correct: bool = False
    name: str = "length"

    def __post_init__(self) -> None:
        for key, low in (("budget", 1), ("buffer", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"LengthPenalty {key} must be an int >= {low}, got {value!r}")
        if self.buffer > self.budget:
            raise ConfigError(
                f"LengthPenalty buffer must be <= budget ({self.budget}), got {self.buffer}"
            )
        _check_number("LengthPenalty", "scale", self.scale, low=0.0)
        _check_name("LengthPenalty", self.name)

    def value(self, length: int) -> float:
        """The penalty for a completion of ``length`` tokens."""
        free = self.budget - self.buffer
        if length <= free:
            return 0.0
        if length > self.budget:
            return -float(self.scale)
        return -float(self.scale) * (length - free) / self.buffer

    def __call__(self, completion: Completion, verdict: Verdict, task: Task | None) -> float:
        if self.only_correct and not verdict.correct:
            return 0.0
        return self.value(count_tokens(completion))


def _check_name(owner: str, name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{owner} name must be a non-empty str, got {name!r}")


def term_values(
    terms: Sequence[ShapingTerm], completion: Completion, verdict: Verdict, task: Task | None
) -> dict[str, float] | None:
    """Each term's value by name, or ``None`` for an unscorable verdict (no term is evaluated).

    Raises ``ValueError`` naming the term when one returns something that is not a finite float.
    """
    if not verdict.scorable:
        return None
    values = {}
    for term in terms:
        value = term(completion, verdict, task)
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise ValueError(
                f"reward term {term.name!r} ({type(term).__name__}) returned {value!r}; a term "
                "must return a finite float"
            )
        values[term.name] = float(value)
    return values


def shaped_reward(
    verdict: Verdict, completion: Completion | str, task: Task | None, terms: Sequence[ShapingTerm]
) -> float | None:
    """``verdict.reward`` plus every term, or ``None`` when the verdict is unscorable."""
    values = term_values(_checked_terms(terms), as_completion(completion), verdict, task)
    return None if values is None else float(verdict.reward) + sum(values.values())


def _checked_terms(terms: Sequence[Any], taken: Sequence[str] = ()) -> tuple[ShapingTerm, ...]:
    if isinstance(terms, (str, bytes)) or not isinstance(terms, Sequence) or not terms:
        raise ConfigError(f"terms must be a non-empty list of reward terms, got {terms!r}")
    names = list(taken)
    for term in terms:
        name = getattr(term, "name", None)
        if not callable(term) or not isinstance(name, str) or not name:
            raise ConfigError(
                f"{term!r} is not a reward term: a term has a non-empty str 'name' and is called "
                "as term(completion, verdict, task) -> float"
            )
        if name in names:
            raise ConfigError(
                f"two reward terms are named {name!r}; give one another name (name=...) so "
                "info['reward_terms'] can tell them apart"
            )
        names.append(name)
    return tuple(terms)


class RewardShaping(gym.Wrapper):
    """Add per-sample terms to an env's reward and record each in ``info["reward_terms"]``.

    The env's ``info["verdict"]`` is kept as the verifier returned it. Wrappers stack: an outer
    one adds its terms to the inner one's reward, and term names must differ across the stack.
    For an unscorable verdict the reward passes through unchanged and every term is ``None``
    (see the module docs). Put it inside a :class:`~rewardgym.core.wrappers.TokenBudget` to
    measure the completion as cut to the budget (what was scored).
    """

    def __init__(self, env: gym.Env, terms: Sequence[ShapingTerm]) -> None:
        super().__init__(env)
        self.terms = _checked_terms(terms, _inner_term_names(env))

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        completion = as_completion(action)
        obs, reward, terminated, truncated, info = self.env.step(completion)
        verdict = info.get("verdict") if isinstance(info, Mapping) else None
        if not isinstance(verdict, Verdict):
            raise EnvError(
                f"RewardShaping needs info['verdict'] (a rewardgym Verdict) from the env it wraps; "
                f"{type(self.env.unwrapped).__name__}.step() gave {type(verdict).__name__}. Wrap a "
                "rewardgym TextEnv."
            )
        values = term_values(self.terms, completion, verdict, info.get("task"))
        recorded: dict[str, float | None] = dict(info.get("reward_terms") or {})
        if values is None:
            recorded.update((term.name, None) for term in self.terms)
        else:
            reward = float(reward) + sum(values.values())
            recorded.update(values)
        info["reward_terms"] = recorded
        return obs, reward, terminated, truncated, info


def _inner_term_names(env: gym.Env) -> list[str]:
    names = []
    while isinstance(env, gym.Wrapper):
        if isinstance(env, RewardShaping):
            names.extend(term.name for term in env.terms)
        env = env.env
    return names


# -- group terms: AdaCtrl ----------------------------------------------------------------------
DIFFICULTY_TAGS = ("easy", "hard")
_TAG = re.compile(r"\s*\[(easy|hard)\]", re.IGNORECASE)


def parse_difficulty_tag(text: str) -> str | None:
    """``"easy"`` or ``"hard"`` when the response opens with ``[Easy]`` or ``[Hard]`` (any case,
    after optional whitespace), else ``None``."""
    match = _TAG.match(text)
    return None if match is None else match.group(1).lower()


def cosine_length_term(length: int, l_max: int) -> float:
    """AdaCtrl's length term ``1 - (1 - cos(pi L / L_max)) / 2``: 1 for an empty response,
    0 for the longest in the group (1 when every response is empty)."""
    if l_max <= 0:
        return 1.0
    return 1.0 - (1.0 - math.cos(math.pi * length / l_max)) / 2.0


@dataclass(frozen=True)
class AdaCtrlGroup:
    """AdaCtrl's terms for one group (the samples of one prompt).

    ``difficulty`` is ``"easy"`` when ``accuracy`` (over the scorable samples) exceeds the
    threshold, else ``"hard"``; both are ``None`` when no sample is scorable. Per-sample tuples
    hold ``None`` for unscorable samples.
    """

    difficulty: str | None
    accuracy: float | None
    l_max: int
    accuracy_terms: tuple[float | None, ...]
    length_terms: tuple[float | None, ...]
    format_terms: tuple[float | None, ...]
    rewards: tuple[float | None, ...]


def adactrl_group(
    correct: Sequence[bool | None],
    lengths: Sequence[int],
    tags: Sequence[str | None],
    *,
    easy_threshold: float = 0.625,
    length_weight: float = 0.5,
    format_weight: float = 0.5,
    length_requires_correct: bool = True,
    hard_length_term: bool = False,
) -> AdaCtrlGroup:
    """AdaCtrl's reward for each sample of one group, with its terms.

    reward = accuracy + length_weight * length + format_weight * format, where accuracy is +1
    (correct) or -1; format is +1 when the sample's tag equals the group's difficulty, 0 for the
    other tag, -1 for no tag; length is :func:`cosine_length_term` (L_max: the longest sample in
    the group) for an ``[Easy]``-tagged correct sample of an Easy group, else 0.
    ``length_requires_correct=False`` drops the "correct" condition and ``hard_length_term=True``
    gives ``[Hard]``-tagged samples of a Hard group ``(1 - cos(pi L / L_max)) / 2``: both as in
    the AdaCtrl reference code. ``correct[i] is None`` marks an unscorable sample: it gets
    ``None`` everywhere and is left out of the group accuracy (its length still counts for L_max).
    """
    correct, lengths, tags = _check_group(correct, lengths, tags)
    _check_number("adactrl", "easy_threshold", easy_threshold)
    _check_number("adactrl", "length_weight", length_weight)
    _check_number("adactrl", "format_weight", format_weight)
    scored = [c for c in correct if c is not None]
    accuracy = sum(scored) / len(scored) if scored else None
    difficulty = None if accuracy is None else "easy" if accuracy > easy_threshold else "hard"
    l_max = max(lengths)
    acc_terms, len_terms, fmt_terms, rewards = [], [], [], []
    for ok, length, tag in zip(correct, lengths, tags, strict=True):
        if ok is None:
            for column in (acc_terms, len_terms, fmt_terms, rewards):
                column.append(None)
            continue
        acc = 1.0 if ok else -1.0
        fmt = -1.0 if tag is None else 1.0 if tag == difficulty else 0.0
        size = 0.0
        if tag == difficulty == "easy" and (ok or not length_requires_correct):
            size = cosine_length_term(length, l_max)
        elif tag == difficulty == "hard" and hard_length_term:
            size = 1.0 - cosine_length_term(length, l_max)
        acc_terms.append(acc)
        len_terms.append(size)
        fmt_terms.append(fmt)
        rewards.append(acc + length_weight * size + format_weight * fmt)
    return AdaCtrlGroup(
        difficulty, accuracy, l_max, tuple(acc_terms), tuple(len_terms), tuple(fmt_terms),
        tuple(rewards),
    )  # fmt: skip


def adactrl_rewards(
    correct: Sequence[bool | None],
    lengths: Sequence[int],
    tags: Sequence[str | None],
    **options: Any,
) -> list[float | None]:
    """The rewards of :func:`adactrl_group` (same arguments), one per sample; ``None`` for
    unscorable samples."""
    return list(adactrl_group(correct, lengths, tags, **options).rewards)


def _check_group(
    correct: Sequence[Any], lengths: Sequence[Any], tags: Sequence[Any]
) -> tuple[list[bool | None], list[int], list[str | None]]:
    """Validate a group's columns; return them as plain bools / ints / lower-case tags."""
    sizes = {"correct": len(correct), "lengths": len(lengths), "tags": len(tags)}
    if len(set(sizes.values())) != 1 or not sizes["correct"]:
        raise ValueError(
            f"correct, lengths and tags must be non-empty and of one length (one entry per "
            f"sample of the group), got lengths {sizes}"
        )
    oks, sizes_, keys = [], [], []
    for i, (ok, length, tag) in enumerate(zip(correct, lengths, tags, strict=True)):
        if ok is not None and not isinstance(ok, (bool, np.bool_)):
            raise ValueError(f"correct[{i}] must be a bool or None (unscorable), got {ok!r}")
        if isinstance(length, (bool, np.bool_)) or not isinstance(length, Integral) or length < 0:
            raise ValueError(f"lengths[{i}] must be an int >= 0, got {length!r}")
        key = tag.lower() if isinstance(tag, str) else tag
        if key is not None and key not in DIFFICULTY_TAGS:
            raise ValueError(
                f"tags[{i}] must be 'easy', 'hard' or None (no tag), got {tag!r}; "
                "parse_difficulty_tag(text) reads one from a response"
            )
        oks.append(None if ok is None else bool(ok))
        sizes_.append(int(length))
        keys.append(key)
    return oks, sizes_, keys
