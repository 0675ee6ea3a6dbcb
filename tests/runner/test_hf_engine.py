"""The ``hf`` engine on a tiny random model: shapes, determinism, stop strings, eos, log-probs
against a teacher-forced forward pass, padding invariance, and sampling-parameter sanity."""

from __future__ import annotations

import copy
import re

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardgym.core.engine import Engine, Generation, SamplingParams  # noqa: E402
from rewardgym.core.errors import ConfigError  # noqa: E402
from rewardgym.runner.engines.hf import HFEngine, HFEngineConfig, _top_p  # noqa: E402
from rewardgym.runner.models import TinyModelConfig, build_tiny_model  # noqa: E402

TEXTS = ["12+34=", "7+8=", "a longer prompt: 123+456=", "x"]


@pytest.fixture(scope="module")
def model_and_tokenizer():
    model, tokenizer = build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2))
    return model.eval(), tokenizer


@pytest.fixture(scope="module")
def engine(model_and_tokenizer):
    return HFEngine(*model_and_tokenizer)


@pytest.fixture(scope="module")
def prompts(model_and_tokenizer):
    tokenizer = model_and_tokenizer[1]
    return [
        [tokenizer.bos_token_id, *tokenizer(t, add_special_tokens=False)["input_ids"]]
        for t in TEXTS
    ]


def _greedy(**kwargs):
    return SamplingParams(**{"max_new_tokens": 12, "temperature": 0.0, **kwargs})


def _teacher_forced(model, prompt, generation, temperature):
    """Log-probs of the generated ids from one unpadded forward pass over the whole sequence."""
    ids = torch.tensor([[*prompt, *generation.token_ids]])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt) - 1 : -1].float()
    if temperature > 0:
        logits = logits / temperature
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(-1, torch.tensor(generation.token_ids)[:, None]).squeeze(1)


def _assert_same(a, b):
    """The same generations up to float rounding of the log-probs (batch shapes differ)."""
    assert [(g.token_ids, g.text, g.finish_reason) for g in a] == [
        (g.token_ids, g.text, g.finish_reason) for g in b
    ]
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(
            torch.tensor(x.logprobs), torch.tensor(y.logprobs), atol=1e-5, rtol=0
        )


def test_one_generation_per_prompt_in_order(engine, prompts, model_and_tokenizer):
    tokenizer = model_and_tokenizer[1]
    out = engine.generate(prompts, SamplingParams(max_new_tokens=10, seed=0))
    assert isinstance(engine, Engine) and len(out) == len(prompts)
    for generation in out:
        assert isinstance(generation, Generation)
        assert 1 <= len(generation.token_ids) == len(generation.logprobs) <= 10
        assert all(isinstance(t, int) for t in generation.token_ids)
        assert all(lp <= 0.0 for lp in generation.logprobs)
        assert generation.text == tokenizer.decode(generation.token_ids, skip_special_tokens=True)
        assert generation.finish_reason in ("eos", "length")
    assert engine.generate([], _greedy()) == []


def test_greedy_is_deterministic_and_ignores_the_seed(engine, prompts):
    first = engine.generate(prompts, _greedy(seed=1))
    assert engine.generate(prompts, _greedy(seed=2)) == first
    assert engine.generate(prompts, _greedy()) == first


def test_the_seed_decides_the_samples_and_the_global_rng_is_untouched(engine, prompts):
    params = SamplingParams(max_new_tokens=16, seed=7)
    before = torch.get_rng_state()
    a = engine.generate(prompts, params)
    assert torch.equal(torch.get_rng_state(), before)
    assert engine.generate(prompts, params) == a
    b = engine.generate(prompts, SamplingParams(max_new_tokens=16, seed=8))
    assert [g.token_ids for g in a] != [g.token_ids for g in b]


