"""``TextEnv``: a Gymnasium environment whose observations and actions are text.

A subclass sets ``self.verifier`` and implements :meth:`TextEnv.sample_task`; the base class
runs the episode:

- ``reset(seed=, options=)`` seeds ``self.np_random`` (never global RNG), samples a
  :class:`~rewardgym.core.types.Task` (or takes ``options["task"]``), and returns
  ``(prompt, info)``.
- ``step(action)`` scores the action (a ``str`` or a :class:`~rewardgym.core.types.Completion`)
  with :meth:`TextEnv.score`. Single-turn envs (``max_turns == 1``) terminate after one step.
  Multi-turn envs terminate on a correct answer or after ``max_turns`` turns; until then the
  observation is the env's reply (:meth:`TextEnv.feedback`), which the runner appends to the
  conversation.

Rewards: Gymnasium needs a float, so an unscorable verdict (``reward=None``) is returned as
``0.0`` with ``info["scorable"] = False``; the verdict itself is in ``info["verdict"]``. The
runner reads the verdict and masks unscorable samples out of baselines; it never treats them as 0.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from rewardgym.core.errors import EnvError
from rewardgym.core.spaces import TextSpace
from rewardgym.core.types import Completion, Task, Verdict, as_completion
from rewardgym.core.verifier import Verifier

__all__ = ["FEEDBACK_STYLES", "TextEnv"]

FEEDBACK_STYLES = ("generic", "reason")


class TextEnv(gym.Env[str, str]):
    """Base class of every rewardgym environment.

    Subclasses must set:
        verifier: the :class:`~rewardgym.core.verifier.Verifier` that scores answers.
    and implement:
        sample_task(rng): draw one :class:`~rewardgym.core.types.Task` from ``rng``.
    They may set:
        max_turns: attempts per episode (1: single-turn; >1: retry with feedback).
        feedback_style: ``"generic"`` ("incorrect, try again") or ``"reason"`` (the verdict's
            reason is shown to the model).
    and override :meth:`score` (e.g. to add a format term), :meth:`feedback`,
    :meth:`solution` (the gold response used for SFT warm-up), or the per-budget reward hooks
    :meth:`forced_answer_suffix` and :meth:`score_forced_answer` (and the strings
    ``think_end``, ``truncation_marker``, ``answer_cue`` they use).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 1}

    verifier: Verifier
    max_turns: int = 1
    feedback_style: str = "generic"
    # Per-budget reward hooks (anytime reasoning): how a thinking trace is closed when the
    # model is made to answer at a budget. Defaults: the BRPO reference strings.
    think_end: str = "</think>"
    truncation_marker: str = "...\n\n...\n\n"
    answer_cue: str = "\n\n**Final Answer**\n"

    def __init__(self, *, render_mode: str | None = None) -> None:
        super().__init__()
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported by {type(self).__name__}; "
                f"choose one of {self.metadata['render_modes']} or None."
            )
        self.render_mode = render_mode
        self.observation_space = TextSpace()
        self.action_space = TextSpace()
        self.task: Task | None = None
        self.turn = 0
        self._episode_over = True
        self._transcript: list[tuple[str, str]] = []

    # -- what a subclass implements ----------------------------------------------------------
    def sample_task(self, rng: np.random.Generator) -> Task:
        """Draw one task using only ``rng`` (the env's seeded generator)."""
        raise NotImplementedError(f"{type(self).__name__} must implement sample_task(rng)")

    # -- what a subclass may override --------------------------------------------------------
    def score(self, completion: Completion, task: Task) -> Verdict:
        """Score one completion. Default: the env's verifier on the completion's text."""
        return self.verifier.verify(completion.text, task)

    def solution(self, task: Task) -> str | None:
        """A correct response to ``task``, written as the model should write it, or None when
        the env has none. SFT warm-up from the env (``algorithm.params.source=env``) trains on
        it. Default: the task's gold answer as it is; override to add the format the verifier
        expects (a ``\\boxed{}``, an ``Answer:`` line, tags)."""
        return task.answer

    def forced_answer_suffix(self, truncated: bool) -> str:
        """The text inserted after a thinking trace to make the model answer now (never
        trained on). A trace cut at a budget (``truncated``) gets the truncation marker, the
        end-of-thinking marker and the answer cue; a trace that ended by itself (it already
        ends with ``think_end``) gets the answer cue only."""
        if truncated:
            return f"{self.truncation_marker}{self.think_end}{self.answer_cue}"
        return self.answer_cue

    def score_forced_answer(self, trace: str, answer: str, task: Task) -> Verdict:
        """The reward of an answer forced at a budget. ``trace`` is the thinking text the
        answer was forced from, including the inserted suffix. Default: the format rule of
        BRPO (exactly one end-of-thinking marker in the trace; otherwise reward 0), then the
        env's :meth:`score` on the answer."""
        count = trace.count(self.think_end)
        if count != 1:
            return Verdict(
                reward=0.0, correct=False,
                reason=f"format: {count} end-of-thinking markers {self.think_end!r}, expected 1",
            )  # fmt: skip
        return self.score(Completion(answer), task)

    def feedback(self, verdict: Verdict, completion: Completion) -> str:
        """The env's reply after a wrong answer in a multi-turn episode."""
        if self.feedback_style == "reason" and verdict.reason:
            return f"Your answer is incorrect: {verdict.reason}. Please try again."
        return "Your answer is incorrect. Please try again."

    # -- the Gymnasium API -------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        task = (options or {}).get("task")
        if task is not None and not isinstance(task, Task):
            raise TypeError(f"options['task'] must be a rewardgym Task, got {type(task).__name__}")
        self.task = task if task is not None else self.sample_task(self.np_random)
        self.turn = 0
        self._episode_over = False
        self._transcript = [("prompt", self.task.prompt)]
        return self.task.prompt, {"task": self.task, "turn": 0}

    def check_can_step(self) -> None:
        """Raise :class:`EnvError` unless an episode is running (for subclasses' ``step``)."""
        if self.task is None or self._episode_over:
            raise EnvError(
                f"{type(self).__name__}.step() called "
                + ("before reset()" if self.task is None else "after the episode ended")
                + "; call reset() to start an episode."
            )

    def step(self, action: str | Completion) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self.check_can_step()
        completion = as_completion(action)
        verdict = self.score(completion, self.task)
        if not isinstance(verdict, Verdict):
            raise TypeError(
                f"{type(self).__name__}.score() must return a Verdict, got {type(verdict).__name__}"
            )
        self.turn += 1
        terminated = verdict.correct or self.turn >= self.max_turns
        observation = "" if terminated else self.feedback(verdict, completion)
        self._episode_over = terminated
        self._transcript.append(("model", completion.text))
        if observation:
            self._transcript.append(("env", observation))
        reward = 0.0 if verdict.reward is None else verdict.reward
        info = {
            "task": self.task,
            "turn": self.turn,
            "verdict": verdict,
            "scorable": verdict.scorable,
            "correct": verdict.correct,
        }
        return observation, reward, terminated, False, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return "\n".join(f"[{who}] {text}" for who, text in self._transcript)
