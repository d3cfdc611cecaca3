# Set-up and the two jobs of README.md. Needs only python3 (>= 3.10) with venv and pip.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint-imports clean

$(STAMP): pyproject.toml constraints/ci-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -c constraints/ci-cpu.txt -e '.[all,dev]'
	touch $(STAMP)

setup: $(STAMP)

# The main job: the quick suite on the embedded synthetic data -> ./results and ./reports/quick
demo: setup
	$(BIN)/isoeps run

test: setup
	$(BIN)/python -m pytest

lint-imports: setup
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info
