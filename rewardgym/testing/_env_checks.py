"""``check_env``: the checks every rewardgym environment should pass, for plugin authors' CI.

Each check is a small function of an :class:`_EnvContext`, run in this order (the first needs an
env that has not been reset yet):

- ``step_before_reset``: ``step()`` before ``reset()`` raises :class:`~rewardgym.EnvError`
  (on ``env.unwrapped``).
- ``spaces``: observation and action spaces contain any ``str`` (a :class:`~rewardgym.TextSpace`).
- ``gymnasium_check_env``: Gymnasium's own checker passes on ``env.unwrapped``; its warnings are
  quoted in the message but do not fail the check.
- ``seeded_determinism``: the same seed gives the same prompt and task, different seeds do not
  all give the same task, and ``reset`` leaves the global ``random``/``numpy.random`` state alone.
- ``garbage_actions``: random text and :data:`~rewardgym.testing.HOSTILE_RESPONSES` are scored, not
  crashed on: ``step`` returns a finite float reward and ``info["verdict"]`` is a Verdict.
- ``finite_rewards``: plausible play (a wrong answer, the gold answer) gives finite float rewards.
- ``episodes_end``: every such episode terminates or truncates within ``max_turns`` steps.

Everything runs in this process: a check that hangs the env hangs the checker.
"""

from __future__ import annotations

import math
import random
import re
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any

import gymnasium as gym
import numpy as np

from rewardgym.core.env import TextEnv
from rewardgym.core.errors import EnvError
from rewardgym.core.make import make
from rewardgym.core.types import Verdict
from rewardgym.testing._hostile import HOSTILE_RESPONSES
from rewardgym.testing._report import (
    CheckFailed,
    CheckReport,
    describe_exception,
    plural,
    run_checks,
    shorten,
)

__all__ = ["ENV_CHECKS", "check_env"]

# Episode length cap for envs that declare no ``max_turns``.
DEFAULT_STEP_CAP = 100
# Resets with distinct seeds used to show that tasks vary with the seed.
DISTINCT_SEEDS = 8
# A plainly wrong answer used to play through multi-turn episodes.
WRONG_ANSWER = "I am not sure."
# How many problems a failing check quotes.
SHOW = 3


@dataclass
class _EnvContext:
    env: Any
    seed: int
    episodes: int
    garbage_actions: int

    @property
    def base(self) -> Any:
        return self.env.unwrapped

    @property
    def step_cap(self) -> int:
        turns = getattr(self.base, "max_turns", None)
        return turns if isinstance(turns, int) and turns >= 1 else DEFAULT_STEP_CAP


