"""Strategies as registered components: the built-ins, pairing with algorithms (checked when a
config loads or a run is checked, before any model loads), algorithms written for the earlier
API, a strategy from a plugin fixture, the AdaCtrl group reward of ``standard``, and the defects
fixed when the steps became strategies (each test here failed on the runner they replaced)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import ClassVar

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardgym import hookimpl  # noqa: E402
from rewardgym.algorithms.base import Algorithm, LossScale  # noqa: E402
from rewardgym.algorithms.dpo import DPO, DPOConfig  # noqa: E402
from rewardgym.algorithms.grpo import GRPO  # noqa: E402
from rewardgym.algorithms.sft import SFTConfig, nll_loss  # noqa: E402
from rewardgym.core.config import TrainerSection, load_config, plan  # noqa: E402
from rewardgym.core.errors import ConfigError, RewardGymError  # noqa: E402
from rewardgym.core.registry import ALGORITHMS, STRATEGIES  # noqa: E402
from rewardgym.core.shaping import adactrl_group  # noqa: E402
from rewardgym.core.types import Task, Verdict  # noqa: E402
from rewardgym.plugins.manager import get_plugin_manager  # noqa: E402
from rewardgym.runner.evaluate import summarise  # noqa: E402
from rewardgym.runner.learner import PolicyLearner  # noqa: E402
from rewardgym.runner.models import TinyModelConfig, build_tiny_model  # noqa: E402
from rewardgym.runner.setup import check_run  # noqa: E402
from rewardgym.runner.trainer import Trainer  # noqa: E402
from rewardgym.strategies import LossPart, Strategy, pack  # noqa: E402
from rewardgym.strategies.rollouts import Episode, score_metrics  # noqa: E402
from rewardgym.strategies.standard import AdaCtrlParams, adactrl_rewards  # noqa: E402

TINY = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 128}
TASK = {"difficulty": 1, "prompt_style": "plain", "ops": "+", "max_value": 3}
BUILT_IN = ("standard", "filtered", "demonstrations", "preferences", "anytime", "episodic")


def _config(tmp_path, **sections):
    base = {
        "env": {"id": "rewardgym/arithmetic-v0", "params": TASK},
        "model": {"name_or_path": "tiny", "params": TINY},
        "rollout": {"group_size": 4, "prompts_per_step": 4, "max_new_tokens": 4},
        "eval": {"episodes": 4},
        "trainer": {"steps": 2, "lr": 3e-3},
        "output_dir": str(tmp_path / "run"),
        "seed": 1,
    }
    return load_config({**base, **sections})


def _metrics(tmp_path):
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


# -- the registry --------------------------------------------------------------------------------
def test_the_built_in_strategies_are_registered_with_descriptions():
    for name in BUILT_IN:
        spec = STRATEGIES.get(name)
        assert spec.origin == "rewardgym (built-in)" and spec.description
        assert issubclass(spec.load(), Strategy)
    for name in ALGORITHMS.ids():
        declared = getattr(ALGORITHMS.get(name).load(), "strategy", None)
        if ALGORITHMS.get(name).origin == "rewardgym (built-in)":
            assert declared in BUILT_IN, name


# -- temporary plugins ---------------------------------------------------------------------------
class Legacy(Algorithm):
    """An algorithm written for the earlier API: ``data`` and ``select``, no ``strategy``."""

    data: ClassVar[str] = "rollouts"

    def select(self, rewards, scorable, group_size):
        return scorable.clone()

    def loss(self, logprobs, mask, scale):
        return nll_loss(logprobs, mask, scale, "token_mean")


class LegacyDemonstrations(Legacy):
    data: ClassVar[str] = "demonstrations"


class NoStrategy:
    """Declares no strategy and no data."""

    def __init__(self, config=None):
        self.config = config
        self.needs_reference = False


class AnytimeWithoutMath(GRPO):
    """Declares the anytime strategy but lacks ``anytime_advantages``."""

    strategy: ClassVar[str] = "anytime"


class NanDPO(DPO):
    """DPO whose loss is not finite."""

    def loss(self, *args):
        loss, metrics = super().loss(*args)
        return loss * float("nan"), metrics


@dataclass(frozen=True)
class EchoConfig:
    times: int = 1


class Plugin:
    @hookimpl
    def rewardgym_register_algorithms(self, register):
        here = "tests.strategies.test_strategies"
        register("legacy_rft", f"{here}:Legacy", config="rewardgym.algorithms.rft:RFTConfig")
        register("legacy_sft", f"{here}:LegacyDemonstrations", config=SFTConfig)
        register("no_strategy", f"{here}:NoStrategy")
        register("anytime_grpo_nomath", f"{here}:AnytimeWithoutMath",
                 config="rewardgym.algorithms.grpo:GRPOConfig")  # fmt: skip
        register("nan_dpo", f"{here}:NanDPO", config=DPOConfig)


@pytest.fixture(scope="module")
def plugin():
    manager = get_plugin_manager()
    manager.register(Plugin(), name="strategies_test_plugin")
    yield
    manager.unregister("strategies_test_plugin")


# -- pairing algorithms and strategies -----------------------------------------------------------
def test_an_algorithm_written_for_the_earlier_api_trains_with_a_warning(tmp_path, plugin):
    with pytest.warns(DeprecationWarning, match="declares data = 'rollouts' but no strategy"):
        config = _config(tmp_path, algorithm={"name": "legacy_rft", "params": {"threshold": 0.0}})
    assert plan(config)[0].strategy.name == "filtered"
    Trainer(config, progress=False, log=lambda m: None).run()
    assert all(r["kept"] > 0 and math.isfinite(r["loss"]) for r in _metrics(tmp_path))
    with pytest.warns(DeprecationWarning, match="'demonstrations' strategy"):
        sft = _config(tmp_path, algorithm={"name": "legacy_sft"})
    assert plan(sft)[0].strategy.name == "demonstrations"


def test_an_algorithm_without_a_strategy_fails_before_the_model_loads(tmp_path, plugin):
    config = _config(tmp_path, algorithm={"name": "no_strategy"})
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "Algorithm 'no_strategy' (NoStrategy) declares no strategy (a `strategy` class "
            "attribute), so the stage does not know how to make its data. Set strategy (one of:"
        ),
    ):
        check_run(config)


def test_a_strategy_checks_the_methods_it_calls(tmp_path, plugin):
    config = _config(tmp_path, algorithm={"name": "anytime_grpo_nomath"})
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "The 'anytime' strategy (stage 'train') trains a PolicyGradient algorithm with "
            "anytime_advantages(); 'anytime_grpo_nomath' (AnytimeWithoutMath) is not one."
        ),
    ):
        check_run(config)


def test_a_strategy_named_for_an_algorithm_it_cannot_train_fails_at_load(tmp_path):
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "Algorithm 'sft' (stage 'train') trains with the 'demonstrations' strategy, but "
            "strategy is 'standard'. Set strategy=demonstrations, or remove it"
        ),
    ):
        _config(tmp_path, algorithm={"name": "sft"}, strategy="standard")


# -- defects fixed -------------------------------------------------------------------------------
def test_a_non_finite_preference_loss_stops_the_step(tmp_path, plugin):
    """The DPO step had its own optimizer loop without the non-finite gradient guard: a NaN
    loss stepped the optimizer and poisoned the weights. Every strategy now shares one."""
    pairs = tmp_path / "pairs.jsonl"
    rows = [{"prompt": f"{i}+1=", "chosen": str(i + 1), "rejected": "0"} for i in range(4)]
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    params = {"source": "jsonl", "path": str(pairs)}
    config = _config(tmp_path, algorithm={"name": "nan_dpo", "params": params})
    trainer = Trainer(config, progress=False, log=lambda m: None)
    with pytest.raises(RewardGymError, match="The gradient norm is nan at this step"):
        trainer.run()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_the_log_prob_gap_covers_every_micro_batch():
    """The gap came back through a mutable list from the first micro-batch only."""
    model, _ = build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2))
    batch = pack([[1, 2], [1, 3]], [[4, 5, 6], [7, 8, 9]], [[1.0] * 3] * 2, None, 0)
    with torch.no_grad():
        from rewardgym.runner.batch import sequence_logprobs

        exact = sequence_logprobs(model, batch, 1.0)  # (2, 3)
    old = exact.clone()
    old[0] += 1.0  # row 0: the sampler's log-probs are off by 1; row 1: exact
    batch = type(batch)(
        batch.input_ids, batch.attention_mask, batch.prompt_len, batch.response_ids,
        batch.mask, old,
    )  # fmt: skip
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    trainer = TrainerSection(grad_accum=2)
    learner = PolicyLearner(model, None, optimizer, None, trainer, _NoEngine())

    def loss(part, rows):
        lp = learner.logprobs(part, 1.0)
        return -(lp * part.mask).sum() / 6, {"loss": 0.0}

    metrics = learner.update([LossPart(batch, loss, sampled=True)])
    assert metrics["logprob_gap"] == pytest.approx(0.5, abs=1e-5)  # 6 tokens, 3 off by 1
    assert "logprob_gap" not in learner.update([LossPart(batch, loss)])  # not sampled rows


class _NoEngine:
    def update_weights(self, model):
        pass


def test_score_metrics_average_the_scorable_rewards_only():
    metrics = score_metrics([1.0, 0.0, 0.0, 0.0], [True, True, False, False], [True] + [False] * 3)
    assert metrics == {"reward": 0.5, "unscorable": 2.0, "accuracy": 0.25}
    assert score_metrics([0.0], [False], [False])["reward"] == 0.0


def test_evaluation_does_not_count_unscorable_samples_as_reward_zero():
    """evaluate.summarise averaged an unscorable sample's placeholder 0 into mean_reward."""
    task = Task(prompt="1+1=", answer="2", id="t")

    def episode(reward, scorable):
        verdict = Verdict(reward if scorable else None, correct=bool(reward))
        return Episode(
            task, (1,), (2,), (True,), (0.0,), ("2",), (reward,), (verdict,), "eos", True
        )

    result = summarise([episode(1.0, True), episode(0.0, False)], samples=2, pass_k=[1])
    assert result["mean_reward"] == 1.0 and result["unscorable"] == 1
    assert result["accuracy"] == 0.5


