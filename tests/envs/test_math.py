import json
import pickle
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import rewardgym
from rewardgym.core.errors import ConfigError, MissingExtraError
from rewardgym.core.registry import ENVS, VERIFIERS
from rewardgym.core.types import Task
from rewardgym.core.verify import VerifierPool, shared_pool
from rewardgym.envs import _math_data
from rewardgym.envs._math_extract import extract_answer, gold_span
from rewardgym.envs._math_procedural import KINDS, generate
from rewardgym.envs.math import MathConfig, MathEnv, MathVerifier, MathVerifierConfig
from rewardgym.plugins.hookspecs import hookimpl
from rewardgym.testing import check_env, check_verifier

ID = "rewardgym/math-v0"
LIMIT = 1000


@pytest.fixture(scope="module")
def verifier():
    return MathVerifier()


def judge(verifier, gold, response):
    return verifier.verify(response, Task("q", answer=gold))


# -- extraction ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("response", "mode", "text", "form"),
    [
        ("so \\boxed{\\frac{1}{2}} and then \\boxed{3}", "boxed", "3", "boxed"),
        ("\\boxed{\\frac{\\sqrt{3}}{2}}.", "boxed", "\\frac{\\sqrt{3}}{2}", "boxed"),
        ("\\fbox{ 7 }", "boxed", "7", "boxed"),
        ("\\boxed{\\{1, 2\\}}", "boxed", "\\{1, 2\\}", "boxed"),
        ("\\boxed{4} then \\boxed{5", "boxed", "4", "boxed"),
        ("Final Answer: 1/2", "final_answer", "1/2", "final_answer"),
        ("final answer is $-3$.", "final_answer", "-3", "final_answer"),
        ("**Final Answer:** 42", "final_answer", "42", "final_answer"),
        (
            "Final Answer: The final answer is $7$. I hope it is correct.",
            "final_answer",
            "7",
            "final_answer",
        ),
        (
            "**Final Answer**\n\n\\[\n\\boxed{\\dfrac12}\n\\]",
            "final_answer",
            "\\dfrac12",
            "final_answer",
        ),
        ("Final answer:\n\\[ x = 4 \\]\n\nDone.", "final_answer", "x = 4", "final_answer"),
        ("it costs 1,250 dollars", "last_number", "1250", "last_number"),
        ("about -2.5 or 3/4", "last_number", "3/4", "last_number"),
        ("a 15% rise", "last_number", "15%", "last_number"),
        ("x2 and 7.", "last_number", "7", "last_number"),
        ("Final Answer: 2, but \\boxed{3}", "auto", "3", "boxed"),
        ("Final Answer: 2\nchecking 5", "auto", "2", "final_answer"),
        ("so 4 apples", "auto", "4", "last_number"),
    ],
)
def test_extract_answer(response, mode, text, form):
    found = extract_answer(response, mode, LIMIT)
    assert (found.text, found.form, found.too_long) == (text, form, False)


@pytest.mark.parametrize(
    ("response", "mode"),
    [("no box here 3", "boxed"), ("\\boxed{", "boxed"), ("answer: 3", "final_answer"),
     ("Final Answer:", "final_answer"), ("nothing", "last_number"), ("", "auto")],
)  # fmt: skip
def test_extract_answer_finds_nothing(response, mode):
    assert extract_answer(response, mode, LIMIT) is None


