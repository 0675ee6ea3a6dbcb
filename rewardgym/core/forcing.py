"""Answer forcing: making a reasoning model answer now, from any point of its thinking.

Training methods that score a thinking trace part-way (at token budgets, after each episode of
reasoning) and budget evaluation all do the same thing at a cut: insert a short text that closes
the thinking and asks for the final answer, sample the answer, and score it.
:class:`AnswerForcing` is that protocol, with defaults any env can override:

- the strings: ``think_end`` (the end-of-thinking marker, also a stop string for traces),
  ``truncation_marker`` (what marks a cut) and ``answer_cue`` (what asks for the answer);
- :meth:`AnswerForcing.suffix`: the text inserted after a trace (a cut trace gets the truncation
  marker, the end-of-thinking marker and the cue; a trace that closed itself gets the cue only);
- :meth:`AnswerForcing.score`: the reward of a forced answer (exactly one end-of-thinking marker
  in the trace, else 0; then the env's own :meth:`~rewardgym.core.env.TextEnv.score`).

Every :class:`~rewardgym.core.env.TextEnv` carries one as ``answer_forcing``. An env that writes
its thinking differently sets its own instance (``answer_forcing = AnswerForcing(think_end=
"</reasoning>")``) or a subclass with another :meth:`~AnswerForcing.score`. Inserted text is
context, never trained on. Strategies and evaluation read an env's protocol with
:func:`forcing_of`, which also honours envs written for the earlier API (see there), and takes
the run's own thinking conventions (``model.chat.think_end`` / ``answer_cue``: the model's
markers, which win over the env's) as overrides.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

from rewardgym.core.errors import ConfigError
from rewardgym.core.types import Completion, Task, Verdict

__all__ = ["AnswerForcing", "forcing_of", "override_strings"]

LEGACY_STRINGS = ("think_end", "truncation_marker", "answer_cue")
LEGACY_METHODS = ("forced_answer_suffix", "score_forced_answer")


@dataclass(frozen=True)
class AnswerForcing:
    """How an env's model is made to answer at a cut of its thinking, and how that answer is
    scored. The default strings are the reference ones of the anytime-reasoning papers."""

    think_end: str = "</think>"
    truncation_marker: str = "...\n\n...\n\n"
    answer_cue: str = "\n\n**Final Answer**\n"

    def suffix(self, truncated: bool) -> str:
        """The text inserted after a thinking trace to make the model answer now (never
        trained on). A cut trace (``truncated``) gets the truncation marker, the
        end-of-thinking marker and the answer cue; a trace that ended by itself (it already
        ends with ``think_end``) gets the answer cue only."""
        if truncated:
            return f"{self.truncation_marker}{self.think_end}{self.answer_cue}"
        return self.answer_cue

    def score(self, env: Any, trace: str, answer: str, task: Task) -> Verdict:
        """The reward of ``answer``, forced after ``trace`` (the thinking text, the inserted
        suffix included) for the TextEnv ``env``: reward 0 unless the trace holds exactly one
        end-of-thinking marker, else ``env.score`` of the answer."""
        count = trace.count(self.think_end)
        if count != 1:
            return Verdict(
                reward=0.0, correct=False,
                reason=f"format: {count} end-of-thinking markers {self.think_end!r}, expected 1",
            )  # fmt: skip
        return env.score(Completion(answer), task)


class _LegacyForcing(AnswerForcing):
    """An env's own ``forced_answer_suffix`` / ``score_forced_answer`` methods, as a protocol."""

    def __init__(self, env: Any, base: AnswerForcing) -> None:
        object.__setattr__(self, "_env", env)
        for name in LEGACY_STRINGS:
            object.__setattr__(self, name, getattr(base, name))

    def suffix(self, truncated: bool) -> str:
        env = self._env
        if "forced_answer_suffix" in _own_members(env):
            return env.forced_answer_suffix(truncated)
        return AnswerForcing.suffix(self, truncated)

    def score(self, env: Any, trace: str, answer: str, task: Task) -> Verdict:
        if "score_forced_answer" in _own_members(self._env):
            return self._env.score_forced_answer(trace, answer, task)
        return AnswerForcing.score(self, env, trace, answer, task)


def _own_members(env: Any) -> set[str]:
    """The legacy names an env defines itself (on its class below TextEnv, or on the instance)."""
    found = {n for n in (*LEGACY_STRINGS, *LEGACY_METHODS) if n in vars(env)}
    for cls in type(env).__mro__:
        if cls.__module__ == "rewardgym.core.env" and cls.__qualname__ == "TextEnv":
            break
        found |= {n for n in (*LEGACY_STRINGS, *LEGACY_METHODS) if n in vars(cls)}
    return found


