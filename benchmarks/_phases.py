"""Where a training step's time goes, measured the same way for rewardgym and for a peer trainer.

:class:`PhaseClock` records intervals of four phases and the step windows they fall in:

- ``sampling``: inside the sampler's ``generate`` (rewardgym's engine, or transformers'
  ``GenerationMixin.generate`` that TRL calls), forward passes included;
- ``forward``: the model's own forward passes outside sampling (the trainer's log-probs with
  grad, and reference / old log-probs without);
- ``backward``: ``Tensor.backward``;
- ``optimizer``: ``Optimizer.step`` (global optimizer hooks, any optimizer class).

Everything else in a step (scoring, tokenising, building tensors, the loss arithmetic, gradient
clipping, logging) is ``other``. The clock patches methods for as long as it is installed
(a ``with`` block) and puts them back after; nothing here changes what the trainers compute.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from typing import Any

import torch

PHASES = ("sampling", "forward", "backward", "optimizer")


class PhaseClock:
    """Intervals of each phase, and the windows of the steps to report."""

    def __init__(self) -> None:
        self.intervals: list[tuple[str, float, float]] = []
        self.steps: list[tuple[float, float]] = []
        self._sampling = 0  # depth of nested generate calls
        self._open: dict[str, float] = {}

    # -- recording -------------------------------------------------------------------------------
    def step_begin(self) -> None:
        self._step_start = time.perf_counter()

    def step_end(self) -> None:
        self.steps.append((self._step_start, time.perf_counter()))

    def _timed(self, phase: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            if phase == "sampling":
                self._sampling += 1
            try:
                return fn(*args, **kwargs)
            finally:
                if phase == "sampling":
                    self._sampling -= 1
                if phase != "sampling" or self._sampling == 0:
                    self.intervals.append((phase, start, time.perf_counter()))

        return wrapper

    @contextmanager
    def installed(self, model: torch.nn.Module, generate: tuple[Any, str]):
        """Patch ``generate`` (an (owner, attribute name) pair), ``Tensor.backward``, the
        optimizer hooks and forward hooks on ``model`` while the block runs."""
        owner, name = generate
        original_generate = getattr(owner, name)
        original_backward = torch.Tensor.backward
        with ExitStack() as stack:
            setattr(owner, name, self._timed("sampling", original_generate))
            stack.callback(setattr, owner, name, original_generate)
            torch.Tensor.backward = self._timed("backward", original_backward)
            stack.callback(setattr, torch.Tensor, "backward", original_backward)
            from torch.optim.optimizer import (
                register_optimizer_step_post_hook,
                register_optimizer_step_pre_hook,
            )

            pre = register_optimizer_step_pre_hook(lambda *a: self._start("optimizer"))
            post = register_optimizer_step_post_hook(lambda *a: self._stop("optimizer"))
            stack.callback(pre.remove)
            stack.callback(post.remove)
            fwd_pre = model.register_forward_pre_hook(lambda *a: self._start("forward"))
            fwd_post = model.register_forward_hook(lambda *a: self._stop("forward"))
            stack.callback(fwd_pre.remove)
            stack.callback(fwd_post.remove)
            yield self

    def _start(self, phase: str) -> None:
        if phase == "forward" and self._sampling:
            return
        self._open[phase] = time.perf_counter()

    def _stop(self, phase: str) -> None:
        start = self._open.pop(phase, None)
        if start is not None:
            self.intervals.append((phase, start, time.perf_counter()))

    # -- reporting -------------------------------------------------------------------------------
    def per_step(self, skip: int) -> dict[str, float]:
        """The median seconds per step of each phase (and ``other`` and ``step``), over the
        steps after the first ``skip``."""
        rows: list[dict[str, float]] = []
        for start, end in self.steps[skip:]:
            row = {phase: 0.0 for phase in PHASES}
            for phase, a, b in self.intervals:
                if a >= start and b <= end:
                    row[phase] += b - a
            row["step"] = end - start
            row["other"] = row["step"] - sum(row[p] for p in PHASES)
            rows.append(row)
        keys = (*PHASES, "other", "step")
        return {k: statistics.median(r[k] for r in rows) if rows else 0.0 for k in keys}
