"""Peak memory and seconds per GRPO step with each memory feature on, next to TRL's GRPOTrainer.

The same model (a Qwen2-architecture stand-in with random weights, built offline by
``rewardgym.testing.standin``: hidden 256, 4 layers, GQA 4/2 heads, byte-level BPE vocabulary
and the Qwen2.5 chat template), the same arithmetic prompts and reward, the same sampling
(4 prompts x 4 samples, up to 96 new tokens, temperature 1), no KL term, AdamW lr 1e-5. Rows,
each cumulative:

| row | rewardgym | TRL GRPOTrainer |
|---|---|---|
| fp32 | defaults | ``bf16=False`` |
| bf16 | ``trainer.mixed_precision=bf16`` (autocast, fp32 master weights) | ``bf16=True`` |
| + checkpointing | ``model.gradient_checkpointing=true`` | ``gradient_checkpointing=True`` |
| + LoRA | ``model.lora={r: 16, alpha: 32}`` (all linear layers) | ``peft_config=LoraConfig(...)`` |
| + packing | ``trainer.micro_batch_tokens=1024, trainer.packing=true`` | n/a (GRPOTrainer does not pack) |

Each cell runs in its own process (peak memory is per process). Memory: on CPU the peak resident
set size (RSS, polled every 2 ms) minus the RSS after imports, before the model loads; on a
GPU ``torch.cuda.max_memory_allocated``. Time: the median seconds per step after the first
(untimed) step, sampling included. On a CPU without bf16 instructions bf16 is emulated and much
slower than fp32: there, read the bf16 rows for memory, not speed.

    python benchmarks/memory.py            # 3 timed steps per cell
    python benchmarks/memory.py --quick    # 1 timed step per cell, fewer rows (smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

PROMPTS, GROUP, NEW_TOKENS, LR = 4, 4, 96, 1e-5
ENV = {"difficulty": 2, "prompt_style": "plain"}
MODEL = {"hidden_size": 256, "num_layers": 4, "num_heads": 4, "num_kv_heads": 2}
LORA = {"r": 16, "alpha": 32.0}
ROWS = ("fp32", "bf16", "+ checkpointing", "+ LoRA", "+ packing")


def features(row: str) -> dict:
    """The cumulative features of ``row``."""
    upto = ROWS[: ROWS.index(row) + 1]
    return {
        "bf16": "bf16" in upto,
        "checkpointing": "+ checkpointing" in upto,
        "lora": "+ LoRA" in upto,
        "packing": "+ packing" in upto,
    }


class PeakMemory:
    """Peak memory while the block runs: CUDA max allocated, else polled RSS over a baseline."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda

    def __enter__(self) -> PeakMemory:
        import psutil
        import torch

        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            return self
        self._process = psutil.Process()
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        import torch

        if self.cuda:
            self.bytes = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            self.bytes = self.peak - self.baseline


def run_rewardgym(model_dir: Path, row: str, steps: int, out: Path, cuda: bool) -> dict:
    from rewardgym.core.config import load_config
    from rewardgym.runner.trainer import Trainer

    f = features(row)
    model = {"name_or_path": str(model_dir), "device": "cuda" if cuda else "cpu"}
    trainer = {"steps": steps, "lr": LR}
    if f["checkpointing"]:
        model["gradient_checkpointing"] = True
    if f["lora"]:
        model["lora"] = LORA
    if f["bf16"]:
        trainer["mixed_precision"] = "bf16"
    if f["packing"]:
        trainer.update(micro_batch_tokens=1024, packing=True)
    config = load_config(
        {
            "env": {"id": "rewardgym/arithmetic-v0", "params": ENV},
            "model": model,
            "algorithm": {"name": "grpo", "params": {"kl_coef": 0.0}},
            "rollout": {"group_size": GROUP, "prompts_per_step": PROMPTS,
                        "max_new_tokens": NEW_TOKENS},
            "trainer": trainer,
            "eval": {"episodes": 1},
            "output_dir": str(out),
        }
    )  # fmt: skip
    with PeakMemory(cuda) as memory:
        Trainer(config, progress=False, log=lambda message: None).run()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"bytes": memory.bytes, "times": [r["time/step_s"] for r in records][1:]}


