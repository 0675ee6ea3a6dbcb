"""Math verification throughput: rewardgym's MathVerifier in a VerifierPool vs math-verify direct.

Both sides score the same (gold, response) pairs with the same answer extraction
(``rewardgym/math-v0``'s "auto": the last ``\\boxed{}``, else a Final Answer line, else the last
number) and the same math-verify calls, gold first: ``verify(parse(gold), parse(answer))``.

- **math-verify direct**: extraction, ``parse`` of gold and answer and ``verify`` in this process,
  one thread, with math-verify's own (signal-based) timeouts, as a training script calls it;
- **MathVerifier in-process**: rewardgym's verifier called in this process (caches on);
- **VerifierPool.verify_batch**: the verifier in worker processes with a timeout and a memory
  limit per call, all pairs in one batch, with its caches off (``cache_size=0``) and on (the
  default). Each worker keeps LRU caches of parsed answers and of comparisons, so a gold answer
  shared by a group of responses is parsed once per worker.

Pairs come from the procedural problem set (all kinds, difficulties 1-3) in groups of
``--group`` responses per problem, as a GRPO batch has: the gold as written, other correct forms
of it (``7/6`` for ``\\frac{7}{6}``, ``x = 3`` for ``3``, ``\\{3, -2\\}`` for ``-2, 3``), wrong
answers, in model-like text (a boxed answer, a Final Answer line), and a few hostile responses.
The table shows pairs per second (median of the repeats), the ratio to math-verify direct, the
CPU time per pair (this process and the pool's workers), and agreement with math-verify direct on
the pairs both scored. Every process first parses another set of pairs (untimed: math-verify's
ANTLR parser gets faster as its process parses more). Worker start-up and verifier loading are
not timed; every repeat uses a fresh verifier, so no row starts with warm caches; the rows are
interleaved within each repeat.

    python benchmarks/math_verify_throughput.py            # 400 pairs x 3 repeats
    python benchmarks/math_verify_throughput.py --quick    # a smoke run of a few seconds
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np

import rewardgym
from rewardgym.core.types import Task
from rewardgym.envs._math_extract import extract_answer, gold_span
from rewardgym.envs._math_procedural import KINDS, Problem, generate
from rewardgym.envs.math import MathVerifier, MathVerifierConfig
from rewardgym.testing import HOSTILE_RESPONSES

try:
    import math_verify
    import psutil
except ImportError as exc:  # a benchmark that cannot compare is a failure, not a skip
    raise SystemExit(
        f"benchmarks/math_verify_throughput.py needs {exc.name}, which is not installed: "
        "pip install -e '.[dev]' (math-verify comes with rewardgym[math], psutil with dev)."
    ) from exc

BASELINE = "math-verify direct"
EXTRACTION = "auto"
LIMIT = MathVerifierConfig().max_answer_chars
TEMPLATES = (
    "Let me work through it step by step.\nSo the result is \\boxed{{{}}}.",
    "Putting everything together we get the answer.\n\nFinal Answer: {}",
    "After simplifying, the answer is $\\boxed{{{}}}$. I double-checked it.",
    "**Final Answer**\n\n\\[\n\\boxed{{{}}}\n\\]",
)
HOSTILE = tuple(r for r in HOSTILE_RESPONSES if len(r) <= 20_000)  # the fast-to-extract ones


@dataclass(frozen=True)
class Row:
    """One measured line of the table."""

    name: str
    what: str
    pairs_per_s: float
    runs: tuple[float, ...]
    cpu_ms_per_pair: float  # CPU time of this process and the pool's workers per pair (median)
    correct: int  # pairs judged correct (last repeat)
    unscored: int  # pairs this row could not score
    agree: int | None = None  # pairs both this row and the baseline scored, judged alike
    both: int | None = None  # pairs both scored
    only_one: int | None = None  # pairs exactly one of the two scored
    ratio: float | None = None


# -- the pairs ----------------------------------------------------------------------------------
def make_pairs(n: int, group: int, seed: int) -> tuple[list[str], list[Task]]:
    """``n`` (response, task) pairs, ``group`` responses per problem."""
    rng = np.random.default_rng(seed)
    responses: list[str] = []
    tasks: list[Task] = []
    while len(responses) < n:
        problem = generate(rng, int(rng.integers(1, 4)), KINDS)
        task = Task(problem.text, answer=problem.answer)
        for _ in range(min(group, n - len(responses))):
            responses.append(response_for(rng, problem))
            tasks.append(task)
    return responses, tasks


def response_for(rng: np.random.Generator, problem: Problem) -> str:
    """A model-like response: 30% the gold as written, 30% another correct form, 32% a wrong
    answer, 8% a hostile response."""
    roll = rng.random()
    if roll < 0.08:
        return HOSTILE[int(rng.integers(len(HOSTILE)))]
    if roll < 0.38:
        answer = problem.answer
    elif roll < 0.68:
        answer = problem.equivalents[int(rng.integers(len(problem.equivalents)))]
    else:
        answer = problem.wrong
    return TEMPLATES[int(rng.integers(len(TEMPLATES)))].format(answer)


# -- the workloads: each returns one outcome per pair: True / False, or None (not scored) -------
def direct(responses: list[str], tasks: list[Task]) -> list[bool | None]:
    """Extraction, then math-verify's parse and verify in this process, one pair at a time."""
    extraction = [math_verify.LatexExtractionConfig(), math_verify.ExprExtractionConfig()]

    def parse(span: str) -> list:
        text = span if any(d in span for d in ("$", "\\(", "\\[")) else f"\\boxed{{{span}}}"
        return math_verify.parse(text, extraction)

    outcomes: list[bool | None] = []
    for response, task in zip(responses, tasks, strict=True):
        gold = parse(gold_span(task.answer, LIMIT))
        if not gold:
            outcomes.append(None)
            continue
        found = extract_answer(response, EXTRACTION, LIMIT)
        if found is None or found.too_long:
            outcomes.append(False)
            continue
        answer = parse(found.text)
        outcomes.append(
            bool(answer) and math_verify.verify(gold, answer, allow_set_relation_comp=True)
        )
    return outcomes


