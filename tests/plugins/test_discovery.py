"""Discovery of installed plugins through the entry-point group ``rewardgym.plugins``.

The example plugin (``examples/rewardgym-example-plugin``) must be installed in the test
environment; ``make test`` installs it. Broken, misspelt and clashing plugins are fake installed
distributions (a ``*.dist-info`` folder and a module) written into ``tmp_path`` and put on
``PYTHONPATH`` of a fresh interpreter, so discovery runs exactly as it does for real packages.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = REPO / "examples" / "rewardgym-example-plugin"
EXAMPLE_ID = "example/reverse-v0"
EXAMPLE_DIST = "rewardgym-example-plugin"
EXAMPLE_ORIGIN = f"plugin 'example' (distribution {EXAMPLE_DIST} 0.1.0)"
BUILTIN_ID = "rewardgym/arithmetic-v0"
BUILTIN_ORIGIN = "rewardgym (built-in)"
CLI = str(Path(sys.executable).parent / "rewardgym")  # the console script pip installed
REQUIRE_ENV = "REWARDGYM_REQUIRE_EXAMPLE"
INSTALL_HINT = (
    f"The example plugin '{EXAMPLE_DIST}' is not installed in this Python environment "
    f"({sys.prefix}). Install it with: {sys.executable} -m pip install -e {EXAMPLE_DIR}"
)


def _example_is_installed() -> bool:
    try:
        dist = importlib.metadata.distribution(EXAMPLE_DIST)
    except importlib.metadata.PackageNotFoundError:
        return False
    return any(ep.group == "rewardgym.plugins" for ep in dist.entry_points)


@pytest.fixture(scope="module")
def example_installed() -> None:
    """Fail (when ``REWARDGYM_REQUIRE_EXAMPLE=1``) or skip unless the example is installed."""
    if _example_is_installed():
        return
    if os.environ.get(REQUIRE_ENV, "").strip() == "1":
        pytest.fail(INSTALL_HINT, pytrace=False)
    pytest.skip(INSTALL_HINT + f" (set {REQUIRE_ENV}=1 to make this a failure)")


# -- running a fresh interpreter ----------------------------------------------------------------
def _environ(pythonpath: Path | None, extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REWARDGYM_")}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(pythonpath), env.get("PYTHONPATH")) if p
        )
    env.update(extra or {})
    return env


def run(args: list[str], *, pythonpath=None, env=None) -> subprocess.CompletedProcess:
    """Run ``args`` (a command line; ``python`` means this interpreter) in a fresh process
    with a clean REWARDGYM_* environment."""
    if args[0] == "python":
        args = [sys.executable, *args[1:]]
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=_environ(pythonpath, env),
        timeout=120,
        cwd=pythonpath or REPO,
    )


# Prints what a fresh process sees once plugins load, as JSON.
PROBE = textwrap.dedent(
    """
    import json, sys
    import rewardgym
    from rewardgym.plugins.manager import get_plugin_manager

    WATCH = ("rewardgym_example", "broken_rg_plugin", "misspelt_rg_plugin", "raising_rg_plugin")
    def watched():
        return sorted(m for m in sys.modules if m.split(".")[0] in WATCH)

    before = watched()
    envs = {s.id: s.origin for s in rewardgym.ENVS.specs()}
    pm = get_plugin_manager()
    print(json.dumps({
        "before": before,
        "after": watched(),
        "envs": envs,
        "verifiers": {s.id: s.origin for s in rewardgym.VERIFIERS.specs()},
        "plugins": {n: i.distribution for n, i in pm.plugins.items()},
        "failures": [
            {"name": f.name, "distribution": f.distribution, "error": f.error, "text": str(f)}
            for f in pm.failures
        ],
    }))
    """
)


def probe(*, pythonpath=None, env=None) -> dict:
    proc = run(["python", "-c", PROBE], pythonpath=pythonpath, env=env)
    assert proc.returncode == 0, f"probe failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)


# -- fake installed distributions ---------------------------------------------------------------
def fake_distribution(root: Path, dist: str, entry_name: str, module: str, source: str) -> None:
    """Write ``module.py`` and ``<dist>-0.1.dist-info`` (METADATA, entry_points.txt) into root."""
    (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[rewardgym.plugins]\n{entry_name} = {module}\n", encoding="utf-8"
    )


BROKEN_SOURCE = """
    raise ImportError("broken_rg_plugin needs 'a_dependency_that_is_not_installed'")
"""

MISSPELT_SOURCE = """
    from rewardgym import hookimpl

    @hookimpl
    def rewardgym_register_env(register):  # the hook is rewardgym_register_envs
        register("misspelt/never-v0", "misspelt_rg_plugin:Nothing")
"""

RAISING_SOURCE = """
    from rewardgym import hookimpl

    @hookimpl
    def rewardgym_register_envs(register):
        register("raising/partial-v0", "raising_rg_plugin:Nothing")
        raise RuntimeError("raising_rg_plugin fails on purpose")
