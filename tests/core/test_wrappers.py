import re

import pytest

from rewardgym.core.env import TextEnv
from rewardgym.core.errors import ConfigError, EnvError
from rewardgym.core.types import Completion, Task, Verdict
from rewardgym.core.verifier import Verifier
from rewardgym.core.wrappers import TokenBudget


class SeenVerifier(Verifier):
    """Records what it scored; correct when the text equals the answer."""

    def __init__(self):
        self.seen = []

    def verify(self, response, task):
        self.seen.append(response)
        return Verdict(float(response == task.answer), correct=response == task.answer)


class RetryEnv(TextEnv):
    def __init__(self, max_turns=3):
        super().__init__()
        self.verifier, self.max_turns = SeenVerifier(), max_turns

    def sample_task(self, rng):
        return Task("p", answer="abc")


class CharTokenizer:
    def decode(self, ids):
        return "".join(chr(i) for i in ids)


def test_per_turn_budget_cuts_text_actions_and_reports():
    env = TokenBudget(RetryEnv(), per_turn=3)
    _, info = env.reset(seed=0)
    assert info["budget"] == {"used": 0, "remaining": None, "max_new_tokens": 3}
    _, reward, term, trunc, info = env.step("abcdef")
    assert env.unwrapped.verifier.seen == ["abc"] and reward == 1.0 and term and not trunc
    assert info["budget_cut"] is True and info["budget"]["used"] == 3


def test_episode_budget_truncates_when_spent():
    env = TokenBudget(RetryEnv(max_turns=5), per_episode=5)
    env.reset(seed=0)
    _, _, term, trunc, info = env.step("xyz")
    assert (
        not term
        and not trunc
        and info["budget"] == {"used": 3, "remaining": 2, "max_new_tokens": 2}
    )
    _, _, term, trunc, info = env.step("qqqq")
    assert env.unwrapped.verifier.seen[-1] == "qq" and not term and trunc and info["budget_cut"]


def test_token_ids_are_counted_exactly_and_cut_with_tokenizer():
    env = TokenBudget(RetryEnv(), per_turn=2, tokenizer=CharTokenizer())
    env.reset(seed=0)
    ids = tuple(ord(c) for c in "abcd")
    env.step(Completion("abcd", token_ids=ids, logprobs=(-1.0,) * 4))
    assert env.unwrapped.verifier.seen == ["ab"]


def test_cutting_token_ids_without_tokenizer_is_a_clear_error():
    env = TokenBudget(RetryEnv(), per_turn=1)
    env.reset(seed=0)
    with pytest.raises(EnvError, match="has no tokenizer to cut its text with"):
        env.step(Completion("ab", token_ids=(97, 98)))


def test_budget_config_errors():
    with pytest.raises(
        ConfigError, match=re.escape("TokenBudget needs per_turn, per_episode, or both.")
    ):
        TokenBudget(RetryEnv())
    with pytest.raises(ConfigError, match="per_turn must be a positive int or None, got 0"):
        TokenBudget(RetryEnv(), per_turn=0)
