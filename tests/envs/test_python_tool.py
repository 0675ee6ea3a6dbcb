import os
import re
from pathlib import Path

import pytest

import rewardgym
from rewardgym.core.errors import ConfigError, EnvError, UnknownNameError
from rewardgym.core.registry import ENVS, VERIFIERS
from rewardgym.core.sandbox import SandboxConfig, SandboxResult
from rewardgym.envs.python_tool import (
    DEFAULT_HINT,
    NO_OUTPUT,
    PythonToolConfig,
    PythonToolEnv,
    code_blocks,
    format_output,
    strip_code_blocks,
)
from rewardgym.plugins.hookspecs import hookimpl
from rewardgym.testing import check_env

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the sandbox needs POSIX")

ID = "rewardgym/python_tool-v0"
ARITHMETIC = "rewardgym/arithmetic-v0"
FENCE = "`" * 3
DOCS = Path(__file__).resolve().parents[2] / "docs"


def block(code: str, lang: str = "python") -> str:
    return f"{FENCE}{lang}\n{code}\n{FENCE}"


def tool_env(**params) -> PythonToolEnv:
    params = {"task_env": ARITHMETIC, "task_params": {"difficulty": 3}, "timeout_s": 5.0, **params}
    return PythonToolEnv(PythonToolConfig(**params))


# -- the protocol --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no code here", []),
        (block("print(1)"), ["print(1)"]),
        (f"a\n{block('x = 1')}\nb\n{block('print(2)', 'py')}\nc", ["x = 1", "print(2)"]),
        (block("print(3)", "Python3"), ["print(3)"]),
        (f"  {FENCE}python  \nprint(4)\n  {FENCE}  ", ["print(4)"]),
        (f"{FENCE}python\nprint(5)", ["print(5)"]),  # unclosed at the end: runs to the end
        (block("   \n"), []),  # blank blocks are ignored
        (f"inline {FENCE}python print(6){FENCE}", []),  # fences stand on their own lines
        (block("print(7)", "bash"), []),
        (f"{block('a')}\n{FENCE}output\n1\n{FENCE}", ["a"]),
    ],
)
def test_code_blocks(text, expected):
    assert code_blocks(text) == expected


def test_strip_code_blocks():
    text = f"I think\n{block('print(2472)')}\nAnswer: 5\n{FENCE}python\nprint(9)"
    assert strip_code_blocks(text) == "I think\n\nAnswer: 5\n"


def _result(**fields) -> SandboxResult:
    base = dict(ok=True, exit_code=0, stdout="", stderr="", timed_out=False, killed_reason=None,
                truncated=False, duration_s=0.1, isolation=())  # fmt: skip
    return SandboxResult(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"stdout": "42\n"}, "42"),
        ({}, NO_OUTPUT),
        ({"stdout": "a\n", "stderr": "E: 1\n"}, "a\nE: 1"),
        ({"stdout": "x" * 30}, "x" * 5 + "\n[... 20 characters omitted ...]\n" + "x" * 5),
        ({"killed_reason": "wall_time", "stdout": "s\n"}, "s\n[the run was stopped: it took longer than 3 s]"),
        ({"killed_reason": "cpu_time"}, "[the run was stopped: it used more than 2 s of CPU]"),
        ({"killed_reason": "output", "stdout": "y" * 8}, "y" * 8 + "\n[the run was stopped: it printed more than 99 bytes]"),
        ({"killed_reason": "signal:SIGSEGV"}, "[the run was killed by SIGSEGV]"),
    ],
)  # fmt: skip
def test_format_output(fields, expected):
    config = SandboxConfig(timeout_s=3, cpu_time_s=1.5, max_output_bytes=99)
    assert format_output(_result(**fields), config, 10) == f"{FENCE}output\n{expected}\n{FENCE}"


