"""Run untrusted Python code in a separate, limited process: :class:`Sandbox`.

``Sandbox(SandboxConfig(...)).run(code) -> SandboxResult``. Every run starts a fresh
interpreter (``python -I -S -B -u``: isolated mode, no ``site``, no bytecode files, unbuffered
output) in a new temporary working directory with an empty environment, and:

* limits it: wall time (the caller kills it), CPU time (``RLIMIT_CPU``), address space
  (``RLIMIT_AS``), file size (``RLIMIT_FSIZE``), no core dumps, and a cap on the bytes read from
  stdout and stderr (past it the run is killed and reported ``truncated``);
* forbids new processes: ``RLIMIT_NPROC=0`` (enforced for any uid but root, so a caller running
  as root has the code run as ``nobody``, uid/gid 65534, by default);
* isolates it where the platform allows: network, pid and (for /proc) mount namespaces through
  ``unshare`` (plus a user namespace when the caller is not root), and ``no_new_privs`` through
  ``setpriv``; which of these work is probed once per process;
* installs a Python audit hook before the code runs that refuses new processes, sockets,
  writes outside the working directory and signals to other processes. The hook is defence in
  depth only: code can bypass it with ``ctypes``; the OS layers above are the boundary.

The process group (and with it the pid namespace) is killed with SIGKILL at the end of every
run, and the working directory is deleted. :attr:`SandboxResult.isolation` names the layers that
were active; ``namespaces="require"`` refuses to run without namespaces. See docs/sandbox.md for
what is and is not isolated, and the measured start cost.

POSIX only. ``Sandbox.run`` may be called from any number of threads at once.

Why one module over 400 lines: the isolation boundary (what the child may do, how it is started,
limited, read and cleaned up) is kept in one file so that it can be reviewed as a whole; the
launcher that runs inside the child and the isolation layers are separate modules.
"""

from __future__ import annotations

import logging
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rewardgym.core import _sandbox_layers as layers_mod
from rewardgym.core.errors import ConfigError, did_you_mean

__all__ = ["NAMESPACE_MODES", "Sandbox", "SandboxConfig", "SandboxResult"]

log = logging.getLogger(__name__)

