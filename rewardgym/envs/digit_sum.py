"""``rewardgym/digit_sum-v0``: sums of 10-12 digits with a running-sum scratchpad, a toy task
where longer thinking helps (for anytime reasoning: BRPO budgets, MRT episodes).

A task is a plain sum of one-digit numbers, ``"6+0+4+8+7+6+4="``. The gold response is a
scratchpad of running sums, a blank line after every ``chunk`` of them, then the env's
end-of-thinking marker, the answer cue and the sum::

    6,6,10,18

    25,31,35</think>

    **Final Answer**
    35

The answer can be read off a complete scratchpad; from a truncated one the model must add the
remaining digits itself, so accuracy rises with the thinking budget. A model fine-tuned only on
complete scratchpads answers almost never once its scratchpad is cut (the cut context is out of
distribution), so a share ``cut_prob`` of the gold responses (:meth:`DigitSumEnv.solution`) is
*truncated*: the scratchpad cut at a random character, then exactly the suffix the anytime
rollout inserts after a cut trace (``answer_forcing.suffix(truncated=True)``) and the correct
sum. The cut is drawn from the task's id, so a task always gives the same response.

Every paragraph after the first starts with a digit: with the ten digits as episode markers and
``min_gap`` 0 every paragraph is an MRT episode. Scoring is the arithmetic verifier (the last
``Answer: N``, else the last integer), exact match.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from rewardgym.core.env import TextEnv
from rewardgym.core.errors import ConfigError
from rewardgym.core.types import Task
from rewardgym.envs.arithmetic import ArithmeticVerifier

__all__ = ["DigitSumConfig", "DigitSumEnv"]


@dataclass
class DigitSumConfig:
    """Params of ``rewardgym/digit_sum-v0``.

    min_digits, max_digits: how many one-digit numbers a task sums (1 <= min <= max; each
        count equally likely).
    chunk: running sums per paragraph of the scratchpad (>= 1).
    cut_prob: share of the gold responses whose scratchpad is truncated before the answer
        (in [0, 1]).
    """

    min_digits: int = 10
    max_digits: int = 12
    chunk: int = 4
    cut_prob: float = 0.5

    def __post_init__(self) -> None:
        for name in ("min_digits", "max_digits", "chunk"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"digit_sum {name} must be an int >= 1, got {value!r}")
        if self.min_digits > self.max_digits:
            raise ConfigError(
                f"digit_sum min_digits ({self.min_digits}) must be <= max_digits "
                f"({self.max_digits}); swap them or raise max_digits."
            )
        p = self.cut_prob
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ConfigError(f"digit_sum cut_prob must be a number in [0, 1], got {p!r}")


class DigitSumEnv(TextEnv):
    """Sum 10-12 digits; single-turn; the gold response writes running sums first."""

    def __init__(self, config: DigitSumConfig | None = None, *, render_mode: str | None = None):
        super().__init__(render_mode=render_mode)
        self.config = config or DigitSumConfig()
        self.verifier = ArithmeticVerifier()

    def sample_task(self, rng: np.random.Generator) -> Task:
        c = self.config
        count = int(rng.integers(c.min_digits, c.max_digits + 1))
        digits = [int(d) for d in rng.integers(0, 10, size=count)]
        expression = "+".join(map(str, digits))
        return Task(
            prompt=f"{expression}=",
            answer=str(sum(digits)),
            id=f"digit_sum:{expression}",
            metadata={"digits": digits},
        )

    def scratchpad(self, task: Task) -> str:
        """The running sums, comma-separated, a blank line after every ``chunk`` of them."""
        sums, total = [], 0
        for digit in task.metadata["digits"]:
            total += int(digit)
            sums.append(str(total))
        k = self.config.chunk
        return "\n\n".join(",".join(sums[i : i + k]) for i in range(0, len(sums), k))

    def solution(self, task: Task) -> str:
        """The gold response: the whole scratchpad, the end-of-thinking marker, the answer cue
        and the sum; or (a share ``cut_prob``, decided by the task id) a prefix of the
        scratchpad, the truncated-trace suffix and the sum."""
        pad = self.scratchpad(task)
        rng = np.random.default_rng(zlib.crc32(task.id.encode()))
        if rng.random() < self.config.cut_prob:
            cut = int(rng.integers(0, len(pad)))
            return f"{pad[:cut]}{self.answer_forcing.suffix(True)}{task.answer}"
        forcing = self.answer_forcing
        return f"{pad}{forcing.think_end}{forcing.suffix(False)}{task.answer}"
