# The two commands of the README: `make fly` and `make test`.  Both create the virtual
# environment and install heli-sim into it on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.PHONY: fly test lint coverage bench docs clean

$(STAMP): pyproject.toml
	@echo "heli-sim: setting up: a virtual environment in $(VENV), then heli-sim and its packages (a minute or two, once)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar on -e '.[test]'
	touch $(STAMP)
	@echo "heli-sim: installed; '. $(VENV)/bin/activate' puts heli-sim on your PATH for the README's commands"

# Ctrl-C (130) and SIGTERM (143) are how a flight without --duration ends: not a failure.  The flight
# takes the terminal's foreground (sim/entry.py), so a Ctrl-C reaches it and not make.
fly: $(STAMP)
	@HELI_SIM_FOREGROUND=1 $(BIN)/heli-sim fly $(ARGS); status=$$?; [ $$status -eq 0 ] || [ $$status -eq 130 ] || [ $$status -eq 143 ] || exit $$status

# the compute-only tests run beside the real-time ones, at nice 10 (tests/suite.py)
test: $(STAMP) lint
	$(BIN)/python -m tests.suite

# the suite under coverage, every process it starts measured (tests/suite.py, [tool.coverage] in pyproject.toml)
coverage: $(STAMP)
	$(BIN)/coverage erase
	-HELI_SIM_FORK_EMULATORS=0 $(BIN)/coverage run -m tests.suite $(ARGS)  # emulators: new, measured interpreters
	$(BIN)/coverage combine -q
	$(BIN)/coverage report --sort=cover | head -n 27
	@echo "total: $$($(BIN)/coverage report --format=total) % of the statements of heli and sim"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/heli-sim bench $(ARGS)

# the configuration reference is generated from the config dataclasses (a test checks it)
docs: $(STAMP)
	$(BIN)/python -m sim.reference docs/config.md

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache .coverage .coverage.*
