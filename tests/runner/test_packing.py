"""Packed, token-budgeted micro-batches: packed log-probs (and gradients) equal the padded ones
for ``sdpa`` and ``eager`` attention, shared-prefix log-probs too; the token count of a
micro-batch; the learner's loss and gradients with a token budget (packed or not) equal one
micro-batch's, for a policy-gradient part and a DPO part whose pairs are never split; the
budget errors (at run time and before the model loads); and a 2-step GRPO run whose first step
is the same with and without packing."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardgym.algorithms.base import LossScale  # noqa: E402
from rewardgym.algorithms.dpo import DPO, DPOConfig  # noqa: E402
from rewardgym.algorithms.grpo import GRPO, GRPOConfig  # noqa: E402
from rewardgym.core.config import TrainerSection, load_config  # noqa: E402
from rewardgym.core.errors import ConfigError, RewardGymError  # noqa: E402
from rewardgym.runner.batch import check_packing, sequence_logprobs  # noqa: E402
from rewardgym.runner.learner import PolicyLearner  # noqa: E402
from rewardgym.runner.models import TinyModelConfig, build_tiny_model  # noqa: E402
from rewardgym.runner.prefix import prefix_logprobs  # noqa: E402
from rewardgym.runner.setup import check_run  # noqa: E402
from rewardgym.runner.trainer import Trainer  # noqa: E402
from rewardgym.strategies.base import LossPart  # noqa: E402
from rewardgym.strategies.batch import (  # noqa: E402
    Continuations,
    TokenBatch,
    pack,
    token_micro_batches,
)
from rewardgym.strategies.standard import policy_loss  # noqa: E402

ATTENTION = ["sdpa", "eager"]
# Prompts of 1 to 12 tokens (BOS first), responses of 0 to 40: very different lengths.
PROMPT_LENS = [3, 12, 1, 7, 5, 2, 9, 4]
RESPONSE_LENS = [40, 1, 17, 0, 33, 8, 2, 25]


def _model(attention: str = "sdpa"):
    model, _ = build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2))
    model.set_attn_implementation(attention)
    assert model.config._attn_implementation == attention
    return model


def _batch(seed: int = 0, prompts=PROMPT_LENS, responses=RESPONSE_LENS) -> TokenBatch:
    g = torch.Generator().manual_seed(seed)
    ids = lambda n: torch.randint(4, 60, (n,), generator=g).tolist()  # noqa: E731
    prompt_ids = [[1, *ids(n - 1)] for n in prompts]
    response_ids = [ids(n) for n in responses]
    masks = [[float(i % 5 != 4) for i in range(len(r))] for r in response_ids]  # some 0s
    old = [(-torch.rand(len(r), generator=g) - 1).tolist() for r in response_ids]
    return pack(prompt_ids, response_ids, masks, old, 0)


def _continuations() -> Continuations:
    """Answers forced from prefixes of :func:`_batch`'s rows 0, 1, 2, 4 and 7: (R, C) = (8, 7)."""
    g = torch.Generator().manual_seed(2)
    rows = torch.tensor([0, 0, 1, 2, 2, 4, 7, 7])  # (R,)
    cuts = torch.tensor([0, 40, 1, 9, 17, 3, 0, 25])  # (R,) up to a whole response
    lengths = torch.tensor([5, 2, 7, 3, 1, 6, 4, 7])  # (R,)
    valid = (torch.arange(7) < lengths[:, None]).long()  # (R, C)
    return Continuations(
        rows=rows,
        cuts=cuts,
        ids=torch.randint(4, 60, (8, 7), generator=g) * valid,  # (R, C)
        valid=valid,
        mask=valid.float(),
        old_logprobs=-torch.rand(8, 7, generator=g) * valid,  # (R, C)
    )


def _real(batch: TokenBatch) -> torch.Tensor:
    return batch.attention_mask[:, batch.prompt_len :].bool()  # (N, T) real response tokens


