"""A Gymnasium space of text that accepts any Unicode string.

Gymnasium's own :class:`gymnasium.spaces.Text` only holds strings over a finite character set,
so a model answer with an emoji or a NUL byte would fall outside it. :class:`TextSpace`
contains every ``str`` (and every :class:`~rewardgym.core.types.Completion`, the runner's
action type), optionally up to a maximum length. ``sample()`` draws hostile-looking strings
(control characters, far-away code points, long runs) so ``check_env`` exercises garbage actions.
"""

from __future__ import annotations

from typing import Any

from gymnasium import spaces

from rewardgym.core.types import Completion

__all__ = ["TextSpace"]

# Characters sampled from: printable ASCII, whitespace, controls, NUL, and non-ASCII planes.
_SAMPLE_POOLS: tuple[tuple[int, int], ...] = (
    (0x20, 0x7E),  # printable ASCII
    (0x00, 0x1F),  # control characters, NUL included
    (0xA0, 0x2FF),  # Latin-1 supplement and extensions
    (0x370, 0x3FF),  # Greek
    (0x4E00, 0x4FFF),  # CJK
    (0x1F300, 0x1F64F),  # emoji
)


class TextSpace(spaces.Space[str]):
    """Any Unicode string, optionally at most ``max_length`` characters long."""

    def __init__(self, max_length: int | None = None, *, seed: int | None = None) -> None:
        if max_length is not None and max_length < 0:
            raise ValueError(f"max_length must be >= 0 or None, got {max_length}")
        self.max_length = max_length
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def contains(self, x: Any) -> bool:
        if isinstance(x, Completion):
            x = x.text
        if not isinstance(x, str):
            return False
        return self.max_length is None or len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        """A random string of 0 to 64 characters drawn from mixed Unicode ranges."""
        if mask is not None or probability is not None:
            raise ValueError("TextSpace.sample() takes no mask or probability")
        rng = self.np_random
        upper = 64 if self.max_length is None else min(64, self.max_length)
        length = int(rng.integers(0, upper + 1))
        pools = rng.integers(0, len(_SAMPLE_POOLS), size=length)
        chars = []
        for p in pools:
            lo, hi = _SAMPLE_POOLS[int(p)]
            chars.append(chr(int(rng.integers(lo, hi + 1))))
        return "".join(chars)

    def __repr__(self) -> str:
        return f"TextSpace(max_length={self.max_length})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TextSpace) and other.max_length == self.max_length

    def __hash__(self) -> int:
        return hash(("TextSpace", self.max_length))

    def to_jsonable(self, sample_n: Any) -> list[str]:
        return [s.text if isinstance(s, Completion) else s for s in sample_n]

    def from_jsonable(self, sample_n: list[str]) -> list[str]:
        return list(sample_n)
