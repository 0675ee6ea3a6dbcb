"""The run config: one structured, validated description of a training or evaluation run.

A :class:`RunConfig` has the sections ``env``, ``algorithm``, ``model``, ``engine``, ``rollout``,
``trainer``, ``eval`` and ``ray``, an optional ``stages`` list, plus ``output_dir`` and ``seed``.
:func:`load_config` builds one from a preset name, a YAML file or a mapping, applies omegaconf dotlist overrides (``trainer.steps=50``), and
validates everything before anything heavy is imported:

- unknown keys fail with a did-you-mean naming the section (``Unknown key 'stpes' in trainer.``);
- wrong types fail with the key, the value received and the type expected; values are never
  coerced across types (``"3"`` is not an int, ``3`` is not a str); ints are accepted for floats;
- out-of-range values and unknown choices fail with the allowed range or choices;
- with ``validate_components=True`` the env id, algorithm name and engine name are looked up in
  their registries (did-you-mean) and their ``params`` are validated against each component's
  config dataclass; the params are then *resolved*: filled in with the component's defaults.

The config and its sections are frozen dataclasses (``dataclasses.replace`` makes a changed
copy); ``params`` are plain dicts, copied at load. :func:`build_dataclass` is the validator the
registries use for every component's params. This module imports no torch; omegaconf is
imported only when a config is loaded or printed.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from rewardgym.core.budgets import DEFAULT_MARKERS, BudgetSchedule, EpisodeSegmenter
from rewardgym.core.errors import ConfigError, UnknownNameError, did_you_mean
from rewardgym.core.params import RUN_CONFIG, build, build_dataclass, convert, field_types
from rewardgym.core.registry import ALGORITHMS, ENGINES, ENVS, NAME_RE, PRESETS, Registry

__all__ = [
    "DTYPES",
    "LR_SCHEDULES",
    "ROLLOUT_STRATEGIES",
    "AlgorithmSection",
    "AnytimeSection",
    "EngineSection",
    "EnvSection",
    "EpisodicSection",
    "EvalSection",
    "ModelSection",
    "RaySection",
    "RolloutSection",
    "RunConfig",
    "Stage",
    "StageSection",
    "TrainerSection",
    "build_dataclass",
    "load_config",
    "preset_names",
    "to_dict",
    "to_yaml",
]

STAGE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
DTYPES = ("float32", "bfloat16", "float16", "auto")
DEVICE_RE = re.compile(r"auto|cpu|cuda(:\d+)?")
ROLLOUT_STRATEGIES = ("standard", "anytime", "episodic")
LR_SCHEDULES = ("constant", "linear", "cosine")


# -- the run config ----------------------------------------------------------------------------
def _normalise(section: Any, name: str) -> None:
    """Type-check and normalise the fields of a (frozen) section in place."""
    hints = field_types(type(section), RUN_CONFIG)
    for f in dataclasses.fields(section):
        path = f"{name}.{f.name}" if name else f.name
        value = convert(getattr(section, f.name), hints[f.name], path, RUN_CONFIG)
        object.__setattr__(section, f.name, value)


def _check(ok: bool, path: str, requirement: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{path} must be {requirement}, got {value!r}.")


def _choice(path: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        hint = did_you_mean(value, choices)
        raise ConfigError(
            f"{path} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}.{hint}"
        )


def _at_least(section: Any, name: str, minimum: int, *keys: str) -> None:
    for key in keys:
        value = getattr(section, key)
        _check(value >= minimum, f"{name}.{key}", f">= {minimum}", value)


@dataclass(frozen=True)
class EnvSection:
    """The environment: a registered id and its params (validated against its config class)."""

    id: str = "rewardgym/arithmetic-v0"
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _normalise(self, "env")


@dataclass(frozen=True)
class AlgorithmSection:
    """The algorithm, by registered name (None: not chosen yet), and its params."""

    name: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _normalise(self, "algorithm")


@dataclass(frozen=True)
class ModelSection:
    """The policy model: a Hugging Face name or local path ("tiny": a small model built from a
    config, no download), the dtype to load it in, the device it trains on ("auto": the first
    CUDA GPU when torch sees one, else the CPU; "cpu"; "cuda"; "cuda:N"), and extra params for
    the loader."""

    name_or_path: str = "tiny"
    dtype: str = "float32"
    device: str = "auto"
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _normalise(self, "model")
        _check(
            bool(self.name_or_path.strip()),
            "model.name_or_path",
            "a non-empty str",
            self.name_or_path,
        )
        _choice("model.dtype", self.dtype, DTYPES)
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


def _schedule(budgets: Any, prior: Any, where: str) -> BudgetSchedule:
    """A :class:`BudgetSchedule`, its errors prefixed with the config keys they concern."""
    try:
        return BudgetSchedule(budgets, prior)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


@dataclass(frozen=True)
class AnytimeSection:
    """The ``anytime`` rollout strategy (BRPO): each thinking trace is cut at ``budgets``
    (thinking tokens, strictly increasing; the largest caps the trace) and ``summaries``
    forced answers of at most ``summary_max_tokens`` tokens are sampled at each budget, at
    ``summary_temperature`` (None: the rollout's). ``prior``: ``base``, ``uniform``, ``linear``
    or one probability per budget (the weights of the anytime objective). ``shared_prefix``:
    train a trace and the summaries of its prefixes in one pass over the trace (its KV cache
    reused; same gradients) instead of one full row per summary."""

    budgets: tuple[int, ...] = (2000, 4000, 6000, 8000)
    prior: str | tuple[float, ...] = "uniform"
    summaries: int = 4
    summary_max_tokens: int = 128
    summary_temperature: float | None = None
    shared_prefix: bool = True

    def __post_init__(self) -> None:
        _normalise(self, "rollout.anytime")
        _at_least(self, "rollout.anytime", 1, "summaries", "summary_max_tokens")
        t = self.summary_temperature
        if t is not None:
            _check(t >= 0, "rollout.anytime.summary_temperature", ">= 0 (0: greedy)", t)
        self.schedule  # noqa: B018 -- budgets and prior are valid together

    @property
    def schedule(self) -> BudgetSchedule:
        """The budgets and prior as a :class:`~rewardgym.core.budgets.BudgetSchedule`."""
        return _schedule(self.budgets, self.prior, "rollout.anytime")


@dataclass(frozen=True)
class EpisodicSection:
    """The ``episodic`` rollout strategy (MRT): a trace is split into episodes at paragraphs
    that begin with one of ``markers`` (a cut needs more than ``min_gap`` paragraphs since the
    previous one; every ``merge_every`` episodes are merged), and ``probes`` forced answers of
    at most ``probe_max_tokens`` tokens are sampled at ``probe_temperature`` after the empty
    prefix and after each episode."""

    markers: tuple[str, ...] = DEFAULT_MARKERS
    min_gap: int = 2
    merge_every: int = 1
    probes: int = 8
    probe_max_tokens: int = 128
    probe_temperature: float = 0.6

    def __post_init__(self) -> None:
        _normalise(self, "rollout.episodic")
        _at_least(self, "rollout.episodic", 1, "probes", "probe_max_tokens")
        t = self.probe_temperature
        _check(t >= 0, "rollout.episodic.probe_temperature", ">= 0 (0: greedy)", t)
        self.segmenter  # noqa: B018 -- markers, min_gap and merge_every are valid

    @property
    def segmenter(self) -> EpisodeSegmenter:
        """The episode rule as an :class:`~rewardgym.core.budgets.EpisodeSegmenter`."""
        try:
            return EpisodeSegmenter(self.markers, self.min_gap, self.merge_every)
        except ConfigError as exc:
            raise ConfigError(f"rollout.episodic: {exc}") from exc


@dataclass(frozen=True)
class RolloutSection:
    """How samples are collected: group size per prompt, prompts per step, sampling params, and
    the rollout strategy (standard, anytime budget probes, or episodic progress rewards).

    ``max_new_tokens`` bounds each model turn; ``stop`` strings end a turn (kept in the output);
    ``turn_separator`` goes around an env reply in a multi-turn episode; ``env_threads`` > 1
    steps the environments of a batch in that many threads (for slow verifiers). ``anytime``
    and ``episodic`` configure those strategies (validated whatever the strategy)."""

    group_size: int = 8
    prompts_per_step: int = 8
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    turn_separator: str = "\n"
    env_threads: int = 1
    strategy: str = "standard"
    anytime: AnytimeSection = field(default_factory=AnytimeSection)
    episodic: EpisodicSection = field(default_factory=EpisodicSection)

    def __post_init__(self) -> None:
        _normalise(self, "rollout")
        _at_least(
            self, "rollout", 1, "group_size", "prompts_per_step", "max_new_tokens", "env_threads"
        )
        _check(all(self.stop), "rollout.stop", "a list of non-empty strings", list(self.stop))
        _check(self.temperature >= 0, "rollout.temperature", ">= 0 (0: greedy)", self.temperature)
        _check(0 < self.top_p <= 1, "rollout.top_p", "in (0, 1]", self.top_p)
        _choice("rollout.strategy", self.strategy, ROLLOUT_STRATEGIES)


@dataclass(frozen=True)
class TrainerSection:
    """The optimisation loop. ``eval_every`` and ``save_every`` of 0 turn evaluation and
    checkpointing off; ``lr_schedule`` is constant, linear or cosine decay after warmup."""

    steps: int = 100
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_accum: int = 1
    updates_per_batch: int = 1
    max_grad_norm: float = 1.0
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    log_every: int = 1
    eval_every: int = 0
    save_every: int = 0
    stop_at_eval_accuracy: float | None = None
    tensorboard: bool = False

    def __post_init__(self) -> None:
        _normalise(self, "trainer")
        _at_least(self, "trainer", 1, "steps", "grad_accum", "updates_per_batch", "log_every")
        _at_least(self, "trainer", 0, "warmup_steps", "eval_every", "save_every")
        _check(self.lr > 0, "trainer.lr", "> 0", self.lr)
        _check(self.weight_decay >= 0, "trainer.weight_decay", ">= 0", self.weight_decay)
        _check(self.max_grad_norm > 0, "trainer.max_grad_norm", "> 0", self.max_grad_norm)
        _choice("trainer.lr_schedule", self.lr_schedule, LR_SCHEDULES)
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
        return _schedule(self.budgets, self.budget_prior, "eval.budgets / eval.budget_prior")


@dataclass(frozen=True)
class StageSection:
    """One stage of a multi-stage run (e.g. an SFT warm-up, then RL). ``algorithm``,
    ``trainer`` and ``rollout`` override the run's top-level sections for this stage: keys
    given here replace the top-level ones (a stage that names another algorithm starts from
    that algorithm's defaults, not from the top-level algorithm's params)."""

    name: str = "???"
    algorithm: dict[str, Any] = field(default_factory=dict)
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
    """A stage with its sections resolved (top-level sections merged with the stage's)."""

    index: int
    name: str
    algorithm: AlgorithmSection
    trainer: TrainerSection
    rollout: RolloutSection


ROUTINGS = ("round_robin", "least_loaded")


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
    routing: str = "round_robin"
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
        _choice("ray.routing", self.routing, ROUTINGS)

    @property
    def enabled(self) -> bool:
        return self.engines > 0 or self.verifier_workers > 0


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs. Build it with :func:`load_config`; print it with :func:`to_yaml`."""

    env: EnvSection = field(default_factory=EnvSection)
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

    def __post_init__(self) -> None:
        _normalise(self, "")
        _check(bool(self.output_dir.strip()), "output_dir", "a non-empty path", self.output_dir)
        _check(self.seed >= 0, "seed", ">= 0", self.seed)
        names = [s.name for s in self.stages]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        _check(not duplicates, "stages[].name", "unique", duplicates)
        self.plan()  # every stage's merged sections are valid

    def plan(self) -> tuple[Stage, ...]:
        """The stages to run, in order: the ``stages`` list resolved against the top-level
        sections, or one stage named ``train`` made of the top-level sections."""
        if not self.stages:
            return (Stage(0, "train", self.algorithm, self.trainer, self.rollout),)
        return tuple(_resolve_stage(self, i, stage) for i, stage in enumerate(self.stages))


def _resolve_stage(config: RunConfig, index: int, stage: StageSection) -> Stage:
    where = f"stages[{index}] ({stage.name})"
    algorithm = dict(stage.algorithm)
    if "name" not in algorithm or algorithm["name"] == config.algorithm.name:
        params = {**config.algorithm.params, **algorithm.get("params", {})}
        algorithm = {**to_dict(config.algorithm), **algorithm, "params": params}
    sections = []
    for name, cls, base, overrides in (
        ("algorithm", AlgorithmSection, {}, algorithm),
        ("trainer", TrainerSection, to_dict(config.trainer), stage.trainer),
        ("rollout", RolloutSection, to_dict(config.rollout), stage.rollout),
    ):
        try:
            merged = _deep_merge(base, overrides)
            sections.append(build(cls, merged, RUN_CONFIG, f"{where}.{name}."))
        except ConfigError as exc:
            if where in str(exc):
                raise
            raise ConfigError(f"In {where}: {exc}") from exc
    return Stage(index, stage.name, *sections)


def _deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` on top; nested sections (``rollout.anytime``) are merged key
    by key, everything else (lists included) is replaced."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key != "params":
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# -- loading -----------------------------------------------------------------------------------
def preset_names() -> list[str]:
    """Names of the registered config presets (rewardgym's ``configs/`` and plugins')."""
    return PRESETS.ids()


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any] | RunConfig | None = None,
    overrides: Sequence[str] = (),
    *,
    validate_components: bool = True,
) -> RunConfig:
    """Build a validated :class:`RunConfig`.

    ``source``: a preset name (``"arithmetic"``; see :func:`preset_names`), a path to a YAML file
    (a ``Path``, or a str that is not a preset-style name, e.g. ``"my.yaml"``), a mapping, a
    RunConfig, or None for the defaults. A preset or file may start from another one with a
    top-level ``base: NAME_OR_PATH`` key (its own keys win; lists are replaced whole). ``overrides`` are applied in order: omegaconf dotlist
    items ``"trainer.steps=50"``, ``"env.params.difficulty=3"`` (values parsed as YAML), or
    ``"~env.params"`` to delete a key. Interpolations (``${seed}``) are resolved. Raises
    :class:`ConfigError` for every problem found in the config.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(overrides, (str, bytes)):
        raise ConfigError(
            f"overrides must be a list of 'key=value' strings, got the str {overrides!r}."
        )
    # The source is merged onto the defaults, so interpolations can name any key.
    cfg = _merge(_create(to_dict(RunConfig()), "the defaults"), _source(source), "the source")
    for text in overrides:
        cfg = _apply_override(cfg, text)
    try:
        data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"Could not resolve the config: {_first_line(exc)}") from exc
    config = build(RunConfig, data, RUN_CONFIG, "")
    return _validate_components(config) if validate_components else config


def _first_line(exc: BaseException) -> str:
    """An omegaconf or YAML error in one line, with the key or the line it concerns."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:  # a YAML syntax error
        context = f"{exc.context}: " if getattr(exc, "context", None) else ""
        return f"{context}{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    key = getattr(exc, "full_key", None)
    return f"{text} (at '{key}')" if key and f"'{key}'" not in text else text


def _merge(base: Any, other: Any, what: str) -> Any:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.merge(base, other)
    except (OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(f"Cannot apply {what}: {_first_line(exc)}") from exc


def _source(source: Any) -> Any:
    """The source as an omegaconf DictConfig."""
    if source is None:
        return _create({}, "the source")
    if isinstance(source, RunConfig):
        return _create(to_dict(source), "the given RunConfig")
    if isinstance(source, Mapping):
        return _create(dict(source), "the given mapping")
    if isinstance(source, str) and NAME_RE.match(source):
        return _with_base(_load_preset(source), f"the preset '{source}'", (source,))
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        return _with_base(_load_file(path), f"the config file '{path}'", (str(path),))
    raise ConfigError(
        f"A config source must be a preset name, a path to a YAML file, a mapping or None; "
        f"got {type(source).__name__}."
    )


def _with_base(cfg: Any, what: str, chain: tuple[str, ...]) -> Any:
    """A preset or file with a top-level ``base: NAME`` key is merged onto that preset (or
    file, relative to the working directory): its keys win, lists are replaced whole."""
    if "base" not in cfg:
        return cfg
    base = cfg.pop("base")
    if not isinstance(base, str) or not base:
        raise ConfigError(f"'base' in {what} must be a preset name or a file path, got {base!r}.")
    if base in chain:
        raise ConfigError(f"'base' in {what} makes a cycle: {' -> '.join((*chain, base))}.")
    if NAME_RE.match(base):
        parent = _with_base(_load_preset(base), f"the preset '{base}'", (*chain, base))
    else:
        parent = _with_base(
            _load_file(Path(base).expanduser()), f"the file '{base}'", (*chain, base)
        )
    return _merge(parent, cfg, what)


def _create(data: Any, what: str) -> Any:
    """``data`` (a dict, or YAML text) as an omegaconf DictConfig; the top level is a mapping."""
    import yaml
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        top = yaml.safe_load(data) if isinstance(data, str) else data
        if top is None:  # an empty file, or only comments
            top = data = {}
        if not isinstance(top, Mapping):
            shown = "a list" if isinstance(top, list) else f"{top!r} ({type(top).__name__})"
            raise ConfigError(
                f"{what[0].upper()}{what[1:]} must be a mapping at the top level, got {shown}."
            )
        return OmegaConf.create(data)
    except (OmegaConfBaseException, yaml.YAMLError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"Could not read {what}: {_first_line(exc)}") from exc


def _load_preset(name: str) -> Any:
    try:
        spec = PRESETS.get(name)
    except UnknownNameError as exc:
        hint = (
            f" (To load the file '{name}', give it as './{name}'.)" if Path(name).exists() else ""
        )
        raise ConfigError(f"{exc}{hint}") from exc
    what = f"the preset '{name}' ({spec.entry_point}, registered by {spec.origin})"
    if not isinstance(spec.entry_point, str):
        raise ConfigError(f"Cannot read {what}: a preset must be a 'package:file.yaml' resource.")
    package, _, path = spec.entry_point.partition(":")
    try:
        text = resources.files(package).joinpath(path).read_text(encoding="utf-8")
    except (ImportError, OSError) as exc:
        raise ConfigError(f"Cannot read {what}: {type(exc).__name__}: {exc}") from exc
    return _create(text, what)


def _load_file(path: Path) -> Any:
    if not path.is_file():
        state = "is a directory, not a file" if path.is_dir() else "does not exist"
        names = ", ".join(preset_names()) or "none"
        raise ConfigError(f"The config file '{path}' {state}. (Presets: {names}.)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read the config file '{path}': {exc}") from exc
    return _create(text, f"the config file '{path}'")


def _apply_override(cfg: Any, text: Any) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if not isinstance(text, str):
        raise ConfigError(f"An override must be a 'key=value' str, got {text!r}.")
    if text.startswith("~"):
        parent, _, leaf = text[1:].rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        if isinstance(node, ListConfig) and leaf.isdigit() and int(leaf) < len(node):
            del node[int(leaf)]
            return cfg
        if not isinstance(node, DictConfig) or leaf not in node:
            raise ConfigError(f"Cannot delete '{text[1:]}' (override {text!r}): no such key.")
        del node[leaf]
        return cfg
    key, sep, value_text = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"Override {text!r} is not of the form key=value (e.g. trainer.steps=50), "
            "or ~key to delete a key."
        )
    try:  # the value is parsed as omegaconf parses a dotlist item
        parsed = OmegaConf.from_dotlist([f"value={value_text}"])
        value = OmegaConf.to_container(parsed, resolve=False)["value"]
    except (OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(f"Cannot parse the override {text!r}: {_first_line(exc)}") from exc
    try:  # list items are addressed by index: stages.1.trainer.steps=50
        OmegaConf.update(cfg, key.strip(), value, merge=True)
    except (OmegaConfBaseException, ValueError, TypeError) as exc:
        raise ConfigError(f"Cannot apply the override {text!r}: {_first_line(exc)}") from exc
    return cfg


def _validate_components(config: RunConfig) -> RunConfig:
    """Look up env / algorithm / engine by name and resolve their params (defaults filled)."""
    env = replace(
        config.env, params=_component_params(ENVS, "env.id", config.env.id, config.env.params)
    )
    sections: dict[str, Any] = {"env": env}
    for name, registry in (("algorithm", ALGORITHMS), ("engine", ENGINES)):
        section = getattr(config, name)
        if section.name is None:
            if section.params:
                known = ", ".join(registry.ids())
                known = f"one of: {known}" if known else f"no {registry.kind}s are registered yet"
                raise ConfigError(
                    f"{name}.params is set but {name}.name is not. Set {name}.name "
                    f"({known}) or remove {name}.params."
                )
            continue
        params = _component_params(registry, f"{name}.name", section.name, section.params)
        sections[name] = replace(section, params=params)
    stages = []
    for stage, section in zip(config.plan(), config.stages, strict=False):
        algorithm = stage.algorithm
        if algorithm.name is not None:
            key = f"stages[{stage.index}].algorithm.name"
            params = _component_params(ALGORITHMS, key, algorithm.name, algorithm.params)
            algorithm = replace(algorithm, params=params)
        stages.append(replace(section, algorithm=to_dict(algorithm)))
    return replace(config, **sections, stages=tuple(stages))


def _component_params(registry: Registry, key: str, name: str, params: Mapping[str, Any]) -> dict:
    try:
        registry.get(name)
    except UnknownNameError as exc:
        raise ConfigError(f"{key}: {exc}") from exc
    validated = registry.make_config(name, params)
    return {} if validated is None else to_dict(validated)


# -- output ------------------------------------------------------------------------------------
def to_dict(config: Any) -> Any:
    """``config`` (a RunConfig, a section or any config dataclass) as plain nested dicts and
    lists: tuples and sets become lists, Enum members their names, paths str, dates and times
    ISO 8601 str."""
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


def to_yaml(config: RunConfig) -> str:
    """The config as YAML that :func:`load_config` reads back to an equal config."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_yaml(OmegaConf.create(to_dict(config)))
    except (OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(f"The config cannot be written as YAML: {_first_line(exc)}") from exc
