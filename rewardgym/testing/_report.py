"""Check results and reports, shared by :func:`~rewardgym.testing.check_env` and
:func:`~rewardgym.testing.check_verifier`.

A checker is a list of small named check functions. Each takes a context and returns a message
(it passed) or raises :class:`CheckFailed` (it failed, with a message); any other exception it
lets escape is a failure too, reported with a short traceback summary. :func:`run_checks` runs
them all (one failing check never hides the others) and builds the :class:`CheckReport`.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from rewardgym.core.errors import CheckError

__all__ = [
    "CheckFailed",
    "CheckReport",
    "CheckResult",
    "describe_exception",
    "failure_message",
    "plural",
    "run_checks",
    "shorten",
]

Context = TypeVar("Context")

# How many traceback frames (innermost last) a failure message quotes.
_TRACEBACK_FRAMES = 3


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one named check. ``message`` says what was found, passed or not."""

    name: str
    passed: bool
    message: str = ""

    def __str__(self) -> str:
        mark = "\u2713" if self.passed else "\u2717"
        return f"{mark} {self.name}" + (f": {self.message}" if self.message else "")


@dataclass(frozen=True)
class CheckReport:
    """Every check run against one target (an env id, an env class, a verifier class)."""

    target: str
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """``True`` when every check passed."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The checks that failed, in the order they ran."""
        return tuple(r for r in self.results if not r.passed)

    def result(self, name: str) -> CheckResult:
        """The result of the check called ``name``."""
        for r in self.results:
            if r.name == name:
                return r
        known = ", ".join(r.name for r in self.results)
        raise KeyError(f"No check named '{name}' in this report; it has: {known}.")

    def __str__(self) -> str:
        passed = sum(r.passed for r in self.results)
        head = f"{self.target}: {passed}/{len(self.results)} checks passed"
        return "\n".join([head, *(f"  {r}" for r in self.results)])


class CheckFailed(Exception):
    """Raised inside a check function to fail the check with a message."""


def describe_exception(exc: BaseException) -> str:
    """``"ValueError: bad (at file.py:12 in f <- ...)"``: the error and its innermost frames."""
    frames = traceback.extract_tb(exc.__traceback__)[-_TRACEBACK_FRAMES:]
    where = " <- ".join(
        f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in reversed(frames)
    )
    text = f"{type(exc).__name__}: {exc}"
    return f"{text} (at {where})" if where else text


def run_checks(
    target: str,
    checks: Sequence[tuple[str, Callable[[Context], str]]],
    context: Context,
    *,
    raise_on_failure: bool,
) -> CheckReport:
    """Run every check on ``context``; raise :class:`CheckError` listing all failures if asked."""
    results = []
    for name, check in checks:
        try:
            message = check(context)
        except CheckFailed as exc:
            results.append(CheckResult(name, False, str(exc)))
        except Exception as exc:
            results.append(CheckResult(name, False, "raised " + describe_exception(exc)))
        else:
            results.append(CheckResult(name, True, message or ""))
    report = CheckReport(target, tuple(results))
    if raise_on_failure and not report.ok:
        raise CheckError(failure_message(report))
    return report


def failure_message(report: CheckReport) -> str:
    """The :class:`CheckError` text: every failed check, then the full report."""
    names = ", ".join(r.name for r in report.failures)
    return (
        f"{len(report.failures)} of {len(report.results)} checks failed for {report.target} "
        f"({names}):\n{report}"
    )


def shorten(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters with the full length noted."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f"{len(value)} chars" if isinstance(value, str) else f"repr of {len(text)} chars"
    return f"{text[:limit]}... ({size})"


def plural(n: int, word: str) -> str:
    """``"1 case"``, ``"2 cases"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
