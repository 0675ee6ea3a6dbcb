"""How a :class:`~rewardgym.core.verify.VerifierPool` runs one call (private to ``verify``).

:class:`Entry` is a verifier as the pool sends it to workers: pickled once (by
:func:`pickle_verifier`) and known to them by a key. :class:`PoolCalls`, the base class of
``VerifierPool``, lends an idle worker to one call at a time, makes sure the worker runs and has
loaded the verifier, sends the call, and turns the worker's reply, a timeout or a crash into the
verdict, the counters to add to :class:`~rewardgym.core.verify.PoolStats`, and a warning logged
once per (verifier type, kind). The parent's side of one worker process is in ``_verify_process``.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import threading
from dataclasses import dataclass
from typing import Any

from rewardgym.core._verify_process import WorkerGone, WorkerProcess, WorkerTimeout, start_failure
from rewardgym.core.errors import ConfigError, VerifierPoolError
from rewardgym.core.types import Task, Verdict

logger = logging.getLogger("rewardgym.core.verify")  # records carry the public module name


@dataclass(frozen=True)
class Entry:
    """A verifier, its key in the workers, and its pickle."""

    verifier: Any
    key: int
    data: bytes

    @property
    def name(self) -> str:
        return type(self.verifier).__qualname__


class PoolCalls:
    """One call on one borrowed worker; the state it uses is set by ``VerifierPool.__init__``.

    ``_cond`` guards ``_idle`` (the workers not lent out), ``_counts`` (the :class:`PoolStats`
    counters), ``_logged`` and ``_closed``. A call collects the names of the counters to add in a
    ``tally`` list, which :meth:`_release` adds under the lock when it returns the worker.
    """

    _cond: threading.Condition
    _idle: list[WorkerProcess]
    _counts: dict[str, int]
    _logged: set[tuple[str, str]]
    _closed: bool
    _pid: int
    _memory_mb: int | None
    _start_timeout: float

    def _verify_one(self, entry: Entry, response: str, task: Task, timeout: float) -> Verdict:
        worker = self._acquire()
        tally: list[str] = []
        try:
            self._prepare(worker, entry, tally)
            return self._call(worker, entry, response, task, timeout, tally)
        except VerifierPoolError:
            raise
        except BaseException:  # e.g. KeyboardInterrupt mid-call: a reply may be in flight
            worker.kill()
            raise
        finally:
            self._release(worker, tally)

    def _call(
        self,
        worker: WorkerProcess,
        entry: Entry,
        response: str,
        task: Task,
        timeout: float,
        tally: list[str],
    ) -> Verdict:
        try:
            reply = worker.call(entry.key, response, task, timeout)
        except WorkerTimeout:
            return self._replace(worker, entry, tally, "timeouts", f"timed out after {timeout:g}s")
        except WorkerGone as gone:
            self._check_open(during_call=True)
            reason = f"verifier worker crashed: {gone}"
            return self._replace(worker, entry, tally, "crashes", reason)
        return self._outcome(worker, entry, reply, tally)

    def _outcome(
        self, worker: WorkerProcess, entry: Entry, reply: tuple, tally: list[str]
    ) -> Verdict:
        """The verdict for a worker's reply to a call (see ``_verify_worker``'s messages)."""
        kind = reply[0]
        if kind == "verdict":
            return self._count(tally, reply[1])
        if kind in ("error", "bad_return"):
            raised = kind == "error"
            reason = (
                f"verifier raised {reply[1]}: {reply[2]}"
                if raised
                else f"verifier returned {reply[1]}, not a Verdict"
            )
            self._log_once(entry, reply[1] if raised else kind, reason)
            tally.append("errors")
            return self._count(tally, Verdict.unscorable(reason))
        if kind == "memory":
            reason = f"verifier ran out of memory (memory_mb={self._memory_mb}): {reply[1]}"
            return self._replace(worker, entry, tally, "memory_errors", reason)
        if kind == "bad_request":
            raise VerifierPoolError(
                f"A verifier worker could not read the task: {reply[1]}. Task.metadata must hold "
                "data that a fresh interpreter can unpickle (importable classes only)."
            )
        worker.kill()
        raise VerifierPoolError(f"Unexpected reply from a verifier worker: {reply!r:.200}")

    def _replace(
        self, worker: WorkerProcess, entry: Entry, tally: list[str], counter: str, reason: str
    ) -> Verdict:
        """Replace ``worker`` by a fresh process and return the ``None`` verdict."""
        self._log_once(entry, counter, reason)
        tally.append(counter)
        if self._closed:
            worker.kill()
        else:
            try:
                worker.spawn()  # kills the old process first
                tally.append("restarts")
            except OSError as exc:  # the next call retries, and raises if it fails again
                logger.warning("Could not restart a verifier worker: %s", exc)
        return self._count(tally, Verdict.unscorable(reason))

    @staticmethod
    def _count(tally: list[str], verdict: Verdict) -> Verdict:
        tally += ("calls", "scored" if verdict.reward is not None else "unscorable")
        return verdict

    def _acquire(self) -> WorkerProcess:
        with self._cond:
            while not self._idle:
                self._check_open()
                self._cond.wait()
            self._check_open()
            idle = self._idle
            for i in range(len(idle) - 1, -1, -1):  # a started worker, if one is idle
                if idle[i].ready:
                    return idle.pop(i)
            # else the one that has been booting longest (a never-started one comes last)
            return idle.pop(min(range(len(idle)), key=lambda i: idle[i].spawned_at))

    def _release(self, worker: WorkerProcess, tally: list[str]) -> None:
        with self._cond:
            for name in tally:
                self._counts[name] += 1
            if not self._closed:
                self._idle.append(worker)
                self._cond.notify()
                return
        worker.kill()

    def _prepare(self, worker: WorkerProcess, entry: Entry | None, tally: list[str]) -> None:
        """Make sure ``worker`` runs and holds ``entry``'s verifier."""
        try:
            if worker.ensure_ready():
                tally.append("restarts")
        except (WorkerGone, WorkerTimeout, RuntimeError, OSError) as exc:
            raise VerifierPoolError(start_failure(exc, self._start_timeout)) from exc
        if worker.note:
            self._log_once(None, "memory limit", worker.note)
        if entry is not None:
            worker.load(entry.key, entry.data, entry.name)

    def _check_open(self, during_call: bool = False) -> None:
        if self._closed:
            when = "while the call was running" if during_call else "already"
            raise VerifierPoolError(
                f"This VerifierPool was closed {when}; create a new VerifierPool to verify more."
            )
        if os.getpid() != self._pid:
            raise VerifierPoolError(
                "This VerifierPool was created in another process (this one is a fork of it); "
                "create a new VerifierPool in this process."
            )

    def _log_once(self, entry: Entry | None, kind: str, reason: str) -> None:
        verifier = "" if entry is None else type(entry.verifier).__module__ + "." + entry.name
        with self._cond:
            if (verifier, kind) in self._logged:
                return
            self._logged.add((verifier, kind))
        if entry is None:
            logger.warning("Verifier workers run without a memory limit: %s", reason)
            return
        logger.warning(
            "Verifier %s: %s. Scored as unscorable (reward None); further cases of this kind "
            "are counted in VerifierPool.stats without logging.",
            entry.name,
            reason if len(reason) <= 500 else reason[:500] + "...",
        )


