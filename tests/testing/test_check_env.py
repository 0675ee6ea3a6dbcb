"""check_env passes on the built-in env (single- and multi-turn) and names the failed checks on
deliberately broken envs."""

from __future__ import annotations

import random
import re

import gymnasium
import numpy as np
import pytest

import rewardgym
from rewardgym.core.env import TextEnv
from rewardgym.core.errors import CheckError
from rewardgym.core.types import Task, Verdict
from rewardgym.core.verifier import Verifier
from rewardgym.core.wrappers import TokenBudget
from rewardgym.testing import HOSTILE_RESPONSES, CheckReport, CheckResult, check_env

ALL_CHECKS = (
    "step_before_reset",
    "spaces",
    "gymnasium_check_env",
    "seeded_determinism",
    "garbage_actions",
    "finite_rewards",
    "episodes_end",
)


class ExactVerifier(Verifier):
    def verify(self, response: str, task: Task) -> Verdict:
        correct = response.strip().removeprefix("Answer: ") == task.answer
        return Verdict(1.0 if correct else 0.0, correct=correct)


class GoodEnv(TextEnv):
    """A minimal correct env: "what is a + 1?"."""

    def __init__(self, max_turns: int = 1) -> None:
        super().__init__()
        self.verifier, self.max_turns = ExactVerifier(), max_turns

    def sample_task(self, rng: np.random.Generator) -> Task:
        a = int(rng.integers(0, 1000))
        return Task(f"What is {a} + 1?", answer=str(a + 1))


class GlobalRandomEnv(GoodEnv):
    """Broken: samples from the global random module, so the seed does nothing."""

    def sample_task(self, rng: np.random.Generator) -> Task:
        a = random.randrange(10**9)
        return Task(f"What is {a} + 1?", answer=str(a + 1))


class GlobalSeedingEnv(GoodEnv):
    """Broken: deterministic, but by seeding the global RNG inside reset."""

    def reset(self, *, seed=None, options=None):
        random.seed(seed)
        return super().reset(seed=seed, options=options)


class FixedTaskEnv(GoodEnv):
    """Broken: the same task whatever the seed."""

    def sample_task(self, rng: np.random.Generator) -> Task:
        return Task("What is 1 + 1?", answer="2")


class FragileVerifier(ExactVerifier):
    def verify(self, response: str, task: Task) -> Verdict:
        if not response.isascii():
            raise UnicodeError("cannot handle non-ASCII text")
        return super().verify(response, task)


class RaisingEnv(GoodEnv):
    """Broken: its verifier crashes on non-ASCII answers instead of scoring them."""

    def __init__(self) -> None:
        super().__init__()
        self.verifier = FragileVerifier()


class NanRewardEnv(GoodEnv):
    """Broken: rewards NaN (bypassing Verdict's own check)."""

    def step(self, action):
        observation, _, terminated, truncated, info = super().step(action)
        return observation, float("nan"), terminated, truncated, info


class EndlessEnv(GoodEnv):
    """Broken: never terminates or truncates."""

    def step(self, action):
        observation, reward, _, _, info = super().step(action)
        self._episode_over = False
        return observation or "Go on.", reward, False, False, info


class NoEnvErrorEnv(GoodEnv):
    """Broken: step before reset raises a bare AttributeError instead of EnvError."""

    def step(self, action):
        return self.task.prompt, 0.0, True, False, {"verdict": Verdict(0.0)}


def failed(report: CheckReport) -> set[str]:
    return {r.name for r in report.failures}


@pytest.mark.parametrize("params", [{}, {"max_turns": 3}, {"max_turns": 3, "feedback": "reason"}])
def test_arithmetic_passes(params):
    report = check_env("rewardgym/arithmetic-v0", params=params)
    assert report.ok, str(report)
    assert tuple(r.name for r in report.results) == ALL_CHECKS
    assert report.target == "environment 'rewardgym/arithmetic-v0'"


def test_arithmetic_multi_turn_plays_every_turn():
    report = check_env("rewardgym/arithmetic-v0", params={"max_turns": 3})
    assert "longest: 3" in report.result("episodes_end").message


def test_env_instance_passes_and_is_not_closed():
    env = GoodEnv(max_turns=2)
    report = check_env(env)
    assert report.ok, str(report)
    assert report.target == "environment GoodEnv"
    env.reset(seed=1)  # still usable


def test_wrapped_envs_pass():
    assert check_env(gymnasium.make("rewardgym/arithmetic-v0", max_turns=2)).ok
    budget = TokenBudget(rewardgym.make("rewardgym/arithmetic-v0", max_turns=2), per_turn=50)
    assert check_env(budget).target == "environment ArithmeticEnv"


def test_garbage_covers_hostile_responses():
    report = check_env(GoodEnv(), garbage_actions=7)
    assert report.result("garbage_actions").message.startswith(
        f"{7 + len(HOSTILE_RESPONSES)} garbage actions scored"
    )


