"""The trainer's log-prob forward pass over a :class:`~rewardgym.strategies.batch.TokenBatch`.

Shapes: N rows; P prompt positions; T response positions; V the vocabulary. The log-prob of
response token t comes from the logits at position P + t - 1.
"""

from __future__ import annotations

import torch

from rewardgym.strategies.batch import TokenBatch

__all__ = ["model_device", "sequence_logprobs", "token_logprobs"]


def sequence_logprobs(
    model: torch.nn.Module, batch: TokenBatch, temperature: float = 1.0
) -> torch.Tensor:
    """Log-probs of the response tokens under ``model`` (with grad when enabled): (N, T).

    Logits are divided by ``temperature`` (when > 0), the same convention the engines use for
    the log-probs they report, so ratios start at 1.
    """
    device = model_device(model)
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
