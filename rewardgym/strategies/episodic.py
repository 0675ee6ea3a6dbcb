"""The ``episodic`` strategy (MRT, Qu, Yang et al. 2025, Meta Reinforcement Fine-Tuning):
thinking traces split into episodes, answers forced after each, rewards for progress.

Shapes: B prompts x G traces (N = B * G rows, a prompt's traces contiguous); E the most episodes
of any trace in the step (a trace with E_i episodes has E_i + 1 probe points); T token positions.

Each step:

1. **Traces.** G thinking traces per prompt of at most ``rollout.max_new_tokens`` tokens.
2. **Outcome.** One final answer forced after each whole trace (sampled at the rollout
   temperature, at most ``probe_max_tokens`` tokens; trained on): its reward is the outcome R.
3. **Probes.** When the algorithm ``needs_probes``: the trace is split into episodes
   (:class:`EpisodeSegmenter`, mapped to token counts by :func:`episode_cuts`) and ``probes``
   answers are forced at ``probe_temperature`` after the empty prefix, after each episode and
   after the whole trace (scores only). J_j is the mean reward of the scorable probes after
   episode j. Otherwise (outcome-only GRPO) every trace is one episode and no probe is sampled.
4. **Advantages.** ``episodic_advantages(outcome, scorable, J, J_valid, num_episodes, G)`` gives
   each episode's tokens an advantage (N, E) and the final answer its own (N,).
5. **Update.** A row is prompt + trace + inserted suffix (never trained) + final answer; trace
   tokens get their episode's advantage; unscorable outcomes are not trained.

**Episodes** (:class:`EpisodeSegmenter`): split the trace on blank lines; start a new episode at
a paragraph that begins with a reconsideration marker ("Wait", "But wait", ...); ignore a marker
within ``min_gap`` paragraphs of the previous cut; optionally merge every k episodes. Choices
made where the paper leaves room, checked against the authors' ``break_into_meta_steps``:

- A paragraph is a maximal run of non-blank lines; a blank line is empty or whitespace only, and
  one or more of them separate paragraphs (the reference splits on ``"\\n\\n"`` exactly).
  ``"\\r\\n"`` line breaks work the same as ``"\\n"``.
- "Begins with a marker": after optional leading whitespace, case-sensitive, and when the marker
  ends with a letter the next character must not be a letter (so "Waiting" and "Waits" do not
  cut, "Wait," and "Wait." do; the reference's plain ``startswith`` would cut at "Waiting").
- "Within min_gap paragraphs": a marker paragraph p cuts only when p - c > min_gap, c being the
  paragraph of the previous cut and 0 (the trace start) before the first; an ignored marker
  does not move c. This is the reference's ``prev_i in (i, i-1, i-2)`` test for min_gap = 2.
- Merging every k episodes keeps every k-th cut, after the min_gap rule.

Metrics: ``accuracy``, ``reward`` and ``unscorable`` (of the final answers), ``think_tokens``,
``think_ended``, ``completion_tokens``, ``episodes``, and with probes ``probe_J0`` and
``probe_Jend``.
"""

from __future__ import annotations

import bisect
import itertools
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from rewardgym.core.budgets import _as_tuple, _is_int  # the sequence and int checks budgets use
from rewardgym.core.engine import SamplingParams
from rewardgym.core.errors import ConfigError
from rewardgym.strategies.base import StepContext, Strategy
from rewardgym.strategies.batch import TokenBatch, pack
from rewardgym.strategies.rollouts import score_metrics
from rewardgym.strategies.standard import need_policy_gradient, policy_update
from rewardgym.strategies.thinking import ForcedAnswer, Trace, force_answers, think

__all__ = ["DEFAULT_MARKERS", "EpisodeSegmenter", "Episodic", "EpisodicConfig", "episode_cuts"]

DEFAULT_MARKERS = (
    "Wait",
    "But wait",
    "Alternatively",
    "Is there another way to think about this?",
    "But let me double-check",
    "But hold on",
)


# A paragraph: a line with a non-whitespace character, then any such lines right after it.
_PARAGRAPH = re.compile(r"^[^\S\n]*\S.*(?:\n[^\S\n]*\S.*)*", re.MULTILINE)


