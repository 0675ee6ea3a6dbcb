"""Smoke test of benchmarks/sandbox_start.py: it runs end to end with ``--quick``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(os.name != "posix", reason="the sandbox needs POSIX")
def test_sandbox_start_quick_run():
    env = {k: v for k, v in os.environ.items() if not k.startswith("REWARDGYM_")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "sandbox_start.py"), "--quick", "--json"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table, _, last = proc.stdout.rstrip().rpartition("\n")
    assert "median ms" in table and "vs plain subprocess" in table
    data = json.loads(last)
    names = [row["name"] for row in data["rows"]]
    assert names[:4] == [
        "plain subprocess", "sandbox, all layers", "sandbox, namespaces off",
        "sandbox, no audit hook",
    ]  # fmt: skip
    assert data["rows"][0]["ratio"] == 1.0
    assert all(row["median_ms"] > 0 for row in data["rows"])
    assert "process" in data["isolation"]
