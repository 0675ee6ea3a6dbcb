"""The trainer's log-prob forward pass over a :class:`~rewardgym.strategies.batch.TokenBatch`.

Shapes: N rows; P prompt positions; T response positions; W = P + T; V the vocabulary; L the
real tokens of all rows (a packed sequence); K the real response tokens. The log-prob of
response token t comes from the logits at position P + t - 1.

**Padded or packed.** The padded pass runs the (N, W) batch with its attention mask. The
packed pass (``trainer.packing``) concatenates the rows' real tokens into one (1, L) sequence,
``position_ids`` restarting at 0 for each row and no attention mask: transformers (>= 4.47)
reads the restarts as packed sequences and keeps attention within a row (a block-causal mask
for the ``sdpa``, ``eager`` and ``flex_attention`` implementations; variable-length kernels
for ``flash_attention_2`` / ``_3``). Checked equal to the padded pass within 1e-5 (log-probs
and gradients, fp32) for ``sdpa`` and ``eager`` on the Llama architecture; a model whose
attention ignores ``position_ids`` would attend across rows, so other implementations are
refused (:data:`PACKING_ATTENTION`). Both return the usual (N, T) layout; the packed pass
leaves 0 where a response position is padding (the padded pass leaves a padding token's
log-prob there; losses mask both).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rewardgym.core.errors import RewardGymError
from rewardgym.strategies.batch import TokenBatch

__all__ = [
    "PACKING_ATTENTION",
    "PackedRows",
    "attention_implementation",
    "check_packing",
    "model_device",
    "pack_rows",
    "rng_devices",
    "packed_response_logprobs",
    "sequence_logprobs",
    "token_logprobs",
]

#: Attention implementations that keep packed rows apart from ``position_ids`` alone.
PACKING_ATTENTION = ("sdpa", "eager", "flex_attention", "flash_attention_2", "flash_attention_3")


@dataclass(frozen=True)
class PackedRows:
    """The real tokens of a batch's rows concatenated in row order, without padding."""

    input_ids: torch.Tensor  # (1, L)
    position_ids: torch.Tensor  # (1, L) 0, 1, ... within each row
    index: torch.Tensor  # (N, W) packed position of each cell of the padded batch, -1 on padding
    starts: torch.Tensor  # (N,) packed position of each row's first real token

    @property
    def length(self) -> int:
        return int(self.input_ids.shape[1])


def pack_rows(batch: TokenBatch) -> PackedRows:
    """``batch``'s rows packed into one sequence (see :class:`PackedRows`)."""
    real = batch.attention_mask.bool()  # (N, W)
    positions = real.long().cumsum(1) - 1  # (N, W) the padded pass's positions on real tokens
    index = torch.full(real.shape, -1, dtype=torch.long)  # (N, W)
    index[real] = torch.arange(int(real.sum()))  # row-major: rows one after another
    starts = real.long().sum(1).cumsum(0) - real.long().sum(1)  # (N,)
    return PackedRows(
        input_ids=batch.input_ids[real][None],  # (1, L)
        position_ids=positions[real][None],  # (1, L)
        index=index,  # (N, W)
        starts=starts,  # (N,)
    )


def sequence_logprobs(
    model: torch.nn.Module, batch: TokenBatch, temperature: float = 1.0, *, packed: bool = False
) -> torch.Tensor:
    """Log-probs of the response tokens under ``model`` (with grad when enabled): (N, T).

    Logits are divided by ``temperature`` (when > 0), the same convention the engines use for
    the log-probs they report, so ratios start at 1. ``packed``: one packed sequence instead of
    the padded batch (see the module docstring)."""
    device = model_device(model)
    if packed:
        check_packing(model)
        rows = pack_rows(batch)
        out = model(
            input_ids=rows.input_ids.to(device),  # (1, L)
            position_ids=rows.position_ids.to(device),  # (1, L)
            attention_mask=None,  # the position restarts mark the rows
            use_cache=False,
        )
        return packed_response_logprobs(out.logits[0], rows, batch, temperature)  # (N, T)
    attention = batch.attention_mask.to(device)  # (N, P+T)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)  # (N, P+T)
    out = model(
        input_ids=batch.input_ids.to(device),
        attention_mask=attention,
        position_ids=positions,
        use_cache=False,
    )
    p = batch.prompt_len
    # the logits at P-1 .. P+T-2 predict the response tokens
    logprobs = token_logprobs(out.logits[:, p - 1 : -1], batch.response_ids.to(device), temperature)
    return logprobs.to(batch.mask.device)  # (N, T) where the batch lives (the graph follows)


def packed_response_logprobs(
    logits: torch.Tensor, rows: PackedRows, batch: TokenBatch, temperature: float
) -> torch.Tensor:
    """The response log-probs of ``batch`` from the logits of its packed sequence, (L, V), in
    the padded (N, T) layout (0 where the response is padding). Only the K positions that
    predict a response token go through the softmax."""
    p, t = batch.prompt_len, batch.response_ids.shape[1]
    # the packed position of the cell before each response cell (-1 before column 0)
    before = torch.nn.functional.pad(rows.index, (1, 0), value=-1)[:, p : p + t]  # (N, T)
    real = (before >= 0) & batch.attention_mask[:, p:].bool()  # (N, T) predicted in-row
    source = before[real].to(logits.device)  # (K,)
    targets = batch.response_ids[real].to(logits.device)  # (K,)
    picked = token_logprobs(logits[source], targets, temperature)  # (K,)
    out = picked.new_zeros(real.shape)  # (N, T)
    out[real.to(logits.device)] = picked  # (N, T) in the graph through ``picked``
    return out.to(batch.mask.device)  # (N, T)


def check_packing(model: torch.nn.Module) -> None:
    """A :class:`RewardGymError` unless ``model``'s attention keeps packed rows apart."""
    implementation = attention_implementation(model)
    if implementation not in PACKING_ATTENTION:
        raise RewardGymError(
            f"trainer.packing needs an attention implementation that separates packed rows by "
            f"their position ids (one of {', '.join(PACKING_ATTENTION)}); the model uses "
            f"{implementation!r}. Set trainer.packing=false (the padded pass works with any "
            "attention)."
        )


def attention_implementation(model: torch.nn.Module) -> str | None:
    """The attention implementation ``model`` runs ("sdpa", "eager", ...; None if unknown),
    read from its transformers config (wrappers that stand for a model, such as the LoRA
    reference :class:`~rewardgym.runner.lora.AdapterDisabled`, expose their model's)."""
    return getattr(getattr(model, "config", None), "_attn_implementation", None)


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s parameters. The trainer keeps batches, advantages and losses
    on the CPU and moves only the model's inputs and outputs (with their gradients)."""
    return next(model.parameters()).device


def token_logprobs(logits: torch.Tensor, ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """``log_softmax(logits / temperature)`` (plain at temperature 0) at ``ids``: logits
    (..., L, V) and ids (..., L) give (..., L), in float32."""
    logits = logits.float()  # (..., L, V)
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    logp = torch.log_softmax(logits, dim=-1)  # (..., L, V)
    return logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1)  # (..., L)


def rng_devices(model: torch.nn.Module) -> list[int]:
    """The CUDA device of ``model``'s parameters as ``torch.random.fork_rng(devices=...)``
    takes it ([] on a CPU): forking torch's RNG around a draw then covers the model's device."""
    device = model_device(model)
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]
