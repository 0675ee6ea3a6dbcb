"""Thinking traces and forced answers: the sampling behind the anytime and episodic strategies.

A *thinking trace* is what the model writes after the prompt, up to the env's end-of-thinking
marker (``TextEnv.think_end``, a stop string) or a token cap. A *forced answer* is sampled from a
prefix of a trace with the env's :meth:`~rewardgym.core.env.TextEnv.forced_answer_suffix`
appended (a truncated prefix gets the truncation marker, the end-of-thinking marker and the
answer cue; a trace that closed itself gets the answer cue only) and is scored with
:meth:`~rewardgym.core.env.TextEnv.score_forced_answer`. Inserted tokens are context, never
trained on: they sit in the prompt part of the rows the trainer builds.

- ``anytime`` (BRPO): cut every trace at each budget (``BudgetSchedule.cut_points``) and sample
  A summaries per (trace, budget).
- ``episodic`` (MRT): cut every trace after each episode (:func:`episode_cuts`) and sample K
  probes per cut, from the empty prefix to the whole trace.
- budget evaluation: cut greedy traces at evaluation budgets.

Everything goes through the engine in one call per phase (all traces, then all forced answers).
Prefix reuse: the ``hf`` engine prefills identical contexts once (the A summaries of one
(trace, budget) share one prefill) but prefills the contexts of different budgets of the same
trace separately; an engine with a prefix cache (vLLM) shares the trace prefix across budgets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from rewardgym.core.budgets import EpisodeSegmenter
from rewardgym.core.engine import Engine, SamplingParams
from rewardgym.core.env import TextEnv
from rewardgym.core.types import Task, Verdict
from rewardgym.runner.rollout import encode_prompt, encode_text

__all__ = ["ForcedAnswer", "Trace", "episode_cuts", "force_answers", "think"]


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
    tokenizer: Any,
    env: TextEnv,
    tasks: Sequence[Task],
    group_size: int,
    params: SamplingParams,
) -> list[Trace]:
    """``group_size`` thinking traces per task (a task's traces contiguous), each at most
    ``params.max_new_tokens`` tokens, stopped at ``env.think_end`` (added to ``params.stop``)."""
    prompts = [tuple(encode_prompt(tokenizer, t.prompt)) for t in tasks for _ in range(group_size)]
    rows = [t for t in tasks for _ in range(group_size)]
    stop = tuple(dict.fromkeys((*params.stop, env.think_end)))
    generations = engine.generate([list(p) for p in prompts], replace(params, stop=stop))
    return [
        Trace(task, prompt, g.token_ids, g.logprobs, g.text, env.think_end in g.text)
        for task, prompt, g in zip(rows, prompts, generations, strict=True)
    ]


def force_answers(
    engine: Engine,
    tokenizer: Any,
    env: TextEnv,
    traces: Sequence[Trace],
    cuts: Sequence[Sequence[int]],
    samples: int,
    params: SamplingParams,
) -> list[ForcedAnswer]:
    """``samples`` forced answers at each cut of each trace, ordered by trace, then cut point,
    then sample. ``cuts[i]`` lists how many tokens of trace i each cut point keeps."""
    suffixes = {flag: encode_text(tokenizer, env.forced_answer_suffix(flag)) for flag in (0, 1)}
    texts: dict[tuple[int, int], str] = {}
    keys, contexts = [], []
    for i, (trace, points) in enumerate(zip(traces, cuts, strict=True)):
        for p, cut in enumerate(points):
            truncated = cut < len(trace) or not trace.ended
            suffix = suffixes[int(truncated)]
            head = tokenizer.decode(list(trace.ids[:cut]), skip_special_tokens=True)
            texts[i, p] = head + env.forced_answer_suffix(truncated)
            context = (*trace.prompt_ids, *trace.ids[:cut], *suffix)
            for _ in range(samples):
                keys.append((i, p, cut, len(suffix)))
                contexts.append(context)
    if not contexts:
        return []
    generations = engine.generate([list(c) for c in contexts], params)
    out = []
    for (i, p, cut, n), context, g in zip(keys, contexts, generations, strict=True):
        verdict = env.score_forced_answer(texts[i, p], g.text, traces[i].task)
        out.append(ForcedAnswer(i, p, cut, context, n, g.token_ids, g.logprobs, g.text, verdict))
    return out


def episode_cuts(tokenizer: Any, trace: Trace, segmenter: EpisodeSegmenter) -> list[int]:
    """Token counts at the MRT probe points of ``trace``: 0 (the empty prefix), the end of each
    episode, and the whole trace; E + 1 strictly increasing values for E >= 1 episodes (an
    empty trace gives ``[0]``). A character cut inside a token moves to the end of that token."""
    text = tokenizer.decode(list(trace.ids), skip_special_tokens=True)
    points = [0]
    for char in segmenter.cuts(text):
        k = _tokens_covering(tokenizer, trace.ids, char)
        if points[-1] < k < len(trace):
            points.append(k)
    if len(trace) > points[-1]:
        points.append(len(trace))
    return points


def _tokens_covering(tokenizer: Any, ids: Sequence[int], chars: int) -> int:
    """The fewest leading tokens of ``ids`` whose decoded text has at least ``chars``
    characters (a binary search: O(log n) decodes)."""
    low, high = 0, len(ids)
    while low < high:
        mid = (low + high) // 2
        if len(tokenizer.decode(list(ids[:mid]), skip_special_tokens=True)) >= chars:
            high = mid
        else:
            low = mid + 1
    return low
