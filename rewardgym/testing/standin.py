"""Tiny stand-ins for real model families, built offline: the real architecture at toy sizes.

A stand-in has the architecture class and config conventions of the checkpoint it stands for
(Qwen2: grouped-query attention, biases on q/k/v, rope theta 1e6; tied or untied embeddings as
the real model), a byte-level BPE tokenizer trained on the spot on a small math corpus (the
same kind of tokenizer as the real model: ``AutoTokenizer`` loads it back as the family's own
tokenizer class, spaces and newlines intact), the family's special tokens and its chat template.
Its weights are random (``seed``): it exercises the code paths of a real model (chat templates,
LoRA target names, gradient checkpointing, dtypes, packing) on a CPU in seconds, and says nothing
about accuracy.

    from rewardgym.testing.standin import save_standin
    path = save_standin("/tmp/qwen-standin", family="qwen2.5-instruct")
    # then: model.name_or_path=/tmp/qwen-standin in any preset made for the real model

``python -m rewardgym.testing.standin DIR [--family F]`` does the same from a shell.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from rewardgym.testing.chat import LLAMA3_TEMPLATE, QWEN2_TEMPLATE

__all__ = ["FAMILIES", "Family", "save_standin"]

# Qwen2.5-Instruct's ChatML template: Qwen2's, with Qwen2.5's default system message.
QWEN25_TEMPLATE = QWEN2_TEMPLATE.replace(
    "You are a helpful assistant.",
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
)

# DeepSeek-R1-Distill's template (the revision that opens the thinking itself), reduced likewise.
R1_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' or message['role'] == 'tool' %}"
    "{{- '<｜User｜>' + message['content'] }}"
    "{%- elif message['role'] == 'assistant' %}"
    "{{- '<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<｜Assistant｜><think>\\n' }}{%- endif %}"
)


@dataclass(frozen=True)
class Family:
    """What a stand-in copies from a real model family."""

    stands_for: str  # the real checkpoint
    architecture: str  # "qwen2" or "llama"
    template: str
    specials: tuple[str, ...]  # added special tokens, in id order after the byte-level vocab
    bos: str | None
    eos: str
    pad: str
    tie_word_embeddings: bool


FAMILIES: dict[str, Family] = {
    "qwen2.5-instruct": Family(
        stands_for="Qwen/Qwen2.5-0.5B-Instruct",
        architecture="qwen2",
        template=QWEN25_TEMPLATE,
        specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"),
        bos=None,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        tie_word_embeddings=True,
    ),
    "r1-distill-qwen": Family(
        stands_for="deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        architecture="qwen2",
        template=R1_TEMPLATE,
        specials=(
            "<｜begin▁of▁sentence｜>",
            "<｜end▁of▁sentence｜>",
            "<｜User｜>",
            "<｜Assistant｜>",
            "<think>",
            "</think>",
        ),
        bos="<｜begin▁of▁sentence｜>",
        eos="<｜end▁of▁sentence｜>",
        pad="<｜end▁of▁sentence｜>",
        tie_word_embeddings=False,
    ),
    "llama3-instruct": Family(
        stands_for="meta-llama/Llama-3.2-1B-Instruct",
        architecture="llama",
        template=LLAMA3_TEMPLATE,
        specials=(
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eot_id|>",
        ),
        bos="<|begin_of_text|>",
        eos="<|eot_id|>",
        pad="<|end_of_text|>",
        tie_word_embeddings=True,
    ),
}


def _corpus(seed: int) -> list[str]:
    """Text the BPE vocabulary is trained on: math prompts and answers, reasoning phrases."""
    import random

    rng = random.Random(seed)
    words = (
        "What is the answer ? Let me think step by step . First , then , so the result is "
        "Wait , let me check again . Therefore the final answer is \\boxed{ } Solve for x : "
        "Compute the sum of the digits . Alternatively , we can write it as a fraction ."
    ).split()
    lines = []
    for _ in range(400):
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        op = rng.choice("+-*/")
        lines.append(f"What is {a} {op} {b}? {a}{op}{b}={a + b}\n")
        lines.append(" ".join(rng.choice(words) for _ in range(12)) + "\n\n")
    return lines


def save_standin(
    path: str | os.PathLike,
    family: str = "qwen2.5-instruct",
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int | None = None,
    vocab_size: int = 512,
    max_position_embeddings: int = 4096,
    seed: int = 0,
) -> Path:
    """Build a stand-in for ``family`` (a key of :data:`FAMILIES`) and save model and tokenizer
    to ``path`` in the Hugging Face format; returns the path. ``intermediate_size`` None: about
    5.4 x ``hidden_size`` (Qwen2.5's ratio). ``vocab_size``: the byte-level BPE vocabulary
    before the special tokens (at least 256 + a few merges)."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    if family not in FAMILIES:
        raise ValueError(f"Unknown family {family!r}; choose one of {', '.join(FAMILIES)}.")
    spec = FAMILIES[family]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        _corpus(seed), vocab_size=vocab_size, min_frequency=2, show_progress=False
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token=spec.bos,
        eos_token=spec.eos,
        pad_token=spec.pad,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.add_special_tokens(
        {
            "additional_special_tokens": [
                s for s in spec.specials if s not in (spec.bos, spec.eos, spec.pad)
            ]
        }
    )
    tokenizer.chat_template = spec.template
    common = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size or int(hidden_size * 5.4) // 8 * 8,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "num_key_value_heads": num_kv_heads,
        "max_position_embeddings": max_position_embeddings,
        "tie_word_embeddings": spec.tie_word_embeddings,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if spec.architecture == "qwen2":
            model = Qwen2ForCausalLM(Qwen2Config(rope_theta=1_000_000.0, **common))
        else:
            model = LlamaForCausalLM(LlamaConfig(rope_theta=500_000.0, **common))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m rewardgym.testing.standin",
        description="Save a tiny offline stand-in for a real model family (random weights).",
    )
    parser.add_argument("path", help="the directory to write")
    parser.add_argument("--family", default="qwen2.5-instruct", choices=sorted(FAMILIES))
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args(argv)
    out = save_standin(args.path, args.family, hidden_size=args.hidden_size, num_layers=args.layers)
    print(f"Saved a {args.family} stand-in ({FAMILIES[args.family].stands_for}) to {out}")


if __name__ == "__main__":
    main()
