"""``rewardgym/math-v0``: math problems scored by equivalence with math-verify.

Problems come from a small procedurally generated set (the default; it needs no network and no
files) or from a Hugging Face ``datasets`` source: a local ``.json`` / ``.jsonl`` / ``.parquet``
file, or a dataset name on the Hub. The verifier reads the final answer from the response
(``\\boxed{...}``, a "Final Answer" line, or the last number; see :data:`EXTRACTIONS`), and
asks math-verify whether it is equivalent to the gold answer, gold first: ``verify(parse(gold),
parse(answer))``. Reward 1.0 if it is, 0.0 if not, plus ``format_weight`` when the answer was
given in the requested form.

math-verify's own timeouts use ``signal.alarm``, which only works on the main thread of the
main interpreter; the verifier turns them off and the env runs it in a verifier pool
(``use_pool=True``, the default), whose workers enforce ``verify_timeout`` and a memory limit on
every call from any thread: the pool the env was given (``rewardgym.make(id, verifier_pool=pool)``,
as a run does), else the process-wide :func:`~rewardgym.core.verify.shared_pool`. With
``use_pool=False`` it runs in the calling process, unprotected: a pathological answer can take
as long as sympy takes.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardgym.core.env import FEEDBACK_STYLES, TextEnv
from rewardgym.core.errors import ConfigError, did_you_mean, require
from rewardgym.core.types import Completion, Task, Verdict
from rewardgym.core.verifier import Verifier
from rewardgym.envs._math_data import DataSpec, load_problems
from rewardgym.envs._math_extract import EXTRACTIONS, PRIMARY_FORM, extract_answer, gold_span
from rewardgym.envs._math_procedural import DIFFICULTIES, KINDS, Problem, generate

__all__ = [
    "EXTRACTIONS",
    "INSTRUCTIONS",
    "KINDS",
    "MathConfig",
    "MathEnv",
    "MathVerifier",
    "MathVerifierConfig",
]

PROCEDURAL = "procedural"
INSTRUCTIONS = {
    "boxed": "Put your final answer within \\boxed{}.",
    "auto": "Put your final answer within \\boxed{}.",
    "final_answer": "End your reply with a line 'Final Answer: <answer>'.",
    "last_number": "End your reply with the final answer.",
}
_FORMS = {"boxed": "\\boxed{}", "final_answer": "'Final Answer' line", "last_number": "last number"}


def _choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    if value not in choices:
        hint = did_you_mean(value, [str(c) for c in choices]) if isinstance(value, str) else ""
        raise ConfigError(f"math {name} must be one of {choices}, got {value!r}.{hint}")


def _at_least(name: str, value: Any, low: float, kind: type = int) -> None:
    ok = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < low:
        what = "a number" if kind is float else "an int"
        raise ConfigError(f"math {name} must be {what} >= {low:g}, got {value!r}.")


# -- verifier ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class MathVerifierConfig:
    """Params of the ``rewardgym/math-v0`` verifier.

    extraction: where the answer is read: "boxed", "final_answer", "last_number", or "auto"
        (boxed, then a Final Answer line, then the last number).
    format_weight: added to the reward when the answer is in the requested form (a ``\\boxed{}``
        for "boxed" and "auto", a Final Answer line for "final_answer", any number for
        "last_number"). 0.0 (default): reward is 1.0 / 0.0.
    max_answer_chars: longer answers are not parsed and score 0.0.
    allow_set_relation_comp: math-verify's option: an interval gold answer also matches an
        inequality (``(4, \\infty)`` = ``x > 4``).
    cache_size: parsed answers (gold and model) and answer comparisons each verifier keeps per
        process, in LRU caches (0: no caching). A gold answer shared by a group of responses is
        parsed once; a repeated answer to the same gold is compared once.
    """

    extraction: str = "auto"
    format_weight: float = 0.0
    max_answer_chars: int = 1000
    allow_set_relation_comp: bool = True
    cache_size: int = 4096

    def __post_init__(self) -> None:
        _choice("extraction", self.extraction, EXTRACTIONS)
        _at_least("format_weight", self.format_weight, 0.0, float)
        _at_least("max_answer_chars", self.max_answer_chars, 1)
        if not isinstance(self.allow_set_relation_comp, bool):
            raise ConfigError(
                f"math allow_set_relation_comp must be a bool, got {self.allow_set_relation_comp!r}."
            )
        _at_least("cache_size", self.cache_size, 0)


_backend_lock = threading.Lock()
_backend: list[Any] = []  # [math_verify module, extraction config], filled on first use


def _math_verify() -> tuple[Any, Any]:
    """math-verify and the extraction config, imported (and warmed up) once per process."""
    with _backend_lock:
        if not _backend:
            mv = require("math_verify", "math", "rewardgym/math-v0")
            # The verifier disables math-verify's signal-based timeouts on purpose (the pool
            # enforces time), so its once-per-process warning about that is noise.
            mv.parser.TIMEOUT_WARNING_SHOWN = mv.grader.TIMEOUT_WARNING_SHOWN = True
            extraction = (mv.LatexExtractionConfig(), mv.ExprExtractionConfig())
            mv.parse("\\boxed{\\frac{1}{2}}", extraction, parsing_timeout=None)  # build parsers
            _backend.extend((mv, extraction))
    return _backend[0], _backend[1]


def _parse_span(span: str) -> tuple[Any, ...]:
    """math-verify's parse of an answer span: LaTeX inside ``$...$``-style delimiters is parsed
    as written, anything else as the content of a ``\\boxed{}``."""
    mv, extraction = _math_verify()
    text = span if any(d in span for d in ("$", "\\(", "\\[")) else f"\\boxed{{{span}}}"
    return tuple(mv.parse(text, extraction, parsing_timeout=None))


class MathVerifier(Verifier):
    """Equivalence of the extracted answer with the gold answer, by math-verify (gold first)."""

    def __init__(self, config: MathVerifierConfig | None = None) -> None:
        self.config = config or MathVerifierConfig()
        self._init_cache()

    def _init_cache(self) -> None:
        size = self.config.cache_size
        cache = functools.lru_cache(maxsize=size) if size else (lambda fn: fn)
        self._parse = cache(_parse_span)
        self._equivalent = cache(self._compare)

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config}  # the caches stay in their process

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.config = state["config"]
        self._init_cache()
        _math_verify()  # a pool worker imports math-verify when it loads the verifier

    def verify(self, response: str, task: Task) -> Verdict:
        if task.answer is None:
            return Verdict.unscorable("the task has no gold answer")
        cfg = self.config
        gold_text = gold_span(task.answer, cfg.max_answer_chars)
        gold = self._parse(gold_text)
        if not gold:
            return Verdict.unscorable(f"math-verify cannot parse the gold answer {gold_text!r}")
        found = extract_answer(response, cfg.extraction, cfg.max_answer_chars)
        if found is None:
            return Verdict(0.0, reason=f"no answer found ({_wanted(cfg.extraction)})")
        bonus = cfg.format_weight if found.form == PRIMARY_FORM[cfg.extraction] else 0.0
        where = f"from the {_FORMS[found.form]}"
        if found.too_long:
            reason = f"the answer {where} is over {cfg.max_answer_chars} characters"
            return Verdict(bonus, reason=reason, extracted=found.text[:80])
        if _same(found.text, gold_text):  # the gold as written: no need to ask math-verify
            reason = f"{found.text!r} ({where}) is the gold answer as written"
            return Verdict(1.0 + bonus, correct=True, reason=reason, extracted=found.text)
        answer = self._parse(found.text)
        if not answer:
            reason = f"math-verify found no answer in {found.text!r} ({where})"
            return Verdict(bonus, reason=reason, extracted=found.text)
        correct = self._equivalent(gold_text, found.text)
        verdict = "equivalent" if correct else "not equivalent"
        reason = f"{found.text!r} ({where}) is {verdict} to the gold answer"
        return Verdict(float(correct) + bonus, correct=correct, reason=reason, extracted=found.text)

    def _compare(self, gold_text: str, answer_text: str) -> bool:
        """math-verify's verdict on two answer spans, gold first (both parse: checked before)."""
        mv, _ = _math_verify()
        return bool(
            mv.verify(
                list(self._parse(gold_text)),
                list(self._parse(answer_text)),
                timeout_seconds=None,
                allow_set_relation_comp=self.config.allow_set_relation_comp,
            )
        )

    def __repr__(self) -> str:
        return f"MathVerifier({self.config!r})"


