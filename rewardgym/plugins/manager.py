"""Loads plugins and fills the registries.

Plugins are discovered through the entry-point group ``rewardgym.plugins`` the first time any
registry is looked up (lazily, once, thread-safe). Built-ins are registered first, through the
same hooks: rewardgym's own envs, then, when reasoning-gym is installed, its datasets. The
reasoning-gym adapter is part of rewardgym's built-ins: it is not listed on its own in
:attr:`PluginManager.plugins`, its entries' origin is ``rewardgym (built-in, reasoning-gym)``,
and if it fails (a broken reasoning-gym installation) the failure is recorded like a plugin's and
the rest loads. Two environment variables steer discovery of the other plugins:

- ``REWARDGYM_DISABLE_PLUGIN_AUTOLOAD=1``: load no entry-point plugins (built-ins only);
- ``REWARDGYM_PLUGINS=name1,name2``: load only these entry points (by entry-point name or
  distribution name); this also works when autoloading is disabled.

A plugin that fails to import, implements an unknown hook, or raises in a registration hook is
recorded in :attr:`PluginManager.failures` with its name and distribution and skipped (its
registrations are rolled back); the others load. Registering one id twice is an error that names
both origins and stops loading: a name clash must be resolved, not guessed.
"""

from __future__ import annotations

import importlib.metadata as importlib_metadata
import os
import re
import threading
import traceback
from dataclasses import dataclass
from typing import Any

import pluggy

from rewardgym.core import gym_bridge
from rewardgym.core.errors import DuplicateRegistrationError, PluginError, did_you_mean
from rewardgym.core.registry import REGISTRIES, Registry
from rewardgym.plugins import hookspecs

__all__ = [
    "ALLOW_ENV",
    "DISABLE_AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "PluginFailure",
    "PluginInfo",
    "PluginManager",
    "get_plugin_manager",
    "load_plugins",
]

ENTRY_POINT_GROUP = "rewardgym.plugins"
DISABLE_AUTOLOAD_ENV = "REWARDGYM_DISABLE_PLUGIN_AUTOLOAD"
ALLOW_ENV = "REWARDGYM_PLUGINS"
BUILTIN_NAME = "rewardgym"
REASONING_GYM_NAME = "rewardgym.reasoning_gym"  # the built-in reasoning-gym adapter

# Which registry each registration hook fills.
HOOK_REGISTRIES: dict[str, str] = {
    "rewardgym_register_envs": "envs",
    "rewardgym_register_verifiers": "verifiers",
    "rewardgym_register_strategies": "strategies",
    "rewardgym_register_algorithms": "algorithms",
    "rewardgym_register_engines": "engines",
    "rewardgym_register_presets": "presets",
}


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its name, and the distribution (and version) it came from."""

    name: str
    distribution: str
    version: str

    @property
    def origin(self) -> str:
        if self.name == BUILTIN_NAME:
            return "rewardgym (built-in)"
        if self.name == REASONING_GYM_NAME:
            return "rewardgym (built-in, reasoning-gym)"
        if self.distribution == "<direct>":
            return f"plugin '{self.name}' (registered directly)"
        return f"plugin '{self.name}' (distribution {self.distribution} {self.version})"


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded, and why."""

    name: str
    distribution: str
    error: str
    traceback: str = ""

    def __str__(self) -> str:
        return f"plugin '{self.name}' (distribution {self.distribution}): {self.error}"


