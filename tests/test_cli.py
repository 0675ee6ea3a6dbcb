"""The ``rewardgym`` command, in-process through ``main(argv)`` and as a real subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

import rewardgym
from rewardgym.cli import main
from rewardgym.core.config import load_config
from rewardgym.plugins.manager import PluginFailure, get_plugin_manager

ENV_ID = "rewardgym/arithmetic-v0"
LIST_KEYS = {
    "envs",
    "verifiers",
    "strategies",
    "algorithms",
    "engines",
    "presets",
    "plugins",
    "plugin_errors",
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def console_script() -> str:
    script = Path(sys.executable).with_name("rewardgym")
    assert script.exists(), f"the console script is not installed next to {sys.executable}"
    return str(script)


@pytest.fixture
def broken_plugin(monkeypatch):
    """A plugin that failed to load, as the manager records it."""
    failure = PluginFailure("broken", "broken-dist", "could not be imported (broken:plugin): boom")
    manager = get_plugin_manager()
    manager.load()
    monkeypatch.setattr(manager, "failures", [*manager.failures, failure])
    return failure


# -- top level ---------------------------------------------------------------------------------
def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"rewardgym {rewardgym.__version__}"


def test_no_command_is_a_usage_error(capsys):
    code, _, err = run(capsys)
    assert code == 2 and "the following arguments are required: COMMAND" in err


def test_unexpected_errors_keep_their_traceback(monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("rewardgym.core.config.load_config", explode)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["config", "arithmetic"])


# -- list --------------------------------------------------------------------------------------
def test_list_prints_a_table_per_section(capsys):
    code, out, err = run(capsys, "list")
    assert code == 0 and err == ""
    for heading in (
        "Environments",
        "Verifiers",
        "Algorithms",
        "Engines",
        "Config presets",
        "Plugins",
    ):
        assert re.search(rf"^{heading} \(\d+\)$", out, re.MULTILINE), heading
    assert re.search(
        rf"^  {re.escape(ENV_ID)}\s+rewardgym \(built-in\)\s+Procedural", out, re.MULTILINE
    )
    assert re.search(r"^  arithmetic\s+rewardgym \(built-in\)\s+Arithmetic env", out, re.MULTILINE)
    assert re.search(r"^  rewardgym\s+rewardgym\s+\d", out, re.MULTILINE)


def test_list_json(capsys):
    code, out, _ = run(capsys, "list", "--json")
    data = json.loads(out)
    assert code == 0 and set(data) == LIST_KEYS
    env = next(e for e in data["envs"] if e["id"] == ENV_ID)
    assert env["origin"] == "rewardgym (built-in)" and env["description"]
    assert {
        "name": "rewardgym",
        "distribution": "rewardgym",
        "version": rewardgym.__version__,
    } in data["plugins"]
    assert "arithmetic" in [p["id"] for p in data["presets"]]
    strategies = {s["id"]: s for s in data["strategies"]}
    assert {"standard", "anytime", "episodic"} <= set(strategies)
    assert strategies["anytime"]["origin"] == "rewardgym (built-in)"
    if "best_of_n" in strategies:  # the example plugin's (tests/plugins check it is installed)
        assert "rewardgym-example-plugin" in strategies["best_of_n"]["origin"]


def test_list_reports_plugin_failures_and_still_succeeds(capsys, broken_plugin):
    code, out, err = run(capsys, "list")
    assert code == 0 and "broken" not in out
    assert (
        "rewardgym: warning: plugin 'broken' (distribution broken-dist) failed to load and was "
        "skipped: could not be imported (broken:plugin): boom"
    ) in err
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0 and json.loads(out)["plugin_errors"][-1] == {
        "name": "broken",
        "distribution": "broken-dist",
        "error": "could not be imported (broken:plugin): boom",
    }


# -- check (with a stand-in checker; the real one runs in the subprocess test below) -----------
@dataclass(frozen=True)
class FakeResult:
    name: str
    passed: bool
    message: str = ""

    def __str__(self) -> str:
        return f"{'ok' if self.passed else 'FAIL'} {self.name}: {self.message}"


@dataclass(frozen=True)
class FakeReport:
    target: str
    results: tuple[FakeResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[FakeResult, ...]:
        return tuple(r for r in self.results if not r.passed)


@pytest.fixture
def checker(monkeypatch):
    """Replace rewardgym.testing.check_env; ``checker.outcome[id]`` picks a result per env."""
    calls: list[tuple[str, dict]] = []
    outcome: dict[str, object] = {}

    def check_env(env_id, **kwargs):
        calls.append((env_id, kwargs))
        result = outcome.get(env_id, True)
        if isinstance(result, Exception):
            raise result
        return FakeReport(
            env_id, (FakeResult("spaces", True, "fine"), FakeResult("reset", result, "bad"))
        )

    module = types.ModuleType("rewardgym.testing")
    module.check_env = check_env  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rewardgym.testing", module)
    return types.SimpleNamespace(calls=calls, outcome=outcome)


def test_check_one_env(capsys, checker):
    code, out, _ = run(capsys, "check", ENV_ID, "--episodes", "3", "--seed", "7")
    assert code == 0
    assert out.splitlines() == [
        f"checking {ENV_ID} ... ok (2/2 checks passed)",
        "1 environment checked: 1 passed, 0 failed.",
    ]
    assert checker.calls == [(ENV_ID, {"raise_on_failure": False, "seed": 7, "episodes": 3})]


def test_check_defaults_and_duplicate_ids(capsys, checker):
    assert run(capsys, "check", ENV_ID, ENV_ID)[0] == 0
    assert checker.calls == [(ENV_ID, {"raise_on_failure": False, "seed": 0, "episodes": 5})]


def test_check_failure_exits_1_and_prints_the_failed_checks(capsys, checker):
    checker.outcome[ENV_ID] = False
    code, out, _ = run(capsys, "check", ENV_ID)
    assert code == 1
    assert out.splitlines() == [
        f"checking {ENV_ID} ... FAILED (1/2 checks passed)",
        "    FAIL reset: bad",
        "1 environment checked: 0 passed, 1 failed.",
    ]


def test_an_env_that_cannot_be_built_is_a_failure(capsys, checker):
    checker.outcome[ENV_ID] = RuntimeError("constructor crashed")
    code, out, err = run(capsys, "check", ENV_ID)
    assert code == 1
    assert f"checking {ENV_ID} ... ERROR\n    RuntimeError: constructor crashed\n" in out
    assert "Traceback" in err  # not a rewardgym error: its traceback helps


def test_check_all(capsys, checker):
    code, out, _ = run(capsys, "check", "--all")
    ids = rewardgym.ENVS.ids()
    assert code == 0 and [c[0] for c in checker.calls] == ids
    assert f"{len(ids)} environment" in out.splitlines()[-1]


def test_check_all_fails_when_a_plugin_failed_to_load(capsys, checker, broken_plugin):
    code, _, err = run(capsys, "check", "--all")
    assert code == 1
    assert (
        "plugin 'broken' (distribution broken-dist) failed to load; its environments were not checked"
        in err
    )


def test_check_json(capsys, checker):
    checker.outcome[ENV_ID] = False
    code, out, err = run(capsys, "check", ENV_ID, "--json")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False and set(data) == {"ok", "envs", "plugin_errors"}
    assert data["envs"] == [
        {
            "id": ENV_ID,
            "ok": False,
            "error": None,
            "checks": [
                {"name": "spaces", "passed": True, "message": "fine"},
                {"name": "reset", "passed": False, "message": "bad"},
            ],
        }
    ]
    assert f"checking {ENV_ID} ... FAILED" in err  # progress goes to stderr with --json


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check"], "give one or more environment ids, or --all (not both)"),
        (["check", ENV_ID, "--all"], "give one or more environment ids, or --all (not both)"),
        (["check", ENV_ID, "--episodes", "0"], "argument --episodes: must be >= 1, got 0"),
        (["check", ENV_ID, "--seed", "x"], "argument --seed: expected an integer, got 'x'"),
    ],
)
def test_check_usage_errors_exit_2(capsys, checker, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and not checker.calls


def test_check_unknown_id_exits_2_before_checking_anything(capsys, checker):
    code, out, err = run(capsys, "check", ENV_ID, "rewardgym/arithmatic-v0")
    assert code == 2 and out == "" and not checker.calls
    assert err == (
        "rewardgym: error: No environment named 'rewardgym/arithmatic-v0' is registered. "
        "Did you mean 'rewardgym/arithmetic-v0'?\n"
    )


# -- config ------------------------------------------------------------------------------------
def test_config_prints_the_resolved_yaml(capsys, tmp_path):
    code, out, _ = run(
        capsys, "config", "arithmetic", "trainer.steps=50", "env.params.difficulty=3"
    )
    assert code == 0 and out.startswith(
        "env:\n  id: rewardgym/arithmetic-v0\n  params:\n    difficulty: 3\n"
    )
    path = tmp_path / "run.yaml"
    path.write_text(out)
    assert load_config(path) == load_config(
        "arithmetic", ["trainer.steps=50", "env.params.difficulty=3"]
    )


def test_config_without_a_source_starts_from_the_defaults(capsys):
    code, out, _ = run(capsys, "config", "seed=3", "~env.params")
    assert code == 0 and "\nseed: 3\n" in out
    code, out, _ = run(capsys, "config")
    assert code == 0 and "output_dir: runs/default" in out


def test_config_no_validate(capsys):
    code, out, _ = run(capsys, "config", "--no-validate", "env.id=acme/elsewhere-v0")
    assert code == 0 and "id: acme/elsewhere-v0\n  params: {}\n" in out


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.stpes=3", "Unknown key 'stpes' in trainer. Did you mean 'steps'?"),
        ("trainer.steps=abc", "Wrong type for trainer.steps: got 'abc' (str), expected int."),
        ("env.id=rewardgym/arithmatic-v0", "Did you mean 'rewardgym/arithmetic-v0'?"),
        (
            "env.params.difficulty_=2",
            "Unknown param 'difficulty_' for environment "
            "'rewardgym/arithmetic-v0'. Did you mean 'difficulty'?",
        ),
    ],
)
def test_bad_config_is_one_line_on_stderr_and_exit_2(capsys, override, message):
    code, out, err = run(capsys, "config", "arithmetic", override)
    assert code == 2 and out == ""
    assert err.startswith("rewardgym: error: ") and message in err and err.count("\n") == 1


def test_unknown_preset(capsys):
    code, _, err = run(capsys, "config", "arithmatic")
    assert (
        code == 2
        and "No config preset named 'arithmatic' is registered. Did you mean 'arithmetic'?" in err
    )


# -- the real entry points ---------------------------------------------------------------------
def test_python_dash_m_rewardgym():
    result = subprocess.run(
        [sys.executable, "-m", "rewardgym", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout.strip() == f"rewardgym {rewardgym.__version__}"


def test_console_script_config_error_has_no_traceback():
    result = subprocess.run(
        [console_script(), "config", "arithmetic", "trainer.stpes=3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.startswith("rewardgym: error: Unknown key 'stpes' in trainer.")


def test_console_script_list_and_check_all():
    """The project's main job: list everything, then check every registered env for real."""
    listed = subprocess.run(
        [console_script(), "list", "--json"], capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    # reasoning_gym/* envs are checked one by one in tests/envs/test_reasoning_gym.py.
    ids = [e["id"] for e in json.loads(listed.stdout)["envs"]]
    ids = [i for i in ids if not i.startswith("reasoning_gym/")]
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "rewardgym.cli",
            "check",
            "--all",
            "--episodes",
            "2",
            "--exclude",
            "reasoning_gym/*",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    assert [line.split()[1] for line in lines[:-1]] == ids
    assert all(line.endswith("checks passed)") and " ... ok " in line for line in lines[:-1])
    assert (
        lines[-1]
        == f"{len(ids)} environment{'s' if len(ids) != 1 else ''} checked: {len(ids)} passed, 0 failed."
    )


# -- the commands in the docs ------------------------------------------------------------------
DOCS = Path(__file__).resolve().parents[1] / "docs"


def documented_sessions(*names: str) -> list:
    """Each ```console block of the docs as (id, [(command, expected output), ...])."""
    sessions = []
    for name in names:
        text = (DOCS / name).read_text(encoding="utf-8")
        for block in re.findall(r"```console\n(.*?)```", text, re.DOTALL):
            steps: list[tuple[str, list[str]]] = []
            for line in block.splitlines():
                if line.startswith("$ "):
                    steps.append((line[2:], []))
                else:
                    steps[-1][1].append(line)
            sessions.append(pytest.param(steps, id=f"{name}: {steps[0][0]}"))
    return sessions


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _pattern(expected: list[str]) -> str:
    """A regex for documented output: a line '...' stands for any lines, '...' inside a line
    for any text."""
    parts = []
    for line in _lines("\n".join(expected)):
        if line == "...":
            parts.append(r"(?:.*\n)*?")
        else:
            parts.append(".*?".join(re.escape(piece) for piece in line.split("...")) + "\n")
    return "".join(parts)


@pytest.mark.slow
@pytest.mark.parametrize("steps", documented_sessions("cli.md", "configuration.md"))
def test_documented_commands_print_what_the_docs_show(steps, tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k != "REWARDGYM_PLUGINS"},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "REWARDGYM_DISABLE_PLUGIN_AUTOLOAD": "1",  # the docs show a plain installation
        "PYTHONUNBUFFERED": "1",  # keep stdout and stderr in the order they were written
        "COLUMNS": "80",
    }
    for command, expected in steps:
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )
        actual = "".join(line + "\n" for line in _lines(result.stdout))
        assert re.fullmatch(_pattern(expected), actual), f"$ {command}\n{result.stdout}"
