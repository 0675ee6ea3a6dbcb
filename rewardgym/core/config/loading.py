"""Loading a run config: presets, files, mappings, ``base:`` chains and dotlist overrides.

:func:`load_config` builds one :class:`~rewardgym.core.config.schema.RunConfig` from a preset
name, a YAML file or a mapping, applies omegaconf dotlist overrides (``trainer.steps=50``),
resolves interpolations, and hands the result to the schema (types and ranges) and to the
resolver (components and stages). Nothing heavy is imported; omegaconf only when a config is
loaded or printed. :func:`to_yaml` writes a config that loads back to an equal one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from rewardgym.core.config._legacy import translate_legacy
from rewardgym.core.config.resolve import resolve
from rewardgym.core.config.schema import RunConfig, to_dict
from rewardgym.core.errors import ConfigError, UnknownNameError, first_line
from rewardgym.core.params import RUN_CONFIG, build
from rewardgym.core.registry import NAME_RE, PRESETS

__all__ = ["load_config", "preset_names", "to_yaml"]


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
    ``"~env.params"`` to delete a key. Interpolations (``${seed}``) are resolved. The config is
    then built, its components looked up (``validate_components``; off: names and component
    params are taken as they are) and its stages resolved once
    (:mod:`rewardgym.core.config.resolve`). Raises :class:`ConfigError` for every problem
    found in the config.
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
    data = translate_legacy(data, components=validate_components)
    config = build(RunConfig, data, RUN_CONFIG, "")
    return resolve(config, components=validate_components)


def _first_line(exc: BaseException) -> str:
    """An omegaconf or YAML error in one line, with the key or the line it concerns."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:  # a YAML syntax error
        context = f"{exc.context}: " if getattr(exc, "context", None) else ""
        return f"{context}{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    text = first_line(exc)
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


def to_yaml(config: RunConfig) -> str:
    """The config as YAML that :func:`load_config` reads back to an equal config."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_yaml(OmegaConf.create(to_dict(config)))
    except (OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(f"The config cannot be written as YAML: {_first_line(exc)}") from exc
