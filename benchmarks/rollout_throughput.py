"""Rollout sampling throughput: rewardgym's ``hf`` engine next to transformers' ``model.generate``.

Both sample from the same tiny Llama-architecture model (built from a config: hidden 256,
4 layers, 4.2M parameters, char-level tokenizer) in fp32 on the CPU: 64 rows of short arithmetic
prompts (8 prompts x 8 samples, as in a GRPO step), temperature 1, no top-p/top-k, up to
``--new-tokens`` new tokens. Runs alternate between the two, after one untimed warm-up each.
Tokens per second counts the tokens actually generated (eos included, padding after eos not).
rewardgym's engine also returns each token's log-prob and checks stop strings; ``generate``
here returns ids only.

    python benchmarks/rollout_throughput.py            # 11 runs each, 32 new tokens
    python benchmarks/rollout_throughput.py --quick    # 2 runs each (a smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

try:
    import torch

    from rewardgym.core.engine import SamplingParams
    from rewardgym.runner.engines.hf import HFEngine
    from rewardgym.runner.models import TinyModelConfig, build_tiny_model
except ImportError as exc:
    raise SystemExit(
        "benchmarks/rollout_throughput.py needs the training extra: "
        "pip install 'rewardgym[training]' (or the dev extra)."
    ) from exc

MODEL = {"hidden_size": 256, "num_layers": 4, "num_heads": 4}
PROMPTS, GROUP = 8, 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 runs each (a smoke run)")
    parser.add_argument("--runs", type=int, default=11, help="timed runs each (default 11)")
    parser.add_argument("--new-tokens", type=int, default=32, help="max new tokens (default 32)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON last")
    args = parser.parse_args()
    runs = 2 if args.quick else args.runs
    model, tok = build_tiny_model(TinyModelConfig(**MODEL))
    model.eval()
    texts = [f"{10 + 7 * i}+{90 + 13 * i}=" for i in range(PROMPTS) for _ in range(GROUP)]
    prompts = [[tok.bos_token_id, *tok(t, add_special_tokens=False)["input_ids"]] for t in texts]
    engine = HFEngine(model, tok)
    enc = tok([tok.bos_token + t for t in texts], return_tensors="pt", padding=True,
              add_special_tokens=False)  # fmt: skip

    def ours(seed: int) -> int:
        params = SamplingParams(max_new_tokens=args.new_tokens, temperature=1.0, seed=seed)
        return sum(len(g.token_ids) for g in engine.generate(prompts, params))

    def generate(seed: int) -> int:
        torch.manual_seed(seed)
        with torch.inference_mode():
            out = model.generate(**enc, do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                                 max_new_tokens=args.new_tokens, pad_token_id=tok.pad_token_id)  # fmt: skip
        new = out[:, enc["input_ids"].shape[1] :].tolist()
        eos = tok.eos_token_id
        return sum(next((i + 1 for i, t in enumerate(r) if t == eos), len(r)) for r in new)

    rows = {"rewardgym hf engine": (ours, []), "transformers model.generate": (generate, [])}
    for fn, _ in rows.values():
        fn(0)  # warm-up
    for run in range(runs):
        for fn, rates in rows.values():
            start = time.perf_counter()
            tokens = fn(run + 1)
            rates.append(tokens / (time.perf_counter() - start))
    results = [
        {"name": n, "tokens_per_s": statistics.median(r), "runs": r} for n, (_, r) in rows.items()
    ]
    base = results[1]["tokens_per_s"]
    print(f"{platform.platform()}, Python {platform.python_version()}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, {torch.get_num_threads()} threads")  # fmt: skip
    print(f"model {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params, {PROMPTS} "
          f"prompts x {GROUP} samples, {args.new_tokens} new tokens, fp32, {runs} runs each\n")  # fmt: skip
    print(f"{'':32}{'tokens/s':>10}{'vs generate':>14}")
    for row in results:
        row["ratio"] = row["tokens_per_s"] / base
        print(f"{row['name']:32}{row['tokens_per_s']:>10.0f}{row['ratio']:>13.2f}x")
    if args.json:
        print(json.dumps({"runs": runs, "new_tokens": args.new_tokens, "rows": results}))


if __name__ == "__main__":
    main()