def _grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return [p.grad.clone() for p in model.parameters()]


def _grpo_loss(logprobs: torch.Tensor, batch: TokenBatch) -> torch.Tensor:
    advantages = torch.linspace(-1, 1, batch.num_rows)[:, None].expand_as(batch.mask)  # (N, T)
    scale = LossScale(batch.num_rows, int(batch.mask.sum()), batch.mask.shape[1])
    loss, _ = GRPO(GRPOConfig()).loss(logprobs, batch.old_logprobs, advantages, batch.mask, scale)
    return loss


# -- the packed forward pass -------------------------------------------------------------------
@pytest.mark.parametrize("attention", ATTENTION)
def test_packed_log_probs_and_gradients_equal_the_padded_ones(attention):
    model, batch = _model(attention), _batch()
    padded = sequence_logprobs(model, batch, 0.7)  # (N, T)
    packed = sequence_logprobs(model, batch, 0.7, packed=True)  # (N, T)
    real = _real(batch)
    assert packed.shape == padded.shape
    torch.testing.assert_close(packed[real], padded[real], atol=1e-5, rtol=0)
    assert (packed[~real] == 0).all()  # padding positions hold 0
    want = _grads(model, _grpo_loss(sequence_logprobs(model, batch, 0.7), batch))
    got = _grads(model, _grpo_loss(sequence_logprobs(model, batch, 0.7, packed=True), batch))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_packed_rows_do_not_see_each_other():
    """A row's log-probs are the same alone, or packed behind any other rows."""
    model, batch = _model(), _batch()
    together = sequence_logprobs(model, batch, 1.0, packed=True)  # (N, T)
    for row in (0, 4, 7):
        alone = sequence_logprobs(model, batch.select(slice(row, row + 1)), 1.0, packed=True)
        width = alone.shape[1]
        real = _real(batch)[row, :width]
        torch.testing.assert_close(together[row, :width][real], alone[0][real], atol=1e-5, rtol=0)


def test_the_lora_reference_packs_through_its_models_config():
    pytest.importorskip("peft")
    from rewardgym.core.config.schema import LoraSection
    from rewardgym.runner.lora import AdapterDisabled, apply_lora

    model, batch = _model("eager"), _batch()
    conts, real = _continuations(), _real(batch)
    want = sequence_logprobs(model, batch, 1.0)  # (N, T) the base model, before any adapter
    reference = AdapterDisabled(apply_lora(model, LoraSection(r=4), seed=0))
    got = sequence_logprobs(reference, batch, 1.0, packed=True)  # (N, T)
    torch.testing.assert_close(got[real], want[real], atol=1e-5, rtol=0)
    think, _ = prefix_logprobs(reference, batch, conts, 1.0, 1.0, packed=True)
    torch.testing.assert_close(think[real], want[real], atol=1e-5, rtol=0)


def test_packing_needs_an_attention_that_reads_position_ids():
    model = SimpleNamespace(config=SimpleNamespace(_attn_implementation="paged_attention"))
    message = "trainer.packing needs an attention implementation that separates packed rows"
    with pytest.raises(RewardGymError, match=re.escape(message)):
        check_packing(model)


@pytest.mark.parametrize("attention", ATTENTION)
def test_packed_shared_prefix_log_probs_and_gradients_equal_the_padded_ones(attention):
    model, batch, conts = _model(attention), _batch(1), _continuations()
    valid = conts.valid
    think, cont = prefix_logprobs(model, batch, conts, 0.7, 1.3)
    think_p, cont_p = prefix_logprobs(model, batch, conts, 0.7, 1.3, packed=True)
    real = _real(batch)
    torch.testing.assert_close(think_p[real], think[real], atol=1e-5, rtol=0)
    on = valid.bool()
    torch.testing.assert_close(cont_p[on], cont[on], atol=1e-5, rtol=0)

    def objective(t, c):
        return (t * batch.mask).sum() + (c * conts.mask).sum()

    want = _grads(model, objective(*prefix_logprobs(model, batch, conts, 0.7, 1.3)))
    got = _grads(model, objective(*prefix_logprobs(model, batch, conts, 0.7, 1.3, packed=True)))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


