"""Reading a Countdown answer: find it in the response, parse it safely, evaluate it exactly.

Nothing here calls ``eval``. An answer is parsed with ``ast.parse(mode="eval")`` only after it
has passed a character whitelist and a length limit, and the tree is accepted only if every node
is an integer literal, a binary ``+ - * /`` or a unary ``+ -``. Values are computed with
:class:`fractions.Fraction`, so ``7 / 2 * 2`` is exactly 7 and no float rounding decides a
verdict. Every input is bounded (length, node count), so no answer can make parsing or
evaluation slow.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "ANSWER_FORMATS",
    "MAX_EXPRESSION_CHARS",
    "MAX_NODES",
    "Expression",
    "MalformedExpression",
    "evaluate",
    "extract_answer",
    "format_value",
    "parse_expression",
]

ANSWER_FORMATS = ("tag", "line", "either")
MAX_EXPRESSION_CHARS = 1000  # an expression over 20 numbers needs far fewer
MAX_NODES = 200  # AST nodes; also bounds the tree's depth, hence the evaluator's recursion

OPEN_TAG, CLOSE_TAG = "<answer>", "</answer>"
_LAST_ANSWER_MARK = re.compile(r".*answer\s*[:：]", re.IGNORECASE)  # greedy: the last one
_ALLOWED_CHARS = re.compile(r"[0-9+\-*/() ]*")
_INTEGER = re.compile(r"[0-9]+")
_SPELLINGS = (  # notation models use for the four operators, and wrappers around an expression
    ("\\times", "*"), ("\\cdot", "*"), ("\\div", "/"), ("\\left", ""), ("\\right", ""),
    ("\\(", ""), ("\\)", ""), ("\\[", ""), ("\\]", ""), ("$", ""),
    ("×", "*"), ("·", "*"), ("⋅", "*"), ("∗", "*"), ("÷", "/"), ("∕", "/"),
    ("−", "-"), ("–", "-"),
)  # fmt: skip
_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_UNARY = (ast.UAdd, ast.USub)


class MalformedExpression(Exception):
    """The answer is not an arithmetic expression of the accepted form; the message says why."""


@dataclass(frozen=True)
class Expression:
    """A parsed answer: its normalised text, its integer literals in order, the binary operators
    it uses, whether it uses a unary sign, and the integer it claims to equal (``expr = N``)."""

    text: str
    tree: ast.expr
    numbers: tuple[int, ...]
    operators: frozenset[str]
    unary: bool
    claimed: int | None = None


# -- finding the answer ------------------------------------------------------------------------
def extract_answer(response: str, answer_format: str) -> str | None:
    """The answer text in ``response``, or ``None`` when there is none.

    ``"tag"``: the text between the last ``</answer>`` and the ``<answer>`` before it.
    ``"line"``: the rest of the line after the last ``Answer:`` (any case; markdown bold around
    it is dropped). ``"either"``: the tag when there is one, else the line. Linear in the length
    of the response.
    """
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"answer_format must be one of {ANSWER_FORMATS}, got {answer_format!r}")
    if answer_format != "line":
        found = _last_tag(response)
        if found is not None or answer_format == "tag":
            return found
    return _last_answer_line(response)


def _last_tag(text: str) -> str | None:
    end = text.rfind(CLOSE_TAG)
    start = -1 if end < 0 else text.rfind(OPEN_TAG, 0, end)
    return None if start < 0 else text[start + len(OPEN_TAG) : end]


def _last_answer_line(text: str) -> str | None:
    for line in reversed(text.splitlines()):
        mark = _LAST_ANSWER_MARK.match(line)
        if mark is not None:
            rest = line[mark.end() :].strip()  # markdown bold: **Answer:** x, Answer: **x**
            return rest.removeprefix("**").removesuffix("**").strip()
    return None


# -- parsing -----------------------------------------------------------------------------------
def parse_expression(answer: str) -> Expression:
    """Parse an answer into an :class:`Expression`; raise :class:`MalformedExpression` if it is
    not integers combined with ``+ - * /`` and parentheses (optionally ``expr = N``)."""
    if len(answer) > MAX_EXPRESSION_CHARS:
        raise MalformedExpression(f"the answer is longer than {MAX_EXPRESSION_CHARS} characters")
    text = " ".join(_normalise(answer).split()).rstrip(".").strip()
    if not text:
        raise MalformedExpression("the answer is empty")
    text, claimed = _split_claim(text)
    if not _ALLOWED_CHARS.fullmatch(text):
        bad = next(c for c in text if not _ALLOWED_CHARS.fullmatch(c))
        raise MalformedExpression(
            f"{bad!r} is not allowed; use integers, + - * /, parentheses and spaces"
        )
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise MalformedExpression(f"{_shorten(text)!r} is not a valid expression") from None
    nodes = 0
    for nodes, _ in enumerate(ast.walk(tree), 1):
        if nodes > MAX_NODES:
            raise MalformedExpression(f"the expression has more than {MAX_NODES} parts")
    numbers: list[int] = []
    operators: set[str] = set()
    unary = _collect(tree, numbers, operators)
    return Expression(text, tree, tuple(numbers), frozenset(operators), unary, claimed)


def _normalise(answer: str) -> str:
    for old, new in _SPELLINGS:
        if old in answer:
            answer = answer.replace(old, new)
    return answer


def _split_claim(text: str) -> tuple[str, int | None]:
    """``"(1 + 2) * 3 = 9"`` (or ``"9 = (1 + 2) * 3"``) -> ``("(1 + 2) * 3", 9)``."""
    if "=" not in text:
        return text, None
    parts = [p.strip().rstrip(".").strip() for p in text.split("=")]
    if len(parts) == 2:
        left, right = parts
        if _INTEGER.fullmatch(right) and len(right) <= 18:
            return left, int(right)
        if _INTEGER.fullmatch(left) and len(left) <= 18:
            return right, int(left)
    raise MalformedExpression(
        "'=' may only separate the expression from the integer it equals ('expr = N')"
    )


def _collect(node: ast.AST, numbers: list[int], operators: set[str]) -> bool:
    """Check every node is allowed; gather literals and operators; return whether a unary sign
    occurs. Recursion depth is bounded by ``MAX_NODES``."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        numbers.append(node.value)
        return False
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        operators.add(_BINARY[type(node.op)])
        left = _collect(node.left, numbers, operators)
        return _collect(node.right, numbers, operators) or left
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, _UNARY):
        _collect(node.operand, numbers, operators)
        return True
    if isinstance(node, ast.BinOp):
        raise MalformedExpression(f"the operator {type(node.op).__name__} is not + - * or /")
    raise MalformedExpression(f"{type(node).__name__} is not allowed in an expression")


# -- evaluating --------------------------------------------------------------------------------
def evaluate(node: ast.AST) -> Fraction:
    """The exact value of a tree accepted by :func:`parse_expression`.

    Raises ``ZeroDivisionError`` on a division by zero."""
    if isinstance(node, ast.Constant):
        return Fraction(node.value)
    if isinstance(node, ast.UnaryOp):
        value = evaluate(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if not isinstance(node, ast.BinOp):  # parse_expression lets no other node through
        raise TypeError(f"cannot evaluate {type(node).__name__}")
    a, b = evaluate(node.left), evaluate(node.right)
    op = type(node.op)
    if op is ast.Add:
        return a + b
    if op is ast.Sub:
        return a - b
    if op is ast.Mult:
        return a * b
    return a / b


def format_value(value: Fraction) -> str:
    """``Fraction(7, 1)`` -> ``"7"``, ``Fraction(7, 2)`` -> ``"7/2"``."""
    return (
        str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    )


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