def _canonical(distribution: str) -> str:
    """A distribution name as pip compares them: ``Acme_RG.Plugin`` -> ``acme-rg-plugin``."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


class PluginManager:
    """Wraps a :class:`pluggy.PluginManager` and fills rewardgym's registries from its hooks."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._lock = threading.RLock()
        self._loaded = False
        self._fatal: BaseException | None = None
        self.plugins: dict[str, PluginInfo] = {}
        self.failures: list[PluginFailure] = []

    @property
    def hook(self) -> Any:
        """pluggy's hook relay, for calling non-registration hooks."""
        return self._pm.hook

    @property
    def loaded(self) -> bool:
        return self._loaded

    # -- loading -----------------------------------------------------------------------------
    def load(self) -> None:
        """Register built-ins and entry-point plugins, once. Re-raises a fatal load error."""
        with self._lock:
            if self._fatal is not None:
                raise self._fatal
            if self._loaded:
                return
            self._loaded = True
            try:
                from rewardgym.plugins import builtin
                from rewardgym.plugins import reasoning_gym as reasoning_gym_plugin

                version = _version("rewardgym")
                self._add(builtin, PluginInfo(BUILTIN_NAME, "rewardgym", version))
                if reasoning_gym_plugin.installed_version() is not None:
                    info = PluginInfo(REASONING_GYM_NAME, "rewardgym", version)
                    self._add_or_fail(reasoning_gym_plugin, info, listed=False)
                for ep, info in self._entry_points():
                    self._load_entry_point(ep, info)
            except DuplicateRegistrationError as exc:
                self._fatal = exc
                raise

    def _entry_points(self) -> list[tuple[Any, PluginInfo]]:
        allow = [n.strip() for n in os.environ.get(ALLOW_ENV, "").split(",") if n.strip()]
        if _env_flag(DISABLE_AUTOLOAD_ENV) and not allow:
            return []
        wanted = {_canonical(a) for a in allow}  # distribution names, compared as pip does
        seen: set[tuple[str, str]] = set()
        found: list[tuple[Any, PluginInfo]] = []
        for ep in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
            if (ep.name, ep.value) in seen:
                continue  # the same distribution reached twice through sys.path
            seen.add((ep.name, ep.value))
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                ep.name,
                dist.name if dist is not None else "unknown",
                dist.version if dist is not None else "unknown",
            )
            if allow and ep.name not in allow and _canonical(info.distribution) not in wanted:
                continue
            found.append((ep, info))
        if allow:
            names = {i.name for _, i in found}
            dists = {_canonical(i.distribution) for _, i in found}
            for missing in [a for a in allow if a not in names and _canonical(a) not in dists]:
                self.failures.append(
                    PluginFailure(
                        missing,
                        "not installed",
                        f"{ALLOW_ENV} names '{missing}', but no installed distribution has an "
                        f"entry point of that name in the group '{ENTRY_POINT_GROUP}'.",
                    )
                )
        return found

    def _load_entry_point(self, ep: Any, info: PluginInfo) -> None:
        try:
            plugin = ep.load()
        except Exception as exc:
            self._fail(info, f"could not be imported ({ep.value}): {type(exc).__name__}: {exc}")
            return
        self._add_or_fail(plugin, info)

    def _add_or_fail(self, plugin: Any, info: PluginInfo, *, listed: bool = True) -> None:
        """Add a plugin; an error other than a duplicate id is recorded as its failure."""
        try:
            self._add(plugin, info, listed=listed)
        except DuplicateRegistrationError:
            raise
        except Exception as exc:
            self._fail(info, f"{type(exc).__name__}: {exc}")

    def _fail(self, info: PluginInfo, error: str) -> None:
        self.failures.append(
            PluginFailure(info.name, info.distribution, error, traceback.format_exc())
        )

    # -- registering one plugin --------------------------------------------------------------
    def _add(self, plugin: Any, info: PluginInfo, *, listed: bool = True) -> None:
        """Register ``plugin`` and run its registration hooks; ``listed=False`` keeps it out of
        :attr:`plugins` (a part of the built-ins, which cannot be unregistered)."""
        if self._pm.has_plugin(info.name) or info.name in self.plugins:
            raise PluginError(f"A plugin named '{info.name}' is already registered.")
        try:
            self._pm.register(plugin, name=info.name)
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            if self._pm.has_plugin(info.name):
                self._pm.unregister(name=info.name)
            unknown = [
                n
                for n in dir(plugin)
                if n.startswith("rewardgym_") and n not in hookspecs.HOOK_NAMES
            ]
            hint = did_you_mean(unknown[0], hookspecs.HOOK_NAMES) if unknown else ""
            raise PluginError(
                f"{info.origin} does not match rewardgym's hook specs: {exc}.{hint} Known hooks: "
                + ", ".join(hookspecs.HOOK_NAMES)
            ) from exc
        try:
            self._run_registrations(info)
        except BaseException:
            self._rollback(info)
            raise
        if listed:
            self.plugins[info.name] = info

    def _run_registrations(self, info: PluginInfo) -> None:
        for hook_name, registry_key in HOOK_REGISTRIES.items():
            registry = REGISTRIES[registry_key]
            caller = getattr(self._pm.hook, hook_name)
            for impl in caller.get_hookimpls():
                if impl.plugin_name != info.name:
                    continue
                register = _bound_register(registry, info.origin)
                impl.function(**{arg: register for arg in impl.argnames})

    def _rollback(self, info: PluginInfo) -> None:
        """Forget a plugin and remove everything it registered."""
        self.plugins.pop(info.name, None)
        if self._pm.has_plugin(info.name):
            self._pm.unregister(name=info.name)
        for key, registry in REGISTRIES.items():
            removed = registry.remove_origin(info.origin)
            if key == "envs":  # also forget the ids mirrored into Gymnasium's registry
                for spec in removed:
                    gym_bridge.unmirror_id(spec.id)

    # -- public API for tests and embedding --------------------------------------------------
    def register(self, plugin: Any, name: str) -> PluginInfo:
        """Register a plugin object now (after loading the installed ones) and run its
        registration hooks. Errors raise. Undo with :meth:`unregister`."""
        self.load()
        info = PluginInfo(name, "<direct>", "")
        with self._lock:
            self._add(plugin, info)
        return info

    def unregister(self, name: str) -> None:
        """Remove a plugin and everything it registered."""
        with self._lock:
            info = self.plugins.get(name)
            if info is None:
                raise PluginError(f"No plugin named '{name}' is registered.")
            self._rollback(info)


def _bound_register(registry: Registry, origin: str):
    def register(id: str, entry_point: Any, *, config: Any = None, description: str = ""):
        return registry.register(
            id, entry_point, config=config, description=description, origin=origin
        )

    return register


def _version(dist: str) -> str:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


_manager: PluginManager | None = None
_manager_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager (created on first call; loads nothing by itself)."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = PluginManager()
        return _manager


def load_plugins() -> PluginManager:
    """Load built-ins and installed plugins (once) and return the manager."""
    manager = get_plugin_manager()
    manager.load()
    return manager