def pickle_verifier(verifier: Any) -> bytes:
    if not callable(getattr(verifier, "verify", None)):
        raise TypeError(
            "verifier must have a verify(response, task) method (a rewardgym Verifier), "
            f"got {type(verifier).__name__}."
        )
    cls = type(verifier)
    if cls.__module__ == "__main__":
        raise VerifierPoolError(
            f"Verifier class {cls.__qualname__} is defined in the script being run (__main__), "
            "which worker processes cannot import. Move it into a module (e.g. a file next to "
            "the script) and import it from there."
        )
    try:
        return pickle.dumps(verifier, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise VerifierPoolError(
            f"Verifier {cls.__qualname__} cannot be pickled ({type(exc).__name__}: {exc}). "
            "A VerifierPool sends verifiers to worker processes: define the class at the top "
            "level of an importable module and keep no lambdas, open files, locks or clients "
            "in its attributes (create those lazily inside verify)."
        ) from exc


def check_item(response: Any, task: Any, where: str) -> None:
    if not isinstance(response, str):
        raise TypeError(f"response must be a str{where}, got {type(response).__name__}.")
    if not isinstance(task, Task):
        raise TypeError(f"task must be a rewardgym Task{where}, got {type(task).__name__}.")


def check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"VerifierPool {name} must be a positive int, got {value!r}.")


def check_seconds(name: str, value: Any, error: type[Exception]) -> float:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value <= 0:
        raise error(f"VerifierPool {name} must be a positive number of seconds, got {value!r}.")
    return float(value)