def test_a_rows_sample_depends_on_its_index_not_on_the_batch(model_and_tokenizer, prompts):
    """Each row has its own seed stream: chunking, the other rows, and sharding the rows across
    engines (``first_row``) leave every sample as it is."""
    params = SamplingParams(max_new_tokens=16, temperature=1.2, top_p=0.95, seed=11)
    many = prompts * 5
    whole = HFEngine(*model_and_tokenizer).generate(many, params)
    chunked = HFEngine(*model_and_tokenizer, HFEngineConfig(batch_size=3)).generate(many, params)
    _assert_same(chunked, whole)
    engine = HFEngine(*model_and_tokenizer)
    shards = engine.generate(many[:7], params) + engine.generate(many[7:], params, first_row=7)
    _assert_same(shards, whole)
    # the G samples of one prompt differ from each other
    assert len({g.token_ids for g in whole[::4]}) == 5
    unshifted = engine.generate(many[7:], params)  # rows numbered from 0: other streams
    assert [g.token_ids for g in unshifted] != [g.token_ids for g in whole[7:]]


def test_row_seeds_are_distinct_and_stable():
    from rewardgym.core.engine import row_seed, row_seeds

    seeds = {row_seed(s, r) for s in range(50) for r in range(50)}
    assert len(seeds) == 2500 and all(0 <= x < 2**63 for x in seeds)
    assert row_seeds(3, 10, 2) == [row_seed(3, 10), row_seed(3, 11)]
    assert row_seed(0, 0) == 6017775124710473527  # a stored value: the streams never change
    assert row_seeds(None, 0, 2) != row_seeds(None, 0, 2)


def test_stop_strings_end_a_row_right_after_the_stop_string(engine, prompts):
    free = engine.generate(prompts, _greedy(max_new_tokens=16))
    text = free[0].text
    assert len(text) == 16, "pick a model whose greedy output does not stop early"
    stop = text[5:7]
    expected = text[: text.index(stop) + len(stop)]
    out = engine.generate(prompts, _greedy(max_new_tokens=16, stop=(stop, "never-seen")))
    assert out[0].text == expected and out[0].finish_reason == "stop"
    assert len(out[0].token_ids) == len(expected)  # one id per character: nothing after the stop
    for generation, unstopped in zip(
        out[1:], free[1:], strict=True
    ):  # the other rows stop or go on alone
        if stop in unstopped.text:
            assert generation.text == unstopped.text[: unstopped.text.index(stop) + len(stop)]
            assert generation.finish_reason == "stop"
        else:
            _assert_same([generation], [unstopped])


def test_eos_ends_a_row_and_max_new_tokens_bounds_it(engine, model_and_tokenizer):
    tokenizer = model_and_tokenizer[1]
    eos = tokenizer.eos_token_id
    out = engine.generate(
        [[tokenizer.bos_token_id]] * 48, SamplingParams(max_new_tokens=40, seed=0)
    )
    reasons = {g.finish_reason for g in out}
    assert reasons == {"eos", "length"}, reasons  # a random model samples eos ~1% of the time
    for generation in out:
        if generation.finish_reason == "eos":
            assert generation.token_ids[-1] == eos and eos not in generation.token_ids[:-1]
            assert "<eos>" not in generation.text  # eos is not text
        else:
            assert len(generation.token_ids) == 40 and eos not in generation.token_ids


def test_logprobs_match_a_teacher_forced_forward_pass(engine, prompts, model_and_tokenizer):
    model = model_and_tokenizer[0]
    # Repeated prompts (G samples each), rows ending (stop strings, eos) while others go on,
    # and top-p: the log-probs are those of log_softmax(logits / temperature), before top-p.
    many = [p for p in prompts for _ in range(6)]
    for temperature, top_p, stop in ((0.7, 1.0, ()), (1.3, 0.9, ("a", "b", "c")), (0.0, 1.0, ())):
        params = SamplingParams(24, temperature, top_p, stop, seed=3)
        for prompt, generation in zip(many, engine.generate(many, params), strict=True):
            expected = _teacher_forced(model, prompt, generation, temperature)
            torch.testing.assert_close(
                torch.tensor(generation.logprobs), expected, atol=1e-4, rtol=0
            )


