import re
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import rewardgym
from rewardgym.core.errors import ConfigError
from rewardgym.core.registry import ENVS, VERIFIERS
from rewardgym.core.types import Task
from rewardgym.envs._countdown_expr import (
    MAX_EXPRESSION_CHARS,
    MalformedExpression,
    evaluate,
    extract_answer,
    parse_expression,
)
from rewardgym.envs.countdown import (
    CountdownConfig,
    CountdownEnv,
    CountdownVerifier,
    CountdownVerifierConfig,
    generate_puzzle,
)
from rewardgym.plugins.hookspecs import hookimpl
from rewardgym.testing import HOSTILE_RESPONSES, check_env, check_verifier

ID = "rewardgym/countdown-v0"
TASK = Task("q", answer="(6 - 2) * 25 + 7", metadata={"numbers": (25, 6, 2, 7), "target": 107})


def _reference_value(expression: str) -> Fraction:
    # The test may use Python's own evaluator as the reference: the verifier never does.
    tree = compile(expression, "<solution>", "eval", flags=0)
    value = eval(tree, {"__builtins__": {}})  # noqa: S307
    return Fraction(value).limit_denominator(10**6)


def test_generated_tasks_are_solvable_and_in_range():
    env = CountdownEnv()
    sizes = Counter()
    for seed in range(300):
        _, info = env.reset(seed=seed)
        task = info["task"]
        numbers, target = task.metadata["numbers"], task.metadata["target"]
        solution = task.metadata["solution"]
        assert solution == task.answer
        assert 4 <= len(numbers) <= 6 and all(1 <= n <= 100 for n in numbers)
        assert 100 <= target <= 999
        assert sorted(int(n) for n in re.findall(r"\d+", solution)) == sorted(numbers)
        assert _reference_value(solution) == target
        assert env.step(f"<answer>{solution}</answer>")[1] == 1.0
        sizes[len(numbers)] += 1
    assert set(sizes) == {4, 5, 6}


def test_seeded_tasks_are_reproducible():
    a, b = CountdownEnv(), CountdownEnv()
    assert [a.reset(seed=s)[0] for s in range(5)] == [b.reset(seed=s)[0] for s in range(5)]
    assert len({a.reset(seed=s)[0] for s in range(20)}) == 20


@pytest.mark.parametrize(
    ("params", "expected_ops"),
    [({"operators": "+-"}, set("+-")), ({"operators": "*"}, {"*"}), ({}, set("+-*/"))],
)
def test_solutions_use_only_allowed_operators(params, expected_ops):
    config = CountdownConfig(min_target=10, max_target=10**6, **params)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(100):
        _, _, solution = generate_puzzle(rng, config)
        seen |= set(re.findall(r"[-+*/]", solution))
    assert seen == expected_ops


def test_env_passes_check_env():
    check_env(CountdownEnv())
    check_env(CountdownEnv(CountdownConfig(max_turns=2, answer_format="line", feedback="reason")))


@pytest.mark.parametrize(
    ("response", "reward", "reason"),
    [
        ("<answer>(6 - 2) * 25 + 7</answer>", 1.0, "correct"),
        ("I think...\n<answer> 7 + 25*(6-2) </answer>", 1.0, "correct"),
        ("<answer>(6−2)×25+7 = 107</answer>", 1.0, "correct"),
        ("<answer>107 = ((6 - 2) * 25) + 7</answer>", 1.0, "correct"),
        ("<answer>$(6 - 2) \\times 25 + 7$.</answer>", 1.0, "correct"),
        ("<answer>1</answer> no wait <answer>(6-2)*25+7</answer>", 1.0, "correct"),
        ("<answer>(6-2)*25-7</answer>", 0.1, "the expression equals 93, not 107"),
        ("<answer>(6-2)*25+7 = 108</answer>", 0.1, "claimed to equal 108, not 107"),
        ("<answer>7 + 100</answer>", 0.1, "uses [7, 100] but must use each of [2, 6, 7, 25]"),
        ("<answer>(6-2)*25+7+7</answer>", 0.1, "uses [2, 6, 7, 7, 25]"),
        ("<answer>-(2-6)*25+7</answer>", 0.1, "unary signs are not allowed"),
        ("<answer>(6-2)*25+7/2*2</answer>", 0.1, "uses [2, 2, 2, 6, 7, 25]"),
        ("<answer>(6-2)**25+7</answer>", 0.0, "the operator Pow is not + - * or /"),
        ("<answer>(6-2)*25+7//1</answer>", 0.0, "the operator FloorDiv"),
        ("<answer>x + 1</answer>", 0.0, "'x' is not allowed"),
        ("<answer>0x19 + 6 + 2 + 7</answer>", 0.0, "'x' is not allowed"),
        ("<answer>(6-2)(25+7)</answer>", 0.0, "Call is not allowed"),
        ("<answer>(6-2)*25+</answer>", 0.0, "is not a valid expression"),
        ("<answer>  </answer>", 0.0, "the answer is empty"),
        ("<answer>1 = 2 = 3</answer>", 0.0, "'=' may only separate"),
        ("(6 - 2) * 25 + 7", 0.0, "no <answer>...</answer> found"),
        ("Answer: (6 - 2) * 25 + 7", 0.0, "no <answer>...</answer> found"),
        ("<answer>(6 - 2) * 25 + 7", 0.0, "no <answer>...</answer> found"),
        ("<answer>" + "1+" * 600 + "1</answer>", 0.0, f"longer than {MAX_EXPRESSION_CHARS}"),
        ("<answer>" + "1+" * 300 + "1</answer>", 0.0, "more than 200 parts"),
    ],
)
def test_verifier_rewards_and_reasons(response, reward, reason):
    verdict = CountdownVerifier().verify(response, TASK)
    assert verdict.reward == reward
    assert reason in verdict.reason
    assert verdict.correct == (reward == 1.0)