def test_global_random_fails_seeded_determinism():
    report = check_env(GlobalRandomEnv(), raise_on_failure=False)
    assert "seeded_determinism" in failed(report)
    message = report.result("seeded_determinism").message
    assert message.startswith("reset(seed=0) twice gave different tasks")
    assert "not global random" in message
    assert {"garbage_actions", "finite_rewards", "episodes_end", "spaces"}.isdisjoint(
        failed(report)
    )


def test_global_seeding_in_reset_fails_seeded_determinism():
    report = check_env(GlobalSeedingEnv(), raise_on_failure=False)
    assert failed(report) == {"seeded_determinism"}
    assert report.result("seeded_determinism").message == (
        "reset() changed the global random / numpy.random state; draw from self.np_random"
    )


def test_fixed_task_fails_seeded_determinism():
    report = check_env(FixedTaskEnv(), raise_on_failure=False)
    assert failed(report) == {"seeded_determinism"}
    assert report.result("seeded_determinism").message.startswith(
        "8 different seeds all gave the same task 'What is 1 + 1?'"
    )


def test_env_raising_on_garbage_fails_garbage_actions():
    report = check_env(RaisingEnv(), raise_on_failure=False)
    assert "garbage_actions" in failed(report)
    assert {"finite_rewards", "episodes_end", "seeded_determinism"}.isdisjoint(failed(report))
    message = report.result("garbage_actions").message
    assert "raised UnicodeError: cannot handle non-ASCII text (at test_check_env.py:" in message
    assert re.match(r"\d+ of \d+ garbage actions failed: ", message)


def test_nan_reward_fails_finite_rewards_and_garbage_actions():
    report = check_env(NanRewardEnv(), raise_on_failure=False)
    assert {"finite_rewards", "garbage_actions"} <= failed(report)
    assert "reward is nan, expected a finite float" in report.result("finite_rewards").message
    assert "episodes_end" not in failed(report)


def test_endless_env_fails_episodes_end():
    report = check_env(EndlessEnv(), episodes=2, raise_on_failure=False)
    assert "episodes_end" in failed(report)
    assert report.result("episodes_end").message == (
        "2 of 2 episodes neither terminated nor truncated within 1 step (max_turns=1): "
        "episode 0 (wrong answer), episode 1 (gold answer)"
    )


def test_step_before_reset_must_raise_env_error():
    report = check_env(NoEnvErrorEnv(), raise_on_failure=False)
    result = report.result("step_before_reset")
    assert not result.passed
    assert result.message.startswith("step() before reset() raised AttributeError")
    assert result.message.endswith("expected an EnvError")


def test_already_reset_env_is_reported():
    env = GoodEnv()
    env.reset(seed=0)
    report = check_env(env, raise_on_failure=False)
    assert failed(report) == {"step_before_reset"}
    assert report.result("step_before_reset").message == (
        "the env had already been reset when check_env got it; pass a fresh env or an id"
    )


def test_raise_on_failure_lists_every_failed_check():
    with pytest.raises(CheckError) as info:
        check_env(NanRewardEnv())
    text = str(info.value)
    assert text.startswith(
        "3 of 7 checks failed for environment NanRewardEnv "
        "(gymnasium_check_env, garbage_actions, finite_rewards):\n"
    )
    assert "\u2717 finite_rewards: " in text and "\u2713 spaces: " in text


def test_report_str_has_one_line_per_check():
    report = check_env(GoodEnv())
    lines = str(report).splitlines()
    assert lines[0] == "environment GoodEnv: 7/7 checks passed"
    assert [line.split(":")[0] for line in lines[1:]] == [f"  \u2713 {n}" for n in ALL_CHECKS]


def test_report_types():
    report = CheckReport("x", (CheckResult("a", True), CheckResult("b", False, "why")))
    assert not report.ok
    assert report.failures == (CheckResult("b", False, "why"),)
    assert str(report) == "x: 1/2 checks passed\n  \u2713 a\n  \u2717 b: why"
    with pytest.raises(
        KeyError, match=re.escape("No check named 'c' in this report; it has: a, b.")
    ):
        report.result("c")


def test_unknown_id_raises_before_checking():
    with pytest.raises(rewardgym.UnknownNameError, match=re.escape("rewardgym/arithmetic-v0")):
        check_env("rewardgym/arithmetc-v0")


def test_bad_arguments():
    with pytest.raises(TypeError, match=re.escape("check_env(params=...) only applies when env")):
        check_env(GoodEnv(), params={"max_turns": 2})
    with pytest.raises(TypeError, match=re.escape("check_env needs an environment id or a rewa")):
        check_env(GoodEnv)  # the class, not an instance
    with pytest.raises(ValueError, match=re.escape("check_env(episodes=...) must be an int >= 1")):
        check_env(GoodEnv(), episodes=0)
