"""The verifier worker process, and the parent's handle on it (private to ``verify``).

A worker is a fresh interpreter, ``python -m rewardgym.core._verify_worker --memory-mb N``.
It talks to the parent over its stdin/stdout pipes in frames: an 8-byte little-endian length, then
a pickle of a tuple. Right at start the worker moves those pipes to private descriptors and points
fd 0 at ``/dev/null`` and fd 1 at stderr, so a verifier that prints cannot corrupt the protocol.

Messages (parent -> worker, worker -> parent)::

    (start-up)                                   ("ready", pid, note) | ("failed", why)
    ("load", key, verifier_pickle, sys_path, drop_keys, seconds)
                                                 ("loaded", key) | ("load_failed", why)
    ("call", key, response, task, timeout)       ("verdict", Verdict) | ("error", type, message)
                                                 | ("bad_return", what) | ("memory", message)
    (any request the worker cannot unpickle)     ("bad_request", why)

A worker serves one request at a time and exits at end of input. It limits its own address space
(``RLIMIT_AS``) to ``--memory-mb``, writes no core files, ignores SIGINT (the parent decides), and
before each request caps its CPU time (``RLIMIT_CPU``) a little above the request's time limit,
so that a worker orphaned by a parent killed mid-call cannot spin forever.
"""

from __future__ import annotations

import importlib
import math
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from rewardgym.core.types import Verdict

_HEADER = struct.Struct("<Q")
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_MAX_MESSAGE = 2000  # characters of an exception message sent back in a reason
_CPU_SLACK_S = 10  # CPU seconds a call may use beyond twice its timeout before RLIMIT_CPU fires
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def encode(message: tuple) -> bytes:
    """One frame: length header + pickle. Raises whatever ``pickle.dumps`` raises."""
    body = pickle.dumps(message, protocol=_PROTOCOL)
    return _HEADER.pack(len(body)) + body


# --------------------------------------------------------------------------- worker side


def _read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _take_protocol_fds() -> tuple[int, int]:
    """Keep the pipes for the protocol; fd 0 becomes /dev/null and fd 1 a copy of stderr."""
    inp, out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    return inp, out


def _apply_limits(memory_mb: int) -> tuple[str, str]:
    """Set RLIMIT_AS / RLIMIT_CORE. Returns (fatal problem or "", note for the parent or "")."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import resource
    except ImportError:
        return "", "" if not memory_mb else "the resource module is not available on this platform"
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    if not memory_mb:
        return "", ""
    limit = memory_mb << 20
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    except (ValueError, OSError) as exc:
        return "", f"setrlimit(RLIMIT_AS) failed: {exc}"
    used = _address_space_bytes()
    if used is not None and used >= limit * 0.9:
        return (
            f"memory_mb={memory_mb} leaves no room for verifiers: a worker process already uses "
            f"{used >> 20} MB of address space after start-up. Raise memory_mb (or pass None).",
            "",
        )
    return "", ""


def _address_space_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _arm_cpu_limit(timeout: float) -> None:
    """Cap this process's CPU time a little past what the call may use (see module docstring)."""
    try:
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(usage.ru_utime + usage.ru_stime + 2 * timeout) + _CPU_SLACK_S
        hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    except (ImportError, ValueError, OSError):
        pass


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # an exception whose __str__ itself fails
        text = "<unprintable>"
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "... (truncated)"


def _type_name(obj_type: type) -> str:
    module = obj_type.__module__
    return obj_type.__qualname__ if module == "builtins" else f"{module}.{obj_type.__qualname__}"


def _load(verifiers: dict[int, Any], key, data: bytes, path: list[str], drop, seconds) -> tuple:
    for old in drop:
        verifiers.pop(old, None)
    sys.path[:] = path
    _arm_cpu_limit(seconds)
    importlib.invalidate_caches()
    try:
        verifiers[key] = pickle.loads(data)
    except BaseException as exc:  # noqa: BLE001 - anything unpickling raises is reported
        return ("load_failed", f"{_type_name(type(exc))}: {_describe(exc)}")
    return ("loaded", key)


def _call(verifier: Any, response: str, task: Any, timeout: float) -> tuple:
    _arm_cpu_limit(timeout)
    try:
        result = verifier.verify(response, task)
    except MemoryError as exc:
        return ("memory", _describe(exc) or "MemoryError")
    except BaseException as exc:  # noqa: BLE001 - SystemExit from a verifier is a verifier bug too
        return ("error", _type_name(type(exc)), _describe(exc))
    if not isinstance(result, Verdict):
        text = repr(result)
        return ("bad_return", f"{_type_name(type(result))} ({text[:200]})")
    return ("verdict", result)


