"""The per-budget reward hooks every TextEnv has: the forced-answer suffix and its score."""

from __future__ import annotations

import rewardgym


def _env_and_task(**params):
    env = rewardgym.make("rewardgym/arithmetic-v0", prompt_style="plain", **params)
    _, info = env.reset(seed=0)
    return env.unwrapped, info["task"]


def test_the_suffix_closes_a_cut_trace_and_asks_for_the_answer():
    env, _ = _env_and_task()
    assert (
        env.forced_answer_suffix(truncated=True) == "...\n\n...\n\n</think>\n\n**Final Answer**\n"
    )
    assert env.forced_answer_suffix(truncated=False) == "\n\n**Final Answer**\n"


def test_markers_are_per_env_settings():
    env, _ = _env_and_task()
    env.think_end, env.answer_cue = "<|end_think|>", "\nAnswer: "
    assert env.forced_answer_suffix(truncated=True) == "...\n\n...\n\n<|end_think|>\nAnswer: "


def test_a_forced_answer_is_scored_by_the_env_with_the_format_rule():
    env, task = _env_and_task()
    cut = "<think>I add the tens" + env.forced_answer_suffix(truncated=True)
    assert env.score_forced_answer(cut, task.answer, task).correct
    assert env.score_forced_answer(cut, "-12345", task).reward == 0.0
    finished = "<think>done</think>" + env.forced_answer_suffix(truncated=False)
    assert env.score_forced_answer(finished, task.answer, task).reward == 1.0
    twice = "<think>a</think> b</think>" + env.forced_answer_suffix(truncated=False)
    verdict = env.score_forced_answer(twice, task.answer, task)
    assert verdict.reward == 0.0 and "2 end-of-thinking markers" in verdict.reason
    none = "<think>never closed" + env.forced_answer_suffix(truncated=False)
    assert "0 end-of-thinking markers" in env.score_forced_answer(none, task.answer, task).reason


def test_every_builtin_env_has_the_hooks():
    for env_id in ("rewardgym/math-v0", "rewardgym/knights_knaves-v0", "rewardgym/countdown-v0"):
        env = rewardgym.make(env_id)
        _, info = env.reset(seed=1)
        task, base = info["task"], env.unwrapped
        trace = "<think>x" + base.forced_answer_suffix(truncated=True)
        assert base.score_forced_answer(trace, base.solution(task), task).correct, env_id
        env.close()
