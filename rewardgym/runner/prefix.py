"""Log-probs of thinking traces and of the answers forced from their prefixes, in one pass.

A forced answer's context is the prompt, the first ``cut`` tokens of a trace, and an inserted
suffix. Packing it as its own row runs the whole context through the model again for each of
the m x A answers of a trace; but the hidden states of ``prompt + trace[:cut]`` are exactly
those of the trace's own row (causal attention), so this module runs the trace rows once with a
KV cache (kept in the autograd graph) and then only the *continuations* (:class:`~rewardgym.strategies.batch.Continuations`: suffix + answer), each
attending to its trace's cached keys and values up to its cut. The log-probs (and gradients)
are the same as with separate rows; the compute per answer drops from the whole context to the
continuation.

**Packed** (``packed``, ``trainer.packing``): the trace rows run as one (1, L) sequence with a
block-causal mask (each row attends within itself), built by transformers' own
``create_causal_mask`` for the model's attention implementation; each continuation then
attends to its trace's cached keys and values gathered from the packed cache (the first
``prompt + cut`` tokens of its row), padded to the longest such context. The mask must be
passed explicitly because transformers detects packed rows from ``position_ids`` only without
a KV cache. Done for the ``sdpa`` and ``eager`` implementations (checked equal to the padded
pass within 1e-5); with any other (flash-attention, flex) the padded pass runs instead.

Shapes: n trace rows (a :class:`~rewardgym.strategies.batch.TokenBatch`: prompts left-padded to P,
traces right-padded to T, W = P + T); R continuations of at most C tokens; V the vocabulary;
L the real tokens of the trace rows (packed); X the longest context of a continuation (packed).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rewardgym.core.errors import RewardGymError
from rewardgym.runner.batch import (
    attention_implementation,
    model_device,
    pack_rows,
    packed_response_logprobs,
    token_logprobs,
)
from rewardgym.strategies.batch import Continuations, TokenBatch

__all__ = ["PREFIX_PACKING_ATTENTION", "prefix_logprobs"]

#: Attention implementations whose packed trace pass takes an explicit block-causal mask.
PREFIX_PACKING_ATTENTION = ("sdpa", "eager")


def prefix_logprobs(
    model: torch.nn.Module,
    batch: TokenBatch,
    conts: Continuations,
    think_temperature: float,
    answer_temperature: float,
    *,
    packed: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs of the trace tokens, (n, T), and of the continuation tokens, (R, C), each
    under ``log_softmax(logits / temperature)`` (the engines' convention), with grad when
    enabled. Continuation row k must continue trace row ``conts.rows[k]`` of ``batch``.
    ``packed``: the trace rows run packed (see the module docstring)."""
    if packed and attention_implementation(model) in PREFIX_PACKING_ATTENTION:
        return _packed_prefix_logprobs(model, batch, conts, think_temperature, answer_temperature)
    home, device = batch.mask.device, model_device(model)  # inputs go to the model's device
    p = batch.prompt_len
    mask = batch.attention_mask.to(device)  # (n, W)
    start = mask.argmax(1)  # (n,) first real token of each row
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (n, W)
    out = model(
        input_ids=batch.input_ids.to(device),
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
    )
    think = token_logprobs(
        out.logits[:, p - 1 : -1], batch.response_ids.to(device), think_temperature
    ).to(home)  # (n, T)
    if conts.num_rows == 0:
        return think, torch.zeros(conts.ids.shape)
    width = batch.input_ids.shape[1]
    rows, cuts = conts.rows.to(device), conts.cuts.to(device)
    columns = torch.arange(width, device=device)  # (W,)
    context = (columns >= start[rows, None]) & (columns < p + cuts[:, None])  # (R, W)
    cache = _context_cache(out.past_key_values, lambda x: x.index_select(0, rows))  # (R, ., W, .)
    first = out.logits[rows, p + cuts - 1]  # (R, V) predicts the first continuation token
    reach = p - start[rows] + cuts  # (R,) context tokens: the prompt and the cut
    cont = _continue(model, conts, context, reach, cache, first, answer_temperature)
    return think, cont.to(home)  # (n, T), (R, C)