NAMESPACE_MODES = ("auto", "require", "off")
CODE_FILE = "main.py"
_CHUNK = 65_536
# The code's whole environment (plus HOME and TMPDIR, its working directory). One thread per math
# library: the process may not start threads (RLIMIT_NPROC), and OpenBLAS fails without this.
_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}
_MB = 1024 * 1024
_LAUNCHER = Path(__file__).with_name("_sandbox_launcher.py")
_UNSHARE_SIGKILL = "unshare: sigprocmask unblock failed: Invalid argument\n"


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and isolation of a :class:`Sandbox`.

    timeout_s: wall-clock seconds a run may take (start-up included) before it is killed.
    cpu_time_s: CPU seconds the code may use (``RLIMIT_CPU``, rounded up to whole seconds).
    memory_mb: address-space limit in MiB (``RLIMIT_AS``), or None for none.
    file_size_mb: the largest file the code may write, in MiB (``RLIMIT_FSIZE``; 0: none).
    max_output_bytes: bytes kept from stdout and from stderr each; more kills the run.
    namespaces: "auto" (use the namespaces that work here), "require" (raise
        :class:`~rewardgym.core.errors.ConfigError` when none works) or "off".
    run_as_uid: when the caller is root, the uid and gid the code runs as (default 65534,
        ``nobody``); None keeps root, which also turns off the process limit.
    audit_hook: install the audit hook (defence in depth; see the module docs).
    site_packages: let the code import the interpreter's installed packages (numpy, sympy, ...)
        by adding its ``purelib``/``platlib`` directories to ``sys.path`` (``.pth`` files are
        not processed). False: the standard library only.
    python: the interpreter to run, or None for this one (``sys.executable``).
    """

    timeout_s: float = 10.0
    cpu_time_s: float = 10.0
    memory_mb: int | None = 1024
    file_size_mb: int = 16
    max_output_bytes: int = 65_536
    namespaces: str = "auto"
    run_as_uid: int | None = 65534
    audit_hook: bool = True
    site_packages: bool = False
    python: str | None = None

    def __post_init__(self) -> None:
        for name, low in (("timeout_s", 0.0), ("cpu_time_s", 0.0)):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value <= low:
                raise ConfigError(f"sandbox {name} must be a number > 0, got {value!r}.")
        for name, low in (("file_size_mb", 0), ("max_output_bytes", 1)):
            _check_int(name, getattr(self, name), low)
        if self.memory_mb is not None:
            _check_int("memory_mb", self.memory_mb, 16, "an int >= 16 or None")
        if self.run_as_uid is not None:
            _check_int("run_as_uid", self.run_as_uid, 1, "an int >= 1 or None")
        if self.namespaces not in NAMESPACE_MODES:
            hint = did_you_mean(str(self.namespaces), NAMESPACE_MODES)
            raise ConfigError(
                f"sandbox namespaces must be one of {NAMESPACE_MODES}, got "
                f"{self.namespaces!r}.{hint}"
            )
        if self.python is not None and not os.access(self.python, os.X_OK):
            raise ConfigError(
                f"sandbox python must be an executable interpreter or None, got "
                f"{self.python!r} (not found or not executable)."
            )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int(name: str, value: object, low: int, expected: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(
            f"sandbox {name} must be {expected or f'an int >= {low}'}, got {value!r}."
        )


@dataclass(frozen=True)
class SandboxResult:
    """What one run did.

    ok: the code exited with status 0 within every limit and its output was not cut.
    exit_code: the process's exit status; negative: killed by that signal (``-9``: SIGKILL).
    stdout, stderr: what the code wrote (decoded as UTF-8, undecodable bytes replaced), at most
        ``max_output_bytes`` of each.
    timed_out: the wall-time limit was hit (``killed_reason == "wall_time"``).
    killed_reason: why the run ended early or failed on a limit, else None: "wall_time",
        "cpu_time", "output" (more output than ``max_output_bytes``), "memory" (a MemoryError
        ended it), "file_size" (a write went past ``file_size_mb``), "blocked" (the audit hook
        refused an operation and the code did not handle it) or "signal:<NAME>". "memory",
        "file_size" and "blocked" are read from the last line of stderr.
    truncated: stdout or stderr was cut at ``max_output_bytes``.
    duration_s: wall-clock seconds from starting the process to reaping it.
    isolation: the layers that were active (names documented in docs/sandbox.md).
    """

    ok: bool
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    killed_reason: str | None
    truncated: bool
    duration_s: float
    isolation: tuple[str, ...]


class Sandbox:
    """Runs code strings in fresh, limited processes; see the module docs.

    ``Sandbox(config).run(code)`` never raises for anything the code does; it raises
    ``OSError`` only when the process cannot be started at all (for example on Windows).
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config if config is not None else SandboxConfig()
        if not isinstance(self.config, SandboxConfig):
            raise TypeError(f"Sandbox needs a SandboxConfig, got {type(self.config).__name__}")
        if os.name != "posix":
            raise OSError(f"The sandbox needs a POSIX system (Linux, macOS), not {os.name!r}.")
        self.python = self.config.python or sys.executable
        if not self.python:
            raise OSError("sys.executable is empty; pass SandboxConfig(python=...).")
        self._as_root = os.geteuid() == 0
        self._paths = layers_mod.site_paths(self.python) if self.config.site_packages else ()
        self._layers = layers_mod.probe(
            self.python, self._as_root, self.config.run_as_uid, self._paths
        )
        use_ns = self.config.namespaces != "off" and bool(self._layers.unshare)
        if self.config.namespaces == "require" and not use_ns:
            raise ConfigError(
                "sandbox namespaces='require', but no namespace works here: "
                + "; ".join(self._layers.notes)
                + ". Use namespaces='auto' to run without them."
            )
        self._use_ns = use_ns
        drop = self._layers.drop
        self._owner = self.config.run_as_uid if drop else None  # chown the working directory
        self._launcher_uid = self.config.run_as_uid if drop == "launcher" else None
        self._launcher = _LAUNCHER.read_text(encoding="utf-8")
        self.isolation = self._isolation()

    def _isolation(self) -> tuple[str, ...]:
        names = ["process", "empty_env", "temp_workdir", "rlimits"]
        drop = self._layers.drop
        if drop:
            names.append(
                "unprivileged_uid_read_all" if drop == "setpriv_read_all" else "unprivileged_uid"
            )
        if not self._as_root or drop:
            names.append("no_processes")
        if self._layers.setpriv:
            names.append("no_new_privs")
        if self._use_ns:
            names += self._layers.namespaces
        if self.config.audit_hook:
            names.append("audit_hook")
        return tuple(names)

    @property
    def notes(self) -> tuple[str, ...]:
        """Why layers the probe tried are not available here (empty when all are)."""
        return self._layers.notes

    def run(self, code: str) -> SandboxResult:
        """Run ``code`` as the ``__main__`` module of a fresh sandboxed interpreter."""
        if not isinstance(code, str):
            raise TypeError(f"Sandbox.run needs the code as a str, got {type(code).__name__}")
        workdir = tempfile.mkdtemp(prefix="rewardgym-sandbox-")
        try:
            self._prepare(workdir, code)
            return self._execute(workdir)
        finally:
            _remove(workdir)

    def _prepare(self, workdir: str, code: str) -> None:
        path = os.path.join(workdir, CODE_FILE)
        with open(path, "wb") as file:
            file.write(code.encode("utf-8", errors="replace"))
        if self._owner is not None:
            for target in (workdir, path):
                os.chown(target, self._owner, self._owner)

    def _argv(self) -> list[str]:
        c = self.config
        memory = 0 if c.memory_mb is None else c.memory_mb * _MB
        args = [
            f"code={CODE_FILE}",
            f"memory={memory}",
            f"cpu={math.ceil(c.cpu_time_s)}",
            f"fsize={c.file_size_mb * _MB}",
            f"uid={-1 if self._launcher_uid is None else self._launcher_uid}",
            f"audit={int(c.audit_hook)}",
        ] + [f"path={p}" for p in self._paths]
        return layers_mod.command(
            self._layers, self.python, self._launcher, args, use_namespaces=self._use_ns
        )

    def _execute(self, workdir: str) -> SandboxResult:
        env = {**_ENV, "HOME": workdir, "TMPDIR": workdir}
        start = time.monotonic()
        proc = subprocess.Popen(
            self._argv(), cwd=workdir, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
            start_new_session=True,
        )  # fmt: skip
        deadline = start + self.config.timeout_s
        try:
            out, err, stop = _collect(proc, deadline, self.config.max_output_bytes)
            if stop is None and not _wait_exit(proc.pid, deadline):
                stop = "wall_time"
        finally:
            _kill_group(proc.pid)
            status, cpu = _reap(proc)
        return self._result(status, cpu, out, err, stop, time.monotonic() - start)

    def _result(
        self, status: int, cpu: float, out: bytes, err: bytes, stop: str | None, duration: float
    ) -> SandboxResult:
        stderr = err.decode("utf-8", errors="replace")
        if self._use_ns and status == 1 and stderr.endswith(_UNSHARE_SIGKILL):
            # util-linux's unshare cannot re-raise SIGKILL on itself after its child died of it,
            # and exits 1 with this message instead (seen in util-linux 2.38).
            status, stderr = -signal.SIGKILL, stderr[: -len(_UNSHARE_SIGKILL)]
        reason = stop or _reason(status, cpu, math.ceil(self.config.cpu_time_s), stderr)
        return SandboxResult(
            ok=status == 0 and reason is None,
            exit_code=status,
            stdout=out.decode("utf-8", errors="replace"),
            stderr=stderr,
            timed_out=stop == "wall_time",
            killed_reason=reason,
            truncated=stop == "output",
            duration_s=duration,
            isolation=self.isolation,
        )


