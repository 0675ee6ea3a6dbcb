"""The sandbox contains what untrusted code tries, reports the run as failed, and stays usable.

Each threat is tried twice where it matters: with every layer, and without the audit hook (so
the OS layers alone must contain it). A test that needs a layer this machine does not have is
skipped with the layer's name.
"""

from __future__ import annotations

import os
import re
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from rewardgym.core import _sandbox_layers as layers_mod
from rewardgym.core.errors import ConfigError
from rewardgym.core.sandbox import Sandbox, SandboxConfig, SandboxResult

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the sandbox needs POSIX")

CAP = 10_000
LIMITS = dict(timeout_s=5.0, cpu_time_s=1, memory_mb=256, file_size_mb=1, max_output_bytes=CAP)


@pytest.fixture(scope="module")
def hooked() -> Sandbox:
    return Sandbox(SandboxConfig(**LIMITS))


@pytest.fixture(scope="module")
def bare() -> Sandbox:
    """Every OS layer, no audit hook."""
    return Sandbox(SandboxConfig(**LIMITS, audit_hook=False))


@pytest.fixture(params=["hooked", "bare"])
def sandbox(request) -> Sandbox:
    return request.getfixturevalue(request.param)


def needs(sandbox: Sandbox, *layers: str) -> None:
    missing = [name for name in layers if name not in sandbox.isolation]
    if missing:
        pytest.skip(f"this machine lacks the layer(s) {missing}: {'; '.join(sandbox.notes)}")


def usable(sandbox: Sandbox) -> None:
    result = sandbox.run("print(6 * 7)")
    assert (result.ok, result.stdout, result.killed_reason) == (True, "42\n", None)


def failed(result: SandboxResult, reason: str | None) -> None:
    assert not result.ok, result
    assert result.killed_reason == reason, result


# -- ordinary runs -----------------------------------------------------------------------------
def test_runs_code(hooked):
    result = hooked.run(
        "import math\nprint(math.factorial(20))\nimport sys; print('e', file=sys.stderr)"
    )
    assert result.ok and result.exit_code == 0
    assert (result.stdout, result.stderr) == ("2432902008176640000\n", "e\n")
    assert not result.timed_out and not result.truncated and result.killed_reason is None
    assert 0 < result.duration_s < LIMITS["timeout_s"]
    assert result.isolation == hooked.isolation
    assert set(result.isolation) <= set(layers_mod.LAYER_DOCS)
    assert {"process", "empty_env", "temp_workdir", "rlimits", "audit_hook"} <= set(
        result.isolation
    )


def test_traceback_shows_only_the_users_frames(hooked):
    result = hooked.run("def f():\n    return 1 / 0\nf()\n")
    failed(result, None)
    assert result.exit_code == 1
    assert result.stderr.startswith('Traceback (most recent call last):\n  File "main.py", line 3')
    assert "<string>" not in result.stderr and "launcher" not in result.stderr
    assert result.stderr.endswith("ZeroDivisionError: division by zero\n")


def test_exit_status_and_syntax_errors(hooked):
    assert hooked.run("import sys; sys.exit(3)").exit_code == 3
    result = hooked.run("print(")
    failed(result, None)
    assert "SyntaxError" in result.stderr and "<string>" not in result.stderr


def test_fresh_working_directory_each_run_and_removed_after(hooked):
    first = hooked.run("import os\nopen('note.txt', 'w').write('x')\nprint(os.getcwd())")
    assert first.ok
    workdir = first.stdout.strip()
    assert not os.path.exists(workdir)
    second = hooked.run("import os\nprint(os.listdir('.'), os.getcwd())")
    assert second.stdout.startswith("['main.py'] ") and workdir not in second.stdout


def test_stdin_is_empty(hooked):
    assert hooked.run("import sys; print(repr(sys.stdin.read()))").stdout == "''\n"


def test_runs_from_many_threads_at_once(hooked):
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: hooked.run(f"print({i} * 2)"), range(8)))
    assert [r.stdout for r in results] == [f"{i * 2}\n" for i in range(8)]


