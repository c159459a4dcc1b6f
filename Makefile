# Act2Goal Lab — set-up, run, test. `make help` lists the targets.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv run test bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install requirements.txt into it

run: $(STAMP)  ## start the lab on http://127.0.0.1:7860
	$(BIN)/python app.py

test: $(STAMP)  ## run the test suite
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)  ## simulator benchmarks (steps/s, frames/s, expert success, data-generation time)
	$(BIN)/python -m a2g_core bench-sim

clean:  ## remove caches (keeps .venv and sessions/)
	rm -rf .cache .pytest_cache