# -- episodes ------------------------------------------------------------------------------------
def test_code_turn_then_final_answer():
    env = tool_env()
    prompt, info = env.reset(seed=3)
    task = info["task"]
    expression = task.metadata["expression"]
    assert prompt.startswith(f"Compute {expression}.") and "at most 3 times" in prompt
    obs, reward, terminated, truncated, info = env.step(
        f"Let me check.\n{block(f'print({expression})')}"
    )
    assert obs == f"{FENCE}output\n{task.answer}\n{FENCE}"
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["code"] == f"print({expression})" and info["sandbox"].ok
    assert info["code_runs"] == 1 and info["turn"] == 1 and info["verdict"].reward == 0.0
    obs, reward, terminated, _, info = env.step(f"Answer: {task.answer}")
    assert (obs, reward, terminated) == ("", 1.0, True)
    assert info["correct"] and info["code"] is None and info["sandbox"] is None
    assert not info["out_of_turns"]
    with pytest.raises(
        EnvError, match=re.escape("PythonToolEnv.step() called after the episode ended")
    ):
        env.step("Answer: 1")


def test_only_the_last_block_runs_and_failures_come_back_as_output():
    env = tool_env()
    env.reset(seed=0)
    obs, *_, info = env.step(f"{block('print(1)')}\n{block('print(2)')}")
    assert obs == f"{FENCE}output\n2\n{FENCE}"
    obs, *_, info = env.step(block("raise KeyError('k')"))
    assert obs.startswith(f'{FENCE}output\nTraceback (most recent call last):\n  File "main.py"')
    assert obs.endswith(f"KeyError: 'k'\n{FENCE}") and not info["sandbox"].ok


def test_a_wrong_final_answer_ends_the_episode():
    env = tool_env()
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step("Answer: -123456")
    assert (reward, terminated, info["correct"], info["code_runs"]) == (0.0, True, False, 0)


def test_the_last_turn_is_scored_without_its_code():
    env = tool_env(max_turns=2)
    _, info = env.reset(seed=1)
    gold = info["task"].answer
    env.step(block("print(1)"))
    _, reward, terminated, _, info = env.step(block(f"print({gold})"))
    assert (reward, terminated, info["out_of_turns"], info["code"]) == (0.0, True, True, None)
    assert info["verdict"].reason == "no integer answer found"  # never read from code
    env.reset(seed=1)
    env.step(block("print(1)"))
    _, reward, *_ = env.step(f"{block('print(0)')}\nAnswer: {gold}")
    assert reward == 1.0


def test_timeout_is_reported_and_the_episode_goes_on():
    env = tool_env(timeout_s=0.5)
    _, info = env.reset(seed=2)
    obs, reward, terminated, _, step_info = env.step(block("import time\ntime.sleep(30)"))
    assert obs == f"{FENCE}output\n[the run was stopped: it took longer than 0.5 s]\n{FENCE}"
    assert not terminated and step_info["sandbox"].timed_out
    obs, *_ = env.step(block("print('still here')"))
    assert "still here" in obs


def test_long_output_is_clipped_for_the_model():
    env = tool_env(max_output_chars=100)
    env.reset(seed=0)
    obs, *_ = env.step(block("for i in range(1000):\n    print(i)"))
    assert obs.startswith(f"{FENCE}output\n0\n1\n2\n") and obs.endswith(f"998\n999\n{FENCE}")
    assert "characters omitted ..." in obs


def test_hint_and_instructions_in_the_prompt():
    env = tool_env(hint="start", max_turns=3)
    prompt, info = env.reset(seed=0)
    assert prompt.endswith("\n\n" + DEFAULT_HINT)
    assert "You can run code at most 2 times." in prompt
    bare = tool_env(instructions="")
    prompt, info = bare.reset(seed=0)
    assert prompt == info["task"].prompt and FENCE not in prompt
    custom = tool_env(
        instructions="Tool: python ({max_code_runs} runs)", hint="start", hint_text="Hmm."
    )
    assert custom.reset(seed=0)[0].endswith(".\n\nTool: python (3 runs)\n\nHmm.")


def test_same_task_as_the_inner_env():
    env, inner = tool_env(instructions=""), rewardgym.make(ARITHMETIC, difficulty=3)
    assert env.reset(seed=7)[0] == inner.reset(seed=7)[0]


