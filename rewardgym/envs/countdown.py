"""``rewardgym/countdown-v0``: reach a target number using each given number exactly once.

Defaults follow the Countdown setting of "How much backtracking is enough": 4 to 6 numbers in
[1, 100], a target in [100, 999], the operators ``+ - * /``; reward 1.0 for a correct
expression, 0.1 for a well-formatted but wrong one, 0.0 otherwise.

Every task is solvable: the target is built from a random expression over the sampled numbers
(exact divisions only, no negative intermediate results), resampled until it falls in the
target range; that expression is the task's ``answer`` and ``metadata["solution"]``.

The verifier finds the answer (``<answer>...</answer>`` tags, an ``Answer:`` line, or either),
parses it with a whitelist parser (never ``eval``) and evaluates it with exact fractions:

- **not well formatted** (0.0): no answer found; an empty answer; characters other than digits,
  ``+ - * / ( )`` and spaces (after mapping ``×``, ``÷``, ``−``, ``\\times``, ``\\div`` and
  ``$`` delimiters); invalid syntax; other operators (``**``, ``//``); over 1000 characters.
- **well formatted but wrong** (``format_reward``, 0.1): a valid expression that uses numbers
  other than the given ones (each exactly once), an operator the task does not allow, a unary
  sign, divides by zero, does not equal the target, or claims a wrong value (``expr = N``).
- **correct** (1.0): the given numbers, each once, allowed binary operators, value = target
  exactly. Intermediate results may be fractions, as in the usual Countdown RL setups.

With ``max_turns > 1`` a wrong answer gets feedback and another try.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np

from rewardgym.core.env import FEEDBACK_STYLES, TextEnv
from rewardgym.core.errors import ConfigError
from rewardgym.core.types import Task, Verdict
from rewardgym.core.verifier import Verifier
from rewardgym.envs._countdown_expr import (
    ANSWER_FORMATS,
    MalformedExpression,
    evaluate,
    extract_answer,
    format_value,
    parse_expression,
)

__all__ = [
    "ANSWER_FORMATS",
    "MAX_ATTEMPTS",
    "OPERATORS",
    "CountdownConfig",
    "CountdownEnv",
    "CountdownVerifier",
    "CountdownVerifierConfig",
    "generate_puzzle",
]

OPERATORS = "+-*/"
MAX_NUMBERS = 20
MAX_ATTEMPTS = 1000  # random expressions tried per task before giving up on the target range


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"countdown {name} must be an int >= {low}, got {value!r}")


def _check_answer_format(value: Any, format_reward: Any) -> None:
    if value not in ANSWER_FORMATS:
        raise ConfigError(f"countdown answer_format must be one of {ANSWER_FORMATS}, got {value!r}")
    if (
        isinstance(format_reward, bool)
        or not isinstance(format_reward, (int, float))
        or not 0.0 <= format_reward < 1.0
    ):
        raise ConfigError(
            f"countdown format_reward must be a number in [0, 1), got {format_reward!r}"
        )


@dataclass(frozen=True)
class CountdownVerifierConfig:
    """Params of the ``rewardgym/countdown-v0`` verifier.

    answer_format: "tag" (``<answer>expr</answer>``), "line" (``Answer: expr``) or "either"
        (the tag if there is one, else the line).
    format_reward: reward of a well-formatted wrong answer (0.1 in the paper).
    """

    answer_format: str = "tag"
    format_reward: float = 0.1

    def __post_init__(self) -> None:
        _check_answer_format(self.answer_format, self.format_reward)


@dataclass(frozen=True)
class CountdownConfig:
    """Params of ``rewardgym/countdown-v0``.

    min_numbers, max_numbers: how many numbers a task gives (4 to 6).
    min_value, max_value: the range the numbers are drawn from ([1, 100]).
    min_target, max_target: the range of targets ([100, 999]).
    operators: the operators allowed, a string of some of "+-*/".
    answer_format: "tag", "line" or "either" (see CountdownVerifierConfig).
    format_reward: reward of a well-formatted wrong answer (0.1).
    max_turns: 1 for single-turn; >1 lets the model retry after feedback.
    feedback: "generic" or "reason" (why the answer was wrong).
    """

    min_numbers: int = 4
    max_numbers: int = 6
    min_value: int = 1
    max_value: int = 100
    min_target: int = 100
    max_target: int = 999
    operators: str = OPERATORS
    answer_format: str = "tag"
    format_reward: float = 0.1
    max_turns: int = 1
    feedback: str = "generic"

    def __post_init__(self) -> None:
        _check_int("min_numbers", self.min_numbers, 2)
        _check_int("max_numbers", self.max_numbers, self.min_numbers)
        if self.max_numbers > MAX_NUMBERS:
            raise ConfigError(
                f"countdown max_numbers must be <= {MAX_NUMBERS}, got {self.max_numbers}"
            )
        _check_int("min_value", self.min_value, 1)
        _check_int("max_value", self.max_value, self.min_value)
        _check_int("min_target", self.min_target, 1)
        _check_int("max_target", self.max_target, self.min_target)
        ops = self.operators
        if (
            not isinstance(ops, str)
            or not ops
            or set(ops) - set(OPERATORS)
            or len(set(ops)) < len(ops)
        ):
            raise ConfigError(
                f"countdown operators must be a non-empty string of distinct characters from "
                f"{OPERATORS!r}, got {ops!r}"
            )
        _check_answer_format(self.answer_format, self.format_reward)
        _check_int("max_turns", self.max_turns, 1)
        if self.feedback not in FEEDBACK_STYLES:
            raise ConfigError(
                f"countdown feedback must be one of {FEEDBACK_STYLES}, got {self.feedback!r}"
            )
        reach = _max_reachable(self.max_numbers, self.max_value, ops)
        if reach < self.min_target:
            raise ConfigError(
                f"countdown min_target={self.min_target} cannot be reached: {self.max_numbers} "
                f"numbers up to {self.max_value} with operators {ops!r} make at most {reach}. "
                "Lower min_target, or allow more or larger numbers, or more operators."
            )

    @property
    def verifier_config(self) -> CountdownVerifierConfig:
        return CountdownVerifierConfig(self.answer_format, self.format_reward)


def _max_reachable(n: int, value: int, ops: str) -> int:
    """The largest value ``n`` numbers up to ``value`` can make. ``-`` and ``/`` (exact, larger
    first) never exceed their left operand, so only ``+`` and ``*`` trees matter."""
    best = [0, value]
    for k in range(2, n + 1):
        candidates = [best[k - 1]]  # '-' or '/' with a 1 never beats the larger operand
        for i in range(1, k):
            if "+" in ops:
                candidates.append(best[i] + best[k - i])
            if "*" in ops:
                candidates.append(best[i] * best[k - i])
        best.append(max(candidates))
    return best[n]


# -- generating solvable tasks -----------------------------------------------------------------
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def render(tree: Any) -> tuple[str, int]:
    """Text and precedence of an expression tree (an int, or ``(op, left, right)``), with
    parentheses only where precedence or non-associativity needs them."""
    if isinstance(tree, int):
        return str(tree), 3
    op, left, right = tree
    prec = _PRECEDENCE[op]
    (ltext, lprec), (rtext, rprec) = render(left), render(right)
    ltext = f"({ltext})" if lprec < prec else ltext
    rtext = f"({rtext})" if rprec < prec or (rprec == prec and op in "-/") else rtext
    return f"{ltext} {op} {rtext}", prec


def _random_expression(
    rng: np.random.Generator, numbers: tuple[int, ...], ops: str
) -> tuple[int, Any] | None:
    """Combine random pairs of ``(value, tree)`` items with random valid operators until one is
    left. Subtraction takes the larger item first; division is used only when exact."""
    items: list[tuple[int, Any]] = [(n, n) for n in numbers]
    draws = iter(rng.random(3 * len(numbers)).tolist())  # one RNG call per expression
    while len(items) > 1:
        i = int(next(draws) * len(items))
        j = int(next(draws) * (len(items) - 1))
        j += j >= i
        (a, ta), (b, tb) = items[i], items[j]
        if a < b:  # larger first: no negative differences, and a / b is tried as big / small
            (a, ta), (b, tb) = (b, tb), (a, ta)
        options = []
        for op in ops:
            if op == "+":
                options.append((a + b, ("+", ta, tb)))
            elif op == "*":
                options.append((a * b, ("*", ta, tb)))
            elif op == "-" and a > b:
                options.append((a - b, ("-", ta, tb)))
            elif op == "/" and b > 0 and a % b == 0:
                options.append((a // b, ("/", ta, tb)))
        if not options:
            return None
        items[i] = options[int(next(draws) * len(options))]
        items.pop(j)
    return items[0]


def generate_puzzle(
    rng: np.random.Generator, config: CountdownConfig
) -> tuple[tuple[int, ...], int, str]:
    """Draw ``(numbers, target, solution)`` with the target in the configured range.

    Raises :class:`ConfigError` when ``MAX_ATTEMPTS`` random expressions all miss the range."""
    for _ in range(MAX_ATTEMPTS):
        n = int(rng.integers(config.min_numbers, config.max_numbers + 1))
        numbers = tuple(
            int(x) for x in rng.integers(config.min_value, config.max_value + 1, size=n)
        )
        built = _random_expression(rng, numbers, config.operators)
        if built is not None and config.min_target <= built[0] <= config.max_target:
            return numbers, built[0], render(built[1])[0]
    raise ConfigError(
        f"countdown could not make a target in [{config.min_target}, {config.max_target}] from "
        f"{config.min_numbers}-{config.max_numbers} numbers in [{config.min_value}, "
        f"{config.max_value}] with operators {config.operators!r} in {MAX_ATTEMPTS} random "
        "expressions; widen the target range or change the number range or operators."
    )


# -- verifier ----------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))


def _puzzle(task: Task) -> tuple[tuple[int, ...], int, str] | None:
    """``(numbers, target, operators)`` from the task's metadata, or ``None`` if missing."""
    meta = task.metadata
    numbers, target, ops = meta.get("numbers"), meta.get("target"), meta.get("operators", OPERATORS)
    if not isinstance(numbers, (tuple, list)) or not numbers or not all(map(_is_int, numbers)):
        return None
    if not _is_int(target) or not isinstance(ops, str):
        return None
    return tuple(int(n) for n in numbers), int(target), ops


