"""Smoke test of benchmarks/kk_throughput.py: it runs end to end with ``--quick``.

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


def test_kk_throughput_quick_run():
    env = {k: v for k, v in os.environ.items() if not k.startswith("REWARDGYM_")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "kk_throughput.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table, _, last = proc.stdout.rstrip().rpartition("\n")
    assert "items/s" in table and "vs reasoning-gym" in table
    rows = json.loads(last)["rows"]
    keys = {(r["people"], r["name"], r["what"]) for r in rows}
    assert keys == {
        (people, name, what)
        for people in (2, 3)
        for name in ("rewardgym/knights_knaves-v0", "reasoning-gym knights_knaves")
        for what in ("generate", "generate + verify")
    }
    for row in rows:
        assert row["items_per_s"] > 0 and len(row["runs"]) == 2
        if row["name"] == "reasoning-gym knights_knaves":
            assert row["ratio"] == 1.0