def _same(answer: str, gold: str) -> bool:
    """The two spans are the same text, ignoring whitespace."""
    return "".join(answer.split()) == "".join(gold.split())


def _wanted(extraction: str) -> str:
    return {
        "boxed": "expected a \\boxed{...}",
        "final_answer": "expected a 'Final Answer:' line",
        "last_number": "expected a number",
        "auto": "expected a \\boxed{...}, a 'Final Answer:' line or a number",
    }[extraction]


_verifiers: dict[MathVerifierConfig, MathVerifier] = {}


def _shared_verifier(config: MathVerifierConfig) -> MathVerifier:
    """One verifier per config per process, so vectorised envs load one verifier into the pool's
    workers (and share its parse cache there) instead of one each."""
    with _backend_lock:
        verifier = _verifiers.get(config)
        if verifier is None:
            verifier = _verifiers[config] = MathVerifier(config)
        return verifier


# -- environment ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MathConfig:
    """Params of ``rewardgym/math-v0``.

    source: "procedural" (generated problems, offline), a local .json/.jsonl/.parquet file, or
        a Hugging Face Hub dataset name (needs network or a cached copy).
    split, subset: the dataset split (local files have one, "train") and Hub config name.
    problem_field, answer_field: the columns holding the problem and the gold answer. An answer
        may be a worked solution: its last \\boxed{} (or the part after "####") is the gold.
    cache_dir: where datasets keeps its cache (None: its default).
    extraction, format_weight, max_answer_chars, allow_set_relation_comp: see
        :class:`MathVerifierConfig`.
    instruction: appended to each problem (None: the one matching ``extraction``; "": none).
    difficulty, kinds, size, procedural_seed: the procedural set: difficulty 1-3, the kinds of
        problem, and ``size`` 0 (a fresh problem at every reset) or N (a fixed set of N problems
        generated from ``procedural_seed``, sampled at reset). Ignored for other sources.
    use_pool, verify_workers, verify_timeout: score in the shared VerifierPool with that many
        workers and that time limit per answer (seconds); use_pool=False scores in-process.
    max_turns, feedback: retry with feedback ("generic" or "reason") when max_turns > 1.
    """

    source: str = PROCEDURAL
    split: str = "train"
    subset: str | None = None
    problem_field: str = "problem"
    answer_field: str = "answer"
    cache_dir: str | None = None
    extraction: str = "auto"
    format_weight: float = 0.0
    max_answer_chars: int = 1000
    allow_set_relation_comp: bool = True
    instruction: str | None = None
    difficulty: int = 1
    kinds: tuple[str, ...] = KINDS
    size: int = 0
    procedural_seed: int = 0
    use_pool: bool = True
    verify_workers: int = 2
    verify_timeout: float = 5.0
    max_turns: int = 1
    feedback: str = "generic"

    def __post_init__(self) -> None:
        for name in ("source", "split", "problem_field", "answer_field"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"math {name} must be a non-empty str, got {value!r}.")
        for name in ("subset", "cache_dir", "instruction"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"math {name} must be a str or None, got {value!r}.")
        self.verifier_config()  # validates the verifier's params
        _choice("difficulty", self.difficulty, DIFFICULTIES)
        kinds = tuple(self.kinds) if isinstance(self.kinds, (list, tuple)) else self.kinds
        if not isinstance(kinds, tuple) or not kinds:
            raise ConfigError(f"math kinds must be a non-empty list of {KINDS}, got {kinds!r}.")
        for kind in kinds:
            _choice("kinds entry", kind, KINDS)
        object.__setattr__(self, "kinds", kinds)
        _at_least("size", self.size, 0)
        _at_least("procedural_seed", self.procedural_seed, 0)
        _at_least("verify_workers", self.verify_workers, 1)
        _at_least("verify_timeout", self.verify_timeout, 1e-3, float)
        _at_least("max_turns", self.max_turns, 1)
        _choice("feedback", self.feedback, FEEDBACK_STYLES)
        if not isinstance(self.use_pool, bool):
            raise ConfigError(f"math use_pool must be a bool, got {self.use_pool!r}.")

    def verifier_config(self) -> MathVerifierConfig:
        """The verifier's part of this config."""
        return MathVerifierConfig(
            extraction=self.extraction,
            format_weight=self.format_weight,
            max_answer_chars=self.max_answer_chars,
            allow_set_relation_comp=self.allow_set_relation_comp,
        )

    def data_spec(self) -> DataSpec:
        return DataSpec(
            self.source,
            self.split,
            self.problem_field,
            self.answer_field,
            self.subset,
            self.cache_dir,
        )


