"""VerifierPool: verdicts, limits, hostile answers, crashes, threads, batches, stats, clean-up."""

from __future__ import annotations

import gc
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import psutil
import pytest

from rewardgym.core.errors import ConfigError, VerifierPoolError
from rewardgym.core.types import Task, Verdict
from rewardgym.core.verify import PoolStats, VerifierPool
from tests.core import verifiers_for_tests as V
from tests.core.sympy_verifier_for_tests import SympyVerifier

TASK = Task("What is 2 + 2?", answer="4")
SYMPY = SympyVerifier()


@pytest.fixture(scope="module")
def pool():
    with VerifierPool(V.ExactVerifier(), workers=2, timeout=2.0, memory_mb=1024) as pool:
        pool.start(SYMPY, V.EchoVerifier())
        yield pool


def timed(fn, *args, **kwargs):
    start = time.monotonic()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - start


def wait_dead(pid: int) -> None:
    """Wait until ``pid`` has exited (it stays a zombie until the pool reaps it)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not die")


# ---------------------------------------------------------------- verdicts


@pytest.mark.parametrize(
    ("verifier", "response", "answer"),
    [
        (V.ExactVerifier(), "4", "4"),
        (V.ExactVerifier(), " 5 ", "4"),
        (V.ExactVerifier(), "   ", "4"),  # the verifier's own None
        (V.ScaledVerifier(0.25), "anything", "4"),
        (SYMPY, "x + x", "2*x"),
        (SYMPY, "x + 1", "2*x"),
        (SYMPY, "(((", "1"),
        (V.EchoVerifier(), "héllo \x00 wörld 😀", None),
    ],
)
def test_pool_verdicts_equal_in_process_verdicts(pool, verifier, response, answer):
    task = Task("q", answer=answer)
    assert pool.verify(response, task, verifier) == verifier.verify(response, task)


def test_default_verifier_and_distinct_verifier_objects(pool):
    assert pool.verify("4", TASK).correct
    # each object is its own verifier: state travels with it, and evicted ones still work
    scaled = [V.ScaledVerifier(i / 20) for i in range(20)]
    assert [pool.verify("x", TASK, v).reward for v in scaled] == [i / 20 for i in range(20)]
    assert [pool.verify("x", TASK, v).reward for v in scaled] == [i / 20 for i in range(20)]


def test_one_megabyte_response_and_verdict_round_trip(pool):
    response = ("a\x00é😀(" * 250_000)[:1_000_000]
    verdict, seconds = timed(pool.verify, response, TASK, V.EchoVerifier())
    assert verdict.reward == 1_000_000.0
    assert verdict.extracted == response
    assert seconds < 3.0


def test_printing_verifier_does_not_corrupt_the_protocol(pool):
    for _ in range(3):
        assert pool.verify("x", TASK, V.PrintingVerifier()).correct
    assert pool.verify("4", TASK).correct


# ---------------------------------------------------------------- hostile answers


def test_power_tower_times_out_within_timeout_plus_one_second(pool):
    verdict, seconds = timed(pool.verify, "10**10**10", Task("q", answer="1"), SYMPY, timeout=1.0)
    assert verdict == Verdict(None, reason="timed out after 1s")
    assert seconds < 2.0
    assert pool.verify("2*x", Task("q", answer="x+x"), SYMPY).correct  # the pool goes on


def test_consecutive_timeouts_each_return_within_timeout_plus_one_second(pool):
    for _ in range(3):
        verdict, seconds = timed(pool.verify, "10**10**10", TASK, SYMPY, timeout=1.0)
        assert verdict.reason == "timed out after 1s"
        assert seconds < 2.0


@pytest.mark.parametrize(
    "response",
    [
        "x" * 1_000_000,
        "(" * 100_000,
        "(" * 100_000 + "1" + ")" * 100_000,
        "[" * 50_000 + "]" * 50_000,
        "1\x002",
        "\x00" * 10_000,
        "10**10**10**10",
    ],
    ids=["1MB", "open-brackets", "nested-brackets", "nested-lists", "nul", "nuls", "tower4"],
)
def test_hostile_answers_never_take_the_caller_down(pool, response):
    verdict, seconds = timed(pool.verify, response, Task("q", answer="1"), SYMPY, timeout=1.5)
    assert verdict.reward in (None, 0.0)  # unscorable, or (a huge symbol) scored as wrong
    assert not verdict.correct
    assert seconds < 2.5
    assert pool.verify("1", Task("q", answer="1"), SYMPY).correct


def test_infinite_loop_times_out(pool):
    verdict, seconds = timed(pool.verify, "x", TASK, V.LoopVerifier(), timeout=1.0)
    assert verdict.reward is None and verdict.reason == "timed out after 1s"
    assert seconds < 2.0
    assert pool.verify("4", TASK).correct


@pytest.mark.parametrize(
    ("verifier", "reason"),
    [
        (V.ExitVerifier(), "verifier worker crashed: the worker exited with code 3"),
        (
            V.SegfaultVerifier(),
            "verifier worker crashed: the worker was killed by SIGSEGV (segmentation fault)",
        ),
    ],
)
def test_crashing_verifier_gives_none_and_the_pool_recovers(pool, verifier, reason):
    assert pool.verify("x", TASK, verifier) == Verdict(None, reason=reason)
    assert pool.verify("4", TASK).correct
    assert pool.verify("2", Task("q", answer="1+1"), SYMPY).correct


def test_processes_a_verifier_starts_die_with_its_worker(pool, tmp_path):
    pid_file = tmp_path / "child.pid"
    verdict = pool.verify(str(pid_file), TASK, V.SpawnThenCrashVerifier())
    assert verdict.reason == "verifier worker crashed: the worker exited with code 1"
    wait_dead(int(pid_file.read_text()))


def test_memory_limit():
    with VerifierPool(V.ExactVerifier(), workers=1, timeout=5.0, memory_mb=300) as pool:
        for hog in (V.MemoryHogVerifier(), V.GrowingHogVerifier()):
            verdict = pool.verify("x", TASK, hog)
            assert verdict.reward is None
            assert verdict.reason.startswith("verifier ran out of memory (memory_mb=300)")
        assert pool.verify("4", TASK).correct
        assert pool.stats.memory_errors == 2


def test_memory_limit_below_the_worker_footprint_is_a_clear_error():
    with VerifierPool(V.ExactVerifier(), workers=1, memory_mb=20) as pool:
        with pytest.raises(VerifierPoolError, match=re.escape("memory_mb=20 leaves no room")):
            pool.verify("4", TASK)


@pytest.mark.parametrize(
    ("verifier", "reason"),
    [
        (V.RaisingVerifier(), "verifier raised ValueError: cannot handle 'x'"),
        (V.RecursingVerifier(), "verifier raised RecursionError: maximum recursion depth exceeded"),
        (V.ExitingVerifier(), "verifier raised SystemExit: 5"),
        (V.NotAVerdictVerifier(), "verifier returned float (1.0), not a Verdict"),
    ],
)
def test_verifier_bugs_give_none_and_are_logged_once(verifier, reason, caplog):
    with VerifierPool(verifier, workers=1) as pool, caplog.at_level(logging.WARNING):
        assert pool.verify("x", TASK) == Verdict(None, reason=reason)
        assert pool.verify("x", TASK) == Verdict(None, reason=reason)
        assert pool.stats.errors == 2
        assert pool.stats.restarts == 0  # the worker survives a verifier's exception
    records = [r for r in caplog.records if r.name == "rewardgym.core.verify"]
    assert len(records) == 1
    assert type(verifier).__name__ in records[0].getMessage()


# ---------------------------------------------------------------- threads and batches


def test_eight_threads_at_once(pool):
    errors: list[str] = []

    def hammer(seed: int) -> None:
        for i in range(40):
            answer = str((seed * 7 + i) % 5)
            verdict = pool.verify(str(i % 5), Task("q", answer=answer))
            if verdict.correct != (str(i % 5) == answer) or verdict.reward is None:
                errors.append(f"thread {seed} item {i}: {verdict}")

    threads = [threading.Thread(target=hammer, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_verify_batch_keeps_order(pool):
    tasks = [Task("q", answer=str(i % 7)) for i in range(300)]
    responses = [str(i % 5) for i in range(300)]
    verdicts = pool.verify_batch(responses, tasks)
    assert verdicts == [
        V.ExactVerifier().verify(r, t) for r, t in zip(responses, tasks, strict=True)
    ]
    assert pool.verify_batch([], []) == []


def test_verify_batch_with_a_hostile_item(pool):
    responses = ["1+1", "10**10**10", "x*x", "2"]
    tasks = [Task("q", answer=a) for a in ("2", "1", "x**2", "3")]
    verdicts, seconds = timed(pool.verify_batch, responses, tasks, SYMPY, timeout=1.0)
    assert [v.reward for v in verdicts] == [1.0, None, 1.0, 0.0]
    assert verdicts[1].reason == "timed out after 1s"
    assert seconds < 2.5


def test_verify_batch_uses_every_worker():
    with VerifierPool(V.SleepVerifier(), workers=2, timeout=5.0) as pool:
        pool.start()
        verdicts, seconds = timed(pool.verify_batch, ["0.4"] * 4, [TASK] * 4)
        assert all(v.correct for v in verdicts)
        assert seconds < 1.4  # 4 x 0.4 s on 2 workers; one worker would need 1.6 s


def test_verify_batch_checks_its_arguments(pool):
    with pytest.raises(ValueError, match=re.escape("verify_batch got 2 responses but 1 tasks")):
        pool.verify_batch(["a", "b"], [TASK])
    with pytest.raises(TypeError, match=re.escape("response must be a str (item 1), got bytes.")):
        pool.verify_batch(["a", b"b"], [TASK, TASK])


# ---------------------------------------------------------------- stats


def test_stats_count_every_outcome():
    with VerifierPool(V.ExactVerifier(), workers=1, timeout=1.0) as pool:
        assert pool.stats == PoolStats()
        pool.verify("4", TASK)  # scored
        pool.verify("5", TASK)  # scored
        pool.verify("", TASK)  # the verifier's own None
        pool.verify("x", TASK, V.RaisingVerifier())  # error
        pool.verify("x", TASK, V.LoopVerifier())  # timeout
        pool.verify("x", TASK, V.ExitVerifier())  # crash
        stats = pool.stats
    assert stats == PoolStats(
        calls=6, scored=2, unscorable=4, timeouts=1, crashes=1, memory_errors=0, errors=1,
        restarts=2,
    )  # fmt: skip
    metrics = stats.as_metrics()
    assert metrics["verifier_pool/calls"] == 6.0
    assert metrics["verifier_pool/unscorable_rate"] == pytest.approx(4 / 6)
    assert set(metrics) == {f"verifier_pool/{n}" for n in PoolStats.__dataclass_fields__} | {
        "verifier_pool/unscorable_rate"
    }


# ---------------------------------------------------------------- process life


def test_external_sigkill_between_calls():
    with VerifierPool(V.ExactVerifier(), workers=2) as pool:
        pool.start()
        pids = pool.pids
        assert len(pids) == 2
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            wait_dead(pid)
        assert pool.verify("4", TASK).correct
        assert pool.verify_batch(["4", "3"], [TASK, TASK])[0].correct
        assert pool.stats.restarts == 2 and pool.stats.crashes == 0
        assert not set(pool.pids) & set(pids)


def test_close_is_idempotent_and_final():
    pool = VerifierPool(V.ExactVerifier(), workers=2)
    pool.start()
    pids = pool.pids
    pool.close()
    pool.close()
    assert pool.closed
    assert not any(psutil.pid_exists(pid) for pid in pids)  # killed and reaped
    message = "This VerifierPool was closed already; create a new VerifierPool to verify more."
    with pytest.raises(VerifierPoolError, match=re.escape(message)):
        pool.verify("4", TASK)
    with pytest.raises(VerifierPoolError, match=re.escape(message)):
        pool.verify_batch(["4"], [TASK])


def test_close_during_a_call_raises_in_the_caller():
    pool = VerifierPool(V.SleepVerifier(), workers=1, timeout=30.0)
    pool.start()
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            pool.verify("20", TASK)
        except BaseException as exc:  # noqa: BLE001
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.3)
    pool.close()
    thread.join(5)
    assert not thread.is_alive()
    assert isinstance(outcome[0], VerifierPoolError)
    assert "closed while the call was running" in str(outcome[0])


def test_forked_child_cannot_use_or_kill_the_pool():
    with VerifierPool(V.ExactVerifier(), workers=1) as pool:
        pool.start()
        with warnings.catch_warnings():  # Python 3.12+ warns about fork with threads alive
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # child: the pool refuses, and its finalizer leaves the workers alone
            try:
                pool.verify("4", TASK)
                code = 1
            except VerifierPoolError as exc:
                code = 0 if "created in another process" in str(exc) else 2
            pool._finalizer()
            os._exit(code)
        assert os.waitpid(pid, 0)[1] == 0
        assert pool.verify("4", TASK).correct
        assert pool.stats.restarts == 0


def test_forgotten_pool_is_cleaned_up_by_gc():
    pool = VerifierPool(V.ExactVerifier(), workers=1)
    pool.start()
    (pid,) = pool.pids
    del pool
    gc.collect()
    assert not psutil.pid_exists(pid)


def test_forgotten_pool_does_not_hang_interpreter_exit(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from rewardgym.core.types import Task
        from rewardgym.core.verify import VerifierPool
        from tests.core.verifiers_for_tests import ExactVerifier
        pool = VerifierPool(ExactVerifier(), workers=2)
        assert pool.verify("4", Task("q", answer="4")).correct
        print(*pool.pids)
        keep = [pool]  # never closed
        """
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    for pid in map(int, done.stdout.split()):
        assert not psutil.pid_exists(pid)


