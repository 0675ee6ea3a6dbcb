"""Training data that does not come from rollouts: demonstrations and preference pairs.

- Demonstrations (``sft``): ``{"prompt": ..., "response": ...}`` per JSONL line, or the env's
  gold solutions (:meth:`~rewardgym.TextEnv.solution`) for freshly sampled tasks.
- Preferences (``dpo`` with ``source=jsonl``): ``{"prompt": ..., "chosen": ..., "rejected": ...}``
  per JSONL line.

A file is read and checked in full when the run starts (before the model loads): a missing
file, a line that is not JSON or lacks a key fails with the path and the line number. Batches
are drawn by step index from a permutation seeded per epoch, so a resumed run sees the same
examples.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rewardgym.core.errors import ConfigError

__all__ = ["DEMONSTRATION_KEYS", "PREFERENCE_KEYS", "batch_at", "read_jsonl"]

DEMONSTRATION_KEYS = ("prompt", "response")
PREFERENCE_KEYS = ("prompt", "chosen", "rejected")


def read_jsonl(path: str | Path, keys: Sequence[str], what: str) -> list[dict[str, str]]:
    """Every line of the JSONL file at ``path`` as a dict with string values for ``keys``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"The {what} file '{path}' does not exist. Give a JSONL file with one object per "
            f"line with the keys {', '.join(keys)} (algorithm.params.path=...)."
        )
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}, line {number}: not valid JSON ({exc.msg}).") from exc
            missing = [
                k for k in keys if not isinstance(row, dict) or not isinstance(row.get(k), str)
            ]
            if missing:
                raise ConfigError(
                    f"{path}, line {number}: each line must be an object with string values for "
                    f"{', '.join(keys)}; missing or not a string: {', '.join(missing)}."
                )
            rows.append({k: row[k] for k in keys})
    if not rows:
        raise ConfigError(f"The {what} file '{path}' has no examples.")
    return rows


def batch_at(
    rows: Sequence[dict[str, str]], step: int, batch_size: int, seed: int
) -> list[dict[str, str]]:
    """The examples of step ``step``: consecutive slices of a permutation that is re-drawn,
    from ``(seed, epoch)``, at every pass over the data."""
    n = len(rows)
    out = []
    for k in range(step * batch_size, (step + 1) * batch_size):
        epoch, index = divmod(k, n)
        order = np.random.default_rng([seed, epoch]).permutation(n)
        out.append(rows[int(order[index])])
    return out
