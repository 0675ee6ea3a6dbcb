"""Seconds per GRPO step: rewardgym's trainer next to TRL's ``GRPOTrainer``, same model, same work.

Both train the same tiny Llama-architecture model (built from a config: hidden 256, 4 layers,
about 2.9M parameters, char-level tokenizer; the same initial weights) on the same arithmetic
prompts with the same reward (rewardgym's arithmetic verifier), with the settings of the issue:
8 prompts x 8 samples per step, up to 32 new tokens, temperature 1, fp32, no gradient
checkpointing, no KL term (no reference model), one optimizer step per batch, AdamW, lr 1e-5.

A step is everything: sampling, scoring, the loss, backward and the optimizer step. The first
``--warmup`` steps of each are not timed (TRL's ``train()`` start-up is excluded the same way).
rewardgym's time per step is read from its ``time/step_s`` metric; TRL's from a callback at the
end of each step. The table prints the median seconds per step and the ratio, then where each
step's time went (``_phases.PhaseClock``: sampling, the trainer's forward passes, backward, the
optimizer step, and the rest), measured the same way for both in the same steps.

    python benchmarks/grpo_step.py             # 12 timed steps each
    python benchmarks/grpo_step.py --quick     # 2 timed steps each (a smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

try:
    import torch
    import trl
    from datasets import Dataset
except ImportError as exc:  # a benchmark that cannot compare is a failure, not a skip
    raise SystemExit(
        "benchmarks/grpo_step.py compares with TRL, which is not installed: "
        "pip install 'rewardgym[training,bench]' (or the dev extra)."
    ) from exc

from _phases import PHASES, PhaseClock  # noqa: E402 -- benchmarks/ is the script's folder
from _trl import StepTimes, arithmetic_reward, arithmetic_tasks, grpo_config

from rewardgym.core.config import load_config
from rewardgym.runner.engines.hf import HFEngine
from rewardgym.runner.models import TinyModelConfig, build_tiny_model, save_model
from rewardgym.runner.trainer import Trainer

MODEL = {"hidden_size": 256, "num_layers": 4, "num_heads": 4}
PROMPTS, GROUP, NEW_TOKENS, LR = 8, 8, 32, 1e-5
ENV = {"difficulty": 2, "prompt_style": "plain"}


def rewardgym_steps(model_dir: Path, steps: int, out: Path, clock: PhaseClock) -> list[float]:
    config = load_config(
        {
            "env": {"id": "rewardgym/arithmetic-v0", "params": ENV},
            "model": {"name_or_path": str(model_dir)},
            "algorithm": {"name": "grpo", "params": {"kl_coef": 0.0}},
            "rollout": {
                "group_size": GROUP,
                "prompts_per_step": PROMPTS,
                "max_new_tokens": NEW_TOKENS,
            },
            "trainer": {"steps": steps, "lr": LR},
            "eval": {"episodes": 1},
            "output_dir": str(out),
        }
    )
    trainer = Trainer(config, progress=False, log=lambda message: None)
    step = trainer._step

    def timed_step(*args, **kwargs):
        clock.step_begin()
        try:
            return step(*args, **kwargs)
        finally:
            clock.step_end()

    trainer._step = timed_step
    with clock_on_model(clock):
        trainer.run()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["time/step_s"] for r in records]


@contextmanager
def clock_on_model(clock: PhaseClock):
    """Install ``clock`` on rewardgym's model as soon as the trainer has loaded it."""
    import rewardgym.runner.trainer as module

    build = module.build_runtime
    with ExitStack() as stack:

        def build_and_install(plan):
            runtime = build(plan)
            stack.enter_context(clock.installed(runtime[0], (HFEngine, "generate")))
            return runtime

        module.build_runtime = build_and_install
        stack.callback(setattr, module, "build_runtime", build)
        yield


def trl_steps(model_dir: Path, steps: int, out: Path, clock: PhaseClock) -> list[float]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tasks = arithmetic_tasks(ENV, PROMPTS * steps)
    args = grpo_config(out, steps, prompts=PROMPTS, group=GROUP, new_tokens=NEW_TOKENS, lr=LR)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    trainer = trl.GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32),
        reward_funcs=arithmetic_reward(tasks),
        args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list([{"prompt": t.prompt} for t in tasks]),
    )
    from transformers import GenerationMixin

    timer = StepTimes(clock)
    trainer.add_callback(timer)
    with clock.installed(trainer.model, (GenerationMixin, "generate")):
        trainer.train()
    return timer.times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 timed steps each (a smoke run)")
    parser.add_argument("--steps", type=int, default=12, help="timed steps each (default 12)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON last")
    args = parser.parse_args()
    timed = 2 if args.quick else args.steps
    warmup = 1 if args.quick else args.warmup
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer = build_tiny_model(TinyModelConfig(**MODEL))
        params = sum(p.numel() for p in model.parameters())
        save_model(model, tokenizer, Path(tmp) / "model")
        clocks = PhaseClock(), PhaseClock()
        ours = rewardgym_steps(Path(tmp) / "model", warmup + timed, Path(tmp) / "ours", clocks[0])
        theirs = trl_steps(Path(tmp) / "model", warmup + timed, Path(tmp) / "trl", clocks[1])
        ours, theirs = ours[warmup:], theirs[warmup:]
    rows = [
        {"name": "rewardgym grpo", "s_per_step": statistics.median(ours), "runs": ours},
        {
            "name": f"TRL {trl.__version__} GRPOTrainer",
            "s_per_step": statistics.median(theirs),
            "runs": theirs,
        },
    ]
    base = rows[1]["s_per_step"]
    print(f"{platform.platform()}, Python {platform.python_version()}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, {torch.get_num_threads()} threads")  # fmt: skip
    print(f"model {params / 1e6:.2f}M params, {PROMPTS} prompts x {GROUP} samples, "
          f"{NEW_TOKENS} new tokens, fp32, {timed} timed steps after {warmup} untimed\n")  # fmt: skip
    print(f"{'':34}{'s/step':>10}{'vs TRL':>10}")
    for row in rows:
        row["ratio"] = row["s_per_step"] / base
        print(f"{row['name']:34}{row['s_per_step']:>10.3f}{row['ratio']:>9.2f}x")
    phases = [clock.per_step(warmup) for clock in clocks]
    for row, phase in zip(rows, phases, strict=True):
        row["phases"] = phase
    names = (*PHASES, "other", "step")
    print(f"\nmedian s/step by phase{'':12}" + "".join(f"{n:>10}" for n in names))
    for row in rows:
        print(f"{row['name']:34}" + "".join(f"{row['phases'][n]:>10.3f}" for n in names))
    if args.json:
        print(json.dumps({"steps": timed, "params": params, "rows": rows}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