# ---------------------------------------------------------------- programming errors


class _Unpicklable(V.ExactVerifier):
    def __init__(self) -> None:
        self.fn = lambda x: x


def test_unpicklable_verifier_raises_in_the_caller(pool):
    with pytest.raises(
        VerifierPoolError, match=re.escape("Verifier _Unpicklable cannot be pickled")
    ):
        pool.verify("4", TASK, _Unpicklable())

    class Local(V.ExactVerifier):
        pass

    with pytest.raises(VerifierPoolError, match="cannot be pickled .*Can't (pickle|get) local"):
        VerifierPool(Local())


def test_verifier_from_main_is_refused_with_advice():
    main_cls = type("ScriptVerifier", (V.ExactVerifier,), {"__module__": "__main__"})
    message = (
        "Verifier class ScriptVerifier is defined in the script being run (__main__), which "
        "worker processes cannot import. Move it into a module"
    )
    with pytest.raises(VerifierPoolError, match=re.escape(message)):
        VerifierPool(main_cls())


def test_verifier_that_cannot_load_in_a_worker(pool):
    message = (
        "Verifier UnloadableVerifier could not be loaded in a worker process: "
        "RuntimeError: refusing to load."
    )
    with pytest.raises(VerifierPoolError, match=re.escape(message)):
        pool.verify("4", TASK, V.UnloadableVerifier())
    assert pool.verify("4", TASK).correct


