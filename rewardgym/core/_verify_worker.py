"""The verifier worker process (private to ``verify``): the code that runs in the worker.

A worker is a fresh interpreter, ``python -m rewardgym.core._verify_worker --memory-mb N``, started
by :class:`rewardgym.core._verify_process.WorkerProcess`, the parent's handle on it. Both sides
use this module's framing (:data:`HEADER`, :func:`encode`). The worker talks to the parent over its
stdin/stdout pipes in frames: an 8-byte little-endian length, then a pickle of a tuple. Right at
start the worker moves those pipes to private descriptors and points fd 0 at ``/dev/null`` and
fd 1 at stderr, so a verifier that prints cannot corrupt the protocol.

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

Every worker start imports this module, so it imports only the standard library modules it needs
and :mod:`rewardgym.core.types`.
"""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import struct
import sys
from typing import Any

from rewardgym.core.types import Verdict

HEADER = struct.Struct("<Q")
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_MAX_MESSAGE = 2000  # characters of an exception message sent back in a reason
_CPU_SLACK_S = 10  # CPU seconds a call may use beyond twice its timeout before RLIMIT_CPU fires


def encode(message: tuple) -> bytes:
    """One frame: length header + pickle. Raises whatever ``pickle.dumps`` raises."""
    body = pickle.dumps(message, protocol=_PROTOCOL)
    return HEADER.pack(len(body)) + body


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
            (size,) = HEADER.unpack(_read_exact(inp, HEADER.size))
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


if __name__ == "__main__":
    sys.exit(main())
