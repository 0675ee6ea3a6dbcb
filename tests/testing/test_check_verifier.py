"""check_verifier passes for a good verifier and names the failed checks for broken ones; hostile
inputs that hang are contained by the pool (the check passes and says so)."""

from __future__ import annotations

import random
import re
import threading
import time

import pytest

from rewardgym.core.errors import CheckError
from rewardgym.core.types import Task, Verdict
from rewardgym.core.verifier import Verifier
from rewardgym.envs.arithmetic import ArithmeticVerifier
from rewardgym.testing import HOSTILE_RESPONSES, check_verifier

TASK = Task("What is 2 + 2?", answer="4")
CASES = [
    ("Answer: 4", TASK, 1.0),
    ("\\boxed{4}", TASK, True),
    ("Answer: 5", TASK, 0.0),
    ("I think it is 5", TASK, False),
    ("Answer: 4", Task("What is 2 + 2?"), None),  # no gold answer: unscorable
]


class AlwaysRight(Verifier):
    """Wrong scoring: every answer is correct."""

    def verify(self, response: str, task: Task) -> Verdict:
        return Verdict(1.0, correct=True, reason="always right")


class CoinFlip(Verifier):
    """Nondeterministic: a random reward."""

    def verify(self, response: str, task: Task) -> Verdict:
        reward = random.random()
        return Verdict(reward, correct=reward > 0.5)


class Naive(Verifier):
    """Raises on inputs it should call unscorable: no number, or a number too long for int()."""

    def verify(self, response: str, task: Task) -> Verdict:
        value = int(re.findall(r"-?\d+", response)[-1])
        return Verdict(float(value == int(task.answer)), correct=value == int(task.answer))


class HangsOnPowers(ArithmeticVerifier):
    """Hangs on '**' (as a verifier that evaluates expressions would), fine otherwise."""

    def verify(self, response: str, task: Task) -> Verdict:
        if "**" in response:
            time.sleep(60)
        return super().verify(response, task)


class HoldsALock(ArithmeticVerifier):
    """Unpicklable: keeps a lock in its state."""

    def __init__(self) -> None:
        self.lock = threading.Lock()


class ReturnsAFloat(Verifier):
    def verify(self, response: str, task: Task):
        return 1.0


def failed(report) -> set[str]:
    return {r.name for r in report.failures}


def test_good_verifier_passes():
    report = check_verifier(ArithmeticVerifier(), CASES, timeout=2.0)
    assert report.ok, str(report)
    assert [r.name for r in report.results] == [
        "expected_verdicts",
        "determinism",
        "picklable",
        "hostile_inputs",
    ]
    assert report.target == "verifier ArithmeticVerifier"
    assert report.result("expected_verdicts").message == "5 cases as expected"
    assert report.result("hostile_inputs").message.startswith(
        f"{len(HOSTILE_RESPONSES)} hostile inputs: "
    )
    assert "contained" not in report.result("hostile_inputs").message


def test_without_cases_or_hostile():
    report = check_verifier(ArithmeticVerifier(), hostile=False)
    assert report.ok, str(report)
    assert [r.name for r in report.results] == ["expected_verdicts", "determinism", "picklable"]
    assert report.result("expected_verdicts").message == "no cases given"


def test_wrong_scoring_fails_expected_verdicts():
    report = check_verifier(AlwaysRight(), CASES, hostile=False, raise_on_failure=False)
    assert failed(report) == {"expected_verdicts"}
    assert report.result("expected_verdicts").message == (
        "3 of 5 cases failed: case 2 'Answer: 5': expected reward=0.0, got reward=1.0, "
        "correct=True ('always right'); case 3 'I think it is 5': expected correct=False, got "
        "reward=1.0, correct=True ('always right'); case 4 'Answer: 4': expected unscorable "
        "(reward=None), got reward=1.0, correct=True ('always right')"
    )


def test_nondeterministic_fails_determinism():
    report = check_verifier(CoinFlip(), CASES[:2], hostile=False, raise_on_failure=False)
    assert "determinism" in failed(report)
    assert report.result("determinism").message.startswith(
        "2 of 2 responses verified twice differ: 'Answer: 4' gave Verdict(reward="
    )


def test_raising_verifier_reports_where():
    cases = [("no number here", TASK, 0.0)]
    report = check_verifier(Naive(), cases, hostile=False, raise_on_failure=False)
    assert failed(report) == {"expected_verdicts"}
    message = report.result("expected_verdicts").message
    assert message.startswith(
        "1 of 1 cases failed: case 0 'no number here' raised IndexError: list index out of range "
        "(at test_check_verifier.py:"
    )
    assert "in verify" in message


def test_hostile_inputs_that_raise_fail():
    report = check_verifier(Naive(), CASES[:1], timeout=2.0, raise_on_failure=False)
    assert failed(report) == {"hostile_inputs"}
    message = report.result("hostile_inputs").message
    assert re.match(rf"\d+ of {len(HOSTILE_RESPONSES)} hostile inputs failed: ", message)
    assert "'': verifier raised IndexError: list index out of range" in message


def test_hanging_verifier_is_contained():
    report = check_verifier(HangsOnPowers(), CASES, timeout=1.0)
    assert report.ok, str(report)
    message = report.result("hostile_inputs").message
    # Exactly 2 on an idle machine; a slow one may time out on more (still contained).
    assert int(re.search(r", (\d+) contained by the pool: ", message).group(1)) >= 2
    assert "'10**10**10' (timed out after 1s)" in message
    assert "'Answer: 9**9**9**9' (timed out after 1s)" in message


def test_unpicklable_fails_picklable():
    report = check_verifier(HoldsALock(), CASES[:1], raise_on_failure=False)
    assert failed(report) == {"picklable", "hostile_inputs"}
    assert report.result("picklable").message.startswith(
        "pickle round-trip raised TypeError: cannot pickle '_thread.lock' object"
    )
    assert report.result("hostile_inputs").message.startswith(
        "the verifier cannot run in a VerifierPool: VerifierPoolError: Verifier HoldsALock "
        "cannot be pickled (TypeError: cannot pickle '_thread.lock' object)."
    )


def test_non_verdict_return_fails():
    report = check_verifier(ReturnsAFloat(), [("x", TASK, 1.0)], raise_on_failure=False)
    assert failed(report) == {"expected_verdicts", "hostile_inputs"}
    assert report.result("expected_verdicts").message == (
        "1 of 1 cases failed: case 0 'x': returned float, expected a rewardgym Verdict"
    )


def test_raise_on_failure():
    with pytest.raises(
        CheckError, match=re.escape("1 of 3 checks failed for verifier AlwaysRight")
    ):
        check_verifier(AlwaysRight(), CASES, hostile=False)


def test_bad_arguments():
    with pytest.raises(TypeError, match=re.escape("check_verifier needs a rewardgym Verifier")):
        check_verifier(lambda response, task: Verdict(1.0))
    with pytest.raises(TypeError, match=re.escape("check_verifier case 0 is ('Answer: 4', 1.0)")):
        check_verifier(ArithmeticVerifier(), [("Answer: 4", 1.0)])
    with pytest.raises(ValueError, match=re.escape("check_verifier(timeout=...) must be")):
        check_verifier(ArithmeticVerifier(), timeout=0)