# -- token-budgeted micro-batches --------------------------------------------------------------
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize("budget", [60, 97, 200, 1000])
def test_token_micro_batches_are_greedy_within_the_budget(packed, budget):
    batch = _batch()

    def cost(rows) -> int:
        part = batch.select(rows)
        return int(part.row_tokens.sum()) if packed else part.input_ids.numel()

    chunks = token_micro_batches(batch, budget, packed=packed)
    assert [i for c in chunks for i in range(c.start, c.stop)] == list(range(batch.num_rows))
    for chunk, after in zip(chunks, chunks[1:], strict=False):
        assert cost(chunk) <= budget
        assert cost(slice(chunk.start, after.start + 1)) > budget  # greedy: the next did not fit
    assert cost(chunks[-1]) <= budget


def test_the_packed_count_is_the_real_tokens_and_the_padded_count_the_trimmed_tensor():
    batch = _batch()
    lengths = [p + r for p, r in zip(PROMPT_LENS, RESPONSE_LENS, strict=True)]
    assert batch.row_tokens.tolist() == lengths
    # rows 1 and 2: 13 and 18 real tokens; together 2 rows x (12 + 17) columns padded
    assert token_micro_batches(batch.select(slice(1, 3)), 30, packed=True) == [
        slice(0, 1),
        slice(1, 2),
    ]
    assert token_micro_batches(batch.select(slice(1, 3)), 31, packed=True) == [slice(0, 2)]
    assert token_micro_batches(batch.select(slice(1, 3)), 57, packed=False) == [
        slice(0, 1),
        slice(1, 2),
    ]
    assert batch.select(slice(1, 3)).input_ids.shape == (2, 29)
    assert token_micro_batches(batch.select(slice(1, 3)), 58, packed=False) == [slice(0, 2)]


def test_units_are_never_split():
    batch = _batch()
    units = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])  # pairs: (0, 4), (1, 5), (2, 6), (3, 7)
    for packed in (False, True):
        chunks = token_micro_batches(batch, 120, packed=packed, units=units)
        assert len(chunks) > 1
        assert sorted(int(i) for c in chunks for i in c) == list(range(8))
        for chunk in chunks:
            assert set(Counter(units[chunk].tolist()).values()) == {2}  # both rows of a pair
            assert torch.equal(chunk, chunk.sort().values)


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_a_row_longer_than_the_budget_is_an_error_naming_its_length(packed):
    batch = _batch()
    longest = 43  # row 0: 3 prompt + 40 response tokens (also its padded width alone)
    message = (
        f"Row 0 needs {longest} {'real tokens' if packed else 'tokens padded'} (prompt + "
        "response), more than the micro-batch token budget trainer.micro_batch_tokens=42; a "
        f"micro-batch holds at least one row. Raise trainer.micro_batch_tokens to at least "
        f"{longest}"
    )
    with pytest.raises(RewardGymError, match=re.escape(message)):
        token_micro_batches(batch, 42, packed=packed)
    units = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    with pytest.raises(RewardGymError, match=re.escape("The unit of rows [0, 4] (kept together)")):
        token_micro_batches(batch, 60, packed=packed, units=units)


