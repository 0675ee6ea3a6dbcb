"""Character-level tokenizers with a real chat template, for tests of prompt rendering (offline).

:func:`chat_tokenizer` returns the tiny model's char tokenizer
(:func:`rewardgym.runner.models.char_tokenizer`: one id per character, exact round trips) with a
chat family's control tokens added as special tokens and the family's chat template set:

- ``"qwen2"``: ChatML, as Qwen2-Instruct writes it (``<|im_start|>role\\n...<|im_end|>\\n``; a
  default system message; tool turns as ``<tool_response>`` user turns); eos ``<|im_end|>``,
  no BOS;
- ``"llama3"``: Llama-3-Instruct's template (``<|begin_of_text|>`` first, then
  ``<|start_header_id|>role<|end_header_id|>\\n\\n...<|eot_id|>``; no tool role); BOS
  ``<|begin_of_text|>``, eos ``<|eot_id|>``.

The control tokens written in text are read as control tokens (``split_special_tokens`` off), as
with the real tokenizers. :func:`save_chat_model` writes a tiny Llama with such a tokenizer to a
directory, for a run with ``model.name_or_path`` set to it::

    from rewardgym.testing.chat import chat_tokenizer, save_chat_model
    tokenizer = chat_tokenizer("qwen2")
    path = save_chat_model(tmp_path / "model", "qwen2", hidden_size=32, num_layers=1)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["LLAMA3_TEMPLATE", "QWEN2_TEMPLATE", "STYLES", "chat_tokenizer", "save_chat_model"]

# Qwen2-Instruct's ChatML template, with Qwen2.5's tool turns (tool calls themselves left out).
QWEN2_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}"
    "{%- if not loop.first %}{{- raise_exception('The system message must come first.') }}"
    "{%- endif %}"
    "{%- elif message['role'] == 'user' or message['role'] == 'assistant' %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- elif message['role'] == 'tool' %}"
    "{{- '<|im_start|>user\\n<tool_response>\\n' + message['content'] + "
    "'\\n</tool_response><|im_end|>\\n' }}"
    "{%- else %}"
    "{{- raise_exception('Unknown role: ' + message['role']) }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Meta-Llama-3-8B-Instruct's template, as published.
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}"
)

# style: (template, control tokens, bos, eos)
STYLES: dict[str, tuple[str, tuple[str, ...], str | None, str]] = {
    "qwen2": (QWEN2_TEMPLATE, ("<|im_start|>", "<|im_end|>"), None, "<|im_end|>"),
    "llama3": (
        LLAMA3_TEMPLATE,
        (
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eot_id|>",
        ),
        "<|begin_of_text|>",
        "<|eot_id|>",
    ),
}


def chat_tokenizer(style: str = "qwen2", charset: str | None = None) -> Any:
    """The char tokenizer over ``charset`` (default: printable ASCII) with the control tokens,
    BOS, eos and chat template of ``style`` (one of :data:`STYLES`)."""
    from rewardgym.runner.models import DEFAULT_CHARSET, char_tokenizer

    if style not in STYLES:
        raise ValueError(f"chat_tokenizer style must be one of {sorted(STYLES)}, got {style!r}.")
    template, controls, bos, eos = STYLES[style]
    tokenizer = char_tokenizer(DEFAULT_CHARSET if charset is None else charset)
    tokenizer.add_special_tokens({"additional_special_tokens": list(controls)})
    tokenizer.bos_token, tokenizer.eos_token = bos, eos
    tokenizer.split_special_tokens = False  # "<|im_end|>" in text is the control token
    tokenizer.chat_template = template
    return tokenizer


def save_chat_model(path: str | os.PathLike, style: str = "qwen2", **params: Any) -> Path:
    """Write a tiny Llama (``params``: :class:`~rewardgym.runner.models.TinyModelConfig`
    fields) with :func:`chat_tokenizer` ``(style)`` to ``path``, its embeddings sized for the
    added tokens and its bos/eos ids the tokenizer's; returns the path."""
    import torch

    from rewardgym.runner.models import TinyModelConfig, build_tiny_model

    config = TinyModelConfig(**params)
    model, _ = build_tiny_model(config)
    tokenizer = chat_tokenizer(style, config.charset)
    with torch.random.fork_rng(devices=[]):  # the new rows depend on config.seed only
        torch.manual_seed(config.seed)
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    for target in (model.config, model.generation_config):
        target.bos_token_id, target.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
