"""Environment throughput: rewardgym's arithmetic env next to reasoning-gym's basic_arithmetic.

One item is one task generated and one answer scored:

- rewardgym ``rewardgym/arithmetic-v0``: ``env.reset()`` then ``env.step(response)`` (the step
  runs the verifier, which parses the response); seeded once, like a training loop;
- the same env with its verifier run in a :class:`rewardgym.VerifierPool` (worker processes
  with a timeout and a memory limit), one call per step;
- the same tasks scored with ``VerifierPool.verify_batch`` over all workers (how a trainer
  scores a batch of rollouts);
- reasoning-gym ``basic_arithmetic``: ``dataset[i]`` then ``dataset.score_answer(answer, entry)``.

Every library gets the correct answer for half of the items and a wrong one (correct + 1) for
the other half, in the form its scorer expects: rewardgym a response ending in ``Answer: N``,
reasoning-gym the bare answer string. Each run checks that exactly the correct half scored 1.0.
The table shows items per second (median of the repeats), the ratio to reasoning-gym's items
per second, and the median and the slowest time of a single item (over all repeats): a
throughput is a mean, and a few slow items can dominate it. Worker start-up is not timed (the
pool is started, and every row warmed up once, before the clock runs).

    python benchmarks/env_throughput.py            # 20,000 items x 5 repeats
    python benchmarks/env_throughput.py --quick    # a smoke run of a few seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import rewardgym
from rewardgym.envs.arithmetic import ArithmeticConfig, ArithmeticEnv

try:
    import reasoning_gym
except ImportError as exc:  # a benchmark that cannot compare is a failure, not a skip
    raise SystemExit(
        "benchmarks/env_throughput.py compares with reasoning-gym, which is not installed: "
        "pip install 'rewardgym[reasoning-gym]' (or the dev extra)."
    ) from exc

BASELINE = "reasoning-gym basic_arithmetic"


@dataclass(frozen=True)
class Row:
    """One measured line of the table."""

    name: str
    what: str
    items_per_s: float
    runs: tuple[float, ...]  # items/s of each repeat
    median_item_s: float | None  # the median time of one item over all repeats (None: batched)
    slowest_s: float | None  # the slowest single item over all repeats (None: batched)
    ratio: float | None = None  # items/s divided by reasoning-gym's


def wrong(answer: str) -> str:
    """A wrong integer answer: the correct one plus one."""
    return str(int(answer) + 1)


def answer_for(i: int, gold: str) -> str:
    """The answer given for item ``i``: correct for even ``i``, wrong for odd ``i``."""
    return gold if i % 2 == 0 else wrong(gold)


def response_for(i: int, gold: str) -> str:
    """A model-like response for rewardgym's verifier, which reads the final ``Answer: N``."""
    answer = answer_for(i, gold)
    return f"The result is {answer}.\nAnswer: {answer}"


def expected_correct(items: int) -> int:
    return (items + 1) // 2


# -- the workloads: each returns (items that scored 1.0, seconds per item, or () if batched) -----
def per_item(items: int, one: Callable[[int], bool]) -> tuple[int, list[float]]:
    """Run ``one(i)`` for every item, counting the ``True`` results and timing each item."""
    correct, seconds = 0, []
    for i in range(items):
        start = time.perf_counter()
        correct += one(i)
        seconds.append(time.perf_counter() - start)
    return correct, seconds


def rewardgym_inprocess(items: int, difficulty: int) -> tuple[int, list[float]]:
    env = ArithmeticEnv(ArithmeticConfig(difficulty=difficulty))
    env.reset(seed=0)

    def one(i: int) -> bool:
        _, info = env.reset()
        return env.step(response_for(i, info["task"].answer))[1] == 1.0

    return per_item(items, one)


class PooledArithmeticEnv(ArithmeticEnv):
    """The arithmetic env whose verifier runs in a VerifierPool (one call per step)."""

    def __init__(self, config: ArithmeticConfig, pool: rewardgym.VerifierPool) -> None:
        super().__init__(config)
        self.pool = pool

    def score(self, completion, task):
        return self.pool.verify(completion.text, task, self.verifier)


def rewardgym_pool_step(items: int, difficulty: int, pool) -> tuple[int, list[float]]:
    env = PooledArithmeticEnv(ArithmeticConfig(difficulty=difficulty), pool)
    env.reset(seed=0)

    def one(i: int) -> bool:
        _, info = env.reset()
        return env.step(response_for(i, info["task"].answer))[1] == 1.0

    return per_item(items, one)


