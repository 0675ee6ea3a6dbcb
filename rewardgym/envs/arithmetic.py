"""``rewardgym/arithmetic-v0``: procedural integer arithmetic with an exact verifier.

Each task is an expression over non-negative integers with ``+``, ``-`` and ``*`` (and
parentheses from difficulty 4 on), generated from the env's seeded RNG and evaluated exactly
with Python integers (never ``eval``). The verifier reads the final answer from, in order of
preference, the last ``\\boxed{N}``, the last ``Answer: N``, or the last integer in the response,
and compares it exactly with the gold value: reward 1.0 if equal, else 0.0.

With ``max_turns > 1`` a wrong answer gets feedback and another try (retry with feedback).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rewardgym.core.env import FEEDBACK_STYLES, TextEnv
from rewardgym.core.errors import ConfigError
from rewardgym.core.types import Task, Verdict
from rewardgym.core.verifier import Verifier

__all__ = ["LEVELS", "ArithmeticConfig", "ArithmeticEnv", "ArithmeticVerifier", "Level"]


@dataclass(frozen=True)
class Level:
    """What one difficulty level generates."""

    operands: int  # how many numbers in the expression
    max_value: int  # numbers are drawn from [0, max_value]
    ops: str  # operators to draw from
    parens: bool  # nested sub-expressions in parentheses


LEVELS: dict[int, Level] = {
    1: Level(operands=2, max_value=9, ops="+-", parens=False),
    2: Level(operands=3, max_value=99, ops="+-", parens=False),
    3: Level(operands=3, max_value=99, ops="+-*", parens=False),
    4: Level(operands=4, max_value=999, ops="+-*", parens=True),
    5: Level(operands=5, max_value=999, ops="+-*", parens=True),
}

PROMPT_STYLES = ("instruct", "plain")


@dataclass
class ArithmeticConfig:
    """Params of ``rewardgym/arithmetic-v0``.

    difficulty: 1 (one-digit a+b) to 5 (five 3-digit numbers with +, -, * and parentheses).
    max_turns: 1 for single-turn; >1 lets the model retry after feedback.
    feedback: "generic" ("incorrect, try again") or "reason" (why the answer was wrong).
    prompt_style: "instruct" (a sentence asking for 'Answer: N') or "plain" ("12+7*3=").
    operands, max_value, ops: override the difficulty level's number of operands (>= 2),
        largest number (>= 1) and operators (a non-empty string of "+-*"); None keeps the
        level's. E.g. difficulty 2 with operands 2: sums and differences of two numbers < 100.
    """

    difficulty: int = 1
    max_turns: int = 1
    feedback: str = "generic"
    prompt_style: str = "instruct"
    operands: int | None = None
    max_value: int | None = None
    ops: str | None = None

    def __post_init__(self) -> None:
        if self.difficulty not in LEVELS:
            raise ConfigError(
                f"arithmetic difficulty must be one of {sorted(LEVELS)}, got {self.difficulty!r}"
            )
        if not isinstance(self.max_turns, int) or self.max_turns < 1:
            raise ConfigError(f"arithmetic max_turns must be an int >= 1, got {self.max_turns!r}")
        if self.feedback not in FEEDBACK_STYLES:
            raise ConfigError(
                f"arithmetic feedback must be one of {FEEDBACK_STYLES}, got {self.feedback!r}"
            )
        if self.prompt_style not in PROMPT_STYLES:
            raise ConfigError(
                f"arithmetic prompt_style must be one of {PROMPT_STYLES}, got {self.prompt_style!r}"
            )
        if self.operands is not None and self.operands < 2:
            raise ConfigError(f"arithmetic operands must be >= 2, got {self.operands!r}")
        if self.max_value is not None and self.max_value < 1:
            raise ConfigError(f"arithmetic max_value must be >= 1, got {self.max_value!r}")
        if self.ops is not None and (not self.ops or set(self.ops) - set("+-*")):
            raise ConfigError(
                f"arithmetic ops must be a non-empty string of '+', '-', '*', got {self.ops!r}"
            )

    @property
    def level(self) -> Level:
        """The difficulty level with the overrides applied."""
        base = LEVELS[self.difficulty]
        return Level(
            operands=base.operands if self.operands is None else self.operands,
            max_value=base.max_value if self.max_value is None else self.max_value,
            ops=base.ops if self.ops is None else self.ops,
            parens=base.parens,
        )


# -- expressions -------------------------------------------------------------------------------
# An expression tree is an int or a tuple (op, left, right).


def _random_tree(rng: np.random.Generator, level: Level, n: int):
    if n == 1:
        return int(rng.integers(0, level.max_value + 1))
    left_n = int(rng.integers(1, n))
    op = level.ops[int(rng.integers(0, len(level.ops)))]
    return (op, _random_tree(rng, level, left_n), _random_tree(rng, level, n - left_n))


def _random_chain(rng: np.random.Generator, level: Level, n: int):
    """A flat expression ``a op b op c`` parsed with the usual precedence (* before +, -)."""
    numbers = [int(x) for x in rng.integers(0, level.max_value + 1, size=n)]
    ops = [level.ops[int(i)] for i in rng.integers(0, len(level.ops), size=n - 1)]
    terms, term_ops = [numbers[0]], []  # products first
    for op, num in zip(ops, numbers[1:], strict=True):
        if op == "*":
            terms[-1] = ("*", terms[-1], num)
        else:
            term_ops.append(op)
            terms.append(num)
    tree = terms[0]
    for op, term in zip(term_ops, terms[1:], strict=True):
        tree = (op, tree, term)
    return tree


def evaluate(tree) -> int:
    """The exact integer value of an expression tree."""
    if isinstance(tree, int):
        return tree
    op, left, right = tree
    a, b = evaluate(left), evaluate(right)
    return a + b if op == "+" else a - b if op == "-" else a * b


def render(tree, *, parens: bool) -> str:
    """Text of an expression, ``"12 + 7 * 3"``: sub-expressions in parentheses when ``parens``
    is set, otherwise the flat chain (whose precedence the chain generator respects)."""
    if isinstance(tree, int):
        return str(tree)
    op, left, right = tree

    def side(sub) -> str:
        text = render(sub, parens=parens)
        return f"({text})" if parens and not isinstance(sub, int) else text

    return f"{side(left)} {op} {side(right)}"


# -- verifier ----------------------------------------------------------------------------------
_BOXED = re.compile(r"\\boxed\{\s*([-−]?\d+)\s*\}")
_ANSWER = re.compile(r"answer\s*[:=]?\s*\**\s*([-−]?\d+)", re.IGNORECASE)
_INTEGER = re.compile(r"[-−]?\d+")
MAX_ANSWER_DIGITS = 1000


def extract_integer(response: str) -> str | None:
    """The final integer answer in ``response`` as text, or ``None`` when there is none."""
    for pattern in (_BOXED, _ANSWER):
        matches = pattern.findall(response)
        if matches:
            return matches[-1]
    last = None
    for match in _INTEGER.finditer(response):
        last = match
    return None if last is None else last.group(0)


def canonical_integer(text: str) -> str:
    """``"-007"`` -> ``"-7"``, ``"−0"`` -> ``"0"``; digit strings compared without int()."""
    negative = text[0] in "-−"
    digits = text.lstrip("-−").lstrip("0") or "0"
    return "-" + digits if negative and digits != "0" else digits


class ArithmeticVerifier(Verifier):
    """Exact integer match of the final answer: reward 1.0 if right, 0.0 if wrong or missing."""

    def verify(self, response: str, task: Task) -> Verdict:
        if task.answer is None:
            return Verdict.unscorable("the task has no gold answer")
        found = extract_integer(response)
        if found is None:
            return Verdict(0.0, correct=False, reason="no integer answer found")
        if len(found) > MAX_ANSWER_DIGITS:
            return Verdict(0.0, correct=False, reason="the answer has too many digits")
        answer = canonical_integer(found)
        correct = answer == canonical_integer(task.answer)
        reason = "correct" if correct else f"{answer} is not the correct result"
        return Verdict(1.0 if correct else 0.0, correct=correct, reason=reason, extracted=answer)


# -- environment -------------------------------------------------------------------------------
class ArithmeticEnv(TextEnv):
    """Compute an integer expression; single-turn, or retry with feedback when max_turns > 1."""

    def __init__(self, config: ArithmeticConfig | None = None, *, render_mode: str | None = None):
        super().__init__(render_mode=render_mode)
        self.config = config or ArithmeticConfig()
        self.verifier = ArithmeticVerifier()
        self.max_turns = self.config.max_turns
        self.feedback_style = self.config.feedback

    def solution(self, task: Task) -> str | None:
        if task.answer is None or self.config.prompt_style == "plain":
            return task.answer
        return f"Answer: {task.answer}"

    def sample_task(self, rng: np.random.Generator) -> Task:
        level = self.config.level
        if level.parens:
            tree = _random_tree(rng, level, level.operands)
        else:
            tree = _random_chain(rng, level, level.operands)
        expression = render(tree, parens=level.parens)
        value = evaluate(tree)
        if self.config.prompt_style == "plain":
            prompt = expression.replace(" ", "") + "="
        else:
            prompt = f"Compute {expression}. End your reply with 'Answer: <integer>'."
        return Task(
            prompt=prompt,
            answer=str(value),
            id=f"arithmetic-d{self.config.difficulty}:{expression}",
            metadata={"expression": expression, "difficulty": self.config.difficulty},
        )
