"""The verifier contract: ``verify(response, task) -> Verdict``.

A verifier is deterministic and picklable (it travels to worker processes). For a response it
cannot score, it returns ``Verdict(reward=None, reason=...)``; a bug in the verifier raises.
Run verifiers through :class:`rewardgym.core.verify.VerifierPool` to get time and memory limits.
"""

from __future__ import annotations

from rewardgym.core.types import Task, Verdict

__all__ = ["Verifier"]


class Verifier:
    """Base class of verifiers. Subclasses implement :meth:`verify`."""

    def verify(self, response: str, task: Task) -> Verdict:
        """Score ``response`` (the model's text) against ``task``."""
        raise NotImplementedError(f"{type(self).__name__} must implement verify(response, task)")

    def __call__(self, response: str, task: Task) -> Verdict:
        return self.verify(response, task)
