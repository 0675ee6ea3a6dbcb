"""Loading and saving policy models: the tiny char-level Llama, or any Hugging Face causal LM.

``load_model("tiny", TinyModelConfig(...))`` builds a small Llama with a character-level
tokenizer, offline and deterministic; any other name goes to ``AutoModelForCausalLM`` and
``AutoTokenizer``. :func:`save_model` writes a directory that :func:`load_model` (and plain
``AutoTokenizer.from_pretrained`` / ``AutoModelForCausalLM.from_pretrained``) read back.
:func:`prepare_model` turns on the memory features of ``model`` (gradient checkpointing, LoRA)
for training, and :func:`update_mode` is the module mode the trainer's forward passes run in.

The tiny tokenizer maps each character of its charset to one id, after the four specials
``<pad>`` (0), ``<bos>`` (1), ``<eos>`` (2) and ``<unk>`` (3). It adds no special tokens when
encoding (the runner prepends ``<bos>`` to prompts itself), decodes without touching spaces,
and treats the specials' spellings inside text as plain characters, so any text over the
charset round-trips exactly. A Llama config is used on purpose: with transformers 5,
``AutoTokenizer`` on a Qwen2 directory rebuilds a byte-level BPE tokenizer and drops spaces.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from rewardgym.core.config import ModelSection, build_dataclass
from rewardgym.core.errors import ConfigError, first_line
from rewardgym.runner.model_config import (
    DEFAULT_CHARSET,
    TINY,
    PretrainedModelConfig,
    TinyModelConfig,
    model_params_class,
)
from rewardgym.runner.precision import TORCH_DTYPES as DTYPES

__all__ = [
    "DEFAULT_CHARSET",
    "SPECIAL_TOKENS",
    "PretrainedModelConfig",
    "TinyModelConfig",
    "build_tiny_model",
    "char_tokenizer",
    "load_model",
    "model_params_class",
    "prepare_model",
    "save_model",
    "update_mode",
]

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")  # ids 0, 1, 2, 3
# A hub model id: "name" or "owner/name" of letters, digits, '-', '_' and '.'.
HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def char_tokenizer(charset: str) -> PreTrainedTokenizerFast:
    """A character-level tokenizer over ``charset`` (duplicates ignored), built offline."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    tokens = [*SPECIAL_TOKENS, *dict.fromkeys(charset)]
    vocab = {token: i for i, token in enumerate(tokens)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    # `[\s\S]`: one piece per character, newlines included (the Rust engine rejects `(?s).`).
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    pad, bos, eos, unk = SPECIAL_TOKENS
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=pad,
        bos_token=bos,
        eos_token=eos,
        unk_token=unk,
        padding_side="left",
        clean_up_tokenization_spaces=False,  # " ." must stay " ."
        split_special_tokens=True,  # "<eos>" written in text is five characters
    )


def build_tiny_model(config: TinyModelConfig) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """A fresh tiny Llama (tied embeddings, fp32) and its char tokenizer. The weights depend
    only on ``config`` (``config.seed`` seeds them); the global torch RNG is left untouched."""
    tokenizer = char_tokenizer(config.charset)
    llama = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.mlp_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = LlamaForCausalLM(llama)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def load_model(
    name_or_path: str,
    params: Mapping[str, Any] | Any = None,
    dtype: str = "float32",
    device: str = "cpu",
) -> tuple[Any, Any]:
    """The model and tokenizer for ``model.name_or_path``, in ``dtype`` on ``device``.

    ``params``: a :class:`TinyModelConfig` / :class:`PretrainedModelConfig` (see
    :func:`model_params_class`) or a mapping validated against it; None for the defaults.
    ``dtype``: "float32", "bfloat16", "float16", or "auto" (the checkpoint's own dtype; fp32
    for the tiny model). A tokenizer without a pad token gets its eos token as pad. The model
    is returned as loaded (train/eval mode untouched).
    """
    params = _params(name_or_path, params)
    if dtype != "auto" and dtype not in DTYPES:
        raise ConfigError(
            f"model.dtype must be one of {', '.join(map(repr, [*DTYPES, 'auto']))}, got {dtype!r}."
        )
    if name_or_path == TINY:
        model, tokenizer = build_tiny_model(params)
        if dtype != "auto":
            model = model.to(DTYPES[dtype])
    else:
        model, tokenizer = _from_pretrained(name_or_path, params, dtype)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device), tokenizer


