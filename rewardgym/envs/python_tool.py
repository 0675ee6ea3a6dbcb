"""``rewardgym/python_tool-v0``: multi-turn Python tool use (R1-Code-Interpreter / START style).

The env wraps a task env (``task_env``, ``rewardgym/math-v0`` by default) and adds a Python
interpreter as a tool. The prompt is the task's prompt followed by the tool instructions (and,
with ``hint="start"``, a START-style hint). Each model turn is either

* a **code turn**: it contains a fenced ```` ```python ```` block. The env runs the *last* such
  block in a :class:`~rewardgym.core.sandbox.Sandbox` (a fresh, limited process per run: nothing
  carries over between runs) and replies with its stdout and stderr, cut to
  ``max_output_chars``, in an ```` ```output ```` block. Reward 0.0, not terminated.
* a **final answer**: any turn without a code block. It is scored by the task env's
  :meth:`~rewardgym.core.env.TextEnv.score` (its verifier, through its verifier pool if it uses
  one; a pool given to this env is handed on to the task env) and the episode ends. A wrong
  answer gets no retry.

Turn ``max_turns`` is always final: if it still contains code, the code is not run, the blocks
are removed from the text, and what is left is scored (an answer is read from prose, never from
code). The tool's output is an observation: the runner appends it to the conversation and masks
it out of the loss; it is never trained on. With a chat template the output is a ``tool`` turn
(``reply_role``), or a ``user`` turn where the template has no tool role.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardgym.core.env import TextEnv
from rewardgym.core.errors import ConfigError, did_you_mean
from rewardgym.core.make import make
from rewardgym.core.sandbox import Sandbox, SandboxConfig, SandboxResult
from rewardgym.core.types import Completion, Task, Verdict, as_completion

__all__ = [
    "DEFAULT_HINT",
    "DEFAULT_INSTRUCTIONS",
    "HINTS",
    "PythonToolConfig",
    "PythonToolEnv",
    "code_blocks",
    "format_output",
    "strip_code_blocks",
]

HINTS = ("none", "start")
DEFAULT_HINT = "Wait, maybe using Python here is a good idea."
DEFAULT_INSTRUCTIONS = (
    "You can run Python code to help you. Write it in a fenced block:\n"
    "```python\n# your code\n```\n"
    "Each block runs on its own in a fresh Python process (nothing carries over between blocks; "
    "no network; no threads or subprocesses), and what it prints comes back in an ```output "
    "block. You can run code at most {max_code_runs} times. When you are done, reply without a "
    "code block and give your final answer."
)
NO_OUTPUT = "[no output]"

_OPEN = re.compile(r"^[ \t]*```[ \t]*(?:python3?|py)[ \t]*$", re.MULTILINE | re.IGNORECASE)
_CLOSE = re.compile(r"^[ \t]*```[ \t]*$", re.MULTILINE)


def _fail(name: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"python_tool {name} must be {expected}, got {value!r}.")


@dataclass(frozen=True)
class PythonToolConfig:
    """Params of ``rewardgym/python_tool-v0``.

    task_env, task_params: the wrapped task env, built with ``rewardgym.make(task_env,
        **task_params)``; its prompt, gold answers and ``score`` are used (its ``max_turns`` is
        not: this env decides when the episode ends).
    max_turns: model turns per episode, the final answer included (so at most ``max_turns - 1``
        code runs).
    max_output_chars: characters of tool output the model sees per run (head and tail kept).
    timeout_s, cpu_time_s, memory_mb, file_size_mb, max_output_bytes, namespaces,
        site_packages: the sandbox's limits (see :class:`~rewardgym.core.sandbox.SandboxConfig`).
        ``site_packages=True`` lets the code import installed packages (numpy, sympy, ...).
    instructions: the tool instructions added after the task's prompt; ``{max_code_runs}`` is
        replaced by ``max_turns - 1``; "" adds none.
    hint: "none", or "start": ``hint_text`` is added after the instructions (START's hint).
    """

    task_env: str = "rewardgym/math-v0"
    task_params: dict[str, Any] = field(default_factory=dict)
    max_turns: int = 4
    max_output_chars: int = 2000
    timeout_s: float = 10.0
    cpu_time_s: float = 10.0
    memory_mb: int = 1024
    file_size_mb: int = 16
    max_output_bytes: int = 65_536
    namespaces: str = "auto"
    site_packages: bool = True
    instructions: str = DEFAULT_INSTRUCTIONS
    hint: str = "none"
    hint_text: str = DEFAULT_HINT

    def __post_init__(self) -> None:
        if not isinstance(self.task_env, str) or not self.task_env:
            raise _fail("task_env", "a registered environment id", self.task_env)
        if not isinstance(self.task_params, dict) or not all(
            isinstance(k, str) for k in self.task_params
        ):
            raise _fail("task_params", "a dict with str keys", self.task_params)
        object.__setattr__(self, "task_params", dict(self.task_params))
        for name in ("max_turns", "max_output_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _fail(name, "an int >= 1", value)
        if self.hint not in HINTS:
            hint = did_you_mean(str(self.hint), HINTS)
            raise ConfigError(f"python_tool hint must be one of {HINTS}, got {self.hint!r}.{hint}")
        for name in ("instructions", "hint_text"):
            if not isinstance(getattr(self, name), str):
                raise _fail(name, "a str", getattr(self, name))
        self.sandbox_config()  # validates the sandbox limits

    def sandbox_config(self) -> SandboxConfig:
        """The :class:`SandboxConfig` these params describe (raises ConfigError when invalid)."""
        try:
            return SandboxConfig(
                timeout_s=self.timeout_s,
                cpu_time_s=self.cpu_time_s,
                memory_mb=self.memory_mb,
                file_size_mb=self.file_size_mb,
                max_output_bytes=self.max_output_bytes,
                namespaces=self.namespaces,
                site_packages=self.site_packages,
            )
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("sandbox ", "python_tool ", 1)) from None


# -- the protocol --------------------------------------------------------------------------------
def _blocks(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, code)`` of each python block; an unclosed last block runs to the end."""
    found, pos = [], 0
    while (opening := _OPEN.search(text, pos)) is not None:
        closing = _CLOSE.search(text, opening.end())
        end = len(text) if closing is None else closing.end()
        body_end = len(text) if closing is None else closing.start()
        body = text[opening.end() + 1 : body_end]
        found.append((opening.start(), end, body[:-1] if body.endswith("\n") else body))
        pos = end
        if closing is None:
            break
    return found


def code_blocks(text: str) -> list[str]:
    """The code of every non-blank ```` ```python ```` (or ``py``, ``python3``) block in
    ``text``, in order. Fences stand on their own lines; an unclosed last block runs to the end
    of the text."""
    return [code for _, _, code in _blocks(text) if code.strip()]


def strip_code_blocks(text: str) -> str:
    """``text`` without its python blocks (fences included)."""
    kept, pos = [], 0
    for start, end, _ in _blocks(text):
        kept.append(text[pos:start])
        pos = end
    kept.append(text[pos:])
    return "".join(kept)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head
    omitted = len(text) - limit
    return f"{text[:head]}\n[... {omitted} characters omitted ...]\n{text[-tail:]}"


def _stop_note(result: SandboxResult, config: SandboxConfig) -> str:
    reason = result.killed_reason or ""
    if reason == "wall_time":
        return f"[the run was stopped: it took longer than {config.timeout_s:g} s]"
    if reason == "cpu_time":
        return f"[the run was stopped: it used more than {math.ceil(config.cpu_time_s)} s of CPU]"
    if reason == "output":
        return f"[the run was stopped: it printed more than {config.max_output_bytes} bytes]"
    if reason.startswith("signal:"):
        return f"[the run was killed by {reason.partition(':')[2]}]"
    return ""  # a traceback on stderr already says what happened


def format_output(result: SandboxResult, config: SandboxConfig, max_chars: int) -> str:
    """The observation for one run: stdout then stderr, cut to ``max_chars`` (the first and
    last halves kept), a note when the sandbox stopped the run, in an ```` ```output ```` block."""
    text = _clip(result.stdout + result.stderr, max_chars).rstrip("\n")
    note = _stop_note(result, config)
    text = "\n".join(part for part in (text, note) if part) or NO_OUTPUT
    return f"```output\n{text}\n```"


# -- the environment -----------------------------------------------------------------------------
class PythonToolEnv(TextEnv):
    """A task env plus a sandboxed Python interpreter the model may call; see the module docs."""

    reply_role = "tool"  # the interpreter's output is a tool turn where the chat template has one

    def __init__(self, config: PythonToolConfig | None = None, *, render_mode: str | None = None):
        super().__init__(render_mode=render_mode)
        self.config = config if config is not None else PythonToolConfig()
        self.inner = make(self.config.task_env, **self.config.task_params)
        self.verifier = self.inner.verifier
        self.max_turns = self.config.max_turns
        self.sandbox_config = self.config.sandbox_config()
        self.sandbox = Sandbox(self.sandbox_config)
        self.code_runs = 0

    def compose_prompt(self, task_prompt: str) -> str:
        """The prompt the model sees: the task's prompt, the instructions, the hint."""
        instructions = self.config.instructions.replace(
            "{max_code_runs}", str(self.config.max_turns - 1)
        )
        hint = self.config.hint_text if self.config.hint == "start" else ""
        return "\n\n".join(part for part in (task_prompt, instructions, hint) if part)

    def solution(self, task: Task) -> str | None:
        return self.inner.unwrapped.solution(task)

    def use_verifier_pool(self, pool: Any) -> None:
        """Score through ``pool``: handed on to the task env, which scores the final answer."""
        super().use_verifier_pool(pool)
        self.inner.unwrapped.use_verifier_pool(pool)

    def sample_task(self, rng: np.random.Generator) -> Task:
        task = self.inner.sample_task(rng)
        return dataclasses.replace(task, prompt=self.compose_prompt(task.prompt))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        self.code_runs = 0
        prompt, info = super().reset(seed=seed, options=options)
        info["code_runs"] = 0
        return prompt, info

    def step(self, action: str | Completion) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self.check_can_step()
        completion = as_completion(action)
        self.turn += 1
        self._transcript.append(("model", completion.text))
        blocks = code_blocks(completion.text)
        if blocks and self.turn < self.max_turns:
            return self._run_code(blocks[-1])
        scored = completion if not blocks else Completion(strip_code_blocks(completion.text))
        verdict = self.inner.score(scored, self.task)
        if not isinstance(verdict, Verdict):
            raise TypeError(
                f"{type(self.inner).__name__}.score() must return a Verdict, got "
                f"{type(verdict).__name__}"
            )
        self._episode_over = True
        info = self._info(verdict, code=None, result=None, out_of_turns=bool(blocks))
        reward = 0.0 if verdict.reward is None else verdict.reward
        return "", reward, True, False, info

    def _run_code(self, code: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        result = self.sandbox.run(code)
        self.code_runs += 1
        observation = format_output(result, self.sandbox_config, self.config.max_output_chars)
        self._transcript.append(("env", observation))
        verdict = Verdict(0.0, reason="the turn ran a python block; the episode goes on")
        return observation, 0.0, False, False, self._info(verdict, code=code, result=result)

    def _info(
        self, verdict: Verdict, *, code: str | None, result: SandboxResult | None,
        out_of_turns: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        return {
            "task": self.task,
            "turn": self.turn,
            "verdict": verdict,
            "scorable": verdict.scorable,
            "correct": verdict.correct,
            "code": code,
            "sandbox": result,
            "code_runs": self.code_runs,
            "out_of_turns": out_of_turns,
        }

    def close(self) -> None:
        self.inner.close()
        super().close()
