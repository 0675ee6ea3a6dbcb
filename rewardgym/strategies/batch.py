"""Rows of token ids as tensors: the data a strategy hands the trainer.

Shapes: N rows; P prompt positions (prompts left-padded to the longest); T response positions
(response tokens right-padded to the longest). A row's sequence is ``prompt + response``.
:class:`Continuations` are extra rows that continue a row of a :class:`TokenBatch` from one of
its positions (answers forced from a prefix of a thinking trace): R continuations of at most C
tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["Continuations", "TokenBatch", "micro_batches", "pack"]


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


@dataclass(frozen=True)
class Continuations:
    """Suffix + answer tokens of forced answers, each tied to a trace row and a cut."""

    rows: torch.Tensor  # (R,) the trace row each continues
    cuts: torch.Tensor  # (R,) trace tokens in its context
    ids: torch.Tensor  # (R, C) suffix then answer ids, right-padded
    valid: torch.Tensor  # (R, C) 1 on real tokens
    mask: torch.Tensor  # (R, C) float, 1 on trained tokens (the answer of a scorable answer)
    old_logprobs: torch.Tensor  # (R, C) sampling-time log-probs (0 on the suffix)

    @property
    def num_rows(self) -> int:
        return int(self.rows.shape[0])

    def select(self, trace_rows: slice) -> tuple[Continuations, torch.Tensor]:
        """The continuations of trace rows ``trace_rows`` (rows renumbered from 0), and their
        indices in this set, (r,)."""
        keep = ((self.rows >= trace_rows.start) & (self.rows < trace_rows.stop)).nonzero()[:, 0]
        part = Continuations(
            rows=self.rows[keep] - trace_rows.start,  # (r,)
            cuts=self.cuts[keep],  # (r,)
            ids=self.ids[keep],  # (r, C)
            valid=self.valid[keep],  # (r, C)
            mask=self.mask[keep],  # (r, C)
            old_logprobs=self.old_logprobs[keep],  # (r, C)
        )
        return part, keep


def micro_batches(num_rows: int, parts: int) -> list[slice]:
    """``num_rows`` split into at most ``parts`` contiguous, near-equal slices."""
    parts = max(1, min(parts, num_rows))
    bounds = [round(k * num_rows / parts) for k in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
