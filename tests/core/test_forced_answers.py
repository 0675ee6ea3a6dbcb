"""Answer forcing, the protocol every TextEnv has (``TextEnv.answer_forcing``): the suffix that
closes a (cut) thinking trace and asks for the answer, and how that answer is scored; and the
earlier API (five TextEnv members), still honoured for one release with a warning."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import rewardgym
from rewardgym import Task, TextEnv, Verdict, Verifier
from rewardgym.core.forcing import AnswerForcing, forcing_of


def _env_and_task(**params):
    env = rewardgym.make("rewardgym/arithmetic-v0", prompt_style="plain", **params)
    _, info = env.reset(seed=0)
    return env.unwrapped, info["task"]


def test_the_suffix_closes_a_cut_trace_and_asks_for_the_answer():
    forcing = AnswerForcing()
    assert forcing.suffix(truncated=True) == "...\n\n...\n\n</think>\n\n**Final Answer**\n"
    assert forcing.suffix(truncated=False) == "\n\n**Final Answer**\n"
    env, _ = _env_and_task()
    assert forcing_of(env) == forcing == env.answer_forcing


def test_markers_are_per_env_settings():
    forcing = AnswerForcing(think_end="<|end_think|>", answer_cue="\nAnswer: ")
    assert forcing.suffix(truncated=True) == "...\n\n...\n\n<|end_think|>\nAnswer: "


def test_a_forced_answer_is_scored_by_the_env_with_the_format_rule():
    env, task = _env_and_task()
    forcing = forcing_of(env)
    cut = "<think>I add the tens" + forcing.suffix(truncated=True)
    assert forcing.score(env, cut, task.answer, task).correct
    assert forcing.score(env, cut, "-12345", task).reward == 0.0
    finished = "<think>done</think>" + forcing.suffix(truncated=False)
    assert forcing.score(env, finished, task.answer, task).reward == 1.0
    twice = "<think>a</think> b</think>" + forcing.suffix(truncated=False)
    verdict = forcing.score(env, twice, task.answer, task)
    assert verdict.reward == 0.0 and "2 end-of-thinking markers" in verdict.reason
    none = "<think>never closed" + forcing.suffix(truncated=False)
    assert "0 end-of-thinking markers" in forcing.score(env, none, task.answer, task).reason


def test_every_builtin_env_has_the_protocol():
    for env_id in ("rewardgym/math-v0", "rewardgym/knights_knaves-v0", "rewardgym/countdown-v0"):
        env = rewardgym.make(env_id)
        _, info = env.reset(seed=1)
        task, base = info["task"], env.unwrapped
        forcing = forcing_of(env)  # a wrapped env gives its unwrapped env's protocol
        trace = "<think>x" + forcing.suffix(truncated=True)
        assert forcing.score(base, trace, base.solution(task), task).correct, env_id
        env.close()


class _Exact(Verifier):
    def verify(self, response, task):
        ok = response.strip() == task.answer
        return Verdict(1.0 if ok else 0.0, correct=ok)


class _Echo(TextEnv):
    def __init__(self, config=None):
        super().__init__()
        self.verifier = _Exact()

    def sample_task(self, rng: np.random.Generator) -> Task:
        return Task(prompt="Say 7", answer="7")


def test_an_env_sets_its_own_protocol():
    class Reasoning(_Echo):
        answer_forcing = AnswerForcing(think_end="</reasoning>", answer_cue="\nAnswer: ")

    env = Reasoning()
    forcing = forcing_of(env)
    assert forcing.suffix(True) == "...\n\n...\n\n</reasoning>\nAnswer: "
    task = env.sample_task(np.random.default_rng(0))
    assert forcing.score(env, "a</reasoning>\nAnswer: ", "7", task).correct


def test_the_earlier_members_still_work_with_a_warning():
    class Legacy(_Echo):
        think_end = "</r>"

        def score_forced_answer(self, trace, answer, task):
            return Verdict(0.5, correct=False, reason="legacy rule")

    env = Legacy()
    with pytest.warns(DeprecationWarning, match="Legacy sets score_forced_answer, think_end"):
        forcing = forcing_of(env)
    assert forcing.think_end == "</r>" and forcing.suffix(True).endswith(
        "</r>\n\n**Final Answer**\n"
    )
    task = env.sample_task(np.random.default_rng(0))
    assert forcing.score(env, "x", "7", task).reason == "legacy rule"
    instance = _Echo()
    instance.answer_cue = "\nA: "  # set on an instance, as the earlier docs showed
    with pytest.warns(DeprecationWarning, match="answer_cue"):
        assert forcing_of(instance).suffix(False) == "\nA: "


def test_the_protocol_is_a_frozen_dataclass():
    with pytest.raises(dataclasses.FrozenInstanceError):
        AnswerForcing().think_end = "x"  # type: ignore[misc]
