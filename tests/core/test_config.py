"""The run config: sources (defaults, presets, files, mappings), overrides, validation of
sections and components, and the YAML round trip."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest

from rewardgym import hookimpl
from rewardgym.core.config import (
    RolloutSection,
    RunConfig,
    TrainerSection,
    load_config,
    plan,
    preset_names,
    to_dict,
    to_yaml,
)
from rewardgym.core.errors import ConfigError
from rewardgym.plugins.manager import get_plugin_manager

ENV_ID = "rewardgym/arithmetic-v0"
ARITHMETIC_DEFAULTS = {
    "difficulty": 1,
    "max_turns": 1,
    "feedback": "generic",
    "prompt_style": "instruct",
    "operands": None,
    "max_value": None,
    "ops": None,
}
REPO = Path(__file__).resolve().parents[2]


def _raises(message: str):
    return pytest.raises(ConfigError, match=re.escape(message))


# -- sources -----------------------------------------------------------------------------------
def test_defaults_resolve_the_env_params():
    config = load_config()
    assert isinstance(config, RunConfig)
    assert config.env.id == ENV_ID and config.env.params == ARITHMETIC_DEFAULTS
    assert config.trainer == TrainerSection() and config.rollout == RolloutSection()
    assert config.output_dir == "runs/default" and config.seed == 0
    assert load_config(validate_components=False) == RunConfig()


def test_the_arithmetic_preset_by_name():
    assert "arithmetic" in preset_names()
    config = load_config("arithmetic")
    assert config.env.params == {**ARITHMETIC_DEFAULTS, "difficulty": 2}


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_has_a_description_and_loads(name):
    text = resources.files("rewardgym.configs").joinpath(f"{name}.yaml").read_text("utf-8")
    assert text.startswith("# ") and text.splitlines()[0][2:].strip()
    assert isinstance(load_config(name), RunConfig)


def test_a_preset_or_file_can_start_from_a_base(tmp_path, monkeypatch):
    linear = load_config("brpo_linear").strategies["anytime"]
    assert linear["prior"] == "linear"
    assert linear["budgets"] == load_config("brpo").strategies["anytime"]["budgets"]
    assert [s.name for s in load_config("brpo_linear").stages] == ["warmup", "rl"]
    grpo_arm = load_config("anytime_grpo")
    anytime = grpo_arm.strategies["anytime"]
    assert anytime["budgets"] == [48] and anytime["summaries"] == 1
    assert grpo_arm.algorithm.params["decouple"] is False
    mrt = load_config("episodic_grpo")  # two levels: episodic_grpo -> mrt -> brpo
    assert mrt.algorithm.name == "mrt" and mrt.algorithm.params["alpha"] == 0.0
    rl = plan(mrt)[1]
    assert rl.strategy.name == "episodic" and rl.strategy.params["markers"][0] == "0"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "parent.yaml").write_text("trainer:\n  steps: 7\n  lr: 0.5\nseed: 4\n")
    (tmp_path / "child.yaml").write_text("base: ./parent.yaml\ntrainer:\n  steps: 9\n")
    child = load_config("child.yaml")
    assert (child.trainer.steps, child.trainer.lr, child.seed) == (9, 0.5, 4)
    (tmp_path / "loop.yaml").write_text("base: ./loop.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config("loop.yaml")
    (tmp_path / "bad.yaml").write_text("base: 3\n")
    with pytest.raises(ConfigError, match="'base' .* must be a preset name or a file path"):
        load_config("bad.yaml")


def test_strategy_sections_merge_key_by_key_in_stages():
    config = load_config("brpo", ["stages.1.strategies.anytime.prior=linear"])
    warmup, rl = plan(config)
    assert (warmup.strategy.name, warmup.strategy.params) == ("demonstrations", {})
    assert rl.strategy.name == "anytime"
    assert rl.strategy.params["prior"] == "linear" and rl.strategy.params["summaries"] == 2
    assert rl.strategy.params["budgets"] == [12, 24, 36, 48]
    assert config.strategies["anytime"]["prior"] == "uniform"  # the top level keeps its own


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("strategies.anytime.budgets=[8,4]", "strategy 'anytime': budgets / prior: .*strictly"),
        ("strategies.anytime.prior=linaer", "strategy 'anytime': .*Did you mean 'linear'"),
        ("strategies.anytime.summaries=0", "summaries must be >= 1"),
        ("strategies.anytime.sumaries=1", "Unknown param 'sumaries' for strategy 'anytime'"),
        ("strategies.episodic.min_gap=-1", "strategy 'episodic': .*min_gap must be an int >= 0"),
        ("strategies.episodic.markers=[' Wait']", "markers must be non-empty strings"),
        ("strategies.episodic.probe_temperature=-1", "probe_temperature must be >= 0"),
        (
            "strategies.anytme.budgets=[4]",
            "strategies: No strategy named 'anytme' is registered. Did you mean 'anytime'?",
        ),
        ("strategies.anytime=3", "Wrong type for strategies.anytime: got 3 \\(int\\)"),
        ("strategy=anytim", "strategy: No strategy named 'anytim' is registered."),
        ("stages.1.strategies.anytime.priro=base", "Unknown param 'priro' for strategy 'anytime'"),
    ],
)
def test_strategy_sections_are_validated_at_load(override, words):
    with pytest.raises(ConfigError, match=words):
        load_config("brpo", [override])


def test_the_strategy_follows_the_algorithm_unless_named():
    config = load_config("quickstart")
    assert [(s.algorithm.name, s.strategy.name) for s in plan(config)] == [
        ("sft", "demonstrations"),
        ("grpo", "standard"),
    ]
    assert config.strategies["standard"]["group_reward"] == "none"  # defaults filled
    with _raises(
        "Algorithm 'grpo' (stage 'rl') trains with the 'standard' strategy, but "
        "stages[1].strategy is 'anytime'. Set stages[1].strategy=standard, or remove it"
    ):
        load_config("quickstart", ["stages.1.strategy=anytime"])


def test_the_old_rollout_keys_still_load_with_a_warning():
    new = load_config("brpo")
    with pytest.warns(DeprecationWarning, match="rollout.anytime are deprecated"):
        old = load_config(
            "brpo",
            ["~strategies", "rollout.strategy=anytime", "rollout.anytime.budgets=[12,24,36,48]",
             "rollout.anytime.summaries=2", "rollout.anytime.summary_max_tokens=5"],
        )  # fmt: skip
    assert old == new and plan(old) == plan(new)
    with pytest.warns(DeprecationWarning, match="stages\\[1\\].rollout.anytime"):
        staged = load_config("brpo", ["stages.1.rollout.anytime.prior=linear"])
    assert plan(staged)[1].strategy.params["prior"] == "linear"
    with (
        pytest.warns(DeprecationWarning),
        _raises(
            "Algorithm 'brpo' (stage 'rl') trains on 'anytime' rollouts, but rollout.strategy is "
            "'episodic'. Remove rollout.strategy (deprecated: the strategy follows the algorithm) "
            "or set it to anytime."
        ),
    ):
        load_config("brpo", ["rollout.strategy=episodic"])


def test_top_level_configs_is_the_shipped_presets_folder():
    assert (REPO / "configs").resolve() == Path(str(resources.files("rewardgym.configs"))).resolve()


def test_a_yaml_file_by_path_or_str(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("trainer:\n  steps: 7\n  lr: 3e-4\nseed: 4\n")
    for source in (path, str(path)):
        config = load_config(source)
        assert config.trainer.steps == 7 and config.trainer.lr == 3e-4 and config.seed == 4


def test_a_mapping_and_a_run_config():
    config = load_config({"rollout": {"group_size": 4}, "output_dir": "runs/x"})
    assert config.rollout.group_size == 4 and config.output_dir == "runs/x"
    again = load_config(config, ["seed=3"])
    assert again == dataclasses.replace(config, seed=3)


def test_an_empty_yaml_file_means_the_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing set yet\n")
    assert load_config(path) == load_config()


def test_an_empty_yaml_section_means_its_defaults(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("algorithm:\n#  name: grpo\nenv:\n  params:\n")
    config = load_config(path)
    assert config.algorithm.name is None and config.env.params == ARITHMETIC_DEFAULTS


# -- overrides ---------------------------------------------------------------------------------
def test_dotlist_overrides_apply_in_order():
    config = load_config(
        "arithmetic",
        ["trainer.steps=50", "env.params.difficulty=3", "trainer.steps=60", "trainer.lr=1"],
    )
    assert config.trainer.steps == 60 and config.env.params["difficulty"] == 3
    assert config.trainer.lr == 1.0 and type(config.trainer.lr) is float  # ints are floats


def test_a_tilde_override_deletes_a_key():
    config = load_config("arithmetic", ["~env.params", "env.params.max_turns=2"])
    assert config.env.params == {**ARITHMETIC_DEFAULTS, "max_turns": 2}
    with _raises("Cannot delete 'env.nope' (override '~env.nope'): no such key."):
        load_config(None, ["~env.nope"])


def test_interpolations_are_resolved():
    config = load_config(
        "arithmetic", ["output_dir=runs/d${env.params.difficulty}-${seed}", "seed=5"]
    )
    assert config.output_dir == "runs/d2-5"
    with _raises(
        "Could not resolve the config: Interpolation key 'nope' not found (at 'output_dir')"
    ):
        load_config(None, ["output_dir=${nope}"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["trainer"], "Override 'trainer' is not of the form key=value (e.g. trainer.steps=50)"),
        (["=3"], "Override '=3' is not of the form key=value"),
        ("trainer.steps=3", "overrides must be a list of 'key=value' strings, got the str"),
    ],
)
def test_malformed_overrides(overrides, message):
    with _raises(message):
        load_config(None, overrides)


# -- validation messages -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "trainer.stpes=3",
            "Unknown key 'stpes' in trainer. Did you mean 'steps'? Valid keys: eval_every, "
            "grad_accum, log_every, lr, lr_schedule, max_grad_norm, micro_batch_tokens, mixed_precision, packing, save_every, steps, stop_at_eval_accuracy, tensorboard, updates_per_batch, warmup_steps, weight_decay.",
        ),
        ("trainer.steps=abc", "Wrong type for trainer.steps: got 'abc' (str), expected int."),
        (
            "env.id=rewardgym/arithmatic-v0",
            "env.id: No environment named 'rewardgym/arithmatic-v0' is registered. "
            "Did you mean 'rewardgym/arithmetic-v0'?",
        ),
        (
            "env.params.difficulty_=2",
            "Unknown param 'difficulty_' for environment 'rewardgym/arithmetic-v0'. "
            "Did you mean 'difficulty'? Valid params: difficulty, feedback, max_turns, max_value, operands, ops, prompt_style.",
        ),
        (
            "env.params.difficulty=9",
            "Invalid params for environment 'rewardgym/arithmetic-v0': arithmetic difficulty "
            "must be one of [1, 2, 3, 4, 5], got 9",
        ),
        (
            "sed=1",
            "Unknown key 'sed' in the run config. Did you mean 'seed'? Valid keys: algorithm,",
        ),
        ("trainer=5", "Wrong type for trainer: got 5 (int), expected a mapping (TrainerSection)."),
        (
            "model.name_or_path=123",
            "Wrong type for model.name_or_path: got 123 (int), expected str.",
        ),
        ("rollout.top_p=1.5", "rollout.top_p must be in (0, 1], got 1.5."),
        ("rollout.top_p=0", "rollout.top_p must be in (0, 1], got 0.0."),
        ("rollout.group_size=0", "rollout.group_size must be >= 1, got 0."),
        ("rollout.temperature=-1", "rollout.temperature must be >= 0 (0: greedy), got -1.0."),
        (
            "model.dtype=bf16",
            "Bad value for model.dtype: got 'bf16' (str), expected one of 'float32', "
            "'bfloat16', 'float16', 'auto'. Did you mean 'bfloat16'?",
        ),
        (
            "ray.routing=round-robin",
            "Bad value for ray.routing: got 'round-robin' (str), expected one of 'round_robin', "
            "'least_loaded'. Did you mean 'round_robin'?",
        ),
        ("trainer.lr=0", "trainer.lr must be > 0, got 0.0."),
        ("trainer.warmup_steps=-1", "trainer.warmup_steps must be >= 0, got -1."),
        ("trainer.lr_schedule=cosin", "Did you mean 'cosine'?"),
        ("seed=-1", "seed must be >= 0, got -1."),
        ("output_dir=' '", "output_dir must be a non-empty path, got ' '."),
    ],
)
def test_bad_configs_fail_with_a_clear_message(override, message):
    with _raises(message):
        load_config("arithmetic", [override])


def test_every_unknown_key_is_reported_at_once():
    with _raises(
        "Unknown key 'stpes' in trainer. Did you mean 'steps'? "
        "Unknown key 'lrr' in trainer. Did you mean 'lr'? Valid keys:"
    ):
        load_config(None, ["trainer.stpes=1", "trainer.lrr=1"])


def test_unknown_preset_and_missing_file(tmp_path, monkeypatch):
    with _raises("No config preset named 'arithmatic' is registered. Did you mean 'arithmetic'?"):
        load_config("arithmatic")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "myrun").write_text("seed: 1\n")
    with _raises(
        "No config preset named 'myrun' is registered. Run 'rewardgym list' to see what "
        "is available. (To load the file 'myrun', give it as './myrun'.)"
    ):
        load_config("myrun")
    assert load_config("./myrun").seed == 1
    missing = tmp_path / "nope.yaml"
    with _raises(f"The config file '{missing}' does not exist. (Presets: "):
        load_config(missing)
    with _raises(f"The config file '{tmp_path}' is a directory, not a file."):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "trainer: [1, 2\n",
            "Could not read the config file '{path}': while parsing a flow sequence: ",
        ),
        ("- 1\n- 2\n", "The config file '{path}' must be a mapping at the top level, got a list."),
        ("42\n", "The config file '{path}' must be a mapping at the top level, got 42 (int)."),
        ("a: 1\na: 2\n", "Could not read the config file '{path}': "),
    ],
)
def test_unreadable_files(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with _raises(message.format(path=path)):
        load_config(path)


def test_validate_components_off_skips_registry_lookups():
    config = load_config(
        None, ["env.id=acme/unknown-v0", "env.params.x=1"], validate_components=False
    )
    assert config.env.id == "acme/unknown-v0" and config.env.params == {"x": 1}


def test_sections_validate_when_built_directly():
    with _raises("rollout.top_p must be in (0, 1], got 0."):
        RolloutSection(top_p=0)
    with _raises("Wrong type for trainer.steps: got '5' (str), expected int."):
        TrainerSection(steps="5")  # type: ignore[arg-type]
    assert RunConfig(trainer={"steps": 5}).trainer == TrainerSection(steps=5)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunConfig().seed = 1  # type: ignore[misc]


# -- algorithm and engine components -----------------------------------------------------------
@dataclass
class ToyAlgoConfig:
    beta: float = 0.1
    clip: float = 0.2


class ToyPlugin:
    @hookimpl
    def rewardgym_register_algorithms(self, register):
        register("toy_algo", "builtins:object", config=ToyAlgoConfig, description="toy")

    @hookimpl
    def rewardgym_register_engines(self, register):
        register("toy_engine", "builtins:object", description="no config")


@pytest.fixture
def toy_plugin():
    manager = get_plugin_manager()
    manager.register(ToyPlugin(), name="toy_config_plugin")
    yield
    manager.unregister("toy_config_plugin")


def test_algorithm_params_are_validated_and_resolved(toy_plugin):
    config = load_config(None, ["algorithm.name=toy_algo", "algorithm.params.beta=0.5"])
    assert config.algorithm.params == {"beta": 0.5, "clip": 0.2}
    with _raises("Unknown param 'bta' for algorithm 'toy_algo'. Did you mean 'beta'?"):
        load_config(None, ["algorithm.name=toy_algo", "algorithm.params.bta=0.5"])
    with _raises(
        "algorithm.name: No algorithm named 'toy_alg' is registered. Did you mean 'toy_algo'?"
    ):
        load_config(None, ["algorithm.name=toy_alg"])


def test_engine_without_a_config_class_takes_no_params(toy_plugin):
    assert load_config(None, ["engine.name=toy_engine"]).engine.params == {}
    with _raises("engine 'toy_engine' takes no params, got ['x']"):
        load_config(None, ["engine.name=toy_engine", "engine.params.x=1"])


def test_params_without_a_name_are_rejected(toy_plugin):
    with _raises(
        "algorithm.params is set but algorithm.name is not. Set algorithm.name "
        "(one of: brpo, dpo, dr_grpo, grpo, mrt, reinforce_pp, rft, rloo, sft, toy_algo) or remove "
        "algorithm.params."
    ):
        load_config(None, ["algorithm.params.beta=0.5"])


# -- output ------------------------------------------------------------------------------------
def test_yaml_round_trip(tmp_path):
    config = load_config("arithmetic", ["trainer.steps=5", "model.dtype=bfloat16"])
    text = to_yaml(config)
    assert text.startswith("env:\n  id: rewardgym/arithmetic-v0\n")
    path = tmp_path / "resolved.yaml"
    path.write_text(text)
    assert load_config(path) == config


def test_to_dict_is_plain_data():
    data = to_dict(load_config())
    assert data["trainer"]["steps"] == 100 and data["env"]["params"] == ARITHMETIC_DEFAULTS
    assert list(data) == [
        "env",
        "strategy",
        "strategies",
        "algorithm",
        "model",
        "engine",
        "rollout",
        "trainer",
        "eval",
        "ray",
        "stages",
        "output_dir",
        "seed",
    ]


def test_loading_a_config_imports_nothing_heavy():
    """In a fresh interpreter: load and print a config; torch & co. are never even looked up."""
    script = textwrap.dedent(
        """
        import sys
        HEAVY = {"torch", "transformers", "vllm", "ray", "accelerate"}
        attempted = []

        class Recorder:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in HEAVY:
                    attempted.append(name)
                return None

        sys.meta_path.insert(0, Recorder())
        from rewardgym.core.config import load_config, to_yaml
        to_yaml(load_config("arithmetic", ["trainer.steps=5"]))
        try:
            load_config("arithmetic", ["trainer.stpes=3"])
        except Exception as exc:
            assert "Did you mean 'steps'" in str(exc), exc
        assert "torch" not in sys.modules, "torch was imported"
        assert not attempted, f"heavy imports attempted: {attempted}"
        print("clean")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"
