"""Seconds per training step of the anytime (BRPO) and episodic (MRT) strategies, next to a
plain GRPO step with the same prompts, samples and thinking length.

No peer library has an anytime or episodic rollout to run side by side (verl, TRL, OpenRLHF and
verifiers sample one completion per row and score it once), so the reference is rewardgym's own
GRPO step, whose comparison with TRL's ``GRPOTrainer`` is ``benchmarks/grpo_step.py``. BRPO's
paper reports a training overhead under 10% over GRPO, with vLLM's prefix caching on GPUs.

Every arm trains the same tiny model (built from a config: hidden 128, 2 layers, the same
initial weights, saved once and loaded by path) on ``rewardgym/digit_sum-v0`` with 4 prompts x
8 samples per step, temperature 1, lr 3e-4, no warm-up (an untrained model writes traces that run
to the cap, the worst case for forced answers). Arms:

- ``grpo``: standard rollouts of up to 48 + 5 tokens (the thinking budget plus the answer);
- ``anytime_grpo``: traces of up to 48 tokens, one summary at 48 (the paper's GRPO arm);
- ``brpo A=2`` / ``brpo A=4``: budgets 12, 24, 36, 48, A summaries of up to 5 tokens at each,
  trained in one pass over each trace (``shared_prefix``: the summaries continue from the
  trace's KV cache);
- ``brpo A=2 rows``: the same as ``brpo A=2`` with every summary trained as its own row
  (``shared_prefix: false``), to show what the shared prefix saves;
- ``mrt``: episodic rollouts, 4 probes after every paragraph (digits as markers) and a final
  answer.

A step is everything: sampling, scoring, the loss, backward and the optimizer step. The table
prints the median seconds per step (after ``--warmup`` untimed steps), the rollout and update
parts, the forced answers sampled per step, and the ratio to ``grpo``.

    python benchmarks/anytime_step.py             # 8 timed steps each
    python benchmarks/anytime_step.py --quick     # 2 timed steps each (a smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

try:
    import torch
except ImportError as exc:
    raise SystemExit(
        "benchmarks/anytime_step.py needs the training extra: pip install 'rewardgym[training]'"
    ) from exc

from rewardgym.core.config import load_config
from rewardgym.runner.models import TinyModelConfig, build_tiny_model, save_model
from rewardgym.runner.trainer import Trainer

PROMPTS, GROUP, THINK, ANSWER = 4, 8, 48, 5
BUDGETS = [12, 24, 36, 48]
DIGITS = [str(d) for d in range(10)]


def anytime_arm(budgets: list[int], summaries: int, **params: object) -> dict:
    """A ``brpo`` arm on the anytime strategy; ``params`` go to the algorithm or, for
    ``shared_prefix`` and ``prior``, to ``strategies.anytime``."""
    shared = params.pop("shared_prefix", True)
    prior = params.pop("prior", "uniform")
    anytime = {
        "budgets": budgets,
        "prior": prior,
        "summaries": summaries,
        "summary_max_tokens": ANSWER,
        "shared_prefix": shared,
    }
    return {
        "algorithm": {"name": "brpo", "params": params},
        "rollout": {},
        "strategies": {"anytime": anytime},
    }


ARMS = {
    "grpo": {
        "algorithm": {"name": "grpo"},
        "rollout": {"max_new_tokens": THINK + ANSWER},
        "strategies": {},
    },
    "anytime_grpo": anytime_arm([THINK], 1, prior="base", decouple=False,
                                variance_reduction=False),
    "brpo A=2": anytime_arm(BUDGETS, 2),
    "brpo A=2 rows": anytime_arm(BUDGETS, 2, shared_prefix=False),
    "brpo A=4": anytime_arm(BUDGETS, 4),
    "mrt": {
        "algorithm": {"name": "mrt"},
        "rollout": {"max_new_tokens": THINK},
        "strategies": {
            "episodic": {"markers": DIGITS, "min_gap": 0, "probes": 4,
                         "probe_max_tokens": ANSWER},
        },
    },
}  # fmt: skip


def forced_answers(name: str, record: dict) -> float:
    """Forced answers sampled in a step (summaries or probes plus final answers)."""
    rows = PROMPTS * GROUP
    anytime = ARMS[name]["strategies"].get("anytime")
    if anytime:
        return rows * len(anytime["budgets"]) * anytime["summaries"]
    if name == "mrt":
        return rows * (1 + 4 * (record.get("episodes", 0.0) + 1))
    return 0.0


def run_arm(name: str, model_dir: Path, steps: int, out: Path) -> list[dict]:
    arm = ARMS[name]
    config = load_config(
        {
            "env": {"id": "rewardgym/digit_sum-v0"},
            "model": {"name_or_path": str(model_dir)},
            "algorithm": arm["algorithm"],
            "rollout": {"group_size": GROUP, "prompts_per_step": PROMPTS, **arm["rollout"]},
            "strategies": arm["strategies"],
            "trainer": {"steps": steps, "lr": 3e-4},
            "eval": {"episodes": 1, "max_new_tokens": 4},
            "output_dir": str(out),
        }
    )
    Trainer(config, progress=False, log=lambda message: None).run()
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 timed steps each (a smoke run)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps each (default 8)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON last")
    args = parser.parse_args()
    timed = 2 if args.quick else args.steps
    warmup = 1 if args.quick else args.warmup
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer = build_tiny_model(TinyModelConfig())
        params = sum(p.numel() for p in model.parameters())
        save_model(model, tokenizer, Path(tmp) / "model")
        for name in ARMS:
            records = run_arm(name, Path(tmp) / "model", warmup + timed, Path(tmp) / name)
            timed_records = records[warmup:]

            def median(key: str, records=timed_records) -> float:
                return statistics.median(r[key] for r in records)

            rows.append(
                {
                    "name": name,
                    "s_per_step": median("time/step_s"),
                    "rollout_s": median("time/rollout_s"),
                    "update_s": median("time/update_s"),
                    "forced_answers": statistics.mean(
                        forced_answers(name, r) for r in timed_records
                    ),
                    "runs": [r["time/step_s"] for r in timed_records],
                }
            )
    base = rows[0]["s_per_step"]
    print(f"{platform.platform()}, Python {platform.python_version()}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, {torch.get_num_threads()} threads")  # fmt: skip
    print(f"model {params / 1e6:.2f}M params, {PROMPTS} prompts x {GROUP} samples, thinking up to "
          f"{THINK} tokens, {timed} timed steps after {warmup} untimed\n")  # fmt: skip
    print(f"{'':16}{'s/step':>9}{'rollout':>9}{'update':>9}{'answers':>9}{'vs grpo':>9}")
    for row in rows:
        row["ratio"] = row["s_per_step"] / base
        print(f"{row['name']:16}{row['s_per_step']:>9.3f}{row['rollout_s']:>9.3f}"
              f"{row['update_s']:>9.3f}{row['forced_answers']:>9.0f}{row['ratio']:>8.2f}x")  # fmt: skip
    if args.json:
        print(json.dumps({"steps": timed, "params": params, "rows": rows}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
