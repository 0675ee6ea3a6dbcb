"""Verifiers for the VerifierPool tests, in an importable module so worker processes load them."""

from __future__ import annotations

import ctypes
import os
import sys
import time

from rewardgym.core.types import Task, Verdict
from rewardgym.core.verifier import Verifier


class ExactVerifier(Verifier):
    """1.0 when the stripped response equals the gold answer, else 0.0; no answer -> None."""

    def verify(self, response: str, task: Task) -> Verdict:
        if not response.strip():
            return Verdict.unscorable("empty response")
        correct = response.strip() == task.answer
        return Verdict(1.0 if correct else 0.0, correct=correct, extracted=response.strip())


class PidVerifier(Verifier):
    """Reports the process it runs in (``extracted`` is the pid)."""

    def verify(self, response: str, task: Task) -> Verdict:
        return Verdict(0.0, extracted=str(os.getpid()))


class EchoVerifier(Verifier):
    """Reward = len(response), and the response comes back as ``extracted``."""

    def verify(self, response: str, task: Task) -> Verdict:
        return Verdict(float(len(response)), extracted=response)


class ScaledVerifier(Verifier):
    """Has state that must travel with the pickle: reward = scale."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def verify(self, response: str, task: Task) -> Verdict:
        return Verdict(self.scale)


class LoopVerifier(Verifier):
    def verify(self, response: str, task: Task) -> Verdict:
        while True:
            pass


class SleepVerifier(Verifier):
    def verify(self, response: str, task: Task) -> Verdict:
        time.sleep(float(response))
        return Verdict(1.0, correct=True)


class ExitVerifier(Verifier):
    def verify(self, response: str, task: Task) -> Verdict:
        os._exit(3)


class SegfaultVerifier(Verifier):
    def verify(self, response: str, task: Task) -> Verdict:
        ctypes.string_at(0)
        return Verdict(0.0)


class MemoryHogVerifier(Verifier):
    """Asks for 64 GiB at once."""

    def verify(self, response: str, task: Task) -> Verdict:
        hog = bytearray(64 << 30)
        return Verdict(float(len(hog)))


class GrowingHogVerifier(Verifier):
    """Grows a list of 16 MiB blocks until memory runs out."""

    def verify(self, response: str, task: Task) -> Verdict:
        hog = []
        while True:
            hog.append(bytearray(16 << 20))


class RaisingVerifier(Verifier):
    def verify(self, response: str, task: Task) -> Verdict:
        raise ValueError(f"cannot handle {response[:20]!r}")


class RecursingVerifier(Verifier):
    def verify(self, response: str, task: Task) -> Verdict:
        return self.verify(response, task)


class ExitingVerifier(Verifier):
    """Calls sys.exit: a verifier bug, not a reason for the worker to stop."""

    def verify(self, response: str, task: Task) -> Verdict:
        sys.exit(5)


class NotAVerdictVerifier(Verifier):
    def verify(self, response: str, task: Task) -> Verdict:
        return 1.0  # type: ignore[return-value]


class PrintingVerifier(Verifier):
    """Writes to stdout, which must not reach the pool's protocol."""

    def verify(self, response: str, task: Task) -> Verdict:
        print("noise from a verifier")
        sys.stdout.write("x" * 70_000 + "\n")  # more than a pipe holds
        sys.stdout.flush()
        os.write(1, b"raw bytes on fd 1\n")
        return Verdict(1.0, correct=True)


class UnloadableVerifier(Verifier):
    """Pickles fine but fails to unpickle in a worker."""

    def __reduce__(self):
        return (_refuse, ())


def _refuse():
    raise RuntimeError("refusing to load")


class SpawnThenCrashVerifier(Verifier):
    """Starts a long-lived child process, records its pid in ``response`` (a path), crashes."""

    def verify(self, response: str, task: Task) -> Verdict:
        import subprocess

        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open(response, "w") as f:
            f.write(str(child.pid))
        os._exit(1)
