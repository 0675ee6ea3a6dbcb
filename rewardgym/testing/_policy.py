"""A policy that replays fixed completions, and a loop that plays one episode with any policy.

:class:`ScriptedPolicy` stands in for a model in tests: it answers each observation with the
next scripted completion, so an env's rewards, feedback and episode ends can be pinned exactly.
:func:`run_episode` plays one episode of an env with a policy and returns an :class:`Episode`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rewardgym.core.errors import CheckError, UnknownNameError, did_you_mean
from rewardgym.core.types import Completion, Verdict, as_completion
from rewardgym.testing._report import shorten

__all__ = ["Episode", "ScriptedPolicy", "run_episode"]


def _script(items: Any, where: str) -> tuple[Completion, ...]:
    """Validate one list of completions: a non-empty sequence of ``str`` / ``Completion``."""
    if isinstance(items, (str, Completion)) or not isinstance(items, Sequence):
        raise TypeError(
            f"ScriptedPolicy needs a list of completions{where}, got {type(items).__name__} "
            f"{shorten(items)}; wrap a single completion in a list: [{shorten(items)}]."
        )
    if not items:
        raise ValueError(f"ScriptedPolicy got an empty list of completions{where}.")
    for i, item in enumerate(items):
        if not isinstance(item, (str, Completion)):
            raise TypeError(
                f"ScriptedPolicy completion {i}{where} is {type(item).__name__}; "
                "expected a str or a rewardgym Completion."
            )
    return tuple(as_completion(item) for item in items)


class ScriptedPolicy:
    """Replays fixed completions, in place of a model.

    - ``ScriptedPolicy(["a", "b"])``: a list is replayed in order across calls (and episodes):
      the first call answers "a", the second "b", whatever the observation.
    - ``ScriptedPolicy({prompt: ["a", "b"], ...})``: a mapping scripts one episode per prompt.
      An observation that is one of the prompts starts that prompt's script at its first
      completion; every later observation that is not a prompt (the env's feedback in a
      multi-turn episode) gets that script's next completion. Follow-up turns are therefore
      keyed by position within the episode, not by the feedback text. An observation that is
      neither a prompt nor a follow-up of one raises :class:`~rewardgym.UnknownNameError`.

    Running past the end of a list raises :class:`~rewardgym.CheckError` (in a test, the env
    asked for more turns than the test expected), unless ``cycle=True``, which starts the list
    again. :meth:`reset` rewinds everything. ``calls`` records ``(observation, completion)``
    for every call since the last reset.
    """

    def __init__(
        self,
        completions: Sequence[str | Completion] | Mapping[str, Sequence[str | Completion]],
        *,
        cycle: bool = False,
    ) -> None:
        self.cycle = bool(cycle)
        if isinstance(completions, Mapping):
            if not completions:
                raise ValueError("ScriptedPolicy got an empty mapping of prompts.")
            for prompt in completions:
                if not isinstance(prompt, str):
                    raise TypeError(
                        f"ScriptedPolicy prompts must be str, got {type(prompt).__name__} "
                        f"{shorten(prompt)}."
                    )
            self._by_prompt: dict[str, tuple[Completion, ...]] | None = {
                p: _script(c, f" for prompt {shorten(p)}") for p, c in completions.items()
            }
            self._list: tuple[Completion, ...] = ()
        else:
            self._by_prompt = None
            self._list = _script(completions, "")
        self.reset()

    def reset(self) -> None:
        """Rewind to the first completion and forget the current episode and the calls."""
        self._next = 0
        self._prompt: str | None = None
        self.calls: list[tuple[str, Completion]] = []

    def __call__(self, observation: str) -> Completion:
        if self._by_prompt is None:
            completion = self._take(self._list, "", observation)
        else:
            completion = self._from_mapping(self._by_prompt, observation)
        self.calls.append((observation, completion))
        return completion

    def _from_mapping(
        self, by_prompt: dict[str, tuple[Completion, ...]], observation: str
    ) -> Completion:
        if observation in by_prompt:
            self._prompt, self._next = observation, 0
        elif self._prompt is None:
            raise UnknownNameError(
                f"ScriptedPolicy has no completions for the prompt {shorten(observation)}."
                + (
                    did_you_mean(observation, by_prompt)
                    or f" It scripts {len(by_prompt)} prompt(s): "
                    + ", ".join(shorten(p, 40) for p in list(by_prompt)[:5])
                )
            )
        where = f" for the prompt {shorten(self._prompt)}"
        hint = f" If {shorten(observation)} is the prompt of a new episode, add it to the mapping."
        return self._take(by_prompt[self._prompt], where, observation, hint)

    def _take(
        self, script: tuple[Completion, ...], where: str, observation: str, hint: str = ""
    ) -> Completion:
        if self._next >= len(script):
            if not self.cycle:
                raise CheckError(
                    f"ScriptedPolicy ran out of completions{where}: it scripts {len(script)} "
                    f"and was asked for completion {self._next + 1} (observation "
                    f"{shorten(observation)}). Script more completions, or pass cycle=True to "
                    f"start again from the first.{hint}"
                )
            self._next = 0
        completion = script[self._next]
        self._next += 1
        return completion

    def __repr__(self) -> str:
        size = len(self._list) if self._by_prompt is None else f"{len(self._by_prompt)} prompts"
        return f"ScriptedPolicy({size}, cycle={self.cycle})"


@dataclass(frozen=True)
class Episode:
    """One played episode. ``actions``, ``observations`` (what each step returned: the env's
    reply, ``""`` once the episode ended), ``rewards`` and ``verdicts`` have one entry per step;
    the first observation is ``prompt``."""

    prompt: str
    actions: tuple[Completion, ...]
    observations: tuple[str, ...]
    rewards: tuple[float, ...]
    verdicts: tuple[Verdict, ...]
    terminated: bool
    truncated: bool

    @property
    def total_reward(self) -> float:
        """The sum of the step rewards."""
        return float(sum(self.rewards))

    @property
    def correct(self) -> bool:
        """Whether the last verdict is correct."""
        return bool(self.verdicts) and self.verdicts[-1].correct

    def __len__(self) -> int:
        return len(self.actions)


def run_episode(
    env: Any,
    policy: Callable[[str], str | Completion],
    *,
    seed: int | None = None,
    options: Mapping[str, Any] | None = None,
    max_steps: int = 100,
) -> Episode:
    """Reset ``env`` and step it with ``policy(observation)`` until the episode ends.

    Raises :class:`~rewardgym.CheckError` if it has not ended after ``max_steps`` steps, or if a
    step's ``info`` carries no ``"verdict"``.
    """
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"run_episode(max_steps=...) must be an int >= 1, got {max_steps!r}")
    observation, _ = env.reset(seed=seed, options=dict(options) if options is not None else None)
    prompt = observation
    actions, observations, rewards, verdicts = [], [], [], []
    terminated = truncated = False
    while not (terminated or truncated):
        if len(actions) == max_steps:
            raise CheckError(
                f"The episode did not end within max_steps={max_steps} steps (prompt "
                f"{shorten(prompt)}); the env never returned terminated or truncated."
            )
        action = policy(observation)
        if not isinstance(action, (str, Completion)):
            raise TypeError(
                f"The policy returned {type(action).__name__}; expected a str or a Completion."
            )
        action = as_completion(action)
        observation, reward, terminated, truncated, info = env.step(action)
        verdict = info.get("verdict") if isinstance(info, dict) else None
        if not isinstance(verdict, Verdict):
            raise CheckError(
                f"step {len(actions) + 1} returned info without a Verdict under 'verdict' "
                f"(got {type(verdict).__name__}); rewardgym envs put the verifier's verdict there."
            )
        actions.append(action)
        observations.append(observation)
        rewards.append(float(reward))
        verdicts.append(verdict)
    return Episode(
        prompt,
        tuple(actions),
        tuple(observations),
        tuple(rewards),
        tuple(verdicts),
        bool(terminated),
        bool(truncated),
    )
