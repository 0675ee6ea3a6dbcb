"""Config validation (messages pinned), the contract attributes the trainer reads, and every
built-in algorithm built through the registry."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("torch")

from rewardgym.algorithms.base import Algorithm, LossScale, PolicyGradient  # noqa: E402
from rewardgym.algorithms.dpo import DPO, DPOConfig  # noqa: E402
from rewardgym.algorithms.dr_grpo import DrGRPO, DrGRPOConfig  # noqa: E402
from rewardgym.algorithms.grpo import GRPO, GRPOConfig  # noqa: E402
from rewardgym.algorithms.reinforce_pp import ReinforcePP, ReinforcePPConfig  # noqa: E402
from rewardgym.algorithms.rft import RFT, RFTConfig  # noqa: E402
from rewardgym.algorithms.rloo import RLOO, RLOOConfig  # noqa: E402
from rewardgym.algorithms.sft import SFT, SFTConfig  # noqa: E402
from rewardgym.core.errors import ConfigError  # noqa: E402
from rewardgym.core.registry import ALGORITHMS, STRATEGIES  # noqa: E402

BAD = [
    (
        GRPOConfig, {"clip_eps": -0.1},
        "grpo clip_eps must be a number > 0, got -0.1. Set clip_eps to such a value "
        "(for example 0.2).",
    ),
    (GRPOConfig, {"clip_eps_high": 0}, "grpo clip_eps_high must be a number > 0, got 0."),
    (GRPOConfig, {"kl_coef": True}, "grpo kl_coef must be a number >= 0, got True."),
    (DrGRPOConfig, {"kl_coef": -1.0}, "dr_grpo kl_coef must be a number >= 0, got -1.0."),
    (GRPOConfig, {"std_eps": 0.0}, "grpo std_eps must be a number > 0, got 0.0."),
    (GRPOConfig, {"scale_by_std": "yes"}, "grpo scale_by_std must be true or false, got 'yes'."),
    (
        GRPOConfig, {"aggregation": "tokenmean"},
        "Bad value for param 'aggregation' of algorithm 'grpo': got 'tokenmean' (str), "
        "expected one of 'token_mean', 'seq_mean', 'constant'. Did you mean 'token_mean'?",
    ),
    (RLOOConfig, {"clip_eps": float("nan")}, "rloo clip_eps must be a number > 0, got nan."),
    (
        RLOOConfig, {"aggregation": "sum"},
        "Bad value for param 'aggregation' of algorithm 'rloo': got 'sum' (str), expected "
        "one of 'token_mean', 'seq_mean', 'constant'.",
    ),
    (
        ReinforcePPConfig, {"baseline": "groups"},
        "Bad value for param 'baseline' of algorithm 'reinforce_pp': got 'groups' (str), "
        "expected one of 'none', 'group'. Did you mean 'group'?",
    ),
    (
        SFTConfig, {"source": "jsonl"},
        "sft source='jsonl' needs a path: set path to a JSONL file whose lines are objects "
        "with 'prompt', 'response'.",
    ),
    (
        SFTConfig, {"path": "demos.jsonl"},
        "sft path='demos.jsonl' is only read when source='jsonl', got source='env'. "
        "Set source to 'jsonl' to train on the file, or remove path.",
    ),
    (
        SFTConfig, {"source": "jsnol"},
        "Bad value for param 'source' of algorithm 'sft': got 'jsnol' (str), expected one of "
        "'env', 'jsonl'. Did you mean 'jsonl'?",
    ),
    (
        DPOConfig, {"source": "jsonl"},
        "dpo source='jsonl' needs a path: set path to a JSONL file whose lines are objects "
        "with 'prompt', 'chosen', 'rejected'.",
    ),
    (DPOConfig, {"beta": 0}, "dpo beta must be a number > 0, got 0."),
    (
        DPOConfig, {"label_smoothing": 0.5},
        "dpo label_smoothing must be a number >= 0 and < 0.5, got 0.5.",
    ),
    (RFTConfig, {"threshold": "1"}, "rft threshold must be a finite number, got '1'."),
    (
        RFTConfig, {"max_per_prompt": 0},
        "rft max_per_prompt must be an int >= 1 or null (no limit), got 0.",
    ),
]  # fmt: skip


@pytest.mark.parametrize("config,params,message", BAD, ids=lambda x: str(x)[:30])
def test_bad_values_raise_config_error(config, params, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config(**params)


def test_registry_names_the_algorithm():
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "Invalid params for algorithm 'grpo': grpo clip_eps must be a number > 0, got -1.0."
        ),
    ):
        ALGORITHMS.build("grpo", {"clip_eps": -1})


BUILT_INS = {
    "grpo": (GRPO, "standard"),
    "dr_grpo": (DrGRPO, "standard"),
    "rloo": (RLOO, "standard"),
    "reinforce_pp": (ReinforcePP, "standard"),
    "sft": (SFT, "demonstrations"),
    "rft": (RFT, "filtered"),
    "dpo": (DPO, "preferences"),
}


@pytest.mark.parametrize("name", sorted(BUILT_INS))
def test_built_ins_build_from_the_registry_with_defaults(name):
    cls, strategy = BUILT_INS[name]
    algo = ALGORITHMS.build(name, {})
    assert type(algo) is cls and isinstance(algo, Algorithm)
    assert algo.strategy == strategy and strategy in STRATEGIES
    assert algo.needs_reference is (name == "dpo")
    assert isinstance(algo, PolicyGradient) is (name in {"grpo", "dr_grpo", "rloo", "reinforce_pp"})


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo", "reinforce_pp"])
def test_policy_gradients_need_a_reference_iff_kl_coef_is_positive(name):
    assert ALGORITHMS.build(name, {"kl_coef": 0.01}).needs_reference
    assert not ALGORITHMS.build(name, {"kl_coef": 0.0}).needs_reference


def test_configs_are_frozen():
    config = GRPOConfig()
    with pytest.raises(AttributeError):
        config.clip_eps = 0.3  # type: ignore[misc]


@pytest.mark.parametrize("field", ["num_rows", "num_tokens", "max_tokens"])
def test_loss_scale_rejects_counts_below_one(field):
    values = {"num_rows": 2, "num_tokens": 5, "max_tokens": 4, field: 0}
    with pytest.raises(
        ConfigError, match=re.escape(f"LossScale {field} must be an int >= 1, got 0.")
    ):
        LossScale(**values)
