"""Hostile model outputs: responses a verifier must score (or call unscorable) without raising
or hanging.

They imitate what a policy really emits early in training or when it finds an exploit: nothing,
megabytes of text, control characters, unbalanced or deeply nested brackets, numbers too large
to parse or to evaluate, LaTeX that divides by zero, look-alike Unicode digits, and strings that
break naive ``eval``-, regex- or template-based parsers. None contains a lone surrogate (those
cannot be encoded as UTF-8, so no tokenizer emits them). None is harmful when evaluated: a
verifier that calls ``eval`` on a response is a bug these strings expose, not an attack.
"""

from __future__ import annotations

__all__ = ["HOSTILE_RESPONSES"]

_MEGABYTE = 1_000_000

HOSTILE_RESPONSES: tuple[str, ...] = (
    # nothing, or nothing visible
    "",
    " \n\t\r ",
    "\u200b\u200c\u200d\ufeff",  # zero-width characters and a byte-order mark
    # size
    "a" * _MEGABYTE,  # 1 MB of text
    "Answer: " * 100_000,  # a marker repeated without a value
    "1 " * 200_000,  # 200,000 numbers
    # control characters
    "\x00" * 1_000,
    "Answer: 4\x00\x00\x00",
    "".join(chr(c) for c in range(32)) + "\x7f",
    # nesting and brackets
    "(" * 10_000 + "1" + ")" * 10_000,
    "[" * 50_000,
    "\\boxed{" * 2_000 + "1" + "}" * 2_000,
    "\\boxed{",
    "\\boxed{}",
    "}{" * 1_000,
    # numbers too large to parse or evaluate
    "9" * 5_000,  # beyond Python's default int() digit limit (4300)
    "Answer: " + "9" * 100_000,
    "10**10**10",
    "Answer: 9**9**9**9",
    "1e999999",
    "-0",
    "nan",
    "Answer: inf",
    "\\frac{1}{0}",
    "0/0",
    "1,000,000,000,000,000,000,000,000,000,000,000,000,000",
    # weird Unicode
    "\uff14\uff12",  # full-width digits ４２
    "\u0664\u0662",  # Arabic-Indic digits ٤٢
    "\u202eAnswer: 24\u202c",  # right-to-left override
    "a\u0301" * 5_000,  # a letter with thousands of combining accents
    "\U0001f600" * 1_000,  # emoji
    "\U0010fffd\U000e0001\ufffe",  # private-use plane, tag character, non-character
    # strings that break naive parsers
    "__import__('math').factorial(100000)",
    "{{7*7}} ${7*7} %s%s%s%n",
    "(a+)+$" + "a" * 50 + "!",
    "Answer:" + "\n" * 10_000 + "4",
)
