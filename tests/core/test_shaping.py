import math
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from rewardgym.core.env import TextEnv
from rewardgym.core.errors import ConfigError, EnvError
from rewardgym.core.shaping import (
    FormatTerm,
    LengthPenalty,
    RewardShaping,
    ShapingTerm,
    adactrl_group,
    adactrl_rewards,
    cosine_length_term,
    parse_difficulty_tag,
    shaped_reward,
    term_values,
)
from rewardgym.core.spaces import TextSpace
from rewardgym.core.types import Completion, Task, Verdict
from rewardgym.core.verifier import Verifier
from rewardgym.core.wrappers import TokenBudget
from rewardgym.envs.arithmetic import ArithmeticEnv
from rewardgym.testing import check_env

RIGHT = Verdict(1.0, correct=True)
WRONG = Verdict(0.0)
UNSCORABLE = Verdict.unscorable("timed out")
THINK = FormatTerm(
    r"<think>.*</think>\s*Answer: \S+\s*", fullmatch=True, matched=0.5, unmatched=-0.5
)


# -- per-sample terms --------------------------------------------------------------------------
def test_format_term():
    ok = Completion("<think>a\nb</think>\nAnswer: 4")
    assert THINK(ok, RIGHT, None) == 0.5
    assert THINK(Completion("Answer: 4"), RIGHT, None) == -0.5
    assert THINK(Completion("x <think></think> Answer: 4"), RIGHT, None) == -0.5
    assert FormatTerm(r"Answer:")(Completion("so, Answer: 4"), WRONG, None) == 1.0
    assert isinstance(THINK, ShapingTerm)


@pytest.mark.parametrize(
    ("length", "expected"), [(0, 0.0), (6, 0.0), (7, -0.25), (8, -0.5), (10, -1.0), (11, -1.0)]
)
def test_length_penalty_soft_buffer(length, expected):
    term = LengthPenalty(budget=10, buffer=4)
    assert term(Completion("x" * length), WRONG, None) == pytest.approx(expected)