# -- the threats of the issue --------------------------------------------------------------------
def test_infinite_loop_hits_the_cpu_limit(hooked):
    result = hooked.run("while True:\n    pass")
    failed(result, "cpu_time")
    assert result.exit_code < 0 and not result.timed_out
    usable(hooked)


def test_sleeping_forever_hits_the_wall_time_limit():
    sandbox = Sandbox(SandboxConfig(**{**LIMITS, "timeout_s": 0.5}))
    result = sandbox.run("import time\nprint('started')\ntime.sleep(60)")
    failed(result, "wall_time")
    assert result.timed_out and result.stdout == "started\n"  # unbuffered: output before the kill
    assert 0.5 <= result.duration_s < 3
    usable(sandbox)


@pytest.mark.parametrize(
    "code",
    ["x = bytearray(2 * 1024**3)", "chunks = []\nwhile True:\n    chunks.append(' ' * 10**7)"],
)
def test_memory_bomb(hooked, code):
    result = hooked.run(code)
    failed(result, "memory")
    assert result.stderr.rstrip().endswith("MemoryError")
    usable(hooked)


def test_fork_bomb(sandbox):
    needs(sandbox, "no_processes")
    result = sandbox.run("import os\nwhile True:\n    os.fork()")
    if "audit_hook" in sandbox.isolation:
        failed(result, "blocked")
        assert "PermissionError: sandbox: os.fork is not allowed" in result.stderr
    else:
        failed(result, None)
        assert "BlockingIOError: [Errno 11]" in result.stderr  # RLIMIT_NPROC
    usable(sandbox)


def test_fork_through_ctypes_and_threads_fail_at_the_os_level(bare):
    needs(bare, "no_processes")
    result = bare.run("import ctypes\nprint(ctypes.CDLL(None).fork())")
    assert result.stdout == "-1\n"
    result = bare.run("import threading\nthreading.Thread(target=print).start()")
    failed(result, None)
    assert "can't start new thread" in result.stderr
    usable(bare)


def test_subprocess_is_refused(hooked):
    result = hooked.run("import subprocess\nsubprocess.run(['true'])")
    failed(result, "blocked")
    assert "sandbox: subprocess.Popen is not allowed" in result.stderr
    usable(hooked)


def test_writing_outside_the_work_directory(sandbox, tmp_path):
    target = tmp_path / "escaped.txt"  # in a root-only directory when run as root
    result = sandbox.run(f"open({str(target)!r}, 'w').write('x')")
    if "audit_hook" in sandbox.isolation:
        failed(result, "blocked")
        assert "writing is not allowed outside the working directory" in result.stderr
    else:
        if not {"unprivileged_uid", "unprivileged_uid_read_all"} & set(sandbox.isolation):
            needs(sandbox, "unprivileged_uid")  # otherwise only the audit hook stands in the way
        failed(result, None)
        assert "PermissionError: [Errno 13]" in result.stderr
    assert not target.exists()
    usable(sandbox)


def test_the_audit_hook_refuses_writes_to_world_writable_directories(hooked, tmp_path):
    target = f"/tmp/rewardgym-sandbox-escape-{os.getpid()}"
    result = hooked.run(f"import os\nos.symlink({target!r}, 'link')\nopen('link', 'w').write('x')")
    failed(result, "blocked")
    assert not os.path.exists(target)


def test_reading_the_parents_environment(sandbox, monkeypatch):
    monkeypatch.setenv("REWARDGYM_SANDBOX_SECRET", "hunter2")
    code = (
        f"import os\nprint(sorted(os.environ))\nprint(open('/proc/{os.getpid()}/environ').read())\n"
    )
    result = sandbox.run(code)
    assert result.stdout.startswith(
        "['HOME', 'LANG', 'MKL_NUM_THREADS', 'NUMEXPR_NUM_THREADS', 'OMP_NUM_THREADS', "
        "'OPENBLAS_NUM_THREADS', 'PATH', 'TMPDIR']\n"
    )
    assert "hunter2" not in result.stdout + result.stderr
    failed(result, None)  # FileNotFoundError in a pid namespace, PermissionError without
    assert re.search(r"(FileNotFoundError|PermissionError): \[Errno (2|13)\]", result.stderr)
    usable(sandbox)