def test_division_by_zero_is_well_formatted_but_wrong():
    task = Task("q", metadata={"numbers": (5, 5, 3, 7), "target": 100})
    verdict = CountdownVerifier().verify("<answer>3 * 7 / (5 - 5)</answer>", task)
    assert verdict.reward == 0.1 and verdict.reason == "the expression divides by zero"


def test_exact_fractions_decide():
    # In floats 1 / 49 * 49 * 100 is 99.99999999999999; exact fractions make it 100.
    assert 1 / 49 * 49 * 100 != 100
    task = Task("q", metadata={"numbers": (1, 49, 49, 100), "target": 100})
    assert CountdownVerifier().verify("<answer>1 / 49 * 49 * 100</answer>", task).correct
    task = Task("q", metadata={"numbers": (100, 1, 3, 3), "target": 100})
    verdict = CountdownVerifier().verify("<answer>100 + 1 / 3 / 3</answer>", task)
    assert verdict.reason == "the expression equals 901/9, not 100"


def test_operators_outside_the_task_are_wrong():
    task = Task("q", metadata={"numbers": (25, 6, 2, 7), "target": 107, "operators": "+-*"})
    verdict = CountdownVerifier().verify("<answer>(6 - 2) * 25 + 7 / 1</answer>", task)
    assert verdict.reward == 0.1 and "uses [1, 2, 6, 7, 25]" in verdict.reason
    verdict = CountdownVerifier().verify("<answer>25 * (6 / 2) + 7</answer>", task)
    assert verdict.reason == "the operator '/' is not allowed (allowed: + - *)"


@pytest.mark.parametrize(
    ("answer_format", "response", "correct"),
    [
        ("line", "Answer: (6-2)*25+7", True),
        ("line", "**Answer:** (6-2)*25+7", True),
        ("line", "Answer: **(6-2)*25+7**", True),
        ("line", "answer:(6-2)*25+7.", True),
        ("line", "Answer: 3\nthen\nAnswer: (6-2)*25+7", True),
        ("line", "<answer>(6-2)*25+7</answer>", False),
        ("either", "<answer>(6-2)*25+7</answer>\nAnswer: 1", True),
        ("either", "Answer: (6-2)*25+7", True),
        ("tag", "Answer: (6-2)*25+7", False),
    ],
)
def test_answer_formats(answer_format, response, correct):
    verifier = CountdownVerifier(CountdownVerifierConfig(answer_format=answer_format))
    assert verifier.verify(response, TASK).correct is correct


def test_extract_answer_is_linear_on_hostile_text():
    text = "<answer>" * 100_000 + "x"
    start = time.perf_counter()
    assert extract_answer(text, "tag") is None
    assert extract_answer("Answer: " * 100_000, "line") == ""
    assert time.perf_counter() - start < 0.5


def test_parser_never_evaluates_python():
    for text in ("__import__('os')", "(lambda: 1)()", "[1][0]", "1 if 1 else 2", "'a' * 9"):
        with pytest.raises(MalformedExpression):
            parse_expression(text)
    expression = parse_expression("((1 + 2)) * 3 - -4 / 2")
    assert expression.numbers == (1, 2, 3, 4, 2) and expression.unary
    assert evaluate(expression.tree) == 11


def test_task_without_metadata_is_unscorable():
    verdict = CountdownVerifier().verify("<answer>1 + 2</answer>", Task("q", answer="3"))
    assert verdict.reward is None and "no Countdown numbers" in verdict.reason


def test_hostile_responses_are_scored_fast_in_process():
    verifiers = [CountdownVerifier(CountdownVerifierConfig(answer_format=f)) for f in
                 ("tag", "line", "either")]  # fmt: skip
    for response in HOSTILE_RESPONSES:
        for wrapped in (response, f"<answer>{response}</answer>", f"Answer: {response}"):
            for verifier in verifiers:
                start = time.perf_counter()
                verdict = verifier.verify(wrapped, TASK)
                assert time.perf_counter() - start < 0.5, repr(wrapped[:40])
                assert verdict.reward in (0.0, 0.1)


