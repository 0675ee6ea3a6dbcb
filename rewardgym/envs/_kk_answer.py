"""Reading a Knights & Knaves answer from free-form model text.

:func:`read_answer` finds who the response says is a knight and who a knave, tolerating order,
case, numbering and bullet styles, markdown emphasis and text around the answer. The rules
(also in ``docs/envs/knights_knaves.md``):

1. Only the last :data:`MAX_SCAN_CHARS` characters are read (the answer comes at the end);
   ``*``, ``_`` and backticks are ignored.
2. If the text has an answer marker (``<answer>``, ``\\boxed{``, "final answer", "in
   conclusion", or "answer" / "conclusion" followed by a colon, a dash or a line break), only
   the text after the last marker is read, up to ``</answer>``. If it holds no claim, the whole
   text is read instead.
3. Claims: "Zoey is a knight", "Zoey is not a knave", "Zoey must be a knight", "Zoey: knight",
   "Zoey - Knave", "Zoey -> knight", "Zoey (knight)", "| Zoey | knight |", "Zoey's role: knight",
   "Zoey and Ava are knights", "Knights: Zoey, Ava", "The knaves are Oliver and Ava",
   ``{"Zoey": "knight"}``. Skipped: a claim in a conditional clause (after "if", "suppose",
   "assume", "assuming", "whether", "unless", or a clause starting with "then"), in reported
   speech (after "says", "claims", "states", "tells", ... in the same clause, or after
   "according to Oliver,"),
   and in quotes next to such a verb ('Oliver says, "Zoey is a knave."').
4. Each person's role is their last claim. A person is *contradicted* when one claim gives both
   roles ("Zoey is a knight/knave", "a knight or a knave"), or when the text after an answer
   marker gives them both roles.
5. A *stranger* is a capitalised word that is not a person of the puzzle, in a line that starts
   (after any numbering or bullet) with a claim about it: "(3) Zed is a knight". An *unknown
   role* is a word other than knight/knave in "Zoey is a liar." (with an article, ending the
   clause) or in a line "Zoey: liar".

Every pattern is linear in the text and the text is bounded, so hostile inputs are cheap.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MAX_SCAN_CHARS", "Claim", "Reading", "read_answer"]

MAX_SCAN_CHARS = 8_000
# How far back (characters) a claim's clause is searched for a conditional word.
CLAUSE_LOOKBACK = 120
# How far (characters) around a quotation a reporting verb is looked for.
SPEECH_WINDOW = 60
# How far (characters) a claim's line is searched for its start and end.
LINE_LOOKAROUND = 64

_EMPHASIS = re.compile(r"[*_`]+")
_MARKER = re.compile(
    r"<answer>|\\boxed\{|\b(?:final\s+answers?\b|in\s+conclusion\b"
    r"|(?:answers?|conclusions?)\b[ \t]*(?:is\b[ \t]*)?(?:[:=\-\u2013\u2014]|\n))",
    re.IGNORECASE,
)
_END_ANSWER = re.compile(r"</answer>", re.IGNORECASE)

_TOKEN = r"[A-Za-z][A-Za-z-]{0,40}\b"  # the \b stops backtracking into a word
_SEP = (
    r'(?:"?\s*(?:->|=>|\u2192|[:=|\u2013\u2014-]{1,2}>?|\()\s*"?'
    r"|'s\s+(?:role|identity|status)\s*(?:is\b|[:=\-\u2013\u2014])?\s*"
    r"|\s+(?:is|must\s+be|has\s+to\s+be)"
    r"(?:\s+(?:definitely|indeed|therefore|thus|also|clearly|certainly|actually|truly|surely|so))?"
    r"\s+)"
)
# A lookahead, so that matches may overlap: in "Roles: Zoey is a knight" the failed reading
# "Roles: Zoey" must not swallow "Zoey".
_SINGLE = re.compile(
    rf"(?<![\w'-])(?=(?P<name>{_TOKEN})(?P<sep>{_SEP})(?P<neg>not\s+)?"
    rf"(?P<art>(?:an?|the)\s+)?(?!(?:an?|the)\b)(?P<role>{_TOKEN})\b)",
    re.IGNORECASE,
)
_NAME_LIST = rf"{_TOKEN}(?:\s*,\s*(?:and\s+)?{_TOKEN}|\s+and\s+{_TOKEN}){{0,12}}"
_ARE = re.compile(
    rf"(?<![\w'-])(?P<names>{_NAME_LIST})\s+(?:are|must\s+be)\s+(?P<neg>not\s+)?"
    r"(?:both\s+|all\s+)?(?P<role>knights|knaves)\b",
    re.IGNORECASE,
)
_LABEL = re.compile(  # a lookahead too: "..., and the knave is Oliver" follows a name list
    r"(?:^[ \t>#|]*(?:[-+\u2022][ \t]*)?|[.;]\s+|\bthe\s+)(?=(?P<role>knights?|knaves?)\s*"
    rf"(?:[:=\-\u2013\u2014]|\bare\b|\bis\b)\s*(?P<names>{_NAME_LIST}))",
    re.IGNORECASE | re.MULTILINE,
)
_NAME_TOKEN = re.compile(_TOKEN)
# The other role right after a claim's role: "a knight/knave", "a knight or a knave".
_BOTH_ROLES = re.compile(
    r"\s*(?:/\s*|\s(?:or|and)\s+(?:an?\s+)?|,\s*an?\s+)(knight|knave)\b", re.IGNORECASE
)
_CLAUSE_ENDS = ".;:!?\n,(["
_REPORTING = (
    r"says?|said|claims?|claimed|states?|stated|tells?|told|asserts?|asserted|remarks?|remarked"
    r"|mentions?|mentioned|declares?|declared|insists?|insisted|according\s+to"
)
_SKIP_CLAUSE = re.compile(
    rf"\b(?:if|suppose|supposing|assume|assuming|whether|unless|{_REPORTING})\b", re.IGNORECASE
)
_ACCORDING_TO = re.compile(r"\baccording\s+to\s+[A-Za-z-]+\s*,$", re.IGNORECASE)
_REPORTING_VERB = re.compile(rf"\b(?:{_REPORTING})\b", re.IGNORECASE)
_QUOTED = re.compile(r'["\u201c][^"\u201c\u201d\n]{1,400}["\u201d]')
_SENTENCE_END = re.compile(r"[.!?\n]")
_THEN_START = re.compile(r"\s*then\b", re.IGNORECASE)
_LINE_START = re.compile(r"[ \t>#|]*(?:\(?\d{1,3}[.):]|[-+\u2022])?[ \t]*")
_ROLE_END = re.compile(r"[ \t]*(?:[.,;!)\]|]|$)", re.MULTILINE)

NOT_NAMES = frozenset(
    "i he she it they we you this that these those everyone everybody nobody someone somebody "
    "anyone each every either neither both one none who which person speaker answer conclusion "
    "solution result note then so thus therefore hence and or but if the a an final all "
    "knight knave knights knaves statement role".split()
)


@dataclass(frozen=True)
class Claim:
    """One claim read from the text: ``person`` is an index into the puzzle's names, ``role``
    "knight", "knave", or the unknown role word as written."""

    position: int
    person: int
    role: str
    both: bool = False  # the claim gives both roles ("a knight/knave")


@dataclass(frozen=True)
class Reading:
    """What a response says. ``roles[i]``: person i's last role ("knight"/"knave"), the unknown
    word used instead, or None when no claim names them."""

    roles: tuple[str | None, ...]
    found_any: bool  # at least one claim (about anyone) was read
    strangers: tuple[str, ...]  # names claimed about who are not in the puzzle
    contradicted: tuple[int, ...]  # people given both roles


def read_answer(response: str, names: Sequence[str]) -> Reading:
    """Read each person's role from ``response`` (see the module docstring for the rules)."""
    index = {name.lower(): i for i, name in enumerate(names)}
    text = _EMPHASIS.sub("", response[-MAX_SCAN_CHARS:])
    block, marked = _answer_block(text)
    claims, strangers = _claims(block, index)
    if marked and not claims and not strangers:
        (claims, strangers), marked = _claims(text, index), False
    roles: list[str | None] = [None] * len(names)
    contradicted: set[int] = set()
    given: dict[int, set[str]] = {}
    for claim in sorted(claims, key=lambda c: c.position):
        roles[claim.person] = claim.role
        if claim.both:
            contradicted.add(claim.person)
        given.setdefault(claim.person, set()).add(claim.role)
    if marked:
        contradicted.update(p for p, seen in given.items() if {"knight", "knave"} <= seen)
    return Reading(
        roles=tuple(roles),
        found_any=bool(claims or strangers),
        strangers=tuple(dict.fromkeys(strangers)),
        contradicted=tuple(sorted(contradicted)),
    )