def test_unpicklable_task_metadata(pool):
    task = Task("q", answer="4", metadata={"fn": lambda: 1})
    with pytest.raises(VerifierPoolError, match=re.escape("The task could not be pickled")):
        pool.verify("4", task)
    assert pool.verify("4", TASK).correct


def test_argument_errors(pool):
    with pytest.raises(ConfigError, match=re.escape("workers must be a positive int, got 0")):
        VerifierPool(workers=0)
    with pytest.raises(ConfigError, match=re.escape("timeout must be a positive number of sec")):
        VerifierPool(timeout=float("nan"))
    with pytest.raises(ConfigError, match=re.escape("memory_mb must be a positive int, got 1.5")):
        VerifierPool(memory_mb=1.5)
    with pytest.raises(
        ValueError, match=re.escape("timeout must be a positive number of seconds, got 0")
    ):
        pool.verify("4", TASK, timeout=0)
    with pytest.raises(TypeError, match=re.escape("task must be a rewardgym Task, got str.")):
        pool.verify("4", "4")
    with pytest.raises(TypeError, match=re.escape("verifier must have a verify(response, task)")):
        pool.verify("4", TASK, object())
    with VerifierPool() as empty, pytest.raises(TypeError, match=re.escape("No verifier to run")):
        empty.verify("4", TASK)


