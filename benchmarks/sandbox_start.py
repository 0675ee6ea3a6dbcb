"""What a sandboxed run costs: ``Sandbox.run`` next to a plain ``subprocess.run`` of the same
interpreter.

Every item is one complete run of a tiny program (``print(1)``) in a new process, measured from
the call to its result, working directory creation and deletion included. Rows:

- *plain subprocess*: ``subprocess.run([python, "-I", "-S", "-B", "-c", code])``, no limits, no
  isolation: the floor any process-per-run design pays.
- *sandbox, all layers*: ``Sandbox(SandboxConfig())`` with every layer this machine allows
  (namespaces, uid drop, rlimits, audit hook).
- *sandbox, namespaces off*: the same without ``unshare`` (``namespaces="off"``).
- *sandbox, no audit hook*: every OS layer, ``audit_hook=False``.
- *sandbox, site_packages + numpy*: ``site_packages=True`` running ``import numpy``: what a
  tool call that imports numpy costs (skipped when numpy is not installed).

The table shows the median and 90th-percentile milliseconds per run and the ratio of the median
to the plain subprocess.

    python benchmarks/sandbox_start.py            # 60 runs per row
    python benchmarks/sandbox_start.py --quick    # 5 runs per row, a smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from rewardgym.core.sandbox import Sandbox, SandboxConfig

BASELINE = "plain subprocess"


def _plain(code: str) -> Callable[[], None]:
    argv = [sys.executable, "-I", "-S", "-B", "-c", code]

    def run() -> None:
        done = subprocess.run(argv, env={}, capture_output=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"the plain run failed: {done.stderr.decode()}")

    return run


def _sandboxed(config: SandboxConfig, code: str) -> Callable[[], None]:
    sandbox = Sandbox(config)

    def run() -> None:
        result = sandbox.run(code)
        if not result.ok:
            raise SystemExit(f"the sandboxed run failed: {result}")

    return run


def rows() -> list[tuple[str, Callable[[], None]]]:
    code = "print(1)"
    found = [
        (BASELINE, _plain(code)),
        ("sandbox, all layers", _sandboxed(SandboxConfig(), code)),
        ("sandbox, namespaces off", _sandboxed(SandboxConfig(namespaces="off"), code)),
        ("sandbox, no audit hook", _sandboxed(SandboxConfig(audit_hook=False), code)),
    ]
    if importlib.util.find_spec("numpy") is not None:
        numpy = _sandboxed(SandboxConfig(site_packages=True), "import numpy")
        found.append(("sandbox, site_packages + numpy", numpy))
    return found


def measure(run: Callable[[], None], n: int) -> list[float]:
    run()  # warm-up: file caches, the layer probe
    times = []
    for _ in range(n):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 runs per row (a smoke run)")
    parser.add_argument("--runs", type=int, default=60, help="runs per row (default 60)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON last")
    args = parser.parse_args()
    n = 5 if args.quick else args.runs
    results = []
    for name, run in rows():
        times = measure(run, n)
        median = statistics.median(times)
        p90 = sorted(times)[min(len(times) - 1, int(0.9 * len(times)))]
        results.append({"name": name, "median_ms": median * 1e3, "p90_ms": p90 * 1e3})
    base = results[0]["median_ms"]
    isolation = Sandbox().isolation
    print(f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"uid {os.geteuid()}, {n} runs per row")  # fmt: skip
    print(f"all layers here: {', '.join(isolation)}\n")
    print(f"{'':32}{'median ms':>10}{'p90 ms':>10}{'vs plain subprocess':>22}")
    for row in results:
        row["ratio"] = row["median_ms"] / base
        print(f"{row['name']:32}{row['median_ms']:>10.1f}{row['p90_ms']:>10.1f}"
              f"{row['ratio']:>21.2f}x")  # fmt: skip
    if args.json:
        print(json.dumps({"runs": n, "isolation": list(isolation), "rows": results}))


if __name__ == "__main__":
    main()
