"""Scale-out on a local Ray cluster: engine actors give exactly the samples of one engine
(also for an engine plugin the pool knows only through the Engine capabilities), a run with 2
engine actors trains like a run with one in-process engine, and the verifier pool runs on Ray
workers with its limits and is handed to the run's envs."""

from __future__ import annotations

import dataclasses
import json
import re
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
ray = pytest.importorskip("ray")

import rewardgym  # noqa: E402
from rewardgym.core.config import RaySection, load_config  # noqa: E402
from rewardgym.core.engine import SamplingParams  # noqa: E402
from rewardgym.core.errors import ConfigError  # noqa: E402
from rewardgym.core.types import Task, Verdict  # noqa: E402
from rewardgym.core.verifier import Verifier  # noqa: E402
from rewardgym.core.verify import shared_pool  # noqa: E402
from rewardgym.plugins.hookspecs import hookimpl  # noqa: E402
from rewardgym.runner.engines.hf import HFEngine, HFEngineConfig  # noqa: E402
from rewardgym.runner.models import TinyModelConfig, build_tiny_model  # noqa: E402
from rewardgym.runner.ray_pool import (  # noqa: E402
    EngineActor,
    RayEnginePool,
    RayVerifierPool,
    chunk_rows,
    start_ray,
)
from tests.runner.engines_for_tests import HFCopyEngine  # noqa: E402

TINY = {"hidden_size": 32, "num_layers": 2, "num_heads": 2}
TASK = {"difficulty": 1, "prompt_style": "plain", "ops": "+", "max_value": 3}


@pytest.fixture(scope="module")
def local_ray():
    """One local cluster for the module (pools then leave it running)."""
    import os

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


def _spec(config):
    return {"name_or_path": "tiny", "params": dataclasses.asdict(config), "dtype": "float32"}


def test_chunks_keep_prompt_groups_whole():
    prompts = [[1, 2]] * 4 + [[1, 3]] * 4 + [[1, 4]] * 4 + [[5]] * 4
    assert chunk_rows(prompts, 2) == [(0, 8), (8, 16)]
    assert chunk_rows(prompts, 4) == [(0, 4), (4, 8), (8, 12), (12, 16)]
    assert chunk_rows(prompts, 16) == [(0, 4), (4, 8), (8, 12), (12, 16)]
    assert chunk_rows([[1]] * 5, 3) == [(0, 5)]
    assert chunk_rows([[1], [2], [3]], 1) == [(0, 3)]


@pytest.mark.parametrize("routing", ["round_robin", "least_loaded"])
def test_engine_actors_sample_what_one_engine_samples(local_ray, routing):
    config = TinyModelConfig(**TINY, seed=3)
    model, tokenizer = build_tiny_model(config)
    model.eval()
    with torch.no_grad():  # weights the actors can only get from the trainer
        model.lm_head.weight.mul_(1.5)
    prompts = [
        [1, *tokenizer(t, add_special_tokens=False)["input_ids"]]
        for t in ("1+2=", "33+4=", "5+60=")
    ]
    prompts = [p for p in prompts for _ in range(8)]
    params = SamplingParams(max_new_tokens=12, seed=4)
    pool = RayEnginePool(model, "hf", {}, _spec(config), RaySection(engines=2, routing=routing))
    try:
        assert len(pool.actors) == 2
        expected = HFEngine(model, tokenizer).generate(prompts, params)
        assert [g.token_ids for g in pool.generate(prompts, params)] == [
            g.token_ids for g in expected
        ]
        with torch.no_grad():
            model.lm_head.weight.mul_(2.0)
        pool.update_weights(model)  # the actors follow the trainer's weights
        expected = HFEngine(model, tokenizer).generate(prompts, params)
        assert [g.token_ids for g in pool.generate(prompts, params)] == [
            g.token_ids for g in expected
        ]
    finally:
        pool.close()
    assert ray.is_initialized()  # the pool did not start Ray, so it leaves it running


class _HFCopyPlugin:
    @hookimpl
    def rewardgym_register_engines(self, register):
        register(
            "hf_copy",
            "tests.runner.engines_for_tests:HFCopyEngine",
            config="rewardgym.runner.engines.hf:HFEngineConfig",
            description="The hf engine under another name, owning its weights.",
        )
        register(
            "bad_sync",
            "tests.runner.engines_for_tests:BadSyncEngine",
            config="rewardgym.runner.engines.hf:HFEngineConfig",
            description="An engine with an unknown weight sync.",
        )


@pytest.fixture
def hf_copy(rewardgym_plugin):
    """The engines 'hf_copy' and 'bad_sync', registered for the test only."""
    rewardgym_plugin(_HFCopyPlugin(), name="hf_copy_test")


