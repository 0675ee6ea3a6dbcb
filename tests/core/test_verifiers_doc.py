"""The example of docs/verifiers.md runs and prints what the page shows.

The ``python`` blocks whose first line is ``# name.py`` are written to a temporary folder;
``score.py`` is run there as a script (its workers import ``expr_verifier`` through the
script's ``sys.path``). The first ``text`` block after it is its stdout, the second its stderr.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "verifiers.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
FILE_HEADER = re.compile(r"# (\w+\.py)")


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(DOC.read_text(encoding="utf-8"))]


def test_the_example_prints_what_the_doc_shows(tmp_path):
    files, outputs, after_script = {}, [], False
    for lang, body in blocks():
        header = FILE_HEADER.fullmatch(body.splitlines()[0]) if lang == "python" else None
        if header:
            files[header.group(1)] = body
            after_script = header.group(1) == "score.py"
        elif lang == "text" and after_script:
            outputs.append(body)
        elif lang == "python":
            after_script = False
    assert set(files) == {"expr_verifier.py", "score.py"}
    assert len(outputs) >= 2
    for name, body in files.items():
        (tmp_path / name).write_text(body, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "score.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == outputs[0]
    assert done.stderr == outputs[1]