def test_a_budget_smaller_than_a_first_turn_is_a_config_error_before_the_model_loads(tmp_path):
    config = load_config(
        {
            "env": {"id": "rewardgym/arithmetic-v0"},
            "model": {"name_or_path": "tiny", "params": {"hidden_size": 32, "num_heads": 2}},
            "algorithm": {"name": "grpo"},
            "rollout": {"max_new_tokens": 16},
            "trainer": {"micro_batch_tokens": 16, "packing": True},
            "output_dir": str(tmp_path / "run"),
        }
    )
    message = (
        "trainer.micro_batch_tokens is 16 in stage 'train', less than one row of it: a prompt "
        "(at least 1 token) and rollout.max_new_tokens=16 response tokens. Set "
        "trainer.micro_batch_tokens to at least 17"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_run(config)
    check_run(load_config(config, ["trainer.micro_batch_tokens=17"]))
    with pytest.raises(ConfigError, match=re.escape("trainer.grad_accum")):
        load_config(config, ["trainer.micro_batch_tokens=64", "trainer.grad_accum=2"])


# -- the learner -------------------------------------------------------------------------------
class _NoEngine:
    def update_weights(self, model):
        pass


def _learner(model, trainer: TrainerSection, ref_model=None) -> PolicyLearner:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # gradients only
    return PolicyLearner(model, ref_model, optimizer, None, trainer, _NoEngine())


BUDGETS = {  # name: trainer keys (the budget set by each test, to split its batch)
    "padded_budget": {"micro_batch_tokens": 0},
    "packed_budget": {"micro_batch_tokens": 0, "packing": True},
    "packed_rows": {"grad_accum": 3, "packing": True},
}


def _with_budget(keys: dict, budget: int) -> dict:
    return {**keys, "micro_batch_tokens": budget} if "micro_batch_tokens" in keys else keys


def _update(learner, make_parts):
    metrics = learner.update(make_parts(learner))
    grads = [p.grad.clone() for p in learner.model.parameters()]
    return metrics, grads


def _assert_same_update(run, keys):
    metrics, grads = run(TrainerSection(max_grad_norm=1e9))
    other, other_grads = run(TrainerSection(max_grad_norm=1e9, **keys))
    # the loss adds up over micro-batches; other metrics are row-weighted means of theirs
    for key in ("loss", "grad_norm", "logprob_gap"):
        if key in metrics:
            assert other[key] == pytest.approx(metrics[key], abs=1e-5), key
    for a, b in zip(other_grads, grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("keys", BUDGETS.values(), ids=BUDGETS.keys())
def test_policy_loss_and_gradients_with_a_token_budget_equal_one_micro_batch(keys):
    batch, algorithm = _batch(), GRPO(GRPOConfig(kl_coef=0.05))
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.0, 1.0, 1.0, 0.0, 0.25])  # (N,) two groups of 4
    scorable = torch.ones(8, dtype=torch.bool)  # (N,)
    base = _model()
    ref_model = copy.deepcopy(base)
    torch.nn.init.normal_(ref_model.model.norm.weight, 1.0, 0.1)  # a reference apart
    keys = _with_budget(keys, 64)
    if "micro_batch_tokens" in keys:
        assert len(token_micro_batches(batch, 64, packed=keys.get("packing", False))) >= 3

    def run(trainer):
        learner = _learner(copy.deepcopy(base), trainer, ref_model)

        def parts(learner):
            ref = learner.reference_logprobs(batch, 0.7)  # (N, T)
            mask = batch.mask  # (N, T)
            adv = algorithm.advantages(rewards, scorable, mask, 4)  # (N, T)
            scale = LossScale(8, int(mask.sum()), mask.shape[1])
            ctx = SimpleNamespace(learner=learner, algorithm=algorithm)
            loss = policy_loss(ctx, adv, mask, scale, ref, 0.7)
            return [LossPart(batch, loss, sampled=True)]

        return _update(learner, parts)

    _assert_same_update(run, keys)