def test_an_engine_plugin_runs_on_actors_through_its_capabilities(local_ray, hf_copy):
    """The pool knows no engine by name: 'hf_copy' (owns its weights, so the actors drop their
    models and take the trainer's weights through load_weights) samples what hf samples."""
    config = TinyModelConfig(**TINY, seed=3)
    model, tokenizer = build_tiny_model(config)
    model.eval()
    prompts = [[1, *tokenizer(t, add_special_tokens=False)["input_ids"]] for t in ("1+2=", "3+4=")]
    prompts = [p for p in prompts for _ in range(4)]
    params = SamplingParams(max_new_tokens=8, seed=2)
    pool = RayEnginePool(model, "hf_copy", {"batch_size": 4}, _spec(config), RaySection(engines=2))
    try:
        assert pool.engine_class is HFCopyEngine and pool.weight_sync == "state_dict"
        assert pool.engine_config == HFEngineConfig(batch_size=4)
        for scale in (1.0, 2.0):
            with torch.no_grad():
                model.lm_head.weight.mul_(scale)
            pool.update_weights(model)
            expected = HFEngine(model, tokenizer).generate(prompts, params)
            assert [g.token_ids for g in pool.generate(prompts, params)] == [
                g.token_ids for g in expected
            ]
    finally:
        pool.close()


def test_an_unknown_weight_sync_is_refused_before_ray_starts(hf_copy):
    config = TinyModelConfig(**TINY)
    model, _ = build_tiny_model(config)
    ray_was_up = ray.is_initialized()
    with pytest.raises(
        TypeError,
        match=re.escape(
            "The 'bad_sync' engine's remote_weight_sync returned 'carrier pigeon'; it must "
            "return one of ('state_dict', 'collective'). Fix the engine class."
        ),
    ):
        RayEnginePool(model, "bad_sync", {}, _spec(config), RaySection(engines=1))
    assert ray.is_initialized() == ray_was_up


def test_an_actor_keeps_its_model_only_for_an_engine_that_samples_from_it():
    config = TinyModelConfig(**TINY, seed=3)
    spec = {**_spec(config), "gpus": 0}
    threads = torch.get_num_threads()
    trained, tokenizer = build_tiny_model(TinyModelConfig(**TINY, seed=4))
    prompts = [[1, *tokenizer("1+2=", add_special_tokens=False)["input_ids"]]]
    params = SamplingParams(max_new_tokens=8, temperature=0)
    expected = HFEngine(trained.eval(), tokenizer).generate(prompts, params)
    for engine_class, keeps in ((HFEngine, True), (HFCopyEngine, False)):
        actor = EngineActor(engine_class, HFEngineConfig(), spec, threads)
        assert (actor.model is not None) == keeps
        actor.set_weights({k: v.clone() for k, v in trained.state_dict().items()})
        assert actor.generate(prompts, params, 0) == expected


def test_a_collective_sync_needs_gpus_and_is_refused_before_ray_starts():
    config = TinyModelConfig(**TINY)
    model, _ = build_tiny_model(config)
    ray_was_up = ray.is_initialized()
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "engine.params.weight_sync=nccl broadcasts to vLLM actors on GPUs: set "
            "ray.engine_gpus >= 1 (or use weight_sync=reload)."
        ),
    ):
        RayEnginePool(model, "vllm", {"weight_sync": "nccl"}, _spec(config), RaySection(engines=1))
    assert ray.is_initialized() == ray_was_up


def _run_config(tmp_path, name, **extra):
    return load_config(
        {
            "env": {"id": "rewardgym/arithmetic-v0", "params": TASK},
            "model": {"name_or_path": "tiny", "params": TINY},
            "rollout": {"group_size": 4, "prompts_per_step": 4, "max_new_tokens": 4},
            "eval": {"episodes": 8},
            "stages": [
                {
                    "name": "warmup",
                    "algorithm": {"name": "sft"},
                    "trainer": {"steps": 20, "lr": 3e-3},
                },
                {"name": "rl", "algorithm": {"name": "grpo"}, "trainer": {"steps": 3, "lr": 3e-3}},
            ],
            "output_dir": str(tmp_path / name),
            "seed": 1,
            **extra,
        }
    )


def test_training_with_two_engine_actors_matches_one_engine(local_ray, tmp_path):
    """Same seeds, same samples: rewards, accuracies and lengths are equal step by step. The
    losses and the final weights agree to float rounding only: an actor pads its chunk to
    another length than one engine pads the whole batch, so the sampler's log-probs (the
    ratio's denominator) differ by ~1e-7, and Adam's normalised steps carry that into the
    weights (max difference seen: 1.0e-5 after 23 steps at lr 3e-3)."""
    from rewardgym.runner.trainer import Trainer

    runs = {}
    for name, extra in (("local", {}), ("ray", {"ray": {"engines": 2}})):
        config = _run_config(tmp_path, name, **extra)
        Trainer(config, progress=False, log=lambda m: None).run()
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        runs[name] = [json.loads(line) for line in lines]
    local, remote = runs["local"], runs["ray"]
    assert len(local) == len(remote) > 0
    rl = [
        (a, b)
        for a, b in zip(local, remote, strict=True)
        if a.get("stage") == "rl" and "reward" in a
    ]
    assert len(rl) == 3
    for a, b in rl:
        assert (a["reward"], a["accuracy"], a["completion_tokens"]) == (
            b["reward"],
            b["accuracy"],
            b["completion_tokens"],
        )
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
    from safetensors.torch import load_file

    wa = load_file(str(tmp_path / "local" / "model" / "model.safetensors"))
    wb = load_file(str(tmp_path / "ray" / "model" / "model.safetensors"))
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], atol=1e-4, rtol=0)