def test_a_prompt_alone_and_padded_in_a_batch_gives_the_same_result(engine, prompts):
    alone = engine.generate([prompts[1]], _greedy(max_new_tokens=16))[0]
    batched = engine.generate(prompts, _greedy(max_new_tokens=16))[1]  # left-padded by 21
    assert batched.token_ids == alone.token_ids
    torch.testing.assert_close(
        torch.tensor(batched.logprobs), torch.tensor(alone.logprobs), atol=1e-5, rtol=0
    )


def test_chunks_of_batch_size_give_the_same_greedy_output(model_and_tokenizer, prompts):
    small = HFEngine(*model_and_tokenizer, HFEngineConfig(batch_size=3))
    big = HFEngine(*model_and_tokenizer)
    _assert_same(small.generate(prompts * 2, _greedy()), big.generate(prompts * 2, _greedy()))


def test_tiny_top_p_or_temperature_is_greedy(engine, prompts):
    greedy = [g.token_ids for g in engine.generate(prompts, _greedy())]
    top = engine.generate(prompts, SamplingParams(max_new_tokens=12, top_p=1e-6, seed=0))
    cold = engine.generate(prompts, SamplingParams(max_new_tokens=12, temperature=1e-4, seed=0))
    assert [g.token_ids for g in top] == greedy
    assert [g.token_ids for g in cold] == greedy


def test_sampling_at_temperature_one_spreads_over_the_vocabulary(engine, model_and_tokenizer):
    bos = model_and_tokenizer[1].bos_token_id
    out = engine.generate([[bos]] * 32, SamplingParams(max_new_tokens=8, seed=0))
    assert len({t for g in out for t in g.token_ids}) > 40  # a random model is near uniform


def test_samples_follow_the_tempered_and_truncated_distribution(model_and_tokenizer, prompts):
    model = model_and_tokenizer[0]
    engine = HFEngine(*model_and_tokenizer, HFEngineConfig(batch_size=4000))
    with torch.no_grad():
        logits = model(torch.tensor([prompts[0]])).logits[0, -1]
    probs = torch.softmax(logits / 0.15, dim=-1)  # top id ~0.21, then ~0.04, 0.03, ...
    out = engine.generate([prompts[0]] * 4000, SamplingParams(1, temperature=0.15, seed=0))
    counts = torch.bincount(torch.tensor([g.token_ids[0] for g in out]), minlength=len(probs))
    torch.testing.assert_close(counts / 4000, probs, atol=0.02, rtol=0)  # ~3 sigma at the top
    nucleus = set(_top_p(probs[None], 0.3)[0].nonzero().flatten().tolist())
    out = engine.generate(
        [prompts[0]] * 500, SamplingParams(1, temperature=0.15, top_p=0.3, seed=0)
    )
    assert {g.token_ids[0] for g in out} == nucleus and len(nucleus) > 2


def test_top_p_keeps_the_smallest_nucleus():
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.25]], dtype=torch.float64)
    assert _top_p(probs, 0.75).tolist() == [[0.0, 0.5, 0.0, 0.25]]  # 0.5 + 0.25 reaches 0.75
    assert _top_p(probs, 0.76).tolist() == [[0.0, 0.5, 0.15, 0.25]]
    assert _top_p(probs, 1e-9).tolist() == [[0.0, 0.5, 0.0, 0.0]]


def test_update_weights_is_a_no_op_for_the_same_model(model_and_tokenizer, prompts):
    model, tokenizer = model_and_tokenizer
    engine = HFEngine(model, tokenizer)
    engine.update_weights(model)
    assert engine.model is model
    other, _ = build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2, seed=5))
    engine.update_weights(other)
    assert engine.model is other
    assert engine.generate(prompts, _greedy()) != HFEngine(model, tokenizer).generate(
        prompts, _greedy()
    )
    engine.close()


