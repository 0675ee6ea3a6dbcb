"""The built-in reasoning-gym registrations: the cached dataset list, and how they load."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap

import pytest

from rewardgym.plugins import reasoning_gym as plugin

pytestmark = pytest.mark.skipif(
    plugin.installed_version() is None, reason="reasoning-gym is not installed"
)


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv(plugin.CACHE_DIR_ENV, str(tmp_path))
    return tmp_path


def _fail_scan():
    raise AssertionError("the dataset list was rebuilt instead of read from the cache")


def test_the_list_is_built_once_then_read_from_the_cache(cache_home, monkeypatch):
    infos = plugin.dataset_infos()
    path = plugin.cache_path(plugin.installed_version())
    assert path.parent == cache_home / "rewardgym" and path.is_file()
    from reasoning_gym.factory import DATASETS

    assert [i.name for i in infos] == sorted(DATASETS)
    assert infos[0].env_id == f"reasoning_gym/{infos[0].name}-v0"
    monkeypatch.setattr(plugin, "_scan", _fail_scan)
    assert plugin.dataset_infos() == infos


@pytest.mark.parametrize(
    "content",
    ["{not json", '{"datasets": []}', "[]", None],
    ids=["corrupt", "missing-key", "not-a-dict", "other-rewardgym-version"],
)
def test_a_stale_or_broken_cache_is_rebuilt(cache_home, content):
    expected = plugin.dataset_infos()
    path = plugin.cache_path(plugin.installed_version())
    if content is None:
        data = json.loads(path.read_text())
        data["rewardgym"], data["datasets"] = "0.0.0-other", [["only", "stale"]]
        content = json.dumps(data)
    path.write_text(content)
    assert plugin.dataset_infos() == expected
    assert json.loads(path.read_text())["datasets"][0][0] == expected[0].name


def test_an_unwritable_cache_directory_means_no_cache(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(plugin.CACHE_DIR_ENV, str(blocker))  # rewardgym/ cannot go under a file
    assert len(plugin.dataset_infos()) > 100
    assert not (blocker / "rewardgym").exists()


def test_nothing_is_registered_without_reasoning_gym(monkeypatch):
    monkeypatch.setattr(plugin, "installed_version", lambda: None)
    calls = []
    plugin.rewardgym_register_envs(register=lambda *a, **k: calls.append(a))
    plugin.rewardgym_register_verifiers(register=lambda *a, **k: calls.append(a))
    assert calls == [] and plugin.dataset_infos() == []


def test_factories_are_picklable_and_compare_by_dataset():
    factory = plugin.EnvFactory("gcd")
    assert pickle.loads(pickle.dumps(factory)) == factory and hash(factory) == hash(
        plugin.EnvFactory("gcd")
    )
    assert factory != plugin.VerifierFactory("gcd") and repr(factory) == "EnvFactory('gcd')"


def _probe(code: str, cache_home, **env: str) -> dict:
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REWARDGYM_")},
        plugin.CACHE_DIR_ENV: str(cache_home),
        "REWARDGYM_DISABLE_PLUGIN_AUTOLOAD": "1",
        **env,
    }
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


LIST_PROBE = """
    import json, sys
    import rewardgym
    imported_at_import = "rewardgym.plugins.reasoning_gym" in sys.modules
    from rewardgym.plugins.manager import load_plugins
    manager = load_plugins()
    print(json.dumps({
        "at_import": imported_at_import,
        "reasoning_gym_imported": "reasoning_gym" in sys.modules,
        "envs": [s.id for s in rewardgym.ENVS.specs()],
        "origins": sorted({s.origin for s in rewardgym.ENVS.specs()}),
        "plugins": sorted(manager.plugins),
        "failures": [str(f) for f in manager.failures],
    }))
"""


def test_listing_with_a_warm_cache_does_not_import_reasoning_gym(cache_home):
    cold = _probe(LIST_PROBE, cache_home)
    warm = _probe(LIST_PROBE, cache_home)
    assert not cold["at_import"] and not warm["at_import"]
    assert cold["reasoning_gym_imported"] and not warm["reasoning_gym_imported"]
    assert cold["envs"] == warm["envs"] and "reasoning_gym/gcd-v0" in warm["envs"]
    assert "rewardgym (built-in, reasoning-gym)" in warm["origins"]
    assert warm["plugins"] == ["rewardgym"] and warm["failures"] == []


def test_a_broken_reasoning_gym_is_a_recorded_failure_and_the_rest_loads(cache_home):
    probe = LIST_PROBE.replace(
        "    from rewardgym.plugins.manager import load_plugins",
        "    import rewardgym.plugins.reasoning_gym as p\n"
        "    def broken():\n"
        "        raise ImportError('reasoning_gym is broken')\n"
        "    p._scan = broken\n"
        "    from rewardgym.plugins.manager import load_plugins",
    )
    state = _probe(probe, cache_home)
    assert state["failures"] == [
        "plugin 'rewardgym.reasoning_gym' (distribution rewardgym): "
        "ImportError: reasoning_gym is broken"
    ]
    assert "rewardgym/arithmetic-v0" in state["envs"]
    assert not any(i.startswith("reasoning_gym/") for i in state["envs"])
