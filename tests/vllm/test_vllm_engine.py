"""The ``vllm`` engine on the tiny model, for real: generation, stop strings and eos, seeds,
log-prob agreement with the trainer, prefix-cache reuse, and in-place weight updates."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("vllm")

from rewardgym.core.engine import Generation, SamplingParams  # noqa: E402
from rewardgym.runner.batch import sequence_logprobs  # noqa: E402
from rewardgym.runner.engines.hf import HFEngine  # noqa: E402
from rewardgym.runner.engines.vllm import VLLMEngine, VLLMEngineConfig  # noqa: E402
from rewardgym.runner.models import TinyModelConfig, build_tiny_model  # noqa: E402
from rewardgym.strategies.batch import pack  # noqa: E402

# The log-probs vLLM reports and the trainer computes for the same tokens, fp32 on CPU: the
# two run different kernels (vLLM's paged attention, transformers' sdpa), so they agree to
# float rounding. Measured here: max |gap| ~1e-6.
LOGPROB_TOLERANCE = 1e-4
TEXTS = ["12+34=", "7+8=", "a longer prompt: 123+456=", "x"]


@pytest.fixture(scope="module")
def model_and_tokenizer():
    model, tokenizer = build_tiny_model(TinyModelConfig(seed=1))
    return model.eval(), tokenizer


@pytest.fixture(scope="module")
def engine(model_and_tokenizer, vllm_cache):
    config = VLLMEngineConfig(kv_cache_gib=0.25, block_size=32, cache_dir=vllm_cache)
    engine = VLLMEngine(*model_and_tokenizer, config)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def prompts(model_and_tokenizer):
    tokenizer = model_and_tokenizer[1]
    return [
        [tokenizer.bos_token_id, *tokenizer(t, add_special_tokens=False)["input_ids"]]
        for t in TEXTS
    ]


def _trainer_logprobs(model, prompts, generations, temperature):
    """The trainer's log-probs of the generated ids (one padded batch, as in a training step)."""
    batch = pack(
        prompts,
        [g.token_ids for g in generations],
        [[1.0] * len(g.token_ids) for g in generations],
        [g.logprobs for g in generations],
        0,
    )
    with torch.no_grad():
        logprobs = sequence_logprobs(model, batch, temperature)
    return logprobs, batch


def test_one_generation_per_prompt_with_ids_logprobs_and_text(engine, prompts, model_and_tokenizer):
    tokenizer = model_and_tokenizer[1]
    out = engine.generate(prompts * 4, SamplingParams(max_new_tokens=24, seed=0))
    assert len(out) == 16 and all(isinstance(g, Generation) for g in out)
    for g in out:
        assert 1 <= len(g.token_ids) == len(g.logprobs) <= 24
        assert all(lp <= 0 for lp in g.logprobs)
        assert g.text == tokenizer.decode(g.token_ids, skip_special_tokens=True)
        assert g.finish_reason in ("eos", "length")
        if g.finish_reason == "eos":
            assert g.token_ids[-1] == tokenizer.eos_token_id
        else:
            assert len(g.token_ids) == 24
    assert engine.generate([], SamplingParams(max_new_tokens=4)) == []
    with pytest.raises(ValueError, match="Prompt 1 is empty"):
        engine.generate([prompts[0], []], SamplingParams(max_new_tokens=4))


def test_stop_strings_end_a_row_and_are_kept(engine, prompts):
    free = engine.generate([prompts[0]], SamplingParams(max_new_tokens=20, temperature=0))[0]
    assert len(free.text) == 20, "pick a model whose greedy output does not stop early"
    stop = free.text[6:8]
    expected = free.text[: free.text.index(stop) + len(stop)]
    out = engine.generate(
        [prompts[0]], SamplingParams(max_new_tokens=20, temperature=0, stop=(stop, "never"))
    )[0]
    assert (out.text, out.finish_reason) == (expected, "stop")
    assert len(out.token_ids) == len(expected)


