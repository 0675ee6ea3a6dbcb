"""The strategy contract: how a training step's data is produced and handed to the algorithm.

A :class:`Strategy` is a registered component (``rewardgym_register_strategies``), built from
its config dataclass (``strategy.params``). Once per training step the trainer calls
:meth:`Strategy.step` with a :class:`StepContext`; the strategy

1. produces the step's data: it draws tasks, samples with the engine (G samples per prompt,
   answers forced at budgets, probes after episodes, a search tree, ...), and scores them with
   the envs;
2. hands the algorithm typed tensors (rewards, scorability, masks; :mod:`rewardgym.algorithms`
   says what each kind of algorithm takes) and gets advantages or selections back;
3. asks the trainer for an update: :meth:`Learner.update` takes :class:`LossPart` s, rows of
   token ids (:class:`~rewardgym.strategies.batch.TokenBatch`) with a loss function over
   micro-batches of them; the trainer splits, back-propagates, clips, steps the optimizer and
   syncs the engine's weights;
4. returns the step's metrics.

The trainer knows nothing of the data a strategy makes, and a strategy nothing of models,
devices or optimizers: it sees the trainer only through :class:`Learner`.

**Algorithms and strategies.** An algorithm declares the strategy it trains with by name (its
``strategy`` attribute). A strategy may also train the algorithms of other strategies, listed
in ``feeds`` (a "best of n" strategy feeds any algorithm of the ``standard`` strategy). A run
config that pairs an algorithm with a strategy that cannot train it fails when it loads, before
any model does.

Shapes: N rows; T response positions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch

from rewardgym.core.errors import ConfigError
from rewardgym.strategies.batch import Continuations, TokenBatch
from rewardgym.strategies.rollouts import derive_seed

if TYPE_CHECKING:
    from rewardgym.core.config import RunConfig, Stage
    from rewardgym.core.engine import Engine
    from rewardgym.core.env import TextEnv
    from rewardgym.strategies.prompts import PromptFormat
    from rewardgym.strategies.rollouts import RolloutCollector

__all__ = ["Learner", "LossFn", "LossPart", "StepContext", "Strategy", "require_methods"]

LossFn = Callable[[TokenBatch, Any], tuple[torch.Tensor, dict[str, float]]]
"""``loss(part, rows) -> (loss, metrics)``: the loss of a micro-batch ``part`` (rows ``rows`` of
the whole batch: a slice, or an index tensor when the part has ``units``), a scalar with grad
that is the micro-batch's *share* of the step loss (divide by step-wide totals, never by the
micro-batch's own counts), and logging metrics; ``loss`` in the metrics is summed over
micro-batches, the others averaged by rows."""


@dataclass(frozen=True)
class LossPart:
    """Rows to train on and the loss over them.

    ``units`` (N,): the unit each row belongs to (for example a preference pair: its chosen and
    its rejected row); micro-batches never split a unit and keep the rows in batch order.
    None: every row is its own unit. ``sampled``: the rows' ``old_logprobs`` are what the
    engine reported at the temperature the loss takes its log-probs at, so the trainer
    reports the sampler-vs-trainer gap on them (``logprob_gap``)."""

    batch: TokenBatch
    loss: LossFn
    units: torch.Tensor | None = None
    sampled: bool = False


class Learner(Protocol):
    """The trainer's side of a step, as a strategy sees it: log-probs under the policy (with
    grad) and under the frozen reference model (without), and updates.

    Log-probs follow the engines' convention, ``log_softmax(logits / temperature)`` at the
    token, so they match what the engine reported for the same temperature."""

    @property
    def has_reference(self) -> bool:
        """Whether a frozen reference model is kept (the algorithm's ``needs_reference``)."""
        ...

    def logprobs(self, batch: TokenBatch, temperature: float) -> torch.Tensor:
        """Log-probs of ``batch``'s response tokens under the policy, with grad: (N, T)."""
        ...

    def reference_logprobs(self, batch: TokenBatch, temperature: float) -> torch.Tensor | None:
        """Log-probs under the reference model, without grad, for the whole batch (in
        micro-batches): (N, T); None when there is no reference model."""
        ...

    def prefix_logprobs(
        self,
        batch: TokenBatch,
        continuations: Continuations,
        temperature: float,
        continuation_temperature: float,
        *,
        reference: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probs of ``batch``'s rows, (N, T), and of ``continuations`` of them, (R, C), in
        one pass over each row (its KV cache reused by its continuations), under the policy
        (with grad) or the reference model (``reference``, without)."""
        ...

    def update(self, parts: Sequence[LossPart]) -> dict[str, float]:
        """``trainer.updates_per_batch`` optimizer steps, each over every part (split into
        ``trainer.grad_accum`` micro-batches), then the engine samples from the new weights.
        Returns the last step's metrics (the losses' metrics, ``grad_norm``,
        ``time/update_s``) and ``logprob_gap``: the mean |sampler - trainer| log-prob of the
        sampled tokens, before the update."""
        ...


@dataclass(frozen=True)
class StepContext:
    """Everything a strategy may use in a step of one stage; built by the trainer."""

    config: RunConfig
    stage: Stage
    algorithm: Any  # the stage's built Algorithm
    rollouts: RolloutCollector  # the envs: tasks, multi-turn rollouts
    learner: Learner
    max_turns: int  # the env's turns per episode

    @property
    def engine(self) -> Engine:
        return self.rollouts.engine

    @property
    def tokenizer(self) -> Any:
        return self.rollouts.tokenizer

    @property
    def prompts(self) -> PromptFormat:
        """How env text becomes the model's ids (chat template, answer-forcing strings): use it
        for every prompt a strategy encodes."""
        return self.rollouts.prompts

    @property
    def env(self) -> TextEnv:
        """The (unwrapped) env that draws tasks; its hooks (``solution``, ``answer_forcing``,
        ``score``) serve for every task it drew."""
        return self.rollouts.sampler().unwrapped

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self.tokenizer.eos_token_id)

    def seed(self, step: int, *purpose: int) -> int:
        """The seed of ``step`` of this stage (for ``purpose``: 0 tasks, 1 samples, 2 and up
        whatever else the strategy draws): the same run, stage and step always draw the same,
        so a resumed run samples exactly what it would have."""
        base = derive_seed(self.config.seed, self.stage.index, step)
        return derive_seed(base, *purpose) if purpose else base


class Strategy(ABC):
    """Base class of strategies. Subclasses implement :meth:`step`; they may set ``feeds`` and
    override :meth:`check`. Built as ``Strategy(config)`` (the validated ``strategy.params``
    dataclass, or None for a strategy without one)."""

    #: Strategies whose algorithms this one can train too (besides those declaring it).
    feeds: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any = None) -> None:
        self.config = config

    def check(self, config: RunConfig, stage: Stage, algorithm: Any) -> None:  # noqa: B027
        """Called once per stage before any model loads: raise
        :class:`~rewardgym.core.errors.ConfigError` for what cannot work (a data file that is
        missing, an env without gold solutions, an algorithm without the methods this
        strategy calls), and read what the stage needs (a data file)."""

    @abstractmethod
    def step(self, ctx: StepContext, step: int) -> dict[str, float]:
        """Run training step ``step`` of the stage (0-based); return its metrics."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


def require_methods(strategy: str, stage: Any, algorithm: Any, calls: str, *methods: str) -> None:
    """A config error unless ``algorithm`` has every one of ``methods`` (for a strategy's
    :meth:`Strategy.check`); ``calls`` shows their signatures in the message."""
    for method in methods:
        if not callable(getattr(algorithm, method, None)):
            raise ConfigError(
                f"The '{strategy}' strategy (stage '{stage.name}') calls the algorithm's "
                f"{calls}; {stage.algorithm.name!r} has no {method}()."
            )
