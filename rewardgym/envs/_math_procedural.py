"""The offline problem set of ``rewardgym/math-v0`` (private to ``rewardgym.envs.math``).

Problems are generated from a seeded ``numpy`` generator and solved exactly with
:class:`fractions.Fraction`, never by evaluating text. Their answers come in the forms that make
math equivalence non-trivial: fractions (``\\frac{7}{6}`` = ``7/6``), square roots
(``6\\sqrt{2}`` = ``\\sqrt{72}``), solutions of equations (``-\\frac{5}{3}`` = ``x = -5/3``),
percentages (``15\\%``), intervals (``(-\\infty, 3]`` = ``x \\le 3``) and solution sets
(``-2, 3`` = ``\\{3, -2\\}``). Each problem also carries other correct ways to write its answer
and a plausible wrong one, for tests and benchmarks; the model never sees them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np

__all__ = ["DIFFICULTIES", "KINDS", "Problem", "generate"]

KINDS = ("fraction", "sqrt", "equation", "percent", "interval", "roots")
DIFFICULTIES = (1, 2, 3)
_RANGE = {1: 10, 2: 30, 3: 100}  # the largest number a problem of that difficulty uses
_SQUARE_FREE = (2, 3, 5, 6, 7, 10, 11, 13, 14, 15)
_PERCENT_BASES = (20, 25, 40, 50, 80, 120, 150, 200, 250, 400)


@dataclass(frozen=True)
class Problem:
    """One generated problem: statement (LaTeX in ``$...$``), gold answer (LaTeX), other correct
    forms of the answer, and a plausible wrong answer."""

    kind: str
    text: str
    answer: str
    equivalents: tuple[str, ...]
    wrong: str


def generate(rng: np.random.Generator, difficulty: int, kinds: tuple[str, ...]) -> Problem:
    """One problem of a kind drawn uniformly from ``kinds``."""
    kind = kinds[int(rng.integers(len(kinds)))]
    return _GENERATORS[kind](rng, _RANGE[difficulty], difficulty)


# -- formatting ---------------------------------------------------------------------------------
def latex(value: Fraction) -> str:
    """``Fraction(-7, 6)`` -> ``-\\frac{7}{6}``; integers as integers."""
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def plain(value: Fraction) -> str:
    """``Fraction(-7, 6)`` -> ``-7/6``."""
    return str(value)


def decimal(value: Fraction) -> str | None:
    """The exact decimal of a fraction whose denominator has only the factors 2 and 5."""
    d = value.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d != 1:
        return None
    text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _term(coefficient: int, variable: str, first: bool) -> str:
    """``3x`` / ``- x`` / ``+ 12``: one signed term of a polynomial."""
    sign = ("-" if first else "- ") if coefficient < 0 else ("" if first else "+ ")
    size = abs(coefficient)
    body = (variable if size == 1 else f"{size}{variable}") if variable else str(size)
    return sign + body


def _linear(a: int, b: int) -> str:
    """``a x + b`` as text, ``b`` omitted when 0."""
    return _term(a, "x", True) + ("" if b == 0 else " " + _term(b, "", False))


def _draw(rng: np.random.Generator, low: int, high: int, *, nonzero: bool = False) -> int:
    """An integer in ``[low, high]`` (never 0 with ``nonzero``)."""
    while True:
        value = int(rng.integers(low, high + 1))
        if value or not nonzero:
            return value


def _equivalents(value: Fraction) -> tuple[str, ...]:
    forms = [plain(value), decimal(value)]
    if value.denominator == 1:
        forms.append(f"{value.numerator}.0")
    else:
        sign = "-" if value < 0 else ""
        forms.append(f"{sign}\\dfrac{{{abs(value.numerator)}}}{{{value.denominator}}}")
    return tuple(dict.fromkeys(f for f in forms if f is not None and f != latex(value)))


# -- the generators -----------------------------------------------------------------------------
def _fraction(rng: np.random.Generator, top: int, difficulty: int) -> Problem:
    ops = ("+", "-", "\\times", "\\div")[: difficulty + 1]
    op = ops[int(rng.integers(len(ops)))]
    x = Fraction(_draw(rng, 1, top), _draw(rng, 2, max(top, 3)))
    y = Fraction(_draw(rng, 1, top), _draw(rng, 2, max(top, 3)))
    value = {"+": x + y, "-": x - y, "\\times": x * y, "\\div": x / y}[op]
    text = (
        f"Compute ${_unreduced(x)} {op} {_unreduced(y)}$. Write the result as a fraction in "
        "lowest terms (or an integer)."
    )
    return Problem("fraction", text, latex(value), _equivalents(value), latex(value + 1))


def _unreduced(value: Fraction) -> str:
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _sqrt(rng: np.random.Generator, top: int, difficulty: int) -> Problem:
    k = _draw(rng, 2, {1: 5, 2: 12, 3: 30}[difficulty])
    m = _SQUARE_FREE[int(rng.integers(len(_SQUARE_FREE)))]
    n = k * k * m
    text = f"Simplify $\\sqrt{{{n}}}$ to the form $a\\sqrt{{b}}$ with $b$ square-free."
    answer = f"{k}\\sqrt{{{m}}}"
    equivalents = (f"{k}*sqrt({m})", f"\\sqrt{{{m}}} \\cdot {k}", f"\\sqrt{{{n}}}")
    return Problem("sqrt", text, answer, equivalents, f"{k + 1}\\sqrt{{{m}}}")


def _equation(rng: np.random.Generator, top: int, difficulty: int) -> Problem:
    q = 1 if difficulty == 1 else _draw(rng, 1, 5)
    x = Fraction(_draw(rng, -top, top), q)
    a = q * _draw(rng, 1 if difficulty == 1 else -5, 5, nonzero=True)
    b = _draw(rng, -top, top)
    c = a * x + b  # an integer: a is a multiple of x's denominator
    text = f"Solve for $x$: ${_linear(a, b)} = {c}$."
    equivalents = (f"x = {latex(x)}", *_equivalents(x))
    return Problem("equation", text, latex(x), equivalents, latex(x + 1))


def _percent(rng: np.random.Generator, top: int, difficulty: int) -> Problem:
    if rng.integers(2):
        return _percent_of(rng, top, difficulty)
    n = _PERCENT_BASES[int(rng.integers(len(_PERCENT_BASES)))]
    p = 5 * _draw(rng, 1, 20) if difficulty == 1 else _draw(rng, 1, 100)
    text = f"What percent of ${n}$ is ${decimal(Fraction(p * n, 100))}$?"
    return Problem("percent", text, f"{p}\\%", (f"{p}%", f"{p}"), f"{p + 5}\\%")


def _percent_of(rng: np.random.Generator, top: int, difficulty: int) -> Problem:
    p = 5 * _draw(rng, 1, 20) if difficulty == 1 else _draw(rng, 1, 100)
    n = _draw(rng, 1, 10 * top)
    value, wrong = Fraction(p * n, 100), Fraction(p * n, 10)
    answer = decimal(value) or latex(value)  # p * n / 100 always has a finite decimal
    padded = answer + ("0" if "." in answer else ".0")
    equivalents = (padded,) if value.denominator == 1 else (latex(value), padded)
    text = f"What is ${p}\\%$ of ${n}$?"
    return Problem("percent", text, answer, equivalents, decimal(wrong) or latex(wrong))


_FLIP = {"<": ">", ">": "<", "\\le": "\\ge", "\\ge": "\\le"}


def _interval(rng: np.random.Generator, top: int, difficulty: int) -> Problem:
    op = ("<", "\\le", ">", "\\ge")[int(rng.integers(4))]
    a = _draw(rng, 1 if difficulty == 1 else -9, 9, nonzero=True)
    b, c = _draw(rng, -top, top), _draw(rng, -top, top)
    bound = Fraction(c - b, a)
    solved = op if a > 0 else _FLIP[op]  # x solved <op> bound
    text = f"Solve ${_linear(a, b)} {op} {c}$ for $x$. Give the solution set in interval notation."

    def interval(k: str, closed: bool) -> str:
        if solved in ("<", "\\le"):
            return f"(-\\infty, {k}{']' if closed else ')'}"
        return f"{'[' if closed else '('}{k}, \\infty)"

    closed = solved in ("\\le", "\\ge")
    answer = interval(latex(bound), closed)
    equivalents = (
        f"x {solved} {latex(bound)}",
        interval(plain(bound), closed).replace(" ", ""),
    )
    return Problem("interval", text, answer, equivalents, interval(latex(bound), not closed))


def _roots(rng: np.random.Generator, top: int, difficulty: int) -> Problem:
    limit = min(top, 12 * difficulty)
    r1 = _draw(rng, -limit, limit)
    r2 = _draw(rng, -limit, limit)
    while r2 == r1:
        r2 = _draw(rng, -limit, limit)
    r1, r2 = min(r1, r2), max(r1, r2)
    p, q = -(r1 + r2), r1 * r2
    poly = "x^2" + ("" if p == 0 else " " + _term(p, "x", False))
    poly += "" if q == 0 else " " + _term(q, "", False)
    text = f"Find all real solutions of ${poly} = 0$. List them separated by commas."
    equivalents = (f"{r2}, {r1}", f"\\{{{r1}, {r2}\\}}", f"x = {r1}, x = {r2}")
    return Problem("roots", text, f"{r1}, {r2}", equivalents, f"{r1}, {r2 + 1}")


_GENERATORS = {
    "fraction": _fraction,
    "sqrt": _sqrt,
    "equation": _equation,
    "percent": _percent,
    "interval": _interval,
    "roots": _roots,
}
