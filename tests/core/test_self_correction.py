"""Self-correction (RISE-style) around single-turn envs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import rewardgym
from rewardgym.core.config import load_config
from rewardgym.core.errors import ConfigError, EnvError
from rewardgym.core.self_correction import (
    SelfCorrection,
    SelfCorrectionConfig,
    majority_vote,
    make_self_correction,
)
from rewardgym.core.types import Verdict
from rewardgym.core.wrappers import TokenBudget
from rewardgym.envs.arithmetic import ArithmeticConfig, ArithmeticEnv
from rewardgym.plugins.hookspecs import hookimpl
from rewardgym.testing import check_env

ID = "rewardgym/self_correct-v0"
GENERIC = "Your answer is incorrect. Please try again."


class SelfCorrectionPlugin:
    @hookimpl
    def rewardgym_register_envs(self, register):
        register(
            ID,
            "rewardgym.core.self_correction:make_self_correction",
            config="rewardgym.core.self_correction:SelfCorrectionConfig",
            description="Self-correction around a single-turn env.",
        )


@pytest.fixture
def registered(rewardgym_plugin):
    if ID not in rewardgym.ENVS:  # registered for the test, unless rewardgym already does
        rewardgym_plugin(SelfCorrectionPlugin(), name="self_correction_test")


def _v(answer: str | None, correct: bool = False) -> Verdict:
    return Verdict(1.0 if correct else 0.0, correct=correct, extracted=answer)


# -- majority vote -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([_v("3"), _v("3"), _v("4", True)], ("3", False)),
        ([_v("3"), _v("4", True)], ("4", True)),  # a tie goes to the latest answer
        ([_v("4", True), _v("3")], ("3", False)),
        ([_v("5"), _v("6"), _v("5"), _v("6")], ("6", False)),
        ([_v(None), _v("2", True), _v(None)], ("2", True)),  # turns without an answer abstain
        ([_v(None), Verdict.unscorable("timed out")], (None, False)),
        ([], (None, False)),
    ],
)
def test_majority_vote(verdicts, expected):
    assert majority_vote(verdicts) == expected


def test_majority_correct_is_that_of_the_latest_turn_with_the_answer():
    verdicts = [Verdict(1.0, correct=True, extracted="7"), Verdict(0.5, extracted="7")]
    assert majority_vote(verdicts) == ("7", False)


# -- episodes ----------------------------------------------------------------------------------
def test_wrong_answers_get_feedback_until_max_turns_then_majority():
    env = SelfCorrection(ArithmeticEnv(), max_turns=3)
    prompt, info = env.reset(seed=1)
    assert info["turn_rewards"] == [] and info["task"].prompt == prompt
    gold = int(info["task"].answer)
    steps = [env.step(f"Answer: {a}") for a in (gold + 1, gold + 2, gold + 1)]
    assert [s[0] for s in steps] == [GENERIC, GENERIC, ""]
    assert [s[2] for s in steps] == [False, False, True]
    assert [s[1] for s in steps] == [0.0, 0.0, 0.0]
    last = steps[-1][4]
    assert last["turn_rewards"] == [0.0, 0.0, 0.0] and last["turn"] == 3
    assert last["turn_answers"] == [str(gold + 1), str(gold + 2), str(gold + 1)]
    assert (last["majority_answer"], last["majority_correct"]) == (str(gold + 1), False)
    assert steps[1][4]["majority_answer"] == str(gold + 2)  # the vote so far: a tie, latest
    with pytest.raises(EnvError, match=re.escape("after the episode ended")):
        env.step("Answer: 1")


def test_a_correct_answer_ends_the_episode():
    env = SelfCorrection(ArithmeticEnv(), max_turns=4)
    _, info = env.reset(seed=2)
    gold = info["task"].answer
    env.step("no idea")
    _, reward, terminated, _, info = env.step(f"Answer: {gold}")
    assert (reward, terminated, info["correct"]) == (1.0, True, True)
    assert info["turn_rewards"] == [0.0, 1.0] and info["turn_answers"] == [None, gold]
    assert (info["majority_answer"], info["majority_correct"]) == (gold, True)


def test_reason_feedback_shows_the_verifiers_reason():
    env = SelfCorrection(ArithmeticEnv(), max_turns=2, feedback="reason", render_mode="ansi")
    _, info = env.reset(seed=3)
    wrong = int(info["task"].answer) + 1
    observation = env.step(f"Answer: {wrong}")[0]
    assert observation == (
        f"Your answer is incorrect: {wrong} is not the correct result. Please try again."
    )
    assert env.render().splitlines()[1:] == [f"[model] Answer: {wrong}", f"[env] {observation}"]


def test_same_seed_same_task_as_the_inner_env():
    inner, wrapped = (
        ArithmeticEnv(ArithmeticConfig(difficulty=3)),
        SelfCorrection(ArithmeticEnv(ArithmeticConfig(difficulty=3))),
    )
    for seed in range(5):
        assert inner.reset(seed=seed)[0] == wrapped.reset(seed=seed)[0]


def test_token_budget_goes_around_it():
    env = TokenBudget(SelfCorrection(ArithmeticEnv(), max_turns=3), per_episode=30)
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step("x" * 20)
    assert not (terminated or truncated) and info["budget"]["remaining"] == 10
    _, _, terminated, truncated, info = env.step("x" * 20)
    assert truncated and info["budget_cut"] and info["turn_rewards"] == [0.0, 0.0]
    assert info["majority_answer"] is None  # no integer in either turn


def test_passes_check_env():
    check_env(SelfCorrection(ArithmeticEnv(), max_turns=3), episodes=4, garbage_actions=5)


def test_works_around_a_reasoning_gym_env():
    pytest.importorskip("reasoning_gym")
    from rewardgym.envs.reasoning_gym import ReasoningGymEnv

    env = SelfCorrection(ReasoningGymEnv("chain_sum"), max_turns=2, feedback="reason")
    _, info = env.reset(seed=0)
    observation, _, terminated, _, _ = env.step("<answer>definitely wrong</answer>")
    assert not terminated and observation.startswith("Your answer is incorrect: ")
    _, reward, terminated, _, info = env.step(f"<answer>{info['task'].answer}</answer>")
    assert (reward, terminated, info["turn_rewards"]) == (1.0, True, [0.0, 1.0])
    check_env(SelfCorrection(ReasoningGymEnv("chain_sum")), episodes=2, garbage_actions=2)


# -- construction errors -----------------------------------------------------------------------
def test_construction_errors():
    with pytest.raises(
        TypeError,
        match=re.escape("SelfCorrection wraps a rewardgym TextEnv (possibly wrapped), got str."),
    ):
        SelfCorrection("rewardgym/arithmetic-v0")
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "SelfCorrection wraps single-turn envs, but ArithmeticEnv has max_turns=2; build it "
            "with max_turns=1 (SelfCorrection does the retrying)."
        ),
    ):
        SelfCorrection(ArithmeticEnv(ArithmeticConfig(max_turns=2)))
    with pytest.raises(
        ConfigError, match=re.escape("self-correction max_turns must be an int >= 1, got 0")
    ):
        SelfCorrection(ArithmeticEnv(), max_turns=0)
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "self-correction feedback must be one of ('generic', 'reason'), got 'verbose'"
        ),
    ):
        SelfCorrection(ArithmeticEnv(), feedback="verbose")


# -- the registered env ------------------------------------------------------------------------
def test_registered_env_is_configured_and_checked(registered):
    env = rewardgym.make(ID, env_params={"difficulty": 2}, max_turns=2, feedback="reason")
    assert isinstance(env, SelfCorrection) and env.max_turns == 2
    assert env.inner.config.difficulty == 2
    check_env(ID, params={"max_turns": 2}, episodes=2, garbage_actions=5)


def test_config_resolves_inner_params_and_reports_errors(registered):
    run = load_config({"env": {"id": ID, "params": {"env_params": {"difficulty": 3}}}})
    assert run.env.params == {
        "env_id": "rewardgym/arithmetic-v0",
        "env_params": {
            "difficulty": 3,
            "max_turns": 1,
            "feedback": "generic",
            "prompt_style": "instruct",
            "operands": None,
            "max_value": None,
            "ops": None,
        },
        "max_turns": 3,
        "feedback": "generic",
    }
    cases = [
        (
            {"env_id": "rewardgym/arithmetc-v0"},
            "self-correction env_id: No environment named 'rewardgym/arithmetc-v0' is registered. "
            "Did you mean 'rewardgym/arithmetic-v0'?",
        ),
        (
            {"env_params": {"dificulty": 2}},
            "Unknown param 'dificulty' for environment 'rewardgym/arithmetic-v0'. "
            "Did you mean 'difficulty'?",
        ),
        (
            {"env_params": {"max_turns": 2}},
            "self-correction wraps single-turn envs; env_params sets max_turns=2 for "
            "'rewardgym/arithmetic-v0'. Remove it: max_turns of the self-correction env sets the "
            "attempts.",
        ),
        ({"env_id": ID}, f"self-correction env_id cannot be '{ID}' itself"),
        ({"feedback": "loud"}, "self-correction feedback must be one of"),
    ]
    for params, message in cases:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config({"env": {"id": ID, "params": params}})
    assert isinstance(make_self_correction(SelfCorrectionConfig(max_turns=1)), SelfCorrection)


def test_docs_example_runs(registered, capsys):
    page = Path(__file__).resolve().parents[2] / "docs" / "envs" / "self_correction.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, str(page), "exec"), {"__name__": "docs_example"})  # noqa: S102


def test_a_verifier_pool_given_to_self_correction_reaches_the_inner_env(registered):
    from rewardgym.core.verify import VerifierPool

    with VerifierPool(workers=1, timeout=10.0) as pool:
        env = rewardgym.make(ID, verifier_pool=pool, env_id="rewardgym/math-v0")
        assert env.verifier_pool() is pool and env.inner.unwrapped.verifier_pool() is pool
        _, info = env.reset(seed=0)
        _, reward, terminated, _, info = env.step(f"\\boxed{{{info['task'].answer}}}")
        assert (reward, terminated) == (1.0, True)
        assert pool.stats.calls == 1  # the inner env scored the turn in the given pool
        direct = SelfCorrection(rewardgym.make("rewardgym/math-v0"))
        direct.use_verifier_pool(pool)
        assert direct.inner.verifier_pool() is pool
