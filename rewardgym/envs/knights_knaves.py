"""``rewardgym/knights_knaves-v0``: Knights & Knaves logic puzzles with a rule-based verifier.

Each task is a puzzle in the style of Xie et al. 2024: 2 to 8 inhabitants of an island where
knights always tell the truth and knaves always lie each make one statement built from "X is a
knight/knave" with not, and, or, if-then and if-and-only-if; the puzzle has exactly one
consistent assignment of roles (checked by brute force over all 2^n assignments). Puzzles are
drawn from the env's seeded RNG; ``generate_puzzle(seed, ...)`` rebuilds any task from the seed
in its metadata.

The verifier reads each person's role from the response (any order, any case, numbered lists,
bullets, tables, "Knights: A, B", text around the answer; see ``rewardgym.envs._kk_answer``) and
scores it with the chosen reward scheme:

========================================================  ==========  =========
reading                                                    ``binary``  ``paper``
========================================================  ==========  =========
exactly the solution                                       1.0         2.0
every person has a role, but not the solution, or a        0.0         -0.5
person is given both roles (contradictory answer)
a person has no role, a role other than knight/knave,      0.0         -1.0
or a name not in the puzzle is given a role
no claim of a role about anyone (malformed)                0.0         -2.0
========================================================  ==========  =========
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rewardgym.core.env import FEEDBACK_STYLES, TextEnv
from rewardgym.core.errors import ConfigError
from rewardgym.core.types import Task, Verdict
from rewardgym.core.verifier import Verifier
from rewardgym.envs._kk_answer import NOT_NAMES, Reading, read_answer
from rewardgym.envs._kk_logic import Puzzle, canonical_answer, evaluate, generate_puzzle
from rewardgym.envs._kk_logic import render_statement as _render_statement

__all__ = [
    "DEFAULT_NAMES",
    "REWARD_SCHEMES",
    "KnightsKnavesConfig",
    "KnightsKnavesEnv",
    "KnightsKnavesVerifier",
    "KnightsKnavesVerifierConfig",
    "generate_puzzle",
    "render_prompt",
]

# Reward per reading: exactly right, wrong, unknown (missing person, unknown name or role),
# malformed (nothing read).
REWARD_SCHEMES: dict[str, dict[str, float]] = {
    "binary": {"right": 1.0, "wrong": 0.0, "unknown": 0.0, "malformed": 0.0},
    "paper": {"right": 2.0, "wrong": -0.5, "unknown": -1.0, "malformed": -2.0},
}
MIN_PEOPLE, MAX_PEOPLE = 2, 8
DEPTHS, WIDTHS = (2, 3, 4), (2, 3, 4)
DEFAULT_NAMES: tuple[str, ...] = tuple(
    "Zoey Oliver Emma Liam Ava Noah Mia James Sofia Lucas Grace Henry Chloe Jack Ella Owen Lily "
    "Mason Ruby Ethan Aria Samuel Nora Leo Isla Daniel Hazel Jacob Violet Logan".split()
)
_NAME = re.compile(r"[A-Za-z][A-Za-z-]{0,39}")


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"knights_knaves {name} must be an int in [{low}, {high}], got {value!r}")


def _check_choice(name: str, value: object, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ConfigError(f"knights_knaves {name} must be one of {tuple(choices)}, got {value!r}")


def _check_names(names: object, needed: int) -> None:
    if isinstance(names, str) or not isinstance(names, (tuple, list)):
        raise ConfigError(f"knights_knaves names must be a list of names, got {names!r}")
    for name in names:
        if not isinstance(name, str) or not _NAME.fullmatch(name) or name.lower() in NOT_NAMES:
            raise ConfigError(
                f"knights_knaves names must be single words of letters (and hyphens), not a "
                f"role or a common word; got {name!r}"
            )
    if len({n.lower() for n in names}) != len(names):
        raise ConfigError(f"knights_knaves names must differ (ignoring case), got {names!r}")
    if len(names) < needed:
        raise ConfigError(
            f"knights_knaves names has {len(names)} names, but puzzles with up to {needed} "
            "people need at least that many"
        )


@dataclass
class KnightsKnavesConfig:
    """Params of ``rewardgym/knights_knaves-v0``.

    n_people: people per puzzle, 2-8 (the smallest number when max_people is set).
    max_people: None for exactly n_people; else each puzzle has n_people..max_people people,
        drawn uniformly.
    depth: the deepest nesting of a statement, 2-4 (2: one connective over claims, as in the
        paper; a bare claim is depth 1).
    width: the most operands of an and/or, 2-4.
    reward_scheme: "binary" (1/0) or "paper" (+2 right, -0.5 wrong, -1 unknown name or role or
        a missing person, -2 malformed).
    names: the pool the people's names are drawn from.
    max_turns: 1 for single-turn; >1 lets the model retry after feedback.
    feedback: "generic" ("incorrect, try again") or "reason" (which person's statement the
        answer gets wrong, without revealing the solution).
    """

    n_people: int = 3
    max_people: int | None = None
    depth: int = 2
    width: int = 2
    reward_scheme: str = "binary"
    names: tuple[str, ...] = DEFAULT_NAMES
    max_turns: int = 1
    feedback: str = "generic"

    def __post_init__(self) -> None:
        _check_int("n_people", self.n_people, MIN_PEOPLE, MAX_PEOPLE)
        if self.max_people is not None:
            _check_int("max_people", self.max_people, self.n_people, MAX_PEOPLE)
        _check_int("depth", self.depth, DEPTHS[0], DEPTHS[-1])
        _check_int("width", self.width, WIDTHS[0], WIDTHS[-1])
        _check_choice("reward_scheme", self.reward_scheme, tuple(REWARD_SCHEMES))
        _check_names(self.names, self.max_people or self.n_people)
        self.names = tuple(self.names)
        turns = self.max_turns
        if isinstance(turns, bool) or not isinstance(turns, int) or turns < 1:
            raise ConfigError(f"knights_knaves max_turns must be an int >= 1, got {turns!r}")
        _check_choice("feedback", self.feedback, FEEDBACK_STYLES)


@dataclass
class KnightsKnavesVerifierConfig:
    """Params of the ``rewardgym/knights_knaves-v0`` verifier: the reward scheme."""

    reward_scheme: str = "binary"

    def __post_init__(self) -> None:
        _check_choice("reward_scheme", self.reward_scheme, tuple(REWARD_SCHEMES))


# -- prompt ------------------------------------------------------------------------------------
_SPEECH = (
    '{name} says, "{quoted}."',
    "{name} tells you that {content}.",
    'According to {name}, "{quoted}."',
    '{name} claims: "{quoted}."',
)


def render_prompt(puzzle: Puzzle, seed: int) -> str:
    """The puzzle as a prompt; ``seed`` picks the phrasing of each statement."""
    r = random.Random(f"prompt:{seed}")
    names = puzzle.names
    people = ", ".join(names[:-1]) + f" and {names[-1]}"
    lines = [
        "A very special island is inhabited only by knights and knaves. Knights always tell the "
        f"truth, and knaves always lie. You meet {len(names)} inhabitants: {people}."
    ]
    for name, statement in zip(names, puzzle.statements, strict=True):
        content = _render_statement(statement, names)
        quoted = content[0].upper() + content[1:]
        lines.append(r.choice(_SPEECH).format(name=name, content=content, quoted=quoted))
    lines.append("So who is a knight and who is a knave?")
    form = "\n".join(f"({i}) {name} is a <role>" for i, name in enumerate(names, start=1))
    return (
        " ".join(lines) + "\n\nReason it out, then end your reply with a conclusion that gives "
        'every inhabitant\'s role, one per line, in this format (each <role> is "knight" or '
        f'"knave"):\nCONCLUSION:\n{form}'
    )


# -- verifier ----------------------------------------------------------------------------------
class KnightsKnavesVerifier(Verifier):
    """Reads who is a knight and who a knave from the response and compares with the solution
    in ``task.metadata`` (``names``, ``solution``; ``statements`` for feedback)."""

    def __init__(self, config: KnightsKnavesVerifierConfig | None = None) -> None:
        self.config = config or KnightsKnavesVerifierConfig()
        self.rewards = REWARD_SCHEMES[self.config.reward_scheme]

    def verify(self, response: str, task: Task) -> Verdict:
        problem = _metadata_problem(task.metadata)
        if problem:
            return Verdict.unscorable(problem)
        names, solution = list(task.metadata["names"]), list(task.metadata["solution"])
        reading = read_answer(response, names)
        outcome, reason = _judge(reading, names, solution, task.metadata.get("statements"))
        extracted = _describe(reading, names) if reading.found_any else None
        return Verdict(
            self.rewards[outcome], correct=outcome == "right", reason=reason, extracted=extracted
        )


def _metadata_problem(metadata: Mapping[str, object]) -> str:
    names, solution = metadata.get("names"), metadata.get("solution")
    if not isinstance(names, Sequence) or isinstance(names, str) or not names:
        return "the task has no 'names' list in its metadata"
    if not all(isinstance(n, str) for n in names):
        return "the task's metadata 'names' are not all strings"
    if not isinstance(solution, Sequence) or isinstance(solution, str):
        return "the task has no 'solution' list in its metadata"
    if len(solution) != len(names) or any(role not in ("knight", "knave") for role in solution):
        return "the task's metadata 'solution' is not one 'knight'/'knave' per name"
    return ""


def _judge(
    reading: Reading, names: list[str], solution: list[str], statements: object
) -> tuple[str, str]:
    """``(outcome, reason)`` with outcome one of right, wrong, unknown, malformed."""
    if not reading.found_any:
        return "malformed", "no knight/knave answer found"
    if reading.strangers:
        return "unknown", f"{reading.strangers[0]!r} is not one of {', '.join(names)}"
    for name, role in zip(names, reading.roles, strict=True):
        if role is None:
            return "unknown", f"no role given for {name}"
        if role not in ("knight", "knave"):
            return "unknown", f"{role!r} is not a role; each person is a knight or a knave"
    if reading.contradicted:
        return "wrong", f"{names[reading.contradicted[0]]} is given both roles"
    if list(reading.roles) == solution:
        return "right", "correct"
    return "wrong", _inconsistency(reading.roles, names, statements)


def _inconsistency(roles: Sequence[str | None], names: list[str], statements: object) -> str:
    """Why an assignment fails, in terms the model can check itself (no solution revealed)."""
    knights = [role == "knight" for role in roles]
    if isinstance(statements, Sequence) and len(statements) == len(names):
        try:
            for name, knight, statement in zip(names, knights, statements, strict=True):
                if evaluate(statement, knights) != knight:
                    role, truth = ("knight", "false") if knight else ("knave", "true")
                    return f"with your roles {name} is a {role}, but {name}'s statement is {truth}"
        except (IndexError, TypeError, ValueError):
            pass  # statements not in the expected form: fall back to the plain reason
    return "the assignment is not the solution"


def _describe(reading: Reading, names: list[str]) -> str:
    return "\n".join(
        f"({i}) {name} is a {role}" if role else f"({i}) {name}: ?"
        for i, (name, role) in enumerate(zip(names, reading.roles, strict=True), start=1)
    )


# -- environment -------------------------------------------------------------------------------
class KnightsKnavesEnv(TextEnv):
    """Solve a Knights & Knaves puzzle; single-turn, or retry with feedback when max_turns > 1."""

    def __init__(
        self, config: KnightsKnavesConfig | None = None, *, render_mode: str | None = None
    ) -> None:
        super().__init__(render_mode=render_mode)
        self.config = config or KnightsKnavesConfig()
        self.verifier = KnightsKnavesVerifier(
            KnightsKnavesVerifierConfig(reward_scheme=self.config.reward_scheme)
        )
        self.max_turns = self.config.max_turns
        self.feedback_style = self.config.feedback

    def sample_task(self, rng: np.random.Generator) -> Task:
        c = self.config
        n = c.n_people if c.max_people is None else int(rng.integers(c.n_people, c.max_people + 1))
        seed = int(rng.integers(0, 2**63))
        puzzle = generate_puzzle(seed, n, depth=c.depth, width=c.width, names=c.names)
        return Task(
            prompt=render_prompt(puzzle, seed),
            answer=canonical_answer(puzzle.names, puzzle.knights),
            id=f"knights_knaves:n{n}-d{c.depth}-w{c.width}:{seed}",
            metadata={
                "names": list(puzzle.names),
                "solution": list(puzzle.roles),
                "statements": list(puzzle.statements),
                "n_people": n,
                "depth": c.depth,
                "width": c.width,
                "seed": seed,
            },
        )
