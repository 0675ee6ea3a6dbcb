"""Thinking traces and answers forced from their prefixes: the sampling behind the strategies
that score a trace part-way (``anytime``, ``episodic``) and behind budget evaluation.

A *thinking trace* is what the model writes after the prompt, up to the env's end-of-thinking
marker (``answer_forcing.think_end``, a stop string) or a token cap. A *forced answer* is sampled
from a prefix of a trace with the env's answer-forcing suffix appended
(:class:`~rewardgym.core.forcing.AnswerForcing`: a truncated prefix gets the truncation marker,
the end-of-thinking marker and the answer cue; a trace that closed itself gets the answer cue
only) and is scored by the same protocol. Inserted tokens are context, never trained on: they
sit in the prompt part of the rows the trainer builds, or in the untrained head of a
:class:`~rewardgym.strategies.batch.Continuations` row.

Prompts and the forcing strings come from the run's
:class:`~rewardgym.strategies.prompts.PromptFormat`: with a chat template, a trace is sampled
after the rendered prompt (generation prompt and ``model.chat.think_open`` included), so a forced
answer's context is that prompt, the trace's first tokens and the suffix, all inside the
assistant's turn; ``model.chat.think_end`` / ``answer_cue`` replace the env's strings.

Everything goes through the engine in one call per phase (all traces, then all forced answers).
Prefix reuse: the ``hf`` engine prefills identical contexts once (the samples forced from one
cut share one prefill) but prefills the contexts of different cuts of the same trace
separately; an engine with a prefix cache (vLLM) shares the trace prefix across cuts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from rewardgym.core.engine import Engine, SamplingParams
from rewardgym.core.env import TextEnv
from rewardgym.core.types import Task, Verdict
from rewardgym.strategies.batch import Continuations
from rewardgym.strategies.prompts import PromptFormat, encode_text

__all__ = ["ForcedAnswer", "Trace", "continuations", "force_answers", "think"]


@dataclass(frozen=True)
class Trace:
    """One thinking trace: the prompt ids and the sampled ids with their log-probs. ``ended``:
    the model closed it itself with the end-of-thinking marker (else it hit the token cap)."""

    task: Task
    prompt_ids: tuple[int, ...]
    ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    text: str
    ended: bool

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class ForcedAnswer:
    """An answer forced from the first ``cut`` tokens of trace ``trace`` (cut point ``point``).

    ``context``: prompt + trace[:cut] + the inserted suffix (``suffix_len`` ids), all as ids.
    ``ids``/``logprobs``/``text``: the sampled answer. ``verdict``: its score."""

    trace: int
    point: int
    cut: int
    context: tuple[int, ...]
    suffix_len: int
    ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    text: str
    verdict: Verdict

    @property
    def reward(self) -> float:
        return 0.0 if self.verdict.reward is None else float(self.verdict.reward)


def think(
    engine: Engine,
    prompts: PromptFormat,
    env: TextEnv,
    tasks: Sequence[Task],
    group_size: int,
    params: SamplingParams,
) -> list[Trace]:
    """``group_size`` thinking traces per task (a task's traces contiguous), each at most
    ``params.max_new_tokens`` tokens after the task's prompt (as ``prompts`` renders it),
    stopped at the end-of-thinking marker (added to ``params.stop``)."""
    think_end = prompts.forcing(env).think_end
    ids = [tuple(prompts.prompt_ids(t.prompt)) for t in tasks]
    prompt_ids = [p for p in ids for _ in range(group_size)]
    rows = [t for t in tasks for _ in range(group_size)]
    stop = tuple(dict.fromkeys((*params.stop, think_end)))
    generations = engine.generate([list(p) for p in prompt_ids], replace(params, stop=stop))
    return [
        Trace(task, prompt, g.token_ids, g.logprobs, g.text, think_end in g.text)
        for task, prompt, g in zip(rows, prompt_ids, generations, strict=True)
    ]


def force_answers(
    engine: Engine,
    prompts: PromptFormat,
    env: TextEnv,
    traces: Sequence[Trace],
    cuts: Sequence[Sequence[int]],
    samples: int,
    params: SamplingParams,
) -> list[ForcedAnswer]:
    """``samples`` forced answers at each cut of each trace, ordered by trace, then cut point,
    then sample. ``cuts[i]`` lists how many tokens of trace i each cut point keeps; the
    suffix is the one of ``prompts.forcing(env)``."""
    forcing, tokenizer = prompts.forcing(env), prompts.tokenizer
    suffixes = {flag: encode_text(tokenizer, forcing.suffix(bool(flag))) for flag in (0, 1)}
    texts: dict[tuple[int, int], str] = {}
    keys, contexts = [], []
    for i, (trace, points) in enumerate(zip(traces, cuts, strict=True)):
        for p, cut in enumerate(points):
            truncated = cut < len(trace) or not trace.ended
            suffix = suffixes[int(truncated)]
            head = tokenizer.decode(list(trace.ids[:cut]), skip_special_tokens=True)
            texts[i, p] = head + forcing.suffix(truncated)
            context = (*trace.prompt_ids, *trace.ids[:cut], *suffix)
            for _ in range(samples):
                keys.append((i, p, cut, len(suffix)))
                contexts.append(context)
    if not contexts:
        return []
    generations = engine.generate([list(c) for c in contexts], params)
    out = []
    for (i, p, cut, n), context, g in zip(keys, contexts, generations, strict=True):
        verdict = forcing.score(env, texts[i, p], g.text, traces[i].task)
        out.append(ForcedAnswer(i, p, cut, context, n, g.token_ids, g.logprobs, g.text, verdict))
    return out


def continuations(answers: Sequence[ForcedAnswer], pad_id: int) -> Continuations:
    """The continuations of ``answers`` (their ``trace`` is the trace row): the inserted
    suffix (never trained) then the answer (trained when its verdict is scorable)."""
    width = max(1, max((a.suffix_len + len(a.ids) for a in answers), default=1))
    r = len(answers)
    ids = torch.full((r, width), pad_id, dtype=torch.long)  # (R, C)
    valid = torch.zeros((r, width), dtype=torch.long)  # (R, C)
    mask = torch.zeros((r, width))  # (R, C)
    old = torch.zeros((r, width))  # (R, C)
    for k, a in enumerate(answers):
        suffix = list(a.context[len(a.context) - a.suffix_len :])
        row = suffix + list(a.ids)
        ids[k, : len(row)] = torch.tensor(row, dtype=torch.long)
        valid[k, : len(row)] = 1
        mask[k, a.suffix_len : len(row)] = float(a.verdict.scorable)
        old[k, a.suffix_len : len(row)] = torch.tensor(a.logprobs, dtype=torch.float)
    rows = torch.tensor([a.trace for a in answers], dtype=torch.long)  # (R,)
    cuts = torch.tensor([a.cut for a in answers], dtype=torch.long)  # (R,)
    return Continuations(rows, cuts, ids, valid, mask, old)
