"""The plugin's strategy: ``best_of_n`` trains by config name alone, and a run config that pairs
it with an algorithm it cannot train fails when it loads.

These tests need rewardgym's training extra (``pip install 'rewardgym[training]'``)."""

from __future__ import annotations

import json
import re

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardgym import ConfigError, load_config  # noqa: E402
from rewardgym.runner.trainer import Trainer  # noqa: E402

TINY = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 256}


def _config(tmp_path, **overrides):
    config = {
        "env": {"id": "example/reverse-v0", "params": {"min_length": 2, "max_length": 3}},
        "model": {"name_or_path": "tiny", "params": TINY},
        "algorithm": {"name": "sft"},
        "strategy": "best_of_n",
        "strategies": {"best_of_n": {"n": 4, "min_reward": 0.0}},
        "rollout": {"prompts_per_step": 4, "max_new_tokens": 6},
        "trainer": {"steps": 3, "lr": 3e-3},
        "eval": {"episodes": 4},
        "output_dir": str(tmp_path / "run"),
    }
    return load_config({**config, **overrides})


def test_the_strategy_is_listed_by_name():
    import rewardgym

    spec = rewardgym.STRATEGIES.get("best_of_n")
    assert "rewardgym-example-plugin" in spec.origin


def test_best_of_n_trains_sft_by_config_name(tmp_path):
    config = _config(tmp_path)
    assert config.strategies["best_of_n"] == {"n": 4, "min_reward": 0.0}
    Trainer(config, progress=False, log=lambda message: None).run()
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    for line in lines:
        assert line["kept"] == 4.0  # min_reward 0: the best of every prompt is kept
        assert torch.isfinite(torch.tensor(line["loss"])) and line["grad_norm"] > 0


def test_an_algorithm_it_cannot_train_fails_at_load(tmp_path):
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "Algorithm 'grpo' (stage 'train') trains with the 'standard' strategy, but strategy "
            "is 'best_of_n' ('best_of_n' can train the algorithms of: demonstrations)."
        ),
    ):
        _config(tmp_path, algorithm={"name": "grpo"})


def test_its_params_are_validated_at_load(tmp_path):
    with pytest.raises(ConfigError, match="Unknown param 'nn' for strategy 'best_of_n'"):
        _config(tmp_path, strategies={"best_of_n": {"nn": 4}})
