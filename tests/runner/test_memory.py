"""The memory features on the CPU with tiny models: mixed precision (bf16 autocast, fp16 with a
loss scaler, bf16 parameters), gradient checkpointing, LoRA through peft (training, reference,
saving, merging, resume), and the config errors raised before training starts.

Tolerances: bf16 autocast changes the policy's log-probs by less than ``BF16_TOLERANCE`` (0.05)
on average over the trained tokens, and the loss by less than that too (measured on these tiny
models: about 5e-4 mean, 2e-3 max); gradient checkpointing and the LoRA reference are exact up
to float rounding (1e-6); the merged model matches the peft model within 1e-5.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from transformers import AutoModelForCausalLM  # noqa: E402

from rewardgym.core.config import ModelSection, TrainerSection, load_config  # noqa: E402
from rewardgym.core.config.schema import LoraSection  # noqa: E402
from rewardgym.core.engine import SamplingParams  # noqa: E402
from rewardgym.core.errors import ConfigError, MissingExtraError, RewardGymError  # noqa: E402
from rewardgym.runner.batch import sequence_logprobs  # noqa: E402
from rewardgym.runner.engines.hf import HFEngine, HFEngineConfig  # noqa: E402
from rewardgym.runner.learner import PolicyLearner  # noqa: E402
from rewardgym.runner.lora import (  # noqa: E402
    AdapterDisabled,
    adapter_state_dict,
    apply_lora,
    base_name,
    merged_state_dict,
    save_adapter,
    save_merged,
)
from rewardgym.runner.models import (  # noqa: E402
    TinyModelConfig,
    build_tiny_model,
    load_model,
    prepare_model,
)
from rewardgym.runner.precision import Precision, check_precision  # noqa: E402
from rewardgym.runner.prefix import prefix_logprobs  # noqa: E402
from rewardgym.runner.ray_pool import EngineActor  # noqa: E402
from rewardgym.runner.trainer import Trainer  # noqa: E402
from rewardgym.strategies.base import LossPart  # noqa: E402
from rewardgym.strategies.batch import Continuations, pack  # noqa: E402

BF16_TOLERANCE = 0.05  # mean |log-prob(bf16 autocast) - log-prob(fp32)| over trained tokens
SMALL = TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2, max_position_embeddings=64)
LORA = LoraSection(r=4, alpha=8.0)
CPU_ALL = frozenset({"float32", "bfloat16", "float16"})


class _NoEngine:
    def update_weights(self, model):
        pass


def _batch():
    prompts = [[1, 20, 21, 22], [1, 23, 24]]
    responses = [[30, 31, 32, 33], [34, 35]]
    return pack(prompts, responses, [[1.0] * len(r) for r in responses], None, 0)


def _learner(model, precision=None, ref_model=None, lr=1e-2):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    return PolicyLearner(
        model, ref_model, optimizer, None, TrainerSection(), _NoEngine(), precision
    )


def _nll(learner, scale=1.0):
    def loss(part, rows):
        lp = learner.logprobs(part, 1.0)  # (n, T)
        value = -(lp * part.mask).sum() / part.mask.sum() * scale
        return value, {"loss": float(value.detach())}

    return loss


def _step(learner, batch, scale=1.0):
    return learner.update([LossPart(batch, _nll(learner, scale), sampled=True)])


def _masked_mean(x, mask):
    return float((x * mask).sum() / mask.sum())


# -- mixed precision ---------------------------------------------------------------------------
def test_bf16_autocast_log_probs_and_loss_match_fp32_within_the_tolerance():
    model, _ = build_tiny_model(SMALL)
    model.eval()
    batch = _batch()
    with torch.no_grad():
        fp32 = _learner(model).logprobs(batch, 1.0)  # (N, T)
        bf16 = _learner(model, Precision("cpu", torch.bfloat16)).logprobs(batch, 1.0)
    gap = (bf16 - fp32).abs()  # (N, T)
    assert not torch.equal(bf16, fp32)  # autocast did compute in bfloat16
    assert _masked_mean(gap, batch.mask) < BF16_TOLERANCE
    loss32, loss16 = -_masked_mean(fp32, batch.mask), -_masked_mean(bf16, batch.mask)
    assert abs(loss32 - loss16) < BF16_TOLERANCE


def test_a_model_with_bf16_parameters_trains_a_step():
    model, _ = load_model("tiny", SMALL, dtype="bfloat16")
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    learner = _learner(model)
    metrics = _step(learner, _batch())
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    state = learner.optimizer.state[next(model.parameters())]
    assert state["exp_avg"].dtype == torch.bfloat16  # AdamW's state in model.dtype
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(torch.isfinite(torch.tensor(v)) for k, v in metrics.items())


def test_fp16_autocast_with_a_loss_scaler_steps_on_the_cpu():
    model, _ = build_tiny_model(SMALL)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    learner = _learner(model, Precision("cpu", torch.float16))
    assert learner.scaler is not None
    for _ in range(2):
        metrics = _step(learner, _batch())
    assert metrics["loss_scale"] == 2.0**16 and metrics["skipped_steps"] == 0
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 master weights
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_an_overflowing_fp16_step_is_skipped_and_reported_not_refused():
    model, _ = build_tiny_model(SMALL)
    model.eval()
    learner = _learner(model, Precision("cpu", torch.float16))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    metrics = _step(learner, _batch(), scale=float("inf"))  # the gradients overflow
    assert metrics["skipped_steps"] == 1 and metrics["loss_scale"] == 2.0**16
    assert learner.scaler.get_scale() == 2.0**15  # backed off for the next step
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    metrics = _step(learner, _batch())
    assert metrics["skipped_steps"] == 1 and metrics["loss_scale"] == 2.0**15
    # Without a scaler the same loss is still an error that says what to change.
    plain = _learner(model)
    with pytest.raises(RewardGymError, match="The gradient norm is .* at this step"):
        _step(plain, _batch(), scale=float("inf"))


def test_the_hf_engine_samples_under_the_trainers_autocast():
    model, tokenizer = build_tiny_model(SMALL)
    model.eval()
    engine = HFEngine(model, tokenizer)
    params = SamplingParams(temperature=1.0, max_new_tokens=6, seed=3)
    prompts = [[1, 20, 21], [1, 22]]
    plain = engine.generate(prompts, params)
    engine.set_precision(Precision("cpu", torch.bfloat16))
    mixed = engine.generate(prompts, params)
    assert [g.logprobs for g in plain] != [g.logprobs for g in mixed]
    # The trainer under the same autocast sees (nearly) the sampler's log-probs.
    responses = [list(g.token_ids) for g in mixed]
    batch = pack(prompts, responses, [[1.0] * len(r) for r in responses], None, 0)
    with torch.no_grad():
        learner = _learner(model, Precision("cpu", torch.bfloat16))
        trained = learner.logprobs(batch, 1.0)  # (N, T)
    sampled = torch.zeros_like(trained)
    for i, g in enumerate(mixed):
        sampled[i, : len(g.logprobs)] = torch.tensor(g.logprobs)
    assert _masked_mean((trained - sampled).abs(), batch.mask) < 1e-2


# -- gradient checkpointing --------------------------------------------------------------------
def _counted(model):
    """Calls of the first layer's MLP (a pre-hook: the recomputation stops early, inside the
    MLP, once it has every tensor the backward pass needs)."""
    calls = []
    model.model.layers[0].mlp.register_forward_pre_hook(lambda *args: calls.append(1))
    return calls


def test_gradient_checkpointing_recomputes_and_gives_the_same_gradients():
    plain, _ = build_tiny_model(SMALL)
    checkpointed, _ = build_tiny_model(SMALL)
    checkpointed = prepare_model(checkpointed, ModelSection(gradient_checkpointing=True))
    batch = _batch()
    grads, calls = [], []
    for model in (plain, checkpointed):
        model.eval()  # as the runner holds it
        calls.append(_counted(model))
        learner = _learner(model)
        (-learner.logprobs(batch, 1.0).sum()).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        assert not any(m.training for m in model.modules())  # back in eval mode
    assert len(calls[0]) == 1  # the layer ran once
    assert len(calls[1]) == 2  # and again in the backward pass: recomputed
    for name, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][name], atol=1e-6), name


def test_gradient_checkpointing_leaves_sampling_and_shared_prefix_passes_alone():
    plain, tokenizer = build_tiny_model(SMALL)
    checkpointed, _ = build_tiny_model(SMALL)
    checkpointed = prepare_model(checkpointed, ModelSection(gradient_checkpointing=True))
    params = SamplingParams(temperature=1.0, max_new_tokens=6, seed=5)
    prompts = [[1, 20, 21], [1, 22, 23, 24]]
    outs = [HFEngine(m.eval(), tokenizer).generate(prompts, params) for m in (plain, checkpointed)]
    assert outs[0] == outs[1]  # the KV cache is used as before
    batch = _batch()
    conts = Continuations(
        rows=torch.tensor([0, 1]),
        cuts=torch.tensor([2, 1]),
        ids=torch.tensor([[40, 41], [42, 0]]),
        valid=torch.tensor([[1, 1], [1, 0]]),
        mask=torch.tensor([[1.0, 1.0], [1.0, 0.0]]),
        old_logprobs=torch.zeros(2, 2),
    )
    rows_a, conts_a = _learner(plain).prefix_logprobs(batch, conts, 1.0, 1.0)
    rows_b, conts_b = _learner(checkpointed).prefix_logprobs(batch, conts, 1.0, 1.0)
    assert torch.allclose(rows_a, rows_b, atol=1e-6) and torch.allclose(conts_a, conts_b, atol=1e-6)


# -- LoRA --------------------------------------------------------------------------------------
def _trained_lora(steps=2):
    model, tokenizer = build_tiny_model(SMALL)
    model = apply_lora(model.eval(), LORA, seed=0)
    learner = _learner(model, ref_model=AdapterDisabled(model), lr=5e-2)
    for _ in range(steps):
        _step(learner, _batch())
    return model, tokenizer, learner


def test_lora_trains_only_the_adapter():
    model, _ = build_tiny_model(SMALL)
    model = apply_lora(model.eval(), LORA, seed=0)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    learner = _learner(model, lr=5e-2)
    assert {id(p) for g in learner.optimizer.param_groups for p in g["params"]} == {
        id(p) for p in model.parameters() if p.requires_grad
    }
    _step(learner, _batch())
    after = model.state_dict()
    base = [k for k in before if "lora_" not in k]
    assert all(torch.equal(before[k], after[k]) for k in base)  # bit-identical
    assert any(not torch.equal(before[k], after[k]) for k in before if "lora_" in k)


def test_the_lora_reference_is_the_untouched_base_model():
    model, _, learner = _trained_lora()
    base, _ = build_tiny_model(SMALL)
    batch = _batch()
    with torch.no_grad():
        want = sequence_logprobs(base.eval(), batch, 1.0)  # (N, T)
        policy = sequence_logprobs(model, batch, 1.0)
    assert not torch.allclose(policy, want, atol=1e-4)  # the adapter has moved the policy
    assert torch.allclose(learner.reference_logprobs(batch, 1.0), want, atol=1e-6)
    conts = Continuations(
        rows=torch.tensor([0]),
        cuts=torch.tensor([2]),
        ids=torch.tensor([[40, 41]]),
        valid=torch.tensor([[1, 1]]),
        mask=torch.tensor([[1.0, 1.0]]),
        old_logprobs=torch.zeros(1, 2),
    )
    with torch.no_grad():
        want_rows, want_conts = prefix_logprobs(base, batch, conts, 1.0, 1.0)
    rows, cont = learner.prefix_logprobs(batch, conts, 1.0, 1.0, reference=True)
    assert torch.allclose(rows, want_rows, atol=1e-6)
    assert torch.allclose(cont, want_conts, atol=1e-6)


def test_merged_state_dict_has_the_base_names_and_w_plus_ba():
    model, _, _ = _trained_lora()
    base, _ = build_tiny_model(SMALL)
    merged = merged_state_dict(model)
    assert set(merged) == set(base.state_dict())
    assert not any("lora_" in k or "base_layer" in k for k in merged)
    assert (
        base_name("base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight")
        == "model.layers.0.self_attn.q_proj.weight"
    )
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight  # (r, in), (out, r)
    want = layer.base_layer.weight + (LORA.alpha / LORA.r) * b @ a  # (out, in)
    got = merged["model.layers.0.self_attn.q_proj.weight"]
    assert torch.allclose(got, want, atol=1e-6)
    assert not torch.equal(got, layer.base_layer.weight)  # the update is in it
    untouched = base.state_dict()["model.norm.weight"]
    assert torch.equal(merged["model.norm.weight"], untouched)


def test_an_engine_actor_samples_the_lora_policy_from_its_merged_weights():
    """Engines with their own copy of the base model (Ray actors, vLLM) get the merged weights
    under the base names, and sample what the colocated hf engine samples from the adapter."""
    model, tokenizer, _ = _trained_lora()
    spec = {"name_or_path": "tiny", "params": dataclasses.asdict(SMALL), "dtype": "float32"}
    actor = EngineActor(HFEngine, HFEngineConfig(), {**spec, "gpus": 0}, torch.get_num_threads())
    actor.set_weights(merged_state_dict(model))
    params = SamplingParams(temperature=1.0, max_new_tokens=6, seed=2)
    prompts = [[1, 20, 21], [1, 22]]
    expected = HFEngine(model, tokenizer).generate(prompts, params)
    got = actor.generate(prompts, params, 0)
    assert [g.token_ids for g in got] == [g.token_ids for g in expected]
    for a, b in zip(got, expected, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)
    actor.set_precision(torch.bfloat16)
    assert actor.engine.precision == Precision("cpu", torch.bfloat16)


def test_the_saved_adapter_and_merged_model_give_the_trained_log_probs(tmp_path):
    model, tokenizer, _ = _trained_lora()
    batch = _batch()
    with torch.no_grad():
        want = sequence_logprobs(model, batch, 1.0)  # (N, T)
    save_adapter(model, tmp_path / "adapter")
    base, _ = build_tiny_model(SMALL)
    reloaded = peft.PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    with torch.no_grad():
        assert torch.equal(sequence_logprobs(reloaded, batch, 1.0), want)
    save_merged(model, tokenizer, tmp_path / "model")
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "model").eval()
    assert not hasattr(plain, "peft_config")
    with torch.no_grad():
        assert torch.allclose(sequence_logprobs(plain, batch, 1.0), want, atol=1e-5)


def test_lora_target_modules_that_match_nothing_list_the_models_layers():
    model, _ = build_tiny_model(SMALL)
    bad = LoraSection(target_modules=("q_proj", "qkv"))
    message = (
        "model.lora.target_modules names ['qkv'], which match no module of the model "
        "(LlamaForCausalLM). Its linear layers are: q_proj, k_proj, v_proj, o_proj, gate_proj, "
        "up_proj, down_proj, lm_head. Set model.lora.target_modules to some of these, or to "
        "'all-linear'."
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        apply_lora(model, bad)
    with pytest.raises(ConfigError, match="cannot be adapted: .* Name linear layers instead"):
        apply_lora(build_tiny_model(SMALL)[0], LoraSection(target_modules="layers"))
    one = apply_lora(build_tiny_model(SMALL)[0], LoraSection(target_modules="v_proj"))
    assert {n.split(".")[-4] for n in adapter_state_dict(one)} == {"v_proj"}  # not a regex


# -- config errors -----------------------------------------------------------------------------
NO_BF16_GPU = frozenset({"float32", "float16"})


@pytest.mark.parametrize(
    "dtype, mixed, supported, message",
    [
        (
            "bfloat16",
            [],
            NO_BF16_GPU,
            "model.dtype is 'bfloat16', but the device 'cuda' cannot compute in bfloat16 "
            "(torch.cuda.is_bf16_supported() is False on this GPU). Set model.dtype=float32 "
            "(with trainer.mixed_precision=fp16 to save memory), or train on a device that "
            "supports bfloat16.",
        ),
        (
            "float32",
            [("trainer.mixed_precision", "bf16")],
            NO_BF16_GPU,
            "trainer.mixed_precision is 'bf16', but the device 'cuda' cannot compute in "
            "bfloat16 (torch.cuda.is_bf16_supported() is False on this GPU). Set "
            "trainer.mixed_precision=fp16 (with model.dtype=float32) or "
            "trainer.mixed_precision=none, or train on a device that supports bfloat16.",
        ),
        (
            "float16",
            [],
            CPU_ALL,
            "model.dtype is float16, which cannot be trained: AdamW's small updates vanish in "
            "float16 weights, and the fp16 loss scaler needs float32 weights to unscale into. "
            "Keep float32 parameters (model.dtype=float32) and set trainer.mixed_precision=fp16",
        ),
        (
            "bfloat16",
            [("trainer.mixed_precision", "none"), ("stages[1].trainer.mixed_precision", "fp16")],
            CPU_ALL,
            "stages[1].trainer.mixed_precision is fp16 but model.dtype is bfloat16: computing "
            "in float16 from bfloat16 weights loses bfloat16's range",
        ),
    ],
)
def test_precisions_the_device_or_the_parameters_cannot_train_are_config_errors(
    dtype, mixed, supported, message
):
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_precision(dtype, mixed, device="cuda", supported=supported)


def test_precisions_that_fit_pass_the_check():
    check_precision("float32", [("trainer.mixed_precision", "fp16")], device="cuda",
                    supported=NO_BF16_GPU)  # fmt: skip
    check_precision("bfloat16", [("trainer.mixed_precision", "bf16")], device="cpu",
                    supported=CPU_ALL)  # fmt: skip
    check_precision("float16", [], device="cuda", supported=NO_BF16_GPU, training=False)  # eval


# -- through the trainer -----------------------------------------------------------------------
TINY = {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "max_position_embeddings": 128}
TASK = {"difficulty": 1, "prompt_style": "plain", "ops": "+", "max_value": 3}


def _config(tmp_path, **extra):
    base = {
        "env": {"id": "rewardgym/arithmetic-v0", "params": TASK},
        "model": {"name_or_path": "tiny", "params": TINY},
        "algorithm": {"name": "grpo", "params": {"kl_coef": 0.1}},
        "rollout": {"group_size": 4, "prompts_per_step": 4, "max_new_tokens": 4},
        "eval": {"episodes": 4},
        "trainer": {"steps": 2, "lr": 3e-3},
        "output_dir": str(tmp_path / "run"),
        "seed": 1,
    }
    for key, value in extra.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return load_config(base)


def _metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_grpo_with_lora_checkpointing_and_bf16_trains_end_to_end(tmp_path):
    memory = {"lora": {"r": 4, "alpha": 8.0}, "gradient_checkpointing": True}
    config = _config(tmp_path, model=memory, trainer={"mixed_precision": "bf16"})
    trainer = Trainer(config, progress=False, log=lambda m: None)
    trainer.run()
    records = _metrics(tmp_path / "run")
    assert [r["step"] for r in records] == [1, 2]
    for record in records:
        assert all(math.isfinite(v) for v in record.values() if isinstance(v, float))
        assert record["logprob_gap"] < 1e-2  # sampler and trainer under the same autocast
    assert "kl" in records[-1]  # the reference path ran (kl_coef > 0)
    run = tmp_path / "run"
    assert (run / "adapter" / "adapter_config.json").is_file()
    plain = AutoModelForCausalLM.from_pretrained(run / "model")
    base, _ = build_tiny_model(TinyModelConfig(**TINY))
    merged, untouched = plain.state_dict(), base.state_dict()
    assert set(merged) == set(untouched)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged[q], untouched[q])  # the adapter is merged in
    base_weights = {
        base_name(k): v for k, v in trainer.model.state_dict().items() if "lora_" not in k
    }
    assert torch.equal(base_weights[q], untouched[q])  # the base itself never changed
    from rewardgym.cli import main

    assert main(["eval", str(run), "eval.episodes=2", "--output", str(tmp_path / "e.json")]) == 0


def test_a_resumed_lora_fp16_run_writes_the_same_metrics(tmp_path):
    extra = {
        "model": {"lora": {"r": 4, "alpha": 8.0, "dropout": 0.1}},
        "trainer": {"steps": 4, "save_every": 2, "mixed_precision": "fp16"},
    }
    _train = Trainer(_config(tmp_path / "a", **extra), progress=False, log=lambda m: None)
    _train.run()
    expected = _metrics(tmp_path / "a" / "run")
    assert expected[-1]["loss_scale"] > 0

    config = _config(tmp_path / "b", **extra)
    trainer = Trainer(config, progress=False, log=lambda m: None)
    real = Trainer._step

    def dying(self, plan, ctx, step):
        if step == 3:
            raise KeyboardInterrupt
        return real(self, plan, ctx, step)

    Trainer._step = dying
    try:
        with pytest.raises(KeyboardInterrupt):
            trainer.run()
    finally:
        Trainer._step = real
    state = torch.load(
        tmp_path / "b" / "run" / "checkpoints" / "00-train-step000002" / "state.pt",
        weights_only=False,
    )
    assert state["model"] and all("lora_" in k for k in state["model"])  # the adapter only
    assert "scaler" in state and "ref_model" not in state  # no copy of the base
    Trainer(config, resume=True, progress=False, log=lambda m: None).run()
    resumed = _metrics(tmp_path / "b" / "run")

    def strip(records):
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]

    assert strip(resumed) == strip(expected)


def test_memory_config_errors_come_before_the_model_loads(tmp_path, monkeypatch):
    import rewardgym.runner.models as models

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(models, "load_model", no_loading)
    fp16_params = _config(tmp_path, model={"dtype": "float16"})
    with pytest.raises(ConfigError, match=re.escape("model.dtype is float16, which cannot")):
        Trainer(fp16_params, progress=False)
    nonsense = _config(tmp_path, model={"dtype": "bfloat16"}, trainer={"mixed_precision": "fp16"})
    with pytest.raises(ConfigError, match=re.escape("trainer.mixed_precision is fp16 but")):
        Trainer(nonsense, progress=False)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real(name, *a)
    )
    with pytest.raises(MissingExtraError, match=re.escape("pip install 'rewardgym[training]'")):
        Trainer(_config(tmp_path, model={"lora": {"r": 2}}), progress=False)


def test_lora_targets_that_match_nothing_fail_before_the_first_step(tmp_path):
    config = _config(tmp_path, model={"lora": {"target_modules": ["c_attn"]}})
    trainer = Trainer(config, progress=False, log=lambda m: None)
    with pytest.raises(ConfigError, match=re.escape("names ['c_attn'], which match no module")):
        trainer.run()
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
