"""The reasoning-gym adapter: every dataset registered, checked, scored, configured."""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("reasoning_gym")

import rewardgym  # noqa: E402
from rewardgym.core.config import load_config, to_dict, to_yaml  # noqa: E402
from rewardgym.core.errors import ConfigError, UnknownNameError  # noqa: E402
from rewardgym.core.registry import ENVS, VERIFIERS  # noqa: E402
from rewardgym.core.types import Task  # noqa: E402
from rewardgym.envs._reasoning_gym_config import CONFIGS, widened_fields  # noqa: E402
from rewardgym.envs.reasoning_gym import (  # noqa: E402
    ANSWER_INSTRUCTION,
    DEFAULT_DATASET_SEED,
    ReasoningGymEnv,
    ReasoningGymVerifier,
    env_id,
    extract_final_answer,
)
from rewardgym.plugins.reasoning_gym import EXCLUDED  # noqa: E402
from rewardgym.testing import check_env, check_verifier  # noqa: E402

ORIGIN = "rewardgym (built-in, reasoning-gym)"


def _datasets() -> list[str]:
    from reasoning_gym.factory import DATASETS

    return sorted(DATASETS)


REGISTERED = [n for n in _datasets() if n not in EXCLUDED]


# -- registration ------------------------------------------------------------------------------
def test_every_dataset_is_registered_as_env_and_verifier():
    for registry in (ENVS, VERIFIERS):
        ids = {i for i in registry.ids() if i.startswith("reasoning_gym/")}
        assert ids == {env_id(n) for n in REGISTERED}
        assert {registry.get(i).origin for i in ids} == {ORIGIN}
    assert len(REGISTERED) == len(_datasets()) - len(EXCLUDED)
    assert env_id("composite") not in ENVS


@pytest.mark.parametrize("name", REGISTERED)
def test_every_env_passes_check_env(name):
    # Slowest (2 cores, reasoning-gym 0.1.25): the datasets that evaluate answers (countdown,
    # puzzle24, simple/intermediate_integration, polynomial_multiplication: ~15 s each;
    # binary_matrix, n_queens, spiral_matrix, string_insertion: ~5 s) reach the 5 s limit on
    # "10**10**10" and "1e999999"; futoshiki, zebra_puzzles take 0.1-1 s per generated task.
    check_env(env_id(name), episodes=2, garbage_actions=5)


def test_registered_envs_are_gymnasium_envs_too():
    import gymnasium

    env = gymnasium.make(env_id("basic_arithmetic"), max_terms=2)
    prompt, info = env.reset(seed=4)
    assert prompt == info["task"].prompt and prompt.endswith(ANSWER_INSTRUCTION)
    env.close()


# -- params ------------------------------------------------------------------------------------
def test_every_config_validates_round_trips_and_prints_as_yaml():
    for name in REGISTERED:
        config = ENVS.make_config(env_id(name), {})
        assert isinstance(config, CONFIGS.__getattr__(name))
        again = ENVS.make_config(env_id(name), to_dict(config))  # as load_config resolves it
        assert to_dict(again) == to_dict(config), name
        run = load_config({"env": {"id": env_id(name)}})
        assert f"id: {env_id(name)}" in to_yaml(run)


def test_widened_annotations_are_exactly_where_reasoning_gyms_defaults_contradict_them():
    from reasoning_gym.factory import DATASETS

    widened = {n: sorted(widened_fields(DATASETS[n][1])) for n in _datasets()}
    assert {n: f for n, f in widened.items() if f} == {
        "composite": ["datasets"],  # list[DatasetSpec] = None
        "intermediate_integration": ["symbols"],  # tuple = "x"
        "polynomial_multiplication": ["variables"],  # tuple[str] = ("x", "y", "z")
        "rearc": ["diff_ub"],  # int = 0.2
    }


def test_params_are_validated_with_did_you_mean_and_reasoning_gyms_own_checks():
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "Unknown param 'min_numbrs' for environment 'reasoning_gym/countdown-v0'. "
            "Did you mean 'min_numbers'?"
        ),
    ):
        rewardgym.make(env_id("countdown"), min_numbrs=3)
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "Wrong type for param 'max_numbers' of environment 'reasoning_gym/countdown-v0': "
            "got '5' (str), expected int."
        ),
    ):
        rewardgym.make(env_id("countdown"), max_numbers="5")
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "Invalid params for environment 'reasoning_gym/countdown-v0': reasoning-gym rejected "
            "the config of 'countdown': max_numbers must be >= min_numbers"
        ),
    ):
        load_config({"env": {"id": env_id("countdown"), "params": {"min_numbers": 7}}})


