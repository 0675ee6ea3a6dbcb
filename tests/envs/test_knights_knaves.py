import itertools
import json
import random
import re
import time
from pathlib import Path

import pytest

import rewardgym
from rewardgym.core.errors import ConfigError
from rewardgym.core.registry import ENVS, VERIFIERS
from rewardgym.core.types import Task
from rewardgym.envs._kk_answer import MAX_SCAN_CHARS, read_answer
from rewardgym.envs._kk_logic import (
    PuzzleNotFoundError,
    _Sampler,
    evaluate,
    render_statement,
    solve,
    truth_table,
)
from rewardgym.envs.knights_knaves import (
    DEFAULT_NAMES,
    KnightsKnavesConfig,
    KnightsKnavesEnv,
    KnightsKnavesVerifier,
    KnightsKnavesVerifierConfig,
    generate_puzzle,
)
from rewardgym.plugins.hookspecs import hookimpl
from rewardgym.testing import HOSTILE_RESPONSES

ID = "rewardgym/knights_knaves-v0"
NAMES = ["Zoey", "Oliver", "Ava"]
# Zoey: "Oliver is a knave." Oliver: "Zoey is a knight and Ava is a knight." Ava: "Zoey is a knight".
STATEMENTS = [("knave", 1), ("and", ("knight", 0), ("knight", 2)), ("knight", 0)]
TASK = Task(
    "puzzle",
    answer="(1) Zoey is a knight\n(2) Oliver is a knave\n(3) Ava is a knight",
    metadata={"names": NAMES, "solution": ["knight", "knave", "knight"], "statements": STATEMENTS},
)
PAPER = KnightsKnavesVerifier(KnightsKnavesVerifierConfig(reward_scheme="paper"))
BINARY = KnightsKnavesVerifier()


# -- logic -------------------------------------------------------------------------------------
def _reference_solutions(statements):
    """Every consistent assignment, by the plain loop over all 2^n assignments."""
    n = len(statements)
    return [
        knights
        for knights in itertools.product([True, False], repeat=n)
        if all(evaluate(s, knights) == knights[i] for i, s in enumerate(statements))
    ]


def _depth(s):
    return 1 if s[0] in ("knight", "knave") else 1 + max(_depth(c) for c in s[1:])


def _max_width(s):
    if s[0] in ("knight", "knave"):
        return 0
    return max([len(s) - 1, *(_max_width(c) for c in s[1:])])


def _claims(s):
    if s[0] in ("knight", "knave"):
        return [s]
    return [c for child in s[1:] for c in _claims(child)]


def test_solve_matches_the_reference_loop_on_random_statements():
    for n, depth, width in itertools.product((2, 3, 5), (2, 3), (2, 3)):
        sampler = _Sampler(random.Random(n * 100 + depth * 10 + width), n, width)
        for _ in range(30):
            drawn = [sampler.statement(i, depth) for i in range(n)]
            statements = [s for s, _ in drawn]
            for statement, table in drawn:  # the sampler's table is the statement's table
                assert table == truth_table(statement, n)
            assert sorted(solve(statements)) == sorted(_reference_solutions(statements))


@pytest.mark.parametrize(
    ("n", "depth", "width"), [(2, 2, 2), (3, 2, 2), (5, 3, 3), (8, 2, 2), (8, 4, 4)]
)
def test_generated_puzzles_have_one_solution_and_respect_the_knobs(n, depth, width):
    for seed in range(15):
        p = generate_puzzle(seed, n, depth=depth, width=width, names=DEFAULT_NAMES)
        assert _reference_solutions(p.statements) == [p.knights]
        assert len(p.names) == n == len(set(p.names)) and set(p.names) <= set(DEFAULT_NAMES)
        assert all(_depth(s) <= depth and _max_width(s) <= width for s in p.statements)
        for speaker, statement in enumerate(p.statements):  # nobody says "I am a knave"
            assert ("knave", speaker) not in _claims(statement)
    deep = [generate_puzzle(s, n, depth=depth, width=width, names=DEFAULT_NAMES) for s in range(40)]
    assert max(_depth(s) for p in deep for s in p.statements) == depth


