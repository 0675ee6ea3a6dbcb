"""Tests of the example plugin, written the way a plugin author writes them.

Run them after installing the plugin (``pip install -e '.[test]'`` in this folder)::

    pytest

The checkers in ``rewardgym.testing`` do the heavy lifting: ``check_env`` runs Gymnasium's own
checker, seeded determinism, garbage actions and finite rewards; ``check_verifier`` checks the
expected verdicts, determinism, pickling and a battery of hostile model outputs.
"""

from __future__ import annotations

import re

import gymnasium
import pytest
from rewardgym_example.reverse import ReverseConfig, ReverseEnv, ReverseVerifier

import rewardgym
from rewardgym import ConfigError, Task
from rewardgym.testing import check_env, check_verifier

ENV_ID = "example/reverse-v0"
TASK = Task("Write the word 'reward' backwards.", answer="drawer", metadata={"word": "reward"})


# -- the plugin is installed and discovered -----------------------------------------------------
def test_plugin_registers_the_env_and_the_verifier():
    spec = rewardgym.ENVS.get(ENV_ID)
    assert "rewardgym-example-plugin" in spec.origin
    assert rewardgym.VERIFIERS.get(ENV_ID).origin == spec.origin
    assert isinstance(rewardgym.make_verifier(ENV_ID), ReverseVerifier)


# -- the checkers -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"min_length": 1, "max_length": 1},
        {"max_length": 30, "alphabet": "ab"},
        {"max_turns": 3},
    ],
)
def test_env_passes_check_env(params):
    report = check_env(ENV_ID, params=params)  # raises CheckError listing what failed
    assert report.ok


def test_verifier_passes_check_verifier():
    check_verifier(
        ReverseVerifier(),
        cases=[
            ("drawer", TASK, 1.0),
            ("  drawer\n", TASK, 1.0),  # surrounding whitespace is stripped
            ("reward", TASK, 0.0),
            ("Drawer", TASK, 0.0),  # case matters
            ("d r a w e r", TASK, 0.0),
            ("The answer is drawer", TASK, False),  # exact match only: no extraction
            ("", TASK, 0.0),  # empty is wrong, not unscorable
            (" \n\t", TASK, 0.0),
            ("drawer", Task("no gold answer"), None),  # cannot be judged: unscorable
        ],
    )


# -- behaviour the checkers cannot know ---------------------------------------------------------
def test_the_word_comes_from_the_seeded_rng_and_respects_the_lengths():
    env = rewardgym.make(ENV_ID, min_length=5, max_length=7)
    words = [env.reset(seed=seed)[1]["task"].metadata["word"] for seed in range(50)]
    assert all(5 <= len(w) <= 7 and w.isalpha() and w.islower() for w in words)
    assert {len(w) for w in words} == {5, 6, 7}
    assert len(set(words)) > 40  # seeds give different words...
    assert words == [env.reset(seed=seed)[1]["task"].metadata["word"] for seed in range(50)]


def test_a_correct_answer_scores_one_and_ends_the_episode():
    env = rewardgym.make(ENV_ID)
    prompt, info = env.reset(seed=0)
    word = info["task"].metadata["word"]
    assert f"'{word}'" in prompt
    _, reward, terminated, truncated, info = env.step(word[::-1])
    assert (reward, terminated, truncated, info["correct"]) == (1.0, True, False, True)


def test_retry_after_a_wrong_answer():
    env = rewardgym.make(ENV_ID, max_turns=2)
    _, info = env.reset(seed=1)
    observation, reward, terminated, _, _ = env.step("wrong")
    assert (reward, terminated) == (0.0, False)
    assert observation == "Your answer is incorrect. Please try again."
    _, reward, terminated, _, _ = env.step(info["task"].answer)
    assert (reward, terminated) == (1.0, True)


def test_gymnasium_make_builds_the_same_env():
    rewardgym.load_plugins()  # plugin ids reach Gymnasium's registry when plugins load
    env = gymnasium.make(ENV_ID, max_length=4)
    assert isinstance(env.unwrapped, ReverseEnv)
    assert env.unwrapped.config == ReverseConfig(max_length=4)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"min_length": 0}, "reverse min_length must be >= 1, got 0"),
        ({"min_length": 5, "max_length": 4}, "reverse max_length must be >= min_length (5), got 4"),
        ({"alphabet": "aaa"}, "reverse alphabet must have at least two distinct"),
        ({"alphabet": "a b"}, "reverse alphabet must have at least two distinct"),
        ({"max_turns": 0}, "reverse max_turns must be >= 1, got 0"),
    ],
)
def test_bad_params_are_rejected(params, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        rewardgym.make(ENV_ID, **params)


def test_an_unknown_param_gets_a_did_you_mean():
    with pytest.raises(ConfigError, match=re.escape("Did you mean 'max_length'?")):
        rewardgym.make(ENV_ID, max_lenght=4)