def test_opening_a_network_connection(sandbox):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        result = sandbox.run(
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)"
        )
    if "audit_hook" in sandbox.isolation:
        failed(result, "blocked")
        assert "sandbox: socket" in result.stderr
    else:
        needs(sandbox, "net_ns")
        failed(result, None)
        assert "OSError: [Errno 101] Network is unreachable" in result.stderr
    usable(sandbox)


def test_huge_stdout_is_cut_and_the_run_killed(hooked):
    result = hooked.run("while True:\n    print('x' * 1000)")
    failed(result, "output")
    assert result.truncated and len(result.stdout) == CAP and result.exit_code < 0
    usable(hooked)


def test_file_size_limit(hooked):
    result = hooked.run("open('big', 'wb').write(b'x' * (2 * 1024 * 1024))")
    failed(result, "file_size")
    usable(hooked)


def test_signalling_other_processes_is_refused(hooked):
    result = hooked.run(f"import os, signal\nos.kill({os.getpid()}, signal.SIGTERM)")
    failed(result, "blocked")


# -- configuration -------------------------------------------------------------------------------
def test_site_packages():
    pytest.importorskip("numpy")
    assert Sandbox(SandboxConfig(**LIMITS, site_packages=True)).run("import numpy").ok
    result = Sandbox(SandboxConfig(**LIMITS)).run("import numpy")
    assert "ModuleNotFoundError: No module named 'numpy'" in result.stderr


def test_namespaces_off_runs_without_them():
    sandbox = Sandbox(SandboxConfig(**LIMITS, namespaces="off"))
    assert not {"net_ns", "pid_ns", "user_ns", "private_proc"} & set(sandbox.isolation)
    usable(sandbox)


def test_namespaces_require_refuses_a_machine_without_them(monkeypatch):
    notes = ("no namespaces: the 'unshare' program (util-linux) was not found",)
    monkeypatch.setattr(layers_mod, "probe", lambda *args: layers_mod.Layers((), (), (), "", notes))
    message = (
        "sandbox namespaces='require', but no namespace works here: no namespaces: the "
        "'unshare' program (util-linux) was not found. Use namespaces='auto' to run without them."
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        Sandbox(SandboxConfig(namespaces="require"))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"timeout_s": 0}, "sandbox timeout_s must be a number > 0, got 0."),
        ({"cpu_time_s": "1"}, "sandbox cpu_time_s must be a number > 0, got '1'."),
        ({"memory_mb": 8}, "sandbox memory_mb must be an int >= 16 or None, got 8."),
        ({"max_output_bytes": 0}, "sandbox max_output_bytes must be an int >= 1, got 0."),
        ({"run_as_uid": 0}, "sandbox run_as_uid must be an int >= 1 or None, got 0."),
        (
            {"namespaces": "requir"},
            "sandbox namespaces must be one of ('auto', 'require', 'off'), got 'requir'. "
            "Did you mean 'require'?",
        ),
        (
            {"python": "/no/such/python"},
            "sandbox python must be an executable interpreter or None, got '/no/such/python'",
        ),
    ],
)
def test_bad_config(params, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        SandboxConfig(**params)


def test_run_needs_a_str(hooked):
    with pytest.raises(
        TypeError, match=re.escape("Sandbox.run needs the code as a str, got bytes")
    ):
        hooked.run(b"print(1)")  # type: ignore[arg-type]


def test_docs_example_runs():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "sandbox.md").read_text(encoding="utf-8")
    examples = re.findall(r"^```python\n(.*?)^```$", text, re.S | re.M)
    assert examples
    for code in examples:
        exec(compile(code, "docs/sandbox.md", "exec"), {"__name__": "docs_example"})  # noqa: S102