def _params(name_or_path: str, params: Any) -> Any:
    cls = model_params_class(name_or_path)
    if params is None:
        return cls()
    if isinstance(params, cls):
        return params
    if dataclasses.is_dataclass(params) or not isinstance(params, Mapping):
        raise ConfigError(
            f"model.params for '{name_or_path}' must be a {cls.__name__} or a mapping, got "
            f"{type(params).__name__}."
        )
    return build_dataclass(cls, params, component=f"model '{name_or_path}'")


def _from_pretrained(name_or_path: str, params: PretrainedModelConfig, dtype: str):
    local = os.path.exists(os.path.expanduser(name_or_path))
    if not local and not HUB_ID_RE.match(name_or_path):
        raise ConfigError(
            f"model.name_or_path '{name_or_path}' is neither an existing directory nor a "
            "Hugging Face model id ('owner/name'). Check the path, or use name_or_path=tiny "
            "for a small model built from model.params."
        )
    source = os.path.expanduser(name_or_path) if local else name_or_path
    options = {
        "revision": params.revision,
        "trust_remote_code": params.trust_remote_code,
        "local_files_only": params.local_files_only,
    }
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
        kernels = {}
        if params.attn_implementation is not None:
            kernels["attn_implementation"] = params.attn_implementation
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype="auto" if dtype == "auto" else DTYPES[dtype], **options, **kernels
        )
    except ImportError as exc:  # attention kernels from a package that is not installed
        reason = first_line(exc)
        raise ConfigError(
            f"model.params.attn_implementation={params.attn_implementation!r} cannot be used: "
            f"{reason} Install its package (flash-attn for flash_attention_2), or leave "
            "model.params.attn_implementation out for transformers' default (sdpa)."
        ) from exc
    except (OSError, ValueError) as exc:  # missing files, or files transformers cannot read
        where = "directory" if local else "Hugging Face model id"
        reason = first_line(exc)
        raise ConfigError(
            f"Could not load model.name_or_path '{name_or_path}' (a {where}): {reason} Check "
            "the name (and model.params.revision), or that the directory was written by "
            "save_model / save_pretrained."
        ) from exc
    return model, tokenizer


def save_model(model: Any, tokenizer: Any, path: str | os.PathLike) -> None:
    """Write ``model`` and ``tokenizer`` to the directory ``path`` (created if needed), in
    the Hugging Face format that :func:`load_model` reads back. A LoRA (peft) model is written
    with its adapter merged into the base weights (see :func:`rewardgym.runner.lora.save_merged`),
    so the directory is a plain model of the base architecture."""
    from rewardgym.runner.lora import is_peft, save_merged

    if is_peft(model):
        save_merged(model, tokenizer, path)
        return
    Path(path).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def prepare_model(model: Any, section: ModelSection, *, seed: int = 0) -> Any:
    """``model`` set up for training as ``section`` (``model.*``) says: gradient checkpointing
    (``model.gradient_checkpointing``; non-reentrant, so frozen inputs need no grad), then LoRA
    adapters (``model.lora``: the peft model is returned, its adapters initialised from
    ``seed``). The model's mode is left as it was; see :func:`update_mode`."""
    if section.gradient_checkpointing:
        if not getattr(model, "supports_gradient_checkpointing", False):
            raise ConfigError(
                f"model.gradient_checkpointing is true, but {type(model).__name__} does not "
                "support gradient checkpointing. Set model.gradient_checkpointing=false."
            )
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x's name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if section.lora is not None:
        from rewardgym.runner.lora import apply_lora

        model = apply_lora(model, section.lora, seed=seed)
    return model


@contextlib.contextmanager
def update_mode(model: torch.nn.Module) -> Iterator[None]:
    """Inside: the modules that behave differently while training are switched to training,
    and only those: the decoder layers that checkpoint (transformers checkpoints a layer only
    when its ``training`` flag is set; the flag is set on the layer alone, so the dropout of
    its attention and MLP stays off) and LoRA's dropout (``model.lora.dropout``). Every other
    module keeps the eval mode the runner holds the model in (no dropout: sampling and training
    see the same function). Use it around the policy's forward passes with grad; passes without
    grad (sampling, the reference) never checkpoint."""
    switched = [
        module
        for name, module in model.named_modules()
        if not module.training and _trains_in_updates(name, module)
    ]
    for module in switched:
        module.training = True  # this module only, not its children
    try:
        yield
    finally:
        for module in switched:
            module.training = False


def _trains_in_updates(name: str, module: torch.nn.Module) -> bool:
    from transformers.modeling_layers import GradientCheckpointingLayer

    if isinstance(module, GradientCheckpointingLayer):
        return bool(module.gradient_checkpointing)
    return isinstance(module, torch.nn.Dropout) and ".lora_dropout." in f".{name}."
