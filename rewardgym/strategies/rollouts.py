"""Rollouts: G samples per prompt, run through the environment turn by turn, token-in/token-out.

For each task the collector keeps G environments on that task (rows of a group are contiguous:
row i belongs to group i // G). Each round, every unfinished row's context (prompt, earlier
model turns and env replies, all as token ids) goes to the engine in one batch; the sampled
:class:`~rewardgym.core.engine.Generation` is stepped through the row's env as a
:class:`~rewardgym.core.types.Completion` carrying its token ids and log-probs. Prompts and the
replies of a multi-turn env become ids through the collector's
:class:`~rewardgym.strategies.prompts.PromptFormat` (``collector.prompts``: the model's chat
template, or BOS + text and replies wrapped in ``rollout.turn_separator``); a reply is appended
to the row's context with a loss mask of 0: only tokens the model sampled are trained on. The
sampled ids are used as they are; model text is never re-tokenised.

A row ends when its env terminates or truncates, or when the next turn would not fit in the
model's context (``finish_reason="context"``). Its reward is the sum of its turn rewards; it is
*scorable* when its last verdict is (``Verdict.reward is not None``): unscorable rows are kept,
counted, and masked out of baselines and losses (:func:`score_metrics` is how every strategy
and evaluation reports them: the mean reward over the scorable samples only).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rewardgym.core.engine import Engine, Generation, SamplingParams
from rewardgym.core.env import TextEnv
from rewardgym.core.types import Completion, Task, Verdict
from rewardgym.strategies.prompts import PromptFormat, encode_prompt, encode_text

__all__ = [
    "Episode",
    "RolloutCollector",
    "derive_seed",
    "encode_prompt",
    "encode_text",
    "score_metrics",
]


def derive_seed(*parts: int) -> int:
    """A 31-bit seed derived from ``parts`` (run seed, stage, step, ...): independent streams
    for every (stage, step, purpose), so a resumed run samples exactly what it would have."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] >> 1)


def score_metrics(
    rewards: Sequence[float], scorable: Sequence[bool], correct: Sequence[bool]
) -> dict[str, float]:
    """``reward``: the mean reward of the scorable samples (0.0 when none is; an unscorable
    sample says nothing about the policy, so it is never averaged in as 0); ``unscorable``:
    how many could not be scored; ``accuracy``: the share of all samples that are correct."""
    n = len(rewards)
    scored = [float(r) for r, ok in zip(rewards, scorable, strict=True) if ok]
    return {
        "reward": sum(scored) / len(scored) if scored else 0.0,
        "unscorable": float(n - len(scored)),
        "accuracy": sum(bool(c) for c in correct) / max(n, 1),
    }


@dataclass(frozen=True)
class Episode:
    """One row of a rollout: a task, the prompt ids, and everything after them.

    ``response_ids`` holds the model's turns and the env's replies in order; ``model_mask``
    is True on the model's tokens; ``logprobs`` are the engine's log-probs of the model's
    tokens (0.0 at env tokens).
    """

    task: Task
    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...] = ()
    model_mask: tuple[bool, ...] = ()
    logprobs: tuple[float, ...] = ()
    texts: tuple[str, ...] = ()
    turn_rewards: tuple[float, ...] = ()
    verdicts: tuple[Verdict, ...] = ()
    finish_reason: str = ""
    done: bool = False

    @property
    def reward(self) -> float:
        return float(sum(self.turn_rewards))

    @property
    def scorable(self) -> bool:
        return bool(self.verdicts) and self.verdicts[-1].scorable

    @property
    def correct(self) -> bool:
        return bool(self.verdicts) and self.verdicts[-1].correct

    @property
    def num_model_tokens(self) -> int:
        return sum(self.model_mask)

    @property
    def context(self) -> list[int]:
        return [*self.prompt_ids, *self.response_ids]


