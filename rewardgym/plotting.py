"""Budget-accuracy curves: accuracy against the thinking budget, one line per run, as a PNG.

A *budget report* is the ``"budgets"`` section of an evaluation (``rewardgym eval`` with
``eval.budgets``, or ``eval/<stage>.json`` of a run): ``budgets`` (0 first), ``accuracy`` at
each, ``anytime_accuracy``, ``final_accuracy``, ``normalised_regret``, ``think_tokens``.
:func:`mean_curves` averages reports of several seeds; :func:`plot_budget_curves` draws reports
or means (with a +-1 std band) together. matplotlib is the ``plot`` extra and is imported only
when a curve is drawn.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardgym.core.errors import ConfigError, require

__all__ = ["SUMMARY_KEYS", "load_budget_report", "mean_curves", "plot_budget_curves"]

SUMMARY_KEYS = ("anytime_accuracy", "final_accuracy", "normalised_regret", "think_tokens")


def load_budget_report(path: str | Path) -> dict[str, Any]:
    """The budget report in an evaluation JSON file, or in a run folder's last evaluation
    (``eval/<last stage>.json``, the stages in ``summary.json``'s order)."""
    path = Path(path)
    if path.is_dir():
        path = _last_eval(path)
    if not path.is_file():
        raise ConfigError(f"No evaluation report at '{path}': give an eval JSON or a run folder.")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Cannot read the evaluation report '{path}': {exc}") from exc
    budgets = report.get("budgets") if isinstance(report, dict) else None
    if not isinstance(budgets, dict) or "accuracy" not in budgets:
        raise ConfigError(
            f"'{path}' has no budget evaluation. Evaluate with budgets, e.g. "
            "rewardgym eval RUN 'eval.budgets=[8,16,32]' --output report.json"
        )
    points, accuracy = budgets.get("budgets"), budgets["accuracy"]
    if not isinstance(points, list) or not isinstance(accuracy, list):
        raise ConfigError(
            f"The budget evaluation in '{path}' needs lists 'budgets' and 'accuracy'."
        )
    if len(points) != len(accuracy) or not _finite(points) or not _finite(accuracy):
        raise ConfigError(
            f"The budget evaluation in '{path}' needs one finite accuracy per budget; got "
            f"{len(points)} budgets and {len(accuracy)} accuracies."
        )
    return budgets


def _last_eval(run: Path) -> Path:
    summary = run / "summary.json"
    if summary.is_file():
        stages = json.loads(summary.read_text(encoding="utf-8")).get("stages", [])
        if stages:
            return run / "eval" / f"{stages[-1]['name']}.json"
    found = sorted((run / "eval").glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise ConfigError(f"The run folder '{run}' has no evaluation (no eval/*.json).")
    return found[-1]


def mean_curves(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The point-wise mean of reports with the same budgets (e.g. one per seed): ``accuracy``
    and each summary number as means, with ``accuracy_std`` and ``<key>_std`` (sample std; 0
    for a single report) and ``runs``."""
    if not reports:
        raise ConfigError("mean_curves needs at least one budget report.")
    budgets = list(reports[0]["budgets"])
    for report in reports[1:]:
        if list(report["budgets"]) != budgets:
            raise ConfigError(
                f"Cannot average budget reports with different budgets: {budgets} and "
                f"{list(report['budgets'])}. Evaluate every run with the same eval.budgets."
            )

    def stats(values: list[float]) -> tuple[float, float]:
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return statistics.fmean(values), spread

    columns = list(zip(*(r["accuracy"] for r in reports), strict=True))
    out: dict[str, Any] = {"budgets": budgets, "runs": len(reports)}
    out["accuracy"], out["accuracy_std"] = (list(x) for x in zip(*map(stats, columns), strict=True))
    for key in SUMMARY_KEYS:
        values = [r[key] for r in reports if isinstance(r.get(key), (int, float))]
        if len(values) == len(reports):
            out[key], out[f"{key}_std"] = stats(values)
    return out


def plot_budget_curves(
    reports: Sequence[dict[str, Any]],
    labels: Sequence[str],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Draw accuracy against thinking budget for each report (a line with markers; a shaded
    +-1 std band for a :func:`mean_curves` result) and save a PNG at ``path``."""
    if len(reports) != len(labels):
        raise ConfigError(f"Got {len(reports)} reports but {len(labels)} labels; give one each.")
    require("matplotlib", "plot", "drawing budget-accuracy curves")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for report, label in zip(reports, labels, strict=True):
        x, y = report["budgets"], report["accuracy"]
        anytime = report.get("anytime_accuracy")
        name = label if anytime is None else f"{label} (anytime {anytime:.3f})"
        (line,) = ax.plot(x, y, marker="o", markersize=3, label=name)
        spread = report.get("accuracy_std")
        if spread is not None and any(s > 0 for s in spread):
            low = [max(0.0, a - s) for a, s in zip(y, spread, strict=True)]
            high = [min(1.0, a + s) for a, s in zip(y, spread, strict=True)]
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_xlabel("thinking budget (tokens)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _finite(values: Sequence[float]) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