@dataclass(frozen=True)
class EpisodeSegmenter:
    """Splits a thinking trace into episodes at paragraphs that begin with a marker.

    ``markers`` are matched case-sensitively at a paragraph's start (see "Episodes" in the
    module docstring for the exact rule); ``min_gap`` >= 0 paragraphs must separate a cut from the previous one
    (strictly more than ``min_gap``, as in the reference code); ``merge_every`` >= 1 merges
    every k consecutive episodes into one. An empty ``markers`` tuple never cuts.
    """

    markers: tuple[str, ...] = DEFAULT_MARKERS
    min_gap: int = 2
    merge_every: int = 1

    def __post_init__(self) -> None:
        owner = "EpisodeSegmenter"
        markers = _as_tuple(owner, "markers", self.markers, "('Wait', 'Alternatively')")
        for i, m in enumerate(markers):
            if not isinstance(m, str) or not m or m[0].isspace():
                raise ConfigError(
                    f"{owner} markers must be non-empty strings that do not start with "
                    f"whitespace (leading whitespace in the text is skipped), got {m!r} at index "
                    f"{i} in {markers!r}."
                )
        object.__setattr__(self, "markers", markers)
        for name, low in (("min_gap", 0), ("merge_every", 1)):
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                raise ConfigError(f"{owner} {name} must be an int >= {low}, got {value!r}")

    def paragraphs(self, text: str) -> list[tuple[int, int]]:
        """``(start, end)`` character spans of the paragraphs of ``text``, split on one or more
        blank lines. A span starts at the start of the paragraph's first line (indentation
        included) and ends after its last non-whitespace character."""
        spans = []
        for match in _PARAGRAPH.finditer(text):
            start = match.start()
            spans.append((start, start + len(match.group().rstrip())))
        return spans

    def _starts_with_marker(self, paragraph: str) -> bool:
        """Whether ``paragraph`` begins with one of the markers (after optional whitespace)."""
        head = paragraph.lstrip()
        for m in self.markers:
            if head.startswith(m):
                after = head[len(m) : len(m) + 1]
                if not (m[-1].isalpha() and after.isalpha()):  # "Waiting" is not "Wait"
                    return True
        return False

    def cuts(self, text: str) -> list[int]:
        """Sorted character offsets where a new episode starts; never 0. Each is the start of
        a paragraph that begins with a marker, kept when it is more than ``min_gap``
        paragraphs after the previous cut, then every ``merge_every``-th of those."""
        cuts: list[int] = []
        previous = 0  # paragraph index of the last cut; the trace start counts as one
        for p, (start, end) in enumerate(self.paragraphs(text)):
            if p - previous > self.min_gap and self._starts_with_marker(text[start:end]):
                cuts.append(start)
                previous = p
        k = self.merge_every
        return cuts[k - 1 :: k]  # episodes e*k .. e*k + k-1 become one

    def episodes(self, text: str) -> list[str]:
        """``text`` split at :meth:`cuts`: ``len(cuts) + 1`` pieces that concatenate back to
        ``text`` (``[""]`` for an empty text). Separating blank lines stay at the end of the
        episode before them."""
        bounds = [0, *self.cuts(text), len(text)]
        return [text[a:b] for a, b in itertools.pairwise(bounds)]


def episode_cuts(tokenizer: Any, trace: Trace, segmenter: EpisodeSegmenter) -> list[int]:
    """Token counts at the probe points of ``trace``: 0 (the empty prefix), the end of each
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


@dataclass(frozen=True)
class EpisodicConfig:
    """``strategy.params`` of ``episodic``: a trace is split into episodes at paragraphs that
    begin with one of ``markers`` (a cut needs more than ``min_gap`` paragraphs since the
    previous one; every ``merge_every`` episodes are merged), and ``probes`` forced answers of
    at most ``probe_max_tokens`` tokens are sampled at ``probe_temperature`` after the empty
    prefix and after each episode."""

    markers: tuple[str, ...] = DEFAULT_MARKERS
    min_gap: int = 2
    merge_every: int = 1
    probes: int = 8
    probe_max_tokens: int = 128
    probe_temperature: float = 0.6

    def __post_init__(self) -> None:
        for key in ("probes", "probe_max_tokens"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)!r}.")
        if self.probe_temperature < 0:
            raise ConfigError(
                f"probe_temperature must be >= 0 (0: greedy), got {self.probe_temperature!r}."
            )
        self.segmenter  # noqa: B018 -- markers, min_gap and merge_every are valid

    @property
    def segmenter(self) -> EpisodeSegmenter:
        """The episode rule as an :class:`EpisodeSegmenter`."""
        return EpisodeSegmenter(self.markers, self.min_gap, self.merge_every)


class Episodic(Strategy):
    """MRT's data: traces, a final answer each, probes after every episode; per-episode
    advantages from the algorithm's ``episodic_advantages``."""

    config: EpisodicConfig

    def __init__(self, config: EpisodicConfig | None = None) -> None:
        super().__init__(config or EpisodicConfig())

    def check(self, config: Any, stage: Any, algorithm: Any) -> None:
        need_policy_gradient(algorithm, stage, "episodic", "episodic_advantages")

    def step(self, ctx: StepContext, step: int) -> dict[str, float]:
        rollout, c = ctx.stage.rollout, self.config
        start = time.perf_counter()
        tasks = ctx.rollouts.sample_tasks(rollout.prompts_per_step, ctx.seed(step, 0))
        trace_params = SamplingParams(
            rollout.max_new_tokens, rollout.temperature, rollout.top_p, rollout.stop,
            ctx.seed(step, 1),
        )  # fmt: skip
        traces = think(ctx.engine, ctx.prompts, ctx.env, tasks, rollout.group_size, trace_params)
        final_params = SamplingParams(
            c.probe_max_tokens, rollout.temperature, rollout.top_p, rollout.stop,
            ctx.seed(step, 2),
        )  # fmt: skip
        ends = [[len(t)] for t in traces]
        finals = force_answers(ctx.engine, ctx.prompts, ctx.env, traces, ends, 1, final_params)
        n = len(traces)
        if getattr(ctx.algorithm, "needs_probes", True):
            points = [episode_cuts(ctx.tokenizer, t, c.segmenter) for t in traces]
            probe_params = replace(
                final_params, temperature=c.probe_temperature, seed=ctx.seed(step, 3)
            )
            probes = force_answers(
                ctx.engine, ctx.prompts, ctx.env, traces, points, c.probes, probe_params
            )
        else:  # outcome only: one episode per trace, no probes
            points = [[0, len(t)] if len(t) else [0] for t in traces]
            probes = []
        J, J_valid = _probe_scores(probes, points, n)  # (N, E + 1), (N, E + 1)
        num_episodes = torch.tensor([len(p) - 1 for p in points])  # (N,)
        rollout_s = time.perf_counter() - start

        outcome = torch.tensor([f.reward for f in finals], dtype=torch.float)  # (N,)
        scorable = torch.tensor([f.verdict.scorable for f in finals])  # (N,)
        episode_adv, answer_adv = ctx.algorithm.episodic_advantages(
            outcome, scorable, J, J_valid, num_episodes, rollout.group_size
        )  # (N, E), (N,)
        batch, adv = _rows(ctx, traces, finals, points, episode_adv, answer_adv)
        mask = batch.mask * scorable[:, None].float()  # (N, T) unscorable rows are not trained
        max_tokens = rollout.max_new_tokens + c.probe_max_tokens
        parts = [(batch, adv, mask, rollout.temperature)]
        update = policy_update(ctx, parts, int(scorable.sum()), max_tokens)
        metrics = _metrics(traces, finals, J, J_valid, num_episodes, bool(probes))
        return {**metrics, **update, "time/rollout_s": rollout_s}