def check_env(
    env: TextEnv | str,
    *,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    episodes: int = 5,
    garbage_actions: int = 20,
    raise_on_failure: bool = True,
) -> CheckReport:
    """Run every environment check and return the report.

    ``env`` is an environment that has not been reset yet, or a registered id (built with
    ``rewardgym.make(id, **params)`` and closed afterwards). ``garbage_actions`` random strings
    are stepped with, on top of every hostile response. With ``raise_on_failure`` (the default)
    a failed check raises :class:`~rewardgym.CheckError` listing every failure.
    """
    for name, value, low in (("episodes", episodes, 1), ("garbage_actions", garbage_actions, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"check_env({name}=...) must be an int >= {low}, got {value!r}")
    owned = isinstance(env, str)
    if owned:
        target, env = f"environment '{env}'", make(env, **dict(params or {}))
    else:
        if not isinstance(env, gym.Env):
            raise TypeError(
                f"check_env needs an environment id or a rewardgym TextEnv (possibly wrapped), "
                f"got {type(env).__name__}."
            )
        if params:
            raise TypeError(
                "check_env(params=...) only applies when env is an id; got an env instance "
                f"({type(env).__name__}) and params {sorted(params)}. Build the env with them."
            )
        target = f"environment {type(env.unwrapped).__name__}"
    context = _EnvContext(env, seed, episodes, garbage_actions)
    try:
        return run_checks(target, ENV_CHECKS, context, raise_on_failure=raise_on_failure)
    finally:
        if owned:
            env.close()


# -- the checks ---------------------------------------------------------------------------------
def check_step_before_reset(ctx: _EnvContext) -> str:
    if getattr(ctx.base, "task", None) is not None:
        raise CheckFailed(
            "the env had already been reset when check_env got it; pass a fresh env or an id"
        )
    try:
        ctx.base.step("Answer: 0")  # unwrapped: Gymnasium's OrderEnforcing would answer first
    except EnvError as exc:
        return f"raised EnvError: {exc}"
    except Exception as exc:
        raise CheckFailed(
            f"step() before reset() raised {describe_exception(exc)}; expected an EnvError"
        ) from None
    raise CheckFailed("step() before reset() returned normally; expected an EnvError")


def check_spaces(ctx: _EnvContext) -> str:
    samples = ("", "Answer: 42", "\x00\U0001f600\u202e", "x" * 100_000)
    for which in ("observation_space", "action_space"):
        space = getattr(ctx.env, which, None)
        if space is None:
            raise CheckFailed(f"the env has no {which}")
        refused = [s for s in samples if not space.contains(s)]
        if refused:
            raise CheckFailed(
                f"{which} {space!r} does not contain {shorten(refused[0])}; text envs need a "
                "space of any str (rewardgym.TextSpace())"
            )
    return "observation and action spaces contain any str"


def check_gymnasium(ctx: _EnvContext) -> str:
    from gymnasium.utils.env_checker import check_env as gymnasium_check_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gymnasium_check_env(ctx.base, skip_render_check=False)
    found = sorted({_plain(str(w.message)) for w in caught})
    if not found:
        return "passed without warnings"
    return f"passed with {len(found)} warning(s): " + " | ".join(found)


def check_seeded_determinism(ctx: _EnvContext) -> str:
    env = ctx.env
    before = _global_rng_state()
    first_prompt, first = env.reset(seed=ctx.seed)
    again_prompt, again = env.reset(seed=ctx.seed)
    if first_prompt != again_prompt or first.get("task") != again.get("task"):
        raise CheckFailed(
            f"reset(seed={ctx.seed}) twice gave different tasks: {shorten(first_prompt)} then "
            f"{shorten(again_prompt)}; sample tasks from self.np_random, not global random"
        )
    if _global_rng_state() != before:
        raise CheckFailed(
            "reset() changed the global random / numpy.random state; draw from self.np_random"
        )
    seen = set()
    for s in range(ctx.seed, ctx.seed + DISTINCT_SEEDS):
        prompt, info = env.reset(seed=s)
        seen.add((prompt, repr(info.get("task"))))
    if len(seen) == 1:
        raise CheckFailed(
            f"{DISTINCT_SEEDS} different seeds all gave the same task {shorten(first_prompt)}; "
            "the seed must reach the task sampler"
        )
    return f"same seed -> same task; {DISTINCT_SEEDS} seeds -> {len(seen)} distinct tasks"


def check_garbage_actions(ctx: _EnvContext) -> str:
    ctx.env.action_space.seed(ctx.seed)
    actions = [ctx.env.action_space.sample() for _ in range(ctx.garbage_actions)]
    actions += HOSTILE_RESPONSES
    problems, slowest = [], (0.0, "")
    for i, action in enumerate(actions):
        ctx.env.reset(seed=ctx.seed + i)
        start = time.perf_counter()
        try:
            _, reward, _, _, info = ctx.env.step(action)
        except Exception as exc:
            problems.append(f"{shorten(action)} raised {describe_exception(exc)}")
            continue
        slowest = max(slowest, (time.perf_counter() - start, shorten(action, 30)))
        problem = _reward_problem(reward) or _verdict_problem(info)
        if problem:
            problems.append(f"{shorten(action)}: {problem}")
    if problems:
        raise CheckFailed(_summary(problems, len(actions), "garbage actions"))
    return f"{len(actions)} garbage actions scored; slowest step {slowest[0]:.3f} s ({slowest[1]})"


def check_finite_rewards(ctx: _EnvContext) -> str:
    problems, count = [], 0
    for label, steps in _play(ctx):
        for n, step in enumerate(steps, 1):
            count += 1
            problem = _reward_problem(step[1]) or _verdict_problem(step[4])
            if problem:
                problems.append(f"{label}, step {n}: {problem}")
    if problems:
        raise CheckFailed(_summary(problems, count, "steps"))
    return (
        f"{plural(count, 'step')} over {plural(ctx.episodes, 'episode')}, all rewards finite floats"
    )


def check_episodes_end(ctx: _EnvContext) -> str:
    cap, longest, unfinished = ctx.step_cap, 0, []
    for label, steps in _play(ctx):
        longest = max(longest, len(steps))
        if not (steps[-1][2] or steps[-1][3]):
            unfinished.append(label)
    if unfinished:
        raise CheckFailed(
            f"{len(unfinished)} of {ctx.episodes} episodes neither terminated nor truncated "
            f"within {plural(cap, 'step')} (max_turns={getattr(ctx.base, 'max_turns', None)!r}): "
            + ", ".join(unfinished[:SHOW])
        )
    return (
        f"{plural(ctx.episodes, 'episode')} ended within {plural(cap, 'step')} (longest: {longest})"
    )


ENV_CHECKS: tuple[tuple[str, Callable[[_EnvContext], str]], ...] = (
    ("step_before_reset", check_step_before_reset),
    ("spaces", check_spaces),
    ("gymnasium_check_env", check_gymnasium),
    ("seeded_determinism", check_seeded_determinism),
    ("garbage_actions", check_garbage_actions),
    ("finite_rewards", check_finite_rewards),
    ("episodes_end", check_episodes_end),
)


# -- helpers ------------------------------------------------------------------------------------
def _play(ctx: _EnvContext) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """Play ``ctx.episodes`` episodes up to the step cap, alternating a wrong answer and the
    gold answer (when the task has one); yield ``(label, step results)`` per episode."""
    for i in range(ctx.episodes):
        _, info = ctx.env.reset(seed=ctx.seed + i)
        gold = getattr(info.get("task"), "answer", None)
        use_gold = i % 2 == 1 and gold is not None
        action = f"Answer: {gold}" if use_gold else WRONG_ANSWER
        steps = []
        for _ in range(ctx.step_cap):
            steps.append(ctx.env.step(action))
            if steps[-1][2] or steps[-1][3]:
                break
        yield f"episode {i} ({'gold' if use_gold else 'wrong'} answer)", steps


def _global_rng_state() -> tuple[Any, ...]:
    _, keys, pos, *_ = np.random.get_state()
    return random.getstate(), keys.tobytes(), pos


def _reward_problem(reward: Any) -> str:
    if isinstance(reward, bool) or not isinstance(reward, Real):
        return f"reward is {type(reward).__name__} {reward!r}, expected a float"
    if not math.isfinite(float(reward)):
        return f"reward is {reward!r}, expected a finite float"
    return ""


def _verdict_problem(info: Any) -> str:
    verdict = info.get("verdict") if isinstance(info, dict) else None
    if not isinstance(verdict, Verdict):
        return f"info['verdict'] is {type(verdict).__name__}, expected a rewardgym Verdict"
    return ""


def _summary(problems: list[str], total: int, what: str) -> str:
    shown = "; ".join(problems[:SHOW])
    more = f" (+{len(problems) - SHOW} more)" if len(problems) > SHOW else ""
    return f"{len(problems)} of {total} {what} failed: {shown}{more}"


def _plain(text: str) -> str:
    """Strip the ANSI colour codes Gymnasium puts around its warnings."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text).removeprefix("WARN: ").strip()
