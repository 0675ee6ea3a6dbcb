"""Validating params against a config dataclass: the checks behind every component's params
and the run config.

:func:`build_dataclass` turns a mapping into an instance of a dataclass. It is strict where
omegaconf's structured configs are lenient: a value is never coerced across types (``"3"`` is
not an int, ``3`` is not a str, ``"yes"`` and ``1`` are not bools); the only conversions are
int to float, list to tuple / set, an Enum member's name to the member, str to Path, an ISO 8601
str to a date / time / datetime, and a mapping to a nested dataclass. Unknown keys fail with a
did-you-mean and the valid names.
"""

from __future__ import annotations

import collections.abc as abc
import dataclasses
import datetime
import enum
import functools
import numbers
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rewardgym.core.errors import ConfigError, RegistrationError, did_you_mean

__all__ = [
    "RUN_CONFIG",
    "ParamContext",
    "build",
    "build_dataclass",
    "convert",
    "field_types",
    "validate_fields",
]

_OMEGACONF_MISSING = "???"  # omegaconf's marker for a mandatory value


@dataclass(frozen=True)
class ParamContext:
    """Who is being validated, for messages: a registered component (``"environment 'x'"``)
    or, when ``component`` is None, the run config itself (messages then name dotted keys)."""

    component: str | None

    def unknown(self, section: str, key: str, valid: Sequence[str]) -> str:
        hint = did_you_mean(key, valid)
        if self.component is None:
            return f"Unknown key '{key}' in {section.rstrip('.') or 'the run config'}.{hint}"
        return f"Unknown param '{section}{key}' for {self.component}.{hint}"

    def key(self, path: str) -> str:
        return path if self.component is None else f"param '{path}' of {self.component}"

    def fail(
        self, path: str, value: Any, expected: str, what: str = "Wrong type", hint: str = ""
    ) -> ConfigError:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        return ConfigError(
            f"{what} for {self.key(path)}: got {shown} ({type(value).__name__}), "
            f"expected {expected}.{hint}"
        )


RUN_CONFIG = ParamContext(None)


def build_dataclass(cls: type, params: Mapping[str, Any], *, component: str) -> Any:
    """Validate ``params`` against the dataclass ``cls`` and return an instance of it.

    Unknown keys raise :class:`ConfigError` with a did-you-mean and the valid params; wrong
    types name the component, the key, the value received and the type expected. Supported
    annotations: bool, int, float (ints accepted), str, Path, Enum (by member or name),
    date / time / datetime (objects or ISO 8601 strings), Literal, Optional / unions, list,
    tuple, set, dict (bare, as in ``x: tuple``, their items are not checked), nested
    dataclasses and Any; other annotations are checked with ``isinstance`` when they are
    classes and not at all otherwise.
    A field without a default, or whose default is omegaconf's ``MISSING`` (``"???"``), is
    required.
    Errors the class raises while being built (``__post_init__`` checks: ConfigError,
    ValueError, TypeError) are re-raised as :class:`ConfigError` naming the component.
    """
    return build(cls, params, ParamContext(component), "")


def validate_fields(config: Any, component: str) -> None:
    """Check every field of the dataclass instance ``config`` against its annotation with
    :func:`convert`, the validator run configs go through: for a component's config built
    directly in Python (its ``__post_init__`` calls this), so that its ``Literal`` choices and
    types are checked as when it is built from a run config. ``component`` names it in messages
    (``"algorithm 'grpo'"``)."""
    ctx = ParamContext(component)
    hints = field_types(type(config), ctx)
    for f in dataclasses.fields(config):
        if f.init:
            convert(getattr(config, f.name), hints[f.name], f.name, ctx)


def build(cls: type, params: Any, ctx: ParamContext, prefix: str) -> Any:
    """:func:`build_dataclass` with an explicit context; ``prefix`` is the dotted path so far."""
    if not isinstance(params, Mapping):
        raise ctx.fail(prefix.rstrip(".") or "params", params, f"a mapping ({cls.__name__})")
    hints = field_types(cls, ctx)
    init_fields = [f for f in dataclasses.fields(cls) if f.init]
    names = [f.name for f in init_fields]
    unknown = [str(k) for k in params if k not in names]
    if unknown:
        noun = "keys" if ctx.component is None else "params"
        message = " ".join(ctx.unknown(prefix, k, names) for k in unknown)
        raise ConfigError(f"{message} Valid {noun}: {', '.join(sorted(names))}.")
    kwargs: dict[str, Any] = {}
    missing: list[str] = []
    for f in init_fields:
        if f.name in params:
            kwargs[f.name] = convert(params[f.name], hints[f.name], prefix + f.name, ctx)
        elif _required(f):
            missing.append(prefix + f.name)
    if missing:
        raise ConfigError(f"Missing required {', '.join(ctx.key(m) for m in missing)}.")
    try:
        return cls(**kwargs)
    except (ConfigError, TypeError, ValueError) as exc:
        if ctx.component is None and isinstance(exc, ConfigError):
            raise  # the run config's own checks already name their keys
        where = f" ({prefix.rstrip('.')})" if prefix else ""
        owner = ctx.component or cls.__name__
        raise ConfigError(f"Invalid params for {owner}{where}: {exc}") from exc


