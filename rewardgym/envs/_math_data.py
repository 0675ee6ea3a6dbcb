"""Loading math problems from a Hugging Face ``datasets`` source (private to
``rewardgym.envs.math``).

A source is a local ``.json`` / ``.jsonl`` / ``.parquet`` file (read with the ``json`` or
``parquet`` builder of :func:`datasets.load_dataset`) or the name of a dataset on the Hugging
Face Hub. Each source is loaded once per process: the problems are kept in a cache keyed by the
source (for a file also its size and modification time), the split, the subset and the two
field names, so any number of environments built on one source share one tuple of problems.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardgym.core.errors import ConfigError, did_you_mean, require

__all__ = ["LOCAL_SUFFIXES", "DataSpec", "clear_cache", "load_problems"]

LOCAL_SUFFIXES = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}

_cache: dict[tuple[Any, ...], tuple[tuple[str, str], ...]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class DataSpec:
    """Where the problems come from and which columns hold the problem and the answer."""

    source: str
    split: str
    problem_field: str
    answer_field: str
    subset: str | None = None
    cache_dir: str | None = None


def load_problems(spec: DataSpec) -> tuple[tuple[str, str], ...]:
    """``(problem, answer)`` pairs of the source, loaded once per process.

    Rows whose problem or answer is missing or empty are skipped. Raises
    :class:`~rewardgym.core.errors.ConfigError` for a missing file, a dataset that cannot be
    loaded, unknown fields (listing the available columns), or a source with no usable row.
    """
    path = _local_path(spec.source)
    key: tuple[Any, ...]
    if path is None:
        key = ("hub", spec)
    else:
        stat = path.stat()
        key = ("file", str(path), stat.st_size, stat.st_mtime_ns, spec)
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    dataset = _load(spec, path)
    problems = _rows(dataset, spec)
    with _lock:
        return _cache.setdefault(key, problems)


def clear_cache() -> None:
    """Forget every loaded source (the next environment loads its source again)."""
    with _lock:
        _cache.clear()


def _local_path(source: str) -> Path | None:
    """The file a source names, or ``None`` for a Hub dataset name."""
    path = Path(os.path.expanduser(source))
    suffix = path.suffix.lower()
    if suffix in LOCAL_SUFFIXES:
        if not path.is_file():
            raise ConfigError(
                f"math source {source!r}: no such file ({path.absolute()}). Pass an existing "
                ".json, .jsonl or .parquet file, a Hugging Face dataset name, or 'procedural'."
            )
        return path.absolute()
    if path.exists():
        kind = "a directory" if path.is_dir() else f"a {suffix or 'suffix-less'} file"
        raise ConfigError(
            f"math source {source!r} is {kind}; a local source must be one file ending in "
            f"{', '.join(LOCAL_SUFFIXES)}."
        )
    return None


def _load(spec: DataSpec, path: Path | None) -> Any:
    datasets = require("datasets", "math", "rewardgym/math-v0 with a dataset source")
    if path is not None:
        builder = LOCAL_SUFFIXES[path.suffix.lower()]
        args: tuple[Any, ...] = (builder,)
        kwargs: dict[str, Any] = {"data_files": str(path)}
        where = f"the file {str(path)!r} (datasets' {builder!r} builder)"
    else:
        args = (spec.source,) if spec.subset is None else (spec.source, spec.subset)
        kwargs = {}
        where = f"the Hugging Face Hub dataset {spec.source!r}"
    try:
        return datasets.load_dataset(*args, split=spec.split, cache_dir=spec.cache_dir, **kwargs)
    except Exception as exc:
        hint = (
            " Local files have one split, 'train'."
            if path is not None
            else " Hub datasets need network access (or a copy in the datasets cache); to work "
            "offline pass a local .json/.jsonl/.parquet file, or source='procedural'."
        )
        raise ConfigError(
            f"math source: could not load split {spec.split!r} of {where}: "
            f"{type(exc).__name__}: {exc}.{hint}"
        ) from exc


def _rows(dataset: Any, spec: DataSpec) -> tuple[tuple[str, str], ...]:
    columns = list(dataset.column_names)
    for what, name in (("problem_field", spec.problem_field), ("answer_field", spec.answer_field)):
        if name not in columns:
            raise ConfigError(
                f"math {what} {name!r} is not a column of {spec.source!r} (split "
                f"{spec.split!r}); its columns are {columns}.{did_you_mean(name, columns)}"
            )
    rows = tuple(
        (str(problem), str(answer))
        for problem, answer in zip(
            dataset[spec.problem_field], dataset[spec.answer_field], strict=True
        )
        if problem is not None
        and answer is not None
        and str(problem).strip()
        and str(answer).strip()
    )
    if not rows:
        raise ConfigError(
            f"math source {spec.source!r} (split {spec.split!r}) has no row with both a "
            f"{spec.problem_field!r} and an {spec.answer_field!r} value ({len(dataset)} rows)."
        )
    return rows
