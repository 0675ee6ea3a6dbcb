"""Layer rules and import weight.

- The import-linter contracts in ``.importlinter`` hold for the package (run as a subprocess).
- Each contract catches what it is meant to catch: a copy of the package with one forbidden
  import added breaks exactly that contract.
- No import cycles anywhere: the module import graph (grimp's, the one import-linter checks;
  imports inside functions and under TYPE_CHECKING included) has no strongly connected
  component of more than one module, the package ``__init__`` modules included.
- ``import rewardgym`` and ``import rewardgym.core`` load no torch and no plugin, only
  rewardgym's own modules plus gymnasium, numpy, pluggy and their dependencies, and take well
  under a second (measured inside a fresh interpreter).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / ".importlinter"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

CORE_LAYER = "rewardgym.core imports no other rewardgym layer"
CORE_LIGHT = "rewardgym.core imports no heavy library"
ENVS_LAYER = "rewardgym.envs imports no algorithm, runner, plugin or CLI code"
ALGORITHMS_LAYER = "rewardgym.algorithms imports no runner, env or plugin code"
TOP_LEVEL_LIGHT = "import rewardgym (the top-level __init__) never imports torch"
LAYERS = "Layers: cli > runner > strategies > algorithms | envs > core"
NO_CYCLES = "No import cycles between sibling modules or subpackages"
CONTRACTS = (
    CORE_LAYER,
    CORE_LIGHT,
    ENVS_LAYER,
    ALGORITHMS_LAYER,
    TOP_LEVEL_LIGHT,
    LAYERS,
    NO_CYCLES,
)

IMPORT_BUDGET_S = 1.0
# Must never be imported by `import rewardgym` / `import rewardgym.core`.
FORBIDDEN_AT_IMPORT = ("torch", "transformers", "sympy", "rewardgym_example")
# Distributions whose modules (and their own dependencies' modules) `import rewardgym` may load.
ALLOWED_DISTRIBUTIONS = ("gymnasium", "numpy", "pluggy")


def lint_imports(cwd: Path, *, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    if not LINT_IMPORTS.exists():
        pytest.fail(
            f"{LINT_IMPORTS} not found: import-linter is part of the dev extra; "
            "install it with: pip install -e '.[dev]'",
            pytrace=False,
        )
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(pythonpath), env.get("PYTHONPATH")) if p
        )
    return subprocess.run(
        [str(LINT_IMPORTS), str(CONFIG), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def contract_states(output: str) -> dict[str, str]:
    """``{contract name: "KEPT" | "BROKEN"}`` from lint-imports' summary."""
    states = dict(re.findall(r"^(.+?) (KEPT|BROKEN)$", output, re.M))
    assert set(states) == set(CONTRACTS), f"unexpected contracts in the output:\n{output}"
    return states


def test_import_linter_contracts_are_kept():
    proc = lint_imports(REPO)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"lint-imports .importlinter failed:\n{output}"
    assert set(contract_states(output).values()) == {"KEPT"}, output


# (file to change, line to add, the contracts that must break). A violation low in the stack
# can break a higher contract too: envs import core, and rewardgym's __init__ reaches every core
# module (its TYPE_CHECKING imports count), so those chains are reported as well; an import of a
# higher layer from a lower one that the higher one already imports is also a cycle.
VIOLATIONS = [
    (
        "core/types.py",
        "from rewardgym.envs import arithmetic",
        {CORE_LAYER, LAYERS, NO_CYCLES},
    ),
    (
        "core/types.py",
        "def _later():\n    import rewardgym.plugins.manager",
        {CORE_LAYER, ENVS_LAYER, LAYERS, NO_CYCLES},
    ),
    ("core/types.py", "import torch", {CORE_LIGHT, TOP_LEVEL_LIGHT}),
    ("core/verifier.py", "import math_verify", {CORE_LIGHT}),
    ("envs/arithmetic.py", "import rewardgym.runner", {ENVS_LAYER, LAYERS}),
    ("envs/arithmetic.py", "from rewardgym.plugins import hookimpl", {ENVS_LAYER, NO_CYCLES}),
    (
        "algorithms/__init__.py",
        "from rewardgym.envs import arithmetic",
        {ALGORITHMS_LAYER, LAYERS},
    ),
    (
        "algorithms/__init__.py",
        "import rewardgym.runner",
        {ALGORITHMS_LAYER, LAYERS, NO_CYCLES},
    ),
    ("strategies/batch.py", "import rewardgym.runner.learner", {LAYERS, NO_CYCLES}),
    ("runner/metrics.py", "import rewardgym.cli", {LAYERS, NO_CYCLES}),
    ("core/config/schema.py", "import rewardgym.core.config.loading", {NO_CYCLES}),
    ("__init__.py", "import torch", {TOP_LEVEL_LIGHT}),
    ("__init__.py", "import rewardgym.runner.uses_torch", {TOP_LEVEL_LIGHT}),
]
VIOLATION_IDS = [f"{path}:{line.splitlines()[-1].strip()}" for path, line, _ in VIOLATIONS]


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory) -> Path:
    """A pristine copy of the rewardgym package, plus a runner module that imports torch."""
    root = tmp_path_factory.mktemp("layers")
    src = REPO / "rewardgym"
    shutil.copytree(src, root / "rewardgym", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "rewardgym" / "runner" / "uses_torch.py").write_text("import torch\n")
    return root


