"""The ``model.params`` dataclasses, and which one applies to a ``model.name_or_path``.

This module imports neither torch nor transformers, so that a run config's model params can be
validated (:func:`model_params_class`) before anything heavy loads. The loaders that use these
configs live in :mod:`rewardgym.runner.models`, which re-exports them.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from rewardgym.core.errors import ConfigError

__all__ = [
    "DEFAULT_CHARSET",
    "TINY",
    "PretrainedModelConfig",
    "TinyModelConfig",
    "model_params_class",
]

TINY = "tiny"  # model.name_or_path of the small model built from a config, no download
# Printable ASCII: letters, digits, punctuation, space, tab and newline (no \x0b or \x0c).
DEFAULT_CHARSET = "".join(c for c in string.printable if c not in "\x0b\x0c")


@dataclass(frozen=True)
class TinyModelConfig:
    """``model.params`` when ``model.name_or_path`` is ``"tiny"``: a small Llama built from this
    config with a character-level tokenizer over ``charset`` (no download).

    ``intermediate_size`` None means ``4 * hidden_size`` (the classic transformer MLP width;
    the SwiGLU MLP then has 12 h^2 parameters per layer). ``seed`` seeds the initial weights:
    the same config always gives the same weights, and the global RNG is left untouched.
    """

    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int | None = None
    max_position_embeddings: int = 512
    charset: str = DEFAULT_CHARSET
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers", "num_heads", "max_position_embeddings"):
            _positive(name, getattr(self, name))
        if self.intermediate_size is not None:
            _positive("intermediate_size", self.intermediate_size)
        head_dim, rest = divmod(self.hidden_size, self.num_heads)
        if rest or head_dim % 2:
            raise ConfigError(
                f"model.params.hidden_size ({self.hidden_size}) must be num_heads "
                f"({self.num_heads}) times an even head size (rotary embeddings rotate pairs); "
                f"e.g. hidden_size={self.num_heads * max(2, head_dim + head_dim % 2)}."
            )
        if not self.charset:
            raise ConfigError(
                "model.params.charset must hold at least one character, got ''. Leave it out "
                "for printable ASCII."
            )
        if self.seed < 0:
            raise ConfigError(f"model.params.seed must be >= 0, got {self.seed}.")

    @property
    def mlp_size(self) -> int:
        """The MLP width actually used (``intermediate_size`` or ``4 * hidden_size``)."""
        return self.intermediate_size or 4 * self.hidden_size


@dataclass(frozen=True)
class PretrainedModelConfig:
    """``model.params`` for a Hugging Face model (hub name or local directory).

    ``revision``: a branch, tag or commit of a hub model. ``trust_remote_code``: run the model
    repository's own Python code (only for repositories you trust). ``local_files_only``: never
    touch the network, use the local cache or directory only. ``attn_implementation``: the
    attention kernels transformers uses ("sdpa", "eager", "flash_attention_2" with the
    ``flash-attn`` package, ...; None: transformers' default, sdpa where the model has it).
    With ``trainer.packing``, flash-attention 2 attends within each packed row at no extra
    cost; sdpa and eager build a dense block-causal mask over the packed sequence.
    """

    revision: str | None = None
    trust_remote_code: bool = False
    local_files_only: bool = False
    attn_implementation: str | None = None


def model_params_class(name_or_path: str) -> type:
    """The dataclass that validates ``model.params`` for ``name_or_path`` (no torch import)."""
    return TinyModelConfig if name_or_path == TINY else PretrainedModelConfig


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise ConfigError(f"model.params.{name} must be >= 1, got {value}.")