def _handle(verifiers: dict[int, Any], frame: bytes) -> tuple:
    try:
        message = pickle.loads(frame)
    except MemoryError as exc:
        return ("memory", _describe(exc) or "MemoryError while reading the request")
    except BaseException as exc:  # noqa: BLE001
        return ("bad_request", f"{_type_name(type(exc))}: {_describe(exc)}")
    if message[0] == "load":
        return _load(verifiers, *message[1:])
    _, key, response, task, timeout = message
    verifier = verifiers.get(key)
    if verifier is None:
        return ("bad_request", f"no verifier is loaded under key {key}")
    return _call(verifier, response, task, timeout)


def _reply(out: int, reply: tuple) -> None:
    try:
        data = encode(reply)
    except MemoryError as exc:
        data = encode(("memory", _describe(exc) or "MemoryError while sending the verdict"))
    except BaseException as exc:  # noqa: BLE001 - e.g. a Verdict subclass with an unpicklable field
        data = encode(("error", _type_name(type(exc)), f"the verdict could not be pickled: {exc}"))
    _write_all(out, data)


def _serve(inp: int, out: int) -> None:
    verifiers: dict[int, Any] = {}
    while True:
        try:
            (size,) = _HEADER.unpack(_read_exact(inp, _HEADER.size))
            frame = _read_exact(inp, size)
        except EOFError:
            return
        _reply(out, _handle(verifiers, frame))
        del frame


def main(argv: list[str] | None = None) -> int:
    """Entry point of a worker process."""
    argv = sys.argv[1:] if argv is None else argv
    memory_mb = int(argv[argv.index("--memory-mb") + 1]) if "--memory-mb" in argv else 0
    inp, out = _take_protocol_fds()
    problem, note = _apply_limits(memory_mb)
    if problem:
        _write_all(out, encode(("failed", problem)))
        return 1
    _write_all(out, encode(("ready", os.getpid(), note)))
    try:
        _serve(inp, out)
    except BrokenPipeError:  # the parent went away
        return 0
    return 0


# --------------------------------------------------------------------------- parent side


class WorkerGone(Exception):
    """The worker process ended (or closed its pipe) before replying."""


class WorkerTimeout(Exception):
    """The deadline passed before the worker replied."""


def describe_exit(returncode: int | None) -> str:
    """How a worker ended, for a verdict's reason."""
    if returncode is None:
        return "the worker stopped answering and could not be reaped"
    if returncode >= 0:
        return f"the worker exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    hint = {
        "SIGSEGV": " (segmentation fault)",
        "SIGKILL": " (out of memory, or killed from outside)",
        "SIGXCPU": " (CPU time limit)",
        "SIGABRT": " (aborted)",
    }.get(name, "")
    return f"the worker was killed by {name}{hint}"


def worker_env() -> dict[str, str]:
    """The worker's environment: the parent's, its import path, one thread per math library."""
    env = dict(os.environ)
    path = [os.getcwd() if p == "" else p for p in sys.path]
    env["PYTHONPATH"] = os.pathsep.join(path)
    env.pop("PYTHONINSPECT", None)
    for name in _THREAD_VARS:
        env[name] = "1"
    return env