def run_trl(model_dir: Path, row: str, steps: int, out: Path, cuda: bool) -> dict:
    import torch
    import trl
    from _trl import StepTimes, arithmetic_reward, arithmetic_tasks, grpo_config
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    f = features(row)
    tasks = arithmetic_tasks(ENV, PROMPTS * steps)
    args = grpo_config(
        out, steps, prompts=PROMPTS, group=GROUP, new_tokens=NEW_TOKENS, lr=LR,
        bf16=f["bf16"], checkpointing=f["checkpointing"], cpu=not cuda,
    )  # fmt: skip
    peft_config = None
    if f["lora"]:
        peft_config = LoraConfig(
            r=LORA["r"], lora_alpha=LORA["alpha"], target_modules="all-linear",
            task_type="CAUSAL_LM",
        )  # fmt: skip
    with PeakMemory(cuda) as memory:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        if cuda:
            model = model.cuda()
        trainer = trl.GRPOTrainer(
            model=model,
            reward_funcs=arithmetic_reward(tasks),
            args=args,
            processing_class=tokenizer,
            train_dataset=Dataset.from_list(
                [{"prompt": [{"role": "user", "content": t.prompt}]} for t in tasks]
            ),
            peft_config=peft_config,
        )
        times = StepTimes()
        trainer.add_callback(times)
        trainer.train()
    return {"bytes": memory.bytes, "times": times.times[1:]}


def child(args: argparse.Namespace) -> None:
    """One cell, in this process; prints its result as JSON."""
    import torch

    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as tmp:
        run = run_rewardgym if args.lib == "rewardgym" else run_trl
        result = run(Path(args.model), args.row, args.steps, Path(tmp), cuda)
    print("RESULT " + json.dumps(result))


def cell(model: Path, lib: str, row: str, steps: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", lib, "--row", row, "--model", str(model),
         "--steps", str(steps)],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"{lib} / {row} failed (exit {proc.returncode}):\n{tail}")
    result = json.loads(lines[-1][len("RESULT ") :])
    result["s_per_step"] = statistics.median(result["times"]) if result["times"] else None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 timed step, fp32 and LoRA rows")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per cell (default 3)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON last")
    parser.add_argument("--child", choices=("rewardgym", "trl"), dest="lib", help=argparse.SUPPRESS)
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lib:
        return child(args)
    try:
        import peft  # noqa: F401
        import psutil  # noqa: F401
        import torch
        import trl
    except ImportError as exc:
        raise SystemExit(
            f"benchmarks/memory.py needs {exc.name}: pip install 'rewardgym[training,bench]' "
            "(or the dev extra)."
        ) from exc
    from rewardgym.testing.standin import save_standin

    steps = 1 if args.quick else args.steps
    rows = ("fp32", "+ LoRA") if args.quick else ROWS
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        model = save_standin(Path(tmp) / "model", "qwen2.5-instruct", **MODEL)
        for row in rows:
            for lib in ("rewardgym", "trl"):
                if lib == "trl" and row == "+ packing":
                    results.append({"row": row, "lib": lib, "bytes": None, "s_per_step": None})
                    continue
                print(f"  {lib:9} {row} ...", file=sys.stderr, flush=True)
                results.append({"row": row, "lib": lib, **cell(model, lib, row, steps + 1)})
    cuda = torch.cuda.is_available()
    where = torch.cuda.get_device_name() if cuda else f"{os.cpu_count()} CPUs"
    what = "CUDA max allocated" if cuda else "peak RSS over the post-import baseline"
    print(f"{platform.platform()}, Python {platform.python_version()}, torch {torch.__version__}, "
          f"TRL {trl.__version__}, {where}")  # fmt: skip
    print(f"Qwen2-architecture stand-in {MODEL}, {PROMPTS} prompts x {GROUP} samples, "
          f"{NEW_TOKENS} new tokens, {steps} timed step(s) per cell; memory: {what}\n")  # fmt: skip
    print(f"{'':18}{'rewardgym MiB':>15}{'s/step':>9}{'TRL MiB':>10}{'s/step':>9}{'mem ratio':>11}")
    by = {(r["row"], r["lib"]): r for r in results}

    def fmt(value, spec):
        return format(value, spec) if value is not None else "n/a"

    for row in rows:
        ours, theirs = by[row, "rewardgym"], by[row, "trl"]
        mib = [None if r["bytes"] is None else r["bytes"] / 2**20 for r in (ours, theirs)]
        ratio = mib[0] / mib[1] if mib[1] else None
        print(f"{row:18}{fmt(mib[0], '.0f'):>15}{fmt(ours['s_per_step'], '.3f'):>9}"
              f"{fmt(mib[1], '.0f'):>10}{fmt(theirs['s_per_step'], '.3f'):>9}"
              f"{fmt(ratio, '.2f'):>11}")  # fmt: skip
    if args.json:
        print(json.dumps({"steps": steps, "model": MODEL, "rows": results}))


if __name__ == "__main__":
    main()