@functools.lru_cache(maxsize=16)
def _fixed_set(
    seed: int, size: int, difficulty: int, kinds: tuple[str, ...]
) -> tuple[Problem, ...]:
    """The fixed procedural set (``size > 0``), built once per process."""
    rng = np.random.default_rng(seed)
    return tuple(generate(rng, difficulty, kinds) for _ in range(size))


class MathEnv(TextEnv):
    """Solve a math problem; the answer is scored by equivalence with the gold answer."""

    def __init__(self, config: MathConfig | None = None, *, render_mode: str | None = None):
        super().__init__(render_mode=render_mode)
        self.config = cfg = config or MathConfig()
        self.verifier = _shared_verifier(cfg.verifier_config())
        self.max_turns = cfg.max_turns
        self.feedback_style = cfg.feedback
        self.instruction = (
            INSTRUCTIONS[cfg.extraction] if cfg.instruction is None else cfg.instruction
        )
        self.rows: tuple[tuple[str, str], ...] | None = None
        self.fixed: tuple[Problem, ...] | None = None
        if cfg.source != PROCEDURAL:
            self.rows = load_problems(cfg.data_spec())  # once per process per source
        elif cfg.size:
            self.fixed = _fixed_set(cfg.procedural_seed, cfg.size, cfg.difficulty, cfg.kinds)

    def solution(self, task: Task) -> str | None:
        return None if task.answer is None else f"\\boxed{{{task.answer}}}"

    def sample_task(self, rng: np.random.Generator) -> Task:
        cfg = self.config
        if self.rows is not None:
            index = int(rng.integers(len(self.rows)))
            problem, answer = self.rows[index]
            return Task(
                prompt=self._prompt(problem),
                answer=answer,
                id=f"math:{cfg.source}:{cfg.split}:{index}",
                metadata={"source": cfg.source, "split": cfg.split, "index": index},
            )
        if self.fixed is not None:
            index = int(rng.integers(len(self.fixed)))
            found = self.fixed[index]
        else:
            found = generate(rng, cfg.difficulty, cfg.kinds)
        return Task(
            prompt=self._prompt(found.text),
            answer=found.answer,
            id=f"math-procedural-d{cfg.difficulty}:{found.kind}:{found.text}",
            metadata={
                "source": PROCEDURAL,
                "kind": found.kind,
                "difficulty": cfg.difficulty,
                "equivalents": found.equivalents,
                "wrong": found.wrong,
            },
        )

    def _prompt(self, problem: str) -> str:
        return f"{problem}\n\n{self.instruction}" if self.instruction else problem

    def score(self, completion: Completion, task: Task) -> Verdict:
        if not self.config.use_pool:
            return self.verifier.verify(completion.text, task)
        timeout = self.config.verify_timeout
        pool = self.verifier_pool(workers=self.config.verify_workers, timeout=timeout)
        return pool.verify(completion.text, task, self.verifier, timeout=timeout)
