# Set-up and the two jobs of the README. Everything installs into .venv (created on first use).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXAMPLE := examples/rewardgym-example-plugin

.PHONY: quickstart test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Runtime install (the main job needs no dev tools).
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[math]'
	touch $@

# Dev install: test tools plus the example third-party plugin the tests discover.
$(VENV)/.installed-dev: pyproject.toml $(EXAMPLE)/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]' -e ./$(EXAMPLE)
	touch $@ $(VENV)/.installed-run

# The main job: list everything registered, then run the env checker on every environment.
quickstart: $(VENV)/.installed-run
	$(BIN)/rewardgym list
	$(BIN)/rewardgym check --all

# The test suite (CPU only; GPU tests are marked `gpu` and skipped without a GPU).
test: $(VENV)/.installed-dev
	REWARDGYM_REQUIRE_EXAMPLE=1 $(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	cd $(CURDIR) && $(BIN)/lint-imports --config .importlinter

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/env_throughput.py
	$(BIN)/python benchmarks/math_verify_throughput.py
	$(BIN)/python benchmarks/kk_throughput.py
	$(BIN)/python benchmarks/sandbox_start.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
