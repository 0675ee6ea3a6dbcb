"""The anytime (BRPO) and episodic (MRT) strategies: thinking traces, forced answers with the
inserted suffix kept out of the loss, episode cuts, and ``rewardgym train`` with ``brpo`` and
``mrt`` on the math, Knights & Knaves and Countdown envs."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardgym.core.config import load_config  # noqa: E402
from rewardgym.core.engine import Engine, Generation, SamplingParams  # noqa: E402
from rewardgym.core.errors import ConfigError  # noqa: E402
from rewardgym.core.make import make  # noqa: E402
from rewardgym.core.types import Task, Verdict  # noqa: E402
from rewardgym.runner.model_config import DEFAULT_CHARSET  # noqa: E402
from rewardgym.runner.models import char_tokenizer  # noqa: E402
from rewardgym.runner.trainer import Trainer  # noqa: E402
from rewardgym.strategies.episodic import EpisodeSegmenter, episode_cuts  # noqa: E402
from rewardgym.strategies.prompts import PromptFormat  # noqa: E402
from rewardgym.strategies.rollouts import encode_prompt, encode_text  # noqa: E402
from rewardgym.strategies.thinking import Trace, force_answers, think  # noqa: E402

TINY = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 1024}


class EchoEngine(Engine):
    """A deterministic engine for the sampling plumbing: every prompt gets ``reply``."""

    name = "echo"

    def __init__(self, tokenizer, reply: str):
        self.tokenizer, self.reply, self.calls = tokenizer, reply, []

    def generate(self, prompts, params):
        self.calls.append([list(p) for p in prompts])
        ids = tuple(encode_text(self.tokenizer, self.reply))[: params.max_new_tokens]
        text = self.tokenizer.decode(list(ids))
        stop = next((s for s in params.stop if s in text), None)
        if stop is not None:
            text = text[: text.index(stop) + len(stop)]
            ids = tuple(encode_text(self.tokenizer, text))
        return [Generation(ids, (-0.5,) * len(ids), text, "stop") for _ in prompts]

    def update_weights(self, model):
        pass


@pytest.fixture(scope="module")
def tokenizer():
    return char_tokenizer(DEFAULT_CHARSET)


@pytest.fixture(scope="module")
def prompts(tokenizer):
    return PromptFormat(tokenizer)  # no chat template: BOS + text


def _trace(tokenizer, task, text, ended):
    ids = tuple(encode_text(tokenizer, text))
    return Trace(
        task, tuple(encode_prompt(tokenizer, task.prompt)), ids, (0.0,) * len(ids), text, ended
    )


def test_think_stops_at_the_end_of_thinking_marker(tokenizer, prompts):
    env = make("rewardgym/arithmetic-v0", prompt_style="plain")
    engine = EchoEngine(tokenizer, "1,2,3</think>tail")
    _, info = env.reset(seed=0)
    traces = think(engine, prompts, env.unwrapped, [info["task"]], 3, SamplingParams(64))
    assert len(traces) == 3 and all(t.ended and t.text == "1,2,3</think>" for t in traces)
    cut = think(engine, prompts, env.unwrapped, [info["task"]], 1, SamplingParams(4))
    assert not cut[0].ended and cut[0].text == "1,2,"


def test_forced_answers_insert_the_suffix_as_context(tokenizer, prompts):
    env = make("rewardgym/arithmetic-v0", prompt_style="plain").unwrapped
    task = Task(prompt="2+3=", answer="5", id="t")
    closed = _trace(tokenizer, task, "2,5</think>", ended=True)
    open_ = _trace(tokenizer, task, "2,5,7", ended=False)
    engine = EchoEngine(tokenizer, "5")
    cuts = [[2, len(closed)], [len(open_)]]
    answers = force_answers(engine, prompts, env, [closed, open_], cuts, 2, SamplingParams(3))
    assert [(a.trace, a.point) for a in answers] == [(0, 0), (0, 0), (0, 1), (0, 1), (1, 0), (1, 0)]
    truncated = encode_text(tokenizer, env.answer_forcing.suffix(True))
    cue = encode_text(tokenizer, env.answer_forcing.suffix(False))
    prompt = list(closed.prompt_ids)
    assert list(answers[0].context) == prompt + list(closed.ids[:2]) + truncated
    assert list(answers[2].context) == prompt + list(closed.ids) + cue  # closed itself: cue only
    assert list(answers[4].context) == prompt + list(open_.ids) + truncated  # hit the cap
    assert answers[0].suffix_len == len(truncated) and answers[2].suffix_len == len(cue)
    assert all(a.verdict.correct and a.text == "5" for a in answers)
    wrong = force_answers(
        EchoEngine(tokenizer, "4"), prompts, env, [closed], [[2]], 1, SamplingParams(3)
    )
    assert not wrong[0].verdict.correct


def test_format_rule_two_end_markers_score_zero(tokenizer, prompts):
    env = make("rewardgym/arithmetic-v0", prompt_style="plain").unwrapped
    task = Task(prompt="2+3=", answer="5", id="t")
    doubled = _trace(tokenizer, task, "2</think>5</think>", ended=True)
    answers = force_answers(
        EchoEngine(tokenizer, "5"),
        prompts,
        env,
        [doubled],
        [[len(doubled)]],
        1,
        SamplingParams(3),
    )
    assert answers[0].verdict.reward == 0.0 and "format" in answers[0].verdict.reason


def test_episode_cuts_fall_on_paragraphs(tokenizer):
    task = Task(prompt="1+2+3+4+5=", answer="15", id="t")
    trace = _trace(tokenizer, task, "1,3\n\n6,10\n\n15</think>", ended=True)
    segmenter = EpisodeSegmenter(markers=tuple("0123456789"), min_gap=0)
    points = episode_cuts(tokenizer, trace, segmenter)
    assert points == [0, len("1,3\n\n"), len("1,3\n\n6,10\n\n"), len(trace)]
    no_cut = episode_cuts(tokenizer, trace, EpisodeSegmenter(markers=("Wait",)))
    assert no_cut == [0, len(trace)]
    empty = _trace(tokenizer, task, "", ended=False)
    assert episode_cuts(tokenizer, empty, segmenter) == [0]


# -- training ------------------------------------------------------------------------------------
ENVS = {
    "math": {"id": "rewardgym/math-v0", "params": {"use_pool": False}},
    "knights_knaves": {"id": "rewardgym/knights_knaves-v0", "params": {"n_people": 2}},
    "countdown": {"id": "rewardgym/countdown-v0", "params": {"min_numbers": 4, "max_numbers": 4}},
}
STRATEGIES = {
    "brpo": {"anytime": {"budgets": [4, 8], "summaries": 2, "summary_max_tokens": 4}},
    "mrt": {"episodic": {"markers": ["a", "e"], "min_gap": 0, "probes": 2, "probe_max_tokens": 4}},
}
MAX_NEW_TOKENS = {"brpo": 64, "mrt": 8}


def _config(tmp_path, env, algorithm, **extra):
    return load_config(
        {
            "env": env,
            "model": {"name_or_path": "tiny", "params": TINY},
            "algorithm": {"name": algorithm},
            "rollout": {
                "group_size": 2,
                "prompts_per_step": 2,
                "max_new_tokens": MAX_NEW_TOKENS[algorithm],
            },
            "strategies": STRATEGIES[algorithm],
            "trainer": {"steps": 2, "lr": 1e-3},
            "eval": {"episodes": 2, "max_new_tokens": 4, "budgets": [4, 8]},
            "output_dir": str(tmp_path / "run"),
            "seed": 3,
            **extra,
        }
    )


@pytest.mark.parametrize("env", sorted(ENVS))
@pytest.mark.parametrize("algorithm", ["brpo", "mrt"])
def test_brpo_and_mrt_train_on_reasoning_envs(tmp_path, env, algorithm):
    Trainer(_config(tmp_path, ENVS[env], algorithm), progress=False, log=lambda _: None).run()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["step"] for r in records] == [1, 2]
    for record in records:
        assert all(math.isfinite(v) for v in record.values() if isinstance(v, float)), record
        if algorithm == "brpo":
            assert {"accuracy/b4", "accuracy/b8", "anytime_accuracy"} <= set(record)
        else:
            assert {"episodes", "probe_J0", "probe_Jend"} <= set(record)


def test_strategy_must_match_the_algorithm(tmp_path):
    config = _config(tmp_path, ENVS["countdown"], "brpo")
    with pytest.raises(
        ConfigError,
        match="Algorithm 'brpo' \\(stage 'train'\\) trains with the 'anytime' strategy, but "
        "strategy is 'standard'. Set strategy=anytime, or remove it",
    ):
        load_config(config, ["strategy=standard"])
    with pytest.raises(ConfigError, match="trains with the 'episodic' strategy, but strategy is"):
        load_config(config, ["algorithm.name=mrt", "~algorithm.params", "strategy=anytime"])
    with pytest.raises(ConfigError, match="trains with the 'standard' strategy, but strategy is"):
        load_config(config, ["algorithm.name=grpo", "~algorithm.params", "strategy=episodic"])
    # the old key still works for one release, with its old check
    with pytest.warns(DeprecationWarning, match="rollout.strategy"):
        with pytest.raises(ConfigError, match="trains on 'anytime' rollouts, but rollout.strategy"):
            load_config(config, ["rollout.strategy=standard"])


@pytest.mark.parametrize("algorithm", ["brpo", "mrt"])
def test_a_resumed_anytime_run_writes_the_same_metrics(tmp_path, algorithm, monkeypatch):
    env = {"id": "rewardgym/digit_sum-v0", "params": {"min_digits": 3, "max_digits": 4}}
    extra = ["trainer.steps=4", "trainer.save_every=2"]
    full = load_config(_config(tmp_path / "a", env, algorithm), extra)
    Trainer(full, progress=False, log=lambda _: None).run()
    partial = load_config(_config(tmp_path / "b", env, algorithm), extra)
    real = Trainer._step

    def dying(self, plan, ctx, step):
        if step == 3:
            raise KeyboardInterrupt
        return real(self, plan, ctx, step)

    monkeypatch.setattr(Trainer, "_step", dying)
    with pytest.raises(KeyboardInterrupt):
        Trainer(partial, progress=False, log=lambda _: None).run()
    monkeypatch.setattr(Trainer, "_step", real)
    _save_as_the_earlier_release_did(tmp_path / "b" / "run" / "config.yaml", algorithm)
    Trainer(partial, resume=True, progress=False, log=lambda _: None).run()  # an older run

    def records(run):
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [
            {k: v for k, v in json.loads(x).items() if not k.startswith("time/")} for x in lines
        ]

    assert records(tmp_path / "b" / "run") == records(tmp_path / "a" / "run")


def _save_as_the_earlier_release_did(path, algorithm):
    """Rewrite a run's config.yaml with the keys of the earlier release: the strategy's section
    under ``rollout`` and ``rollout.strategy``, no ``strategy`` / ``strategies``."""
    import yaml

    data = yaml.safe_load(path.read_text())
    name = {"brpo": "anytime", "mrt": "episodic"}[algorithm]
    data["rollout"][name] = data["strategies"][name]
    data["rollout"]["strategy"] = name
    del data["strategies"], data["strategy"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_shared_prefix_log_probs_and_gradients_match_separate_rows(tokenizer):
    from rewardgym.runner.batch import sequence_logprobs
    from rewardgym.runner.models import TinyModelConfig, build_tiny_model
    from rewardgym.runner.prefix import prefix_logprobs
    from rewardgym.strategies.batch import pack
    from rewardgym.strategies.thinking import ForcedAnswer, continuations

    model, _ = build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2))
    ids = lambda text: tuple(encode_text(tokenizer, text))  # noqa: E731
    prompts = [(1, *ids("2+3=")), (1, *ids("10+20+30="))]
    traces = [ids("2,5</think>"), ids("10,30,60")]
    verdict = Verdict(1.0, correct=True)
    cases = [(0, 0, "...</think>A:", "5"), (0, 2, "</think>", "55"), (1, 8, "!!", "60"),
             (1, 3, "..", "1")]  # fmt: skip
    answers = []
    for trace, cut, suffix, answer in cases:
        context = (*prompts[trace], *traces[trace][:cut], *ids(suffix))
        lp = (-1.0,) * len(ids(answer))
        answers.append(
            ForcedAnswer(trace, 0, cut, context, len(ids(suffix)), ids(answer), lp, answer, verdict)
        )
    thinking = pack(prompts, traces, [[1.0] * len(t) for t in traces], None, 0)
    rows = pack([a.context for a in answers], [a.ids for a in answers],
                [[1.0] * len(a.ids) for a in answers], None, 0)  # fmt: skip
    conts = continuations(answers, 0)

    def grads(loss):
        model.zero_grad()
        loss.backward()
        return [p.grad.clone() for p in model.parameters()]

    think_lp, cont_lp = prefix_logprobs(model, thinking, conts, 0.7, 1.3)
    want_think = sequence_logprobs(model, thinking, 0.7)
    want_rows = sequence_logprobs(model, rows, 1.3)
    assert torch.allclose(think_lp * thinking.mask, want_think * thinking.mask, atol=1e-5)
    for k, a in enumerate(answers):
        got = cont_lp[k, a.suffix_len : a.suffix_len + len(a.ids)]
        assert torch.allclose(got, want_rows[k, : len(a.ids)], atol=1e-5)
    shared = grads((think_lp * thinking.mask).sum() + (cont_lp * conts.mask).sum())
    think_lp2 = sequence_logprobs(model, thinking, 0.7)
    separate = grads(
        (think_lp2 * thinking.mask).sum() + (sequence_logprobs(model, rows, 1.3) * rows.mask).sum()
    )
    for a, b in zip(shared, separate, strict=True):
        assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


def test_brpo_step_is_the_same_with_and_without_shared_prefix(tmp_path):
    env = {"id": "rewardgym/digit_sum-v0", "params": {"min_digits": 3, "max_digits": 4}}
    first = []
    for shared in (True, False):
        config = load_config(
            _config(tmp_path / str(shared), env, "brpo"),
            ["trainer.steps=1", f"strategies.anytime.shared_prefix={str(shared).lower()}"],
        )
        Trainer(config, progress=False, log=lambda _: None).run()
        line = (tmp_path / str(shared) / "run" / "metrics.jsonl").read_text().splitlines()[0]
        first.append(json.loads(line))
    assert first[0]["loss"] == pytest.approx(first[1]["loss"], abs=1e-6)
    assert first[0]["grad_norm"] == pytest.approx(first[1]["grad_norm"], rel=1e-4)


def test_mrt_with_the_termination_baseline_trains(tmp_path):
    env = {"id": "rewardgym/digit_sum-v0", "params": {"min_digits": 3, "max_digits": 4}}
    config = load_config(_config(tmp_path, env, "mrt"), ["algorithm.params.baseline=termination"])
    assert config.algorithm.params["baseline"] == "termination"
    Trainer(config, progress=False, log=lambda _: None).run()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    for record in map(json.loads, lines):
        assert "probe_J0" in record and math.isfinite(record["loss"])
