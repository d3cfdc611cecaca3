# Set-up and the two jobs of README.md. Needs only python3 (>= 3.10) with venv and pip.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup fashion-mnist demo zoo test test-slow lint-imports clean

$(STAMP): pyproject.toml constraints/ci-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -c constraints/ci-cpu.txt -e '.[all,dev]'
	touch $(STAMP)

setup: $(STAMP) fashion-mnist

# Fashion-MNIST's official IDX files from Debian's dataset-fashion-mnist (docs/datasets.md),
# where apt-get is present and we are root; a failed install fails the set-up. Elsewhere it
# says so and goes on: the tests that read the real files skip.
FMNIST_DIR ?= /usr/share/datasets/fashion-mnist
FMNIST_FILES := $(foreach f,train-images-idx3 train-labels-idx1 t10k-images-idx3 t10k-labels-idx1,$(FMNIST_DIR)/$(f)-ubyte.gz)

fashion-mnist:
	@if ls $(FMNIST_FILES) >/dev/null 2>&1; then \
		echo "Fashion-MNIST: $(FMNIST_DIR)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		( apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist ) \
			|| { echo "make setup: apt-get install dataset-fashion-mnist failed" >&2; exit 1; }; \
		ls $(FMNIST_FILES) >/dev/null \
			|| { echo "make setup: dataset-fashion-mnist did not install $(FMNIST_DIR)" >&2; exit 1; }; \
	else \
		echo "Fashion-MNIST: not installed (needs root and apt-get: apt-get install dataset-fashion-mnist)"; \
	fi

# The main job: the demo suite on the embedded synthetic data -> ./results and ./reports/demo
# (the careful run: `.venv/bin/isoeps run quick`)
demo: setup
	$(BIN)/isoeps run

# Rebuild the shipped checkpoints (isoeps/zoo: the demo's public models and evaluators) from
# the code: the demo suite in a fresh cache with the shipped ones ignored, then exported with
# model cards. Commit isoeps/zoo after checking its report (the cards' keys must match).
zoo: setup
	@cache=$$(mktemp -d) && echo "zoo: training into $$cache" && \
	ISOEPS_SHIPPED=0 ISOEPS_CACHE_DIR=$$cache $(BIN)/isoeps run demo --force \
		--results $$cache/results --reports $$cache/reports && \
	ISOEPS_CACHE_DIR=$$cache $(BIN)/isoeps cache export $$cache/zoo --metrics-from $$cache/results && \
	rm -rf isoeps/zoo && cp -r $$cache/zoo isoeps/zoo && echo "zoo: isoeps/zoo rebuilt"

# The tests, without the end-to-end ones marked slow (minutes each; CI runs them next).
test: setup
	$(BIN)/python -m pytest -m "not slow"

test-slow: setup
	$(BIN)/python -m pytest -m slow

lint-imports: setup
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info
