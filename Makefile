# Beacon — common tasks. `make up` runs the embedded exchange; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PG_URL ?= postgres://postgres@127.0.0.1:5432/beacon
PG_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: venv chromium up test test-sqlite test-postgres lint typecheck bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

up: venv
	DEBUG=1 $(PY) manage.py up

# Browser tests drive Debian's Chromium (never a downloaded browser).
chromium:
	@test -x /usr/bin/chromium || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: venv chromium
	$(PY) tests/run.py

test-sqlite: venv chromium
	BEACON_TEST_BACKENDS=sqlite $(PY) tests/run.py

test-postgres: venv chromium
	BEACON_TEST_BACKENDS=postgres BEACON_REQUIRE_POSTGRES=1 $(PY) tests/run.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	BEACON_TESTING=1 $(VENV)/bin/mypy

bench: venv
	DATABASE_URL=$(PG_URL) REDIS_URL=$(PG_REDIS_URL) $(PY) -m benchmarks.run_all

clean:
	rm -rf var $(VENV)
