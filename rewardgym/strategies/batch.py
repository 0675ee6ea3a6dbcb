"""Rows of token ids as tensors: the data a strategy hands the trainer.

Shapes: N rows; P prompt positions (prompts left-padded to the longest); T response positions
(response tokens right-padded to the longest). A row's sequence is ``prompt + response``.
:class:`Continuations` are extra rows that continue a row of a :class:`TokenBatch` from one of
its positions (answers forced from a prefix of a thinking trace): R continuations of at most C
tokens.

**Micro-batches.** The trainer splits a batch into micro-batches of consecutive rows (of
consecutive units, when rows are grouped: a preference pair's two rows), either
``grad_accum`` near-equal row counts (:func:`micro_batches`) or greedily by a token budget
(:func:`token_micro_batches`). The token count of a micro-batch of n rows is

* padded: n x its width after :meth:`TokenBatch.select` trims the all-padding columns (the
  tensor the model runs on);
* packed: the sum of its rows' real tokens (prompt + response, no padding), the length of the
  one sequence the rows are concatenated into.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rewardgym.core.errors import RewardGymError

__all__ = ["Continuations", "TokenBatch", "micro_batches", "pack", "token_micro_batches"]


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

    @property
    def row_tokens(self) -> torch.Tensor:
        """Real tokens of each row, prompt + response without padding: (N,)."""
        return self.attention_mask.sum(1)  # (N,)

    def select(self, rows: torch.Tensor | slice) -> TokenBatch:
        """A subset of rows, with all-padding columns at both ends trimmed."""
        attention = self.attention_mask[rows]  # (n, P+T)
        used = attention.any(0).nonzero()  # (k, 1)
        if used.numel() == 0:
            first, last = _kept_columns(None, 0, self.prompt_len)
        else:
            first, last = _kept_columns(int(used[0]), int(used[-1]) + 1, self.prompt_len)
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


def _kept_columns(first: int | None, last: int, prompt_len: int) -> tuple[int, int]:
    """The columns [start, stop) :meth:`TokenBatch.select` keeps for rows whose real tokens
    lie in columns [first, last) (``first`` None: no real token): at least the last prompt
    column and the first response column."""
    if first is None:
        return 0, prompt_len + 1
    start = min(first, prompt_len - 1) if prompt_len > 0 else 0
    return start, max(last, prompt_len + 1)


def token_micro_batches(
    batch: TokenBatch,
    budget: int,
    *,
    packed: bool,
    units: torch.Tensor | None = None,
) -> list[slice] | list[torch.Tensor]:
    """``batch`` split greedily, in row order, into micro-batches of at most ``budget``
    tokens (counted padded or ``packed``, see the module docstring), never splitting a unit.

    Without ``units``: contiguous slices of rows. With ``units`` (N,): index tensors of the rows
    of consecutive units (in order of first appearance), each sorted. A unit that alone costs
    more than ``budget`` is a :class:`~rewardgym.core.errors.RewardGymError`."""
    real = batch.attention_mask.bool()  # (N, W)
    width = real.shape[1]
    columns = torch.arange(width)  # (W,)
    tokens = real.sum(1).tolist()  # N real tokens per row
    first = torch.where(real, columns, width).min(1).values.tolist()  # N, W where empty
    last = torch.where(real, columns + 1, 0).max(1).values.tolist()  # N, 0 where empty

    def cost(stats: tuple[int, int, int, int]) -> int:
        rows, real_tokens, lo, hi = stats
        if packed:
            return real_tokens
        start, stop = _kept_columns(None if lo == width else lo, hi, batch.prompt_len)
        return rows * (stop - start)

    chunks: list[list[int]] = []
    current = (0, 0, width, 0)  # rows, real tokens, first and last used column of the chunk
    for rows in _unit_rows(batch.num_rows, units):
        unit = (len(rows), sum(tokens[i] for i in rows), min(first[i] for i in rows),
                max(last[i] for i in rows))  # fmt: skip
        if cost(unit) > budget:
            raise _over_budget(rows, cost(unit), budget, packed)
        merged = (current[0] + unit[0], current[1] + unit[1], min(current[2], unit[2]),
                  max(current[3], unit[3]))  # fmt: skip
        if chunks and cost(merged) <= budget:
            chunks[-1] += rows
            current = merged
        else:
            chunks.append(list(rows))
            current = unit
    if units is None:
        return [slice(chunk[0], chunk[-1] + 1) for chunk in chunks]
    return [torch.tensor(sorted(chunk), dtype=torch.long) for chunk in chunks]


def _unit_rows(num_rows: int, units: torch.Tensor | None) -> list[list[int]]:
    """The rows of each unit, units in order of first appearance (each row its own unit
    without ``units``)."""
    if units is None:
        return [[i] for i in range(num_rows)]
    rows: dict[int, list[int]] = {}
    for row, unit in enumerate(units.tolist()):
        rows.setdefault(unit, []).append(row)
    return list(rows.values())


def _over_budget(rows: list[int], tokens: int, budget: int, packed: bool) -> RewardGymError:
    what = f"Row {rows[0]}" if len(rows) == 1 else f"The unit of rows {rows} (kept together)"
    count = "real tokens (prompt + response)" if packed else "tokens padded (prompt + response)"
    return RewardGymError(
        f"{what} needs {tokens} {count}, more than the micro-batch token budget "
        f"trainer.micro_batch_tokens={budget}; a micro-batch holds at least one row. Raise "
        f"trainer.micro_batch_tokens to at least {tokens} (or shorten the rows: "
        "rollout.max_new_tokens, the prompts)."
    )
