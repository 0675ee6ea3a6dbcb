"""Built-in registrations of the reasoning-gym datasets, as ``reasoning_gym/<dataset>-v0``
environments and verifiers. Registers nothing when reasoning-gym is not installed.

Listing the datasets means importing ``reasoning_gym`` (about 1.5 s), so the list (names and
descriptions) is cached in a JSON file per installed reasoning-gym version, under
``$XDG_CACHE_HOME/rewardgym`` (default ``~/.cache/rewardgym``), and built on first use. Where
that directory cannot be written, the list is rebuilt in each process. Nothing here imports an
environment: entry points are small picklable factories that import
:mod:`rewardgym.envs.reasoning_gym` when called, and config classes are ``"module:attr"`` strings.

:data:`EXCLUDED` names the datasets that are not registered, and why.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as importlib_metadata
import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardgym.core.errors import require
from rewardgym.plugins.hookspecs import Register, hookimpl

__all__ = [
    "CACHE_DIR_ENV",
    "EXCLUDED",
    "DatasetInfo",
    "EnvFactory",
    "VerifierFactory",
    "cache_path",
    "dataset_infos",
    "installed_version",
]

NAMESPACE = "reasoning_gym"
CONFIGS = "rewardgym.envs._reasoning_gym_config:CONFIGS"
CACHE_DIR_ENV = "XDG_CACHE_HOME"
CACHE_FORMAT = 1

# Datasets that cannot be built from their default config, which every registered environment
# must be (``rewardgym check --all`` builds each one with default params).
EXCLUDED: dict[str, str] = {
    "composite": "mixes other datasets and has no default list of them; build it directly: "
    "ReasoningGymEnv('composite', {'datasets': [...]})",
}


@dataclass(frozen=True)
class DatasetInfo:
    """One reasoning-gym dataset as registered: its name and a one-line description."""

    name: str
    description: str

    @property
    def env_id(self) -> str:
        return f"{NAMESPACE}/{self.name}-v0"


class EnvFactory:
    """The entry point of ``reasoning_gym/<dataset>-v0``: ``EnvFactory(dataset)(config)``
    returns ``ReasoningGymEnv(dataset, config)``. Picklable."""

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset

    def __call__(self, config: Any = None) -> Any:
        from rewardgym.envs.reasoning_gym import ReasoningGymEnv

        return ReasoningGymEnv(self.dataset, config)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.dataset == self.dataset  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.dataset))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dataset!r})"


class VerifierFactory(EnvFactory):
    """The entry point of the verifier ``reasoning_gym/<dataset>-v0``. Picklable."""

    def __call__(self, config: Any = None) -> Any:
        from rewardgym.envs.reasoning_gym import ReasoningGymVerifier

        return ReasoningGymVerifier(self.dataset, config)


def installed_version() -> str | None:
    """The installed reasoning-gym version, or ``None`` when it is not installed."""
    if importlib.util.find_spec("reasoning_gym") is None:
        return None
    for dist in ("reasoning-gym", "reasoning_gym"):
        with contextlib.suppress(importlib_metadata.PackageNotFoundError):
            return importlib_metadata.version(dist)
    return "unknown"


def cache_path(version: str) -> Path:
    """Where the dataset list of reasoning-gym ``version`` is cached."""
    root = os.environ.get(CACHE_DIR_ENV, "").strip() or os.path.join("~", ".cache")
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in version)
    return Path(root).expanduser() / "rewardgym" / f"reasoning_gym-{safe}.json"


def _key(version: str) -> dict[str, Any]:
    """What a cache file must match to be used: the format, both versions, and where
    reasoning-gym is installed (two environments may share one cache directory)."""
    from rewardgym._version import __version__

    spec = importlib.util.find_spec("reasoning_gym")
    location = spec.origin if spec is not None else None
    return {
        "format": CACHE_FORMAT,
        "rewardgym": __version__,
        "reasoning_gym": version,
        "location": location,
    }


def _read(path: Path, key: dict[str, Any]) -> list[DatasetInfo] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or {k: data.get(k) for k in key} != key:
            return None
        return [DatasetInfo(str(name), str(text)) for name, text in data["datasets"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # absent, unreadable or malformed: rebuilt and rewritten


def _write(path: Path, key: dict[str, Any], infos: list[DatasetInfo]) -> None:
    """Write atomically; a directory that cannot be written means no cache, not an error."""
    data = {**key, "datasets": [[i.name, i.description] for i in infos]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        pass


def _scan() -> list[DatasetInfo]:
    """Every registered reasoning-gym dataset (imports reasoning_gym)."""
    factory = require(
        "reasoning_gym.factory", "reasoning-gym", "Listing the reasoning-gym datasets"
    )
    infos = []
    for name, (dataset_cls, _) in sorted(factory.DATASETS.items()):
        parts = dataset_cls.__module__.split(".")  # reasoning_gym.<category>.<module>
        category = f" ({parts[1]})" if len(parts) > 2 else ""
        infos.append(DatasetInfo(name, f"reasoning-gym dataset '{name}'{category}."))
    return infos


def dataset_infos() -> list[DatasetInfo]:
    """The installed reasoning-gym's datasets, from the cache when it is current; ``[]`` when
    reasoning-gym is not installed. Includes the :data:`EXCLUDED` ones."""
    version = installed_version()
    if version is None:
        return []
    path, key = cache_path(version), _key(version)
    infos = _read(path, key)
    if infos is None:
        infos = _scan()
        _write(path, key, infos)
    return infos


def _registered() -> list[DatasetInfo]:
    return [i for i in dataset_infos() if i.name not in EXCLUDED]


@hookimpl
def rewardgym_register_envs(register: Register) -> None:
    for info in _registered():
        register(
            info.env_id,
            EnvFactory(info.name),
            config=f"{CONFIGS}.{info.name}",
            description=info.description,
        )


@hookimpl
def rewardgym_register_verifiers(register: Register) -> None:
    for info in _registered():
        register(
            info.env_id,
            VerifierFactory(info.name),
            config=f"{CONFIGS}.{info.name}",
            description=f"{info.description[:-1]}, scored by its score_answer.",
        )
