"""The GPU-only parts of the vLLM path: tensor parallelism with the NCCL weight broadcast, and
vLLM engine actors on GPUs fed by one NCCL broadcast from the trainer. Marked ``gpu`` (skipped
without CUDA) and ``vllm``; each test also needs a number of GPUs, checked at run time."""

from __future__ import annotations

import copy
import dataclasses
import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("vllm")

from rewardgym.core.engine import SamplingParams  # noqa: E402
from rewardgym.runner.engines.hf import HFEngine  # noqa: E402
from rewardgym.runner.models import TinyModelConfig, build_tiny_model  # noqa: E402

pytestmark = pytest.mark.gpu

# 4 heads: the tiny model splits over 2 GPUs.
CONFIG = TinyModelConfig(hidden_size=128, num_layers=2, num_heads=4, seed=4)


def _needs_gpus(n: int) -> None:
    if torch.cuda.device_count() < n:
        pytest.skip(f"needs {n} CUDA GPUs, this machine has {torch.cuda.device_count()}")


def _prompts(tokenizer):
    texts = ("12+34=", "7+8=", "a longer prompt: 123+456=")
    return [
        [tokenizer.bos_token_id, *tokenizer(t, add_special_tokens=False)["input_ids"]]
        for t in texts
    ]


def _trainer_gpu() -> str:
    """The last GPU: vLLM's workers and Ray's actors take the first ones, and NCCL refuses two
    ranks of one group on one GPU."""
    last = torch.cuda.device_count() - 1
    torch.cuda.set_device(last)
    return f"cuda:{last}"


def _perturbed(model):
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)).to(p) * 0.05)
    return other


def test_tensor_parallel_engine_takes_weights_over_nccl(vllm_cache):
    _needs_gpus(3)  # the trainer's GPU, then 2 for the engine's tensor-parallel workers
    from rewardgym.runner.engines.vllm import VLLMEngine, VLLMEngineConfig

    model, tokenizer = build_tiny_model(CONFIG)
    model = model.to(_trainer_gpu()).eval()
    config = VLLMEngineConfig(
        tensor_parallel_size=2, weight_sync="nccl", gpu_memory_utilization=0.3, cache_dir=vllm_cache
    )
    engine = VLLMEngine(model, tokenizer, config)
    try:
        prompts, params = _prompts(tokenizer), SamplingParams(max_new_tokens=16, temperature=0)
        expected = HFEngine(model, tokenizer).generate(prompts, params)
        assert [g.token_ids for g in engine.generate(prompts, params)] == [
            g.token_ids for g in expected
        ]
        trained = _perturbed(model)
        engine.update_weights(trained)  # an NCCL broadcast, no reload from disk
        expected = HFEngine(trained, tokenizer).generate(prompts, params)
        assert [g.token_ids for g in engine.generate(prompts, params)] == [
            g.token_ids for g in expected
        ]
    finally:
        engine.close()


def test_vllm_actors_on_gpus_take_one_nccl_broadcast(vllm_cache):
    _needs_gpus(3)  # the trainer's GPU and one per actor
    ray = pytest.importorskip("ray")
    from rewardgym.core.config import RaySection
    from rewardgym.runner.ray_pool import RayEnginePool

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    model, tokenizer = build_tiny_model(CONFIG)
    model = model.to(_trainer_gpu()).eval()
    spec = {"name_or_path": "tiny", "params": dataclasses.asdict(CONFIG), "dtype": "float32"}
    params_ = {"weight_sync": "nccl", "gpu_memory_utilization": 0.3, "cache_dir": vllm_cache}
    ray.init(num_gpus=torch.cuda.device_count() - 1, include_dashboard=False)
    try:
        pool = RayEnginePool(
            model, "vllm", params_, spec, RaySection(engines=2, engine_gpus=1, engine_cpus=1)
        )
        try:
            prompts = [p for p in _prompts(tokenizer) for _ in range(4)]
            params = SamplingParams(max_new_tokens=16, temperature=0)
            trained = _perturbed(model)
            pool.update_weights(trained)
            expected = HFEngine(trained, tokenizer).generate(prompts, params)
            assert [g.token_ids for g in pool.generate(prompts, params)] == [
                g.token_ids for g in expected
            ]
        finally:
            pool.close()
    finally:
        ray.shutdown()
