import math
import pickle
import re

import pytest

from rewardgym.core.types import Completion, Task, Verdict, as_completion


def test_verdict_reward_none_means_unscorable():
    v = Verdict.unscorable("timed out")
    assert v.reward is None and not v.scorable and not v.correct and v.reason == "timed out"


def test_verdict_rejects_non_finite_and_bool_rewards():
    with pytest.raises(ValueError, match=re.escape("Verdict.reward must be finite, got nan")):
        Verdict(math.nan)
    with pytest.raises(TypeError, match="must be a float or None, got bool"):
        Verdict(True)
    with pytest.raises(ValueError, match="cannot be correct"):
        Verdict(None, correct=True)
    assert Verdict(1).reward == 1.0 and isinstance(Verdict(1).reward, float)


def test_completion_normalises_token_ids_and_checks_lengths():
    c = Completion("ab", token_ids=[1, 2], logprobs=[-0.1, -0.2])
    assert c.token_ids == (1, 2) and c.logprobs == (-0.1, -0.2) and c.num_tokens == 2
    with pytest.raises(ValueError, match="2 token ids but 1 log-probs"):
        Completion("ab", token_ids=[1, 2], logprobs=[-0.1])
    with pytest.raises(TypeError, match="must be a str"):
        Completion(b"bytes")  # type: ignore[arg-type]
    assert Completion("x").num_tokens is None


def test_as_completion_accepts_text_completion_and_garbage():
    c = Completion("hi")
    assert as_completion(c) is c
    assert as_completion("hi") == Completion("hi")
    assert as_completion(123) == Completion("123")


def test_types_pickle_and_hash():
    t = Task("p", answer="1", id="x", metadata={"a": [1]})
    for obj in (t, Completion("a", (1,), (0.0,)), Verdict(0.5, reason="r")):
        assert pickle.loads(pickle.dumps(obj)) == obj
    assert hash(t) == hash(Task("p", answer="1", id="x", metadata={"b": 2}))
