# cpl-pathways: `make run` serves the API with demo data; `make test` is what CI runs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1

.PHONY: install lock run test node lint typecheck test-backends test-heavy test-sqlite test-postgresql docs bench soak clean browser pooler screenshots graphiql-assets bench-ssc-access migration

# The lock (pip-tools): every package at one version, each download checked against its hashes
# (--require-hashes), installed by pip alone, so a fresh machine needs nothing but python3.11.
# requirements/dev.txt is this environment (the app, otel, the test tools, pip and setuptools);
# requirements/run.txt the image's (docker/Dockerfile), the same versions. The project itself is
# installed editable with the locked setuptools, fetching nothing. Nothing runs when neither
# pyproject.toml nor the lock changed; when one did, pip installs only what differs.
LOCK := requirements/dev.txt

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	PYTHONWARNINGS=ignore $(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Refresh the lock from pyproject.toml, keeping every pin that still fits; LOCK_ARGS=--upgrade
# (or --upgrade-package NAME) moves pins. tests/test_lock.py fails when the two disagree.
PIP_COMPILE = CUSTOM_COMPILE_COMMAND='make lock' $(BIN)/pip-compile --quiet --generate-hashes \
	--allow-unsafe --all-build-deps --strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
lock: install
	$(PIP_COMPILE) --output-file requirements/run.txt pyproject.toml
	$(PIP_COMPILE) --extra otel --extra test --constraint requirements/run.txt \
	  --output-file requirements/dev.txt pyproject.toml

run: install
	$(BIN)/cpl-pathways serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint docker/Dockerfile
	$(MAKE) --no-print-directory typecheck

# mypy over the production packages, as [tool.mypy] in pyproject.toml lists them; part of
# `lint`, so of `make test`: 0 errors, kept at 0.
typecheck: install
	$(BIN)/mypy

test: lint browser pooler test-backends

# The two backends' suites at once, each on a core (`TEST_JOBS=1` runs one after the other):
# they share nothing (SQLite files under pytest's own temporary directories, PostgreSQL
# databases of unique names, servers on free ports, a pytest cache each), and their tests wait
# for what must happen rather than time it, so a busy machine slows them but does not fail
# them. The output of each is printed whole when it ends.
TEST_JOBS ?= 2
test-backends: install
	@$(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=target test-sqlite test-postgresql

# The tests that show a property on a smaller load by default, at the documented size too
# (tests/harness.py HEAVY: a 50,000-item fleet plan, 400 fleet rows of 900 KB).
test-heavy: install
	CPL_TEST_HEAVY=1 $(MAKE) --no-print-directory TEST_JOBS=1 test-backends

# The npm packages the tests drive, each folder with its own package.json and package-lock.json
# (`npm ci`, nothing downloaded at test time): tests/browser/ holds playwright-core for Debian's
# chromium (never a browser download), tests/schema_lint/ graphql-schema-linter, tests/http_audit/
# the graphql-http audit suite, tests/clients/ the README's TypeScript examples. A folder added here is installed by `make test`. Where a folder
# cannot be installed its tests skip saying why; with CI=true a failed install fails here.
NODE_DIRS := tests/browser tests/schema_lint tests/http_audit tests/clients
node: $(addsuffix /node_modules/.installed,$(NODE_DIRS))

%/node_modules/.installed: %/package-lock.json
	@cd $* && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --silent \
	  && touch node_modules/.installed \
	  || { echo "the npm packages of $* could not be installed: what needs them will skip"; test "$$CI" != true; }

# Debian's chromium for the browser tests (the Debian packages the tests need, apt-get only).
browser: node
	@test -x /usr/bin/chromium || { \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium) \
	  || { echo "chromium could not be installed: the browser test will skip"; test "$$CI" != true; }; }

# Debian's PgBouncer for the tests and the benchmark that run through a transaction pooler
# (tests/pgbouncer.py starts its own; the package's service is never used). Where it cannot be
# installed those tests skip saying why; with CI=true a failed install fails here.
pooler:
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || { \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends pgbouncer) \
	  || { echo "pgbouncer could not be installed: the pooler tests will skip"; test "$$CI" != true; }; }

# The README's GraphiQL screenshots, as the browser test takes them.
screenshots: install browser
	CPL_SCREENSHOT_DIR=docs $(BIN)/pytest -q tests/test_browser_signin.py

# Refresh the vendored GraphiQL from the npm registry (see tools/refresh_graphiql.py).
graphiql-assets: install
	$(BIN)/python tools/refresh_graphiql.py

# Order-dependence fails here, not once in a while: SQLite runs the tests shuffled across modules,
# a new order each run (CPL_TEST_SEED=N repeats one), PostgreSQL runs them in reverse order.
test-sqlite: install
	@seed=$${CPL_TEST_SEED:-$$(shuf -i 1-999999 -n 1)}; \
	echo "SQLite, in random order: CPL_TEST_SEED=$$seed make test-sqlite repeats it"; \
	CPL_TEST_BACKEND=sqlite $(BIN)/pytest -q -o cache_dir=.pytest_cache/sqlite \
	  --random-order-bucket=global --random-order-seed=$$seed \
	|| { status=$$?; echo "failed in the order of CPL_TEST_SEED=$$seed"; exit $$status; }

test-postgresql: install
	@bash tests/ensure_postgres.sh; status=$$?; \
	if [ $$status -eq 3 ]; then echo "PostgreSQL unreachable: run skipped (CI=true makes it mandatory)"; exit 0; fi; \
	if [ $$status -ne 0 ]; then exit $$status; fi; \
	CPL_TEST_BACKEND=postgresql $(BIN)/pytest -q -o cache_dir=.pytest_cache/postgresql --reverse

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

# Planning, then reads over HTTP (wrk, from Debian's package, loads the servers; PostGraphile 4,
# `npm ci` in bench/postgraphile, is the reads' peer: bench/peer.py), then what an SSC read and
# a denied read cost in instructions (valgrind's callgrind, from Debian's package), and, last,
# 1, 2 and 4 serving processes through PgBouncer in transaction mode (`make pooler`) against
# the same processes connected directly (bench/pooler.py).
PEER_DIR := bench/postgraphile
bench: install pooler $(PEER_DIR)/node_modules/.installed
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	@command -v valgrind >/dev/null || (apt-get update -qq && apt-get install -y -qq valgrind)
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.read
	$(BIN)/python -m bench.read_cost
	$(BIN)/python -m bench.data_io
	$(BIN)/python -m bench.observability
	$(BIN)/python -m bench.bombs
	$(BIN)/python -m bench.pooler

# Ten minutes of 200 clients' mixed traffic with 5 % hostile requests and the database away
# halfway (bench/soak.py); outside `make test`. SOAK_ARGS="--seconds 60" for a shorter one.
soak: install
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

# What the SSC access log costs a read of 1,000 SSC-only values, against the log switched off.
bench-ssc-access: install
	$(BIN)/python -m bench.ssc_access

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info $(addsuffix /node_modules,$(NODE_DIRS) $(PEER_DIR))