def in_process(responses: list[str], tasks: list[Task], verifier: MathVerifier) -> list:
    return [outcome(verifier.verify(r, t)) for r, t in zip(responses, tasks, strict=True)]


def pooled(responses: list[str], tasks: list[Task], verifier: MathVerifier, pool) -> list:
    return [outcome(v) for v in pool.verify_batch(responses, tasks, verifier)]


def outcome(verdict) -> bool | None:
    return None if verdict.reward is None else verdict.correct


# -- measuring ----------------------------------------------------------------------------------
Prepare = Callable[[], Callable[[], list]]  # not timed; returns the run to time


def compare(row: Row, mine: list, base: list) -> Row:
    """``row`` with its agreement with the baseline's outcomes filled in."""
    both = [(a, b) for a, b in zip(mine, base, strict=True) if a is not None and b is not None]
    only_one = sum((a is None) != (b is None) for a, b in zip(mine, base, strict=True))
    return replace(row, agree=sum(a == b for a, b in both), both=len(both), only_one=only_one)


def plans(args: argparse.Namespace, pool, responses, tasks) -> list[tuple[str, str, Prepare]]:
    """The rows: (library, how, prepare). Every repeat gets a fresh verifier (cold caches),
    loaded into the pool's workers before the clock starts."""
    cached, uncached = MathVerifierConfig(), MathVerifierConfig(cache_size=0)
    batch = f"VerifierPool.verify_batch ({args.workers} workers)"

    def in_process_run() -> Callable[[], list]:
        verifier = MathVerifier(cached)
        return lambda: in_process(responses, tasks, verifier)

    def pool_run(config: MathVerifierConfig) -> Callable[[], list]:
        verifier = MathVerifier(config)
        pool.start(verifier)
        return lambda: pooled(responses, tasks, verifier, pool)

    return [
        (
            BASELINE,
            "extract + parse + verify, one thread",
            lambda: lambda: direct(responses, tasks),
        ),
        ("rewardgym MathVerifier", "in-process, caches on", in_process_run),
        ("rewardgym MathVerifier", f"{batch}, no caches", lambda: pool_run(uncached)),
        ("rewardgym MathVerifier", f"{batch}, caches on", lambda: pool_run(cached)),
    ]


