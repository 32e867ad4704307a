# pancreas-fl developer commands. Needs only python3, pip and make: each target creates (once)
# and reuses a local virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODES ?= data/sample/node1 data/sample/node2

# The oldest releases FLAME's ml image carries, on Python 3.10 (pyenv's, when `python3.10`
# is not on PATH).
OLDEST_PYTHON ?= $(shell for py in python3.10 $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.10*/bin/python3.10; do \
	"$$py" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && { echo "$$py"; break; }; done)
OLDEST_VENV ?= .venv-oldest
OLDEST_STAMP := $(OLDEST_VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv run test lint test-oldest format bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## create .venv with the package and its dev tools

run: $(STAMP) ## run the pancreas analysis on data/sample/ (writes pancreas.pkl)
	$(BIN)/pancreas-fl simulate $(NODES) --out pancreas.pkl

lint: $(STAMP) ## ruff, formatting, Python 3.10 compatibility (vermin), Dockerfile (hadolint)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/vermin --no-tips --violations --eval-annotations --target=3.10- src tests benchmarks
	$(BIN)/hadolint Dockerfile

test: lint ## lint, then the whole test suite
	$(BIN)/python -m pytest

$(OLDEST_STAMP): pyproject.toml .ci/oldest-constraints.txt
	@test -n "$(OLDEST_PYTHON)" || { echo "make test-oldest: no python3.10 found (set OLDEST_PYTHON)"; exit 1; }
	$(OLDEST_PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install --quiet -c .ci/oldest-constraints.txt -e '.[test,plot]'
	@touch $(OLDEST_STAMP)

test-oldest: $(OLDEST_STAMP) ## the test suite on Python 3.10 with numpy 2.2, pandas 2.3, scikit-learn 1.7
	$(OLDEST_VENV)/bin/python -c "import sys, numpy, pandas, sklearn; print('oldest:', sys.version.split()[0], 'numpy', numpy.__version__, 'pandas', pandas.__version__, 'scikit-learn', sklearn.__version__)"
	$(OLDEST_VENV)/bin/python -m pytest

format: $(STAMP) ## format and autofix the code
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(STAMP) ## run the benchmarks
	$(BIN)/python benchmarks/engine_overhead.py
	$(BIN)/python benchmarks/quality.py

clean: ## remove the virtual environments and caches
	rm -rf $(VENV) $(OLDEST_VENV) .pytest_cache .ruff_cache .hypothesis build dist src/*.egg-info