def test_load_weights_gives_the_samples_of_update_weights(model_and_tokenizer, prompts):
    """Weights by value (what a Ray actor receives) and the model itself sample alike."""
    model, tokenizer = model_and_tokenizer
    trained, _ = build_tiny_model(
        TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2, seed=5)
    )
    trained.eval()
    params = SamplingParams(max_new_tokens=12, seed=3)
    by_model = HFEngine(copy.deepcopy(model), tokenizer)
    by_model.update_weights(trained)
    by_value = HFEngine(copy.deepcopy(model), tokenizer)
    state = {k: v.clone() for k, v in trained.state_dict().items()}
    by_value.load_weights(state.items())
    _assert_same(by_value.generate(prompts, params), by_model.generate(prompts, params))
    assert by_value.model is not trained  # loaded into the engine's own model, in place
    assert [g.token_ids for g in by_value.generate(prompts, params)] != [
        g.token_ids for g in HFEngine(model, tokenizer).generate(prompts, params)
    ]


def test_hf_syncs_weights_by_state_dict_into_the_model_it_samples_from():
    assert HFEngine.owns_weights is False
    assert HFEngine.remote_weight_sync(HFEngineConfig(), gpus=1) == "state_dict"
    with pytest.raises(
        NotImplementedError,
        match=re.escape(
            "The 'hf' engine has no collective weight sync: its remote_weight_sync(config) must "
            "return 'state_dict', or it must implement start_broadcast and weight_transfer."
        ),
    ):
        HFEngine.start_broadcast(lambda method, *args: None, None, HFEngineConfig(), engines=2)


def test_bad_inputs_are_reported(engine):
    with pytest.raises(ValueError, match=re.escape("Prompt 1 is empty")):
        engine.generate([[1, 5], []], _greedy())
    with pytest.raises(
        ConfigError, match=re.escape("SamplingParams.max_new_tokens must be >= 1, got 0.")
    ):
        SamplingParams(max_new_tokens=0)
    with pytest.raises(
        ConfigError, match=re.escape("SamplingParams.top_p must be in (0, 1], got 0.0.")
    ):
        SamplingParams(max_new_tokens=1, top_p=0.0)
    with pytest.raises(
        ConfigError, match=re.escape("SamplingParams.stop must be non-empty strings")
    ):
        SamplingParams(max_new_tokens=1, stop=("",))
    with pytest.raises(
        ConfigError, match=re.escape("engine.params.batch_size must be >= 1, got 0.")
    ):
        HFEngineConfig(batch_size=0)
    assert SamplingParams(max_new_tokens=1, stop=["\n"]).stop == ("\n",)


def test_the_engine_is_registered_as_hf():
    from rewardgym.core.registry import ENGINES

    spec = ENGINES.get("hf")
    assert spec.load() is HFEngine
    assert ENGINES.make_config("hf", {"batch_size": 8}) == HFEngineConfig(batch_size=8)


def test_stop_strings_when_every_row_sampled_eos_at_once(model_and_tokenizer):
    """A step where every running row ends with eos leaves nothing to check for stop strings."""
    model, tokenizer = model_and_tokenizer
    eos = tokenizer.eos_token_id
    saved = model.lm_head.weight.detach().clone()
    bias = torch.zeros(model.lm_head.weight.shape[0])
    bias[eos] = 1.0
    with torch.no_grad():  # logits are 0 everywhere but eos: greedy samples eos first
        model.lm_head.weight.zero_()
    model.lm_head.bias = torch.nn.Parameter(bias)
    try:
        engine = HFEngine(model, tokenizer)
        prompts = [[tokenizer.bos_token_id]] * 3
        out = engine.generate(prompts, _greedy(max_new_tokens=4, stop=("x",)))
    finally:
        with torch.no_grad():
            model.lm_head.weight.copy_(saved)
        model.lm_head.bias = None
    assert [g.finish_reason for g in out] == ["eos"] * 3
