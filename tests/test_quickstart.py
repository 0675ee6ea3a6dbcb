"""The README's main job: ``rewardgym train quickstart`` on the CPU, checked against its promise
(the evaluation accuracy after GRPO is at least 15 points above the accuracy after the SFT
warm-up, in under 10 minutes). About 2.5 minutes on 2 cores, so it is its own CI step
(``make test-quickstart``), deselected from the default run by the ``quickstart`` marker."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.quickstart


def test_quickstart_learns_after_the_warm_up(tmp_path):
    run = tmp_path / "quickstart"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "rewardgym", "train", "quickstart", f"output_dir={run}",
         "--no-progress"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    warmup, rl = (stage["eval"]["accuracy"] for stage in summary["stages"])
    print(f"quickstart: warm-up {warmup:.3f} -> GRPO {rl:.3f} in {wall:.0f} s")
    assert rl >= warmup + 0.15, (warmup, rl)
    assert wall < 600
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {m["stage"] for m in metrics} == {"warmup", "rl"}
    assert (run / "model" / "config.json").is_file()