def _listed(numbers: Counter) -> str:
    return ", ".join(str(n) for n in sorted(numbers.elements()))


class CountdownVerifier(Verifier):
    """Scores a Countdown answer: 1.0 correct, ``format_reward`` well formatted but wrong, 0.0
    otherwise. Reads ``numbers``, ``target`` and ``operators`` from ``task.metadata``."""

    def __init__(self, config: CountdownVerifierConfig | None = None) -> None:
        self.config = config or CountdownVerifierConfig()

    def verify(self, response: str, task: Task) -> Verdict:
        puzzle = _puzzle(task)
        if puzzle is None:
            return Verdict.unscorable(
                "the task has no Countdown numbers and target in its metadata"
            )
        answer = extract_answer(response, self.config.answer_format)
        if answer is None:
            where = {"tag": "<answer>...</answer>", "line": "'Answer: ...' line"}
            missing = where.get(self.config.answer_format, "<answer>...</answer> or 'Answer:' line")
            return Verdict(0.0, reason=f"no {missing} found")
        try:
            expression = parse_expression(answer)
        except MalformedExpression as exc:
            return Verdict(0.0, reason=f"the answer is not a well-formed expression: {exc}")
        problem = self._rule_problem(expression, *puzzle)
        if problem:
            return Verdict(self.config.format_reward, reason=problem, extracted=expression.text)
        return Verdict(1.0, correct=True, reason="correct", extracted=expression.text)

    @staticmethod
    def _rule_problem(expression: Any, numbers: tuple[int, ...], target: int, ops: str) -> str:
        """What makes a well-formed expression wrong, or ``""`` when it is correct."""
        used, given = Counter(expression.numbers), Counter(numbers)
        if used != given:
            return (
                f"the expression uses [{_listed(used)}] but must use each of "
                f"[{_listed(given)}] exactly once"
            )
        banned = sorted(expression.operators - set(ops))
        if banned:
            return f"the operator {banned[0]!r} is not allowed (allowed: {' '.join(ops)})"
        if expression.unary:
            return "unary signs are not allowed; combine the numbers with binary operators"
        try:
            value = evaluate(expression.tree)
        except ZeroDivisionError:
            return "the expression divides by zero"
        if value != target:
            return f"the expression equals {format_value(value)}, not {target}"
        if expression.claimed is not None and expression.claimed != target:
            return f"the expression is claimed to equal {expression.claimed}, not {target}"
        return ""


