"""The memory table of docs/models.md: which real model fits which GPU with which options.

For each model the table needs two numbers per option set, both measured or counted here:

- **fixed bytes**: parameters, gradients and AdamW state, counted from the model's real config
  (built on the ``meta`` device: exact parameter counts, nothing allocated), times the bytes
  each option keeps per parameter;
- **bytes per token** of a training micro-batch: the activations the forward pass saves for
  the backward pass, measured with ``torch.autograd.graph.saved_tensors_hooks`` while
  rewardgym's own log-prob forward (``rewardgym.runner.batch.sequence_logprobs``) runs on
  ONE decoder layer of the real shape (hidden size, MLP width, heads, KV heads) and on the
  output head with the real vocabulary, on the CPU, fp32 and under bf16 autocast. A model's
  bytes per token = layers x (one layer) + (the output head). With gradient checkpointing a
  layer keeps only its input (hidden x dtype bytes per token) and one layer's activations
  exist at a time during its recomputation. Bytes per token are the slope between 256- and
  512-token rows, so constant terms cancel (autocast's bf16 copies of fp32 weights are counted
  in the fixed bytes instead, 2 bytes per parameter).

Parameters are not counted as activations (tensors sharing a parameter's storage are skipped).
Printed as a Markdown table; ``--json`` adds the raw numbers.

    python scripts/memory_table.py
"""

from __future__ import annotations

import argparse
import json

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

from rewardgym.runner.batch import sequence_logprobs
from rewardgym.strategies.batch import pack

GIB = 2**30
# The real configs (from each checkpoint's config.json).
MODELS = {
    "Qwen2.5-0.5B-Instruct": Qwen2Config(
        hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
        num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True,
    ),
    "Qwen2.5-1.5B-Instruct": Qwen2Config(
        hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
        num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True,
    ),
    "DeepSeek-R1-Distill-Qwen-1.5B": Qwen2Config(
        hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
        num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=False,
    ),
    "Llama-3.2-1B-Instruct": LlamaConfig(
        hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
        num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True, head_dim=64,
    ),
}  # fmt: skip
# (name, parameter bytes, gradient + optimizer bytes per trained parameter, autocast, ckpt, lora)
OPTIONS = (
    ("fp32", 4, 4 + 8, False, False, False),
    ("bf16 autocast", 4, 4 + 8, True, False, False),
    ("bf16 autocast + ckpt", 4, 4 + 8, True, True, False),
    ("bf16 params + ckpt", 2, 2 + 4, True, True, False),
    ("LoRA r=16, bf16 base + ckpt", 2, 4 + 8, True, True, True),
)
GPUS = {"24 GB": 24e9, "80 GB (H100)": 80e9, "141 GB (H200)": 141e9}
TOKENS = 256  # tokens per measured row


def saved_bytes(model: torch.nn.Module, autocast: bool, tokens: int) -> int:
    """Bytes of the tensors the forward pass saves for backward (parameters excluded)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack_hook(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (1, tokens))
    batch = pack([ids[0, :1].tolist()], [ids[0, 1:].tolist()], [[1.0] * (tokens - 1)], None, 0)
    with (
        torch.autograd.graph.saved_tensors_hooks(pack_hook, lambda t: t),
        torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast),
    ):
        logprobs = sequence_logprobs(model, batch)  # (1, T)
    del logprobs
    return sum(seen.values())


def measure(config, autocast: bool) -> tuple[float, float]:
    """(bytes per token of one decoder layer, bytes per token of the output head)."""
    per_layer = []
    for vocab in (256, config.vocab_size):
        fields = {**config.to_dict(), "num_hidden_layers": 1, "vocab_size": vocab}
        fields.pop("layer_types", None)  # derived from the layer count
        small = type(config)(**fields)
        model = AutoModelForCausalLM.from_config(small)
        # the slope over the token count: constant terms (autocast's bf16 copies of the
        # weights, counted in the fixed bytes) cancel
        slope = saved_bytes(model, autocast, 2 * TOKENS) - saved_bytes(model, autocast, TOKENS)
        per_layer.append(slope / TOKENS)
        del model
    # with a 256-token vocabulary the head is negligible: the first is the layer (+ embeddings)
    return per_layer[0], per_layer[1] - per_layer[0]


def count_params(config) -> tuple[int, int]:
    """(all parameters, parameters in LoRA r=16 adapters on every linear layer but the head)."""
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    lora = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and not name.endswith("lm_head"):
            lora += 16 * (module.in_features + module.out_features)
    return total, lora


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the raw numbers as JSON last")
    parser.add_argument("--models", nargs="*", default=list(MODELS), help="a subset of models")
    args = parser.parse_args()
    torch.manual_seed(0)
    raw = {}
    print("| model | options | weights + grads + AdamW (GiB) | activations (KiB/token) "
          "| KV cache (KiB/token) | " + " | ".join(f"tokens/micro-batch, {g}" for g in GPUS)
          + " |")  # fmt: skip
    print("|---|---|---:|---:|---:|" + "---:|" * len(GPUS))
    for name in args.models:
        config = MODELS[name]
        total, lora = count_params(config)
        layers = config.num_hidden_layers
        head_dim = (
            getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        )
        kv = 2 * layers * config.num_key_value_heads * head_dim * 2  # bf16 K and V per token
        measured = {flag: measure(config, flag) for flag in (False, True)}
        raw[name] = {"params": total, "lora_params": lora, "kv_bytes_per_token": kv,
                     "layer_and_head_bytes_per_token": measured}  # fmt: skip
        for label, p_bytes, state_bytes, autocast, ckpt, use_lora in OPTIONS:
            layer, head = measured[autocast]
            trained = lora if use_lora else total
            fixed = total * p_bytes + trained * state_bytes
            if autocast and p_bytes == 4:  # autocast's bf16 copies of the weights
                fixed += total * 2
            if ckpt:  # each layer keeps its input; one layer's activations during recompute
                act = layers * config.hidden_size * (2 if autocast else 4) + layer + head
            else:
                act = layers * layer + head
            fits = [max(0, int((cap * 0.9 - fixed) / act)) for cap in GPUS.values()]
            print(f"| {name} ({total / 1e9:.2f}B) | {label} | {fixed / GIB:.1f} | "
                  f"{act / 1024:.0f} | {kv / 1024:.0f} | "
                  + " | ".join(f"{n:,}" if n else "does not fit" for n in fits) + " |")  # fmt: skip
    if args.json:
        print(json.dumps(raw))


if __name__ == "__main__":
    main()
