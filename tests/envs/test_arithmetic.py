import re

import pytest

import rewardgym
from rewardgym.core.errors import ConfigError
from rewardgym.core.types import Task
from rewardgym.envs.arithmetic import (
    LEVELS,
    ArithmeticConfig,
    ArithmeticEnv,
    ArithmeticVerifier,
    canonical_integer,
    evaluate,
    extract_integer,
)


def _reference_value(expression: str) -> int:
    # The test may use Python's own parser as the reference: the env never does.
    return eval(expression, {"__builtins__": {}})  # noqa: S307


@pytest.mark.parametrize("difficulty", sorted(LEVELS))
def test_gold_answers_match_python_arithmetic(difficulty):
    env = ArithmeticEnv(ArithmeticConfig(difficulty=difficulty))
    for seed in range(50):
        _, info = env.reset(seed=seed)
        task = info["task"]
        assert int(task.answer) == _reference_value(task.metadata["expression"])
        assert env.step(f"Answer: {task.answer}")[1] == 1.0


def test_difficulty_grows_operands_and_operators():
    def tasks(d):
        env = ArithmeticEnv(ArithmeticConfig(difficulty=d))
        return [env.reset(seed=s)[1]["task"].metadata["expression"] for s in range(30)]

    assert all(len(re.findall(r"\d+", e)) == 2 for e in tasks(1))
    assert any("*" in e for e in tasks(3)) and not any("*" in e for e in tasks(2))
    assert any("(" in e for e in tasks(5))


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("Answer: 42", "42"),
        ("so \\boxed{ -7 } and Answer: 3", "-7"),
        ("I think answer = 12.", "12"),
        ("first 1, then 2, finally 3", "3"),
        ("**Answer:** 5", "5"),
        ("nothing here", None),
    ],
)
def test_extract_integer(response, expected):
    assert extract_integer(response) == expected


def test_verifier_exact_and_tricky_forms():
    v, task = ArithmeticVerifier(), Task("q", answer="-12")
    assert v.verify("Answer: −012", task).correct
    assert v.verify("Answer: -12.", task).correct
    assert not v.verify("Answer: 12", task).correct
    assert v.verify("", task).reward == 0.0
    assert v.verify("x", Task("q")).reward is None
    assert v.verify("9" * 5000, task).reason == "the answer has too many digits"
    assert canonical_integer("-0") == "0" and canonical_integer("007") == "7"


def test_multi_turn_retry_with_reason_feedback():
    env = rewardgym.make(
        "rewardgym/arithmetic-v0", max_turns=2, feedback="reason", prompt_style="plain"
    )
    prompt, info = env.reset(seed=1)
    assert prompt.endswith("=") and " " not in prompt
    obs, reward, term, _, _ = env.step("Answer: 100000")
    assert not term and "100000 is not the correct result" in obs
    _, reward, term, _, _ = env.step(info["task"].answer)
    assert term and reward == 1.0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"difficulty": 9}, "arithmetic difficulty must be one of [1, 2, 3, 4, 5], got 9"),
        ({"max_turns": 0}, "arithmetic max_turns must be an int >= 1, got 0"),
        (
            {"feedback": "loud"},
            "arithmetic feedback must be one of ('generic', 'reason'), got 'loud'",
        ),
    ],
)
def test_bad_params(params, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        rewardgym.make("rewardgym/arithmetic-v0", **params)


def test_evaluate_tree():
    assert evaluate(("*", ("+", 1, 2), ("-", 5, 7))) == -6
