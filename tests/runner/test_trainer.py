"""End-to-end training on the CPU with a tiny model: every algorithm on a single-turn and a
multi-turn env, multi-stage runs, exact resume, and config errors raised before the model loads."""

from __future__ import annotations

import json
import math
import re

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardgym.core.config import load_config  # noqa: E402
from rewardgym.core.errors import ConfigError  # noqa: E402
from rewardgym.runner.trainer import Trainer  # noqa: E402

TINY = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 128}
# Sums of two numbers up to 3: a warm-up of a few dozen SFT steps gets the tiny model to answer
# some of them, so sampled groups mix right and wrong answers.
TASK = {"difficulty": 1, "prompt_style": "plain", "ops": "+", "max_value": 3}
SINGLE_TURN = {"id": "rewardgym/arithmetic-v0", "params": TASK}
MULTI_TURN = {"id": "rewardgym/arithmetic-v0", "params": {**TASK, "max_turns": 2}}


def _config(tmp_path, env, stages, **extra):
    base = {
        "env": env,
        "model": {"name_or_path": "tiny", "params": TINY},
        "rollout": {"group_size": 4, "prompts_per_step": 4, "max_new_tokens": 4},
        "eval": {"episodes": 8},
        "trainer": {"steps": 2, "lr": 3e-3},
        "stages": stages,
        "output_dir": str(tmp_path / "run"),
        "seed": 1,
    }
    for key, value in extra.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return load_config(base)


def _train(config, **kwargs):
    messages: list[str] = []
    trainer = Trainer(config, progress=False, log=messages.append, **kwargs)
    summary = trainer.run()
    return trainer, summary, messages


def _metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# SFT first so the model answers some tasks: rollout-based algorithms then see rewards vary
# within groups (pairs for DPO, kept samples for RFT, non-zero advantages for the rest).
WARMUP = {"name": "warmup", "algorithm": {"name": "sft"}, "trainer": {"steps": 40, "lr": 3e-3}}
ALGORITHMS = {
    "grpo": {},
    "dr_grpo": {},
    "rloo": {},
    "reinforce_pp": {"kl_coef": 0.01},
    "sft": {},
    "rft": {"threshold": 0.0},
    "dpo": {},
}


@pytest.mark.parametrize("env", [SINGLE_TURN, MULTI_TURN], ids=["single_turn", "multi_turn"])
@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_every_algorithm_trains_on_single_and_multi_turn_envs(tmp_path, name, env):
    stage = {"name": "main", "algorithm": {"name": name, "params": ALGORITHMS[name]}}
    config = _config(tmp_path, env, [WARMUP, stage])
    trainer, summary, _ = _train(config)
    warm = tmp_path / "run" / "checkpoints" / "00-warmup-step000040" / "state.pt"
    before = torch.load(warm, weights_only=False)["model"]
    after = trainer.model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, f"{name} left every parameter as it was after the warm-up"
    records = [r for r in _metrics(tmp_path / "run") if r["stage"] == "main"]
    assert [r["step"] for r in records] == [1, 2]
    for record in records:
        for key, value in record.items():
            if isinstance(value, float):
                assert math.isfinite(value), (key, value)
        assert record["grad_norm"] > 0, f"{name} did not update the parameters: {record}"
    assert [s["name"] for s in summary["stages"]] == ["warmup", "main"]


def test_multi_turn_rollouts_train_only_model_tokens(tmp_path):
    from rewardgym.strategies.batch import pack

    config = _config(tmp_path, MULTI_TURN, [WARMUP])
    trainer, _, _ = _train(config)
    episodes = trainer.collector.collect(
        trainer.collector.sample_tasks(4, 7), 2, _params(max_new_tokens=3)
    )
    two_turns = [e for e in episodes if len(e.verdicts) == 2]
    assert two_turns, "no episode took a second turn"
    for episode in two_turns:
        first = episode.texts[0]
        reply_ids = [
            i for i, m in zip(episode.response_ids, episode.model_mask, strict=False) if not m
        ]
        reply = trainer.tokenizer.decode(reply_ids)
        assert reply == "\nYour answer is incorrect. Please try again.\n", (first, reply)
        assert episode.num_model_tokens <= 2 * 3
    batch = pack(
        [e.prompt_ids for e in episodes],
        [e.response_ids for e in episodes],
        [[float(m) for m in e.model_mask] for e in episodes],
        [e.logprobs for e in episodes],
        0,
    )
    assert int(batch.mask.sum()) == sum(e.num_model_tokens for e in episodes)


def _params(**kwargs):
    from rewardgym.core.engine import SamplingParams

    return SamplingParams(**{"temperature": 1.0, "seed": 3, **kwargs})


def test_a_resumed_run_writes_the_same_metrics(tmp_path):
    stages = [
        {"name": "warmup", "algorithm": {"name": "sft"}, "trainer": {"steps": 4}},
        {"name": "rl", "algorithm": {"name": "grpo"}, "trainer": {"steps": 6, "save_every": 2}},
    ]
    full = _config(tmp_path / "a", SINGLE_TURN, stages)
    _train(full)
    expected = _metrics(tmp_path / "a" / "run")

    partial = _config(tmp_path / "b", SINGLE_TURN, stages)
    stopped = load_config(partial, ["stages.1.trainer.steps=6"])
    trainer = Trainer(stopped, progress=False, log=lambda m: None)
    # Kill the run after step 3 of the RL stage (the checkpoint is at step 2).
    real = Trainer._step

    def dying(self, plan, ctx, step):
        if ctx.stage.name == "rl" and step == 3:
            raise KeyboardInterrupt
        return real(self, plan, ctx, step)

    Trainer._step = dying
    try:
        with pytest.raises(KeyboardInterrupt):
            trainer.run()
    finally:
        Trainer._step = real
    _train(stopped, resume=True)
    resumed = _metrics(tmp_path / "b" / "run")

    def strip(records):
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]

    assert strip(resumed) == strip(expected)