def _probe_scores(
    probes: Sequence[ForcedAnswer], points: Sequence[Sequence[int]], n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """J (mean reward of the scorable probes at each point) and whether any was scorable;
    (N, E + 1), points past a row's last one invalid."""
    width = max(2, max(len(p) for p in points))
    total = torch.zeros(n, width, dtype=torch.float64)  # (N, E + 1)
    count = torch.zeros(n, width, dtype=torch.float64)  # (N, E + 1)
    for probe in probes:
        if probe.verdict.scorable:
            total[probe.trace, probe.point] += probe.reward
            count[probe.trace, probe.point] += 1
    return total / count.clamp(min=1), count > 0


def _rows(
    ctx: StepContext,
    traces: Sequence[Trace],
    finals: Sequence[ForcedAnswer],
    points: Sequence[Sequence[int]],
    episode_adv: torch.Tensor,
    answer_adv: torch.Tensor,
) -> tuple[TokenBatch, torch.Tensor]:
    """Rows prompt + trace + suffix + final answer, and their per-token advantages (N, T):
    each trace token gets its episode's advantage, answer tokens the answer's; the suffix 0."""
    responses, masks, logprobs, advs = [], [], [], []
    for i, (trace, final) in enumerate(zip(traces, finals, strict=True)):
        suffix = final.context[len(trace.prompt_ids) + len(trace) :]
        responses.append((*trace.ids, *suffix, *final.ids))
        masks.append([1.0] * len(trace) + [0.0] * len(suffix) + [1.0] * len(final.ids))
        logprobs.append((*trace.logprobs, *(0.0,) * len(suffix), *final.logprobs))
        episodes = [bisect.bisect_right(points[i], k) - 1 for k in range(len(trace))]
        row = [float(episode_adv[i, e]) for e in episodes]
        advs.append(row + [0.0] * len(suffix) + [float(answer_adv[i])] * len(final.ids))
    batch = pack([t.prompt_ids for t in traces], responses, masks, logprobs, ctx.pad_id)
    adv = torch.zeros(batch.mask.shape)  # (N, T)
    for i, row in enumerate(advs):
        adv[i, : len(row)] = torch.tensor(row)
    return batch, adv * batch.mask


def _metrics(traces, finals, J, J_valid, num_episodes, probed: bool) -> dict[str, float]:
    n = len(traces)
    metrics = {
        **score_metrics(
            [f.reward for f in finals],
            [f.verdict.scorable for f in finals],
            [f.verdict.correct for f in finals],
        ),
        "think_tokens": sum(len(t) for t in traces) / n,
        "think_ended": sum(t.ended for t in traces) / n,
        "completion_tokens": sum(len(t) + len(f.ids) for t, f in zip(traces, finals, strict=True))
        / n,
        "episodes": float(num_episodes.float().mean()),
    }
    if probed:
        last = num_episodes.clamp(min=0)[:, None]  # (N, 1)
        j_end = J.gather(1, last)[:, 0]  # (N,)
        metrics["probe_J0"] = float(J[:, 0][J_valid[:, 0]].mean()) if J_valid[:, 0].any() else 0.0
        end_ok = J_valid.gather(1, last)[:, 0]  # (N,)
        metrics["probe_Jend"] = float(j_end[end_ok].mean()) if end_ok.any() else 0.0
    return metrics
