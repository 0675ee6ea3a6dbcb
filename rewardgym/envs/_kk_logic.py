"""Knights & Knaves puzzles: statements, a generator, an exact solver and English rendering.

The generator follows Xie et al. 2024 ("On Memorization of Large Language Models in Logical
Reasoning"): each of n people makes one statement, built from the claims "X is a knight" and
"X is a knave" with not, and, or, implies and iff, and only puzzles with exactly one consistent
assignment are kept.

A statement is a small immutable tree of tuples (JSON-able: after a JSON round trip the tuples
are lists, which every function here accepts as well)::

    ("knight", i)             person i is a knight
    ("knave", i)              person i is a knave
    ("not", s)
    ("and", s1, s2, ...)      2..width operands
    ("or", s1, s2, ...)       2..width operands
    ("implies", s1, s2)
    ("iff", s1, s2)

Its *depth* is the number of nodes on its longest root-to-claim path: a bare claim has depth 1,
"A and B" over claims depth 2.

Solving is by brute force over the 2^n assignments, all at once: a statement's truth table is an
int whose bit ``a`` is set when the statement holds under assignment ``a`` (bit ``i`` of ``a``
set: person ``i`` is a knight), so not/and/or are one big-int operation each. A puzzle's
consistent assignments are those where every person is a knight exactly when their statement
holds.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rewardgym.core.errors import ConfigError, RewardGymError

__all__ = [
    "OPERATORS",
    "ROLES",
    "Puzzle",
    "PuzzleNotFoundError",
    "canonical_answer",
    "evaluate",
    "generate_puzzle",
    "render_statement",
    "solve",
    "truth_table",
]

ROLES = ("knight", "knave")
MAX_PEOPLE = 8  # 2^8 assignments: each truth table is a 256-bit int
OPERATORS = ("not", "and", "or", "implies", "iff")

# A statement tree; see the module docstring.
Statement = tuple[Any, ...]


class PuzzleNotFoundError(RewardGymError, RuntimeError):
    """No puzzle with a unique solution was drawn within the attempt bound."""


@dataclass(frozen=True)
class Puzzle:
    """One puzzle: who the people are, what each says, and the unique solution.

    ``statements[i]`` is what ``names[i]`` says; ``knights[i]`` is True when ``names[i]`` is a
    knight in the solution.
    """

    names: tuple[str, ...]
    statements: tuple[Statement, ...]
    knights: tuple[bool, ...]

    @property
    def roles(self) -> tuple[str, ...]:
        """The solution as role words, ``("knight", "knave", ...)``."""
        return tuple("knight" if k else "knave" for k in self.knights)


# -- truth tables ------------------------------------------------------------------------------
@functools.cache
def _tables(n: int) -> tuple[int, tuple[int, ...]]:
    """``(ALL, K)``: the all-true table over 2^n assignments, and ``K[i]``, the table of
    "person i is a knight"."""
    size = 1 << n
    knight = tuple(sum(1 << a for a in range(size) if a >> i & 1) for i in range(n))
    return (1 << size) - 1, knight


def truth_table(statement: Statement, n: int) -> int:
    """The truth table of ``statement`` over the 2^n assignments of ``n`` people (see module)."""
    full, knight = _tables(n)
    op = statement[0]
    if op == "knight":
        return knight[statement[1]]
    if op == "knave":
        return full ^ knight[statement[1]]
    tables = [truth_table(s, n) for s in statement[1:]]
    if op == "not":
        return full ^ tables[0]
    if op == "and":
        return functools.reduce(int.__and__, tables)
    if op == "or":
        return functools.reduce(int.__or__, tables)
    if op == "implies":
        return (full ^ tables[0]) | tables[1]
    if op == "iff":
        return full ^ (tables[0] ^ tables[1])
    raise ValueError(f"unknown statement operator {op!r}; expected one of {ROLES + OPERATORS}")


def solve(statements: Sequence[Statement]) -> list[tuple[bool, ...]]:
    """Every consistent assignment of the puzzle, as tuples of "is a knight" flags."""
    n = len(statements)
    full, knight = _tables(n)
    consistent = full
    for i, statement in enumerate(statements):
        consistent &= full ^ (knight[i] ^ truth_table(statement, n))
    return [tuple(bool(a >> i & 1) for i in range(n)) for a in range(1 << n) if consistent >> a & 1]


def evaluate(statement: Statement, knights: Sequence[bool]) -> bool:
    """Whether ``statement`` holds when ``knights[i]`` says whether person i is a knight."""
    op = statement[0]
    if op == "knight":
        return bool(knights[statement[1]])
    if op == "knave":
        return not knights[statement[1]]
    values = [evaluate(s, knights) for s in statement[1:]]
    if op == "not":
        return not values[0]
    if op == "and":
        return all(values)
    if op == "or":
        return any(values)
    if op == "implies":
        return (not values[0]) or values[1]
    if op == "iff":
        return values[0] == values[1]
    raise ValueError(f"unknown statement operator {op!r}; expected one of {ROLES + OPERATORS}")


# -- generation --------------------------------------------------------------------------------
class _Sampler:
    """Draws statements and their truth tables together (Xie et al.'s sampler)."""

    def __init__(self, r: random.Random, n: int, width: int) -> None:
        self.r, self.n, self.width = r, n, width
        self.full, self.knight = _tables(n)

    def statement(self, speaker: int, depth: int) -> tuple[Statement, int]:
        r = self.r
        dice = int(r.random() * 6)
        if depth == 1 or dice == 0:
            return self.claim(speaker)
        if dice == 1:
            inner, table = self.statement(speaker, depth - 1)
            return ("not", inner), self.full ^ table
        if dice <= 3:
            count = 2 + int(r.random() * (self.width - 1))
            if depth == 2:  # operands are claims: only 2n - 1 distinct ones exist
                count = min(count, 2 * self.n - 1)
            parts = self.distinct(speaker, depth - 1, count)
            tables = [t for _, t in parts]
            if dice == 2:
                return ("and", *(s for s, _ in parts)), functools.reduce(int.__and__, tables)
            return ("or", *(s for s, _ in parts)), functools.reduce(int.__or__, tables)
        (a, ta), (b, tb) = self.distinct(speaker, depth - 1, 2)
        if dice == 4:
            return ("implies", a, b), (self.full ^ ta) | tb
        return ("iff", a, b), self.full ^ (ta ^ tb)

    def claim(self, speaker: int) -> tuple[Statement, int]:
        r = self.r
        while True:
            person = int(r.random() * self.n)
            if r.random() < 0.5:
                return ("knight", person), self.knight[person]
            if person != speaker:  # "I am a knave" is a paradox nobody can say
                return ("knave", person), self.full ^ self.knight[person]

    def distinct(self, speaker: int, depth: int, count: int) -> list[tuple[Statement, int]]:
        parts: list[tuple[Statement, int]] = []
        while len(parts) < count:
            part = self.statement(speaker, depth)
            if all(part[0] != p[0] for p in parts):
                parts.append(part)
        return parts


def generate_puzzle(
    seed: int,
    n_people: int,
    *,
    depth: int = 2,
    width: int = 2,
    names: Sequence[str],
    max_attempts: int = 1_000,
) -> Puzzle:
    """Draw puzzles from ``seed`` until one has exactly one consistent assignment.

    The same arguments always give the same puzzle. ``names`` is the pool the people's names are
    drawn from (at least ``n_people`` of them). A draw is rejected as soon as its statements so
    far leave no consistent assignment; after ``max_attempts`` rejected draws
    :class:`PuzzleNotFoundError` is raised (the defaults' unique-solution rates make this
    practically impossible; see the docs for the measured rates).
    """
    _check_generator_args(n_people, depth, width, names, max_attempts)
    r = random.Random(seed)
    sampler = _Sampler(r, n_people, width)
    full, knight = sampler.full, sampler.knight
    for _ in range(max_attempts):
        consistent, statements = full, []
        for i in range(n_people):
            statement, table = sampler.statement(i, depth)
            consistent &= full ^ (knight[i] ^ table)
            if not consistent:
                break
            statements.append(statement)
        if consistent and consistent & (consistent - 1) == 0:  # exactly one bit: unique
            a = consistent.bit_length() - 1
            chosen = tuple(r.sample(list(names), n_people))
            knights = tuple(bool(a >> i & 1) for i in range(n_people))
            return Puzzle(chosen, tuple(statements), knights)
    raise PuzzleNotFoundError(
        f"no Knights & Knaves puzzle with a unique solution in {max_attempts} draws "
        f"(n_people={n_people}, depth={depth}, width={width}, seed={seed})"
    )


def _check_generator_args(
    n_people: int, depth: int, width: int, names: Sequence[str], max_attempts: int
) -> None:
    problems = []
    if not 2 <= n_people <= MAX_PEOPLE:
        problems.append(f"n_people must be in [2, {MAX_PEOPLE}], got {n_people!r}")
    if depth < 2:
        problems.append(
            f"depth must be >= 2, got {depth!r} (bare claims never give a unique solution: "
            "flipping every role keeps them all consistent)"
        )
    if width < 2:
        problems.append(f"width must be >= 2, got {width!r}")
    if len(names) < n_people:
        problems.append(f"names has {len(names)} names, fewer than n_people={n_people}")
    if max_attempts < 1:
        problems.append(f"max_attempts must be >= 1, got {max_attempts!r}")
    if problems:
        raise ConfigError("generate_puzzle: " + "; ".join(problems))


# -- rendering ---------------------------------------------------------------------------------
def render_statement(statement: Statement, names: Sequence[str]) -> str:
    """English text of a statement; compound operands are put in parentheses."""
    op = statement[0]
    if op in ROLES:
        return f"{names[statement[1]]} is a {op}"
    if op == "not":
        inner = statement[1]
        if inner[0] in ROLES:
            return f"{names[inner[1]]} is not a {inner[0]}"
        return f"it is not the case that {_operand(inner, names)}"
    parts = [_operand(s, names) for s in statement[1:]]
    if op in ("and", "or"):
        return f" {op} ".join(parts)
    if op == "implies":
        return f"if {parts[0]} then {parts[1]}"
    if op == "iff":
        return f"{parts[0]} if and only if {parts[1]}"
    raise ValueError(f"unknown statement operator {op!r}; expected one of {ROLES + OPERATORS}")


def _operand(statement: Statement, names: Sequence[str]) -> str:
    """An operand's text, in parentheses unless it reads as one claim ("X is not a knave")."""
    text = render_statement(statement, names)
    simple = statement[0] in ROLES or (statement[0] == "not" and statement[1][0] in ROLES)
    return text if simple else f"({text})"


def canonical_answer(names: Sequence[str], knights: Sequence[bool]) -> str:
    """The answer in the canonical format: ``"(1) Zoey is a knight\\n(2) Oliver is a knave"``."""
    return "\n".join(
        f"({i}) {name} is a {'knight' if k else 'knave'}"
        for i, (name, k) in enumerate(zip(names, knights, strict=True), start=1)
    )