def _answer_block(text: str) -> tuple[str, bool]:
    """The text after the last answer marker (up to ``</answer>``), or all of it."""
    last = None
    for last in _MARKER.finditer(text):  # noqa: B007 - the last match is the one wanted
        pass
    if last is None:
        return text, False
    end = _END_ANSWER.search(text, last.end())
    return text[last.end() : end.start() if end else len(text)], True


def _claims(text: str, index: dict[str, int]) -> tuple[list[Claim], list[str]]:
    claims: list[Claim] = []
    strangers: list[str] = []
    speech = _speech_spans(text)

    def skipped(start: int) -> bool:
        return _in_spans(speech, start) or _skipped_clause(text, start)

    for m in _SINGLE.finditer(text):
        if skipped(m.start()):
            continue
        person, role = index.get(m["name"].lower()), _role(m["role"])
        if person is not None and role is not None:
            if m["neg"]:
                role = "knave" if role == "knight" else "knight"
            other = _BOTH_ROLES.match(text, m.end("role"))
            both = other is not None and _role(other[1]) != _role(m["role"])
            claims.append(Claim(m.end("role"), person, role, both=both))
        elif person is not None and _unknown_role(text, m):
            claims.append(Claim(m.end("role"), person, m["role"].lower()))
        elif person is None and role is not None and _stranger(text, m):
            strangers.append(m["name"])
    for m in _ARE.finditer(text):
        if not skipped(m.start()):
            people = _trailing_known_names(m["names"], index)
            role = _role(m["role"])
            if m["neg"]:
                role = "knave" if role == "knight" else "knight"
            claims.extend(Claim(m.end("role"), p, role) for p in people)
    for m in _LABEL.finditer(text):
        if not skipped(m.start("role")):
            role = _role(m["role"])
            start = m.start("names")
            for p, end in _known_names_at(m["names"], index):
                claims.append(Claim(start + end, p, role))
    return claims, strangers