def test_generation_is_a_function_of_the_seed():
    a = generate_puzzle(7, 4, names=DEFAULT_NAMES)
    assert a == generate_puzzle(7, 4, names=DEFAULT_NAMES)
    assert len({generate_puzzle(s, 4, names=DEFAULT_NAMES).statements for s in range(20)}) > 10


def test_generator_argument_errors():
    with pytest.raises(ConfigError, match=re.escape("depth must be >= 2, got 1 (bare claims")):
        generate_puzzle(0, 3, depth=1, names=DEFAULT_NAMES)
    with pytest.raises(ConfigError, match=re.escape("names has 2 names, fewer than n_people=3")):
        generate_puzzle(0, 3, names=["A", "B"])
    with pytest.raises(PuzzleNotFoundError, match=re.escape("in 1 draws (n_people=8")):
        next(generate_puzzle(s, 8, names=DEFAULT_NAMES, max_attempts=1) for s in range(100))


def test_render_statement():
    names = ["Zoey", "Oliver", "Ava"]
    cases = {
        ("knight", 1): "Oliver is a knight",
        ("not", ("knave", 2)): "Ava is not a knave",
        ("and", ("knight", 0), ("knave", 1), ("knight", 2)): (
            "Zoey is a knight and Oliver is a knave and Ava is a knight"
        ),
        ("implies", ("or", ("knight", 0), ("knave", 2)), ("knave", 1)): (
            "if (Zoey is a knight or Ava is a knave) then Oliver is a knave"
        ),
        ("or", ("not", ("knave", 1)), ("and", ("knight", 0), ("knight", 2))): (
            "Oliver is not a knave or (Zoey is a knight and Ava is a knight)"
        ),
        ("not", ("iff", ("knight", 0), ("knight", 1))): (
            "it is not the case that (Zoey is a knight if and only if Oliver is a knight)"
        ),
    }
    for statement, text in cases.items():
        assert render_statement(statement, names) == text


# -- environment -------------------------------------------------------------------------------
def test_env_passes_check_env(check_env):
    check_env(KnightsKnavesEnv(KnightsKnavesConfig(n_people=3, max_people=5, max_turns=2)))


def test_prompt_answer_and_metadata():
    env = KnightsKnavesEnv(KnightsKnavesConfig(n_people=4))
    prompt, info = env.reset(seed=3)
    task = info["task"]
    names = task.metadata["names"]
    assert "knights and knaves" in prompt and f"You meet 4 inhabitants: {names[0]}," in prompt
    assert prompt.endswith(
        f"CONCLUSION:\n(1) {names[0]} is a <role>\n"
        + "\n".join(f"({i}) {n} is a <role>" for i, n in enumerate(names[1:], start=2))
    )
    assert task.answer.splitlines() == [
        f"({i}) {n} is a {r}"
        for i, (n, r) in enumerate(zip(names, task.metadata["solution"], strict=True), 1)
    ]
    assert json.loads(json.dumps(task.metadata))["seed"] == task.metadata["seed"]
    again = generate_puzzle(task.metadata["seed"], 4, names=DEFAULT_NAMES)
    assert list(again.names) == names and list(again.roles) == task.metadata["solution"]
    assert env.step(f"Let me think.\nCONCLUSION:\n{task.answer}")[1] == 1.0


def test_people_range_and_seeding():
    env = KnightsKnavesEnv(KnightsKnavesConfig(n_people=2, max_people=8))
    sizes = {len(env.reset(seed=s)[1]["task"].metadata["names"]) for s in range(60)}
    assert sizes == set(range(2, 9))
    assert env.reset(seed=5)[0] == env.reset(seed=5)[0]


def test_gold_answers_score_right_and_flips_wrong_for_many_tasks():
    env = KnightsKnavesEnv(KnightsKnavesConfig(n_people=2, max_people=8, depth=3, width=3))
    for seed in range(40):
        task = env.reset(seed=seed)[1]["task"]
        assert BINARY.verify(task.answer, task).reward == 1.0
        flipped = task.answer.replace("knight", "KNAVE_").replace("knave", "knight")
        assert PAPER.verify(flipped.replace("KNAVE_", "knave"), task).reward == -0.5