def test_seeds_are_per_row_and_independent_of_the_batch(engine, prompts):
    params = SamplingParams(max_new_tokens=16, temperature=1.0, seed=5)
    many = prompts * 3
    whole = engine.generate(many, params)
    assert engine.generate(many, params) == whole
    parts = engine.generate(many[:5], params) + engine.generate(many[5:], params, first_row=5)
    assert [g.token_ids for g in parts] == [g.token_ids for g in whole]
    assert len({g.token_ids for g in whole[::4]}) == 3  # one prompt's samples differ
    other = engine.generate(many, SamplingParams(max_new_tokens=16, temperature=1.0, seed=6))
    assert [g.token_ids for g in other] != [g.token_ids for g in whole]


@pytest.mark.parametrize("temperature", [1.0, 0.7, 0.0])
def test_logprobs_agree_with_the_trainer(engine, prompts, model_and_tokenizer, temperature):
    model = model_and_tokenizer[0]
    many = prompts * 4
    out = engine.generate(many, SamplingParams(max_new_tokens=24, temperature=temperature, seed=1))
    trainer, batch = _trainer_logprobs(model, many, out, temperature)
    gap = ((trainer - batch.old_logprobs).abs() * batch.mask).max().item()
    print(f"max |vllm - trainer| log-prob gap at T={temperature}: {gap:.2e}")
    assert gap < LOGPROB_TOLERANCE


def test_shared_prefixes_hit_the_prefix_cache(engine, model_and_tokenizer):
    tokenizer = model_and_tokenizer[1]
    trace = [
        tokenizer.bos_token_id,
        *tokenizer("1+2+3+4+5+6+7+8+9=" * 6, add_special_tokens=False)["input_ids"],
    ]
    # the forced answers of one thinking trace at several budgets share the trace's prefix
    contexts = [trace[:cut] + [tokenizer.convert_tokens_to_ids("=")] for cut in (48, 80, 104)]
    before = engine.prefix_cache_stats()
    engine.generate([trace], SamplingParams(max_new_tokens=2, temperature=0))
    engine.generate(contexts, SamplingParams(max_new_tokens=2, temperature=0))
    after = engine.prefix_cache_stats()
    hits = after["hits"] - before["hits"]
    assert hits >= 32 + 64 + 96  # the whole 32-token blocks of each context's shared part
    # and the cached blocks give the same answers as a cold engine (hf)
    hf = HFEngine(*model_and_tokenizer)
    cold = hf.generate(contexts, SamplingParams(max_new_tokens=2, temperature=0))
    warm = engine.generate(contexts, SamplingParams(max_new_tokens=2, temperature=0))
    assert [g.token_ids for g in warm] == [g.token_ids for g in cold]


def test_a_weight_update_changes_what_the_engine_samples(engine, prompts, model_and_tokenizer):
    model, _ = model_and_tokenizer
    params = SamplingParams(max_new_tokens=16, temperature=0)
    before = engine.generate(prompts, params)  # also fills the prefix cache
    trained = copy.deepcopy(model)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(0)) * 0.05)
    try:
        engine.update_weights(trained)
        after = engine.generate(prompts, params)
        assert [g.token_ids for g in after] != [g.token_ids for g in before]
        # exactly what the trainer's new weights give: same greedy ids, log-probs agree
        expected = HFEngine(trained, model_and_tokenizer[1]).generate(prompts, params)
        assert [g.token_ids for g in after] == [g.token_ids for g in expected]
        lp, batch = _trainer_logprobs(trained, prompts, after, 0.0)
        assert ((lp - batch.old_logprobs).abs() * batch.mask).max().item() < LOGPROB_TOLERANCE
    finally:
        engine.update_weights(model)
    assert [g.token_ids for g in engine.generate(prompts, params)] == [g.token_ids for g in before]


def test_the_engine_is_registered_and_validates_its_params():
    from rewardgym.core.errors import ConfigError
    from rewardgym.core.registry import ENGINES

    assert ENGINES.get("vllm").load() is VLLMEngine
    assert ENGINES.make_config("vllm", {"kv_cache_gib": 1}).kv_cache_gib == 1
    with pytest.raises(ConfigError, match="weight_sync=nccl"):
        VLLMEngineConfig(tensor_parallel_size=2)
    with pytest.raises(ConfigError, match="gpu_memory_utilization"):
        VLLMEngineConfig(gpu_memory_utilization=0)
