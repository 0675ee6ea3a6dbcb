"""Log-probs of thinking traces and of the answers forced from their prefixes, in one pass.

A forced answer's context is the prompt, the first ``cut`` tokens of a trace, and an inserted
suffix. Packing it as its own row runs the whole context through the model again for each of
the m x A answers of a trace; but the hidden states of ``prompt + trace[:cut]`` are exactly
those of the trace's own row (causal attention), so this module runs the trace rows once with a
KV cache (kept in the autograd graph) and then only the *continuations* (:class:`~rewardgym.strategies.batch.Continuations`: suffix + answer), each
attending to its trace's cached keys and values up to its cut. The log-probs (and gradients)
are the same as with separate rows; the compute per answer drops from the whole context to the
continuation.

Shapes: n trace rows (a :class:`~rewardgym.strategies.batch.TokenBatch`: prompts left-padded to P,
traces right-padded to T, W = P + T); R continuations of at most C tokens; V the vocabulary.
"""

from __future__ import annotations

import torch

from rewardgym.core.errors import RewardGymError
from rewardgym.runner.batch import model_device, token_logprobs
from rewardgym.strategies.batch import Continuations, TokenBatch

__all__ = ["prefix_logprobs"]


def prefix_logprobs(
    model: torch.nn.Module,
    batch: TokenBatch,
    conts: Continuations,
    think_temperature: float,
    answer_temperature: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs of the trace tokens, (n, T), and of the continuation tokens, (R, C), each
    under ``log_softmax(logits / temperature)`` (the engines' convention), with grad when
    enabled. Continuation row k must continue trace row ``conts.rows[k]`` of ``batch``."""
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
    rows, cuts, ids = conts.rows.to(device), conts.cuts.to(device), conts.ids.to(device)
    columns = torch.arange(width, device=device)  # (W,)
    context = (columns >= start[rows, None]) & (columns < p + cuts[:, None])  # (R, W)
    attention = torch.cat([context.long(), conts.valid.to(device)], dim=1)  # (R, W + C)
    steps = torch.arange(ids.shape[1], device=device)  # (C,)
    cont_positions = (p - start[rows] + cuts)[:, None] + steps  # (R, C)
    cache = _expand_cache(out.past_key_values, rows)
    follow = model(
        input_ids=ids,
        attention_mask=attention,
        position_ids=cont_positions,
        past_key_values=cache,
        use_cache=True,
    )
    first = out.logits[rows, p + cuts - 1]  # (R, V) predicts the first continuation token
    logits = torch.cat([first[:, None], follow.logits[:, :-1]], dim=1)  # (R, C, V)
    return think, token_logprobs(logits, ids, answer_temperature).to(home)  # (n, T), (R, C)


def _expand_cache(cache, rows: torch.Tensor):
    """A cache holding, for each continuation, its trace row's keys and values (in the graph)."""
    from transformers import DynamicCache

    layers = getattr(cache, "layers", None)
    if not layers or not all(hasattr(x, "keys") and hasattr(x, "values") for x in layers):
        raise RewardGymError(
            f"Shared-prefix training needs a model whose KV cache exposes per-layer keys and "
            f"values (a transformers DynamicCache); {type(cache).__name__} does not. Set "
            "rollout.anytime.shared_prefix=false to train each forced answer as its own row."
        )
    expanded = DynamicCache()
    for index, layer in enumerate(layers):
        keys = layer.keys.index_select(0, rows)  # (R, heads, W, d)
        values = layer.values.index_select(0, rows)  # (R, heads, W, d)
        expanded.update(keys, values, index)
    return expanded
