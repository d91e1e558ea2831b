# Two commands do all the set-up:  `make run` (main job on the embedded default) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint test-lowest bench bench-closed-loop env clean ui

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

env: $(STAMP)

run: $(STAMP)
	$(BIN)/atgwin run experiments/urd_window.toml

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

# ruff (pyflakes, import order, pytest style, complexity <= 12; config in pyproject.toml) over ml/, tests/, scripts/
lint: $(STAMP)
	$(BIN)/ruff check ml tests scripts

# the tests on the OLDEST versions the pins allow, in a separate .venv-lowest (downloads; see .ci/lowest)
test-lowest:
	PYTHON=$(PYTHON) .ci/lowest

bench: $(STAMP)
	$(BIN)/python scripts/bench_all.py

# closed loop discover -> promote -> dose on 3 virtual worlds, 1,000 new patients each (about 30 min on 2 cores)
bench-closed-loop: $(STAMP)
	nice $(BIN)/python scripts/bench_closed_loop.py

ui: $(STAMP)
	$(BIN)/atgwin ui

clean:
	rm -rf $(VENV) .venv-lowest mlflow.db mlflow.db.lock mlartifacts mlruns .pytest_cache
