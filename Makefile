# mlsweep: `make demo` runs the main job, `make test` runs the tests.
# Each target sets itself up: a virtual environment in .venv with the CPU build
# of torch installed first (a bare `torch` requirement can pull a multi-GB CUDA build).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_VERBOSITY := error
export PYTHONUNBUFFERED := 1

.PHONY: help install demo lint format test test-full bench gpu-check testbed clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install mlsweep (editable) with its pinned dependencies

demo: install  ## the lang_calib sweep on the offline testbed, then its matrices and heatmaps
	$(BIN)/python -m mlsweep +experiment=lang_calib -m
	$(BIN)/python -m mlsweep.report outputs/lang_calib

lint: install  ## ruff: lint and formatting check (what CI runs before the tests)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install  ## the default test run (fast tiers + integration; no slow sweeps)
	$(BIN)/python -m pytest -q -m "not slow" --durations=15

test-full: install  ## every test, the slow sweeps included
	$(BIN)/python -m pytest -q

bench: install  ## benchmarks in bench/ (ratios measured side by side)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

gpu-check: install  ## on a GPU node: cells in bf16 on CUDA (tiny and ~1B Llama-3 shapes) beside the plan's estimates
	$(BIN)/python bench/gpu_check.py

testbed: install  ## regenerate the testbed corpus and retrain its model (seeded, ~20 min on 2 cores)
	$(BIN)/python -m mlsweep.testbed.build

clean:  ## remove outputs, caches and the venv
	rm -rf outputs multirun .pytest_cache $(VENV) *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
