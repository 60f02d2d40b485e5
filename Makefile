# b25 — the two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
RUN    := run
INSTANCE ?= main
CONFIG ?= b25.toml

.PHONY: run test stop bench lint clean-shm status

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,bench]'
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

run: $(STAMP)
	@mkdir -p $(RUN)/log && chmod 700 $(RUN)
	$(PY) scripts/run.py --instance $(INSTANCE) --config $(CONFIG)

stop: $(STAMP)
	$(PY) scripts/run.py --stop --instance $(INSTANCE)

status: $(STAMP)
	$(PY) scripts/run.py --status --instance $(INSTANCE) --config $(CONFIG)

bench: $(STAMP)
	$(VENV)/bin/b25 bench ipc --json

clean-shm: $(STAMP)
	$(VENV)/bin/b25 shm clean --instance $(INSTANCE)
