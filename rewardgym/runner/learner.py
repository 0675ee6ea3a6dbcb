"""The trainer's side of a training step: :class:`PolicyLearner`, the
:class:`~rewardgym.strategies.base.Learner` a strategy sees.

It holds the policy, its frozen reference model (when the algorithm needs one), the optimizer
and its LR schedule (stepped by the trainer once per training step), and the engine. A strategy asks it for log-probs (the policy's with grad, the reference's
without) and hands it :class:`~rewardgym.strategies.base.LossPart` s to train on.
:meth:`PolicyLearner.update` runs ``trainer.updates_per_batch`` optimizer steps; each splits
every part into micro-batches (``trainer.grad_accum`` of them, or by the token budget
``trainer.micro_batch_tokens``; never splitting a part's units; rows packed into one sequence
with ``trainer.packing``), back-propagates each micro-batch's share of the loss, clips the
gradient norm to ``trainer.max_grad_norm``, refuses a non-finite gradient (the optimizer does
not step; the error says what to change), and steps. Then the engine takes the new weights.

The log-prob gap: during the first optimizer step of an update, before any weight changes,
every log-prob the policy computes for a part marked ``sampled`` is compared with the sampler's
(``old_logprobs``) on the trained tokens; ``logprob_gap`` is the mean absolute difference over
all of them (0 means the sampler and the trainer see the same distribution).

Precision (``trainer.mixed_precision``, :class:`~rewardgym.runner.precision.Precision`): every
forward pass (the policy's, the reference's) runs under its autocast; the backward pass runs
outside it. With fp16 the loss is scaled before the backward pass, the gradients unscaled
before clipping, and a step whose gradients overflow is skipped instead of refused (metrics
``loss_scale`` and ``skipped_steps``, the steps skipped so far in the stage). The policy's
forward passes with grad run in :func:`~rewardgym.runner.models.update_mode` (checkpointing
layers and LoRA dropout on), except the shared-prefix pass, whose KV cache must stay in the
graph (transformers does not checkpoint a layer that writes a cache).

Shapes: N rows; T response positions; R continuations of at most C tokens.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from rewardgym.core.config import TrainerSection
from rewardgym.core.engine import Engine
from rewardgym.core.errors import RewardGymError
from rewardgym.runner.batch import sequence_logprobs
from rewardgym.runner.models import update_mode
from rewardgym.runner.precision import Precision
from rewardgym.runner.prefix import prefix_logprobs
from rewardgym.strategies.base import LossPart
from rewardgym.strategies.batch import (
    Continuations,
    TokenBatch,
    micro_batches,
    token_micro_batches,
)

__all__ = ["PolicyLearner"]


class PolicyLearner:
    """The policy, its reference, the optimizer and the engine, behind the Learner protocol."""

    def __init__(
        self,
        model: torch.nn.Module,
        ref_model: torch.nn.Module | None,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        trainer: TrainerSection,
        engine: Engine,
        precision: Precision | None = None,
    ) -> None:
        self.model, self.ref_model = model, ref_model
        self.optimizer, self.scheduler = optimizer, scheduler
        self.trainer, self.engine = trainer, engine
        self.precision = precision or Precision()
        self.scaler = self.precision.grad_scaler()  # fp16 only
        self.skipped_steps = 0  # optimizer steps the scaler skipped (gradients overflowed)
        self._gap = [torch.zeros(()), torch.zeros(())]  # sum |sampler - trainer|, tokens
        self._measuring = False

    @property
    def has_reference(self) -> bool:
        return self.ref_model is not None

    # -- log-probs -----------------------------------------------------------------------------
    def logprobs(self, batch: TokenBatch, temperature: float) -> torch.Tensor:
        packed = self.trainer.packing
        with self.precision.autocast(), update_mode(self.model):
            logprobs = sequence_logprobs(self.model, batch, temperature, packed=packed)  # (n, T)
        self._measure(logprobs, batch.old_logprobs, batch.mask)
        return logprobs

    def reference_logprobs(self, batch: TokenBatch, temperature: float) -> torch.Tensor | None:
        if self.ref_model is None:
            return None
        out = torch.zeros_like(batch.old_logprobs)  # (N, T)
        packed = self.trainer.packing
        with torch.no_grad(), self.precision.autocast():
            for rows in _micro_batches(batch, None, self.trainer):
                part = batch.select(rows)
                lp = sequence_logprobs(self.ref_model, part, temperature, packed=packed)  # (n, T')
                out[rows, : lp.shape[1]] = lp
        return out

    def prefix_logprobs(
        self,
        batch: TokenBatch,
        continuations: Continuations,
        temperature: float,
        continuation_temperature: float,
        *,
        reference: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if reference:
            if self.ref_model is None:
                raise RewardGymError(
                    "prefix_logprobs(reference=True) needs a reference model; the algorithm "
                    "has none (its needs_reference is False)."
                )
            with torch.no_grad(), self.precision.autocast():
                return prefix_logprobs(
                    self.ref_model,
                    batch,
                    continuations,
                    temperature,
                    continuation_temperature,
                    packed=self.trainer.packing,
                )
        with self.precision.autocast():
            rows, conts = prefix_logprobs(
                self.model,
                batch,
                continuations,
                temperature,
                continuation_temperature,
                packed=self.trainer.packing,
            )  # (n, T), (R, C)
        self._measure(rows, batch.old_logprobs, batch.mask)
        self._measure(conts, continuations.old_logprobs, continuations.mask)
        return rows, conts

    def _measure(self, logprobs: torch.Tensor, old: torch.Tensor, mask: torch.Tensor) -> None:
        if self._measuring:
            self._gap[0] = self._gap[0] + ((logprobs.detach() - old).abs() * mask).sum()
            self._gap[1] = self._gap[1] + mask.sum()

    # -- updates -------------------------------------------------------------------------------
    def update(self, parts: Sequence[LossPart]) -> dict[str, float]:
        self._gap = [torch.zeros(()), torch.zeros(())]
        try:
            for k in range(self.trainer.updates_per_batch):
                metrics = self._optimise(parts, measure=k == 0)
        finally:
            self._measuring = False
        self.engine.update_weights(self.model)
        if any(part.sampled for part in parts):
            total, tokens = self._gap
            metrics["logprob_gap"] = float(total / tokens.clamp(min=1))
        return metrics

    def _optimise(self, parts: Sequence[LossPart], *, measure: bool) -> dict[str, float]:
        """One optimizer step over ``parts``; with ``measure``, the log-prob gap of the sampled
        parts is added up."""
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        total_rows = sum(part.batch.num_rows for part in parts)
        for part in parts:
            self._measuring = measure and part.sampled
            for rows in _micro_batches(part.batch, part.units, self.trainer):
                loss, metrics = part.loss(part.batch.select(rows), rows)
                (loss if self.scaler is None else self.scaler.scale(loss)).backward()
                _accumulate(totals, metrics, _count(rows) / total_rows)
        self._measuring = False
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.trainer.max_grad_norm)
        if self.scaler is not None:
            totals.update(self._scaled_step(self.scaler))
        elif not torch.isfinite(grad_norm):
            self.optimizer.zero_grad(set_to_none=True)
            raise RewardGymError(
                f"The gradient norm is {float(grad_norm)} at this step: the loss is not finite. "
                "Lower trainer.lr or check the rewards."
            )
        else:
            self.optimizer.step()
        totals["grad_norm"] = float(grad_norm)
        totals["time/update_s"] = time.perf_counter() - start
        return totals

    def _scaled_step(self, scaler: torch.amp.GradScaler) -> dict[str, float]:
        """fp16: the optimizer steps unless the scaled gradients overflowed (inf or nan), in
        which case the step is skipped and the loss scale halves (``GradScaler``'s rule)."""
        scale = scaler.get_scale()
        scaler.step(self.optimizer)
        scaler.update()
        self.skipped_steps += int(scaler.get_scale() < scale)  # backed off: skipped
        return {"loss_scale": scale, "skipped_steps": float(self.skipped_steps)}


def _micro_batches(
    batch: TokenBatch, units: torch.Tensor | None, trainer: TrainerSection
) -> list[Any]:
    """Slices of rows, or (with ``units`` (N,)) index tensors of the rows of consecutive units:
    greedily by ``trainer.micro_batch_tokens`` tokens (counted packed with ``trainer.packing``,
    else padded; :func:`~rewardgym.strategies.batch.token_micro_batches`), or
    ``trainer.grad_accum`` near-equal counts without a budget."""
    if trainer.micro_batch_tokens is not None:
        budget = trainer.micro_batch_tokens
        return token_micro_batches(batch, budget, packed=trainer.packing, units=units)
    if units is None:
        return micro_batches(batch.num_rows, trainer.grad_accum)
    order = torch.tensor(list(dict.fromkeys(units.tolist())))  # (U,) in order of appearance
    chunks = micro_batches(int(order.numel()), trainer.grad_accum)
    return [torch.isin(units, order[chunk]).nonzero()[:, 0] for chunk in chunks]


def _count(rows: Any) -> int:
    return rows.stop - rows.start if isinstance(rows, slice) else int(rows.numel())


def _accumulate(totals: dict[str, float], metrics: dict[str, float], weight: float) -> None:
    """Add a micro-batch's metrics: ``loss`` is summed (micro-batch losses add up to the step's
    loss), the others are averaged, weighted by the micro-batch's share of rows."""
    for key, value in metrics.items():
        share = 1.0 if key == "loss" else weight
        totals[key] = totals.get(key, 0.0) + share * float(value)