class WorkerProcess:
    """The parent's handle on one worker process.

    Not thread-safe: the pool lends a handle to one caller at a time. ``loaded`` mirrors the
    verifier keys the worker holds (oldest first).
    """

    def __init__(self, memory_mb: int | None, start_timeout: float) -> None:
        self.memory_mb, self.start_timeout = memory_mb, start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready = False
        self.note = ""
        self.loaded: OrderedDict[int, bytes] = OrderedDict()  # key -> pickled verifier
        self._pending: list[tuple[int, bytes]] = []  # loads sent at spawn, replies unread
        self._unsent = b""
        self._buf = bytearray()
        self._spawned = 0
        self.spawned_at = math.inf  # time.monotonic() of the last spawn

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def spawn(self) -> bool:
        """Start a fresh process without waiting for it; True if it replaces an earlier one.

        The verifiers the previous process held are sent along at once, so the new process
        loads them while it is otherwise idle.
        """
        if not sys.executable:
            raise OSError("sys.executable is empty, so no worker interpreter can be started")
        previous = list(self.loaded.items())
        self.kill()
        cmd = [sys.executable, "-m", "rewardgym.core._verify_worker"]
        cmd += ["--memory-mb", str(self.memory_mb or 0)]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
            close_fds=True, start_new_session=True, env=worker_env(),
        )  # fmt: skip
        self._rfd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        self._wfd = self.proc.stdin.fileno()  # type: ignore[union-attr]
        os.set_blocking(self._wfd, False)
        self._rpoll, self._wpoll = select.poll(), select.poll()
        self._rpoll.register(self._rfd, select.POLLIN)
        self._wpoll.register(self._wfd, select.POLLOUT)
        self._spawned += 1
        self.spawned_at = time.monotonic()
        if previous:
            self._pending = previous
            self._unsent = b"".join(self.load_frame(k, data) for k, data in previous)
            try:
                self._unsent = self._unsent[os.write(self._wfd, self._unsent) :]
            except OSError:  # pipe full, or the process died at once: ensure_ready sorts it out
                pass
        return self._spawned > 1

    def load_frame(self, key: int, data: bytes, drop: Sequence[int] = ()) -> bytes:
        """The request that loads a pickled verifier under ``key`` (and forgets ``drop``)."""
        path = [os.getcwd() if p == "" else p for p in sys.path]
        return encode(("load", key, data, path, list(drop), self.start_timeout))

    def ensure_ready(self) -> bool:
        """Start the worker if needed and wait for its hello. Returns True if it was a restart.

        Raises ``WorkerGone``/``WorkerTimeout`` (with the worker killed) or ``RuntimeError`` with
        the worker's own explanation when it refuses to start.
        """
        restarted = False
        if self.proc is None or self.proc.poll() is not None:
            restarted = self.spawn()
        if not self.ready:
            deadline = time.monotonic() + self.start_timeout
            try:
                reply = self.recv(deadline)
                if reply[0] == "ready":
                    self.send(self._unsent, deadline)
                    for key, data in self._pending:
                        if self.recv(deadline)[0] == "loaded":
                            self.loaded[key] = data
            except (WorkerGone, WorkerTimeout):
                self.kill()
                raise
            if reply[0] != "ready":
                self.kill()
                raise RuntimeError(reply[1])
            self.ready, self.note = True, reply[2]
            self._pending, self._unsent = [], b""
        return restarted

    def request(self, frame: bytes, deadline: float) -> tuple:
        """Send one encoded request and return the reply, both by ``deadline``."""
        self.send(frame, deadline)
        return self.recv(deadline)

    def send(self, frame: bytes, deadline: float) -> None:
        view = memoryview(frame)
        while view:
            try:
                view = view[os.write(self._wfd, view) :]
            except BlockingIOError:
                pass
            except OSError as exc:  # EPIPE: the worker is gone
                raise WorkerGone(describe_exit(self._wait_exit())) from exc
            if view:
                self._wait(self._wpoll, deadline)

    def recv(self, deadline: float) -> tuple:
        buf = self._buf  # bytes read past the previous frame (replies to pipelined loads)
        need = _HEADER.size
        while True:
            if need == _HEADER.size and len(buf) >= need:
                need += _HEADER.unpack_from(buf)[0]
            if len(buf) >= need and need > _HEADER.size:
                break
            self._wait(self._rpoll, deadline)
            chunk = os.read(self._rfd, max(need - len(buf), 1 << 16))
            if not chunk:
                raise WorkerGone(describe_exit(self._wait_exit()))
            buf += chunk
        self._buf = buf[need:]
        return pickle.loads(memoryview(buf)[_HEADER.size : need])

    def _wait(self, poller: select.poll, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(math.ceil(left * 1000)):
            raise WorkerTimeout

    def _wait_exit(self) -> int | None:
        """After end-of-file: end what the worker started, reap it, return its exit status.

        The group is killed before the worker is reaped, so its pid cannot have been reused. A
        worker that exited on its own keeps its exit status (a signal to a dying process does
        not change it).
        """
        self.signal_kill()
        try:
            return self.proc.wait(timeout=5.0)  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            return None

    def signal_kill(self) -> None:
        """SIGKILL the worker's process group without reaping or closing anything.

        Safe from another thread while the owner is blocked on the pipes: the owner then sees EOF.
        """
        proc = self.proc
        if proc is not None and proc.returncode is None:
            try:  # the worker leads its own session, so this also ends processes it started
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                try:
                    proc.kill()
                except OSError:
                    pass

    def kill(self) -> None:
        """SIGKILL the worker (and anything it started), reap it and close its pipes."""
        proc = self.proc
        if proc is None:
            return
        self.signal_kill()
        try:
            proc.wait(timeout=10.0)
        except subprocess.TimeoutExpired:  # stuck in the kernel; the OS reaps it later
            pass
        for pipe in (proc.stdin, proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        self.proc, self.ready, self.spawned_at = None, False, math.inf
        self.loaded.clear()
        self._pending, self._unsent, self._buf = [], b"", bytearray()


if __name__ == "__main__":
    sys.exit(main())
