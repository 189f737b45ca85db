# `make demo` and `make test` each set up .venv from PyPI on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS   ?= auto
export ACCELFORGE_CACHE ?= $(CURDIR)/.cache/accelforge

.PHONY: all venv postgres iverilog ccache demo test regress lint bench clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

venv: $(STAMP)

# The PostgreSQL multi-worker test needs a server; Debian's package is installed only if missing.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql for the multi-worker storage test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

# The four-state simulator the benches also run on; Debian's package is installed only if missing.
iverilog:
	@command -v iverilog >/dev/null 2>&1 || { \
	  echo "installing Debian's iverilog for the four-state simulation tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq iverilog >/dev/null; }

# Verilator builds compile through ccache when it is there (the runtime objects every build
# shares are compiled once); Debian's package is installed only if missing. Only a speed-up:
# without it the builds compile everything, so a failed install does not stop the tests.
ccache:
	@command -v ccache >/dev/null 2>&1 || { \
	  echo "installing Debian's ccache for the Verilator builds"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq ccache >/dev/null \
	  || echo "ccache not installed: Verilator builds compile without it"; }

demo: $(STAMP)
	$(BIN)/python -m dse.demo --out out/demo

test: $(STAMP) postgres iverilog ccache
	$(BIN)/python -m pytest -n $(JOBS) -q

regress: $(STAMP) postgres iverilog ccache
	$(BIN)/python -m pytest -n $(JOBS) -q --regress

bench: $(STAMP)
	$(BIN)/python bench/cost_model_speed.py
	$(BIN)/python bench/explore_speed.py
	$(BIN)/python bench/search_quality.py
	$(BIN)/python bench/model_accuracy.py --target ecp5-85k
	$(BIN)/python bench/model_accuracy.py --target xilinx-7 --samples 60
	$(BIN)/python bench/lut_vs_mac.py --quick --fabric
	$(BIN)/python bench/attention_accuracy.py
	$(BIN)/python bench/cluster_speedup.py
	$(BIN)/python bench/machine_synth.py

clean:
	rm -rf .cache out build .pytest_cache
