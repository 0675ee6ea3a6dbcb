"""Short runs of every preset and of the other built-in algorithms, to check that a change keeps
training the same: same seed, same metrics.

    python scripts/preset_metrics.py runs/metrics-new                 # all cases
    python scripts/preset_metrics.py runs/metrics-new brpo mrt        # some cases
    python scripts/preset_metrics.py --compare runs/metrics-old runs/metrics-new

Each case trains a preset with a short warm-up (20 to 30 SFT steps) and 2 to 3 RL steps and
writes ``OUT/<case>.json``: every line of its metrics.jsonl without the ``time/`` keys, and its
evaluations without ``time_s``. ``--compare`` prints, per case, IDENTICAL or each key whose value
differs (with the relative difference). Run it on two checkouts (``PYTHONPATH=OTHER_CHECKOUT``
runs another one with the same environment). About 6 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

WARMUP = ["stages.0.trainer.eval_every=0", "~stages.0.trainer.stop_at_eval_accuracy"]
QUICK = [
    *WARMUP, "stages.0.trainer.steps=20", "stages.1.trainer.steps=3",
    "stages.1.trainer.eval_every=0", "eval.episodes=8", "rollout.prompts_per_step=8",
]  # fmt: skip
ANYTIME = [
    "stages.0.trainer.steps=30", "stages.1.trainer.steps=2", "stages.1.trainer.eval_every=0",
    "eval.episodes=8",
]  # fmt: skip
CASES = {
    "quickstart": ("quickstart", QUICK),
    "rloo": ("quickstart", [*QUICK, "stages.1.algorithm.name=rloo"]),
    "dr_grpo": ("quickstart", [*QUICK, "stages.1.algorithm.name=dr_grpo"]),
    "reinforce_pp": (
        "quickstart",
        [*QUICK, "stages.1.algorithm.name=reinforce_pp", "stages.1.algorithm.params.kl_coef=0.05"],
    ),
    "grpo_kl": (
        "quickstart",
        [*QUICK, "stages.1.algorithm.params.kl_coef=0.05", "trainer.grad_accum=2"],
    ),
    "rft": (
        "quickstart",
        [*QUICK, "stages.1.algorithm.name=rft", "stages.1.algorithm.params.threshold=0.0"],
    ),
    "dpo": ("quickstart", [*QUICK, "stages.1.algorithm.name=dpo"]),
    "multiturn": ("quickstart", [*QUICK, "env.params.max_turns=2"]),
    "brpo": ("brpo", ANYTIME),
    "brpo_rows": ("brpo", [*ANYTIME, "strategies.anytime.shared_prefix=false"]),
    **{name: (name, ANYTIME) for name in ("anytime_grpo", "brpo_prior", "brpo_decouple")},
    **{name: (name, ANYTIME) for name in ("brpo_linear", "mrt", "episodic_grpo")},
    "mrt_termination": ("mrt_termination", ANYTIME),
}


def run(out: Path, names: list[str]) -> None:
    from rewardgym.core.config import load_config
    from rewardgym.runner.trainer import Trainer

    out.mkdir(parents=True, exist_ok=True)
    for name in names or list(CASES):
        preset, overrides = CASES[name]
        folder = out / "runs" / name
        config = load_config(preset, [*overrides, f"output_dir={folder}"])
        Trainer(config, overwrite=True, progress=False, log=lambda message: None).run()
        lines = (folder / "metrics.jsonl").read_text().splitlines()
        metrics = [
            {k: v for k, v in json.loads(x).items() if not k.startswith("time/")} for x in lines
        ]
        evals = {
            p.stem: {k: v for k, v in json.loads(p.read_text()).items() if k != "time_s"}
            for p in sorted((folder / "eval").glob("*.json"))
        }
        (out / f"{name}.json").write_text(json.dumps({"metrics": metrics, "eval": evals}))
        print(f"{name}: {len(metrics)} lines", flush=True)


def compare(old: Path, new: Path) -> None:
    for path in sorted(new.glob("*.json")):
        a, b = json.loads((old / path.name).read_text()), json.loads(path.read_text())
        diffs = [] if len(a["metrics"]) == len(b["metrics"]) else ["the number of lines"]
        for i, (x, y) in enumerate(zip(a["metrics"], b["metrics"], strict=False)):
            for key in sorted(set(x) | set(y)):
                if x.get(key) != y.get(key):
                    v, w = x.get(key), y.get(key)
                    rel = abs(v - w) / max(abs(v), 1e-12) if isinstance(v, float) and w else None
                    diffs.append(f"line {i} {key}: {v} -> {w} (relative {rel})")
        if a["eval"] != b["eval"]:
            diffs.append("the evaluations")
        print(f"{path.stem}: " + ("IDENTICAL" if not diffs else f"{len(diffs)} differences"))
        for line in diffs[:10]:
            print("   ", line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="OUT [CASE ...], or with --compare OLD NEW")
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    if args.compare:
        old, new = (Path(p) for p in args.paths)
        compare(old, new)
        return
    unknown = [n for n in args.paths[1:] if n not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {', '.join(CASES)}")
    warnings.filterwarnings("ignore")
    run(Path(args.paths[0]), args.paths[1:])


if __name__ == "__main__":
    main()
