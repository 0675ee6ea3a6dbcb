"""``example/reverse-v0``: the model must write a random word backwards.

The word is drawn from the env's seeded RNG (``self.np_random``), so ``reset(seed=s)`` always
poses the same task. The verifier compares the response, stripped of surrounding whitespace,
with the reversed word: reward 1.0 on an exact match, 0.0 otherwise.

An empty (or whitespace-only) response is *wrong* (reward 0.0), not unscorable: the verifier
can judge it, and a policy must not be able to dodge the penalty by writing nothing.
``Verdict.unscorable`` (reward ``None``) is kept for what cannot be judged: a task without a
gold answer.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np

from rewardgym import ConfigError, Task, TextEnv, Verdict, Verifier

__all__ = ["ReverseConfig", "ReverseEnv", "ReverseVerifier"]


@dataclass(frozen=True)
class ReverseConfig:
    """Params of ``example/reverse-v0``.

    min_length, max_length: the word has between min_length and max_length letters (inclusive).
    alphabet: the letters words are drawn from (at least two distinct characters).
    max_turns: 1 for single-turn; >1 lets the model retry after "incorrect, try again".
    """

    min_length: int = 3
    max_length: int = 8
    alphabet: str = string.ascii_lowercase
    max_turns: int = 1

    def __post_init__(self) -> None:
        if self.min_length < 1:
            raise ConfigError(f"reverse min_length must be >= 1, got {self.min_length}")
        if self.max_length < self.min_length:
            raise ConfigError(
                f"reverse max_length must be >= min_length ({self.min_length}), "
                f"got {self.max_length}"
            )
        if len(set(self.alphabet)) < 2 or any(c.isspace() for c in self.alphabet):
            raise ConfigError(
                "reverse alphabet must have at least two distinct non-whitespace characters, "
                f"got {self.alphabet!r}"
            )
        if self.max_turns < 1:
            raise ConfigError(f"reverse max_turns must be >= 1, got {self.max_turns}")


class ReverseVerifier(Verifier):
    """Exact match of the reversed word after stripping whitespace: reward 1.0 or 0.0."""

    def verify(self, response: str, task: Task) -> Verdict:
        if task.answer is None:
            return Verdict.unscorable("the task has no gold answer (the reversed word)")
        answer = response.strip()
        if not answer:
            return Verdict(0.0, correct=False, reason="empty response", extracted="")
        if answer == task.answer:
            return Verdict(1.0, correct=True, reason="correct", extracted=answer)
        shown = answer if len(answer) <= 40 else answer[:40] + "..."
        return Verdict(
            0.0, correct=False, reason=f"{shown!r} is not the reversed word", extracted=answer
        )


class ReverseEnv(TextEnv):
    """Reverse a random word; single-turn, or retry after feedback when max_turns > 1."""

    def __init__(self, config: ReverseConfig | None = None, *, render_mode: str | None = None):
        super().__init__(render_mode=render_mode)
        self.config = config or ReverseConfig()
        self.verifier = ReverseVerifier()
        self.max_turns = self.config.max_turns

    def sample_task(self, rng: np.random.Generator) -> Task:
        length = int(rng.integers(self.config.min_length, self.config.max_length + 1))
        letters = rng.integers(0, len(self.config.alphabet), size=length)
        word = "".join(self.config.alphabet[int(i)] for i in letters)
        return Task(
            prompt=f"Write the word '{word}' backwards. Reply with the reversed word only.",
            answer=word[::-1],
            id=f"reverse:{word}",
            metadata={"word": word},
        )
