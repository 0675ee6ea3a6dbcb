"""The ``rewardgym`` command: list what is registered, check environments, print run configs.

::

    rewardgym list [--json]
    rewardgym check ID [ID ...] [--episodes N] [--seed S] [--json]
    rewardgym check --all [--episodes N] [--seed S] [--json]
    rewardgym config [NAME_OR_PATH] [KEY=VALUE ...] [--no-validate]
    rewardgym train NAME_OR_PATH [KEY=VALUE ...] [--resume | --overwrite] [--no-progress]
    rewardgym eval NAME_OR_PATH_OR_RUN [KEY=VALUE ...] [--output FILE]
    rewardgym --version

Exit codes: 0 success; 1 a check failed; 2 a usage error, an unknown name or a bad config (any
:class:`~rewardgym.RewardGymError`, printed as one line on stderr, without a traceback).
Unexpected exceptions keep their traceback. Each command imports what it needs when it runs.

Why one module over 400 lines: it is the argparse tree plus one short function per verb, read
together when a verb or a flag changes; the work each verb does lives in the packages it calls.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, TextIO

from rewardgym._version import __version__
from rewardgym.core.errors import RewardGymError

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# Registry key -> heading in `rewardgym list`.
SECTIONS = {
    "envs": "Environments",
    "verifiers": "Verifiers",
    "strategies": "Strategies",
    "algorithms": "Algorithms",
    "engines": "Engines",
    "presets": "Config presets",
}

EPILOG = """examples:
  rewardgym list
  rewardgym check --all
  rewardgym check rewardgym/arithmetic-v0 --episodes 10
  rewardgym config arithmetic trainer.steps=50 env.params.difficulty=3
  rewardgym train quickstart
  rewardgym eval runs/quickstart eval.episodes=500
  rewardgym eval runs/brpo 'eval.budgets=[12,24,36,48]' --output brpo.json
  rewardgym plot brpo.json grpo.json --output curves.png
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.func(args)
    except SystemExit as exc:  # --help, --version, and usage errors from argparse
        return (
            exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None else EXIT_USAGE
        )
    except RewardGymError as exc:
        print(f"rewardgym: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rewardgym: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`rewardgym list | head -1`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rewardgym`` command."""
    parser = argparse.ArgumentParser(
        prog="rewardgym",
        description="Reinforcement learning of language models on verifiable rewards.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rewardgym {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_list(commands)
    _add_check(commands)
    _add_config(commands)
    _add_train(commands)
    _add_eval(commands)
    _add_plot(commands)
    return parser


def _add_list(commands: Any) -> None:
    p = commands.add_parser(
        "list",
        help="list environments, verifiers, strategies, algorithms, engines, presets and plugins",
        description="List everything registered, with who registered it. Plugins that failed "
        "to load are reported as warnings on stderr (exit code 0).",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(func=cmd_list, parser=p)


def _add_check(commands: Any) -> None:
    p = commands.add_parser(
        "check",
        help="run the environment checker on env ids, or on every registered env",
        description="Run rewardgym.testing.check_env on each environment. Exit code 1 if any "
        "check fails (with --all, also if a plugin failed to load), 2 for an unknown id.",
    )
    p.add_argument("ids", nargs="*", metavar="ID", help="environment ids to check")
    p.add_argument("--all", action="store_true", help="check every registered environment")
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="skip env ids matching this glob, e.g. 'reasoning_gym/*' (repeatable)",
    )
    p.add_argument(
        "--episodes",
        type=_int_at_least(1),
        default=5,
        metavar="N",
        help="episodes played per env (default: %(default)s)",
    )
    p.add_argument(
        "--seed", type=_int_at_least(0), default=0, metavar="S", help="seed (default: %(default)s)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(func=cmd_check, parser=p)


def _add_config(commands: Any) -> None:
    p = commands.add_parser(
        "config",
        help="print a resolved run config as YAML",
        description="Load a preset (by name) or a YAML file, apply KEY=VALUE overrides "
        "(omegaconf dotlist; ~KEY deletes a key), validate, and print the result as YAML. "
        "Without NAME_OR_PATH, start from the defaults.",
    )
    p.add_argument("source", nargs="?", metavar="NAME_OR_PATH", help="preset name or YAML path")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. trainer.steps=50")
    p.add_argument(
        "--no-validate",
        action="store_true",
        help="do not look up env / algorithm / engine names or validate their params",
    )
    p.set_defaults(func=cmd_config, parser=p)


def _add_train(commands: Any) -> None:
    p = commands.add_parser(
        "train",
        help="train a model with a run config",
        description="Train a model: every stage of the config (e.g. SFT warm-up, then RL). "
        "Metrics go to OUTPUT_DIR/metrics.jsonl, evaluations to OUTPUT_DIR/eval/, the final "
        "model to OUTPUT_DIR/model.",
    )
    p.add_argument("source", metavar="NAME_OR_PATH", help="preset name or YAML path")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. trainer.steps=50")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--resume", action="store_true", help="continue the run in output_dir from its checkpoint"
    )
    group.add_argument("--overwrite", action="store_true", help="replace a run in output_dir")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def _add_eval(commands: Any) -> None:
    p = commands.add_parser(
        "eval",
        help="evaluate a model on an env (accuracy, pass@k, mean length) as JSON",
        description="Evaluate a model on the config's env with its eval section. Given a run "
        "folder (one with config.yaml and model/), evaluates that run's trained model.",
    )
    p.add_argument("source", metavar="NAME_OR_PATH_OR_RUN", help="preset, YAML path or run folder")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. eval.episodes=500")
    p.add_argument("--output", metavar="FILE", help="also write the JSON to FILE")
    p.set_defaults(func=cmd_eval)


def _add_plot(commands: Any) -> None:
    p = commands.add_parser(
        "plot",
        help="draw budget-accuracy curves of evaluations as a PNG",
        description="Draw accuracy against thinking budget for evaluations made with "
        "eval.budgets, one line per report, in one PNG (needs the plot extra: matplotlib).",
    )
    p.add_argument(
        "reports",
        nargs="+",
        metavar="REPORT",
        help="eval JSON (rewardgym eval --output) or run folder",
    )
    p.add_argument("--output", metavar="FILE", required=True, help="the PNG to write")
    p.add_argument("--labels", help="comma-separated line labels (default: the file names)")
    p.add_argument("--title", help="the figure title")
    p.set_defaults(func=cmd_plot)


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


# -- list --------------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    """``rewardgym list``: what is registered, by whom; plugin failures as warnings."""
    from rewardgym.plugins.manager import load_plugins

    manager = load_plugins()
    listing = _listing(manager)
    if args.json:
        print(json.dumps(listing, indent=2))
        return EXIT_OK
    for key, heading in SECTIONS.items():
        rows = [(s["id"], s["origin"], s["description"]) for s in listing[key]]
        _print_table(heading, ("ID", "ORIGIN", "DESCRIPTION"), rows)
    rows = [(p["name"], p["distribution"], p["version"]) for p in listing["plugins"]]
    _print_table("Plugins", ("NAME", "DISTRIBUTION", "VERSION"), rows)
    _warn_failures(manager.failures, "failed to load and was skipped")
    return EXIT_OK


def _listing(manager: Any) -> dict[str, list[dict[str, str]]]:
    from rewardgym.core.registry import REGISTRIES

    listing: dict[str, list[dict[str, str]]] = {
        key: [
            {"id": s.id, "origin": s.origin, "description": s.description}
            for s in REGISTRIES[key].specs()
        ]
        for key in SECTIONS
    }
    listing["plugins"] = [
        {"name": p.name, "distribution": p.distribution, "version": p.version}
        for p in manager.plugins.values()
    ]
    listing["plugin_errors"] = _failure_dicts(manager.failures)
    return listing


def _failure_dicts(failures: Sequence[Any]) -> list[dict[str, str]]:
    return [{"name": f.name, "distribution": f.distribution, "error": f.error} for f in failures]


def _print_table(heading: str, headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    print(f"{heading} ({len(rows)})")
    if not rows:
        print("  (none)\n")
        return
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        print("  " + "  ".join(cells).rstrip())
    print()


def _warn_failures(failures: Sequence[Any], what: str) -> None:
    for failure in failures:
        print(
            f"rewardgym: warning: plugin '{failure.name}' (distribution {failure.distribution}) "
            f"{what}: {failure.error}",
            file=sys.stderr,
        )


# -- check -------------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    """``rewardgym check``: run the env checker; one progress line per env."""
    from rewardgym.core.registry import ENVS
    from rewardgym.plugins.manager import load_plugins
    from rewardgym.testing import check_env

    if args.all == bool(args.ids):
        args.parser.error("give one or more environment ids, or --all (not both)")
    manager = load_plugins()
    # Every id is looked up before anything runs, so a typo fails at once (did-you-mean).
    ids = ENVS.ids() if args.all else [ENVS.get(i).id for i in dict.fromkeys(args.ids)]
    ids = [i for i in ids if not any(fnmatch.fnmatchcase(i, p) for p in args.exclude)]
    kwargs = {"seed": args.seed, "episodes": args.episodes}
    progress = sys.stderr if args.json else sys.stdout
    results = [_check_one(check_env, env_id, kwargs, progress) for env_id in ids]
    ok = _summarise(results, manager.failures, args.all, progress)
    if args.json:
        report = {"ok": ok, "envs": results, "plugin_errors": _failure_dicts(manager.failures)}
        print(json.dumps(report, indent=2))
    return EXIT_OK if ok else EXIT_FAILED


def _summarise(results: list[dict], failures: Sequence[Any], all_envs: bool, out: TextIO) -> bool:
    """Print the summary line and any plugin failures; whether the whole check passed."""
    passed = sum(r["ok"] for r in results)
    noun = "environment" if len(results) == 1 else "environments"
    print(
        f"{len(results)} {noun} checked: {passed} passed, {len(results) - passed} failed.", file=out
    )
    if not all_envs:
        _warn_failures(failures, "failed to load and was skipped")
        return passed == len(results)
    _warn_failures(failures, "failed to load; its environments were not checked")
    if failures:
        print(f"rewardgym: error: {len(failures)} plugin(s) failed to load.", file=sys.stderr)
    if not results:
        print("rewardgym: error: no environments are registered.", file=sys.stderr)
    return bool(results) and passed == len(results) and not failures


def _check_one(check_env: Any, env_id: str, kwargs: dict[str, int], out: TextIO) -> dict:
    """Check one env, print its progress line (and its failures), return its JSON record."""
    print(f"checking {env_id} ... ", end="", file=out, flush=True)
    try:
        report = check_env(env_id, raise_on_failure=False, **kwargs)
    except Exception as exc:  # the env could not be built: a failure of this env, not of the CLI
        error = f"{type(exc).__name__}: {exc}"
        print(f"ERROR\n    {error}", file=out, flush=True)
        if not isinstance(exc, RewardGymError):
            traceback.print_exc(file=sys.stderr)
        return {"id": env_id, "ok": False, "error": error, "checks": []}
    passed = len(report.results) - len(report.failures)
    status = "ok" if report.ok else "FAILED"
    print(f"{status} ({passed}/{len(report.results)} checks passed)", file=out, flush=True)
    for failure in report.failures:
        print(f"    {failure}", file=out)
    checks = [{"name": r.name, "passed": r.passed, "message": r.message} for r in report.results]
    return {"id": env_id, "ok": report.ok, "error": None, "checks": checks}


# -- config ------------------------------------------------------------------------------------
def cmd_config(args: argparse.Namespace) -> int:
    """``rewardgym config``: print the resolved, validated run config as YAML."""
    from rewardgym.core.config import load_config, to_yaml

    source, overrides = args.source, list(args.overrides)
    if source is not None and _looks_like_override(source):
        source, overrides = None, [source, *overrides]
    config = load_config(source, overrides, validate_components=not args.no_validate)
    print(to_yaml(config), end="")
    return EXIT_OK


# -- train and eval ----------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    """``rewardgym train``: check the config, then run every stage."""
    from rewardgym.core.config import load_config

    config = load_config(args.source, list(args.overrides))
    from rewardgym.runner.trainer import Trainer

    trainer = Trainer(
        config, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress
    )
    trainer.run()
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    """``rewardgym eval``: evaluate and print one JSON object."""
    from rewardgym.core.config import load_config

    source, overrides = args.source, list(args.overrides)
    run_dir = os.path.expanduser(source)
    if os.path.isdir(run_dir) and os.path.isfile(os.path.join(run_dir, "config.yaml")):
        source = os.path.join(run_dir, "config.yaml")
        if os.path.isdir(os.path.join(run_dir, "model")):
            model_path = os.path.join(run_dir, "model")
            overrides = [f"model.name_or_path={model_path}", "~model.params", *overrides]
    config = load_config(source, overrides)
    from rewardgym.runner.evaluate import evaluate_config

    result = evaluate_config(config)
    text = json.dumps(result, indent=2)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    print(text)
    return EXIT_OK


def cmd_plot(args: argparse.Namespace) -> int:
    """``rewardgym plot``: budget-accuracy curves of several evaluations in one PNG."""
    from rewardgym.core.errors import ConfigError
    from rewardgym.plotting import load_budget_report, plot_budget_curves

    reports = [load_budget_report(path) for path in args.reports]
    if args.labels is None:
        labels = [os.path.basename(os.path.normpath(p)).removesuffix(".json") for p in args.reports]
    else:
        labels = [label.strip() for label in args.labels.split(",")]
        if len(labels) != len(reports):
            raise ConfigError(
                f"--labels has {len(labels)} labels for {len(reports)} reports; give one each."
            )
    path = plot_budget_curves(reports, labels, args.output, title=args.title)
    for label, report in zip(labels, reports, strict=True):
        print(
            f"{label}: anytime accuracy {report['anytime_accuracy']:.3f}, final accuracy "
            f"{report['final_accuracy']:.3f}, normalised regret {report['normalised_regret']:.3f}"
        )
    print(f"Wrote {path}")
    return EXIT_OK


def _looks_like_override(text: str) -> bool:
    """``trainer.steps=5`` or ``~env.params`` given where a preset or path could be."""
    if os.path.isfile(os.path.expanduser(text)):
        return False
    return "=" in text or (text.startswith("~") and not text.startswith("~/"))


if __name__ == "__main__":
    sys.exit(main())