def _required(f: dataclasses.Field) -> bool:
    if isinstance(f.default, str) and f.default == _OMEGACONF_MISSING:
        return True
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def field_types(cls: type, ctx: ParamContext) -> dict[str, Any]:
    """The resolved annotations of a dataclass (string annotations evaluated)."""
    try:
        return _hints(cls)
    except Exception as exc:
        owner = f" (config of {ctx.component})" if ctx.component else ""
        raise RegistrationError(
            f"The field annotations of {cls.__module__}.{cls.__qualname__}{owner} cannot be "
            f"resolved: {type(exc).__name__}: {exc}"
        ) from exc


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return repr(tp).replace("typing.", "")


def convert(value: Any, tp: Any, path: str, ctx: ParamContext) -> Any:
    """``value`` checked against the annotation ``tp``, and normalised (see the module doc)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object or isinstance(tp, typing.TypeVar):
        return value
    if origin is typing.Union or origin is types.UnionType:
        return _convert_union(value, tp, args, path, ctx)
    if origin is typing.Literal:
        if any(type(value) is type(a) and value == a for a in args):
            return value
        hint = did_you_mean(value, [str(a) for a in args]) if isinstance(value, str) else ""
        raise ctx.fail(path, value, _type_name(tp), what="Bad value", hint=hint)
    if origin is not None:
        return _convert_generic(value, tp, origin, args, path, ctx)
    if tp in _BARE_CONTAINERS:  # ``x: tuple`` is ``x: tuple[Any, ...]``: a YAML list fits it
        return _convert_generic(value, tp, tp, (), path, ctx)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if value is None and ctx.component is None:  # an empty YAML section
            value = {}
        return build(tp, value, ctx, path + ".")
    return _convert_scalar(value, tp, path, ctx)


def _convert_union(value: Any, tp: Any, args: tuple, path: str, ctx: ParamContext) -> Any:
    if value is None and type(None) in args:
        return None
    options = [a for a in args if a is not type(None)]
    if len(options) == 1 and not _is_plain_class(options[0]):
        return convert(value, options[0], path, ctx)  # its own error is the precise one
    for option in options:
        try:
            return convert(value, option, path, ctx)
        except ConfigError:
            continue
    raise ctx.fail(path, value, _type_name(tp))


def _is_plain_class(tp: Any) -> bool:
    """A class whose own error message says no more than the union's (not a dataclass, a
    generic, or a date / time, whose errors name the key or the format)."""
    return (
        isinstance(tp, type)
        and not typing.get_args(tp)
        and not dataclasses.is_dataclass(tp)
        and not issubclass(tp, _ISO_TYPES)
    )


_SEQUENCES = (list, tuple, set, frozenset, abc.Sequence, abc.MutableSequence, abc.Set)
_SET_TYPES = {set: set, frozenset: frozenset, abc.Set: frozenset}
_BARE_CONTAINERS = (list, tuple, set, frozenset, dict)
_ISO_TYPES = (datetime.date, datetime.time)  # datetime.datetime is a date
_ISO_EXAMPLES = {
    datetime.datetime: "'2024-05-31T13:45:00'",
    datetime.date: "'2024-05-31'",
    datetime.time: "'13:45:00'",
}


def _convert_generic(
    value: Any, tp: Any, origin: Any, args: tuple, path: str, ctx: ParamContext
) -> Any:
    if origin in (dict, abc.Mapping, abc.MutableMapping):
        if value is None and ctx.component is None:  # an empty YAML section
            value = {}
        if not isinstance(value, Mapping):
            raise ctx.fail(path, value, _type_name(tp))
        kt, vt = args or (Any, Any)
        return {
            convert(k, kt, f"{path} (a key)", ctx): convert(v, vt, f"{path}.{k}", ctx)
            for k, v in value.items()
        }
    if origin in _SEQUENCES:
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise ctx.fail(path, value, _type_name(tp))
        items = list(value)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(items) != len(args):
                raise ctx.fail(path, value, f"{_type_name(tp)} ({len(args)} items)")
            pairs = enumerate(zip(items, args, strict=True))
            return tuple(convert(v, t, f"{path}[{i}]", ctx) for i, (v, t) in pairs)
        item_tp = args[0] if args else Any
        out = [convert(v, item_tp, f"{path}[{i}]", ctx) for i, v in enumerate(items)]
        return tuple(out) if origin is tuple else _SET_TYPES.get(origin, list)(out)
    if isinstance(origin, type) and isinstance(value, origin):
        return value  # another generic class: the container is checked, not its items
    raise ctx.fail(path, value, _type_name(tp))


def _convert_scalar(value: Any, tp: Any, path: str, ctx: ParamContext) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
    elif tp is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
    elif isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        if isinstance(value, str) and value in tp.__members__:
            return tp[value]
        names = ", ".join(repr(n) for n in tp.__members__)
        raise ctx.fail(path, value, f"one of {names}", "Bad value")
    elif isinstance(tp, type) and issubclass(tp, os.PathLike) and isinstance(value, str):
        return tp(value)
    elif isinstance(tp, type) and issubclass(tp, _ISO_TYPES) and isinstance(value, str):
        return _from_iso(value, tp, path, ctx)
    elif not isinstance(tp, type) or isinstance(value, tp):
        return value  # an annotation that is not a class (a Callable, ...) is not checked
    raise ctx.fail(path, value, _type_name(tp))


def _from_iso(value: str, tp: type, path: str, ctx: ParamContext) -> Any:
    """An ISO 8601 string as a date, time or datetime (``tp``)."""
    try:
        return tp.fromisoformat(value)
    except ValueError:
        base = next((t for t in _ISO_EXAMPLES if issubclass(tp, t)), tp)
        example = _ISO_EXAMPLES.get(base, "")
        raise ctx.fail(
            path, value, f"an ISO 8601 {tp.__name__} such as {example}", "Bad value"
        ) from None