def test_yaml_lists_fit_tuple_fields_and_iso_strings_fit_time_fields():
    run = load_config({"env": {"id": env_id("countdown"), "params": {"operators": ["+", "-"]}}})
    env = rewardgym.make(run.env.id, **run.env.params)
    assert env.config.operators == ("+", "-") and type(env.config).__name__ == "CountdownConfig"
    env = rewardgym.make(env_id("time_intervals"), min_time="08:30:00", max_date="2030-01-01")
    import datetime

    assert env.config.min_time == datetime.time(8, 30)
    assert env.config.max_date == datetime.date(2030, 1, 1)
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "Bad value for param 'min_time' of environment 'reasoning_gym/time_intervals-v0': got "
            "'8h30' (str), expected an ISO 8601 time such as '13:45:00'."
        ),
    ):
        rewardgym.make(env_id("time_intervals"), min_time="8h30")


def test_widened_field_accepts_the_default_again():
    env = rewardgym.make(env_id("polynomial_multiplication"), variables=["x", "y", "z"])
    assert env.config.variables == ("x", "y", "z")
    env = rewardgym.make(env_id("rearc"), diff_ub=0.3)
    assert env.config.diff_ub == 0.3


def test_unknown_dataset_and_wrong_config_class():
    with pytest.raises(
        UnknownNameError,
        match=re.escape("reasoning-gym has no dataset named 'countdwn'. Did you mean 'countdown'?"),
    ):
        ReasoningGymEnv("countdwn")
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "The config of reasoning-gym dataset 'countdown' must be a CountdownConfig, a mapping "
            "of its params or None; got int."
        ),
    ):
        ReasoningGymEnv("countdown", 3)


def test_composite_is_not_registered_but_can_be_built_directly():
    spec = {"name": "basic_arithmetic", "weight": 1.0, "config": {"max_terms": 2}}
    env = ReasoningGymEnv("composite", {"datasets": [spec], "size": 10})
    _, info = env.reset(seed=0)
    assert env.step(f"<answer>{info['task'].answer}</answer>")[1] == 1.0
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "reasoning-gym rejected the config of 'composite': Must specify at least one dataset"
        ),
    ):
        ReasoningGymEnv("composite")


# -- tasks and seeds ---------------------------------------------------------------------------
def test_seed_none_means_the_default_pool_and_reset_seed_picks_a_task():
    a, b = ReasoningGymEnv("chain_sum"), ReasoningGymEnv("chain_sum", {"seed": None})
    assert a.config.seed == b.config.seed == DEFAULT_DATASET_SEED
    assert a.reset(seed=5)[1]["task"] == b.reset(seed=5)[1]["task"]
    other = ReasoningGymEnv("chain_sum", {"seed": 123})
    assert a.reset(seed=5)[1]["task"] != other.reset(seed=5)[1]["task"]
    one = ReasoningGymEnv("chain_sum", {"size": 1})
    assert len({one.reset(seed=s)[0] for s in range(10)}) == 1
    _, info = a.reset(seed=5)
    index = info["task"].metadata["index"]
    assert info["task"].id == f"reasoning_gym/chain_sum:{DEFAULT_DATASET_SEED}:{index}"
    assert info["task"].metadata["entry"] == a.dataset[index]


def test_generating_a_task_leaves_the_global_random_state_alone():
    env = ReasoningGymEnv("pool_matrix")  # reasoning-gym seeds numpy's global generator
    random.seed(1), np.random.seed(1)
    expected = (random.random(), np.random.random())
    random.seed(1), np.random.seed(1)
    env.reset(seed=3)
    assert (random.random(), np.random.random()) == expected


def test_entries_are_generated_once_and_handed_out_as_copies(monkeypatch):
    env = ReasoningGymEnv("chain_sum", {"size": 3})
    calls = []
    original = type(env.dataset).__getitem__
    monkeypatch.setattr(
        type(env.dataset), "__getitem__", lambda self, i: calls.append(i) or original(self, i)
    )
    tasks = [env.reset(seed=s)[1]["task"] for s in range(20)]
    assert len(calls) == len(set(calls)) == len({t.id for t in tasks})
    tasks[0].metadata["entry"]["answer"] = "tampered"
    again = env.reset(seed=0)[1]["task"]
    assert again.metadata["entry"]["answer"] == again.answer != "tampered"


def test_what_reasoning_gym_prints_goes_to_stderr(capfd):
    for name in ("bf", "codeio"):  # both print while generating tasks
        env = ReasoningGymEnv(name)
        for seed in range(30):
            env.reset(seed=seed)
    assert capfd.readouterr().out == ""


# -- answers and scores ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("<answer>42</answer>", "42"),
        ("think <answer>1</answer> more <answer>\n 7 \n</answer> done", "7"),
        ("  just text \n", "just text"),
        ("<answer>unclosed", "<answer>unclosed"),
        ("", ""),
    ],
)
def test_extract_final_answer(response, expected):
    assert extract_final_answer(response) == expected


