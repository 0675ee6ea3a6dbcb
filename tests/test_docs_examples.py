"""The Python examples in README.md, docs/concepts.md and docs/envs/ (arithmetic, digit_sum) run
as written."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _blocks(relative: str) -> list[str]:
    return BLOCK.findall((ROOT / relative).read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "relative",
    ["README.md", "docs/concepts.md", "docs/envs/arithmetic.md", "docs/envs/digit_sum.md"],
)
def test_python_blocks_run(relative, capsys):
    blocks = _blocks(relative)
    assert blocks, f"{relative} has no python example"
    for code in blocks:
        exec(compile(code, relative, "exec"), {"__name__": "docs_example"})  # noqa: S102
