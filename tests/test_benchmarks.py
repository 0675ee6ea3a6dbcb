"""Smoke test of the benchmarks: each runs end to end with ``--quick``.

reasoning-gym is part of the dev extra, so a missing reasoning-gym fails this test (the script
exits with the pip command to run) rather than skipping it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_env_throughput_quick_run():
    env = {k: v for k, v in os.environ.items() if not k.startswith("REWARDGYM_")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "env_throughput.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table, _, last = proc.stdout.rstrip().rpartition("\n")
    assert "items/s" in table and "vs reasoning-gym" in table
    result = json.loads(last)
    rows = {(r["name"], r["what"]): r for r in result["rows"]}
    assert len(rows) == 4
    assert {name for name, _ in rows} == {
        "rewardgym/arithmetic-v0",
        "reasoning-gym basic_arithmetic",
    }
    for row in rows.values():
        assert row["items_per_s"] > 0 and len(row["runs"]) == 2
    baseline = rows[("reasoning-gym basic_arithmetic", "dataset[i] + score_answer")]
    assert baseline["ratio"] == 1.0
