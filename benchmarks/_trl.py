"""What the benchmarks that run TRL's ``GRPOTrainer`` share: the arithmetic tasks and reward
(rewardgym's own verifier), the GRPO settings matched to rewardgym's run, and a step timer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import trl
from transformers import TrainerCallback

from rewardgym.envs.arithmetic import ArithmeticConfig, ArithmeticEnv, ArithmeticVerifier


def arithmetic_tasks(env_params: dict, n: int) -> list[Any]:
    """``n`` arithmetic tasks drawn with seed 0."""
    env = ArithmeticEnv(ArithmeticConfig(**env_params))
    env.reset(seed=0)
    return [env.sample_task(env.np_random) for _ in range(n)]


def arithmetic_reward(tasks: list[Any]):
    """TRL's reward function over ``tasks``: rewardgym's arithmetic verifier on each completion
    (plain text, or conversational: a list of messages)."""
    verifier = ArithmeticVerifier()
    by_prompt = {t.prompt: t for t in tasks}

    def reward(prompts, completions, **kwargs):
        out = []
        for prompt, completion in zip(prompts, completions, strict=False):
            text = completion[0]["content"] if isinstance(completion, list) else completion
            task = by_prompt[prompt[-1]["content"] if isinstance(prompt, list) else prompt]
            out.append(verifier.verify(text, task).reward or 0.0)
        return out

    return reward


def grpo_config(
    out: Path,
    steps: int,
    *,
    prompts: int,
    group: int,
    new_tokens: int,
    lr: float,
    bf16: bool = False,
    checkpointing: bool = False,
    cpu: bool = True,
) -> trl.GRPOConfig:
    """GRPO as rewardgym's benchmark runs it: ``prompts`` x ``group`` samples per step,
    temperature 1, no KL term, one optimizer step per batch, no logging or saving."""
    return trl.GRPOConfig(
        output_dir=str(out),
        per_device_train_batch_size=prompts * group,
        num_generations=group,
        max_completion_length=new_tokens,
        temperature=1.0,
        learning_rate=lr,
        beta=0.0,
        num_iterations=1,
        max_steps=steps,
        bf16=bf16,
        fp16=False,
        gradient_checkpointing=checkpointing,
        use_cpu=cpu,
        report_to="none",
        logging_steps=1_000_000,
        save_strategy="no",
        dataloader_num_workers=0,
        seed=0,
    )


class StepTimes(TrainerCallback):
    """Seconds of each training step (and the step windows of a ``PhaseClock``, if given)."""

    def __init__(self, clock: Any = None) -> None:
        self.times: list[float] = []
        self.clock = clock

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()
        if self.clock is not None:
            self.clock.step_begin()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._start)
        if self.clock is not None:
            self.clock.step_end()
