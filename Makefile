# b25 — the two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
RUN    := run
INSTANCE ?= main
CONFIG ?= b25.toml

.PHONY: run test stop bench lint clean-shm status externals

# Debian packages some tests drive for real (a browser, Prometheus, Alertmanager). `make test`
# installs the missing ones with apt when it runs as root; otherwise those tests skip, naming the
# package (.ci/run sets B25_REQUIRE_EXTERNAL=1, which makes them fail instead).
EXTERNALS := chromium chromium-driver prometheus prometheus-alertmanager

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,bench]'
	@touch $(STAMP)

test: $(STAMP) externals
	$(PY) -m pytest -q

externals:
	@missing=""; for p in $(EXTERNALS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian packages:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) \
	    >/dev/null || echo "apt-get failed: the tests that need$$missing skip (fail under B25_REQUIRE_EXTERNAL=1)"; \
	else echo "not root: the tests that need$$missing skip (fail under B25_REQUIRE_EXTERNAL=1)"; fi

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