@pytest.mark.parametrize("keys", BUDGETS.values(), ids=BUDGETS.keys())
def test_a_dpo_part_with_a_token_budget_equals_one_micro_batch_and_keeps_pairs(keys):
    batch, algorithm = _batch(3), DPO(DPOConfig())  # rows 0-3 chosen, rows 4-7 rejected
    keys = _with_budget(keys, 100)
    num_pairs, units = 4, torch.arange(4).repeat(2)  # (2P,)
    base = _model()
    ref_model = copy.deepcopy(base)
    torch.nn.init.normal_(ref_model.model.norm.weight, 1.0, 0.1)
    seen: list[list[int]] = []

    def run(trainer):
        learner = _learner(copy.deepcopy(base), trainer, ref_model)

        def parts(learner):  # the preferences strategy's loss
            ref = learner.reference_logprobs(batch, 1.0)  # (2P, T)
            ref_seq = (ref * batch.mask).sum(1)  # (2P,)

            def loss(part, rows):
                seen.append(rows.tolist())
                seq = (learner.logprobs(part, 1.0) * part.mask).sum(1)  # (2p,)
                half = seq.shape[0] // 2
                return algorithm.loss(
                    seq[:half], seq[half:], ref_seq[rows][:half], ref_seq[rows][half:], num_pairs
                )

            return [LossPart(batch, loss, units=units)]

        return _update(learner, parts)

    _assert_same_update(run, keys)
    budgeted = seen[1:]
    assert len(budgeted) > 1
    for rows in budgeted:
        assert set(Counter(units[rows].tolist()).values()) == {2}


# -- a run -------------------------------------------------------------------------------------
def test_a_grpo_run_packed_with_a_token_budget_has_the_same_first_step(tmp_path):
    tiny = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 128}
    task = {"difficulty": 1, "prompt_style": "plain", "ops": "+", "max_value": 3}
    warmup = {"name": "warmup", "algorithm": {"name": "sft"}, "trainer": {"steps": 40}}
    records = []
    for name, keys in {"rows": {}, "packed": {"micro_batch_tokens": 40, "packing": True}}.items():
        main = {"name": "main", "algorithm": {"name": "grpo"}, "trainer": {"steps": 2, **keys}}
        config = load_config(
            {
                "env": {"id": "rewardgym/arithmetic-v0", "params": task},
                "model": {"name_or_path": "tiny", "params": tiny},
                "rollout": {"group_size": 4, "prompts_per_step": 4, "max_new_tokens": 4},
                "eval": {"episodes": 4},
                "trainer": {"lr": 3e-3},
                "stages": [warmup, main],
                "output_dir": str(tmp_path / name),
                "seed": 1,
            }
        )
        Trainer(config, progress=False, log=lambda _: None).run()
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        records.append([r for r in map(json.loads, lines) if r["stage"] == "main"])
    rows, packed = records
    assert [r["step"] for r in packed] == [1, 2]
    assert rows[0]["grad_norm"] > 0, "the first step trained nothing: no comparison"
    for key in ("loss", "grad_norm", "reward"):
        assert packed[0][key] == pytest.approx(rows[0][key], abs=1e-5), key


@pytest.mark.parametrize("keys", BUDGETS.values(), ids=BUDGETS.keys())
def test_the_anytime_shared_prefix_update_with_a_token_budget_equals_one_micro_batch(keys):
    """The anytime strategy's loss: trace rows and the answers forced from their prefixes."""
    from rewardgym.strategies.anytime import _shared_prefix_update

    batch, conts = _batch(4), _continuations()
    keys = _with_budget(keys, 64)
    base = _model()
    g = torch.Generator().manual_seed(5)
    think_adv = torch.randn(batch.mask.shape, generator=g) * batch.mask  # (N, T)
    cont_adv = torch.randn(conts.mask.shape, generator=g) * conts.mask  # (R, C)
    stage = SimpleNamespace(rollout=SimpleNamespace(temperature=0.7))

    def run(trainer):
        learner = _learner(copy.deepcopy(base), trainer)
        ctx = SimpleNamespace(stage=stage, learner=learner, algorithm=GRPO(GRPOConfig()))
        metrics = _shared_prefix_update(ctx, batch, think_adv, conts, cont_adv, 40, 1.3)
        return metrics, [p.grad.clone() for p in learner.model.parameters()]

    _assert_same_update(run, keys)