def rewardgym_pool_batch(items: int, difficulty: int, pool) -> tuple[int, list[float]]:
    env = ArithmeticEnv(ArithmeticConfig(difficulty=difficulty))
    env.reset(seed=0)
    tasks = [env.reset()[1]["task"] for _ in range(items)]
    responses = [response_for(i, t.answer) for i, t in enumerate(tasks)]
    verdicts = pool.verify_batch(responses, tasks, env.verifier)
    return sum(v.reward == 1.0 for v in verdicts), []


def reasoning_gym_basic_arithmetic(items: int, difficulty: int) -> tuple[int, list[float]]:
    del difficulty  # reasoning-gym's defaults: 2-6 terms of 1-4 digits, + - * /, parentheses
    dataset = reasoning_gym.create_dataset("basic_arithmetic", size=items, seed=0)

    def one(i: int) -> bool:
        entry = dataset[i]
        return dataset.score_answer(answer_for(i, entry["answer"]), entry) == 1.0

    return per_item(items, one)


# -- measuring ----------------------------------------------------------------------------------
Workload = Callable[[], tuple[int, list[float]]]


def measure(name: str, run: Workload, items: int, repeats: int) -> tuple[list[float], list[float]]:
    """Items per second of each repeat, and the seconds of every single item over all repeats
    (empty for a batched workload). Fails if a run did not score exactly the correct half."""
    rates, seconds = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        correct, item_seconds = run()
        elapsed = time.perf_counter() - start
        if correct != expected_correct(items):
            raise SystemExit(
                f"{name}: {correct} of {items} items scored 1.0, expected "
                f"{expected_correct(items)} (every even item is answered correctly)."
            )
        rates.append(items / elapsed)
        seconds.extend(item_seconds)
    return rates, seconds


def run_all(args: argparse.Namespace) -> list[Row]:
    n, d = args.items, args.difficulty
    plans: list[tuple[str, str, Callable[..., tuple[int, list[float]]]]] = [
        ("rewardgym/arithmetic-v0", "reset + step, verifier in-process", rewardgym_inprocess),
        ("rewardgym/arithmetic-v0", "reset + step, verifier in VerifierPool", rewardgym_pool_step),
        (
            "rewardgym/arithmetic-v0",
            f"reset, then VerifierPool.verify_batch ({args.workers} workers)",
            rewardgym_pool_batch,
        ),
        (BASELINE, "dataset[i] + score_answer", reasoning_gym_basic_arithmetic),
    ]
    rows = []
    with rewardgym.VerifierPool(workers=args.workers, timeout=5.0) as pool:
        pool.start()
        for name, what, fn in plans:
            pooled = fn in (rewardgym_pool_step, rewardgym_pool_batch)
            run = (lambda fn=fn: fn(n, d, pool)) if pooled else (lambda fn=fn: fn(n, d))
            run()  # warm-up: imports, first verifier load into the workers, caches
            rates, seconds = measure(f"{name} ({what})", run, n, args.repeats)
            median_s = statistics.median(seconds) if seconds else None
            slowest_s = max(seconds) if seconds else None
            rows.append(
                Row(name, what, statistics.median(rates), tuple(rates), median_s, slowest_s)
            )
    base = next(r.items_per_s for r in rows if r.name == BASELINE)
    return [replace(r, ratio=r.items_per_s / base) for r in rows]


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    print(
        f"env throughput: {args.items:,} items x {args.repeats} repeats (median), arithmetic "
        f"difficulty {args.difficulty}, half the answers correct; python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs"
    )
    header = (
        "library / env",
        "work per item",
        "items/s",
        "vs reasoning-gym",
        "median item",
        "slowest",
    )
    lines = [
        (
            r.name,
            r.what,
            f"{r.items_per_s:,.0f}",
            f"{r.ratio:.2f}x",
            "-" if r.median_item_s is None else f"{r.median_item_s * 1e6:,.0f} us",
            "-" if r.slowest_s is None else f"{r.slowest_s * 1e3:,.1f} ms",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    for row in [header, *lines]:
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=20_000, help="items per run (default 20000)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per row (default 5)")
    p.add_argument("--difficulty", type=int, default=4, help="rewardgym arithmetic difficulty")
    p.add_argument("--workers", type=int, default=2, help="VerifierPool workers (default 2)")
    p.add_argument("--quick", action="store_true", help="smoke run: 300 items x 2 repeats")
    p.add_argument("--json", action="store_true", help="also print the rows as one JSON line")
    args = p.parse_args(argv)
    if args.quick:
        args.items, args.repeats = 300, 2
    for name in ("items", "repeats", "workers"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = run_all(args)
    print_table(rows, args)
    if args.json:
        print(json.dumps({"items": args.items, "rows": [asdict(r) for r in rows]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