def test_length_penalty_counts_tokens_when_present_and_can_spare_wrong_answers():
    term = LengthPenalty(budget=3, scale=0.2)
    assert term(Completion("a long text", token_ids=(1, 2, 3)), RIGHT, None) == 0.0
    assert term(Completion("abcd"), RIGHT, None) == -0.2
    only = LengthPenalty(budget=3, only_correct=True)
    assert only(Completion("abcd"), WRONG, None) == 0.0
    assert only(Completion("abcd"), RIGHT, None) == -1.0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: FormatTerm("(unclosed"), "FormatTerm pattern '(unclosed' is not a valid regex"),
        (
            lambda: FormatTerm("x", matched=math.nan),
            "FormatTerm matched must be a finite number, got nan",
        ),
        (lambda: FormatTerm("x", name=""), "FormatTerm name must be a non-empty str, got ''"),
        (lambda: LengthPenalty(budget=0), "LengthPenalty budget must be an int >= 1, got 0"),
        (
            lambda: LengthPenalty(budget=4, buffer=5),
            "LengthPenalty buffer must be <= budget (4), got 5",
        ),
        (
            lambda: LengthPenalty(budget=4, scale=-1),
            "LengthPenalty scale must be a finite number >= 0, got -1",
        ),
    ],
)
def test_term_config_errors(build, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        build()


def test_shaped_reward_and_term_values():
    terms = [THINK, LengthPenalty(budget=5, scale=0.1)]
    text = "<think>x</think> Answer: 4"
    assert term_values(terms, Completion(text), RIGHT, None) == {"format": 0.5, "length": -0.1}
    assert shaped_reward(RIGHT, text, None, terms) == pytest.approx(1.4)
    assert shaped_reward(UNSCORABLE, text, None, terms) is None
    assert term_values(terms, Completion(text), UNSCORABLE, None) is None


def test_a_term_returning_nan_is_a_bug():
    class Broken:
        name = "broken"

        def __call__(self, completion, verdict, task):
            return math.nan

    with pytest.raises(ValueError, match=re.escape("reward term 'broken' (Broken) returned nan")):
        shaped_reward(RIGHT, "x", None, [Broken()])


# -- the wrapper -------------------------------------------------------------------------------
def test_wrapper_adds_terms_and_keeps_the_verdict():
    env = RewardShaping(ArithmeticEnv(), [THINK, LengthPenalty(budget=30, buffer=10, scale=0.5)])
    _, info = env.reset(seed=0)
    action = f"<think>easy</think> Answer: {info['task'].answer}"  # 27 characters or so
    _, reward, terminated, _, info = env.step(action)
    terms = info["reward_terms"]
    assert set(terms) == {"format", "length"} and terms["format"] == 0.5
    assert terms["length"] == LengthPenalty(budget=30, buffer=10, scale=0.5).value(len(action))
    assert reward == pytest.approx(1.0 + sum(terms.values()))
    assert info["verdict"].reward == 1.0 and info["correct"] and terminated


class _NeverSure(Verifier):
    def verify(self, response, task):
        return Verdict.unscorable("the checker timed out")


class _UnscorableEnv(TextEnv):
    def __init__(self):
        super().__init__()
        self.verifier = _NeverSure()

    def sample_task(self, rng):
        return Task(f"say {int(rng.integers(100))}", answer="1")


class _MustNotRun:
    name = "spy"

    def __call__(self, completion, verdict, task):
        raise AssertionError("a term was evaluated for an unscorable verdict")


def test_unscorable_stays_unscorable():
    env = RewardShaping(_UnscorableEnv(), [FormatTerm("x", matched=5.0), _MustNotRun()])
    env.reset(seed=0)
    _, reward, _, _, info = env.step("x")
    assert reward == 0.0 and info["scorable"] is False
    assert info["verdict"].reward is None
    assert info["reward_terms"] == {"format": None, "spy": None}


def test_wrappers_stack_and_names_must_differ():
    inner = RewardShaping(ArithmeticEnv(), [FormatTerm("Answer", matched=0.1)])
    outer = RewardShaping(TokenBudget(inner, per_turn=100), [LengthPenalty(budget=5, scale=0.3)])
    _, info = outer.reset(seed=0)
    _, reward, _, _, info = outer.step(f"Answer: {info['task'].answer}")
    assert info["reward_terms"] == {"format": 0.1, "length": -0.3}
    assert reward == pytest.approx(1.0 + 0.1 - 0.3)
    with pytest.raises(ConfigError, match=re.escape("two reward terms are named 'format'")):
        RewardShaping(inner, [FormatTerm("y")])


def test_wrapper_inside_a_token_budget_sees_the_cut_completion():
    env = TokenBudget(RewardShaping(ArithmeticEnv(), [LengthPenalty(budget=4)]), per_turn=4)
    env.reset(seed=0)
    _, _, _, _, info = env.step("Answer: 12345")
    assert info["budget_cut"] and info["reward_terms"] == {"length": 0.0}


def test_wrapper_errors():
    with pytest.raises(
        ConfigError, match=re.escape("terms must be a non-empty list of reward terms, got []")
    ):
        RewardShaping(ArithmeticEnv(), [])
    with pytest.raises(ConfigError, match=re.escape("42 is not a reward term")):
        RewardShaping(ArithmeticEnv(), [42])

    class Plain(gym.Env):
        observation_space = action_space = TextSpace()

        def reset(self, *, seed=None, options=None):
            return "", {}

        def step(self, action):
            return "", 1.0, True, False, {}

    env = RewardShaping(Plain(), [THINK])
    env.reset()
    with pytest.raises(EnvError, match=re.escape("RewardShaping needs info['verdict']")):
        env.step("x")


def test_wrapped_env_passes_check_env():
    check_env(RewardShaping(ArithmeticEnv(), [THINK, LengthPenalty(budget=50, buffer=20)]))


# -- AdaCtrl -----------------------------------------------------------------------------------
def _reference_adactrl(correct, lengths, tags, threshold=0.625, w_len=0.5, w_fmt=0.5,
                       requires_correct=True, hard_term=False):  # fmt: skip
    """Written from the formula, one sample at a time."""
    scored = [c for c in correct if c is not None]
    if not scored:
        return [None] * len(correct)
    difficulty = "easy" if sum(1 for c in scored if c) / len(scored) > threshold else "hard"
    longest = max(lengths)
    out = []
    for c, n, t in zip(correct, lengths, tags, strict=True):
        if c is None:
            out.append(None)
            continue
        accuracy = 1 if c else -1
        if t is None:
            fmt = -1
        elif t == difficulty:
            fmt = 1
        else:
            fmt = 0
        length_term = 0.0
        if t == "easy" and difficulty == "easy" and (c or not requires_correct):
            length_term = 1 - (1 - math.cos(math.pi * n / longest)) / 2
        if hard_term and t == "hard" and difficulty == "hard":
            length_term = (1 - math.cos(math.pi * n / longest)) / 2
        out.append(accuracy + w_len * length_term + w_fmt * fmt)
    return out


@pytest.mark.parametrize("options", [{}, {"length_requires_correct": False, "hard_length_term": True},
                                     {"easy_threshold": 0.3, "length_weight": 1.0, "format_weight": 0.2}])  # fmt: skip
def test_adactrl_matches_the_slow_reference(options):
    rng = np.random.default_rng(0)
    reference_options = {
        "threshold": options.get("easy_threshold", 0.625),
        "w_len": options.get("length_weight", 0.5),
        "w_fmt": options.get("format_weight", 0.5),
        "requires_correct": options.get("length_requires_correct", True),
        "hard_term": options.get("hard_length_term", False),
    }
    for _ in range(300):
        p = rng.random()
        correct = [None if rng.random() < 0.1 else bool(rng.random() < p) for _ in range(16)]
        lengths = [int(x) for x in rng.integers(1, 4000, size=16)]
        tags = [[None, "easy", "hard"][int(i)] for i in rng.integers(0, 3, size=16)]
        got = adactrl_rewards(correct, lengths, tags, **options)
        want = _reference_adactrl(correct, lengths, tags, **reference_options)
        assert [g is None for g in got] == [w is None for w in want]
        assert [g for g in got if g is not None] == pytest.approx(
            [w for w in want if w is not None], abs=1e-12
        )


def test_adactrl_worked_example():
    # 11 of 16 correct: accuracy 0.6875 > 0.625, so the question is Easy. L_max = 1000.
    correct = [True] * 11 + [False] * 5
    lengths = [500] + [1000] * 15
    tags = ["easy", "hard", None] + ["easy"] * 13
    group = adactrl_group(correct, lengths, tags)
    assert group.difficulty == "easy" and group.accuracy == 0.6875 and group.l_max == 1000
    # sample 0: correct, [Easy], L = L_max / 2: 1 + 0.5 * 0.5 + 0.5 * 1
    assert group.length_terms[0] == pytest.approx(0.5) and group.rewards[0] == pytest.approx(1.75)
    # sample 1: correct, wrong tag: 1 + 0 + 0.5 * 0;  sample 2: no tag: 1 - 0.5
    assert group.rewards[1] == 1.0 and group.rewards[2] == 0.5
    # the longest correct [Easy] sample gets length term 0; a wrong one gets no length term
    assert group.length_terms[3] == pytest.approx(0.0) and group.rewards[15] == -0.5


def test_adactrl_threshold_is_strict_and_unscorable_is_masked():
    ten_of_sixteen = [True] * 10 + [False] * 6
    assert adactrl_group(ten_of_sixteen, [1] * 16, ["hard"] * 16).difficulty == "hard"
    group = adactrl_group([True, None, True, False], [10, 99, 20, 30], ["easy"] * 4,
                          easy_threshold=0.5)  # fmt: skip
    assert group.accuracy == pytest.approx(2 / 3) and group.difficulty == "easy"
    assert group.l_max == 99 and group.rewards[1] is None and group.format_terms[1] is None
    nothing = adactrl_group([None, None], [3, 4], [None, "easy"])
    assert nothing.difficulty is None and nothing.rewards == (None, None)


def test_adactrl_accepts_numpy_and_tag_case():
    got = adactrl_rewards(np.array([True, False]), np.array([3, 4]), ["Easy", "HARD"])
    assert got == adactrl_rewards([True, False], [3, 4], ["easy", "hard"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([True], [1, 2], [None]), "correct, lengths and tags must be non-empty and of one length"),
        (([], [], []), "correct, lengths and tags must be non-empty"),
        (([1], [1], [None]), "correct[0] must be a bool or None (unscorable), got 1"),
        (([True], [-1], [None]), "lengths[0] must be an int >= 0, got -1"),
        (
            ([True], [1], ["[Easy]"]),
            "tags[0] must be 'easy', 'hard' or None (no tag), got '[Easy]'",
        ),
    ],
)
def test_adactrl_input_errors(args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        adactrl_rewards(*args)


def test_difficulty_tag_and_cosine_term():
    assert parse_difficulty_tag("[Easy] 2 + 2 = 4") == "easy"
    assert parse_difficulty_tag("  [HARD]\nLet me think") == "hard"
    assert parse_difficulty_tag("Easy: 4") is None and parse_difficulty_tag("x [Easy]") is None
    assert cosine_length_term(0, 100) == 1.0 and cosine_length_term(100, 100) == pytest.approx(0.0)
    assert cosine_length_term(25, 100) == pytest.approx(1 - (1 - math.cos(math.pi / 4)) / 2)
    assert cosine_length_term(0, 0) == 1.0


def test_docs_examples_run(capsys):
    page = Path(__file__).resolve().parents[2] / "docs" / "shaping.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 3
    for code in blocks:
        exec(compile(code, str(page), "exec"), {"__name__": "docs_example"})  # noqa: S102
    assert "{'format': 0.1, 'length': -0.075}" in capsys.readouterr().out
