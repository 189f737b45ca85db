# `make demo` and `make test` each set up .venv from PyPI on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS   ?= auto
export ACCELFORGE_CACHE ?= $(CURDIR)/.cache/accelforge

.PHONY: all venv demo test regress lint bench clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m dse.demo --out out/demo

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -q

regress: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -q --regress

bench: $(STAMP)
	$(BIN)/python bench/cost_model_speed.py

clean:
	rm -rf .cache out build .pytest_cache
