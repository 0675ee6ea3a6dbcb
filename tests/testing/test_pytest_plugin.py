"""rewardgym's pytest plugin: active through its entry point, light to import, fixtures that clean
up after themselves, and the ``gpu`` marker."""

from __future__ import annotations

import importlib.machinery
import json
import subprocess
import sys
import textwrap
import types

import pytest

from rewardgym.testing import pytest_plugin

pytest_plugins = ["pytester"]

TINY_PLUGIN = """
from rewardgym import Task, TextEnv, Verdict, Verifier, hookimpl

class EchoVerifier(Verifier):
    def verify(self, response, task):
        correct = response.strip() == task.answer
        return Verdict(float(correct), correct=correct)

class EchoEnv(TextEnv):
    def __init__(self):
        super().__init__()
        self.verifier = EchoVerifier()

    def sample_task(self, rng):
        word = str(int(rng.integers(1000)))
        return Task(f"Repeat {word}", answer=word)

class Plugin:
    @staticmethod
    @hookimpl
    def rewardgym_register_envs(register):
        register("tiny/echo-v0", "tiny_plugin:EchoEnv")
"""


def test_the_plugin_is_loaded_through_its_entry_point(request):
    assert request.config.pluginmanager.get_plugin("rewardgym") is pytest_plugin


def test_a_plugin_authors_test_file_passes_in_a_few_lines(pytester):
    pytester.makepyfile(tiny_plugin=TINY_PLUGIN)
    pytester.makepyfile(
        test_tiny="""
        from tiny_plugin import EchoVerifier, Plugin, Task

        def test_env(rewardgym_plugin, make_env, check_env, scripted_policy):
            info = rewardgym_plugin(Plugin())
            assert info.name == "Plugin" and info.distribution == "<direct>"
            check_env(make_env("tiny/echo-v0"))

        def test_verifier(check_verifier):
            task = Task("Repeat 7", answer="7")
            check_verifier(EchoVerifier(), [("7", task, 1.0), ("8", task, False)], timeout=2)
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_fixtures_clean_up_after_each_test(pytester):
    pytester.makepyfile(tiny_plugin=TINY_PLUGIN)
    pytester.makepyfile(
        test_cleanup="""
        import rewardgym
        import tiny_plugin
        from rewardgym.testing import ScriptedPolicy, run_episode

        SEEN = {}

        def test_use(rewardgym_plugin, make_env, verifier_pool, scripted_policy):
            rewardgym_plugin(tiny_plugin.Plugin, name="tiny")
            env = make_env("tiny/echo-v0")
            adopted = make_env(tiny_plugin.EchoEnv())
            closed = []
            env.close = lambda: closed.append("made")
            adopted.close = lambda: closed.append("adopted")
            prompt, info = env.reset(seed=0)
            policy = scripted_policy([info["task"].answer])
            assert scripted_policy is ScriptedPolicy
            assert run_episode(env, policy, seed=0).correct
            verdict = verifier_pool.verify("5", rewardgym.Task("x", answer="5"),
                                           tiny_plugin.EchoVerifier())
            assert verdict.correct
            SEEN.update(closed=closed, pool=verifier_pool)

        def test_after():
            assert SEEN["closed"] == ["adopted", "made"]  # every env closed, last made first
            assert SEEN["pool"].closed
            assert "tiny/echo-v0" not in rewardgym.ENVS
            assert "tiny" not in rewardgym.get_plugin_manager().plugins
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_make_env_rejects_params_for_an_instance(pytester):
    pytester.makepyfile(
        """
        import re, pytest, rewardgym

        def test_it(make_env):
            env = rewardgym.make("rewardgym/arithmetic-v0")
            with pytest.raises(TypeError, match=re.escape(
                "make_env got an env instance (ArithmeticEnv) and params ['max_turns']; params "
                "only apply to an id: make_env('ns/name-v0', **params)."
            )):
                make_env(env, max_turns=2)
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


GPU_TEST = """
import pytest

@pytest.mark.gpu
def test_needs_gpu():
    pass
"""


def test_gpu_tests_are_skipped_with_the_reason(pytester, monkeypatch):
    monkeypatch.setattr(pytest_plugin, "no_gpu_reason", lambda: "needs a CUDA GPU: no luck")
    pytester.makepyfile(GPU_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] *: needs a CUDA GPU: no luck"])


def test_gpu_tests_run_when_a_gpu_is_there(pytester, monkeypatch):
    monkeypatch.setattr(pytest_plugin, "no_gpu_reason", lambda: "")
    pytester.makepyfile(GPU_TEST)
    pytester.runpytest("-p", "no:cacheprovider", "--strict-markers").assert_outcomes(passed=1)


def test_the_gpu_marker_is_documented(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.gpu: needs a CUDA GPU (skipped unless torch *"])


def fake_torch(cuda: bool) -> types.ModuleType:
    torch = types.ModuleType("torch")
    torch.__spec__ = importlib.machinery.ModuleSpec("torch", None)
    torch.cuda = types.SimpleNamespace(is_available=lambda: cuda)
    return torch


def test_no_gpu_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda=False))
    assert pytest_plugin.no_gpu_reason() == "needs a CUDA GPU: torch.cuda.is_available() is False"
    monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda=True))
    assert pytest_plugin.no_gpu_reason() == ""
    monkeypatch.delitem(sys.modules, "torch")
    monkeypatch.setattr(pytest_plugin.importlib.util, "find_spec", lambda name: None)
    assert pytest_plugin.no_gpu_reason() == "needs a CUDA GPU: torch is not installed"


def test_importing_the_plugin_is_light():
    """pytest imports the plugin in every session: it must load no rewardgym plugin and none of
    the checkers' modules."""
    code = textwrap.dedent(
        """
        import json, sys
        import rewardgym.testing.pytest_plugin
        import rewardgym.plugins.manager as manager
        heavy = ["torch", "sympy", "rewardgym_example", "rewardgym.core.verify",
                 "rewardgym.testing._env_checks", "rewardgym.testing._verifier_checks",
                 "gymnasium.utils.env_checker"]
        print(json.dumps({
            "imported": [m for m in heavy if m in sys.modules],
            "plugins_loaded": manager._manager is not None and manager._manager.loaded,
        }))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == {"imported": [], "plugins_loaded": False}


@pytest.mark.parametrize("name", ["check_env", "check_verifier"])
def test_checker_fixtures_are_the_functions(request, name):
    import rewardgym.testing

    assert request.getfixturevalue(name) is getattr(rewardgym.testing, name)