_warned: set[type] = set()


def forcing_of(
    env: Any, *, think_end: str | None = None, answer_cue: str | None = None
) -> AnswerForcing:
    """The :class:`AnswerForcing` of ``env`` (a TextEnv, or a wrapper around one), with
    ``think_end`` / ``answer_cue`` replaced by the ones given (None keeps the env's; see
    :func:`override_strings`).

    Deprecated, for one release: an env that still sets the strings ``think_end``,
    ``truncation_marker`` or ``answer_cue`` as its own attributes, or overrides
    ``forced_answer_suffix(truncated)`` / ``score_forced_answer(trace, answer, task)``, keeps its
    behaviour, with a :class:`DeprecationWarning` naming the ``answer_forcing`` to set instead.
    """
    forcing = _env_forcing(env)
    return override_strings(forcing, think_end=think_end, answer_cue=answer_cue, env=env)


def override_strings(
    forcing: AnswerForcing,
    *,
    think_end: str | None = None,
    answer_cue: str | None = None,
    env: Any = None,
) -> AnswerForcing:
    """``forcing`` with its ``think_end`` and ``answer_cue`` replaced (``dataclasses.replace``;
    None keeps the string as it is): a run's thinking conventions (``model.chat.think_end`` /
    ``model.chat.answer_cue``) over an env's. A subclass of :class:`AnswerForcing` keeps its
    own :meth:`~AnswerForcing.suffix` and :meth:`~AnswerForcing.score`, which see the new
    strings through ``self``. An env of the earlier API that writes its own
    ``forced_answer_suffix`` / ``score_forced_answer`` (``env``, for the message) would not
    read them: that, and a subclass that cannot be copied with new strings, is a
    :class:`~rewardgym.core.errors.ConfigError`."""
    changes = {
        name: value
        for name, value in (("think_end", think_end), ("answer_cue", answer_cue))
        if value is not None
    }
    if not changes:
        return forcing
    keys = " and ".join(f"model.chat.{name}" for name in changes)
    owner = type(getattr(env, "unwrapped", env)).__name__ if env is not None else "the env"
    if isinstance(forcing, _LegacyForcing):
        methods = sorted(_own_members(forcing._env) & set(LEGACY_METHODS))
        raise ConfigError(
            f"{keys} cannot replace the answer-forcing strings of {owner}: it overrides "
            f"{', '.join(methods)} (deprecated TextEnv methods), which do not read them. Give the "
            "env an answer_forcing (rewardgym.core.forcing.AnswerForcing, or a subclass whose "
            f"suffix() / score() read self.think_end and self.answer_cue), or remove {keys}."
        )
    try:
        return replace(forcing, **changes)
    except TypeError as exc:  # a subclass whose __init__ does not take the dataclass fields
        raise ConfigError(
            f"{keys} cannot replace the answer-forcing strings of {owner}: its "
            f"{type(forcing).__name__} cannot be copied with new strings "
            f"(dataclasses.replace: {exc}). Make it a dataclass subclass of AnswerForcing "
            f"without an __init__ of its own, or remove {keys}."
        ) from exc


def _env_forcing(env: Any) -> AnswerForcing:
    """The env's own protocol (its ``answer_forcing``, or its legacy members; see
    :func:`forcing_of`)."""
    base = getattr(env, "unwrapped", env)
    forcing = getattr(base, "answer_forcing", None)
    if not isinstance(forcing, AnswerForcing):
        forcing = AnswerForcing()
    legacy = _own_members(base)
    if not legacy:
        return forcing
    if type(base) not in _warned:
        _warned.add(type(base))
        warnings.warn(
            f"{type(base).__name__} sets {', '.join(sorted(legacy))}: these TextEnv members are "
            "deprecated and will be removed in the next release. Set the env's answer_forcing "
            "instead (rewardgym.core.forcing.AnswerForcing(think_end=..., truncation_marker=..., "
            "answer_cue=...), or a subclass overriding suffix() / score()).",
            DeprecationWarning,
            stacklevel=3,  # the caller of forcing_of
        )
    strings = {n: getattr(base, n) for n in LEGACY_STRINGS if n in legacy}
    forcing = replace(forcing, **strings)
    if legacy & set(LEGACY_METHODS):
        return _LegacyForcing(base, forcing)
    return forcing