def test_check_verifier_right_wrong_tricky_and_hostile():
    check_verifier(
        CountdownVerifier(),
        [
            ("<answer>(6 - 2) * 25 + 7</answer>", TASK, 1.0),
            ("<answer>7+25*(6-2) = 107</answer>", TASK, True),
            ("<answer>(6 − 2) × 25 + 7</answer>", TASK, True),
            ("<answer>(6 - 2) * 25 - 7</answer>", TASK, 0.1),
            ("<answer>hello</answer>", TASK, 0.0),
            ("", TASK, 0.0),
            ("<answer>1</answer>", Task("q"), None),
        ],
        timeout=5.0,
    )


def test_format_reward_is_configurable():
    verifier = CountdownVerifier(CountdownVerifierConfig(format_reward=0.0))
    assert verifier.verify("<answer>(6-2)*25-7</answer>", TASK).reward == 0.0


def test_prompt_states_numbers_target_and_format():
    prompt, info = CountdownEnv().reset(seed=3)
    meta = info["task"].metadata
    assert str(meta["target"]) in prompt and "<answer>" in prompt
    assert all(str(n) in prompt for n in meta["numbers"])
    line_prompt, _ = CountdownEnv(CountdownConfig(answer_format="line", operators="+*")).reset(
        seed=3
    )
    assert "Answer: <expression>" in line_prompt and "you may use + and * and" in line_prompt


def test_multi_turn_retry_with_reason_feedback():
    env = CountdownEnv(CountdownConfig(max_turns=2, feedback="reason"))
    _, info = env.reset(seed=0)
    obs, reward, terminated, _, _ = env.step("<answer>1 + 1</answer>")
    assert not terminated and reward == 0.1 and "must use each of" in obs
    _, reward, terminated, _, _ = env.step(f"<answer>{info['task'].answer}</answer>")
    assert terminated and reward == 1.0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"min_numbers": 1}, "countdown min_numbers must be an int >= 2, got 1"),
        ({"max_numbers": 3}, "countdown max_numbers must be an int >= 4, got 3"),
        ({"max_numbers": 21}, "countdown max_numbers must be <= 20, got 21"),
        ({"min_value": 0}, "countdown min_value must be an int >= 1, got 0"),
        ({"max_target": 50}, "countdown max_target must be an int >= 100, got 50"),
        ({"operators": "+^"}, "countdown operators must be a non-empty string of distinct"),
        ({"operators": ""}, "countdown operators must be a non-empty string of distinct"),
        (
            {"answer_format": "xml"},
            "countdown answer_format must be one of ('tag', 'line', 'either'), got 'xml'",
        ),
        ({"format_reward": 1.0}, "countdown format_reward must be a number in [0, 1), got 1.0"),
        (
            {"feedback": "loud"},
            "countdown feedback must be one of ('generic', 'reason'), got 'loud'",
        ),
        ({"max_turns": 0}, "countdown max_turns must be an int >= 1, got 0"),
        (
            {"max_value": 10, "operators": "+-"},
            "countdown min_target=100 cannot be reached: 6 numbers up to 10 with operators '+-' "
            "make at most 60.",
        ),
    ],
)
def test_bad_config(params, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        CountdownConfig(**params)


def test_unlucky_config_fails_with_a_clear_error():
    env = CountdownEnv(CountdownConfig(operators="-"))  # reachable in principle, never in practice
    with pytest.raises(
        ConfigError, match=re.escape("countdown could not make a target in [100, 999]")
    ):
        env.reset(seed=0)


class _CountdownPlugin:
    @hookimpl
    def rewardgym_register_envs(self, register):
        register(ID, "rewardgym.envs.countdown:CountdownEnv",
                 config="rewardgym.envs.countdown:CountdownConfig")  # fmt: skip

    @hookimpl
    def rewardgym_register_verifiers(self, register):
        register(ID, "rewardgym.envs.countdown:CountdownVerifier",
                 config="rewardgym.envs.countdown:CountdownVerifierConfig")  # fmt: skip


@pytest.fixture
def registered(rewardgym_plugin):
    """Countdown in the registries: the built-in entry when there is one, else a temporary one."""
    if ID not in ENVS or ID not in VERIFIERS:
        rewardgym_plugin(_CountdownPlugin(), name="countdown-test")


def test_make_with_params(registered, make_env):
    env = make_env(ID, max_numbers=4, answer_format="line")
    _, info = env.reset(seed=0)
    assert len(info["task"].metadata["numbers"]) == 4
    assert env.step(f"Answer: {info['task'].answer}")[1] == 1.0
    verifier = rewardgym.make_verifier(ID, answer_format="either", format_reward=0.2)
    assert verifier.verify("Answer: 1 + 1", TASK).reward == 0.2
    with pytest.raises(ConfigError, match="max_nubmers"):
        rewardgym.make(ID, max_nubmers=4)


def test_docs_example_runs(registered, capsys):
    page = Path(__file__).resolve().parents[2] / "docs" / "envs" / "countdown.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, str(page), "exec"), {"__name__": "docs_example"})  # noqa: S102
    assert "Your answer is incorrect: the expression uses [1, 1]" in capsys.readouterr().out


def test_metadata_from_numpy_is_read():
    task = Task("q", metadata={"numbers": list(np.array([25, 6, 2, 7])), "target": np.int64(107)})
    assert CountdownVerifier().verify("<answer>(6 - 2) * 25 + 7</answer>", task).correct
