"""Smoke tests of the benchmarks: each script runs end to end with ``--quick --json``.

reasoning-gym and TRL are part of the dev extra, so a missing peer library fails these tests (the script
exits with the pip command to run) rather than skipping them. The quick numbers are not read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def run_quick(script: str) -> tuple[str, Any]:
    """Run ``benchmarks/<script> --quick --json``; return the printed table and the JSON line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REWARDGYM_")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), "--quick", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table, _, last = proc.stdout.rstrip().rpartition("\n")
    return table, json.loads(last)


def test_env_throughput_quick_run():
    table, result = run_quick("env_throughput.py")
    assert "items/s" in table and "vs reasoning-gym" in table
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


def test_kk_throughput_quick_run():
    table, result = run_quick("kk_throughput.py")
    assert "items/s" in table and "vs reasoning-gym" in table
    rows = result["rows"]
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


def test_math_verify_throughput_quick_run():
    table, result = run_quick("math_verify_throughput.py")
    assert "pairs/s" in table and "vs direct" in table and "agreement" in table
    rows = result["rows"]
    assert [r["name"] for r in rows] == ["math-verify direct"] + ["rewardgym MathVerifier"] * 3
    for row in rows:
        assert row["pairs_per_s"] > 0 and len(row["runs"]) == 1
        assert row["both"] + row["only_one"] <= result["pairs"]
        assert row["agree"] == row["both"]  # the same verdicts as math-verify on every pair
    assert rows[0]["ratio"] == 1.0


def test_sandbox_start_quick_run():
    table, data = run_quick("sandbox_start.py")
    assert "median ms" in table and "vs plain subprocess" in table
    names = [row["name"] for row in data["rows"]]
    assert names[:4] == [
        "plain subprocess",
        "sandbox, all layers",
        "sandbox, namespaces off",
        "sandbox, no audit hook",
    ]
    assert data["rows"][0]["ratio"] == 1.0
    assert all(row["median_ms"] > 0 for row in data["rows"])
    assert "process" in data["isolation"]


def test_grpo_step_quick_run():
    table, data = run_quick("grpo_step.py")
    assert "s/step" in table and "vs TRL" in table
    names = [row["name"] for row in data["rows"]]
    assert names[0] == "rewardgym grpo" and names[1].startswith("TRL ")
    assert data["rows"][1]["ratio"] == 1.0
    assert all(row["s_per_step"] > 0 and len(row["runs"]) == 2 for row in data["rows"])
    for row in data["rows"]:  # where the time went, the same phases for both
        phases = row["phases"]
        assert set(phases) == {"sampling", "forward", "backward", "optimizer", "other", "step"}
        assert phases["sampling"] > 0 and phases["backward"] > 0 and phases["step"] > 0


def test_memory_quick_run():
    table, data = run_quick("memory.py")
    assert "rewardgym MiB" in table and "TRL MiB" in table
    cells = {(row["row"], row["lib"]): row for row in data["rows"]}
    assert set(cells) == {(r, lib) for r in ("fp32", "+ LoRA") for lib in ("rewardgym", "trl")}
    for row in cells.values():
        assert row["bytes"] > 0 and row["s_per_step"] > 0


def test_rollout_throughput_quick_run():
    table, data = run_quick("rollout_throughput.py")
    assert "tokens/s" in table and "vs generate" in table
    names = [row["name"] for row in data["rows"]]
    assert names == ["rewardgym hf engine", "transformers model.generate"]
    assert data["rows"][1]["ratio"] == 1.0
    assert all(row["tokens_per_s"] > 0 and len(row["runs"]) == 2 for row in data["rows"])


def test_anytime_step_quick_run():
    table, data = run_quick("anytime_step.py")
    assert "s/step" in table and "vs grpo" in table
    names = [row["name"] for row in data["rows"]]
    assert names == ["grpo", "anytime_grpo", "brpo A=2", "brpo A=2 rows", "brpo A=4", "mrt"]
    assert data["rows"][0]["ratio"] == 1.0 and data["rows"][0]["forced_answers"] == 0
    assert data["rows"][2]["forced_answers"] == 4 * 8 * 4 * 2
    assert all(row["s_per_step"] > 0 and len(row["runs"]) == 2 for row in data["rows"])
