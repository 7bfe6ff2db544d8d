# The project's front door: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
HOST ?= 127.0.0.1
HTMX := webapp/static/vendor/htmx.min.js

.PHONY: install install-dev run test test-suite lint fmt bench soak clean

# Shared, idempotent set-up: quick when nothing changed. `install` is what running needs; `install-dev`
# adds the test and lint tools (the `dev` extras), for `make test`, `make lint`, `make fmt`, `make bench`.
# requirements.lock pins both.
install: $(VENV)/.installed $(HTMX)

install-dev: install $(VENV)/.installed-dev

$(VENV)/.installed: pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c requirements.lock -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q --disable-pip-version-check -c requirements.lock -e '.[dev]'
	@touch $@

$(HTMX): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(dir $@)
	cp node_modules/htmx.org/dist/htmx.min.js $@

run: install
	$(BIN)/email-connector db upgrade
	$(BIN)/email-connector up --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install-dev lint
	$(BIN)/pytest $(PYTEST_ARGS)

# The suite alone, without the lint: .ci/run lints once, then runs the suite on SQLite and on
# PostgreSQL at the same time (each on servers, ports, a Redis db and a database of its own).
test-suite: install-dev
	$(BIN)/pytest $(PYTEST_ARGS)

# Minutes, not seconds: run by hand; figures go into docs/benchmarks.md.
bench: install-dev
	$(BIN)/python -m bench.fetch
	$(BIN)/python -m bench.mailbox

# Subscriptions over half an hour of faults (issue 17); figures go into docs/benchmarks.md. Not in CI.
soak: install-dev
	$(BIN)/python -m bench.soak --minutes $${MINUTES:-30}

fmt: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) node_modules webapp/static/vendor