def test_extraction_is_bounded():
    found = extract_answer("\\boxed{" + "1" * 5000 + "}", "boxed", LIMIT)
    assert found.too_long and len(found.text) == LIMIT
    assert extract_answer("\\boxed{" * 100_000, "auto", LIMIT) is None
    start = time.perf_counter()
    extract_answer("final answer " * 100_000 + "(" * 100_000, "auto", LIMIT)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(
    ("gold", "span"),
    [
        ("We get $x=2$, so the answer is $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("48/2 = 24 clips in May.\n#### 72", "72"),
        ("$\\sqrt{2}$", "\\sqrt{2}"),
        (" 5 ", "5"),
    ],
)
def test_gold_span(gold, span):
    assert gold_span(gold, LIMIT) == span


# -- verifier: right, wrong, tricky equivalent forms --------------------------------------------
EQUIVALENT = [
    ("\\frac{1}{2}", "The answer is \\boxed{0.5}."),
    ("\\frac{1}{2}", "\\boxed{1/2}"),
    ("0.5", "\\boxed{\\frac{1}{2}}"),
    ("\\frac{7}{6}", "\\boxed{1 \\frac{1}{6}}"),
    ("\\frac{3}{4}", "\\boxed{\\dfrac34}"),
    ("-\\frac{3}{2}", "\\boxed{\\frac{-3}{2}}"),
    ("6\\sqrt{2}", "\\boxed{\\sqrt{72}}"),
    ("6\\sqrt{2}", "\\boxed{6*sqrt(2)}"),
    ("\\frac{\\sqrt{3}}{2}", "\\boxed{\\sqrt{3}/2}"),
    ("5", "Solving gives \\boxed{x = 5}."),
    ("(4, \\infty)", "\\boxed{(4,\\infty)}"),
    ("(4, \\infty)", "\\boxed{x > 4}"),
    ("[1, 3)", "\\boxed{x \\in [1,3)}"),
    ("-2, 3", "\\boxed{\\{3, -2\\}}"),
    ("\\{-2, 3\\}", "Final Answer: x = -2, x = 3"),
    ("10", "\\boxed{10 \\text{ cm}}"),
    ("10 \\text{ cm}", "Final Answer: 10"),
    ("15\\%", "\\boxed{15\\%}"),
    ("1000", "Final Answer: 1,000"),
    ("\\text{(C)}", "\\boxed{C}"),
    ("3", "**Final Answer:** $\\boxed{3}$"),
    ("\\frac{1}{2}", "Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct."),
    ("72", "Natalia sold 48 + 24 = 72 clips."),
]
NOT_EQUIVALENT = [
    ("\\frac{1}{2}", "\\boxed{\\frac{1}{3}}"),
    ("\\frac{5}{6}", "\\boxed{0.8333}"),  # math-verify rounds to 6 places, not 4
    ("6\\sqrt{2}", "\\boxed{6\\sqrt{3}}"),
    ("[1, 3)", "\\boxed{[1, 3]}"),
    ("(4, \\infty)", "\\boxed{[4, \\infty)}"),
    ("-2, 3", "\\boxed{-2}"),
    ("\\{2, 3\\}", "\\boxed{\\{2, 4\\}}"),
    ("3", "\\boxed{4}"),
    ("3", "I could not solve it."),
]


@pytest.mark.parametrize(("gold", "response"), EQUIVALENT)
def test_equivalent_forms_are_correct(verifier, gold, response):
    verdict = judge(verifier, gold, response)
    assert (verdict.reward, verdict.correct) == (1.0, True), verdict.reason


@pytest.mark.parametrize(("gold", "response"), NOT_EQUIVALENT)
def test_wrong_answers_score_zero(verifier, gold, response):
    verdict = judge(verifier, gold, response)
    assert (verdict.reward, verdict.correct) == (0.0, False), verdict.reason


def test_reasons_say_what_was_extracted_and_never_the_gold(verifier):
    verdict = judge(verifier, "\\frac{1}{2}", "so \\boxed{0.25}")
    assert verdict.reason == "'0.25' (from the \\boxed{}) is not equivalent to the gold answer"
    assert verdict.extracted == "0.25"
    verdict = judge(verifier, "12", "Final Answer: 12")
    assert verdict.reason == "'12' (from the 'Final Answer' line) is the gold answer as written"
    verdict = judge(verifier, "12", "no idea")
    assert verdict.reason == (
        "no answer found (expected a \\boxed{...}, a 'Final Answer:' line or a number)"
    )
    verdict = judge(verifier, "12", "\\boxed{" + "9" * 2000 + "}")
    assert verdict.reason == "the answer from the \\boxed{} is over 1000 characters"
    assert verdict.reward == 0.0


def test_unscorable_only_without_a_usable_gold(verifier):
    assert verifier.verify("\\boxed{1}", Task("q")).reward is None
    verdict = judge(verifier, "\\text{}", "\\boxed{1}")
    assert verdict.reward is None
    assert verdict.reason == "math-verify cannot parse the gold answer '\\\\text{}'"
    assert judge(verifier, "5", "\\boxed{}").reward == 0.0  # an empty answer is wrong


@pytest.mark.parametrize(
    ("extraction", "response", "reward"),
    [
        ("auto", "\\boxed{4}", 1.25),
        ("auto", "\\boxed{5}", 0.25),  # wrong but well formed
        ("auto", "it is 4", 1.0),  # right, but not in the requested form
        ("final_answer", "Final Answer: 4", 1.25),
        ("final_answer", "\\boxed{4}", 0.0),
        ("boxed", "Final Answer: 4", 0.0),
        ("last_number", "4", 1.25),
    ],
)
def test_format_term(extraction, response, reward):
    config = MathVerifierConfig(extraction=extraction, format_weight=0.25)
    assert MathVerifier(config).verify(response, Task("q", answer="4")).reward == reward


def test_verifier_pickles_without_its_caches(verifier):
    judge(verifier, "2", "\\boxed{2}")
    copy = pickle.loads(pickle.dumps(verifier))
    assert copy.config == verifier.config and copy._parse.cache_info().currsize == 0
    uncached = MathVerifier(MathVerifierConfig(cache_size=0))
    assert judge(uncached, "\\frac{1}{2}", "\\boxed{0.5}").correct


def test_verifies_off_the_main_thread(verifier):
    """math-verify's signal-based timeouts fail off the main thread; the verifier turns them off."""
    task = Task("q", answer="\\frac{2}{3}")
    with ThreadPoolExecutor(2) as pool:
        verdicts = list(pool.map(lambda r: verifier.verify(r, task), ["\\boxed{4/6}"] * 4))
    assert all(v.correct for v in verdicts)
    assert threading.current_thread() is threading.main_thread()


def test_check_verifier_right_wrong_tricky_and_hostile(verifier):
    task = Task("Compute 1/2 + 1/4.", answer="\\frac{3}{4}")
    cases = [
        ("\\boxed{\\frac{3}{4}}", task, 1.0),
        ("\\boxed{0.75}", task, True),
        ("Final Answer: 3/4", task, True),
        ("\\boxed{\\frac{1}{4}}", task, 0.0),
        ("", task, 0.0),
        ("\\boxed{1}", Task("q", answer="\\text{}"), None),
    ]
    check_verifier(verifier, cases, timeout=5.0)


def test_pool_contains_answers_that_hang_sympy():
    """``10^{10^{10}}`` makes sympy compute for minutes: the pool's timeout returns None."""
    task = Task("q", answer="5")
    with VerifierPool(MathVerifier(), workers=1, timeout=1.0) as pool:
        start = time.monotonic()
        hung, fine = pool.verify_batch(["\\boxed{10^{10^{10}}}", "\\boxed{5}"], [task, task])
        assert time.monotonic() - start < 30
        assert hung.reward is None and hung.reason.startswith("timed out")
        assert fine.correct and pool.stats.timeouts == 1


# -- the procedural set -------------------------------------------------------------------------
@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_procedural_answers_equivalents_and_wrong_answers(verifier, difficulty):
    env = MathEnv(MathConfig(difficulty=difficulty, use_pool=False))
    kinds = set()
    for seed in range(12):
        _, info = env.reset(seed=seed)
        task = info["task"]
        kinds.add(task.metadata["kind"])
        assert env.step(f"Reasoning...\n\\boxed{{{task.answer}}}")[1] == 1.0
        for form in task.metadata["equivalents"]:
            assert verifier.verify(f"\\boxed{{{form}}}", task).correct, (task.prompt, form)
        assert not verifier.verify(f"\\boxed{{{task.metadata['wrong']}}}", task).correct
    assert len(kinds) >= 4


def test_procedural_generation_is_seeded_and_exact():
    import numpy as np

    a = [generate(np.random.default_rng(7), 2, KINDS) for _ in range(5)]
    b = [generate(np.random.default_rng(7), 2, KINDS) for _ in range(5)]
    assert a == b
    problem = generate(np.random.default_rng(0), 1, ("sqrt",))
    k, m = re.fullmatch(r"(\d+)\\sqrt\{(\d+)\}", problem.answer).groups()
    n = int(re.search(r"\\sqrt\{(\d+)\}\$ to", problem.text).group(1))
    assert int(k) ** 2 * int(m) == n


def test_fixed_size_set_and_kinds():
    env = MathEnv(MathConfig(size=3, kinds=("fraction", "roots"), use_pool=False))
    prompts = {env.reset(seed=s)[0] for s in range(40)}
    assert len(prompts) == 3
    assert all("Compute" in p or "solutions" in p for p in prompts)
    assert MathEnv(MathConfig(size=3, kinds=("fraction", "roots"))).fixed is env.fixed


def test_prompt_instruction_follows_extraction():
    prompt, _ = MathEnv(MathConfig(use_pool=False)).reset(seed=0)
    assert prompt.endswith("\n\nPut your final answer within \\boxed{}.")
    prompt, _ = MathEnv(MathConfig(extraction="final_answer", use_pool=False)).reset(seed=0)
    assert prompt.endswith("End your reply with a line 'Final Answer: <answer>'.")
    prompt, info = MathEnv(MathConfig(instruction="", use_pool=False)).reset(seed=0)
    assert prompt == info["task"].prompt and "\n\n" not in prompt


# -- the environment ----------------------------------------------------------------------------
def test_env_passes_check_env():
    check_env(MathEnv())  # scores through the shared pool
    check_env(MathEnv(MathConfig(use_pool=False, max_turns=2, feedback="reason", size=5)))


def test_score_goes_through_the_shared_pool():
    env = MathEnv(MathConfig(verify_timeout=4.0))
    pool = shared_pool(workers=2, timeout=4.0)
    before = pool.stats.calls
    _, info = env.reset(seed=3)
    _, reward, terminated, _, info = env.step(f"\\boxed{{{info['task'].answer}}}")
    assert reward == 1.0 and terminated and info["correct"]
    assert pool.stats.calls == before + 1
    assert MathEnv(MathConfig(verify_timeout=4.0)).verifier is env.verifier  # one per config


class _RecordingPool:
    """A run-level pool stand-in: scores in ``pool`` and records each call's timeout."""

    def __init__(self, pool):
        self.pool, self.timeouts = pool, []

    @property
    def closed(self):
        return self.pool.closed

    def verify(self, response, task, verifier=None, *, timeout=None):
        self.timeouts.append(timeout)
        return self.pool.verify(response, task, verifier, timeout=timeout)


def _solve(env):
    _, info = env.reset(seed=3)
    return env.step(f"\\boxed{{{info['task'].answer}}}")[1]


def test_an_env_made_with_a_pool_scores_through_it_with_its_own_timeout(registered):
    default = shared_pool(workers=2, timeout=4.0)
    before = default.stats.calls
    with VerifierPool(workers=1, timeout=30.0) as given:
        pool = _RecordingPool(given)
        env = rewardgym.make(ID, verifier_pool=pool, verify_timeout=4.0)
        assert env.verifier_pool(workers=2, timeout=4.0) is pool
        assert _solve(env) == 1.0
        assert given.stats.calls == 1  # scored in the given pool ...
        assert pool.timeouts == [4.0]  # ... with the env's limit, not the pool's 30 s
        assert default.stats.calls == before  # and the shared pool saw nothing
    assert env.verifier_pool(workers=2, timeout=4.0) is default  # closed: back to the default
    assert _solve(env) == 1.0 and default.stats.calls == before + 1
    env.use_verifier_pool(None)
    assert env.verifier_pool(workers=2, timeout=4.0) is default


def test_multi_turn_reason_feedback():
    env = MathEnv(MathConfig(max_turns=2, feedback="reason", use_pool=False))
    _, info = env.reset(seed=1)
    obs, reward, terminated, _, _ = env.step("\\boxed{123456789}")
    assert (reward, terminated) == (0.0, False)
    assert obs == (
        "Your answer is incorrect: '123456789' (from the \\boxed{}) is not equivalent to the "
        "gold answer. Please try again."
    )
    _, reward, terminated, _, _ = env.step(f"\\boxed{{{info['task'].answer}}}")
    assert (reward, terminated) == (1.0, True)


# -- dataset sources ----------------------------------------------------------------------------
ROWS = [
    {"question": "What is 1/2 + 1/4?", "solution": "It is $\\boxed{\\frac{3}{4}}$.", "n": 1},
    {"question": "Solve 2x = 6.", "solution": "#### 3", "n": 2},
    {"question": "", "solution": "5", "n": 3},  # no problem: skipped
]


@pytest.fixture
def jsonl(tmp_path):
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return path


def dataset_config(path, tmp_path, **params):
    fields = {"problem_field": "question", "answer_field": "solution"}
    return MathConfig(source=str(path), cache_dir=str(tmp_path / "hf"), use_pool=False,
                      **{**fields, **params})  # fmt: skip


def test_jsonl_source_with_configurable_fields(jsonl, tmp_path):
    env = MathEnv(dataset_config(jsonl, tmp_path))
    assert len(env.rows) == 2
    answers = {}
    for seed in range(20):
        prompt, info = env.reset(seed=seed)
        answers[prompt.split("\n\n")[0]] = info["task"]
    assert set(answers) == {"What is 1/2 + 1/4?", "Solve 2x = 6."}
    fraction, equation = answers["What is 1/2 + 1/4?"], answers["Solve 2x = 6."]
    env.reset(options={"task": fraction})
    assert env.step("\\boxed{0.75}")[1] == 1.0
    env.reset(options={"task": equation})
    assert env.step("Final Answer: x = 3")[1] == 1.0
    assert fraction.id.startswith(f"math:{jsonl}:train:")
    assert MathEnv(dataset_config(jsonl, tmp_path)).rows is env.rows  # loaded once


def test_parquet_and_json_sources(tmp_path):
    import datasets

    table = datasets.Dataset.from_list([{"problem": "1+1?", "answer": 2}])
    table.to_parquet(str(tmp_path / "p.parquet"))
    (tmp_path / "p.json").write_text(json.dumps([{"problem": "2+2?", "answer": "4"}]))
    for name, gold in (("p.parquet", "2"), ("p.json", "4")):
        env = MathEnv(MathConfig(source=str(tmp_path / name), cache_dir=str(tmp_path / "hf"),
                                 use_pool=False))  # fmt: skip
        _, info = env.reset(seed=0)
        assert info["task"].answer == gold and env.step(f"\\boxed{{{gold}}}")[1] == 1.0


def test_dataset_errors(jsonl, tmp_path):
    with pytest.raises(ConfigError, match=re.escape("math source 'nope.jsonl': no such file")):
        MathEnv(MathConfig(source="nope.jsonl"))
    with pytest.raises(ConfigError) as info:
        MathEnv(dataset_config(jsonl, tmp_path, problem_field="questions"))
    assert str(info.value) == (
        f"math problem_field 'questions' is not a column of {str(jsonl)!r} (split 'train'); its "
        "columns are ['question', 'solution', 'n']. Did you mean 'question'?"
    )
    with pytest.raises(ConfigError, match=re.escape("Local files have one split, 'train'.")):
        MathEnv(dataset_config(jsonl, tmp_path, split="test"))
    with pytest.raises(ConfigError, match=re.escape("is a directory; a local source must be")):
        MathEnv(MathConfig(source=str(tmp_path)))
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"question": "q", "solution": None}) + "\n")
    with pytest.raises(ConfigError, match=re.escape("has no row with both a 'question' and")):
        MathEnv(dataset_config(empty, tmp_path))