"""

CLASH_SOURCE = f"""
    from rewardgym import hookimpl

    @hookimpl
    def rewardgym_register_envs(register):
        register("{BUILTIN_ID}", "clash_rg_plugin:Nothing")
"""


@pytest.fixture
def broken_site(tmp_path: Path) -> Path:
    """A folder with three broken plugin distributions, to put on PYTHONPATH."""
    fake_distribution(tmp_path, "broken-rg-plugin", "broken", "broken_rg_plugin", BROKEN_SOURCE)
    fake_distribution(
        tmp_path, "misspelt-rg-plugin", "misspelt", "misspelt_rg_plugin", MISSPELT_SOURCE
    )
    fake_distribution(tmp_path, "raising-rg-plugin", "raising", "raising_rg_plugin", RAISING_SOURCE)
    return tmp_path


# -- the example plugin -------------------------------------------------------------------------
def test_example_is_discovered_with_its_origin(example_installed):
    import rewardgym

    assert EXAMPLE_ID in rewardgym.ENVS.ids() and EXAMPLE_ID in rewardgym.VERIFIERS.ids()
    assert rewardgym.ENVS.get(EXAMPLE_ID).origin == EXAMPLE_ORIGIN
    assert rewardgym.VERIFIERS.get(EXAMPLE_ID).origin == EXAMPLE_ORIGIN
    assert rewardgym.get_plugin_manager().plugins["example"].distribution == EXAMPLE_DIST


def test_example_is_listed_by_the_cli(example_installed):
    proc = run([CLI, "list", "--json"])
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    for kind in ("envs", "verifiers"):
        entry = next(e for e in listing[kind] if e["id"] == EXAMPLE_ID)
        assert entry["origin"] == EXAMPLE_ORIGIN
    assert listing["plugin_errors"] == []


def test_example_env_is_made_by_rewardgym_and_by_gymnasium(example_installed):
    import gymnasium

    import rewardgym

    env = rewardgym.make(EXAMPLE_ID, min_length=4, max_length=4)
    prompt, info = env.reset(seed=3)
    word = info["task"].metadata["word"]
    assert len(word) == 4 and word in prompt
    assert env.step(word[::-1])[1] == 1.0

    rewardgym.load_plugins()  # plugin ids reach Gymnasium's registry when plugins load
    gym_env = gymnasium.make(EXAMPLE_ID, min_length=4, max_length=4)
    assert gym_env.reset(seed=3)[1]["task"] == info["task"]
    assert gym_env.unwrapped.spec.id == EXAMPLE_ID


def test_example_env_passes_check_env(example_installed):
    from rewardgym.testing import check_env

    report = check_env(EXAMPLE_ID)
    assert report.ok, str(report)


# -- broken plugins beside it -------------------------------------------------------------------
def test_broken_plugins_are_reported_and_the_example_still_loads(example_installed, broken_site):
    state = probe(pythonpath=broken_site)
    assert state["envs"][EXAMPLE_ID] == EXAMPLE_ORIGIN
    assert state["envs"][BUILTIN_ID] == BUILTIN_ORIGIN
    failures = {f["name"]: f for f in state["failures"]}
    assert sorted(failures) == ["broken", "misspelt", "raising"]

    broken = failures["broken"]
    assert broken["distribution"] == "broken-rg-plugin"
    assert broken["text"].startswith("plugin 'broken' (distribution broken-rg-plugin): ")
    assert "could not be imported (broken_rg_plugin): ImportError: " in broken["error"]
    assert "a_dependency_that_is_not_installed" in broken["error"]

    misspelt = failures["misspelt"]
    assert misspelt["distribution"] == "misspelt-rg-plugin"
    assert "rewardgym_register_env" in misspelt["error"]
    assert "Known hooks: rewardgym_register_envs" in misspelt["error"]

    raising = failures["raising"]
    assert raising["distribution"] == "raising-rg-plugin"
    assert raising["error"] == "RuntimeError: raising_rg_plugin fails on purpose"

    # nothing of a failed plugin stays registered
    assert "misspelt/never-v0" not in state["envs"] and "raising/partial-v0" not in state["envs"]
    assert sorted(state["plugins"]) == ["example", "rewardgym"]


def test_cli_lists_plugin_errors_and_exits_zero(example_installed, broken_site):
    proc = run([CLI, "list", "--json"], pythonpath=broken_site)
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    assert EXAMPLE_ID in {e["id"] for e in listing["envs"]}
    assert {p["name"]: p["distribution"] for p in listing["plugins"]} == {
        "rewardgym": "rewardgym",
        "example": EXAMPLE_DIST,
    }
    errors = {e["name"]: e for e in listing["plugin_errors"]}
    assert sorted(errors) == ["broken", "misspelt", "raising"]
    for name, error in errors.items():
        assert error["distribution"] == f"{name}-rg-plugin"

    proc = run([CLI, "list"], pythonpath=broken_site)  # the table, with warnings on stderr
    assert proc.returncode == 0, proc.stderr
    assert EXAMPLE_ID in proc.stdout
    for name in ("broken", "misspelt", "raising"):
        assert f"warning: plugin '{name}' (distribution {name}-rg-plugin)" in proc.stderr


def test_duplicate_id_stops_loading_and_names_both_origins(tmp_path):
    fake_distribution(tmp_path, "clash-rg-plugin", "clash", "clash_rg_plugin", CLASH_SOURCE)
    code = textwrap.dedent(
        """
        import rewardgym
        from rewardgym import DuplicateRegistrationError
        for attempt in range(2):  # a fatal load error is raised again on every lookup
            try:
                rewardgym.ENVS.ids()
            except DuplicateRegistrationError as exc:
                print(exc)
            else:
                raise SystemExit("no DuplicateRegistrationError")
        """
    )
    proc = run(["python", "-c", code], pythonpath=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expected = (
        f"The environment id '{BUILTIN_ID}' is registered twice: first by {BUILTIN_ORIGIN}, "
        "then by plugin 'clash' (distribution clash-rg-plugin 0.1)."
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith(expected) for line in lines), proc.stdout


# -- environment variables ----------------------------------------------------------------------
def test_disable_autoload_gives_builtins_only(example_installed, broken_site):
    state = probe(pythonpath=broken_site, env={"REWARDGYM_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert state["plugins"] == {"rewardgym": "rewardgym"}
    assert EXAMPLE_ID not in state["envs"] and BUILTIN_ID in state["envs"]
    assert state["failures"] == [] and state["after"] == []


@pytest.mark.parametrize(
    "allow", ["example", "rewardgym-example-plugin", "Rewardgym_Example_Plugin"]
)
def test_allow_list_loads_only_the_named_plugin(example_installed, broken_site, allow):
    state = probe(pythonpath=broken_site, env={"REWARDGYM_PLUGINS": allow})
    assert sorted(state["plugins"]) == ["example", "rewardgym"]
    assert state["envs"][EXAMPLE_ID] == EXAMPLE_ORIGIN
    assert state["failures"] == []
    assert not any(m.startswith(("broken", "misspelt", "raising")) for m in state["after"])


def test_allow_list_reports_a_name_that_is_not_installed(example_installed, broken_site):
    env = {"REWARDGYM_PLUGINS": "example, nosuch", "REWARDGYM_DISABLE_PLUGIN_AUTOLOAD": "1"}
    state = probe(pythonpath=broken_site, env=env)
    assert sorted(state["plugins"]) == ["example", "rewardgym"]
    assert [f["name"] for f in state["failures"]] == ["nosuch"]
    failure = state["failures"][0]
    assert failure["distribution"] == "not installed"
    assert failure["error"] == (
        "REWARDGYM_PLUGINS names 'nosuch', but no installed distribution has an entry point of "
        "that name in the group 'rewardgym.plugins'."
    )


# -- laziness -----------------------------------------------------------------------------------
def test_plugins_load_lazily_at_the_first_lookup(example_installed, broken_site):
    state = probe(pythonpath=broken_site)
    assert state["before"] == []  # `import rewardgym` imported no plugin module
    assert "rewardgym_example.plugin" in state["after"]
    assert "broken_rg_plugin" not in state["after"]  # its import failed, it was not kept
    assert {"misspelt_rg_plugin", "raising_rg_plugin"} <= set(state["after"])
    # registrations are strings: the env module is imported only when the env is made
    assert "rewardgym_example.reverse" not in state["after"]


def test_plugins_load_once(tmp_path):
    counter = tmp_path / "calls.txt"
    source = f"""
        from rewardgym import hookimpl

        @hookimpl
        def rewardgym_register_envs(register):
            with open({str(counter)!r}, "a") as f:
                f.write("called\\n")
            register("counting/env-v0", "rewardgym.envs.arithmetic:ArithmeticEnv",
                     config="rewardgym.envs.arithmetic:ArithmeticConfig")
    """
    fake_distribution(tmp_path, "counting-rg-plugin", "counting", "counting_rg_plugin", source)
    code = textwrap.dedent(
        """
        import threading
        import rewardgym
        threads = [threading.Thread(target=rewardgym.ENVS.ids) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        rewardgym.make("counting/env-v0")
        rewardgym.load_plugins()
        rewardgym.VERIFIERS.ids()
        print(sorted(rewardgym.get_plugin_manager().plugins))
        """
    )
    proc = run(["python", "-c", code], pythonpath=tmp_path, env={"REWARDGYM_PLUGINS": "counting"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['counting', 'rewardgym']"
    assert counter.read_text().splitlines() == ["called"]
