"""The parent's handle on one verifier worker process (private to ``verify``).

:class:`WorkerProcess` starts a worker (``python -m rewardgym.core._verify_worker``, whose
docstring describes the protocol), sends it requests and reads its replies within a deadline,
loads verifiers into it, and kills it together with every process it started. A worker that ends
before replying raises :class:`WorkerGone`, one that misses a deadline :class:`WorkerTimeout`;
:class:`~rewardgym.core.verify.VerifierPool` turns both into ``None`` verdicts.
"""

from __future__ import annotations

import math
import os
import pickle
import select
import signal
import subprocess
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from rewardgym.core._verify_worker import HEADER, encode
from rewardgym.core.errors import VerifierPoolError

_WORKER_CACHE = 16  # verifiers each worker keeps loaded
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


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


def start_failure(exc: BaseException, start_timeout: float) -> str:
    """The message for a worker that could not start (``exc`` from :meth:`WorkerProcess.ensure_ready`)."""
    if isinstance(exc, WorkerTimeout):
        why = f"it did not report ready within start_timeout={start_timeout:g}s"
    elif isinstance(exc, WorkerGone):
        why = f"{exc} during start-up (its error output, if any, is on stderr)"
    else:
        why = str(exc)
    return f"A verifier worker process could not start: {why}."


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

    def load(self, key: int, data: bytes, name: str) -> None:
        """Make the worker hold the pickled verifier ``data`` under ``key``.

        The worker must be ready. It keeps the last ``_WORKER_CACHE`` verifiers it used; loading
        one more forgets the oldest. Loading is bounded by ``start_timeout``. Raises
        :class:`VerifierPoolError` (named after the verifier class ``name``) if the worker fails,
        is too slow (it is then killed), or cannot unpickle the verifier.
        """
        if key in self.loaded:
            self.loaded.move_to_end(key)
            return
        drop = []
        while len(self.loaded) >= _WORKER_CACHE:
            drop.append(self.loaded.popitem(last=False)[0])
        frame = self.load_frame(key, data, drop)
        try:
            reply = self.request(frame, time.monotonic() + self.start_timeout)
        except (WorkerGone, WorkerTimeout) as exc:
            self.kill()
            why = str(exc) or f"it took longer than start_timeout={self.start_timeout:g}s"
            raise VerifierPoolError(
                f"Loading verifier {name} into a worker process failed: {why}. Loading "
                "imports the verifier's modules; check that they import in a fresh interpreter."
            ) from exc
        if reply[0] != "loaded":
            raise VerifierPoolError(
                f"Verifier {name} could not be loaded in a worker process: {reply[1]}. "
                "Workers import a verifier's class by its module path, so define it at the top "
                "level of an importable module (not in a script's __main__, a notebook or a "
                "function) and make sure every module it uses is importable from sys.path."
            )
        self.loaded[key] = data

    def call(self, key: int, response: str, task: Any, timeout: float) -> tuple:
        """Run the verifier loaded under ``key`` on one item; the worker's reply within ``timeout``.

        Raises :class:`VerifierPoolError` if the task cannot be pickled, and
        :class:`WorkerTimeout` / :class:`WorkerGone` as :meth:`request` does.
        """
        try:
            frame = encode(("call", key, response, task, timeout))
        except Exception as exc:
            raise VerifierPoolError(
                f"The task could not be pickled to send it to a verifier worker "
                f"({type(exc).__name__}: {exc}). Keep Task.metadata to plain picklable data."
            ) from exc
        return self.request(frame, time.monotonic() + timeout)

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
        need = HEADER.size
        while True:
            if need == HEADER.size and len(buf) >= need:
                need += HEADER.unpack_from(buf)[0]
            if len(buf) >= need and need > HEADER.size:
                break
            self._wait(self._rpoll, deadline)
            chunk = os.read(self._rfd, max(need - len(buf), 1 << 16))
            if not chunk:
                raise WorkerGone(describe_exit(self._wait_exit()))
            buf += chunk
        self._buf = buf[need:]
        return pickle.loads(memoryview(buf)[HEADER.size : need])

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