def test_multi_turn_reason_feedback_does_not_reveal_the_solution():
    env = KnightsKnavesEnv(KnightsKnavesConfig(max_turns=2, feedback="reason"))
    env.reset(options={"task": TASK})
    obs, reward, term, _, info = env.step(
        "(1) Zoey is a knave (2) Oliver is a knave (3) Ava is a knight"
    )
    assert not term and reward == 0.0
    # Zoey's "Oliver is a knave" is true under that answer, so Zoey cannot be a knave.
    assert "with your roles Zoey is a knave, but Zoey's statement is true" in obs
    _, reward, term, _, _ = env.step(TASK.answer)
    assert term and reward == 1.0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_people": 9}, "knights_knaves n_people must be an int in [2, 8], got 9"),
        (
            {"n_people": 4, "max_people": 3},
            "knights_knaves max_people must be an int in [4, 8], got 3",
        ),
        ({"depth": 1}, "knights_knaves depth must be an int in [2, 4], got 1"),
        ({"width": 5}, "knights_knaves width must be an int in [2, 4], got 5"),
        (
            {"reward_scheme": "logic-rl"},
            "knights_knaves reward_scheme must be one of ('binary', 'paper'), got 'logic-rl'",
        ),
        ({"names": ("Ann", "ann", "Bo")}, "knights_knaves names must differ (ignoring case)"),
        ({"names": ("Ann", "Knight", "Bo")}, "not a role or a common word; got 'Knight'"),
        ({"names": ("Ann", "Bo")}, "knights_knaves names has 2 names, but puzzles with up to 3"),
        ({"max_turns": 0}, "knights_knaves max_turns must be an int >= 1, got 0"),
        (
            {"feedback": "loud"},
            "knights_knaves feedback must be one of ('generic', 'reason'), got 'loud'",
        ),
    ],
)
def test_bad_config(params, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        KnightsKnavesConfig(**params)


class _Plugin:
    @staticmethod
    @hookimpl
    def rewardgym_register_envs(register):
        register(
            ID,
            "rewardgym.envs.knights_knaves:KnightsKnavesEnv",
            config="rewardgym.envs.knights_knaves:KnightsKnavesConfig",
        )

    @staticmethod
    @hookimpl
    def rewardgym_register_verifiers(register):
        register(
            ID,
            "rewardgym.envs.knights_knaves:KnightsKnavesVerifier",
            config="rewardgym.envs.knights_knaves:KnightsKnavesVerifierConfig",
        )


@pytest.fixture
def registered(rewardgym_plugin):
    """The env and verifier ids, registered for the test unless they are built in already."""
    rewardgym.load_plugins()
    if ID not in ENVS or ID not in VERIFIERS:
        rewardgym_plugin(_Plugin(), name="knights_knaves_test")


def test_registered_env_and_verifier(registered, make_env):
    env = make_env(ID, n_people=5, reward_scheme="paper")
    task = env.reset(seed=0)[1]["task"]
    assert len(task.metadata["names"]) == 5 and env.step("no idea")[1] == -2.0
    verifier = rewardgym.make_verifier(ID, reward_scheme="paper")
    assert verifier.verify(TASK.answer, TASK).reward == 2.0
    with pytest.raises(ConfigError, match=re.escape("got 'Paper'")):
        rewardgym.make_verifier(ID, reward_scheme="Paper")


# -- verifier ----------------------------------------------------------------------------------
RIGHT = [
    "(1) Zoey is a knight\n(2) Oliver is a knave\n(3) Ava is a knight",
    "(2) Oliver is a Knave.\n(1) Zoey is a knight.\n(3) Ava is a knight.",
    "zoey: knight\noliver: KNAVE\nava - knight",
    "Let's test cases. If Zoey is a knave, then Oliver is a knight, so Zoey is a knight, which is "
    "a contradiction. Suppose Zoey is a knight.\n\nCONCLUSION:\n(1) Zoey is a knight\n"
    "(2) Oliver is a knave\n(3) Ava is a knight\n\nHope this helps!",
    "<think>Assume Ava is a knave. Then Zoey is a knave...</think>\n<answer>\n(1) Zoey is a knight"
    "\n(2) Oliver is a knave\n(3) Ava is a knight\n</answer>",
    "**Final Answer:**\n- **Zoey**: Knight\n- **Oliver**: Knave\n- **Ava**: Knight",
    "So Zoey and Ava are knights, while Oliver is a knave.",
    "Knights: Zoey, Ava\nKnaves: Oliver",
    "The knights are Zoey and Ava, and the knave is Oliver.",
    "| Name | Role |\n|---|---|\n| Zoey | Knight |\n| Oliver | Knave |\n| Ava | Knight |",
    "Answer: Zoey is a knight, Oliver is a knave, and Ava is a knight.",
    "Roles: Zoey is a knight, Oliver is not a knight, Ava must be a knight.",
    "\\boxed{\\text{Zoey is a knight, Oliver is a knave, Ava is a knight}}",
    "Zoey's role: knight\nOliver's role: knave\nAva's role: knight",
    "Zoey (knight), Oliver (knave), Ava (knight)",
    "1. Zoey \u2013 Knight\n2. Oliver \u2013 Knave\n3. Ava \u2013 Knight",
    "Zoey is a knight. Wait, no: Zoey is a knave. Hmm, actually Zoey is a knight. Oliver is a "
    "knave and Ava is a knight.",
    "ZOEY IS A KNIGHT. OLIVER IS A KNAVE. AVA IS A KNIGHT.",
    "Both Zoey and Ava are knights; Oliver is a knave.",
    '{"Zoey": "knight", "Oliver": "knave", "Ava": "knight"}',
    'The answer is "Zoey is a knight, Oliver is a knave, Ava is a knight".',
    "I think Zoey is a knight, Oliver is a knave, and Ava is a knight.",
    # reported speech after the answer is not a claim (no contradiction)
    "Answer:\n(1) Zoey is a knight\n(2) Oliver is a knave\n(3) Ava is a knight\n\nCheck: Oliver "
    'says, "Zoey is a knight and Ava is a knight," which is false. According to Zoey, Oliver '
    "is a knave: true. Ava states that Zoey is a knight, also true.",
    '"Oliver is a knight," Zoey declared. So Zoey is a knight, Oliver is a knave, Ava a knight'
    ". To be clear: Ava is a knight.",
    "Zoey is a knight and knaves lie, so Oliver is a knave; Ava is a knight and a knight only.",
    "The puzzle has a unique solution.\n\n### Conclusion\n* Zoey \u2192 knight\n* Oliver \u2192 "
    "knave\n* Ava \u2192 knight",
]
WRONG = [  # every person has a role, but not the solution, or someone has both roles
    "(1) Zoey is a knave\n(2) Oliver is a knight\n(3) Ava is a knave",
    "Zoey, Oliver and Ava are all knights.",
    "(1) Zoey is a knight/knave\n(2) Oliver is a knave\n(3) Ava is a knight",
    "Answer:\n(1) Zoey is a knight\n(2) Zoey is a knave\n(3) Oliver is a knave\n(4) Ava is a knight",
    "Zoey and Oliver are not knights. Ava is a knight.",
    "Zoey is a knight or a knave, Oliver is a knave, Ava is a knight.",
]
UNKNOWN = [  # a person missing, a role that is not knight/knave, or a stranger
    "(1) Zoey is a knight\n(2) Oliver is a knave",
    "Zoey is a knight. Oliver is a knave.",
    "(1) Zoey is a liar.\n(2) Oliver is a knave\n(3) Ava is a knight",
    "(1) Zoey is a knight\n(2) Oliver is a knave\n(3) Ava is a knight\n(4) Zed is a knave",
    "- Zoey: Knight\n- Oliver: Truth-teller\n- Ava: Knight",
]
MALFORMED = [
    "",
    "I don't know.",
    "(1) Zoey is a <role>\n(2) Oliver is a <role>\n(3) Ava is a <role>",
    "Knights always tell the truth and knaves always lie.",
    "A knight, a knave, a knight",
]


@pytest.mark.parametrize("response", RIGHT)
def test_right_answers(response):
    verdict = PAPER.verify(response, TASK)
    assert verdict.reward == 2.0 and verdict.correct, verdict
    assert verdict.extracted == TASK.answer
    assert BINARY.verify(response, TASK).reward == 1.0


@pytest.mark.parametrize(
    ("responses", "reward"), [(WRONG, -0.5), (UNKNOWN, -1.0), (MALFORMED, -2.0)]
)
def test_paper_rewards(responses, reward):
    for response in responses:
        verdict = PAPER.verify(response, TASK)
        assert (verdict.reward, verdict.correct) == (reward, False), (response, verdict)
        assert BINARY.verify(response, TASK).reward == 0.0


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ("nothing", "no knight/knave answer found"),
        ("(1) Zoey is a knight\n(2) Oliver is a knave", "no role given for Ava"),
        ("Zoey is a knight, Oliver is a knave, Ava is a liar.", "'liar' is not a role"),
        (RIGHT[0] + "\n(4) Zed is a knave", "'Zed' is not one of Zoey, Oliver, Ava"),
        (WRONG[2], "Zoey is given both roles"),
        (WRONG[1], "with your roles Zoey is a knight, but Zoey's statement is false"),
    ],
)
def test_reasons(response, reason):
    assert reason in PAPER.verify(response, TASK).reason


