# cpl-pathways: `make run` serves the API with demo data; `make test` is what CI runs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1

.PHONY: install run test lint test-sqlite test-postgresql docs bench clean

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

test: lint test-sqlite test-postgresql

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

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
