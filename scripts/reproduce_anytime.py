"""The anytime-reasoning reproduction on CPU: BRPO vs its GRPO arm, and MRT vs outcome-only GRPO.

For each seed, the SFT warm-up of the ``brpo`` preset runs once; every arm then starts its RL
stage from that warm-up model, with the same seed, steps, prompts and samples per step:

- ``anytime_grpo`` (one summary at the largest budget), ``brpo`` (uniform prior),
  ``brpo_linear`` (linear prior): the comparison of BRPO's paper;
- ``episodic_grpo`` (outcome reward only) and ``mrt`` (progress reward, alpha 1): MRT's;
- on request, the ablations ``brpo_prior`` (prior only) and ``brpo_decouple`` (+ decoupled
  summaries), drawn with ``anytime_grpo`` and ``brpo`` (+ variance reduction).

Each run ends with the budget evaluation of ``eval.budgets`` (greedy traces cut at 0, 6, ...,
48 tokens, one forced answer each, on 200 held-out tasks). The script writes, under ``--out``:
``results.json`` (every run's numbers), ``results.md`` (the table, mean +- std over seeds) and
one PNG of mean budget-accuracy curves per comparison. A finished warm-up already in ``--out`` is
reused, and the saved results of arms not run again are kept (``--arms`` adds or replaces arms).

    python scripts/reproduce_anytime.py                       # 3 seeds, the five main arms
    python scripts/reproduce_anytime.py --arms brpo_prior brpo_decouple   # the ablations too
    python scripts/reproduce_anytime.py --seeds 0 --arms brpo --steps 20   # a quick look
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from rewardgym.core.config import load_config
from rewardgym.runner.trainer import Trainer

COMPARISONS = {
    "brpo": ["anytime_grpo", "brpo", "brpo_linear"],
    "mrt": ["episodic_grpo", "mrt"],
    "ablation": ["anytime_grpo", "brpo_prior", "brpo_decouple", "brpo"],
}
ARMS = list(dict.fromkeys(arm for arms in COMPARISONS.values() for arm in arms))
DEFAULT_ARMS = ["anytime_grpo", "brpo", "brpo_linear", "episodic_grpo", "mrt"]
NUMBERS = ("anytime_accuracy", "final_accuracy", "normalised_regret", "think_tokens")


def run(config, log_prefix: str) -> dict:
    start = time.perf_counter()
    summary = Trainer(config, overwrite=True, progress=False, log=lambda _: None).run()
    result = summary["stages"][-1]["eval"]
    print(
        f"{log_prefix}: accuracy {result['accuracy']:.3f}, anytime "
        f"{result['budgets']['anytime_accuracy']:.3f} ({time.perf_counter() - start:.0f} s)",
        flush=True,
    )
    return result


def warmup(seed: int, out: Path) -> tuple[Path, dict]:
    """The warm-up of ``seed``; one already finished in ``out`` is reused."""
    folder = out / f"warmup-s{seed}"
    summary = folder / "summary.json"
    if summary.is_file() and (folder / "model").is_dir():
        result = json.loads(summary.read_text())["stages"][-1]["eval"]
        print(f"seed {seed} warm-up: reusing {folder}", flush=True)
        return folder / "model", result
    config = load_config("brpo", [f"seed={seed}", "~stages.1", f"output_dir={folder}"])
    return folder / "model", run(config, f"seed {seed} warm-up")


def arm(name: str, seed: int, model: Path, out: Path, steps: int | None) -> dict:
    overrides = [
        f"seed={seed}",
        "~stages.0",
        f"model.name_or_path={model}",
        f"output_dir={out / f'{name}-s{seed}'}",
    ]
    if steps is not None:
        overrides.append(f"stages.0.trainer.steps={steps}")
    return run(load_config(name, overrides), f"seed {seed} {name}")


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def table(results: dict[str, list[dict]]) -> str:
    """Mean +- std over seeds of the budget evaluation's numbers, one row per arm."""
    head = "| run | anytime accuracy | final accuracy (48 tokens) | normalised regret | thinking tokens |"
    lines = [head, "|---|---|---|---|---|"]
    for name, runs in results.items():
        cells = [mean_std([r["budgets"][k] for r in runs]) for k in NUMBERS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curves(results: dict[str, list[dict]], out: Path) -> None:
    from rewardgym.plotting import mean_curves, plot_budget_curves

    for comparison, names in COMPARISONS.items():
        names = [n for n in ["warm-up", *names] if n in results]
        if len(names) < 2:
            continue
        reports = [mean_curves([r["budgets"] for r in results[n]]) for n in names]
        path = out / f"{comparison}_curves.png"
        plot_budget_curves(reports, names, path, title=f"digit sums: {comparison} comparison")
        print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=DEFAULT_ARMS, choices=ARMS)
    parser.add_argument("--steps", type=int, default=None, help="RL steps (default: the preset's)")
    parser.add_argument("--out", type=Path, default=Path("runs/anytime-reproduction"))
    parser.add_argument(
        "--report", action="store_true", help="only redraw the table and curves of --out"
    )
    args = parser.parse_args()
    if args.report:
        results = json.loads((args.out / "results.json").read_text())
        print(table(results))
        curves(results, args.out)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    saved = args.out / "results.json"
    results: dict[str, list[dict]] = json.loads(saved.read_text()) if saved.is_file() else {}
    fresh: dict[str, list[dict]] = {"warm-up": []}
    for seed in args.seeds:
        model, result = warmup(seed, args.out)
        fresh["warm-up"].append(result)
        for name in args.arms:
            fresh.setdefault(name, []).append(arm(name, seed, model, args.out, args.steps))
    results.update(fresh)  # arms not run this time keep their saved results
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    text = table(results)
    (args.out / "results.md").write_text(text + "\n")
    print(text)
    curves(results, args.out)


if __name__ == "__main__":
    main()