# ---------------------------------------------------------------- speed


def test_throughput_pool_vs_in_process():
    verifier, n = V.ExactVerifier(), 2000
    start = time.perf_counter()
    for _ in range(n):
        verifier.verify("4", TASK)
    direct = n / (time.perf_counter() - start)
    with VerifierPool(verifier, workers=2) as pool:
        pool.start()
        start = time.perf_counter()
        for _ in range(n):
            pool.verify("4", TASK)
        single = n / (time.perf_counter() - start)
        start = time.perf_counter()
        pool.verify_batch(["4"] * n, [TASK] * n)
        batch = n / (time.perf_counter() - start)
    print(
        f"\ntrivial verifier, 2 workers: in-process {direct:,.0f} calls/s, "
        f"pool.verify {single:,.0f} calls/s, pool.verify_batch {batch:,.0f} calls/s"
    )
    assert single > 500 and batch > 500  # a regression guard, far below what the pool does


def test_shared_pool_is_one_per_setting_and_replaced_after_close():
    from rewardgym.core.verify import shared_pool

    a = shared_pool(workers=1, timeout=3.0)
    assert shared_pool(workers=1, timeout=3.0) is a
    assert shared_pool(workers=1, timeout=4.0) is not a
    a.close()
    b = shared_pool(workers=1, timeout=3.0)
    assert b is not a and not b.closed
    b.close()
    shared_pool(workers=1, timeout=4.0).close()


def test_batch_lanes_keep_a_task_together_and_cover_every_item_once():
    from rewardgym.core.verify import _lanes, _next_index

    tasks = [Task(f"q{i % 5}", answer=str(i % 5), id=f"t{i % 5}") for i in range(40)]
    lanes = _lanes(tasks, 2)
    owner = {tasks[i].id: k for k, lane in enumerate(lanes) for i in lane}
    assert all(owner[tasks[i].id] == k for k, lane in enumerate(lanes) for i in lane)
    taken = []
    while (i := _next_index(lanes, 0)) is not None:  # lane 0 drains itself, then steals
        taken.append(i)
    assert sorted(taken) == list(range(40))