def test_hub_dataset_without_network(monkeypatch, tmp_path):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError) as info:
        MathEnv(MathConfig(source="someone/no-such-math-set", cache_dir=str(tmp_path)))
    message = str(info.value)
    assert message.startswith(
        "math source: could not load split 'train' of the Hugging Face Hub dataset "
        "'someone/no-such-math-set': "
    )
    assert message.endswith(
        "Hub datasets need network access (or a copy in the datasets cache); to work offline "
        "pass a local .json/.jsonl/.parquet file, or source='procedural'."
    )


def test_missing_datasets_names_the_extra(monkeypatch, jsonl, tmp_path):
    monkeypatch.setitem(sys.modules, "datasets", None)
    _math_data.clear_cache()
    with pytest.raises(MissingExtraError, match=re.escape("pip install 'rewardgym[math]'")):
        MathEnv(dataset_config(jsonl, tmp_path))


def test_importing_the_env_imports_no_heavy_library():
    code = (
        "import sys, rewardgym.envs.math\n"
        "heavy = [m for m in ('math_verify', 'sympy', 'datasets') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- config ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"extraction": "boxd"}, "math extraction must be one of ('boxed', 'final_answer', "
         "'last_number', 'auto'), got 'boxd'. Did you mean 'boxed'?"),
        ({"format_weight": -0.5}, "math format_weight must be a number >= 0, got -0.5."),
        ({"difficulty": 4}, "math difficulty must be one of (1, 2, 3), got 4."),
        ({"kinds": ("fraction", "sqrts")}, "math kinds entry must be one of ('fraction', "
         "'sqrt', 'equation', 'percent', 'interval', 'roots'), got 'sqrts'. Did you mean 'sqrt'?"),
        ({"kinds": ()}, "math kinds must be a non-empty list of"),
        ({"verify_workers": 0}, "math verify_workers must be an int >= 1, got 0."),
        ({"verify_timeout": 0}, "math verify_timeout must be a number >= 0.001, got 0."),
        ({"source": ""}, "math source must be a non-empty str, got ''."),
        ({"size": -1}, "math size must be an int >= 0, got -1."),
        ({"feedback": "loud"}, "math feedback must be one of ('generic', 'reason'), got 'loud'."),
    ],
)  # fmt: skip
def test_bad_config(params, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        MathConfig(**params)


# -- registration and docs ----------------------------------------------------------------------
class _Plugin:
    @staticmethod
    @hookimpl
    def rewardgym_register_envs(register):
        register(ID, "rewardgym.envs.math:MathEnv", config="rewardgym.envs.math:MathConfig")

    @staticmethod
    @hookimpl
    def rewardgym_register_verifiers(register):
        register(ID, "rewardgym.envs.math:MathVerifier",
                 config="rewardgym.envs.math:MathVerifierConfig")  # fmt: skip


@pytest.fixture
def registered(rewardgym_plugin):
    """The env and verifier ids, registered for the test unless they are built in already."""
    rewardgym.load_plugins()
    if ID not in ENVS or ID not in VERIFIERS:
        rewardgym_plugin(_Plugin(), name="math_test")


def test_make_with_params(registered, make_env):
    env = make_env(ID, difficulty=2, kinds=["interval"], use_pool=False)
    _, info = env.reset(seed=0)
    assert info["task"].metadata["kind"] == "interval"
    verifier = rewardgym.make_verifier(ID, extraction="boxed", format_weight=0.1)
    assert verifier.verify("\\boxed{2}", Task("q", answer="3")).reward == 0.1
    with pytest.raises(ConfigError, match="extracton"):
        rewardgym.make(ID, extracton="boxed")


def test_docs_example_runs(registered, capsys):
    page = Path(__file__).resolve().parents[2] / "docs" / "envs" / "math.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, str(page), "exec"), {"__name__": "docs_example"})  # noqa: S102
    assert "is equivalent to the gold answer" in capsys.readouterr().out
