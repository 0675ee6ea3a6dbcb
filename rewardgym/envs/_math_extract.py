"""Finding the final answer in a model's response (private to ``rewardgym.envs.math``).

Pure standard-library code, so it runs (and is tested) without math-verify. Every scan is linear
in the length of the response, and a span is never read past a fixed length, so megabytes of
hostile text cost milliseconds.

Extraction modes:

- ``"boxed"``: the content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), braces balanced;
- ``"final_answer"``: what follows the last "final answer" (``Final Answer: 3``, ``**Final
  Answer:** $3$``, ``The final answer is 3.``), on the same line or, when that is empty, the next
  non-empty one; a ``\\boxed{}`` inside it is unwrapped;
- ``"last_number"``: the last number (``-3``, ``1,000``, ``2.5``, ``3/4``, ``15%``);
- ``"auto"``: ``boxed``, then ``final_answer``, then ``last_number``.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

__all__ = ["EXTRACTIONS", "Extracted", "extract_answer", "gold_span"]

EXTRACTIONS = ("boxed", "final_answer", "last_number", "auto")

# The form each mode asks for (what the format term rewards).
PRIMARY_FORM = {
    "boxed": "boxed",
    "final_answer": "final_answer",
    "last_number": "last_number",
    "auto": "boxed",
}

_BOX_OPENERS = ("\\boxed{", "\\fbox{")
_BOX_TRIES = 8  # how many of the last openers to try when the last ones are unterminated
_FINAL = re.compile(r"final\s+answer", re.IGNORECASE)
_FINAL_LEAD = re.compile(r"^[\s*_:：=]*(?:is\b)?[\s*_:：=]*", re.IGNORECASE)
_HOPE = re.compile(r"\s*I hope it is correct\.?\s*$", re.IGNORECASE)
_NUMBER = re.compile(
    r"(?<![\w.])-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?(?:\s*/\s*[0-9]+)?(?:\s*\\?%)?"
)
_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_GOLD_HASHES = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Extracted:
    """An answer read from a response: its text, the form it was found in, and whether it was
    longer than the limit (then ``text`` holds only its first ``limit`` characters)."""

    text: str
    form: str  # "boxed", "final_answer" or "last_number"
    too_long: bool = False


def extract_answer(response: str, mode: str, limit: int) -> Extracted | None:
    """The final answer in ``response`` by ``mode`` (one of :data:`EXTRACTIONS`), or ``None``."""
    if mode not in EXTRACTIONS:
        raise ValueError(f"extraction mode must be one of {EXTRACTIONS}, got {mode!r}")
    finders = {
        "boxed": (_last_boxed,),
        "final_answer": (_final_answer,),
        "last_number": (_last_number,),
        "auto": (_last_boxed, _final_answer, _last_number),
    }[mode]
    for finder in finders:
        found = finder(response, limit)
        if found is not None:
            return found
    return None


def gold_span(gold: str, limit: int) -> str:
    """The answer part of a gold answer: the last ``\\boxed{}`` of a worked solution, the part
    after ``####`` (GSM8K style), or the whole text, stripped and unwrapped from ``$...$``."""
    boxed = _last_boxed(gold, limit)
    if boxed is not None and not boxed.too_long:
        return boxed.text
    hashes = _GOLD_HASHES.search(gold[-(limit + 8) :])
    text = hashes.group(1) if hashes else gold
    return _unwrap_math(text.strip())


# -- the finders --------------------------------------------------------------------------------
def _last_boxed(text: str, limit: int) -> Extracted | None:
    """The content of the last terminated ``\\boxed{...}`` (trying the last few openers)."""
    starts = _opener_ends(text)
    for end_of_opener in starts[-_BOX_TRIES:][::-1]:
        content, terminated = _balanced(text, end_of_opener, limit)
        if terminated:
            return Extracted(content.strip(), "boxed")
        if len(content) >= limit:
            return Extracted(content[:limit], "boxed", too_long=True)
    return None


def _opener_ends(text: str) -> list[int]:
    """Positions just after every box opener, in order."""
    ends: list[int] = []
    for opener in _BOX_OPENERS:
        i = text.find(opener)
        while i != -1:
            ends.append(i + len(opener))
            i = text.find(opener, i + len(opener))
    return sorted(ends)


def _balanced(text: str, start: int, limit: int) -> tuple[str, bool]:
    """Text from ``start`` up to the brace closing an already open ``{`` (at most ``limit``
    characters are read). Returns (content, whether the closing brace was found)."""
    depth, i, stop = 1, start, min(len(text), start + limit + 1)
    while i < stop:
        ch = text[i]
        if ch == "\\" and i + 1 < stop:  # \{ and \} are literal braces
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start:i], True
        i += 1
    return text[start:stop], False


def _final_answer(text: str, limit: int) -> Extracted | None:
    """What follows the last "final answer" marker, on its line or the next non-empty line."""
    last = _last_match(_FINAL, text)
    if last is None:
        return None
    rest = text[last.end() : last.end() + 4 * limit]
    first, _, after = rest.partition("\n")
    line = _FINAL_LEAD.sub("", first, count=1)
    if not line.strip():  # "**Final Answer**" on a line of its own: take the next block
        line = " ".join(_first_block(after.split("\n")))
    line = _HOPE.sub("", line).strip().rstrip(".").strip("* ").rstrip(".").strip()
    if not line:
        return None
    boxed = _last_boxed(line, limit)
    if boxed is not None:
        return Extracted(boxed.text, "final_answer", boxed.too_long)
    line = _unwrap_math(line)
    if len(line) > limit:
        return Extracted(line[:limit], "final_answer", too_long=True)
    return Extracted(line, "final_answer")


def _first_block(lines: list[str]) -> list[str]:
    """The first run of non-empty lines."""
    block: list[str] = []
    for line in lines:
        if line.strip():
            block.append(line.strip())
        elif block:
            break
    return block


def _last_number(text: str, limit: int) -> Extracted | None:
    last = _last_match(_NUMBER, text)
    if last is None:
        return None
    number = last.group(0)
    if len(number) > limit:
        return Extracted(number[:limit], "last_number", too_long=True)
    return Extracted(number.replace(",", ""), "last_number")


def _last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    found = deque(pattern.finditer(text), maxlen=1)
    return found[0] if found else None


def _unwrap_math(text: str) -> str:
    """``$x$`` -> ``x`` (also ``$$``, ``\\(\\)``, ``\\[\\]``) when one pair encloses it all."""
    for left, right in _DELIMITERS:
        if (
            len(text) > len(left) + len(right)
            and text.startswith(left)
            and text.endswith(right)
            and left not in text[len(left) : -len(right)]
        ):
            return text[len(left) : -len(right)].strip()
    return text
