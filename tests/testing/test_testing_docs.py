"""Every code block of docs/testing.md works.

- A ``python`` block whose first line is ``# name.py`` is a file: all of them are written to a
  temporary folder, and the ``test_*.py`` ones are run there with pytest (in this process).
- Any other ``python`` block is a script, run with that folder on ``sys.path``; a ``text`` block
  right after it is its output, where ``...`` stands for any text within a line.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from rewardgym.testing import pytest_plugin

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
FILE_HEADER = re.compile(r"# (\w+\.py)")


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(DOC.read_text(encoding="utf-8"))]


def file_name(body: str) -> str | None:
    match = FILE_HEADER.fullmatch(body.splitlines()[0])
    return match.group(1) if match else None


def write_files(folder: Path) -> list[str]:
    names = []
    for lang, body in blocks():
        name = file_name(body) if lang == "python" else None
        if name:
            (folder / name).write_text(body, encoding="utf-8")
            names.append(name)
    return names


def matches(expected: str, actual: str) -> bool:
    """Line by line; ``...`` in an expected line matches any text."""
    want, got = expected.rstrip("\n").splitlines(), actual.rstrip("\n").splitlines()
    pattern = [".*".join(re.escape(part) for part in line.split("...")) for line in want]
    return len(want) == len(got) and all(
        re.fullmatch(p, g) for p, g in zip(pattern, got, strict=True)
    )


def test_the_doc_has_files_tests_and_scripts():
    names = [file_name(body) for lang, body in blocks() if lang == "python"]
    assert {"acme_vowels.py", "test_acme_vowels.py", "test_pool.py", "test_gpu.py"} <= set(names)
    assert names.count(None) >= 3


def test_the_doc_test_files_pass(pytester):
    names = write_files(pytester.path)
    tests = [n for n in names if n.startswith("test_")]
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs", *tests)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == outcomes.get("errors", 0) == 0, result.stdout.str()
    reason = pytest_plugin.no_gpu_reason()
    if reason:  # the GPU example is skipped, with the line the doc shows (and this reason)
        result.assert_outcomes(passed=4, skipped=1)
        doc_line = [body for lang, body in blocks() if lang == "text"][-1].strip()
        assert doc_line.startswith("SKIPPED [1] test_gpu.py:")
        expected = doc_line.split(" needs a CUDA GPU: ")[0] + " " + reason
        assert expected in result.stdout.lines
    else:
        result.assert_outcomes(passed=5)


def test_the_doc_scripts_run_and_print_what_the_doc_shows(pytester, monkeypatch):
    write_files(pytester.path)
    monkeypatch.syspath_prepend(str(pytester.path))
    found = blocks()
    scripts = 0
    for i, (lang, body) in enumerate(found):
        if lang != "python" or file_name(body):
            continue
        scripts += 1
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(body, f"{DOC.name} block {i}", "exec"), {"__name__": f"doc_block_{i}"})
        if i + 1 < len(found) and found[i + 1][0] == "text":
            expected = found[i + 1][1]
            assert matches(expected, out.getvalue()), (
                f"block {i} printed:\n{out.getvalue()}\nthe doc shows:\n{expected}"
            )
    assert scripts >= 3
