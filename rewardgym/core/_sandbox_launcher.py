"""The program that runs first in every sandbox process (private to ``sandbox``).

It is never imported by rewardgym: :mod:`rewardgym.core.sandbox` reads this file's text and
passes it to ``python -I -S -B -u -c``, so it runs in a fresh interpreter before any user code,
imports nothing outside the standard library, and works whoever owns the package files.

Arguments: ``key=value`` words (all required unless noted)::

    code=main.py         the user's code, a file in the working directory (the cwd)
    memory=<bytes>       RLIMIT_AS, 0 for none
    cpu=<seconds>        RLIMIT_CPU (added to the CPU time already spent), 0 for none
    fsize=<bytes>        RLIMIT_FSIZE
    uid=<uid>            drop to this uid and gid (only when started as root), -1 to stay
    audit=0|1            install the audit hook
    path=<dir>           (repeatable, optional) appended to sys.path

Order: read the code, extend ``sys.path``, set the resource limits, drop root, forbid new
processes (``RLIMIT_NPROC`` 0, which also forbids threads), install the audit hook, run the code
as ``__main__``. An uncaught exception prints its traceback without this launcher's frame and
exits with status 1, as ``python main.py`` would.
"""

import os
import resource
import sys

BLOCK_ALWAYS = frozenset(
    (
        "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.system",
        "os.startfile", "subprocess.Popen", "pty.spawn",
        "socket.__new__", "socket.bind", "socket.connect", "socket.sendto", "socket.sendmsg",
        "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
        "socket.gethostbyname_ex", "socket.getnameinfo",
    )
)  # fmt: skip
# Events whose first argument is a path that must lie inside the working directory.
PATH_EVENTS = frozenset(
    (
        "os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.utime",
        "os.mkfifo", "os.mknod", "os.setxattr", "os.removexattr", "os.chflags", "os.lchflags",
    )
)  # fmt: skip
# Events whose first two arguments are (source, destination) paths.
TWO_PATH_EVENTS = {"os.rename": (0, 1), "os.link": (0, 1), "os.symlink": (1,)}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def parse(argv):
    options, paths = {}, []
    for word in argv:
        key, _, value = word.partition("=")
        if key == "path":
            paths.append(value)
        else:
            options[key] = value
    return options, paths


def set_limits(memory, cpu, fsize):
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    if cpu > 0:
        used = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(used.ru_utime + used.ru_stime) + cpu
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft))  # soft == hard: SIGKILL at once


def drop_root(uid):
    if uid >= 0 and os.geteuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))


def make_hook(workdir):
    """The audit hook. Everything it uses is bound here, so that code that rebinds this
    module's globals or the builtins does not change what it checks."""
    prefix = workdir.rstrip(os.sep) + os.sep
    realpath, fspath, fsdecode, getpid = os.path.realpath, os.fspath, os.fsdecode, os.getpid
    block, path_events, two_path_events = BLOCK_ALWAYS, PATH_EVENTS, TWO_PATH_EVENTS
    write_flags, error, as_bytes, as_int = WRITE_FLAGS, PermissionError, bytes, int
    kill_events = ("os.kill", "os.killpg", "signal.pthread_kill")
    is_a = isinstance

    def inside(path):
        if path is None or is_a(path, as_int):
            return True  # a file descriptor: its file was checked when it was opened
        path = fspath(path)
        full = realpath(fsdecode(path) if is_a(path, as_bytes) else path)
        return full == workdir or full.startswith(prefix)

    def refuse(event, detail):
        raise error(f"sandbox: {event} is not allowed{detail}")

    def hook(event, args):
        if event in block:
            refuse(event, "")
        elif event == "open":
            if args[2] & write_flags and not inside(args[0]):
                refuse("writing", f" outside the working directory: {args[0]!r}")
        elif event in path_events:
            if not inside(args[0]):
                refuse(event, f" outside the working directory: {args[0]!r}")
        elif event in two_path_events:
            for i in two_path_events[event]:
                if not inside(args[i]):
                    refuse(event, f" outside the working directory: {args[i]!r}")
        elif event in kill_events:
            if event != "os.kill" or args[0] not in (0, getpid()):
                refuse(event, " (only the process itself may be signalled)")

    return hook


def users_frames(tb):
    """The traceback without this launcher's frames (its ``main`` and the audit hook)."""
    kept = []
    while tb is not None:
        if tb.tb_frame.f_globals is not globals():
            kept.append(tb)
        tb = tb.tb_next
    rebuilt = None
    for entry in reversed(kept):
        rebuilt = type(entry)(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return rebuilt


def main():
    options, paths = parse(sys.argv[1:])
    with open(options["code"], "rb") as file:
        source = file.read()
    sys.path.extend(paths)
    set_limits(int(options["memory"]), int(options["cpu"]), int(options["fsize"]))
    drop_root(int(options["uid"]))
    if options["audit"] == "1":
        sys.addaudithook(make_hook(os.path.realpath(os.getcwd())))
    sys.argv = [options["code"]]
    namespace = {"__name__": "__main__", "__file__": options["code"], "__builtins__": __builtins__}
    try:
        exec(compile(source, options["code"], "exec"), namespace)
    except SystemExit:
        raise
    except BaseException as exc:
        tb = users_frames(exc.__traceback__)
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