def _packed_prefix_logprobs(
    model: torch.nn.Module,
    batch: TokenBatch,
    conts: Continuations,
    think_temperature: float,
    answer_temperature: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`prefix_logprobs` with the trace rows packed into one sequence."""
    from transformers.masking_utils import create_causal_mask

    home, device = batch.mask.device, model_device(model)
    packed = pack_rows(batch)
    ids = packed.input_ids.to(device)  # (1, L)
    positions = packed.position_ids.to(device)  # (1, L)
    dtype = next(model.parameters()).dtype  # the embeddings' (first) in transformers models
    shape = torch.empty((1, packed.length, 0), dtype=dtype, device=device)  # (1, L, 0)
    # the block-causal mask transformers builds for packed rows without a cache: (1, 1, L, L)
    blocks = create_causal_mask(model.config, shape, None, None, position_ids=positions)
    out = model(input_ids=ids, attention_mask=blocks, position_ids=positions, use_cache=True)
    think = packed_response_logprobs(out.logits[0], packed, batch, think_temperature)  # (n, T)
    if conts.num_rows == 0:
        return think, torch.zeros(conts.ids.shape)
    prompt = batch.attention_mask[:, : batch.prompt_len].sum(1)  # (n,) real prompt tokens
    reach = (prompt[conts.rows] + conts.cuts).to(device)  # (R,) context tokens of each
    starts = packed.starts.to(device)[conts.rows.to(device)]  # (R,) its trace row's first
    steps = torch.arange(int(reach.max()), device=device)  # (X,)
    context = steps < reach[:, None]  # (R, X)
    where = (starts[:, None] + steps).clamp(max=packed.length - 1)  # (R, X) packed positions
    r, x = where.shape

    def gather(states: torch.Tensor) -> torch.Tensor:  # (1, heads, L, d) -> (R, heads, X, d)
        picked = states[0].index_select(1, where.reshape(-1))  # (heads, R*X, d)
        return picked.unflatten(1, (r, x)).transpose(0, 1)  # (R, heads, X, d)

    cache = _context_cache(out.past_key_values, gather)
    first = out.logits[0, starts + reach - 1]  # (R, V) predicts the first continuation token
    cont = _continue(model, conts, context, reach, cache, first, answer_temperature)
    return think, cont.to(home)  # (n, T), (R, C)


def _continue(
    model: torch.nn.Module,
    conts: Continuations,
    context: torch.Tensor,
    reach: torch.Tensor,
    cache,
    first: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """The continuations' log-probs, (R, C): each attends to the cached columns where
    ``context`` (R, K) is true, ``reach`` (R,) of them, and continues at that position;
    ``first`` (R, V): the logits that predict its first token."""
    device = context.device
    ids = conts.ids.to(device)  # (R, C)
    attention = torch.cat([context.long(), conts.valid.to(device)], dim=1)  # (R, K + C)
    steps = torch.arange(ids.shape[1], device=device)  # (C,)
    follow = model(
        input_ids=ids,
        attention_mask=attention,
        position_ids=reach[:, None] + steps,  # (R, C)
        past_key_values=cache,
        use_cache=True,
    )
    logits = torch.cat([first[:, None], follow.logits[:, :-1]], dim=1)  # (R, C, V)
    return token_logprobs(logits, ids, temperature)  # (R, C)


def _context_cache(cache, pick: Callable[[torch.Tensor], torch.Tensor]):
    """A cache holding, for each continuation, the keys and values ``pick`` takes from its
    trace row's (kept in the graph)."""
    from transformers import DynamicCache

    layers = getattr(cache, "layers", None)
    if not layers or not all(hasattr(x, "keys") and hasattr(x, "values") for x in layers):
        raise RewardGymError(
            f"Shared-prefix training needs a model whose KV cache exposes per-layer keys and "
            f"values (a transformers DynamicCache); {type(cache).__name__} does not. Set "
            "rollout.anytime.shared_prefix=false to train each forced answer as its own row."
        )
    picked = DynamicCache()
    for index, layer in enumerate(layers):
        picked.update(pick(layer.keys), pick(layer.values), index)  # (R, heads, K, d) each
    return picked
