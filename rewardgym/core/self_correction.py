"""Self-correction (RISE-style) around any single-turn environment: :class:`SelfCorrection`.

On a wrong answer the environment replies with feedback and the model tries again, up to
``max_turns`` turns; a correct answer ends the episode at once. Feedback is ``"generic"``
("Your answer is incorrect. Please try again.") or ``"reason"`` (the verifier's reason for the
verdict). Each turn is scored by the inner environment's :meth:`~rewardgym.TextEnv.score`, so
the reward, the verifier and any format terms are exactly those of the single-turn env.

``info`` of every step adds to the usual keys (``verdict``, ``correct``, ``scorable``, ``turn``,
``task``):

- ``turn_rewards``: the reward of each turn so far (``None`` for a turn that could not be scored);
- ``turn_answers``: the answer the verifier read in each turn (``Verdict.extracted``, or ``None``);
- ``majority_answer``: the answer given in most turns so far (exact match of
  ``Verdict.extracted``; turns without one do not vote); a tie goes to the answer given most
  recently; ``None`` when no turn gave an answer. On the last step it is the episode's vote;
  it is there on every step so that an episode cut short from outside (a token budget) has one;
- ``majority_correct``: whether that answer is correct, as judged in the latest turn that gave it.

The step reward is the reward of that turn, so an episode's return is the sum of its turn
rewards; ``info["turn_rewards"][-1]`` is the final answer's reward.

The inner environment is any :class:`~rewardgym.TextEnv` with ``max_turns == 1``, possibly
wrapped; it poses the task (``reset`` with the same seed and options) and scores it. Wrappers
around the inner env are bypassed when scoring (the unwrapped env's ``score`` is called), so put
wrappers such as :class:`~rewardgym.TokenBudget` around the ``SelfCorrection`` instead. A
verifier pool given to the ``SelfCorrection`` (``rewardgym.make(id, verifier_pool=pool)``) is
handed on to the inner env.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from rewardgym.core.env import FEEDBACK_STYLES, TextEnv
from rewardgym.core.errors import ConfigError, EnvError, UnknownNameError
from rewardgym.core.types import Completion, Task, Verdict

__all__ = ["SelfCorrection", "SelfCorrectionConfig", "majority_vote", "make_self_correction"]

SELF_CORRECTION_ID = "rewardgym/self_correct-v0"


def majority_vote(verdicts: Sequence[Verdict]) -> tuple[str | None, bool]:
    """``(answer, correct)``: the ``extracted`` answer of most verdicts, ties to the one given
    last, and the ``correct`` flag of the latest verdict with that answer; ``(None, False)``
    when no verdict has an extracted answer."""
    counts: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, verdict in enumerate(verdicts):
        if verdict.extracted is not None:
            counts[verdict.extracted] = counts.get(verdict.extracted, 0) + 1
            last[verdict.extracted] = i
    if not counts:
        return None, False
    answer = max(counts, key=lambda a: (counts[a], last[a]))
    return answer, verdicts[last[answer]].correct


class SelfCorrection(TextEnv):
    """Up to ``max_turns`` attempts at the inner env's task, with feedback after each wrong one.

    The inner env is kept as ``self.inner``.

    Args:
        env: a single-turn :class:`~rewardgym.TextEnv` (``max_turns == 1``), possibly wrapped.
        max_turns: attempts per episode (>= 1).
        feedback: ``"generic"`` or ``"reason"`` (the verifier's reason is shown).
        render_mode: ``"ansi"`` renders the whole conversation, or ``None``.
    """

    def __init__(
        self,
        env: gym.Env,
        *,
        max_turns: int = 3,
        feedback: str = "generic",
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode)
        base = getattr(env, "unwrapped", None)
        if not isinstance(base, TextEnv):
            raise TypeError(
                f"SelfCorrection wraps a rewardgym TextEnv (possibly wrapped), got "
                f"{type(env).__name__}."
            )
        if base.max_turns != 1:
            raise ConfigError(
                f"SelfCorrection wraps single-turn envs, but {type(base).__name__} has "
                f"max_turns={base.max_turns}; build it with max_turns=1 (SelfCorrection does the "
                "retrying)."
            )
        _check_turns_and_feedback(max_turns, feedback)
        self.inner = env
        self.verifier = base.verifier
        self.max_turns = max_turns
        self.feedback_style = feedback
        self._verdicts: list[Verdict] = []

    def sample_task(self, rng: np.random.Generator) -> Task:
        return self.inner.unwrapped.sample_task(rng)

    def score(self, completion: Completion, task: Task) -> Verdict:
        return self.inner.unwrapped.score(completion, task)

    def solution(self, task: Task) -> str | None:
        return self.inner.unwrapped.solution(task)

    def use_verifier_pool(self, pool: Any) -> None:
        """Score through ``pool``: handed on to the inner env, which scores every turn."""
        super().use_verifier_pool(pool)
        self.inner.unwrapped.use_verifier_pool(pool)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        prompt, inner_info = self.inner.reset(seed=seed, options=options)
        task = inner_info.get("task")
        if not isinstance(task, Task):
            raise EnvError(
                f"The inner env {type(self.inner.unwrapped).__name__} returned no Task in "
                "info['task'] from reset(); SelfCorrection needs it to score every turn."
            )
        _, info = super().reset(seed=seed, options={"task": task})
        self._transcript[0] = ("prompt", prompt)
        self._verdicts = []
        return prompt, {**inner_info, **info, "turn_rewards": [], "turn_answers": []}

    def step(self, action: str | Completion) -> tuple[str, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = super().step(action)
        self._verdicts.append(info["verdict"])
        info["turn_rewards"] = [v.reward for v in self._verdicts]
        info["turn_answers"] = [v.extracted for v in self._verdicts]
        info["majority_answer"], info["majority_correct"] = majority_vote(self._verdicts)
        return observation, reward, terminated, truncated, info

    def close(self) -> None:
        self.inner.close()
        super().close()


def _check_turns_and_feedback(max_turns: Any, feedback: Any) -> None:
    if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
        raise ConfigError(f"self-correction max_turns must be an int >= 1, got {max_turns!r}")
    if feedback not in FEEDBACK_STYLES:
        raise ConfigError(
            f"self-correction feedback must be one of {FEEDBACK_STYLES}, got {feedback!r}"
        )


@dataclass
class SelfCorrectionConfig:
    """Params of ``rewardgym/self_correct-v0``.

    env_id: the single-turn environment to wrap (any registered id).
    env_params: its params, validated against its own config when this config is built (and
        filled in with its defaults).
    max_turns: attempts per episode.
    feedback: "generic" ("incorrect, try again") or "reason" (the verifier's reason).
    """

    env_id: str = "rewardgym/arithmetic-v0"
    env_params: dict[str, Any] = field(default_factory=dict)
    max_turns: int = 3
    feedback: str = "generic"

    def __post_init__(self) -> None:
        from rewardgym.core.config import to_dict
        from rewardgym.core.registry import ENVS

        _check_turns_and_feedback(self.max_turns, self.feedback)
        if self.env_id == SELF_CORRECTION_ID:
            raise ConfigError(
                f"self-correction env_id cannot be '{SELF_CORRECTION_ID}' itself; name the "
                "single-turn env to wrap, e.g. 'rewardgym/arithmetic-v0'."
            )
        try:
            inner = ENVS.make_config(self.env_id, self.env_params)
        except UnknownNameError as exc:
            raise ConfigError(f"self-correction env_id: {exc}") from exc
        if getattr(inner, "max_turns", 1) != 1:
            raise ConfigError(
                f"self-correction wraps single-turn envs; env_params sets max_turns="
                f"{inner.max_turns!r} for '{self.env_id}'. Remove it: max_turns of the "
                "self-correction env sets the attempts."
            )
        self.env_params = {} if inner is None else to_dict(inner)


def make_self_correction(config: SelfCorrectionConfig | None = None) -> SelfCorrection:
    """The entry point of ``rewardgym/self_correct-v0``: make the inner env, wrap it."""
    from rewardgym.core.make import make

    config = config or SelfCorrectionConfig()
    inner = make(config.env_id, **config.env_params)
    return SelfCorrection(inner, max_turns=config.max_turns, feedback=config.feedback)
