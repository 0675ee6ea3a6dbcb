"""Wrappers for text environments: token budgets per turn and per episode.

:class:`TokenBudget` counts the tokens of every action: the length of ``Completion.token_ids``
when the runner supplies them (exact, token-in/token-out), otherwise the number of characters
of the text (exact for character-level tokenizers, an upper-bound proxy otherwise).

- ``per_turn``: an action longer than this is cut to the limit before the env scores it.
- ``per_episode``: the tokens of all turns together; an action that would exceed what remains is
  cut to what remains, and once the budget is spent the episode ends with ``truncated=True``.

Every ``reset`` and ``step`` reports ``info["budget"]``: tokens used, tokens remaining, and
``max_new_tokens`` for the next turn, which the runner passes to the engine so that cutting is
the exception, not the rule. ``info["budget_cut"]`` is ``True`` when an action was cut.
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym

from rewardgym.core.errors import ConfigError, EnvError
from rewardgym.core.types import Completion, as_completion

__all__ = ["TokenBudget", "count_tokens"]


class _Decoder(Protocol):
    def decode(self, token_ids: list[int]) -> str: ...


def count_tokens(completion: Completion) -> int:
    """Token ids when present, else characters."""
    return len(completion.token_ids) if completion.token_ids is not None else len(completion.text)


class TokenBudget(gym.Wrapper):
    """Limit the tokens a model may spend per turn and per episode."""

    def __init__(
        self,
        env: gym.Env,
        *,
        per_turn: int | None = None,
        per_episode: int | None = None,
        tokenizer: _Decoder | None = None,
    ) -> None:
        for name, value in (("per_turn", per_turn), ("per_episode", per_episode)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(
                    f"TokenBudget {name} must be a positive int or None, got {value!r}"
                )
        if per_turn is None and per_episode is None:
            raise ConfigError("TokenBudget needs per_turn, per_episode, or both.")
        super().__init__(env)
        self.per_turn, self.per_episode, self.tokenizer = per_turn, per_episode, tokenizer
        self.used = 0

    def _limit(self) -> int | None:
        limits = [x for x in (self.per_turn,) if x is not None]
        if self.per_episode is not None:
            limits.append(max(self.per_episode - self.used, 0))
        return min(limits) if limits else None

    def _budget_info(self) -> dict[str, Any]:
        remaining = None if self.per_episode is None else max(self.per_episode - self.used, 0)
        return {"used": self.used, "remaining": remaining, "max_new_tokens": self._limit()}

    def _cut(self, completion: Completion, limit: int) -> Completion:
        if completion.token_ids is None:
            return Completion(text=completion.text[:limit])
        if self.tokenizer is None:
            raise EnvError(
                f"A completion of {len(completion.token_ids)} token ids exceeds the budget of "
                f"{limit}, and TokenBudget has no tokenizer to cut its text with. Pass "
                "tokenizer=<an object with decode(ids)> to TokenBudget, or have the engine stop at "
                "info['budget']['max_new_tokens']."
            )
        ids = list(completion.token_ids[:limit])
        logprobs = None if completion.logprobs is None else completion.logprobs[:limit]
        return Completion(text=self.tokenizer.decode(ids), token_ids=tuple(ids), logprobs=logprobs)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.used = 0
        obs, info = self.env.reset(**kwargs)
        info["budget"] = self._budget_info()
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        completion = as_completion(action)
        limit = self._limit()
        cut = limit is not None and count_tokens(completion) > limit
        if cut:
            completion = self._cut(completion, limit)
        self.used += count_tokens(completion)
        obs, reward, terminated, truncated, info = self.env.step(completion)
        spent = self.per_episode is not None and self.used >= self.per_episode
        truncated = bool(truncated or (spent and not terminated))
        info["budget"] = self._budget_info()
        info["budget_cut"] = cut
        return obs, reward, terminated, truncated, info
