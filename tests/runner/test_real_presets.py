"""The real-model presets (``grpo_qwen_math``, ``brpo_qwen_math``) run end to end on the CPU with
offline stand-ins of their models' architectures and chat templates
(:mod:`rewardgym.testing.standin`), every memory feature of the preset left on except bf16
autocast (emulated on the CPU: slow, and tested on its own in test_memory.py)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from rewardgym.core.config import load_config  # noqa: E402
from rewardgym.runner.trainer import Trainer  # noqa: E402
from rewardgym.testing.standin import save_standin  # noqa: E402

SMALL = {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2}
CPU = [
    "model.device=cpu",
    "trainer.mixed_precision=none",
    "trainer.steps=2",
    "trainer.eval_every=0",
    "trainer.save_every=1",
    "rollout.prompts_per_step=2",
    "rollout.group_size=4",
    "eval.episodes=2",
]


def _run(tmp_path, preset, family, overrides):
    model = save_standin(tmp_path / "model", family, **SMALL)
    config = load_config(
        preset,
        [f"model.name_or_path={model}", f"output_dir={tmp_path / 'run'}", *CPU, *overrides],
    )
    seen = []
    trainer = Trainer(config, progress=False, log=lambda message: None)
    summary = trainer.run()
    seen.append(trainer.collector.prompts)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    return config, summary, [json.loads(line) for line in lines], seen[0]


@pytest.mark.slow
def test_grpo_qwen_math_runs_on_a_qwen2_standin(tmp_path):
    config, summary, metrics, prompts = _run(
        tmp_path,
        "grpo_qwen_math",
        "qwen2.5-instruct",
        ["rollout.max_new_tokens=16", "trainer.packing=true"],  # packing runs on the CPU too
    )
    assert config.model.lora is not None and config.model.gradient_checkpointing
    assert config.trainer.packing and config.trainer.micro_batch_tokens == 8192
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(torch.isfinite(torch.tensor(m["loss"])) for m in metrics)
    assert prompts.templated  # the Qwen2.5 chat template renders the prompts
    assert prompts.prompt_text("1+1=").startswith("<|im_start|>system\n")
    run = tmp_path / "run"
    assert (run / "adapter" / "adapter_config.json").exists()  # the LoRA adapter
    assert (run / "model" / "config.json").exists()  # and the merged model
    assert summary["stages"][0]["steps"] == 2


@pytest.mark.slow
def test_brpo_qwen_math_runs_on_an_r1_standin(tmp_path):
    config, summary, metrics, prompts = _run(
        tmp_path,
        "brpo_qwen_math",
        "r1-distill-qwen",
        [
            "strategies.anytime.budgets=[4,8]",
            "strategies.anytime.summaries=2",
            "strategies.anytime.summary_max_tokens=4",
            "eval.budgets=[4,8]",
            "eval.max_new_tokens=8",
        ],
    )
    assert config.algorithm.name == "brpo"
    assert [m["step"] for m in metrics] == [1, 2]
    # the template opens the thinking itself
    assert prompts.prompt_text("1+1=").endswith("<｜Assistant｜><think>\n")
    assert "budget_accuracy" in json.dumps(summary) or summary["stages"][0]["eval"]