def test_only_the_tail_is_read():
    assert BINARY.verify(RIGHT[0] + " " * MAX_SCAN_CHARS, TASK).reward == 0.0
    assert BINARY.verify("x" * 100_000 + RIGHT[0], TASK).reward == 1.0


def test_metadata_after_a_json_round_trip_and_bad_metadata():
    task = Task("p", metadata=json.loads(json.dumps(dict(TASK.metadata))))
    assert "Zoey's statement is false" in PAPER.verify(WRONG[1], task).reason
    for metadata in ({}, {"names": NAMES}, {"names": NAMES, "solution": ["knight"]}):
        assert PAPER.verify(RIGHT[0], Task("p", metadata=metadata)).reward is None


def test_hostile_inputs_are_fast_in_process():
    crafted = [
        "Zoey is a " * 3000,
        "Zoey, " * 5000,
        "Zoey and " * 3000 + "are knights",
        "Knights: " + "Zoey, " * 3000,
        "(1) Zed is a knight\n" * 1000,
        "answer:\n" * 3000,
        "if " * 4000 + "Zoey is a knight",
        "the knights are " * 2000,
        "|" * 9000,
    ]
    for response in (*HOSTILE_RESPONSES, *crafted):
        start = time.perf_counter()
        verdict = PAPER.verify(response, TASK)
        assert time.perf_counter() - start < 0.25, response[:40]
        assert verdict.reward in (-2.0, -1.0, -0.5), response[:40]


def test_check_verifier(check_verifier):
    cases = [(r, TASK, 2.0) for r in RIGHT[:4]] + [(r, TASK, -0.5) for r in WRONG[:2]]
    cases += [(UNKNOWN[0], TASK, -1.0), (MALFORMED[1], TASK, -2.0), ("x", Task("p"), None)]
    check_verifier(PAPER, cases, timeout=2.0)


def test_read_answer_reports_strangers_and_contradictions():
    reading = read_answer(
        "Answer:\n(1) Zed is a knight\n(2) Zoey is a knight, Zoey is a knave", NAMES
    )
    assert reading.strangers == ("Zed",) and reading.contradicted == (0,)
    assert reading.roles == ("knave", None, None)


def test_docs_example_runs(registered, capsys):
    page = Path(__file__).resolve().parents[2] / "docs" / "envs" / "knights_knaves.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, str(page), "exec"), {"__name__": "docs_example"})  # noqa: S102
    assert "with your roles" in capsys.readouterr().out