def cpu_seconds(pool) -> float:
    """CPU time used so far by this process and the pool's worker processes."""
    total = time.process_time()
    for pid in pool.pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:  # a worker replaced meanwhile
            continue
        total += times.user + times.system
    return total


def run_all(args: argparse.Namespace) -> list[Row]:
    """Time every row ``repeats`` times, the rows interleaved within each repeat so that a change
    in the machine's load hits them all alike."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    responses, tasks = make_pairs(args.pairs, args.group, args.seed)
    warm_responses, warm_tasks = make_pairs(args.pairs, args.group, args.seed + 1)
    with rewardgym.VerifierPool(workers=args.workers, timeout=args.timeout) as pool:
        rows = plans(args, pool, responses, tasks)
        # Warm-up on other pairs, not timed: imports, and the prediction cache of math-verify's
        # ANTLR LaTeX parser, which makes a process's parses faster as it parses more. A trainer
        # and its pool workers are long-lived, so the warm state is the one that lasts.
        direct(warm_responses, warm_tasks)
        for _ in range(args.workers):
            pooled(warm_responses, warm_tasks, MathVerifier(MathVerifierConfig(cache_size=0)), pool)
        rates: list[list[float]] = [[] for _ in rows]
        cpu: list[list[float]] = [[] for _ in rows]
        outcomes: list[list] = [[] for _ in rows]
        for _ in range(args.repeats):
            for i, (_, _, prepare) in enumerate(rows):
                run = prepare()
                start, cpu_start = time.perf_counter(), cpu_seconds(pool)
                outcomes[i] = run()
                rates[i].append(len(responses) / (time.perf_counter() - start))
                cpu[i].append((cpu_seconds(pool) - cpu_start) * 1000 / len(responses))
    measured = [
        Row(name, what, statistics.median(r), tuple(r), statistics.median(c),
            sum(o is True for o in out), sum(o is None for o in out))
        for (name, what, _), r, c, out in zip(rows, rates, cpu, outcomes, strict=True)
    ]  # fmt: skip
    base = measured[0].pairs_per_s
    return [
        replace(compare(row, out, outcomes[0]), ratio=row.pairs_per_s / base)
        for row, out in zip(measured, outcomes, strict=True)
    ]


def print_table(rows: list[Row], args: argparse.Namespace, pairs: int) -> None:
    print(
        f"math verification: {pairs:,} pairs ({args.group} responses per problem) x "
        f"{args.repeats} repeats (median), extraction {EXTRACTION!r}; math-verify "
        f"{_version('math-verify')}, python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    header = (
        "library",
        "how",
        "pairs/s",
        "vs direct",
        "CPU/pair",
        "correct",
        "unscored",
        "agreement",
    )
    lines = [
        (
            r.name,
            r.what,
            f"{r.pairs_per_s:,.1f}",
            f"{r.ratio:.2f}x",
            f"{r.cpu_ms_per_pair:.1f} ms",
            str(r.correct),
            str(r.unscored),
            f"{100 * r.agree / r.both:.1f}% of {r.both}"
            + (f" ({r.only_one} one-sided)" if r.only_one else ""),
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


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=400, help="pairs per run (default 400)")
    p.add_argument("--group", type=int, default=4, help="responses per problem (default 4)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per row (default 3)")
    p.add_argument("--workers", type=int, default=2, help="VerifierPool workers (default 2)")
    p.add_argument("--timeout", type=float, default=5.0, help="pool timeout per pair, seconds")
    p.add_argument("--seed", type=int, default=0, help="seed of the pairs (default 0)")
    p.add_argument("--quick", action="store_true", help="smoke run: 40 pairs x 1 repeat")
    p.add_argument("--json", action="store_true", help="also print the rows as one JSON line")
    args = p.parse_args(argv)
    if args.quick:
        args.pairs, args.repeats = 40, 1
    for name in ("pairs", "group", "repeats", "workers"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if not args.timeout > 0:
        p.error(f"--timeout must be > 0, got {args.timeout}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = run_all(args)
    print_table(rows, args, args.pairs)
    if args.json:
        print(json.dumps({"pairs": args.pairs, "rows": [asdict(r) for r in rows]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
