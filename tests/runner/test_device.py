"""Training on a CUDA GPU (``model.device``): the ``hf`` engine samples there what it samples
on the CPU, and SFT, GRPO and BRPO (shared-prefix) steps run with the model on the GPU while
batches and losses stay on the CPU. The GPU tests are marked ``gpu`` (skipped without CUDA)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardgym.core.config import load_config  # noqa: E402
from rewardgym.core.engine import SamplingParams  # noqa: E402
from rewardgym.core.errors import ConfigError  # noqa: E402
from rewardgym.runner.engines.hf import HFEngine  # noqa: E402
from rewardgym.runner.models import TinyModelConfig, build_tiny_model  # noqa: E402
from rewardgym.runner.setup import check_run, model_device  # noqa: E402
from rewardgym.runner.trainer import Trainer  # noqa: E402

TINY = {"hidden_size": 64, "num_layers": 2, "num_heads": 2}


def test_model_device_is_checked_before_the_model_loads(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert model_device(load_config("quickstart")) == "cpu"  # auto
    with pytest.raises(ConfigError, match="model.device is 'cuda', but torch sees 0 CUDA GPU"):
        check_run(load_config("quickstart", ["model.device=cuda"]))
    with pytest.raises(ConfigError, match="model.device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        load_config("quickstart", ["model.device=gpu"])


@pytest.mark.gpu
def test_hf_engine_samples_on_the_gpu_what_it_samples_on_the_cpu():
    model, tokenizer = build_tiny_model(TinyModelConfig(**TINY, seed=2))
    model.eval()
    prompts = [[1, *tokenizer(t, add_special_tokens=False)["input_ids"]] for t in ("1+2=", "40+5=")]
    prompts = [p for p in prompts for _ in range(8)]
    params = SamplingParams(max_new_tokens=16, temperature=1.0, seed=3)
    cpu = HFEngine(model, tokenizer).generate(prompts, params)
    gpu = HFEngine(model.to("cuda"), tokenizer).generate(prompts, params)
    # the same hashed noise on both devices; the logits differ by float rounding only
    assert [g.token_ids for g in gpu] == [g.token_ids for g in cpu]
    torch.testing.assert_close(
        torch.tensor([lp for g in gpu for lp in g.logprobs]),
        torch.tensor([lp for g in cpu for lp in g.logprobs]),
        atol=1e-4,
        rtol=0,
    )


@pytest.mark.gpu
@pytest.mark.parametrize("preset", ["quickstart", "brpo"])
def test_training_runs_with_the_model_on_the_gpu(tmp_path, preset):
    first = ["~stages.0.trainer.stop_at_eval_accuracy"] if preset == "quickstart" else []
    config = load_config(
        preset,
        [
            *first,
            "model.device=cuda",
            "stages.0.trainer.steps=20",
            "stages.0.trainer.eval_every=0",
            "stages.1.trainer.steps=3",
            "stages.1.trainer.eval_every=0",
            "eval.episodes=16",
            f"output_dir={tmp_path / 'run'}",
        ],
    )
    trainer = Trainer(config, progress=False, log=lambda m: None)
    trainer.run()
    assert next(trainer.model.parameters()).device.type == "cuda"
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    rl = [m for m in map(json.loads, lines) if m.get("stage") == "rl" and "loss" in m]
    assert len(rl) == 3
    assert all(m["logprob_gap"] < 1e-4 for m in rl), [m["logprob_gap"] for m in rl]
