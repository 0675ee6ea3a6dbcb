"""``check_verifier``: the checks every rewardgym verifier should pass, for plugin authors' CI.

Checks, in order:

- ``expected_verdicts``: each ``(response, task, expected)`` case, verified in this process, gives
  the expected result: a float is the reward (within 1e-9), a bool is ``verdict.correct``,
  ``None`` means unscorable (``reward is None``). A verifier that raises fails the check, with the
  error and where it was raised.
- ``determinism``: verifying the same response twice gives equal verdicts (or the same error).
- ``picklable``: the verifier survives a pickle round-trip and the copy gives the same verdicts
  (verifiers travel to worker processes).
- ``hostile_inputs``: every :data:`~rewardgym.testing.HOSTILE_RESPONSES` entry goes through a
  :class:`~rewardgym.core.verify.VerifierPool` (one worker, the given timeout). The check asserts
  that each call comes back with a Verdict within ``timeout + 1`` seconds (a worker's start-up
  is not timed) and that the verifier itself did not raise (or return a non-Verdict) on it.
  A hostile input that makes the verifier hang or exhaust memory is *contained*: the pool
  returns an unscorable verdict, the check passes, and its message lists the inputs contained
  that way, so a verifier that hangs on ``10**10**10`` is visible in the report without failing
  it. Scored and unscorable verdicts both pass.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

from rewardgym.core.types import Task, Verdict
from rewardgym.core.verifier import Verifier
from rewardgym.testing._hostile import HOSTILE_RESPONSES
from rewardgym.testing._report import (
    CheckFailed,
    CheckReport,
    describe_exception,
    plural,
    run_checks,
    shorten,
)

__all__ = ["DEFAULT_TASK", "VERIFIER_CHECKS", "check_verifier"]

Expected = float | bool | None
Case = tuple[str, Task, Expected]

# The task hostile inputs are scored against when no cases are given.
DEFAULT_TASK = Task("x", answer="1")
# Responses checked for determinism and pickling when no cases are given.
PROBES = ("", "1", "Answer: 1", "\\boxed{1}", "Answer: 2")
# Slack on top of the pool timeout for a hostile call (killing a worker, moving 1 MB of text).
GRACE_S = 1.0
TOLERANCE = 1e-9
SHOW = 3


@dataclass
class _VerifierContext:
    verifier: Verifier
    cases: tuple[Case, ...]
    timeout: float

    @property
    def pairs(self) -> list[tuple[str, Task]]:
        """``(response, task)`` pairs for determinism and pickling."""
        if self.cases:
            return [(response, task) for response, task, _ in self.cases]
        return [(probe, DEFAULT_TASK) for probe in PROBES]

    @property
    def hostile_task(self) -> Task:
        return self.cases[0][1] if self.cases else DEFAULT_TASK


def check_verifier(
    verifier: Verifier,
    cases: Sequence[Case] = (),
    *,
    hostile: bool = True,
    timeout: float = 5.0,
    raise_on_failure: bool = True,
) -> CheckReport:
    """Run every verifier check and return the report.

    ``cases`` are ``(response, task, expected)`` triples (see the module docs for ``expected``);
    the first case's task is also the one hostile inputs are scored against (with no cases,
    ``Task("x", answer="1")``), so give cases for a verifier that needs task metadata.
    ``hostile=False`` skips ``hostile_inputs`` (it starts a worker process). With
    ``raise_on_failure`` (the default) a failed check raises :class:`~rewardgym.CheckError`
    listing every failure.
    """
    if not isinstance(verifier, Verifier):
        raise TypeError(
            f"check_verifier needs a rewardgym Verifier, got {type(verifier).__name__}; "
            "subclass rewardgym.Verifier and implement verify(response, task)."
        )
    if isinstance(timeout, bool) or not isinstance(timeout, Real) or not timeout > 0:
        raise ValueError(f"check_verifier(timeout=...) must be a number > 0, got {timeout!r}")
    context = _VerifierContext(verifier, _validate_cases(cases), float(timeout))
    checks = [c for c in VERIFIER_CHECKS if hostile or c[0] != "hostile_inputs"]
    target = f"verifier {type(verifier).__name__}"
    return run_checks(target, checks, context, raise_on_failure=raise_on_failure)


def _validate_cases(cases: Sequence[Any]) -> tuple[Case, ...]:
    if isinstance(cases, (str, bytes)) or not isinstance(cases, Sequence):
        raise TypeError(
            f"check_verifier(cases=...) must be a list of (response, task, expected) tuples, "
            f"got {type(cases).__name__}."
        )
    valid = []
    for i, case in enumerate(cases):
        ok = isinstance(case, tuple) and len(case) == 3
        if ok:
            response, task, expected = case
            ok = isinstance(response, str) and isinstance(task, Task)
            ok = ok and (expected is None or isinstance(expected, Real))
        if not ok:
            raise TypeError(
                f"check_verifier case {i} is {shorten(case)}; expected a tuple (response: str, "
                "task: Task, expected: float | bool | None)."
            )
        valid.append(case)
    return tuple(valid)


# -- the checks ---------------------------------------------------------------------------------
def check_expected_verdicts(ctx: _VerifierContext) -> str:
    if not ctx.cases:
        return "no cases given"
    problems = []
    for i, (response, task, expected) in enumerate(ctx.cases):
        try:
            verdict = ctx.verifier.verify(response, task)
        except Exception as exc:
            problems.append(f"case {i} {shorten(response)} raised {describe_exception(exc)}")
            continue
        problem = _expectation_problem(verdict, expected)
        if problem:
            problems.append(f"case {i} {shorten(response)}: {problem}")
    if problems:
        raise CheckFailed(_summary(problems, len(ctx.cases), "cases failed"))
    return f"{plural(len(ctx.cases), 'case')} as expected"


def check_determinism(ctx: _VerifierContext) -> str:
    problems = []
    for response, task in ctx.pairs:
        first, second = (
            _outcome(ctx.verifier, response, task),
            _outcome(ctx.verifier, response, task),
        )
        if first != second:
            problems.append(f"{shorten(response)} gave {first} then {second}")
    if problems:
        raise CheckFailed(_summary(problems, len(ctx.pairs), "responses verified twice differ"))
    return f"{plural(len(ctx.pairs), 'response')} verified twice, same verdicts"


def check_picklable(ctx: _VerifierContext) -> str:
    try:
        copy = pickle.loads(pickle.dumps(ctx.verifier))
    except Exception as exc:
        raise CheckFailed(
            f"pickle round-trip raised {describe_exception(exc)}; verifiers are sent to worker "
            "processes, so keep locks, open files, lambdas and live clients out of their state"
        ) from None
    for response, task in ctx.pairs:
        original, copied = _outcome(ctx.verifier, response, task), _outcome(copy, response, task)
        if original != copied:
            raise CheckFailed(
                f"the unpickled copy judges {shorten(response)} differently: {copied} instead of "
                f"{original}"
            )
    return f"pickles ({len(pickle.dumps(ctx.verifier))} bytes); the copy gives the same verdicts"


def check_hostile_inputs(ctx: _VerifierContext) -> str:
    from rewardgym.core.verify import VerifierPool

    task, limit = ctx.hostile_task, ctx.timeout + GRACE_S
    problems, contained, scored = [], [], 0
    try:
        pool = VerifierPool(ctx.verifier, workers=1, timeout=ctx.timeout)
    except Exception as exc:
        raise CheckFailed(
            f"the verifier cannot run in a VerifierPool: {type(exc).__name__}: {exc}"
        ) from None
    with pool:
        for response in HOSTILE_RESPONSES:
            pool.start()  # a worker replaced after a timeout starts outside the timed call
            before, start = pool.stats, time.monotonic()
            try:
                verdict = pool.verify(response, task)
            except Exception as exc:
                problems.append(f"{shorten(response)}: the pool raised {describe_exception(exc)}")
                continue
            elapsed, kind = time.monotonic() - start, _pool_outcome(before, pool.stats)
            if elapsed > limit:
                problems.append(f"{shorten(response)}: took {elapsed:.1f} s (limit {limit:.1f} s)")
            elif kind == "errors":
                problems.append(f"{shorten(response)}: {verdict.reason}")
            elif kind:
                contained.append(f"{shorten(response, 30)} ({verdict.reason})")
            else:
                scored += verdict.reward is not None
    total = len(HOSTILE_RESPONSES)
    if problems:
        raise CheckFailed(_summary(problems, total, "hostile inputs failed"))
    unscorable = total - scored - len(contained)
    message = f"{total} hostile inputs: {scored} scored, {unscorable} unscorable"
    if contained:
        message += f", {len(contained)} contained by the pool: " + "; ".join(contained)
    return message


VERIFIER_CHECKS: tuple[tuple[str, Callable[[_VerifierContext], str]], ...] = (
    ("expected_verdicts", check_expected_verdicts),
    ("determinism", check_determinism),
    ("picklable", check_picklable),
    ("hostile_inputs", check_hostile_inputs),
)


# -- helpers ------------------------------------------------------------------------------------
def _expectation_problem(verdict: Any, expected: Expected) -> str:
    if not isinstance(verdict, Verdict):
        return f"returned {type(verdict).__name__}, expected a rewardgym Verdict"
    got = f"got reward={verdict.reward!r}, correct={verdict.correct} ({verdict.reason!r})"
    if expected is None:
        return "" if verdict.reward is None else f"expected unscorable (reward=None), {got}"
    if isinstance(expected, bool):
        return "" if verdict.correct == expected else f"expected correct={expected}, {got}"
    if verdict.reward is None or abs(verdict.reward - float(expected)) > TOLERANCE:
        return f"expected reward={float(expected)!r}, {got}"
    return ""


def _pool_outcome(before: Any, after: Any) -> str:
    """Which ``None``-verdict counter of the pool the last call moved: ``"errors"`` (the verifier
    raised or returned a non-Verdict), ``"timeouts"``, ``"crashes"``, ``"memory_errors"``, or
    ``""`` (the verifier's own verdict came back)."""
    for kind in ("errors", "timeouts", "crashes", "memory_errors"):
        if getattr(after, kind) > getattr(before, kind):
            return kind
    return ""


def _outcome(verifier: Verifier, response: str, task: Task) -> Any:
    """The verdict, or ``"raised <Error>: <message>"`` when the verifier raised."""
    try:
        return verifier.verify(response, task)
    except Exception as exc:
        return f"raised {type(exc).__name__}: {exc}"


def _summary(problems: list[str], total: int, what: str) -> str:
    shown = "; ".join(problems[:SHOW])
    more = f" (+{len(problems) - SHOW} more)" if len(problems) > SHOW else ""
    return f"{len(problems)} of {total} {what}: {shown}{more}"
