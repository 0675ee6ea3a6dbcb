"""``reasoning_gym/<dataset>-v0``: every reasoning-gym dataset as a rewardgym environment.

`reasoning-gym <https://github.com/open-thought/reasoning-gym>`_ generates reasoning tasks
procedurally (over a hundred datasets: arithmetic, logic puzzles, games, graphs, ARC, ...) and
scores answers with each dataset's own ``score_answer``. With the ``reasoning-gym`` extra
installed, each dataset is registered as ``reasoning_gym/<dataset>-v0`` (environment and
verifier), with the dataset's own config fields as params.

- **Tasks.** The environment builds the dataset once, with the config's ``size`` and ``seed``
  (``seed=None``, reasoning-gym's default, is taken as ``0`` here, so that every process gets the
  same tasks). ``reset(seed=s)`` draws an index in ``[0, size)`` from the env's seeded generator
  and poses ``dataset[index]``: the config's ``seed`` picks the pool of ``size`` tasks, the reset
  seed picks one task of the pool. Most datasets generate an item when it is asked for, so a
  large ``size`` costs nothing up front (a few, such as ``acre``, build all items at once).
  Generated items are kept (the last :data:`ENTRY_CACHE_SIZE`), because some datasets take a
  second or more per item; and generating one leaves Python's and NumPy's global random state
  as it was (``pool_matrix`` seeds NumPy's global generator). What reasoning-gym prints while
  building a dataset, generating an item or scoring (``bf`` and ``codeio`` do) goes to stderr,
  so that stdout stays clean for the program's own output (``rewardgym check --json``).
- **Prompt.** The entry's question, followed by :data:`ANSWER_INSTRUCTION` (put the final answer
  in ``<answer></answer>`` tags, reasoning-gym's convention).
- **Answer.** The text inside the last ``<answer>...</answer>`` pair (reasoning-gym's
  ``extract_answer``), or, when the response has none, the whole response stripped of
  surrounding whitespace.
- **Reward.** ``score_answer(answer, entry)``, a float in [0, 1] (some datasets give partial
  credit); correct when it is 1.0. If ``score_answer`` raises, or returns something that is not a
  number in [0, 1], the answer is unscorable (``reward=None``) with the reason.
- **Containment.** Scoring runs in a verifier pool, with a :data:`VERIFY_TIMEOUT_S` limit per
  call: the pool the env was given (``rewardgym.make(id, verifier_pool=pool)``, as a run does),
  else the process-wide :func:`rewardgym.core.verify.shared_pool`:
  some datasets evaluate the answer with sympy or Python's ``eval``, and ``10**10**10`` would
  otherwise hang or exhaust memory. The pool bounds time and memory; it is not a sandbox.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import random
import sys
from collections import OrderedDict
from numbers import Real
from typing import Any

import numpy as np

from rewardgym.core.env import TextEnv
from rewardgym.core.errors import ConfigError, require
from rewardgym.core.types import Completion, Task, Verdict
from rewardgym.core.verifier import Verifier
from rewardgym.envs._reasoning_gym_config import EXTRA, dataset_classes, to_dataset_config

__all__ = [
    "ANSWER_INSTRUCTION",
    "DEFAULT_DATASET_SEED",
    "ENTRY_CACHE_SIZE",
    "NAMESPACE",
    "ReasoningGymEnv",
    "ReasoningGymVerifier",
    "VERIFY_TIMEOUT_S",
    "env_id",
    "extract_final_answer",
]

NAMESPACE = "reasoning_gym"
ANSWER_INSTRUCTION = "\n\nGive your final answer inside <answer></answer> tags."
DEFAULT_DATASET_SEED = 0  # used when the config's seed is None
MAX_EXTRACTED_CHARS = 10_000  # Verdict.extracted is cut to this length
ENTRY_CACHE_SIZE = 1024  # generated dataset items an env keeps
VERIFY_TIMEOUT_S = 5.0  # seconds one score_answer call may take in the verifier pool


def env_id(dataset: str) -> str:
    """``"reasoning_gym/<dataset>-v0"``: the environment and verifier id of a dataset."""
    return f"{NAMESPACE}/{dataset}-v0"


def extract_final_answer(response: str) -> str:
    """The answer to score: the text of the last ``<answer>...</answer>`` pair, stripped, or the
    whole response stripped when it has no such pair."""
    utils = require("reasoning_gym.utils", EXTRA, "Reading a reasoning-gym answer")
    found = utils.extract_answer(response, tag_name="answer", strip=True)
    return response.strip() if found is None else found


def _stdout_to_stderr() -> contextlib.AbstractContextManager[Any]:
    """Send what reasoning-gym prints to stderr (``sys.stdout`` is swapped for the duration,
    so this holds for every thread of the process)."""
    return contextlib.redirect_stdout(sys.stderr)


def _dataset_config(dataset: str, config: Any) -> Any:
    """The dataset's own config, validated, with ``seed=None`` made :data:`DEFAULT_DATASET_SEED`."""
    config = to_dataset_config(dataset, config)
    if config.seed is None:
        config = dataclasses.replace(config, seed=DEFAULT_DATASET_SEED)
    return config


