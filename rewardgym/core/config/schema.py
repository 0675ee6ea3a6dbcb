"""The run config's schema: frozen dataclass sections, each validated when it is built.

A :class:`RunConfig` has the sections ``env``, ``algorithm``, ``model``, ``engine``,
``rollout``, ``trainer``, ``eval`` and ``ray``; ``strategy`` (a strategy's name, or None for the
one each stage's algorithm declares) and ``strategies`` (each strategy's params, by name: a stage
that runs a strategy reads its section); an optional ``stages`` list, plus ``output_dir`` and
``seed``. Every field is checked by the one validator,
:func:`rewardgym.core.params.convert`: types are never coerced across (``"3"`` is not an int),
closed choices are ``Literal`` types (a wrong one fails with the choices and a did-you-mean),
and each section's ``__post_init__`` adds its range checks. Messages name the dotted key.

A :class:`Stage` is one stage with its sections resolved (top-level sections merged with the
stage's, components looked up): see :mod:`rewardgym.core.config.resolve`.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rewardgym.core.budgets import BudgetSchedule
from rewardgym.core.errors import ConfigError
from rewardgym.core.params import RUN_CONFIG, convert, field_types

__all__ = [
    "AlgorithmSection",
    "ChatSection",
    "EngineSection",
    "EnvSection",
    "EvalSection",
    "LoraSection",
    "ModelSection",
    "RaySection",
    "RolloutSection",
    "RunConfig",
    "Stage",
    "StageSection",
    "StrategySection",
    "TrainerSection",
    "to_dict",
]

STAGE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
DEVICE_RE = re.compile(r"auto|cpu|cuda(:\d+)?")
Dtype = Literal["float32", "bfloat16", "float16", "auto"]
LrSchedule = Literal["constant", "linear", "cosine"]
MixedPrecision = Literal["none", "bf16", "fp16"]
Routing = Literal["round_robin", "least_loaded"]


def _normalise(section: Any, name: str) -> None:
    """Type-check and normalise the fields of a (frozen) section in place."""
    hints = field_types(type(section), RUN_CONFIG)
    for f in dataclasses.fields(section):
        if not f.init:
            continue
        path = f"{name}.{f.name}" if name else f.name
        value = convert(getattr(section, f.name), hints[f.name], path, RUN_CONFIG)
        object.__setattr__(section, f.name, value)


def _check(ok: bool, path: str, requirement: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{path} must be {requirement}, got {value!r}.")


def _at_least(section: Any, name: str, minimum: int, *keys: str) -> None:
    for key in keys:
        value = getattr(section, key)
        _check(value >= minimum, f"{name}.{key}", f">= {minimum}", value)


def budget_schedule(budgets: Any, prior: Any, where: str) -> BudgetSchedule:
    """A :class:`BudgetSchedule`, its errors prefixed with the config keys they concern."""
    try:
        return BudgetSchedule(budgets, prior)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


@dataclass(frozen=True)
class EnvSection:
    """The environment: a registered id and its params (validated against its config class)."""

    id: str = "rewardgym/arithmetic-v0"
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _normalise(self, "env")


@dataclass(frozen=True)
class StrategySection:
    """A stage's strategy, resolved: its registered name and its params (the ``strategies``
    section of that name, the stage's own keys over the top level's, defaults filled)."""

    name: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _normalise(self, "strategy")


@dataclass(frozen=True)
class AlgorithmSection:
    """The algorithm, by registered name (None: not chosen yet), and its params."""

    name: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _normalise(self, "algorithm")


@dataclass(frozen=True)
class ChatSection:
    """How prompts reach the model (``model.chat``). ``template``: "auto" renders envs' prompts
    (and multi-turn env replies) through the tokenizer's chat template when it has one (else
    BOS + raw text, as before), "none" never does, any other string is a Jinja chat template
    used instead of the tokenizer's. ``system_prompt``: a system message before each prompt
    (None: none). ``think_open``: text appended after the generation prompt to open the
    model's thinking (e.g. "<think>\\n" for R1-style models whose template does not add it).
    ``think_end`` / ``answer_cue``: the model's end-of-thinking marker and answer cue, used
    instead of the env's answer-forcing strings when set. ``template_kwargs``: extra variables
    for the template (e.g. ``enable_thinking: false``)."""

    template: str = "auto"
    system_prompt: str | None = None
    think_open: str = ""
    think_end: str | None = None
    answer_cue: str | None = None
    template_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _normalise(self, "model.chat")
        _check(bool(self.template.strip()), "model.chat.template", "'auto', 'none' or a Jinja "
               "template", self.template)  # fmt: skip
        for key in ("think_end", "answer_cue"):
            value = getattr(self, key)
            _check(value is None or bool(value), f"model.chat.{key}", "a non-empty str or null",
                   value)  # fmt: skip


@dataclass(frozen=True)
class LoraSection:
    """Parameter-efficient training with LoRA through ``peft`` (``model.lora``; null: off).
    ``r``: the adapter rank; ``alpha``: its scale numerator (the update is scaled by
    ``alpha / r``); ``dropout`` on the adapter's input; ``target_modules``: the names (or name
    suffixes) of the linear layers that get an adapter ("all-linear": every linear layer but
    the output head). The reference model for a KL term is the base model with the adapter
    disabled (no second copy)."""

    r: int = 16
    alpha: float = 32.0
    dropout: float = 0.0
    target_modules: str | tuple[str, ...] = "all-linear"

    def __post_init__(self) -> None:
        _normalise(self, "model.lora")
        _at_least(self, "model.lora", 1, "r")
        _check(self.alpha > 0, "model.lora.alpha", "> 0", self.alpha)
        _check(0 <= self.dropout < 1, "model.lora.dropout", "in [0, 1)", self.dropout)
        targets = self.target_modules
        _check(
            bool(targets) and (isinstance(targets, str) or all(targets)),
            "model.lora.target_modules",
            "'all-linear' or a non-empty list of module names",
            targets,
        )


@dataclass(frozen=True)
class ModelSection:
    """The policy model: a Hugging Face name or local path ("tiny": a small model built from a
    config, no download), the dtype its parameters are loaded in, the device it trains on
    ("auto": the first CUDA GPU when torch sees one, else the CPU; "cpu"; "cuda"; "cuda:N"),
    and extra params for the loader. ``gradient_checkpointing`` recomputes each layer's
    activations in the backward pass instead of storing them (less memory, about a third more
    compute); ``lora`` trains LoRA adapters instead of the full model; ``chat`` says how prompts
    are rendered (chat template, system prompt, thinking conventions)."""

    name_or_path: str = "tiny"
    dtype: Dtype = "float32"
    device: str = "auto"
    params: dict[str, Any] = field(default_factory=dict)
    gradient_checkpointing: bool = False
    lora: LoraSection | None = None
    chat: ChatSection = field(default_factory=ChatSection)

    def __post_init__(self) -> None:
        _normalise(self, "model")
        _check(
            bool(self.name_or_path.strip()),
            "model.name_or_path",
            "a non-empty str",
            self.name_or_path,
        )
        _check(
            DEVICE_RE.fullmatch(self.device) is not None,
            "model.device",
            "'auto', 'cpu', 'cuda' or 'cuda:N'",
            self.device,
        )


@dataclass(frozen=True)
class EngineSection:
    """The generation engine, by registered name (None: the runner's default), and its params."""

    name: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _normalise(self, "engine")


@dataclass(frozen=True)
class RolloutSection:
    """How samples are drawn, whatever the strategy: group size per prompt, prompts per step,
    and the sampling params.

    ``max_new_tokens`` bounds each model turn; ``stop`` strings end a turn (kept in the output);
    ``turn_separator`` goes around an env reply in a multi-turn episode; ``env_threads`` > 1
    steps the environments of a batch in that many threads (for slow verifiers). What a
    strategy does with them is its own business (its ``strategy.params``)."""

    group_size: int = 8
    prompts_per_step: int = 8
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    turn_separator: str = "\n"
    env_threads: int = 1

    def __post_init__(self) -> None:
        _normalise(self, "rollout")
        _at_least(
            self, "rollout", 1, "group_size", "prompts_per_step", "max_new_tokens", "env_threads"
        )
        _check(all(self.stop), "rollout.stop", "a list of non-empty strings", list(self.stop))
        _check(self.temperature >= 0, "rollout.temperature", ">= 0 (0: greedy)", self.temperature)
        _check(0 < self.top_p <= 1, "rollout.top_p", "in (0, 1]", self.top_p)


@dataclass(frozen=True)
class TrainerSection:
    """The optimisation loop. ``eval_every`` and ``save_every`` of 0 turn evaluation and
    checkpointing off; ``lr_schedule`` is constant, linear or cosine decay after warmup.

    ``mixed_precision``: "none" computes in the parameters' dtype; "bf16" / "fp16" run the
    forward and backward passes under autocast in that dtype with the parameters (and the
    optimizer state) kept in ``model.dtype`` ("fp16" adds a dynamic loss scaler).
    ``micro_batch_tokens``: micro-batches are formed greedily, in row order, by at most this
    many tokens each instead of ``grad_accum`` equal row counts (None: by rows); a micro-batch
    of n rows counts n x its padded width, or with ``packing`` its rows' real tokens (prompt +
    response). It must hold a row of ``rollout.max_new_tokens + 1`` tokens (checked before the
    model loads; a longer row at run time is an error naming its length). ``packing``: each
    micro-batch's rows are concatenated without padding into one sequence (positions restart
    per row, attention stays within a row) for the trainer's forward passes; without
    ``micro_batch_tokens``, one packed sequence per ``grad_accum`` micro-batch."""

    steps: int = 100
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_accum: int = 1
    updates_per_batch: int = 1
    max_grad_norm: float = 1.0
    lr_schedule: LrSchedule = "constant"
    warmup_steps: int = 0
    log_every: int = 1
    eval_every: int = 0
    save_every: int = 0
    stop_at_eval_accuracy: float | None = None
    tensorboard: bool = False
    mixed_precision: MixedPrecision = "none"
    micro_batch_tokens: int | None = None
    packing: bool = False

    def __post_init__(self) -> None:
        _normalise(self, "trainer")
        if self.micro_batch_tokens is not None:
            _check(self.micro_batch_tokens >= 1, "trainer.micro_batch_tokens", ">= 1 or null",
                   self.micro_batch_tokens)  # fmt: skip
            _check(
                self.grad_accum == 1,
                "trainer.grad_accum",
                "1 when trainer.micro_batch_tokens is set (micro-batches are then formed by the "
                "token budget; leave one of the two out)",
                self.grad_accum,
            )
        _at_least(self, "trainer", 1, "steps", "grad_accum", "updates_per_batch", "log_every")
        _at_least(self, "trainer", 0, "warmup_steps", "eval_every", "save_every")
        _check(self.lr > 0, "trainer.lr", "> 0", self.lr)
        _check(self.weight_decay >= 0, "trainer.weight_decay", ">= 0", self.weight_decay)
        _check(self.max_grad_norm > 0, "trainer.max_grad_norm", "> 0", self.max_grad_norm)
        target = self.stop_at_eval_accuracy
        if target is not None:
            _check(0 < target <= 1, "trainer.stop_at_eval_accuracy", "in (0, 1]", target)
            _check(
                self.eval_every > 0,
                "trainer.eval_every",
                "> 0 when trainer.stop_at_eval_accuracy is set (it is checked at each evaluation)",
                self.eval_every,
            )


@dataclass(frozen=True)
class EvalSection:
    """How a model is evaluated (during training every ``trainer.eval_every`` steps, at the end
    of each stage, and by ``rewardgym eval``): ``episodes`` tasks drawn from the env with
    ``seed`` (distinct from the training seeds), ``samples`` completions per task at
    ``temperature`` (0: greedy), pass@k for each k in ``pass_k``. ``max_new_tokens`` None: the
    rollout's. ``budgets`` (thinking tokens, strictly increasing; empty: off) add a budget
    evaluation: traces up to the largest budget, a forced answer at 0 tokens and at each budget;
    ``budget_prior`` weights the budgets in the anytime accuracy."""

    episodes: int = 100
    samples: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int | None = None
    pass_k: tuple[int, ...] = (1,)
    seed: int = 1_000_003
    budgets: tuple[int, ...] = ()
    budget_prior: str | tuple[float, ...] = "uniform"

    def __post_init__(self) -> None:
        _normalise(self, "eval")
        if self.budgets:
            self.budget_schedule  # noqa: B018 -- budgets and prior are valid together
        _at_least(self, "eval", 1, "episodes", "samples")
        _at_least(self, "eval", 0, "seed")
        _check(self.temperature >= 0, "eval.temperature", ">= 0 (0: greedy)", self.temperature)
        _check(0 < self.top_p <= 1, "eval.top_p", "in (0, 1]", self.top_p)
        if self.max_new_tokens is not None:
            _check(self.max_new_tokens >= 1, "eval.max_new_tokens", ">= 1", self.max_new_tokens)
        for k in self.pass_k:
            _check(
                1 <= k <= self.samples,
                "eval.pass_k",
                f"a list of k with 1 <= k <= eval.samples ({self.samples})",
                list(self.pass_k),
            )

    @property
    def budget_schedule(self) -> BudgetSchedule | None:
        """The evaluation budgets and prior, or None when ``budgets`` is empty."""
        if not self.budgets:
            return None
        return budget_schedule(self.budgets, self.budget_prior, "eval.budgets / eval.budget_prior")


@dataclass(frozen=True)
class StageSection:
    """One stage of a multi-stage run (e.g. an SFT warm-up, then RL). ``algorithm``,
    ``strategies``, ``trainer`` and ``rollout`` override the run's top-level sections for this
    stage: keys given here replace the top-level ones (nested mappings key by key). A stage
    that names another algorithm starts from that algorithm's defaults (not from the top-level
    algorithm's params) and runs the strategy it declares unless ``strategy`` names one."""

    name: str = "???"
    algorithm: dict[str, Any] = field(default_factory=dict)
    strategy: str | None = None
    strategies: dict[str, dict[str, Any]] = field(default_factory=dict)
    trainer: dict[str, Any] = field(default_factory=dict)
    rollout: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _normalise(self, "stages[]")
        _check(
            bool(STAGE_NAME_RE.match(self.name)),
            "stages[].name",
            "a name of letters, digits, '_' and '-' (it names the stage's folders)",
            self.name,
        )


@dataclass(frozen=True)
class Stage:
    """A stage with its sections resolved: the top-level sections merged with the stage's, and
    (for a config loaded with its components) the strategy named and every params filled."""

    index: int
    name: str
    algorithm: AlgorithmSection
    strategy: StrategySection
    trainer: TrainerSection
    rollout: RolloutSection


@dataclass(frozen=True)
class RaySection:
    """Scale-out on Ray. ``engines`` > 0 samples on that many engine actors (each an
    ``engine.name`` engine with ``engine.params``, holding a copy of the policy; the trainer
    stays in this process and sends them its weights after every update). ``address``: the
    cluster to join (None: start a local one with ``num_cpus`` CPUs; "auto": the cluster this
    machine belongs to; "ray://host:10001": a remote one). ``engine_cpus`` / ``engine_gpus``:
    the resources each actor reserves. ``routing``: how a batch is dealt to the actors, in
    chunks of whole prompt groups: "round_robin" (chunk k to actor k mod N, all at once) or
    "least_loaded" (each chunk to the next actor that is idle). ``chunks_per_engine``: chunks
    per actor per batch. ``verifier_workers`` > 0: score on that many Ray actors, each with
    its own verifier pool (time and memory limits), instead of in this process."""

    engines: int = 0
    address: str | None = None
    num_cpus: int | None = None
    engine_cpus: float = 1.0
    engine_gpus: float = 0.0
    routing: Routing = "round_robin"
    chunks_per_engine: int = 2
    verifier_workers: int = 0

    def __post_init__(self) -> None:
        _normalise(self, "ray")
        _at_least(self, "ray", 0, "engines", "verifier_workers")
        _at_least(self, "ray", 1, "chunks_per_engine")
        if self.num_cpus is not None:
            _check(self.num_cpus >= 1, "ray.num_cpus", ">= 1 or null", self.num_cpus)
        _check(self.engine_cpus >= 0, "ray.engine_cpus", ">= 0", self.engine_cpus)
        _check(self.engine_gpus >= 0, "ray.engine_gpus", ">= 0", self.engine_gpus)

    @property
    def enabled(self) -> bool:
        return self.engines > 0 or self.verifier_workers > 0


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs. Build it with :func:`~rewardgym.core.config.load_config`, which
    also resolves its stages once (:func:`~rewardgym.core.config.plan` returns them); print it
    with :func:`~rewardgym.core.config.to_yaml`."""

    env: EnvSection = field(default_factory=EnvSection)
    strategy: str | None = None
    strategies: dict[str, dict[str, Any]] = field(default_factory=dict)
    algorithm: AlgorithmSection = field(default_factory=AlgorithmSection)
    model: ModelSection = field(default_factory=ModelSection)
    engine: EngineSection = field(default_factory=EngineSection)
    rollout: RolloutSection = field(default_factory=RolloutSection)
    trainer: TrainerSection = field(default_factory=TrainerSection)
    eval: EvalSection = field(default_factory=EvalSection)
    ray: RaySection = field(default_factory=RaySection)
    stages: tuple[StageSection, ...] = ()
    output_dir: str = "runs/default"
    seed: int = 0
    # The resolved stages, set once by the resolver (not part of the config's data).
    resolved: tuple[Stage, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _normalise(self, "")
        _check(bool(self.output_dir.strip()), "output_dir", "a non-empty path", self.output_dir)
        _check(self.seed >= 0, "seed", ">= 0", self.seed)
        names = [s.name for s in self.stages]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        _check(not duplicates, "stages[].name", "unique", duplicates)


def to_dict(config: Any) -> Any:
    """``config`` (a RunConfig, a section or any config dataclass) as plain nested dicts and
    lists: tuples and sets become lists, Enum members their names, paths str, dates and times
    ISO 8601 str. Fields that are not constructor arguments (such as resolved stages) are
    left out."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {
            f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config) if f.init
        }
    if isinstance(config, Mapping):
        return {k: to_dict(v) for k, v in config.items()}
    if isinstance(config, (list, tuple, set, frozenset)):
        return [to_dict(v) for v in config]
    if isinstance(config, enum.Enum):
        return config.name
    if isinstance(config, os.PathLike):
        return os.fspath(config)
    if isinstance(config, (datetime.date, datetime.time)):
        return config.isoformat()
    return config
