"""Every hook spec is documented in docs/hooks.md with its signature, and vice versa."""

import inspect
import re
from pathlib import Path

from rewardgym.plugins import hookspecs

DOC = Path(__file__).resolve().parents[2] / "docs" / "hooks.md"


def _specs():
    return {
        name: fn
        for name, fn in vars(hookspecs).items()
        if name.startswith("rewardgym_") and callable(fn) and hasattr(fn, "rewardgym_spec")
    }


def test_every_hook_spec_has_a_docstring_and_is_in_hook_names():
    specs = _specs()
    assert specs, "no hook specs found"
    assert sorted(specs) == sorted(hookspecs.HOOK_NAMES)
    for name, fn in specs.items():
        assert inspect.getdoc(fn), f"hook {name} has no docstring"


def test_every_hook_is_documented_with_its_signature():
    text = DOC.read_text(encoding="utf-8")
    for name, fn in _specs().items():
        params = ", ".join(inspect.signature(fn).parameters)
        heading = f"### {name}({params})"
        assert heading in text, f"docs/hooks.md lacks the heading '{heading}'"


def test_docs_describe_no_hook_that_does_not_exist():
    documented = re.findall(r"^### (rewardgym_\w+)\(", DOC.read_text(encoding="utf-8"), re.M)
    assert sorted(documented) == sorted(_specs())
