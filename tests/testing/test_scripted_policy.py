"""ScriptedPolicy replays lists and per-prompt scripts; run_episode plays single- and multi-turn
episodes and records every step."""

from __future__ import annotations

import re

import pytest

import rewardgym
from rewardgym.core.errors import CheckError, UnknownNameError
from rewardgym.core.types import Completion, Task
from rewardgym.testing import Episode, ScriptedPolicy, run_episode

FEEDBACK = "Your answer is incorrect. Please try again."


@pytest.fixture
def env():
    env = rewardgym.make("rewardgym/arithmetic-v0", max_turns=3)
    yield env
    env.close()


def test_list_replays_in_order_across_calls():
    policy = ScriptedPolicy(["a", Completion("b", token_ids=(1, 2))])
    assert policy("anything") == Completion("a")
    assert policy("else") == Completion("b", token_ids=(1, 2))
    assert policy.calls == [("anything", Completion("a")), ("else", Completion("b", (1, 2)))]


def test_list_exhaustion_raises_unless_cycle():
    policy = ScriptedPolicy(["a"])
    policy("p")
    with pytest.raises(
        CheckError,
        match=re.escape(
            "ScriptedPolicy ran out of completions: it scripts 1 and was asked for completion 2 "
            "(observation 'q'). Script more completions, or pass cycle=True to start again "
            "from the first."
        ),
    ):
        policy("q")
    cycling = ScriptedPolicy(["a", "b"], cycle=True)
    assert [cycling("p").text for _ in range(5)] == ["a", "b", "a", "b", "a"]


def test_reset_rewinds():
    policy = ScriptedPolicy(["a", "b"])
    policy("p")
    policy.reset()
    assert policy("p").text == "a"
    assert policy.calls == [("p", Completion("a"))]


def test_mapping_keys_episodes_by_prompt_and_follow_ups_by_position():
    policy = ScriptedPolicy({"What is 2+2?": ["5", "4"], "What is 1+1?": ["2"]})
    assert policy("What is 2+2?").text == "5"
    assert policy(FEEDBACK).text == "4"  # the second turn of the same episode
    assert policy("What is 1+1?").text == "2"
    assert policy("What is 2+2?").text == "5"  # a known prompt starts its script again


def test_mapping_unknown_prompt_suggests_the_closest():
    policy = ScriptedPolicy({"What is 2+2?": ["4"]})
    with pytest.raises(
        UnknownNameError,
        match=re.escape(
            "ScriptedPolicy has no completions for the prompt 'What is 2+3?'. "
            "Did you mean 'What is 2+2?'?"
        ),
    ):
        policy("What is 2+3?")


def test_mapping_exhaustion_names_prompt_and_observation():
    policy = ScriptedPolicy({"What is 2+2?": ["5"]})
    policy("What is 2+2?")
    with pytest.raises(
        CheckError,
        match=re.escape(
            "ScriptedPolicy ran out of completions for the prompt 'What is 2+2?': it scripts 1 "
            f"and was asked for completion 2 (observation {FEEDBACK!r})."
        ),
    ) as info:
        policy(FEEDBACK)
    assert str(info.value).endswith(
        f"If {FEEDBACK!r} is the prompt of a new episode, add it to the mapping."
    )


@pytest.mark.parametrize(
    ("completions", "error", "message"),
    [
        (
            "Answer: 4",
            TypeError,
            "ScriptedPolicy needs a list of completions, got str 'Answer: 4'; wrap a single",
        ),
        ([], ValueError, "ScriptedPolicy got an empty list of completions."),
        (["a", 3], TypeError, "ScriptedPolicy completion 1 is int; expected a str or a"),
        ({}, ValueError, "ScriptedPolicy got an empty mapping of prompts."),
        ({"p": "a"}, TypeError, "ScriptedPolicy needs a list of completions for prompt 'p'"),
        ({1: ["a"]}, TypeError, "ScriptedPolicy prompts must be str, got int 1."),
    ],
)
def test_bad_scripts(completions, error, message):
    with pytest.raises(error, match=re.escape(message)):
        ScriptedPolicy(completions)


def test_run_episode_single_turn():
    env = rewardgym.make("rewardgym/arithmetic-v0")
    prompt, info = env.reset(seed=3)
    episode = run_episode(env, ScriptedPolicy([f"Answer: {info['task'].answer}"]), seed=3)
    assert isinstance(episode, Episode)
    assert episode.prompt == prompt
    assert episode.rewards == (1.0,)
    assert episode.observations == ("",)
    assert episode.terminated and not episode.truncated
    assert episode.correct and episode.total_reward == 1.0 and len(episode) == 1


def test_run_episode_multi_turn_with_a_mapping(env):
    task = Task("What is 6 * 7?", answer="42")
    policy = ScriptedPolicy({task.prompt: ["Answer: 41", "Answer: 40", "Answer: 42"]})
    episode = run_episode(env, policy, options={"task": task})
    assert [a.text for a in episode.actions] == ["Answer: 41", "Answer: 40", "Answer: 42"]
    assert episode.observations == (FEEDBACK, FEEDBACK, "")
    assert episode.rewards == (0.0, 0.0, 1.0)
    assert [v.correct for v in episode.verdicts] == [False, False, True]
    assert episode.correct and episode.total_reward == 1.0
    assert policy.calls[1] == (FEEDBACK, Completion("Answer: 40"))


def test_run_episode_ends_at_max_turns(env):
    episode = run_episode(env, ScriptedPolicy(["no idea"], cycle=True), seed=0)
    assert len(episode) == 3 and episode.terminated and not episode.correct


def test_run_episode_max_steps(env):
    with pytest.raises(
        CheckError, match=re.escape("The episode did not end within max_steps=2 steps (prompt ")
    ):
        run_episode(env, ScriptedPolicy(["no idea"], cycle=True), seed=0, max_steps=2)


def test_run_episode_rejects_bad_policy_output(env):
    with pytest.raises(
        TypeError, match=re.escape("The policy returned int; expected a str or a Completion.")
    ):
        run_episode(env, lambda observation: 42)
