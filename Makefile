# pancreas-fl developer commands. Needs only python3, pip and make: each target creates (once)
# and reuses a local virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Two stamps: `make run` needs only the package and its runtime dependencies; the dev tools
# (linters, pytest, hypothesis, matplotlib) come with the first `make test`.
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed
NODES ?= data/sample/node1 data/sample/node2

# The oldest releases FLAME's ml image carries, on Python 3.10 (pyenv's, when `python3.10`
# is not on PATH).
OLDEST_PYTHON ?= $(shell for py in python3.10 $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.10*/bin/python3.10; do \
	"$$py" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && { echo "$$py"; break; }; done)
OLDEST_VENV ?= .venv-oldest
OLDEST_STAMP := $(OLDEST_VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv run test test-slow test-other-cpus test-brglm2 lint test-oldest test-flame flame-venv hub format bench bench-smoke clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	@touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## create .venv with the package and its dev tools

run: $(RUN_STAMP) ## run the pancreas analysis on data/sample/ (writes pancreas.pkl)
	$(BIN)/pancreas-fl simulate $(NODES) --out pancreas.pkl

lint: $(STAMP) ## ruff, formatting, Python 3.10 compatibility (vermin), Dockerfile (hadolint)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/vermin --no-tips --violations --eval-annotations --target=3.10- src tests benchmarks scripts
	$(BIN)/hadolint Dockerfile

test: lint ## lint, then the test suite but the few slow tests (within a minute)
	$(BIN)/python -m pytest -m "not slow and not brglm2"

test-slow: $(STAMP) ## the slow tests (process isolation with spawn, signals, timeouts)
	$(BIN)/python -m pytest -m slow

# Needs Rscript with brglm2 (Debian: apt-get install r-base-core r-cran-brglm2); fails
# without it. The fast suite compares with brglm2's committed fixtures instead.
test-brglm2: $(STAMP) ## penalty="firth" against R's brglm2, live on fresh tables
	PANCREAS_FL_REQUIRE_R=1 $(BIN)/python -m pytest -m brglm2 -p no:cacheprovider

# Another CPU makes OpenBLAS pick other kernels, and results differ in their last bits: the
# suite compares bit for bit only within one environment, and the golden file with a
# tolerance. Here OpenBLAS is forced to other x86-64 CPUs' kernels (AVX2, AVX, SSE3); the
# report header's "BLAS:" line shows the kernels taken (elsewhere the variable is ignored).
OTHER_CPUS ?= Haswell Sandybridge Prescott
test-other-cpus: $(STAMP) ## the suite (but the slow tests) with other CPUs' BLAS kernels
	@for core in $(OTHER_CPUS); do \
		echo "== OPENBLAS_CORETYPE=$$core"; \
		OPENBLAS_CORETYPE=$$core $(BIN)/python -m pytest -m "not slow and not brglm2" -p no:cacheprovider || exit 1; \
	done

$(OLDEST_STAMP): pyproject.toml .ci/oldest-constraints.txt
	@test -n "$(OLDEST_PYTHON)" || { echo "make test-oldest: no python3.10 found (set OLDEST_PYTHON)"; exit 1; }
	$(OLDEST_PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install --quiet -c .ci/oldest-constraints.txt -e '.[test,plot]'
	@touch $(OLDEST_STAMP)

test-oldest: $(OLDEST_STAMP) ## the test suite on Python 3.10 with numpy 2.2, pandas 2.3, scikit-learn 1.7
	$(OLDEST_VENV)/bin/python -c "import sys, numpy, pandas, sklearn; print('oldest:', sys.version.split()[0], 'numpy', numpy.__version__, 'pandas', pandas.__version__, 'scikit-learn', sklearn.__version__)"
	$(OLDEST_VENV)/bin/python -m pytest

# The real FLAME SDK on Python 3.10 with the ml image's libraries: flame 0.6.4 with the core
# it pins (flamesdk 0.5.0) or the newest core (FLAMESDK=0.6.0). From its public git release
# tags, as FLAME's images install it, or from a folder of wheels built from them (WHEELS=DIR,
# for machines without GitHub; CI sets WHEELS=../shared/wheels). See scripts/flame_sdk.py.
WHEELS ?=
FLAMESDK ?= 0.5.0
FLAME_SDK = $(PYTHON) scripts/flame_sdk.py install --flamesdk $(FLAMESDK) --wheels "$(WHEELS)"
FLAME_VENV ?= .venv-flame-$(FLAMESDK)
FLAME_STAMP := $(FLAME_VENV)/.installed

$(FLAME_STAMP): pyproject.toml .ci/oldest-constraints.txt
	@test -n "$(OLDEST_PYTHON)" || { echo "make flame-venv: no python3.10 found (set OLDEST_PYTHON)"; exit 1; }
	@$(FLAME_SDK) --for "make flame-venv" --base-python $(OLDEST_PYTHON) --venv $(FLAME_VENV) \
		-- -c .ci/oldest-constraints.txt -e '.[test]'
	$(FLAME_VENV)/bin/python -c "import flame.star, flamesdk"
	@touch $(FLAME_STAMP)

flame-venv: $(FLAME_STAMP) ## a Python 3.10 venv with the real FLAME SDK (FLAMESDK=0.5.0 or 0.6.0)

# The tests that concern the SDK, with PANCREAS_FL_SDK=flame: the analysis classes under the
# SDK's own StarModelTester, and engine == SDK bit for bit, in one environment.
FLAME_TESTS ?= tests/test_flame_sdk.py tests/test_analysis.py tests/test_analysis_exact.py
test-flame: $(FLAME_STAMP) ## the SDK tests under the real FLAME SDK (FLAMESDK=0.5.0 or 0.6.0)
	$(FLAME_VENV)/bin/python -c "import flame, flamesdk, importlib.metadata as m; print('FLAME SDK: flame', m.version('flame'), 'flamesdk', m.version('flamesdk'))"
	PANCREAS_FL_SDK=flame $(FLAME_VENV)/bin/python -m pytest $(FLAME_TESTS)

# What analysts upload to the FLAME Hub: the entrypoint and the analysis package, nothing else.
# The local tools (pancreas_fl_tools), the offline engine and the node emulator are not node
# code, and neither is pancreas_fl/__main__.py (`python -m pancreas_fl` is for local use; FLAME
# runs pancreas_analysis.py). benchmarks/upload_share.py reads what this target assembles.
HUB_DIR ?= dist/hub
hub: ## assemble the FLAME Hub upload in dist/hub/src/ and list it (files, lines)
	@rm -rf "$(HUB_DIR)" && mkdir -p "$(HUB_DIR)/src"
	@cp -R src/pancreas_analysis.py src/pancreas_fl "$(HUB_DIR)/src/"
	@find "$(HUB_DIR)" -name __pycache__ -prune -exec rm -rf {} +
	@rm -f "$(HUB_DIR)/src/pancreas_fl/__main__.py"
	@cd "$(HUB_DIR)/src" && find . -type f | sort | xargs wc -l | sed -e 's|\./||' -e '$$d'
	@echo "upload $(HUB_DIR)/src/ and select pancreas_analysis.py: $$(find "$(HUB_DIR)/src" -type f | wc -l | tr -d ' ') files, $$(find "$(HUB_DIR)/src" -type f -exec cat {} + | wc -l | tr -d ' ') lines, $$(du -sk "$(HUB_DIR)/src" | cut -f1) KiB"

# The Dockerfile built on the Hub upload into $(IMAGE_NAME) with buildah (root; see the README's
# "Building the image"): python:3.10, or a stand-in built from Debian's packages and the Python
# 3.10 of `make test-oldest` when Docker Hub is out of reach; the SDK as for flame-venv.
IMAGE ?=
IMAGE_NAME = $(or $(IMAGE),localhost/pancreas-fl:latest)
.PHONY: image
image: hub ## build the Dockerfile into localhost/pancreas-fl:latest (root, buildah; WHEELS=DIR)
	@$(PYTHON) scripts/build_image.py --image $(IMAGE_NAME) --upload "$(HUB_DIR)/src" \
		--flamesdk $(FLAMESDK) --wheels "$(WHEELS)" --standin-python "$(OLDEST_PYTHON)" \
		$(if $(filter rebuild,$(STANDIN)),--rebuild-standin)

format: $(STAMP) ## format and autofix the code
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

bench: $(STAMP) $(FLAME_STAMP) ## run the benchmarks (the engine's next to the FLAME SDK's harness)
	$(BIN)/python benchmarks/engine_overhead.py --sdk-python $(FLAME_VENV)/bin/python
	$(BIN)/python benchmarks/isolation.py
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/upload_share.py
	$(BIN)/python benchmarks/wire_checks.py
	$(BIN)/python benchmarks/wide.py --checks

bench-smoke: $(STAMP) ## every benchmark once, in its smallest configuration (about 2.5 minutes)
	$(BIN)/python benchmarks/engine_overhead.py --repeats 1
	$(BIN)/python benchmarks/isolation.py --repeats 1 --case sample
	$(BIN)/python benchmarks/quality.py --repeats 1
	$(BIN)/python benchmarks/scale.py --quick
	$(BIN)/python benchmarks/upload_share.py
	$(BIN)/python benchmarks/wire_checks.py --repeats 1 --rows 2000 --big-repeats 1
	$(BIN)/python benchmarks/wide.py --sizes 100 --intercept yes --checks

clean: ## remove the virtual environments and caches
	rm -rf $(VENV) $(OLDEST_VENV) .venv-flame-* .pytest_cache .ruff_cache .hypothesis build dist src/*.egg-info

# A local FLAME node (flame_offline.emulator): the unmodified Hub entrypoint as a real FLAME
# analysis, one OS process per node under the real SDK, in an "image" venv like FLAME's ml image
# (Python 3.10, the SDK, numpy/pandas/scikit-learn; pancreas-fl NOT installed). Needs root
# (network namespaces); see the README's "Before you submit: a local FLAME node".
.PHONY: flame-image flame-node test-flame-node
FLAME_IMAGE_VENV ?= .venv-flame-image-$(FLAMESDK)
FLAME_IMAGE_STAMP := $(FLAME_IMAGE_VENV)/.installed
FLAME_NODE_OUT ?= build/flame-node

$(FLAME_IMAGE_STAMP): .ci/oldest-constraints.txt
	@test -n "$(OLDEST_PYTHON)" || { echo "make flame-image: no python3.10 found (set OLDEST_PYTHON)"; exit 1; }
	@$(FLAME_SDK) --for "make flame-image" --base-python $(OLDEST_PYTHON) --venv $(FLAME_IMAGE_VENV) \
		-- -c .ci/oldest-constraints.txt numpy pandas scikit-learn
	$(FLAME_IMAGE_VENV)/bin/python -c "import flame.star, flamesdk, numpy, pandas, sklearn"
	@! $(FLAME_IMAGE_VENV)/bin/python -c "import pancreas_fl" 2>/dev/null || { echo "make flame-image: pancreas_fl must not be importable in the image venv"; exit 1; }
	@touch $(FLAME_IMAGE_STAMP)

flame-image: $(FLAME_IMAGE_STAMP) ## a venv like FLAME's ml image: Python 3.10, the SDK, no pancreas-fl
	@echo "$(FLAME_IMAGE_VENV)/bin/python"

# IMAGE=localhost/pancreas-fl:latest (make image) runs every pod in that image instead.
flame-node: $(RUN_STAMP) $(if $(IMAGE),,$(FLAME_IMAGE_STAMP)) ## run src/pancreas_analysis.py as a real FLAME analysis (NODES=..., IMAGE=...)
	$(BIN)/python -m flame_offline.emulator $(NODES) --out-dir $(FLAME_NODE_OUT) \
		$(if $(IMAGE),--image $(IMAGE),--python $(FLAME_IMAGE_VENV)/bin/python)

test-flame-node: $(STAMP) $(if $(IMAGE),,$(FLAME_IMAGE_STAMP)) ## the flame_node scenarios (root: network namespaces; IMAGE=... in the image)
	$(if $(IMAGE),FLAME_IMAGE=$(IMAGE),FLAME_IMAGE_PYTHON=$(FLAME_IMAGE_VENV)/bin/python) \
		$(BIN)/python -m pytest -m flame_node -p no:cacheprovider --durations=0 tests/flame_offline/emulator
