"""The generation-engine contract: token ids in, sampled token ids, log-probs and text out.

An :class:`Engine` samples one :class:`Generation` per prompt with :class:`SamplingParams`.
Prompts are token ids (the runner tokenises once and never re-tokenises model text); to draw
G samples per prompt the caller repeats the prompt G times. Engines are registered by name
(``rewardgym_register_engines``) and built as ``Engine(model, tokenizer, config)``.

Log-prob convention (every engine): ``Generation.logprobs[t]`` is the log-probability of the
sampled id under ``log_softmax(logits / temperature)`` (plain ``log_softmax(logits)`` at
temperature 0), taken *before* top-p truncation. The trainer recomputes the same quantity with
gradients, so the importance ratio of an unchanged policy is exactly 1.

Seed convention (every engine): row ``i`` of a call draws its randomness from its own stream,
keyed by :func:`row_seed` ``(params.seed, first_row + i)``. A row's sample therefore depends
on its prompt, the weights, the seed and its index only: not on the batch size, on the other
rows, or on how the rows are split across engines (a sharding engine passes each shard's
``first_row``). Up to float rounding of the logits, which can differ with the batch shape.

Weights from the trainer: after each optimizer step the trainer calls
:meth:`Engine.update_weights` with its model. An engine in another process (a Ray actor,
``ray.engines``; see :mod:`rewardgym.runner.ray_pool`) gets the weights through the optional
capabilities described in :class:`Engine` instead: :attr:`~Engine.owns_weights`,
:meth:`~Engine.load_weights`, :meth:`~Engine.remote_weight_sync`,
:meth:`~Engine.start_broadcast` and :meth:`~Engine.weight_transfer`.

This module imports no torch.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from rewardgym.core.errors import ConfigError

__all__ = [
    "FINISH_REASONS",
    "WEIGHT_SYNCS",
    "Engine",
    "Generation",
    "SamplingParams",
    "WeightBroadcast",
    "row_seed",
    "row_seeds",
]

FINISH_REASONS = ("stop", "eos", "length")
WEIGHT_SYNCS = ("state_dict", "collective")  # what Engine.remote_weight_sync returns
_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def row_seed(seed: int, row: int) -> int:
    """The 63-bit seed of row ``row`` of a call sampled with ``seed`` (see the module
    docstring): distinct rows and distinct seeds give unrelated streams."""
    return _splitmix64(_splitmix64(seed & _MASK64) ^ (row & _MASK64)) >> 1


def row_seeds(seed: int | None, first_row: int, n: int) -> list[int]:
    """:func:`row_seed` of rows ``first_row .. first_row + n - 1``; a fresh random seed when
    ``seed`` is None."""
    if seed is None:
        seed = secrets.randbits(63)
    return [row_seed(seed, first_row + i) for i in range(n)]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample.

    ``max_new_tokens``: at most this many ids per prompt. ``temperature``: 0 is greedy.
    ``top_p``: nucleus sampling (1.0: off). ``stop``: a row ends as soon as its generated text
    contains one of these strings; the stop string is kept in the output (ids and text), so
    ``text == decode(token_ids)``. ``seed``: the same seed, prompts and weights give the same
    samples (None: a fresh random seed); the global RNG is never used.
    """

    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop", tuple(self.stop))
        problems = [
            (self.max_new_tokens >= 1, "max_new_tokens", ">= 1", self.max_new_tokens),
            (self.temperature >= 0, "temperature", ">= 0 (0: greedy)", self.temperature),
            (0 < self.top_p <= 1, "top_p", "in (0, 1]", self.top_p),
            (all(self.stop), "stop", "non-empty strings", self.stop),
        ]
        for ok, name, expected, value in problems:
            if not ok:
                raise ConfigError(f"SamplingParams.{name} must be {expected}, got {value!r}.")


@dataclass(frozen=True)
class Generation:
    """One sampled completion.

    ``token_ids``: the sampled ids (the eos id included when it was sampled; no padding).
    ``logprobs``: one per id, under ``log_softmax(logits / temperature)`` before top-p (see the
    module docstring). ``text``: ``decode(token_ids, skip_special_tokens=True)``.
    ``finish_reason``: ``"stop"`` (a stop string), ``"eos"``, or ``"length"`` (max_new_tokens).
    """

    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    text: str
    finish_reason: str


class WeightBroadcast(Protocol):
    """The trainer's side of a collective weight sync, made by :meth:`Engine.start_broadcast`."""

    def send_weights(self) -> None:
        """Send the model's current weights to every engine of the group; return when sent."""


