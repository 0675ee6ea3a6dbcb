"""Plain frozen data types that cross component boundaries.

- :class:`Task`: one problem an environment poses (prompt, gold answer, metadata).
- :class:`Completion`: what the model produced in one turn (the env's action): text and, when
  the runner has them, the sampled token ids and their log-probabilities.
- :class:`Verdict`: what a verifier says of a response: a reward, or ``None`` when it could not
  be scored (timeout, crash, unparseable), whether it is correct, and why.

All three are picklable, so they travel to verifier worker processes and Ray actors unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Completion", "Task", "Verdict", "as_completion"]


@dataclass(frozen=True)
class Task:
    """One problem: the prompt the model sees and what a verifier needs to score an answer.

    ``answer`` is the gold answer as text (``None`` when the verifier needs none, e.g. a puzzle
    checked by rules). ``metadata`` holds task-specific data for the verifier (numbers of a
    Countdown task, the solution of a logic puzzle, ...); it is not part of the hash.
    """

    prompt: str
    answer: str | None = None
    id: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Completion:
    """The model's output for one turn: the action a :class:`~rewardgym.TextEnv` steps with.

    ``token_ids`` and ``logprobs`` are the ids the engine sampled and their log-probabilities.
    When present they are the ground truth for token counts and training: the runner never
    re-tokenises model text (token-in/token-out).
    """

    text: str
    token_ids: tuple[int, ...] | None = None
    logprobs: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"Completion.text must be a str, got {type(self.text).__name__}")
        if self.token_ids is not None and not isinstance(self.token_ids, tuple):
            object.__setattr__(self, "token_ids", tuple(int(t) for t in self.token_ids))
        if self.logprobs is not None and not isinstance(self.logprobs, tuple):
            object.__setattr__(self, "logprobs", tuple(float(x) for x in self.logprobs))
        if (
            self.token_ids is not None
            and self.logprobs is not None
            and len(self.token_ids) != len(self.logprobs)
        ):
            raise ValueError(
                f"Completion has {len(self.token_ids)} token ids but {len(self.logprobs)} "
                "log-probs; they must be the same length (one log-prob per sampled token)."
            )

    @property
    def num_tokens(self) -> int | None:
        """The number of sampled tokens, or ``None`` when the completion carries no token ids."""
        return None if self.token_ids is None else len(self.token_ids)


def as_completion(action: str | Completion | Sequence[Any]) -> Completion:
    """Normalise an env action: a plain ``str`` becomes ``Completion(text=action)``.

    Anything else that is not a :class:`Completion` is turned into its ``str()`` so garbage
    actions are scored (as wrong), never crashed on.
    """
    if isinstance(action, Completion):
        return action
    if isinstance(action, str):
        return Completion(text=action)
    return Completion(text=str(action))


@dataclass(frozen=True)
class Verdict:
    """A verifier's judgement of one response.

    ``reward`` is a finite float, or ``None`` meaning "could not be scored" (the verifier timed
    out, crashed, or the answer could not be parsed in a way that says right or wrong).
    Unscorable samples are masked out of baselines by the runner; they are never silently 0.
    ``extracted`` is the answer the verifier read from the response, if any.
    """

    reward: float | None
    correct: bool = False
    reason: str = ""
    extracted: str | None = None

    def __post_init__(self) -> None:
        if self.reward is not None:
            if isinstance(self.reward, bool) or not isinstance(self.reward, (int, float)):
                raise TypeError(
                    f"Verdict.reward must be a float or None, got {type(self.reward).__name__}"
                )
            if not math.isfinite(self.reward):
                raise ValueError(
                    f"Verdict.reward must be finite, got {self.reward!r}; return "
                    "Verdict(reward=None, reason=...) for an answer that cannot be scored."
                )
            object.__setattr__(self, "reward", float(self.reward))
        if self.reward is None and self.correct:
            raise ValueError("An unscorable Verdict (reward=None) cannot be correct.")

    @property
    def scorable(self) -> bool:
        """``True`` when the verifier produced a reward."""
        return self.reward is not None

    @classmethod
    def unscorable(cls, reason: str) -> Verdict:
        """A verdict for a response that could not be scored, with the reason."""
        return cls(reward=None, correct=False, reason=reason)