def test_render_shows_the_conversation():
    env = tool_env(max_turns=2)
    env.render_mode = "ansi"
    env.reset(seed=0)
    env.step(block("print(5)"))
    text = env.render()
    assert "[model] " in text and f"[env] {FENCE}output\n5\n{FENCE}" in text


def test_passes_check_env():
    check_env(tool_env())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"hint": "begin"}, "python_tool hint must be one of ('none', 'start'), got 'begin'."),
        ({"max_turns": 0}, "python_tool max_turns must be an int >= 1, got 0."),
        ({"timeout_s": -1}, "python_tool timeout_s must be a number > 0, got -1."),
        ({"namespaces": "of"}, "python_tool namespaces must be one of ('auto', 'require', 'off'), got 'of'. Did you mean 'off'?"),
        ({"task_params": {1: 2}}, "python_tool task_params must be a dict with str keys, got {1: 2}."),
    ],
)  # fmt: skip
def test_bad_config(params, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        PythonToolConfig(**params)


# -- registration --------------------------------------------------------------------------------
class _Plugin:
    @staticmethod
    @hookimpl
    def rewardgym_register_envs(register):
        register(ID, "rewardgym.envs.python_tool:PythonToolEnv",
                 config="rewardgym.envs.python_tool:PythonToolConfig")  # fmt: skip


@pytest.fixture
def registered(rewardgym_plugin):
    rewardgym.load_plugins()
    if ID not in ENVS:
        rewardgym_plugin(_Plugin(), name="python_tool_test")


def test_a_verifier_pool_given_to_the_env_reaches_the_task_env(registered):
    from rewardgym.core.verify import VerifierPool

    with VerifierPool(workers=1, timeout=10.0) as pool:
        env = rewardgym.make(ID, verifier_pool=pool)  # task env: rewardgym/math-v0
        assert env.inner.verifier_pool() is pool
        _, info = env.reset(seed=0)
        _, reward, terminated, _, _ = env.step(f"\\boxed{{{info['task'].answer}}}")
        assert (reward, terminated) == (1.0, True) and pool.stats.calls == 1
        env.close()


def test_make_by_id(registered, make_env):
    env = make_env(ID, task_env=ARITHMETIC, max_turns=2, hint="start")
    prompt, _ = env.reset(seed=0)
    assert prompt.endswith(DEFAULT_HINT)
    with pytest.raises(ConfigError, match=re.escape("Unknown param 'max_turn'")):
        make_env(ID, task_env=ARITHMETIC, max_turn=2)
    with pytest.raises(
        UnknownNameError, match=re.escape("No environment named 'rewardgym/arithmetik-v0'")
    ):
        make_env(ID, task_env="rewardgym/arithmetik-v0")


class _MathPlugin:
    @staticmethod
    @hookimpl
    def rewardgym_register_envs(register):
        register("rewardgym/math-v0", "rewardgym.envs.math:MathEnv",
                 config="rewardgym.envs.math:MathConfig")  # fmt: skip

    @staticmethod
    @hookimpl
    def rewardgym_register_verifiers(register):
        register("rewardgym/math-v0", "rewardgym.envs.math:MathVerifier",
                 config="rewardgym.envs.math:MathVerifierConfig")  # fmt: skip


def test_default_task_is_math(rewardgym_plugin):
    pytest.importorskip("math_verify")
    pytest.importorskip("rewardgym.envs.math")
    rewardgym.load_plugins()
    if "rewardgym/math-v0" not in ENVS or "rewardgym/math-v0" not in VERIFIERS:
        rewardgym_plugin(_MathPlugin(), name="python_tool_math_test")
    env = PythonToolEnv(PythonToolConfig(task_params={"use_pool": False}))
    _, info = env.reset(seed=0)
    _, reward, terminated, _, _ = env.step(f"\\boxed{{{info['task'].answer}}}")
    assert (reward, terminated) == (1.0, True)


def test_docs_example_runs():
    text = (DOCS / "envs" / "python_tool.md").read_text(encoding="utf-8")
    examples = re.findall(r"^```python\n(.*?)^```$", text, re.S | re.M)
    assert examples
    for code in examples:
        exec(compile(code, "docs/envs/python_tool.md", "exec"), {"__name__": "docs_example"})  # noqa: S102