def _role(word: str) -> str | None:
    word = word.lower()
    if word in ("knight", "knights"):
        return "knight"
    if word in ("knave", "knaves"):
        return "knave"
    return None


def _known_names_at(names: str, index: dict[str, int]) -> list[tuple[int, int]]:
    """``(person, end offset)`` of the known names at the start of a name list."""
    found = []
    for token in _NAME_TOKEN.finditer(names):
        word = token.group().lower()
        if word == "and":
            continue
        if word not in index:
            break
        found.append((index[word], token.end()))
    return found


def _trailing_known_names(names: str, index: dict[str, int]) -> list[int]:
    """The known names at the end of a name list ("So, Zoey and Ava": Ava, Zoey)."""
    tokens = [t.lower() for t in _NAME_TOKEN.findall(names) if t.lower() != "and"]
    found = []
    for word in reversed(tokens):
        if word not in index:
            break
        found.append(index[word])
    return found


def _skipped_clause(text: str, start: int) -> bool:
    """Whether the clause that holds position ``start`` is a condition, a consequence, or
    reported speech ("Oliver says Zoey is a knave")."""
    window = text[max(0, start - CLAUSE_LOOKBACK) : start]
    cut = max(window.rfind(c) for c in _CLAUSE_ENDS) + 1  # 0: no boundary in the window
    clause = window[cut:]
    if cut and _ACCORDING_TO.search(window, 0, cut):
        return True
    return bool(_SKIP_CLAUSE.search(clause) or _THEN_START.match(clause))


def _speech_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of quotations with a reporting verb in the same sentence just before or
    after them ('Oliver says, "Zoey is a knave."', '"Zoey is a knave," Oliver claims.')."""
    spans = []
    for q in _QUOTED.finditer(text):
        before = text[max(0, q.start() - SPEECH_WINDOW) : q.start()]
        cut = None
        for cut in _SENTENCE_END.finditer(before):  # noqa: B007 - the last end is wanted
            pass
        before = before[cut.end() :] if cut else before
        after = _SENTENCE_END.split(text[q.end() : q.end() + SPEECH_WINDOW], maxsplit=1)[0]
        if _REPORTING_VERB.search(before) or _REPORTING_VERB.search(after):
            spans.append((q.start(), q.end()))
    return spans


def _in_spans(spans: list[tuple[int, int]], position: int) -> bool:
    i = bisect.bisect_right(spans, (position, math.inf)) - 1  # the last span starting <= it
    return i >= 0 and spans[i][0] <= position < spans[i][1]


def _line_prefix(text: str, start: int) -> str:
    """The text between the start of the line and ``start``, or a string that cannot be a
    numbering prefix when the line started more than :data:`LINE_LOOKAROUND` characters back."""
    low = max(0, start - LINE_LOOKAROUND)
    newline = text.rfind("\n", low, start)
    if newline < 0 and low > 0:
        return "\x00"
    return text[newline + 1 : start]


def _unknown_role(text: str, m: re.Match[str]) -> bool:
    """Whether ``m`` is a claim of a role other than knight/knave ("Zoey is a liar.")."""
    end = m.end("role")
    if m["role"].lower() in NOT_NAMES or not _ROLE_END.match(text, end):
        return False
    if m["art"]:
        return True
    at_line_start = _LINE_START.fullmatch(_line_prefix(text, m.start())) is not None
    rest = text[end : end + LINE_LOOKAROUND].split("\n", 1)[0]
    return at_line_start and not rest.strip(" \t.!;")


def _stranger(text: str, m: re.Match[str]) -> bool:
    """Whether ``m`` claims a role for a capitalised name that is not in the puzzle, at the
    start of a line ("(3) Zed is a knight")."""
    name = m["name"]
    if not name[0].isupper() or name.lower() in NOT_NAMES or m["role"].lower().endswith("s"):
        return False
    return _LINE_START.fullmatch(_line_prefix(text, m.start())) is not None
