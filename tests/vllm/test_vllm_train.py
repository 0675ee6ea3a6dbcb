"""``rewardgym train`` with ``engine.name=vllm`` (standard and anytime rollouts), and vLLM
engines as Ray actors."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("vllm")


def _train(tmp_path, vllm_cache, *overrides):
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "rewardgym",
        "train",
        *overrides,
        "engine.name=vllm",
        "engine.params.kv_cache_gib=0.25",
        f"engine.params.cache_dir={vllm_cache}",
        "eval.episodes=16",
        f"output_dir={out}",
        "--no-progress",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return out, metrics, done.stderr


def test_rewardgym_train_runs_on_the_vllm_engine(tmp_path, vllm_cache):
    out, metrics, _ = _train(
        tmp_path,
        vllm_cache,
        "quickstart",
        "stages.0.trainer.steps=30",
        "~stages.0.trainer.stop_at_eval_accuracy",
        "stages.0.trainer.eval_every=0",
        "stages.1.trainer.steps=3",
        "rollout.prompts_per_step=8",
    )
    rl = [m for m in metrics if m.get("stage") == "rl" and "reward" in m]
    assert len(rl) == 3
    # the sampler's log-probs are the trainer's, to float rounding, before each update
    assert all(m["logprob_gap"] < 1e-4 for m in rl), [m["logprob_gap"] for m in rl]
    assert json.loads((out / "summary.json").read_text())["stages"][-1]["name"] == "rl"


def test_anytime_training_runs_on_the_vllm_engine(tmp_path, vllm_cache):
    _, metrics, _ = _train(
        tmp_path,
        vllm_cache,
        "brpo",
        "stages.0.trainer.steps=20",
        "stages.0.trainer.eval_every=0",
        "stages.1.trainer.steps=2",
        "stages.1.trainer.eval_every=0",
        "eval.budgets=[12,24]",
        "engine.params.block_size=32",
    )
    rl = [m for m in metrics if m.get("stage") == "rl" and "loss" in m]
    assert len(rl) == 2 and all(abs(m["logprob_gap"]) < 1e-4 for m in rl)
    # the forced answers at budgets 24, 36, 48 reuse the trace's cached 32-token blocks
    assert all(m["engine/prefix_cache_hit_rate"] > 0.1 for m in rl), [
        m["engine/prefix_cache_hit_rate"] for m in rl
    ]


def test_vllm_engine_actors_on_ray(vllm_cache):
    ray = pytest.importorskip("ray")
    from rewardgym.core.config import RaySection
    from rewardgym.core.engine import SamplingParams
    from rewardgym.runner.models import TinyModelConfig, build_tiny_model
    from rewardgym.runner.ray_pool import RayEnginePool

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    config = TinyModelConfig(seed=2)
    model, tokenizer = build_tiny_model(config)
    prompts = [[1, *tokenizer(t, add_special_tokens=False)["input_ids"]] for t in ("1+2=", "40+5=")]
    prompts = [p for p in prompts for _ in range(4)]
    params = SamplingParams(max_new_tokens=12, seed=9)
    spec = {"name_or_path": "tiny", "params": dataclasses.asdict(config), "dtype": "float32"}
    engine_params = {"kv_cache_gib": 0.1, "cache_dir": vllm_cache}
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        pool = RayEnginePool(model, "vllm", engine_params, spec, RaySection(engines=2))
        try:
            first = pool.generate(prompts, params)
            one = pool.generate(prompts[:4], params) + pool.generate(
                prompts[4:], params, first_row=4
            )
            assert [g.token_ids for g in one] == [g.token_ids for g in first]
            with torch.no_grad():
                model.lm_head.weight.mul_(3.0)
            pool.update_weights(model)
            assert [g.token_ids for g in pool.generate(prompts, params)] != [
                g.token_ids for g in first
            ]
        finally:
            pool.close()
    finally:
        ray.shutdown()


def test_the_vllm_benchmark_runs():
    done = subprocess.run(
        [sys.executable, "benchmarks/vllm_engine.py", "--quick", "--new-tokens", "16", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result["tokens_per_s"]) == {"ours", "direct", "hf"}
    assert "engine overhead over direct vLLM" in done.stdout
