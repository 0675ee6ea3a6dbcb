"""Which isolation layers this machine allows, and the command line that applies them (private
to ``sandbox``).

:func:`probe` tries, once per process and interpreter, the ``unshare`` (util-linux) flag sets
from the strictest down and keeps the first that starts the interpreter; then whether
``setpriv --no-new-privs`` works. :func:`command` builds the argv of one sandboxed run.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LAYER_DOCS", "Layers", "command", "probe", "site_paths"]

PROBE_TIMEOUT_S = 10.0
# Namespace flag sets, strictest first. Each is (flags, layer names). ``--kill-child`` makes the
# sandboxed process die with ``unshare``; ``--mount-proc`` gives it a /proc of its own pid space.
_NS_CANDIDATES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (
        ("--net", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc"),
        ("net_ns", "pid_ns", "private_proc"),
    ),
    (("--net", "--pid", "--fork", "--kill-child"), ("net_ns", "pid_ns")),
    (("--net",), ("net_ns",)),
)
_USER_NS = ("--user", "--map-root-user")

LAYER_DOCS = {
    "process": "a fresh interpreter per run, in its own session, killed as a group",
    "empty_env": "no inherited environment variables",
    "temp_workdir": "a fresh temporary working directory, deleted after the run",
    "rlimits": "RLIMIT_AS, RLIMIT_CPU, RLIMIT_FSIZE and RLIMIT_CORE=0",
    "unprivileged_uid": "the code runs as an unprivileged uid/gid (the caller is root)",
    "unprivileged_uid_read_all": "as unprivileged_uid, but keeping CAP_DAC_READ_SEARCH (it may "
    "read any file) because the uid cannot read the interpreter's own files",
    "no_processes": "RLIMIT_NPROC=0 is enforced (no fork, no threads)",
    "no_new_privs": "PR_SET_NO_NEW_PRIVS: set-uid programs gain nothing",
    "user_ns": "a user namespace (the caller is not root)",
    "net_ns": "a network namespace with no interfaces up: no network",
    "pid_ns": "a pid namespace: no other process is visible or signalable",
    "private_proc": "/proc shows only the sandbox's own processes",
    "audit_hook": "a Python audit hook refusing processes, sockets and writes outside the "
    "working directory (defence in depth, bypassable through ctypes)",
}


@dataclass(frozen=True)
class Layers:
    """What :func:`probe` found.

    unshare: the ``unshare`` prefix (empty when no namespace works); namespaces: the layers
    it gives; setpriv: the ``setpriv`` prefix (uid drop and/or no_new_privs; empty when
    unavailable); drop: how root is dropped: "setpriv", "setpriv_read_all" (the interpreter is
    not readable by the uid, so CAP_DAC_READ_SEARCH is kept), "launcher" (no setpriv: the
    launcher calls setuid after start-up) or "" (no drop); notes: why a layer is missing.
    """

    unshare: tuple[str, ...]
    namespaces: tuple[str, ...]
    setpriv: tuple[str, ...]
    drop: str
    notes: tuple[str, ...]


def _run(argv: list[str]) -> tuple[str, str]:
    """``(stdout, "")`` when ``argv`` exits 0 with an empty environment, else ``("", why)``."""
    try:
        done = subprocess.run(
            argv, env={}, stdin=subprocess.DEVNULL, capture_output=True, timeout=PROBE_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "", f"{type(exc).__name__}: {exc}"
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return "", f"exit status {done.returncode}: {tail[0]}"
    return done.stdout.decode(errors="replace"), ""


def _which(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for d in ("/usr/bin", "/bin") if (p := Path(d, name)).is_file()), None
    )


# Prints the import path and lists every directory on it and in argv: the same output as root
# and as the unprivileged uid means the uid sees the same interpreter.
_SEES = (
    "import os, sys\n"
    "print(sys.prefix, sys.path)\n"
    "for p in sys.path + sys.argv[1:]:\n"
    "    os.path.isdir(p) and print(p, len(os.listdir(p)))\n"
)


def _namespaces(
    python: str, as_root: bool, notes: list[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    found = _which("unshare") if os.name == "posix" else None
    if found is None:
        notes.append("no namespaces: the 'unshare' program (util-linux) was not found")
        return (), ()
    user = () if as_root else _USER_NS
    for flags, layers in _NS_CANDIDATES:
        _, why = _run([found, *user, *flags, python, "-I", "-S", "-B", "-c", "pass"])
        if not why:
            return (found, *user, *flags), (("user_ns",) if user else ()) + layers
        notes.append(f"unshare {' '.join(user + flags)} failed ({why})")
    return (), ()


def _setpriv(
    python: str, uid: int | None, paths: tuple[str, ...], notes: list[str]
) -> tuple[tuple[str, ...], str]:
    found = _which("setpriv") if os.name == "posix" else None
    if found is None:
        notes.append("no no_new_privs: the 'setpriv' program (util-linux) was not found")
        return (), "launcher" if uid is not None else ""
    check = [python, "-I", "-S", "-B", "-c", _SEES, *paths]
    nnp = (found, "--no-new-privs")
    if uid is None:
        _, why = _run([*nnp, *check])
        if why:
            notes.append(f"setpriv --no-new-privs failed ({why})")
            return (), ""
        return nnp, ""
    expected, why = _run(check)
    if why:
        raise OSError(f"The sandbox interpreter {python} does not start: {why}")
    drop = (*nnp, f"--reuid={uid}", f"--regid={uid}", "--clear-groups")
    read_all = ("--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search")
    seen, why = _run([*drop, *check])
    if not why and seen == expected:
        return drop, "setpriv"
    plain = why or "it sees another sys.path"
    seen, why = _run([*drop, *read_all, *check])
    if not why and seen == expected:
        notes.append(
            f"uid {uid} cannot read the interpreter's files ({plain}), so it keeps "
            "CAP_DAC_READ_SEARCH: the code may read any file"
        )
        return (*drop, *read_all), "setpriv_read_all"
    notes.append(
        f"uid {uid} cannot run the interpreter ({plain}; with CAP_DAC_READ_SEARCH: "
        f"{why or 'it sees another sys.path'}); the code runs as root, without the process limit"
    )
    return nnp, ""


@functools.lru_cache(maxsize=8)
def probe(python: str, as_root: bool, uid: int | None, paths: tuple[str, ...]) -> Layers:
    """Find the strictest namespace set, and how to drop root to ``uid`` (when ``as_root``)
    so that the interpreter ``python`` still sees its files and ``paths``."""
    notes: list[str] = []
    unshare, names = _namespaces(python, as_root, notes)
    setpriv, drop = _setpriv(python, uid if as_root else None, paths, notes)
    return Layers(unshare, names, setpriv, drop, tuple(notes))


def command(
    layers: Layers, python: str, launcher: str, args: list[str], *, use_namespaces: bool
) -> list[str]:
    """The argv of one run: ``[unshare ...] [setpriv ...] python -I -S -B -u -c <launcher> args``."""
    prefix = list(layers.unshare) if use_namespaces else []
    return [*prefix, *layers.setpriv, python, "-I", "-S", "-B", "-u", "-c", launcher, *args]


@functools.lru_cache(maxsize=8)
def site_paths(python: str) -> tuple[str, ...]:
    """The ``purelib`` and ``platlib`` directories of ``python`` (asked once per interpreter)."""
    code = "import sysconfig; print(sysconfig.get_path('purelib')); print(sysconfig.get_path('platlib'))"
    done = subprocess.run(
        [python, "-I", "-S", "-c", code], env={}, capture_output=True, timeout=PROBE_TIMEOUT_S
    )
    if done.returncode != 0:
        raise OSError(
            f"Could not ask {python} for its site-packages directories (exit status "
            f"{done.returncode}): {done.stderr.decode(errors='replace').strip()[-500:]}"
        )
    paths = dict.fromkeys(line for line in done.stdout.decode().splitlines() if line)
    return tuple(paths)