def test_the_adactrl_group_reward_is_applied_by_the_standard_strategy():
    """The AdaCtrl group terms were documented as called by the runner; nothing called them."""
    task = Task(prompt="1+1=", answer="2", id="t")

    def episode(text, correct, length, scorable=True):
        verdict = Verdict(float(correct) if scorable else None, correct=correct and scorable)
        ids = tuple(range(length))
        return Episode(task, (1,), ids, (True,) * length, (0.0,) * length, (text,),
                       (float(correct),), (verdict,), "eos", True)  # fmt: skip

    group = [
        episode("[Easy] 2", True, 2),
        episode("[Easy] 2 ...", True, 6),
        episode("[Hard] 3", False, 4),
        episode("no tag 2", True, 3, scorable=False),
    ]
    params = AdaCtrlParams()
    rewards, scorable, metrics = adactrl_rewards(group, 4, params)
    want = adactrl_group(
        [True, True, False, None], [2, 6, 4, 3], ["easy", "easy", "hard", None]
    ).rewards
    assert rewards.tolist()[:3] == pytest.approx(list(want[:3]))
    assert scorable.tolist() == [True, True, True, False] and rewards[3] == 0.0
    assert metrics == {"adactrl/easy_groups": 1.0, "adactrl/tagged": 0.75}


def test_grpo_trains_on_the_adactrl_group_reward(tmp_path):
    config = _config(
        tmp_path,
        algorithm={"name": "grpo"},
        strategies={"standard": {"group_reward": "adactrl", "adactrl": {"length_weight": 0.2}}},
    )
    assert plan(config)[0].strategy.params["adactrl"]["length_weight"] == 0.2
    Trainer(config, progress=False, log=lambda m: None).run()
    for record in _metrics(tmp_path):
        assert {"adactrl/easy_groups", "adactrl/tagged"} <= set(record)
        assert math.isfinite(record["loss"])


def test_loss_scale_is_shared_by_every_micro_batch():
    scale = LossScale(num_rows=4, num_tokens=10, max_tokens=3)
    assert (scale.num_rows, scale.num_tokens, scale.max_tokens) == (4, 10, 3)
