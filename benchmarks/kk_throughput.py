"""Knights & Knaves throughput: rewardgym's generator and verifier next to reasoning-gym's.

For each number of people (the same for both libraries; statement depth 2 and width 2 for both,
as in Xie et al. 2024 and reasoning-gym's defaults), two kinds of item are timed:

- *generate*: one puzzle with a unique solution. rewardgym: ``env.reset()`` of
  ``rewardgym/knights_knaves-v0`` (puzzle, prompt, gold answer); reasoning-gym:
  ``dataset[i]`` of ``knights_knaves``.
- *generate + verify*: the same, then one answer scored. rewardgym: ``env.step(response)``
  (the verifier reads the roles from a model-like response); reasoning-gym:
  ``dataset.score_answer(answer, entry)``.

Every library gets the correct answer for half of the items and one with the first person's
role flipped for the other half, in the form its scorer expects: rewardgym a response ending in
a CONCLUSION section, reasoning-gym its own answer sentence. Each run checks that exactly the
correct half scored full marks. The table shows items per second (median of the repeats), the
ratio to reasoning-gym doing the same work with the same number of people, and the median and
slowest single item over all repeats.

    python benchmarks/kk_throughput.py            # 2, 3, 5 and 8 people, 300 items x 3 repeats
    python benchmarks/kk_throughput.py --quick    # a smoke run of a few seconds
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
from dataclasses import asdict, dataclass

from rewardgym.envs.knights_knaves import KnightsKnavesConfig, KnightsKnavesEnv

try:
    import reasoning_gym
except ImportError as exc:  # a benchmark that cannot compare is a failure, not a skip
    raise SystemExit(
        "benchmarks/kk_throughput.py compares with reasoning-gym, which is not installed: "
        "pip install 'rewardgym[reasoning-gym]' (or the dev extra)."
    ) from exc

OURS, BASELINE = "rewardgym/knights_knaves-v0", "reasoning-gym knights_knaves"
GENERATE, VERIFY = "generate", "generate + verify"
DEPTH = WIDTH = 2


@dataclass(frozen=True)
class Row:
    """One measured line of the table."""

    people: int
    name: str
    what: str
    items_per_s: float
    runs: tuple[float, ...]  # items/s of each repeat
    median_item_s: float
    slowest_s: float
    ratio: float | None = None  # items/s divided by reasoning-gym's for the same work and people


# -- the workloads: each returns (items that scored full marks, seconds of each item) -----------
def flip_first(answer: str, knight: str, knave: str) -> str:
    """``answer`` with the first role word swapped (the first person gets the other role)."""
    at_knight, at_knave = answer.find(knight), answer.find(knave)
    if at_knave < 0 or 0 <= at_knight < at_knave:
        return answer[:at_knight] + knave + answer[at_knight + len(knight) :]
    return answer[:at_knave] + knight + answer[at_knave + len(knave) :]


def response_for(i: int, gold: str) -> str:
    """A model-like response: correct for even ``i``, first person flipped for odd ``i``."""
    answer = gold if i % 2 == 0 else flip_first(gold, "knight", "knave")
    return f"Let me check each case in turn.\n\nCONCLUSION:\n{answer}"


def timed(items: int, one: Callable[[int], bool]) -> tuple[int, list[float]]:
    correct, seconds = 0, []
    for i in range(items):
        start = time.perf_counter()
        correct += one(i)
        seconds.append(time.perf_counter() - start)
    return correct, seconds


def rewardgym_run(items: int, people: int, verify: bool) -> tuple[int, list[float]]:
    env = KnightsKnavesEnv(KnightsKnavesConfig(n_people=people, depth=DEPTH, width=WIDTH))
    env.reset(seed=0)

    def one(i: int) -> bool:
        _, info = env.reset()
        if not verify:
            return i % 2 == 0  # nothing scored: count the items that would be right
        return env.step(response_for(i, info["task"].answer))[1] == 1.0

    return timed(items, one)


def reasoning_gym_run(items: int, people: int, verify: bool) -> tuple[int, list[float]]:
    dataset = reasoning_gym.create_dataset(
        "knights_knaves",
        size=items,
        seed=0,
        n_people=people,
        depth_constraint=DEPTH,
        width_constraint=WIDTH,
    )

    def one(i: int) -> bool:
        entry = dataset[i]
        if not verify:
            return i % 2 == 0
        terms = entry["metadata"]["knight_knave_terms"]
        answer = entry["answer"]
        if i % 2:
            answer = flip_first(answer, terms["a_knight"], terms["a_knave"])
        return dataset.score_answer(answer, entry) == 1.0

    return timed(items, one)


# -- measuring ----------------------------------------------------------------------------------
def measure(label: str, run: Callable[[], tuple[int, list[float]]], items: int, repeats: int):
    rates, seconds = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        correct, item_seconds = run()
        elapsed = time.perf_counter() - start
        if correct != (items + 1) // 2:
            raise SystemExit(
                f"{label}: {correct} of {items} items scored full marks, expected "
                f"{(items + 1) // 2} (every even item is answered correctly)."
            )
        rates.append(items / elapsed)
        seconds.extend(item_seconds)
    return rates, seconds


def run_all(args: argparse.Namespace) -> list[Row]:
    rows = []
    for people in args.people:
        measured = {}
        for name, fn in ((OURS, rewardgym_run), (BASELINE, reasoning_gym_run)):
            for what, verify in ((GENERATE, False), (VERIFY, True)):
                run = lambda fn=fn, verify=verify, n=people: fn(args.items, n, verify)  # noqa: E731
                fn(min(args.items, 5), people, verify)  # warm-up: imports, caches
                label = f"{name} ({what}, {people} people)"
                rates, seconds = measure(label, run, args.items, args.repeats)
                measured[name, what] = (rates, seconds)
        for what in (GENERATE, VERIFY):
            base = statistics.median(measured[BASELINE, what][0])
            for name in (OURS, BASELINE):
                rates, seconds = measured[name, what]
                rate = statistics.median(rates)
                rows.append(
                    Row(people, name, what, rate, tuple(rates), statistics.median(seconds),
                        max(seconds), rate / base)
                )  # fmt: skip
    return rows


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    print(
        f"Knights & Knaves throughput: {args.items:,} items x {args.repeats} repeats (median), "
        f"depth {DEPTH}, width {WIDTH}, half the answers correct; python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs"
    )
    header = ("people", "library / env", "work per item", "items/s", "vs reasoning-gym",
              "median item", "slowest")  # fmt: skip
    lines = [
        (
            str(r.people),
            r.name,
            r.what,
            f"{r.items_per_s:,.0f}",
            f"{r.ratio:.2f}x",
            f"{r.median_item_s * 1e6:,.0f} us",
            f"{r.slowest_s * 1e3:,.1f} ms",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    for row in [header, *lines]:
        cells = [
            c.ljust(w) if i in (1, 2) else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=300, help="items per run (default 300)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per row (default 3)")
    p.add_argument(
        "--people", type=int, nargs="+", default=[2, 3, 5, 8], help="people per puzzle (2-8)"
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 2 and 3 people, 30 items x 2")
    p.add_argument("--json", action="store_true", help="also print the rows as one JSON line")
    args = p.parse_args(argv)
    if args.quick:
        args.items, args.repeats, args.people = 30, 2, [2, 3]
    for name in ("items", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    bad = [n for n in args.people if not 2 <= n <= 8]
    if bad:
        p.error(f"--people must each be in [2, 8], got {bad}")
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