class RolloutCollector:
    """Collects episodes for a list of tasks with an engine and a growing pool of envs.

    ``make_env`` builds one environment (called as more rows are needed; envs are reused
    between batches). ``max_context``: the model's context length; a turn that would not fit
    ends its row. ``env_threads`` > 1 steps the envs of a round in a thread pool (useful when
    verifiers wait on worker processes). ``prompts``: how env text becomes ids (default: the
    tokenizer's chat template when it has one, else BOS + text with replies wrapped in
    ``turn_separator``; a format given carries its own separator).
    """

    def __init__(
        self,
        make_env: Callable[[], TextEnv],
        engine: Engine,
        tokenizer: Any,
        *,
        max_context: int,
        turn_separator: str = "\n",
        env_threads: int = 1,
        prompts: PromptFormat | None = None,
    ) -> None:
        self.make_env, self.engine, self.tokenizer = make_env, engine, tokenizer
        self.max_context = max_context
        self.prompts = prompts or PromptFormat(tokenizer, turn_separator=turn_separator)
        self.env_threads = env_threads
        self._envs: list[TextEnv] = []
        self._sampler: TextEnv | None = None

    def sampler(self) -> TextEnv:
        """The env instance that draws tasks (built on first use)."""
        if self._sampler is None:
            self._sampler = self.make_env()
        return self._sampler

    def sample_tasks(self, n: int, seed: int) -> list[Task]:
        """``n`` tasks drawn from the env with ``seed`` (the same seed gives the same tasks)."""
        tasks = []
        for i in range(n):
            _, info = self.sampler().reset(seed=derive_seed(seed, i))
            tasks.append(info["task"])
        return tasks

    def collect(
        self, tasks: Sequence[Task], group_size: int, params: SamplingParams
    ) -> list[Episode]:
        """``group_size`` episodes per task, rows of a task contiguous. ``params.seed`` seeds
        the first turn; later turns use seeds derived from it."""
        rows = [task for task in tasks for _ in range(group_size)]
        envs = self._env_pool(len(rows))
        episodes, prompts, encoded = [], [], {}  # encoded: each distinct prompt's ids, once
        for env, task in zip(envs, rows, strict=False):
            prompt, _ = env.reset(options={"task": task})
            if prompt not in encoded:
                encoded[prompt] = tuple(self.prompts.prompt_ids(prompt))
            prompts.append(prompt)
            episodes.append(Episode(task=task, prompt_ids=encoded[prompt]))
        turn = 0
        while True:
            active = [i for i, e in enumerate(episodes) if not e.done]
            active = [i for i in active if self._fits(episodes, i, params.max_new_tokens)]
            if not active:
                break
            seed = None if params.seed is None else derive_seed(params.seed, turn)
            generations = self.engine.generate(
                [episodes[i].context for i in active], replace(params, seed=seed)
            )
            results = self._step_all([envs[i] for i in active], generations)
            for i, generation, result in zip(active, generations, results, strict=False):
                reply = self._reply(envs[i], prompts[i], generation, result)
                episodes[i] = self._advance(episodes[i], generation, reply, *result)
            turn += 1
        return episodes

    def close(self) -> None:
        for env in [*self._envs, *([self._sampler] if self._sampler else [])]:
            env.close()
        self._envs, self._sampler = [], None

    # -- internals -----------------------------------------------------------------------------
    def _env_pool(self, n: int) -> list[TextEnv]:
        while len(self._envs) < n:
            self._envs.append(self.make_env())
        return self._envs[:n]

    def _fits(self, episodes: list[Episode], i: int, max_new_tokens: int) -> bool:
        """Whether row i's next turn fits in the context; if not, the row ends here."""
        episode = episodes[i]
        if len(episode.prompt_ids) + len(episode.response_ids) + max_new_tokens <= self.max_context:
            return True
        episodes[i] = replace(episode, done=True, finish_reason="context")
        return False

    def _step_all(self, envs: list[TextEnv], generations: list[Generation]) -> list[tuple]:
        def step(pair: tuple[TextEnv, Generation]) -> tuple:
            env, generation = pair
            action = Completion(generation.text, generation.token_ids, generation.logprobs)
            return env.step(action)

        if self.env_threads <= 1 or len(envs) <= 1:
            return [step(p) for p in zip(envs, generations, strict=False)]
        with concurrent.futures.ThreadPoolExecutor(self.env_threads) as pool:
            return list(pool.map(step, zip(envs, generations, strict=False)))

    def _reply(self, env: TextEnv, prompt: str, generation: Generation, result: tuple) -> list:
        """The ids of the env's reply to ``generation`` (none when the episode is over):
        :meth:`PromptFormat.reply_ids <rewardgym.strategies.prompts.PromptFormat.reply_ids>`."""
        observation, _, terminated, truncated, _ = result
        if terminated or truncated or not observation:
            return []
        role = self.prompts.reply_role(env)
        return self.prompts.reply_ids(prompt, observation, generation.token_ids, role)

    @staticmethod
    def _advance(
        episode: Episode,
        generation: Generation,
        reply: list[int],
        observation: str,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: dict[str, Any],
    ) -> Episode:
        ids = list(generation.token_ids)
        mask = [True] * len(ids)
        logprobs = list(generation.logprobs)
        done = terminated or truncated
        if reply:
            ids += reply
            mask += [False] * len(reply)
            logprobs += [0.0] * len(reply)
        return replace(
            episode,
            response_ids=episode.response_ids + tuple(ids),
            model_mask=episode.model_mask + tuple(mask),
            logprobs=episode.logprobs + tuple(logprobs),
            texts=episode.texts + (generation.text,),
            turn_rewards=episode.turn_rewards + (float(reward),),
            verdicts=episode.verdicts + (info["verdict"],),
            finish_reason=generation.finish_reason if done else "",
            done=done,
        )
