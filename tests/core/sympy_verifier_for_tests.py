"""A sympy-based verifier for the VerifierPool tests, importable by worker processes.

sympy is imported at module level, so a worker pays for the import when it loads the verifier
(bounded by the pool's start_timeout), not during a timed call.
"""

from __future__ import annotations

import sympy

from rewardgym.core.types import Task, Verdict
from rewardgym.core.verifier import Verifier


class SympyVerifier(Verifier):
    """Symbolic equality with sympy: ``simplify(response - answer) == 0``."""

    def verify(self, response: str, task: Task) -> Verdict:
        try:
            got = sympy.sympify(response)
        except (sympy.SympifyError, SyntaxError, TypeError, ValueError) as exc:
            return Verdict.unscorable(f"unparseable: {type(exc).__name__}")
        correct = bool(sympy.simplify(got - sympy.sympify(task.answer)) == 0)
        return Verdict(1.0 if correct else 0.0, correct=correct, extracted=str(got))