@pytest.mark.slow
@pytest.mark.parametrize(("path", "line", "contracts"), VIOLATIONS, ids=VIOLATION_IDS)
def test_each_contract_catches_a_violation(package_copy, tmp_path, path, line, contracts):
    root = tmp_path / "site"
    shutil.copytree(package_copy, root)
    target = root / "rewardgym" / path
    target.write_text(target.read_text(encoding="utf-8") + "\n" + line + "\n", encoding="utf-8")

    proc = lint_imports(root, pythonpath=root)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, f"lint-imports did not fail on {line!r} in {path}:\n{output}"
    broken = {name for name, state in contract_states(output).items() if state == "BROKEN"}
    assert broken == contracts, f"expected exactly {sorted(contracts)} to break:\n{output}"


def test_a_torch_import_outside_what_import_rewardgym_reaches_is_allowed(package_copy):
    # rewardgym/runner/uses_torch.py imports torch, but nothing `import rewardgym` runs imports it
    proc = lint_imports(package_copy, pythonpath=package_copy)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- no cycles anywhere ------------------------------------------------------------------------
def import_cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module of grimp's import graph
    (Tarjan's algorithm, iterative): each is a set of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_the_package_has_no_import_cycles():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("rewardgym", cache_dir=None)
    assert len(graph.modules) > 100
    assert import_cycles(graph) == [], "modules that import each other"


def test_the_cycle_check_finds_a_cycle(package_copy, tmp_path, monkeypatch):
    grimp = pytest.importorskip("grimp")
    root = tmp_path / "site"
    shutil.copytree(package_copy, root)
    target = root / "rewardgym" / "core" / "types.py"
    target.write_text(target.read_text() + "\ndef _later():\n    import rewardgym.core.make\n")
    monkeypatch.syspath_prepend(str(root))
    for name in [m for m in sys.modules if m == "rewardgym" or m.startswith("rewardgym.")]:
        monkeypatch.delitem(sys.modules, name)
    graph = grimp.build_graph("rewardgym", cache_dir=None)
    cycles = import_cycles(graph)
    assert any({"rewardgym.core.types", "rewardgym.core.make"} <= set(c) for c in cycles), cycles


# -- import weight, measured in a fresh interpreter ---------------------------------------------
IMPORT_PROBE = textwrap.dedent(
    """
    import json, sys, time
    before = set(sys.modules)
    start = time.perf_counter()
    import {module}
    seconds = time.perf_counter() - start
    new = sorted(set(sys.modules) - before)
    files = {{m: getattr(sys.modules[m], "__file__", None) for m in new}}
    print(json.dumps({{"seconds": seconds, "modules": new, "files": files}}))
    """
)


def _allowed_top_level_modules() -> set[str]:
    """Top-level modules of the allowed distributions and of their (unconditional) dependencies."""
    by_dist: dict[str, set[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for dist in dists:
            by_dist.setdefault(_canonical(dist), set()).add(module)
    allowed, todo, seen = {"rewardgym"}, list(ALLOWED_DISTRIBUTIONS), set()
    while todo:
        dist = _canonical(todo.pop())
        if dist in seen:
            continue
        seen.add(dist)
        allowed |= by_dist.get(dist, set())
        for req in importlib.metadata.requires(dist) or []:
            if ";" not in req:  # skip extras and platform-specific requirements
                todo.append(re.split(r"[\s<>=!~\[(]", req, maxsplit=1)[0])
    return allowed


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _import_in_fresh_interpreter(module: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REWARDGYM_")}
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE.format(module=module)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("module", ["rewardgym", "rewardgym.core"])
def test_import_is_light_and_fast(module):
    result = _import_in_fresh_interpreter(module)
    print(f"import {module}: {result['seconds']:.3f} s, {len(result['modules'])} new modules")
    loaded = set(result["modules"])
    for name in FORBIDDEN_AT_IMPORT:
        assert not {m for m in loaded if m == name or m.startswith(name + ".")}, (
            f"import {module} imported {name}"
        )
    stdlib = set(sys.stdlib_module_names)
    third_party = {
        m.split(".")[0]
        for m, file in result["files"].items()
        if file is not None and m.split(".")[0] not in stdlib and not m.startswith("_")
    }
    unexpected = third_party - _allowed_top_level_modules()
    assert not unexpected, f"import {module} imported unexpected packages: {sorted(unexpected)}"
    assert result["seconds"] < IMPORT_BUDGET_S, (
        f"import {module} took {result['seconds']:.3f} s (budget {IMPORT_BUDGET_S} s)"
    )