# -- environment -------------------------------------------------------------------------------
def _prompt(numbers: tuple[int, ...], target: int, config: CountdownConfig) -> str:
    ops = list(config.operators)
    ops_text = ops[0] if len(ops) == 1 else ", ".join(ops[:-1]) + " and " + ops[-1]
    listed = ", ".join(str(n) for n in numbers)
    task = (
        f"Using the numbers {listed}, write an arithmetic expression that equals {target}. "
        f"Use each number exactly once; you may use {ops_text} and parentheses."
    )
    if config.answer_format == "line":
        return f"{task} End your reply with a line 'Answer: <expression>', without '= {target}'."
    return (
        f"{task} Think it through, then give only the expression, without '= {target}', "
        "between <answer> and </answer>."
    )


class CountdownEnv(TextEnv):
    """Countdown: combine the given numbers, each exactly once, to reach the target."""

    def __init__(self, config: CountdownConfig | None = None, *, render_mode: str | None = None):
        super().__init__(render_mode=render_mode)
        self.config = config or CountdownConfig()
        self.verifier = CountdownVerifier(self.config.verifier_config)
        self.max_turns = self.config.max_turns
        self.feedback_style = self.config.feedback

    def solution(self, task: Task) -> str | None:
        return None if task.answer is None else f"<answer>{task.answer}</answer>"

    def sample_task(self, rng: np.random.Generator) -> Task:
        numbers, target, solution = generate_puzzle(rng, self.config)
        return Task(
            prompt=_prompt(numbers, target, self.config),
            answer=solution,
            id=f"countdown:{' '.join(map(str, numbers))}->{target}",
            metadata={
                "numbers": numbers,
                "target": target,
                "operators": self.config.operators,
                "solution": solution,
            },
        )