# -- the process ---------------------------------------------------------------------------------
def _collect(
    proc: subprocess.Popen[bytes], deadline: float, cap: int
) -> tuple[bytes, bytes, str | None]:
    """Read stdout and stderr until both close, the deadline passes ("wall_time") or one passes
    ``cap`` bytes ("output")."""
    fds = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}  # type: ignore[union-attr]
    out_fd, err_fd = list(fds)
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    open_fds, stop = set(fds), None
    while open_fds and stop is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            stop = "wall_time"
            break
        for fd, _ in poller.poll(max(1, math.ceil(remaining * 1000))):
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                poller.unregister(fd)
                open_fds.discard(fd)
                continue
            buf = fds[fd]
            room = cap - len(buf)
            buf += chunk[:room]
            if len(chunk) > room:
                stop = "output"
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    return bytes(fds[out_fd]), bytes(fds[err_fd]), stop


def _wait_exit(pid: int, deadline: float) -> bool:
    """Wait (without reaping, so that its process group can still be killed safely) until
    ``pid`` has exited; False if the deadline passes first. Without ``os.waitid`` (macOS) the
    process is taken as exiting once its pipes are closed."""
    if not hasattr(os, "waitid"):
        return True
    pause = 0.0005
    while True:
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        if info is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.01)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


def _reap(proc: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Reap the process; its exit code (negative: killed by that signal) and the CPU seconds it
    and the processes it waited for used."""
    _, raw, usage = os.wait4(proc.pid, 0)
    status = os.waitstatus_to_exitcode(raw)
    proc.returncode = status
    return status, usage.ru_utime + usage.ru_stime


def _reason(status: int, cpu: float, cpu_limit: int, stderr: str) -> str | None:
    if status < 0:
        sig = -status
        # RLIMIT_CPU kills with SIGKILL (soft == hard). The rusage is sampled at clock ticks and
        # reads up to ~10% low under load, hence the margin.
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= 0.8 * cpu_limit):
            return "cpu_time"
        if sig == signal.SIGXFSZ:
            return "file_size"
        try:
            return f"signal:{signal.Signals(sig).name}"
        except ValueError:
            return f"signal:{sig}"
    if status == 0:
        return None
    last = stderr.rstrip().rpartition("\n")[2]
    if last.startswith("MemoryError"):
        return "memory"
    if last.startswith("OSError: [Errno 27]"):
        return "file_size"
    if last.startswith("PermissionError: sandbox:"):
        return "blocked"
    return None


# -- helpers -------------------------------------------------------------------------------------
def _remove(workdir: str) -> None:
    def retry(function, path, _exc) -> None:  # noqa: ANN001
        os.chmod(os.path.dirname(path), 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
            shutil.rmtree(path, ignore_errors=True)
        else:
            function(path)

    try:
        if sys.version_info >= (3, 12):
            shutil.rmtree(workdir, onexc=retry)
        else:
            shutil.rmtree(workdir, onerror=retry)
    except OSError as exc:
        log.warning("Could not delete the sandbox working directory %s: %s", workdir, exc)
