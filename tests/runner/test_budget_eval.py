"""Budget evaluation (``eval.budgets``): accuracy at each thinking budget, anytime accuracy,
normalised regret; and the budget-accuracy curves of ``rewardgym plot``."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rewardgym.cli import main  # noqa: E402
from rewardgym.core.config import load_config  # noqa: E402
from rewardgym.core.errors import ConfigError  # noqa: E402
from rewardgym.plotting import load_budget_report, mean_curves, plot_budget_curves  # noqa: E402
from rewardgym.runner.evaluate import evaluate_config, normalised_regret  # noqa: E402

TINY = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 256}


def _config(tmp_path, *overrides):
    base = {
        "env": {"id": "rewardgym/digit_sum-v0", "params": {"min_digits": 3, "max_digits": 4}},
        "model": {"name_or_path": "tiny", "params": TINY},
        "rollout": {"max_new_tokens": 4},
        "eval": {"episodes": 6, "budgets": [4, 8, 12], "budget_prior": "linear"},
        "output_dir": str(tmp_path / "run"),
    }
    return load_config(base, list(overrides))


def test_normalised_regret_is_one_minus_the_mean_of_the_curve():
    assert normalised_regret([0, 10], [0.0, 1.0]) == pytest.approx(0.5)
    assert normalised_regret([0, 4, 8], [1.0, 1.0, 1.0]) == pytest.approx(0.0)
    assert normalised_regret([0, 2, 10], [0.0, 1.0, 1.0]) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="budget 0"):
        normalised_regret([2, 4], [0.5, 0.5])


def test_budget_evaluation_reports_every_point(tmp_path):
    config = _config(tmp_path)
    result = evaluate_config(config)
    report = result["budgets"]
    assert report["budgets"] == [0, 4, 8, 12]
    assert len(report["accuracy"]) == 4 and all(0 <= a <= 1 for a in report["accuracy"])
    schedule = config.eval.budget_schedule
    assert report["anytime_accuracy"] == pytest.approx(
        schedule.anytime_score(report["accuracy"][1:])
    )
    assert report["final_accuracy"] == report["accuracy"][-1]
    assert report["normalised_regret"] == pytest.approx(
        normalised_regret(report["budgets"], report["accuracy"])
    )
    assert 0 < report["think_tokens"] <= 12 and report["episodes"] == 6
    assert evaluate_config(config)["budgets"] == report  # seeded: the same report again


def test_no_budgets_no_budget_section(tmp_path):
    assert "budgets" not in evaluate_config(_config(tmp_path, "eval.budgets=[]"))


def test_eval_budgets_are_validated_at_load(tmp_path):
    with pytest.raises(ConfigError, match="eval.budgets.*strictly increasing"):
        _config(tmp_path, "eval.budgets=[8,4]")
    with pytest.raises(ConfigError, match="one probability per budget"):
        _config(tmp_path, "eval.budget_prior=[0.5,0.5]")


def _report(accuracy, budgets=(0, 4, 8)):
    return {
        "budgets": list(budgets),
        "accuracy": list(accuracy),
        "anytime_accuracy": sum(accuracy[1:]) / (len(accuracy) - 1),
        "final_accuracy": accuracy[-1],
        "normalised_regret": normalised_regret(list(budgets), list(accuracy)),
        "think_tokens": 5.0,
    }


def test_mean_curves_average_point_by_point():
    mean = mean_curves([_report([0.0, 0.5, 1.0]), _report([0.2, 0.5, 0.6])])
    assert mean["accuracy"] == pytest.approx([0.1, 0.5, 0.8])
    assert mean["accuracy_std"][1] == 0.0 and mean["accuracy_std"][0] > 0
    assert mean["final_accuracy"] == pytest.approx(0.8) and mean["runs"] == 2
    with pytest.raises(ConfigError, match="different budgets"):
        mean_curves([_report([0.1, 0.2, 0.3]), _report([0.1, 0.2], budgets=(0, 4))])


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    mean = mean_curves([_report([0.0, 0.5, 1.0]), _report([0.2, 0.5, 0.6])])
    path = plot_budget_curves([mean, _report([0.3, 0.3, 0.3])], ["a", "b"], tmp_path / "c.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_eval_then_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    source = tmp_path / "run.yaml"
    source.write_text(json.dumps({"env": {"id": "rewardgym/digit_sum-v0"}}))
    report = tmp_path / "report.json"
    overrides = ["model.name_or_path=tiny", "eval.episodes=4", "eval.budgets=[4,8]",
                 "rollout.max_new_tokens=4", "model.params.max_position_embeddings=128"]  # fmt: skip
    assert main(["eval", str(source), *overrides, "--output", str(report)]) == 0
    assert json.loads(report.read_text())["budgets"]["budgets"] == [0, 4, 8]
    capsys.readouterr()
    png = tmp_path / "curves.png"
    assert main(["plot", str(report), str(report), "--labels", "x,y", "--output", str(png)]) == 0
    out = capsys.readouterr().out
    assert "x: anytime accuracy" in out and f"Wrote {png}" in out and png.stat().st_size > 0


def test_plot_errors_say_what_to_do(tmp_path, capsys):
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"accuracy": 0.5}))
    assert main(["plot", str(plain), "--output", str(tmp_path / "x.png")]) == 2
    assert "has no budget evaluation" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "missing.json"), "--output", str(tmp_path / "x.png")]) == 2
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"budgets": _report([0.1, 0.2, 0.3])}))
    assert load_budget_report(report)["budgets"] == [0, 4, 8]
    code = main(["plot", str(report), "--labels", "a,b", "--output", str(tmp_path / "x.png")])
    assert code == 2 and "--labels has 2 labels for 1 reports" in capsys.readouterr().err