class Engine(ABC):
    """Base class of generation engines. Subclasses set ``name`` and implement
    :meth:`generate` and :meth:`update_weights`; :meth:`close` frees what they hold.

    Weights in another process. An engine in a Ray actor is built on the actor's own copy of
    the model, and the trainer's weights reach it in one of two ways, chosen by the classmethod
    :meth:`remote_weight_sync` from the engine's config:

    - ``"state_dict"`` (the default): the trainer puts its ``state_dict`` in Ray's object store
      and every actor loads it. With :attr:`owns_weights` False (the default) the engine samples
      from the model it was built with, so the actor loads the tensors into that model and calls
      :meth:`update_weights`; with :attr:`owns_weights` True the engine holds its own copy of the
      weights (``vllm``), the actor frees the model after building the engine, and the tensors
      go to :meth:`load_weights`.
    - ``"collective"``: the trainer broadcasts the weights to every actor's engine at once (vLLM
      with ``weight_sync: nccl``, over NCCL on GPUs). The classmethod :meth:`start_broadcast`
      sets up the trainer's side; each engine takes part through :meth:`weight_transfer`.

    An engine that implements none of these runs in actors with the default: ``state_dict``
    loaded into its model, then :meth:`update_weights`.
    """

    name: ClassVar[str]
    # True: the engine samples from its own copy of the weights and keeps no reference to the
    # model it was built from, which its holder may then free; weights come in by load_weights.
    owns_weights: ClassVar[bool] = False

    @abstractmethod
    def generate(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams, *, first_row: int = 0
    ) -> list[Generation]:
        """One :class:`Generation` per prompt (token ids), in the order of ``prompts``.
        ``first_row``: the index of ``prompts[0]`` in the caller's whole batch (the seed
        convention of the module docstring)."""

    @abstractmethod
    def update_weights(self, model: Any) -> None:
        """Sample from ``model``'s current weights from now on (called after optimizer steps)."""

    def load_weights(self, weights: Iterable[tuple[str, Any]]) -> None:
        """Sample from these weights from now on: ``(name, tensor)`` pairs named as in the
        model's ``state_dict``, passed by value (what an engine in another process receives
        from the trainer). Engines with :attr:`owns_weights` must implement it."""
        raise NotImplementedError(
            f"The {_label(type(self))} engine cannot load weights by value: implement "
            "load_weights(weights) in it (engines with owns_weights = True need it), or give it "
            "the model with update_weights(model)."
        )

    @classmethod
    def remote_weight_sync(cls, config: Any, *, gpus: float = 0) -> str:
        """How the trainer's weights reach engines of this class, built with ``config``, in
        other processes with ``gpus`` GPUs each: ``"state_dict"`` (through Ray's object store;
        the default) or ``"collective"`` (:meth:`start_broadcast`). Raises
        :class:`~rewardgym.core.errors.ConfigError` when ``config`` asks for a sync that such
        engines cannot do."""
        return "state_dict"

    @classmethod
    def start_broadcast(
        cls, transfer: Callable[..., None], model: Any, config: Any, *, engines: int
    ) -> WeightBroadcast:
        """The trainer's side of a ``"collective"`` sync with ``engines`` engines built with
        ``config``, set up at the first weight update: returns a :class:`WeightBroadcast` whose
        ``send_weights()`` sends ``model``'s current weights to all of them.
        ``transfer(method, *args)`` runs :meth:`weight_transfer` ``(method, *args)`` on every
        engine of the group and returns when all have."""
        raise NotImplementedError(
            f"The {_label(cls)} engine has no collective weight sync: its "
            "remote_weight_sync(config) must return 'state_dict', or it must implement "
            "start_broadcast and weight_transfer."
        )

    def weight_transfer(self, method: str, *args: Any) -> None:
        """The engine's side of step ``method`` of its collective weight sync (see
        :meth:`start_broadcast`), called in the engine's process."""
        raise NotImplementedError(
            f"The {_label(type(self))} engine has no collective weight sync (asked for step "
            f"{method!r}): its remote_weight_sync(config) must return 'state_dict', or it must "
            "implement start_broadcast and weight_transfer."
        )

    def metrics(self) -> dict[str, float]:
        """Engine counters since the last call, logged with each training step under
        ``engine/...`` keys (none by default)."""
        return {}

    def close(self) -> None:  # noqa: B027 (optional hook, a no-op by default)
        """Release processes, memory or devices the engine holds. Safe to call twice."""


def _label(cls: type) -> str:
    """``'name'`` of an engine class, or its class name when it sets no ``name``."""
    return repr(getattr(cls, "name", cls.__name__))