def test_an_existing_run_is_not_overwritten_silently(tmp_path):
    config = _config(
        tmp_path,
        SINGLE_TURN,
        [{"name": "s", "algorithm": {"name": "sft"}, "trainer": {"steps": 1}}],
    )
    _train(config)
    with pytest.raises(ConfigError, match="already holds a run. Pass --resume"):
        Trainer(config, progress=False)
    _train(config, overwrite=True)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["algorithm.name=grpoo"],
            "No algorithm named 'grpoo' is registered. Did you mean 'grpo'?",
        ),
        (
            ["algorithm.name=grpo", "algorithm.params.clip=0.1"],
            "Unknown param 'clip' for algorithm 'grpo'.",
        ),
        (["env.id=rewardgym/arithmetc-v0"], "Did you mean 'rewardgym/arithmetic-v0'?"),
        (["engine.name=hff"], "No engine named 'hff' is registered. Did you mean 'hf'?"),
    ],
)
def test_bad_names_and_params_fail_at_load(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("quickstart", ["~stages", *overrides])


def test_config_errors_are_raised_before_the_model_loads(tmp_path, monkeypatch):
    import rewardgym.runner.models as models

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(models, "load_model", no_loading)
    no_algorithm = load_config({"output_dir": str(tmp_path / "r")})
    with pytest.raises(
        ConfigError, match=re.escape("No algorithm is set (algorithm.name). Choose one of:")
    ):
        Trainer(no_algorithm, progress=False)
    bad_model = load_config({"algorithm": {"name": "grpo"}, "model": {"params": {"hiden_size": 8}}})
    with pytest.raises(
        ConfigError,
        match=re.escape("Unknown param 'hiden_size' for model 'tiny'. Did you mean 'hidden_size'?"),
    ):
        Trainer(bad_model, progress=False)
    missing_file = load_config(
        {
            "algorithm": {
                "name": "sft",
                "params": {"source": "jsonl", "path": str(tmp_path / "nope.jsonl")},
            }
        }
    )
    with pytest.raises(ConfigError, match="does not exist"):
        Trainer(missing_file, progress=False)


def test_cli_train_then_eval_a_run_folder(tmp_path, capsys):
    from rewardgym.cli import main

    run = tmp_path / "cli-run"
    tiny = [f"model.params.{k}={v}" for k, v in TINY.items()]
    args = [
        "train", "quickstart", *tiny, f"output_dir={run}", "stages.0.trainer.steps=3",
        "stages.1.trainer.steps=2", "eval.episodes=4", "--no-progress",
    ]  # fmt: skip
    assert main(args) == 0
    assert (run / "model" / "config.json").is_file()
    assert (run / "eval" / "warmup.json").is_file() and (run / "eval" / "rl.json").is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert [s["steps"] for s in summary["stages"]] == [3, 2]
    capsys.readouterr()
    out_file = tmp_path / "eval.json"
    code = main(
        ["eval", str(run), "eval.episodes=6", "eval.samples=2", "eval.temperature=1.0",
         "eval.pass_k=[1,2]", "--output", str(out_file)]
    )  # fmt: skip
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out_file.read_text())
    assert printed["model"] == str(run / "model") and printed["episodes"] == 6
    assert 0.0 <= printed["pass@1"] <= printed["pass@2"] <= 1.0
    assert printed["accuracy"] == pytest.approx(printed["pass@1"])
    assert main(args) == 2  # the folder holds a run: --resume or --overwrite
    assert "already holds a run" in capsys.readouterr().err


def test_pass_at_k_matches_the_combinatorial_definition():
    from itertools import combinations

    from rewardgym.runner.evaluate import pass_at_k

    for n, c, k in [(4, 0, 1), (4, 1, 2), (5, 2, 3), (6, 6, 2), (3, 1, 3)]:
        samples = [True] * c + [False] * (n - c)
        subsets = list(combinations(samples, k))
        expected = sum(any(s) for s in subsets) / len(subsets)
        assert pass_at_k(n, c, k) == pytest.approx(expected)


@pytest.mark.parametrize("package", ["torch", "transformers"])
def test_a_missing_training_extra_names_the_pip_command(package):
    import subprocess
    import sys

    code = (
        f"import sys; sys.modules[{package!r}] = None\n"
        "from rewardgym.cli import main\n"
        "sys.exit(main(['train', 'quickstart', 'output_dir=/nonexistent/run']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert f"needs the Python package '{package}', which is not installed" in proc.stderr
    assert "pip install 'rewardgym[training]'" in proc.stderr


def test_tensorboard_logs_when_asked(tmp_path):
    stage = {
        "name": "s",
        "algorithm": {"name": "sft"},
        "trainer": {"steps": 2, "tensorboard": True},
    }
    _train(_config(tmp_path, SINGLE_TURN, [stage]))
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