class _Parity(Verifier):
    def verify(self, response: str, task: Task) -> Verdict:
        if response == "sleep":
            time.sleep(30)
        return Verdict(reward=float(len(response) % 2 == int(task.answer)))


def test_the_verifier_pool_runs_on_ray_workers_with_its_limits(local_ray):
    tasks = [Task(prompt="p", answer="1", id=str(i)) for i in range(6)]
    responses = ["a", "ab", "abc", "abcd", "sleep", "x"]
    with RayVerifierPool(_Parity(), workers=2, timeout=2.0) as pool:
        verdicts = pool.verify_batch(responses, tasks)
        assert [v.reward for v in verdicts] == [1.0, 0.0, 1.0, 0.0, None, 1.0]
        assert "timed out" in verdicts[4].reason
        assert pool.verify("abc", tasks[0]).reward == 1.0
        stats = pool.stats
        assert stats.calls == 7 and stats.timeouts == 1
    assert pool.closed


def test_start_ray_hands_the_run_its_verifier_pool_and_changes_nothing_global(local_ray):
    runtime = start_ray(RaySection(verifier_workers=1))
    try:
        pool = runtime.verifier_pool
        assert isinstance(pool, RayVerifierPool) and not runtime.started_ray
        assert pool.verify("ab", Task(prompt="p", answer="0", id="t"), _Parity()).reward == 1.0
        assert not isinstance(shared_pool(workers=3, timeout=1.0), RayVerifierPool)
    finally:
        runtime.close()
    runtime.close()  # a second close is a no-op
    assert pool.closed and runtime.closed
    assert start_ray(RaySection(engines=1)).verifier_pool is None
    assert ray.is_initialized()  # the fixture started Ray, so the runtime leaves it running


def test_the_runs_envs_score_through_its_ray_verifier_pool(local_ray, tmp_path):
    from rewardgym.runner.runtime import build_runtime, close_runtime
    from rewardgym.runner.setup import check_run

    config = _run_config(
        tmp_path,
        "verify",
        env={"id": "rewardgym/math-v0", "params": {"verify_timeout": 4.0}},
        ray={"verifier_workers": 1},
    )
    default = shared_pool(workers=2, timeout=4.0)
    before = default.stats.calls
    _, _, engine, collector, _ = build_runtime(check_run(config, training=False))
    try:
        pool = collector.ray_runtime.verifier_pool
        assert isinstance(pool, RayVerifierPool)
        env = collector.make_env()  # how the collector makes every env of the run
        assert env.verifier_pool(workers=2, timeout=4.0) is pool
        _, info = env.reset(seed=3)
        _, reward, *_ = env.step(f"\\boxed{{{info['task'].answer}}}")
        assert reward == 1.0 and pool.stats.calls == 1
        env.close()
        standalone = rewardgym.make("rewardgym/math-v0", verify_timeout=4.0)
        assert standalone.verifier_pool(workers=2, timeout=4.0) is default
        assert default.stats.calls == before
    finally:
        close_runtime(collector, engine)
    assert pool.closed and collector.ray_runtime.closed
    assert ray.is_initialized()


def test_ray_config_is_checked_at_load():
    with pytest.raises(
        ConfigError, match="Bad value for ray.routing: got .random. .str., expected one of"
    ):
        load_config("quickstart", ["ray.routing=random"])
    with pytest.raises(ConfigError, match="ray.engines"):
        load_config("quickstart", ["ray.engines=-1"])
    with pytest.raises(ConfigError, match="Unknown key 'engine' in ray"):
        load_config("quickstart", ["ray.engine=2"])


@pytest.mark.parametrize(
    ("overrides", "package", "message"),
    [
        (["engine.name=vllm"], "vllm", "scripts/install_vllm_cpu.sh"),
        (["ray.engines=2"], "ray", "pip install 'rewardgym[ray]'"),
        (["ray.verifier_workers=1"], "ray", "pip install 'rewardgym[ray]'"),
    ],
)
def test_a_missing_vllm_or_ray_fails_before_the_model_loads(
    monkeypatch, overrides, package, message
):
    import importlib.util

    from rewardgym.core.errors import MissingExtraError
    from rewardgym.runner.setup import check_run

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a)
    )
    with pytest.raises(MissingExtraError, match=re.escape(message)):
        check_run(load_config("quickstart", overrides))
