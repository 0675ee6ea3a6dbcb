"""Packing rows of token ids into tensors, and the trainer's log-prob forward pass.

Shapes: N rows; P prompt positions (prompts left-padded to the longest); T response positions
(response tokens right-padded to the longest). A row's sequence is ``prompt + response``; the
log-prob of response token t comes from the logits at position P + t - 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "TokenBatch",
    "micro_batches",
    "model_device",
    "pack",
    "sequence_logprobs",
    "token_logprobs",
]


@dataclass(frozen=True)
class TokenBatch:
    input_ids: torch.Tensor  # (N, P+T) left-padded prompts, then right-padded responses
    attention_mask: torch.Tensor  # (N, P+T) 1 on real tokens
    prompt_len: int  # P
    response_ids: torch.Tensor  # (N, T)
    mask: torch.Tensor  # (N, T) float, 1 on trained tokens
    old_logprobs: torch.Tensor  # (N, T) sampling-time log-probs (0 where unknown)

    @property
    def num_rows(self) -> int:
        return int(self.input_ids.shape[0])

    def select(self, rows: torch.Tensor | slice) -> TokenBatch:
        """A subset of rows, with all-padding columns at both ends trimmed."""
        attention = self.attention_mask[rows]  # (n, P+T)
        used = attention.any(0).nonzero()  # (k, 1)
        if used.numel() == 0:
            first, last = 0, self.prompt_len + 1
        else:
            first, last = int(used[0]), max(int(used[-1]) + 1, self.prompt_len + 1)
        first = min(first, self.prompt_len - 1) if self.prompt_len > 0 else 0
        width = last - self.prompt_len  # response columns kept
        return TokenBatch(
            input_ids=self.input_ids[rows][:, first:last],  # (n, P'+T')
            attention_mask=attention[:, first:last],  # (n, P'+T')
            prompt_len=self.prompt_len - first,
            response_ids=self.response_ids[rows][:, :width],  # (n, T')
            mask=self.mask[rows][:, :width],  # (n, T')
            old_logprobs=self.old_logprobs[rows][:, :width],  # (n, T')
        )


def pack(
    prompts: Sequence[Sequence[int]],
    responses: Sequence[Sequence[int]],
    masks: Sequence[Sequence[float]],
    logprobs: Sequence[Sequence[float]] | None,
    pad_id: int,
) -> TokenBatch:
    """Rows of ids as a :class:`TokenBatch`. ``masks[i]`` (and ``logprobs[i]``) are aligned
    with ``responses[i]``."""
    n = len(prompts)
    p = max((len(x) for x in prompts), default=1)
    t = max(1, max((len(x) for x in responses), default=1))
    input_ids = torch.full((n, p + t), pad_id, dtype=torch.long)  # (N, P+T)
    attention = torch.zeros((n, p + t), dtype=torch.long)  # (N, P+T)
    mask = torch.zeros((n, t))  # (N, T)
    old = torch.zeros((n, t))  # (N, T)
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=False)):
        if len(masks[i]) != len(response):
            raise ValueError(
                f"row {i}: {len(response)} response ids but {len(masks[i])} mask values"
            )
        input_ids[i, p - len(prompt) : p] = torch.tensor(prompt, dtype=torch.long)
        input_ids[i, p : p + len(response)] = torch.tensor(response, dtype=torch.long)
        attention[i, p - len(prompt) : p + len(response)] = 1
        mask[i, : len(response)] = torch.tensor(masks[i], dtype=torch.float)
        if logprobs is not None:
            old[i, : len(response)] = torch.tensor(logprobs[i], dtype=torch.float)
    return TokenBatch(input_ids, attention, p, input_ids[:, p:].clone(), mask, old)


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


def micro_batches(num_rows: int, parts: int) -> list[slice]:
    """``num_rows`` split into at most ``parts`` contiguous, near-equal slices."""
    parts = max(1, min(parts, num_rows))
    bounds = [round(k * num_rows / parts) for k in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
