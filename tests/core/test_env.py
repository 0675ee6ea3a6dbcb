import re

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import rewardgym
from rewardgym.core.env import TextEnv
from rewardgym.core.errors import EnvError
from rewardgym.core.types import Completion, Task, Verdict
from rewardgym.core.verifier import Verifier


class EchoVerifier(Verifier):
    def verify(self, response, task):
        if response == "?":
            return Verdict.unscorable("cannot tell")
        ok = response.strip() == task.answer
        return Verdict(1.0 if ok else 0.0, correct=ok)


class EchoEnv(TextEnv):
    def __init__(self, max_turns=1):
        super().__init__()
        self.verifier, self.max_turns = EchoVerifier(), max_turns

    def sample_task(self, rng):
        word = "".join(rng.choice(list("abc"), size=3))
        return Task(f"say {word}", answer=word)


def test_single_turn_terminates_after_one_step():
    env = EchoEnv()
    prompt, info = env.reset(seed=3)
    assert prompt == info["task"].prompt and info["turn"] == 0
    obs, reward, term, trunc, info = env.step(info["task"].answer)
    assert (obs, reward, term, trunc) == ("", 1.0, True, False)
    assert info["correct"] and info["scorable"] and isinstance(info["verdict"], Verdict)


def test_multi_turn_feedback_until_correct_or_out_of_turns():
    env = EchoEnv(max_turns=3)
    _, info = env.reset(seed=0)
    obs, reward, term, _, _ = env.step("wrong")
    assert obs == "Your answer is incorrect. Please try again." and reward == 0.0 and not term
    obs, reward, term, _, info = env.step(Completion(info["task"].answer, token_ids=(1, 2, 3)))
    assert term and reward == 1.0 and info["turn"] == 2
    env.reset(seed=0)
    results = [env.step("no")[2] for _ in range(3)]
    assert results == [False, False, True]


def test_unscorable_is_zero_reward_with_flag_not_silent():
    env = EchoEnv()
    env.reset(seed=0)
    _, reward, _, _, info = env.step("?")
    assert reward == 0.0 and info["scorable"] is False and info["verdict"].reward is None


def test_step_out_of_order_raises():
    env = EchoEnv()
    with pytest.raises(
        EnvError, match=re.escape("EchoEnv.step() called before reset(); call reset()")
    ):
        env.step("x")
    env.reset(seed=0)
    env.step("x")
    with pytest.raises(EnvError, match="after the episode ended"):
        env.step("x")


def test_seeding_uses_env_rng_only():
    env = EchoEnv()
    np.random.seed(0)
    a = [env.reset(seed=s)[0] for s in range(5)]
    np.random.seed(123)
    assert a == [env.reset(seed=s)[0] for s in range(5)]


def test_options_task_replays_a_given_task():
    env = EchoEnv()
    task = Task("say zzz", answer="zzz")
    prompt, info = env.reset(seed=0, options={"task": task})
    assert prompt == "say zzz" and info["task"] is task
    with pytest.raises(TypeError, match="options\\['task'\\] must be a rewardgym Task"):
        env.reset(options={"task": "zzz"})


def test_render_ansi_transcript():
    env = EchoEnv(max_turns=2)
    env.render_mode = "ansi"
    env.reset(seed=0)
    env.step("no")
    assert env.render().splitlines()[0].startswith("[prompt] say ")
    with pytest.raises(ValueError, match="render_mode='human' is not supported"):
        TextEnv(render_mode="human")


def test_gymnasium_check_env_passes_on_a_custom_text_env():
    gym_check_env(EchoEnv(max_turns=2), skip_render_check=True)


def test_gymnasium_make_reaches_registered_envs():
    env = gymnasium.make("rewardgym/arithmetic-v0")
    gym_check_env(env.unwrapped)
    assert isinstance(env.unwrapped, rewardgym.TextEnv)
    env = gymnasium.make("rewardgym/arithmetic-v0", difficulty=3, max_turns=2)
    assert env.unwrapped.config.difficulty == 3 and env.unwrapped.max_turns == 2


def test_rewardgym_make_sets_spec_and_render_mode():
    env = rewardgym.make("rewardgym/arithmetic-v0", render_mode="ansi")
    assert env.spec is not None and env.spec.id == "rewardgym/arithmetic-v0"
    assert env.render_mode == "ansi"
    with pytest.raises(ValueError, match="render_mode='rgb_array' is not supported"):
        rewardgym.make("rewardgym/arithmetic-v0", render_mode="rgb_array")
