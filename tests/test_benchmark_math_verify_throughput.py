"""Smoke test of ``benchmarks/math_verify_throughput.py``: it runs end to end with ``--quick``.

math-verify is part of the dev extra, so a missing math-verify fails this test (the script exits
with the pip command to run) rather than skipping it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_math_verify_throughput_quick_run():
    env = {k: v for k, v in os.environ.items() if not k.startswith("REWARDGYM_")}
    script = REPO / "benchmarks" / "math_verify_throughput.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table, _, last = proc.stdout.rstrip().rpartition("\n")
    assert "pairs/s" in table and "vs direct" in table and "agreement" in table
    result = json.loads(last)
    rows = result["rows"]
    assert [r["name"] for r in rows] == ["math-verify direct"] + ["rewardgym MathVerifier"] * 3
    for row in rows:
        assert row["pairs_per_s"] > 0 and len(row["runs"]) == 1
        assert row["both"] + row["only_one"] <= result["pairs"]
        assert row["agree"] == row["both"]  # the same verdicts as math-verify on every pair
    assert rows[0]["ratio"] == 1.0