def _build_dataset(dataset: str, config: Any) -> Any:
    dataset_cls, _ = dataset_classes(dataset)
    try:
        with _stdout_to_stderr():
            return dataset_cls(config=config)
    except (AssertionError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"reasoning-gym could not build the dataset '{dataset}' from {config!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


class ReasoningGymVerifier(Verifier):
    """Scores an answer with the dataset's ``score_answer`` (see the module doc).

    Picklable and light: it carries the dataset name and config, and builds the dataset (whose
    ``score_answer`` may read its config) the first time it scores, in whichever process that is.
    """

    def __init__(self, dataset: str, config: Any = None) -> None:
        self.dataset_name = dataset
        self.config = _dataset_config(dataset, config)
        self._dataset: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"dataset_name": self.dataset_name, "config": self.config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _dataset=None)

    def __repr__(self) -> str:
        return f"ReasoningGymVerifier({self.dataset_name!r})"

    def _scorer(self) -> Any:
        if self._dataset is None:
            self._dataset = _build_dataset(self.dataset_name, self.config)
        return self._dataset

    def verify(self, response: str, task: Task) -> Verdict:
        entry = task.metadata.get("entry")
        source = task.metadata.get("dataset")
        if not isinstance(entry, dict) or source != self.dataset_name:
            return Verdict.unscorable(
                f"the task is not a reasoning-gym '{self.dataset_name}' task (its metadata must "
                f"hold dataset='{self.dataset_name}' and the dataset entry; got dataset={source!r})"
            )
        answer = extract_final_answer(response)
        try:
            with _stdout_to_stderr():
                score = self._scorer().score_answer(answer, entry)
        except Exception as exc:
            return Verdict.unscorable(
                f"reasoning-gym's score_answer for '{self.dataset_name}' raised "
                f"{type(exc).__name__}: {str(exc)[:200]}"
            )
        if isinstance(score, bool) or not isinstance(score, Real) or not 0 <= score <= 1:
            return Verdict.unscorable(
                f"reasoning-gym's score_answer for '{self.dataset_name}' returned {score!r}, "
                "not a number in [0, 1]"
            )
        reward = float(score)
        correct = reward == 1.0
        reason = "correct" if correct else f"score_answer gave {reward:g}"
        extracted = answer[:MAX_EXTRACTED_CHARS]
        return Verdict(reward, correct=correct, reason=reason, extracted=extracted)


class ReasoningGymEnv(TextEnv):
    """One reasoning-gym dataset as a single-turn environment (see the module doc).

    ``config`` is the dataset's config: an instance of its config dataclass, a mapping of its
    params, or ``None`` for the defaults. Scoring goes through :meth:`verifier_pool`.
    """

    def __init__(self, dataset: str, config: Any = None, *, render_mode: str | None = None):
        super().__init__(render_mode=render_mode)
        config = _dataset_config(dataset, config)
        self.dataset_name = dataset
        self.config = config
        self.dataset = _build_dataset(dataset, config)
        self.verifier = ReasoningGymVerifier(dataset, config)
        self._entries: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._started_pool: Any = None  # the pool the verifier was loaded into

    def entry(self, index: int) -> dict[str, Any]:
        """A copy of ``dataset[index]``, generated once (up to :data:`ENTRY_CACHE_SIZE` are
        kept) without touching the global ``random`` / ``numpy.random`` state."""
        entry = self._entries.get(index)
        if entry is None:
            python_state, numpy_state = random.getstate(), np.random.get_state()
            try:
                with _stdout_to_stderr():
                    entry = self.dataset[index]
            finally:
                random.setstate(python_state)
                np.random.set_state(numpy_state)
            self._entries[index] = entry
            while len(self._entries) > ENTRY_CACHE_SIZE:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(index)
        return copy.deepcopy(entry)

    def sample_task(self, rng: np.random.Generator) -> Task:
        index = int(rng.integers(0, len(self.dataset)))
        entry = self.entry(index)
        answer = entry.get("answer")
        return Task(
            prompt=f"{entry['question']}{ANSWER_INSTRUCTION}",
            answer=None if answer is None else str(answer),
            id=f"{NAMESPACE}/{self.dataset_name}:{self.config.seed}:{index}",
            metadata={"dataset": self.dataset_name, "index": index, "entry": entry},
        )

    def score(self, completion: Completion, task: Task) -> Verdict:
        pool = self.verifier_pool(timeout=VERIFY_TIMEOUT_S)
        if self._started_pool is not pool:
            # Load the verifier into every worker at once: when a call times out and its
            # worker is replaced (re-importing reasoning-gym, about 1.5 s), the next call finds
            # another worker ready instead of waiting for the new one.
            pool.start(self.verifier)
            self._started_pool = pool
        return pool.verify(completion.text, task, self.verifier, timeout=VERIFY_TIMEOUT_S)