@pytest.mark.parametrize("name", ["basic_arithmetic", "word_sorting", "maze", "sudoku"])
def test_gold_answers_score_one_with_or_without_tags(name):
    env = ReasoningGymEnv(name)
    for seed in range(3):
        _, info = env.reset(seed=seed)
        gold = info["task"].answer
        for response in (f"Let me think.\n<answer>{gold}</answer>", gold):
            env.reset(seed=seed)
            _, reward, terminated, _, step_info = env.step(response)
            assert (reward, terminated, step_info["correct"]) == (1.0, True, True)


def test_verifier_right_wrong_partial_and_hostile():
    env = ReasoningGymEnv("basic_arithmetic")
    _, info = env.reset(seed=1)
    task = info["task"]
    cases = [
        (f"<answer>{task.answer}</answer>", task, 1.0),
        (f"<answer>{int(task.answer) + 1}</answer>", task, 0.0),
        (f"<answer> {task.answer} </answer>", task, 1.0),
        ("no idea", task, 0.0),
    ]
    check_verifier(ReasoningGymVerifier("basic_arithmetic"), cases)


def test_partial_credit_is_a_reward_but_not_correct():
    # reasoning-gym's default score_answer: len(gold) / len(answer) when the answer contains it
    task = ReasoningGymEnv("gcd").reset(seed=0)[1]["task"]
    answer = f"{task.answer} or so"
    verdict = ReasoningGymVerifier("gcd").verify(f"<answer>{answer}</answer>", task)
    assert verdict.reward == pytest.approx(len(task.answer) / len(answer))
    assert not verdict.correct and verdict.extracted == answer


def test_score_answer_exceptions_and_foreign_tasks_are_unscorable():
    verifier = ReasoningGymVerifier("coin_flip")
    task = ReasoningGymEnv("coin_flip").reset(seed=0)[1]["task"]
    verdict = verifier.verify("1e999999", task)  # reasoning-gym 0.1.25 overflows on it
    assert verdict.reward is None
    assert verdict.reason.startswith("reasoning-gym's score_answer for 'coin_flip' raised ")
    foreign = verifier.verify("1", Task("q", answer="1"))
    assert foreign.reward is None and "not a reasoning-gym 'coin_flip' task" in foreign.reason


def test_hostile_answers_are_contained_by_the_pool():
    env = ReasoningGymEnv("binary_matrix")  # evaluates answers with Python's eval
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step("__import__('os')._exit(3)")
    assert terminated and reward == 0.0 and info["verdict"].reward is None


class _RecordingPool:
    """A run-level pool stand-in: scores in ``pool``, records start-ups and call timeouts."""

    def __init__(self, pool):
        self.pool, self.started, self.timeouts = pool, [], []

    @property
    def closed(self):
        return self.pool.closed

    def start(self, *verifiers):
        self.started.append(verifiers)
        self.pool.start(*verifiers)

    def verify(self, response, task, verifier=None, *, timeout=None):
        self.timeouts.append(timeout)
        return self.pool.verify(response, task, verifier, timeout=timeout)


def test_an_env_made_with_a_pool_loads_its_verifier_there_and_keeps_its_timeout():
    from rewardgym.core.verify import VerifierPool
    from rewardgym.envs.reasoning_gym import VERIFY_TIMEOUT_S

    with VerifierPool(workers=1, timeout=30.0) as given:
        pool = _RecordingPool(given)
        env = rewardgym.make(env_id("coin_flip"), verifier_pool=pool)
        for seed in (0, 1):
            _, info = env.reset(seed=seed)
            _, reward, *_ = env.step(f"<answer>{info['task'].answer}</answer>")
            assert reward == 1.0
        assert pool.started == [(env.verifier,)]  # loaded into the workers once
        assert pool.timeouts == [VERIFY_TIMEOUT_S] * 2 and given.stats.calls == 2


def test_make_verifier_and_pickling():
    import pickle

    verifier = rewardgym.make_verifier(env_id("countdown"), max_numbers=4)
    assert verifier.config.max_numbers == 4
    clone = pickle.loads(pickle.dumps(verifier))
    assert clone.config == verifier.config and clone._dataset is None
    factory = ENVS.get(env_id("countdown")).entry_point
    assert pickle.loads(pickle.dumps(factory)) == factory
    assert isinstance(factory(), ReasoningGymEnv) and factory().dataset_name == "countdown"


# -- docs --------------------------------------------------------------------------------------
def test_docs_example_runs(capsys):
    page = Path(__file__).resolve().parents[2] / "docs" / "envs" / "reasoning_gym.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, str(page), "exec"), {"__name__": "docs_example"})  # noqa: S102
