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
from rewardgym.core.forcing import AnswerForcing
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
        answer_forcing: an :class:`~rewardgym.core.forcing.AnswerForcing`: how the model is
            made to answer at a cut of its thinking trace, and how that answer is scored.
        reply_role: who speaks the env's replies in a multi-turn episode, for models that read
            prompts through a chat template: ``"user"`` (feedback, a new question) or
            ``"tool"`` (the output of a tool the model called); see :attr:`reply_role`.
    and override :meth:`score` (e.g. to add a format term), :meth:`feedback` or
    :meth:`solution` (the gold response used for SFT warm-up).

    Scoring through worker processes: an env whose verifier must run in a
    :class:`~rewardgym.core.verify.VerifierPool` (time and memory limits) asks for it with
    :meth:`verifier_pool`; whoever builds the env may hand it the pool to use
    (:meth:`use_verifier_pool`, or ``rewardgym.make(id, verifier_pool=pool)``).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 1}

    verifier: Verifier
    max_turns: int = 1
    feedback_style: str = "generic"
    # How the model is made to answer at a cut of its thinking (budgets, episodes, budget
    # evaluation), and how that answer is scored: see rewardgym.core.forcing.
    answer_forcing: ClassVar[AnswerForcing] = AnswerForcing()
    # The role of the env's replies in the chat template's conversation: "user" (a new user
    # turn) or "tool" (a tool's output). A template without a tool role gets "user" turns
    # instead (rewardgym.strategies.prompts). Without a chat template it changes nothing.
    reply_role: str = "user"

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
        self._verifier_pool: Any = None

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

    def use_verifier_pool(self, pool: Any) -> None:
        """Score through ``pool`` from now on: a :class:`~rewardgym.core.verify.VerifierPool`
        or any object with its ``verify`` / ``verify_batch`` / ``start`` / ``closed`` API (the
        runner passes the run's pool, e.g. one on Ray workers). None: back to the default."""
        self._verifier_pool = pool

    def verifier_pool(
        self, *, workers: int = 2, timeout: float = 5.0, memory_mb: int | None = 2048
    ) -> Any:
        """The pool this env scores with: the one given to :meth:`use_verifier_pool` (while it
        is open), else the process-wide pool with these settings
        (:func:`~rewardgym.core.verify.shared_pool`, shared by every env that asks for the same
        settings)."""
        pool = self._verifier_pool
        if pool is not None and not pool.closed:
            return pool
        from rewardgym.core.verify import shared_pool

        return shared_pool(workers=workers, timeout=timeout, memory_mb=memory_mb)

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
