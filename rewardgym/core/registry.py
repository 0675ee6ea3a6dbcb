"""Registries of environments, verifiers, strategies, algorithms and engines.

Entries are registered with lazy ``"module:attr"`` strings, so discovery imports nothing heavy:
the module is imported the first time the entry is built. Each entry may name a config
dataclass; params given at build time are validated against it (unknown keys and wrong types
fail with a did-you-mean) before the object is created.

Ids:
- environments and verifiers: ``namespace/name-vN`` (``rewardgym/arithmetic-v0``);
- strategies, algorithms, engines and config presets: a lower-case name (``anytime``, ``grpo``,
  ``hf``, ``quickstart``).

The registries are filled by the plugin manager (:mod:`rewardgym.plugins`), which ``rewardgym``
installs as the *plugin loader*: the first lookup in any registry loads the plugins, once.
This module itself never imports a plugin.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, is_dataclass
from typing import Any

from rewardgym.core.errors import (
    ConfigError,
    DuplicateRegistrationError,
    MissingExtraError,
    RegistrationError,
    UnknownNameError,
    did_you_mean,
)
from rewardgym.core.params import build_dataclass

__all__ = [
    "ALGORITHMS",
    "ENGINES",
    "ENVS",
    "PRESETS",
    "STRATEGIES",
    "VERIFIERS",
    "Registry",
    "Spec",
    "ensure_plugins_loaded",
    "load_attr",
    "set_plugin_loader",
]

VERSIONED_ID_RE = re.compile(
    r"^(?P<namespace>[a-z0-9][a-z0-9_.-]*)/(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*?)-v(?P<version>\d+)$"
)
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
ENTRY_POINT_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
# Presets point at a YAML file inside a package: "package.sub:relative/path.yaml".
RESOURCE_RE = re.compile(r"^[A-Za-z_][\w.]*:[\w./-]+\.ya?ml$")


def load_attr(path: str) -> Any:
    """Import ``"package.module:attr.sub"`` and return the attribute."""
    module_name, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Spec:
    """One registry entry. ``origin`` says who registered it (a plugin name, or ``"<direct>"``)."""

    kind: str
    id: str
    entry_point: str | Callable[..., Any]
    config: str | type | None = None
    origin: str = "<direct>"
    description: str = ""

    def load(self) -> Any:
        """The registered object (class or factory), importing its module on first use."""
        return self._resolve(self.entry_point, "entry point")

    def config_class(self) -> type | None:
        """The config dataclass for this entry, or ``None`` when it takes no config."""
        if self.config is None:
            return None
        cls = self._resolve(self.config, "config")
        if not (isinstance(cls, type) and is_dataclass(cls)):
            raise RegistrationError(
                f"The config of {self.kind} '{self.id}' (registered by {self.origin}) must be a "
                f"dataclass, got {cls!r}."
            )
        return cls

    def _resolve(self, target: str | Callable[..., Any] | type, what: str) -> Any:
        if not isinstance(target, str):
            return target
        try:
            return load_attr(target)
        except MissingExtraError:
            raise
        except Exception as exc:
            raise RegistrationError(
                f"Could not load the {what} '{target}' of {self.kind} '{self.id}' "
                f"(registered by {self.origin}): {type(exc).__name__}: {exc}"
            ) from exc


_plugin_loader: Callable[[], None] | None = None
_loader_lock = threading.RLock()
_loading = threading.local()


def set_plugin_loader(loader: Callable[[], None] | None) -> None:
    """Install the function that fills the registries on first lookup (the plugin manager's)."""
    global _plugin_loader
    _plugin_loader = loader


def ensure_plugins_loaded() -> None:
    """Run the plugin loader if one is installed. Re-entrant and thread-safe; the loader itself
    is responsible for running only once."""
    if _plugin_loader is None or getattr(_loading, "active", False):
        return
    with _loader_lock:
        _loading.active = True
        try:
            _plugin_loader()
        finally:
            _loading.active = False


class Registry:
    """A name -> :class:`Spec` table for one kind of component."""

    def __init__(
        self, kind: str, *, versioned: bool, entry_point_re: re.Pattern[str] = ENTRY_POINT_RE
    ) -> None:
        self.kind = kind
        self.versioned = versioned
        self.entry_point_re = entry_point_re
        self._specs: dict[str, Spec] = {}
        self._listeners: list[Callable[[Spec], None]] = []
        self._lock = threading.RLock()

    # -- registering -------------------------------------------------------------------------
    def register(
        self,
        id: str,
        entry_point: str | Callable[..., Any],
        *,
        config: str | type | None = None,
        description: str = "",
        origin: str = "<direct>",
    ) -> Spec:
        """Add an entry. Raises :class:`DuplicateRegistrationError` if ``id`` is taken."""
        self._check_id(id)
        for value, what, pattern in (
            (entry_point, "entry_point", self.entry_point_re),
            (config, "config", ENTRY_POINT_RE),
        ):
            if isinstance(value, str) and not pattern.match(value):
                raise RegistrationError(
                    f"The {what} of {self.kind} '{id}' does not match {pattern.pattern!r} "
                    f"(a 'package.module:attr' string, a class or a callable); got {value!r}."
                )
        if entry_point is None or not (isinstance(entry_point, str) or callable(entry_point)):
            raise RegistrationError(
                f"The entry_point of {self.kind} '{id}' must be a 'module:attr' string or a "
                f"callable, got {entry_point!r}."
            )
        spec = Spec(self.kind, id, entry_point, config, origin, description)
        with self._lock:
            if id in self._specs:
                first = self._specs[id].origin
                raise DuplicateRegistrationError(
                    f"The {self.kind} id '{id}' is registered twice: first by {first}, then by "
                    f"{origin}. Rename one of them, or load only one of the two plugins "
                    "(REWARDGYM_PLUGINS=name,...)."
                )
            self._specs[id] = spec
            listeners = list(self._listeners)
        for listener in listeners:
            listener(spec)
        return spec

    def unregister(self, id: str) -> Spec:
        """Remove one entry and return it."""
        with self._lock:
            if id not in self._specs:
                raise UnknownNameError(f"No {self.kind} named '{id}' is registered.")
            return self._specs.pop(id)

    def remove_origin(self, origin: str) -> list[Spec]:
        """Remove every entry registered by ``origin``; returns the removed specs."""
        with self._lock:
            gone = [s for s in self._specs.values() if s.origin == origin]
            for spec in gone:
                del self._specs[spec.id]
        return gone

    def add_listener(self, listener: Callable[[Spec], None]) -> None:
        """Call ``listener(spec)`` for every entry, now and on each later registration."""
        with self._lock:
            self._listeners.append(listener)
            current = list(self._specs.values())
        for spec in current:
            listener(spec)

    def _check_id(self, id: str) -> None:
        if not isinstance(id, str):
            raise RegistrationError(f"A {self.kind} id must be a str, got {type(id).__name__}.")
        if self.versioned and not VERSIONED_ID_RE.match(id):
            raise RegistrationError(
                f"Malformed {self.kind} id '{id}': expected 'namespace/name-vN' "
                "(lower-case namespace, a name, a version number), e.g. 'acme/countdown-v0'."
            )
        if not self.versioned and not NAME_RE.match(id):
            raise RegistrationError(
                f"Malformed {self.kind} name '{id}': expected lower-case letters, digits and "
                "underscores, starting with a letter, e.g. 'dr_grpo'."
            )

    # -- looking up --------------------------------------------------------------------------
    def get(self, id: str) -> Spec:
        """The spec for ``id``; an :class:`UnknownNameError` with a did-you-mean otherwise."""
        ensure_plugins_loaded()
        with self._lock:
            spec = self._specs.get(id)
            known = list(self._specs)
        if spec is not None:
            return spec
        raise UnknownNameError(self._unknown_message(id, known))

    def _unknown_message(self, id: str, known: list[str]) -> str:
        msg = f"No {self.kind} named '{id}' is registered."
        hint = did_you_mean(id, known)
        if not hint and self.versioned and isinstance(id, str):
            base = id.rsplit("-v", 1)[0]
            versions = sorted(k for k in known if k.rsplit("-v", 1)[0] == base)
            if versions:
                hint = " Registered versions: " + ", ".join(versions) + "."
        if hint:
            return msg + hint
        if not known:
            return msg + f" No {self.kind}s are registered at all."
        return msg + " Run 'rewardgym list' to see what is available."

    def __contains__(self, id: object) -> bool:
        ensure_plugins_loaded()
        with self._lock:
            return id in self._specs

    def ids(self) -> list[str]:
        """All registered ids, sorted."""
        ensure_plugins_loaded()
        with self._lock:
            return sorted(self._specs)

    def specs(self) -> list[Spec]:
        """All specs, sorted by id."""
        ensure_plugins_loaded()
        with self._lock:
            return [self._specs[k] for k in sorted(self._specs)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids())

    def __len__(self) -> int:
        return len(self.ids())

    # -- building ----------------------------------------------------------------------------
    def make_config(self, id: str, params: Mapping[str, Any] | None = None) -> Any:
        """Validate ``params`` against the entry's config dataclass and return an instance.

        Raises :class:`~rewardgym.core.errors.ConfigError` naming the component on unknown keys
        (with a did-you-mean) and wrong types. Entries without a config class accept no params.
        """
        spec = self.get(id)
        cls = spec.config_class()
        params = dict(params or {})
        component = f"{self.kind} '{id}'"
        if cls is None:
            if params:
                raise ConfigError(
                    f"{component} takes no params, got {sorted(params)}. Remove them."
                )
            return None
        return build_dataclass(cls, params, component=component)

    def build(self, id: str, params: Mapping[str, Any] | None = None) -> Any:
        """Create the registered object: ``factory(config)`` with the validated config, or
        ``factory()`` for entries without a config class."""
        spec = self.get(id)
        config = self.make_config(id, params)
        factory = spec.load()
        return factory() if config is None else factory(config)


ENVS = Registry("environment", versioned=True)
VERIFIERS = Registry("verifier", versioned=True)
STRATEGIES = Registry("strategy", versioned=False)
ALGORITHMS = Registry("algorithm", versioned=False)
ENGINES = Registry("engine", versioned=False)
PRESETS = Registry("config preset", versioned=False, entry_point_re=RESOURCE_RE)

REGISTRIES: Mapping[str, Registry] = {
    "envs": ENVS,
    "verifiers": VERIFIERS,
    "strategies": STRATEGIES,
    "algorithms": ALGORITHMS,
    "engines": ENGINES,
    "presets": PRESETS,
}
