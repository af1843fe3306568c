# Everything installs into .venv on first use; `make dev` and `make test` work on a fresh machine.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: dev serve test test-ha soak lint schema models console screenshots bench bench-commit bench-subscriptions bench-shard bench-limits clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

dev: $(STAMP) web/ide/node_modules  ## Run with a local Redis, a local Dataverse emulator, GraphiQL and a dev token
	$(BIN)/orchestrator dev

serve: $(STAMP) web/ide/node_modules  ## Run with configuration from the environment
	$(BIN)/orchestrator serve

test: $(STAMP) web/ide/node_modules tests/js/node_modules console/web/node_modules  ## Run the test suite (starts its own redis-server and emulator)
	$(BIN)/pytest --ignore=tests/ha

# Kept apart for the suite's time (~2.5 min more on 2 shared cores); CI runs both.
test-ha: $(STAMP)  ## Run the Redis Cluster and Sentinel tests: failovers, SIGTERM, --workers, TLS
	$(BIN)/pytest tests/ha

# GraphiQL's browser files (pinned npm packages), served by the service itself: no CDN.
web/ide/node_modules: web/ide/package-lock.json
	npm ci --prefix web/ide --no-audit --no-fund --ignore-scripts
	touch web/ide/node_modules

MINUTES ?= 5
soak: $(STAMP)  ## Run the commit fault soak for MINUTES (default 5) and print its figures
	$(BIN)/python -m tests.soak --minutes $(MINUTES)

# The browser-client conformance check runs the graphql-ws npm package (Node.js >= 20).
tests/js/node_modules: tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund
	touch tests/js/node_modules

# The admin console's toolchain (TypeScript, esbuild, graphql-ws). console/static is
# committed, so `make dev` needs no Node.js; the tests check that it matches the sources.
console/web/node_modules: console/web/package-lock.json
	npm ci --prefix console/web --no-audit --no-fund
	touch console/web/node_modules

console: console/web/node_modules  ## Rebuild the admin console (console/static) from console/web
	npm run --prefix console/web build

screenshots: $(STAMP) console/web/node_modules  ## Run the browser tests, saving docs/console-*.png
	CONSOLE_SCREENSHOTS=$(CURDIR)/docs $(BIN)/pytest tests/browser -q

lint: $(STAMP)  ## Lint, check formatting, type-check, check declared dependencies
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/deptry .

schema: $(STAMP)  ## Regenerate schema.graphql from the code
	$(BIN)/orchestrator schema --output schema.graphql

docs: $(STAMP)  ## Regenerate the migration guide's tables from services/data/*.json
	$(BIN)/python docs/migration_tables.py

models: $(STAMP)  ## Regenerate the product/target models and enums from services/data/*.json
	$(BIN)/python codegen.py

bench: $(STAMP)  ## Print GraphQL-vs-plain-route throughput and latency figures
	$(BIN)/python bench/http_overhead.py

bench-commit: $(STAMP)  ## Print commit latency against a slow Dataverse, and requests per commit
	$(BIN)/python bench/commit_latency.py

bench-shard: $(STAMP)  ## Print the state changes per second one Redis shard sustains (needs redis-benchmark)
	$(BIN)/python bench/shard_capacity.py

bench-subscriptions: $(STAMP)  ## Print subscription delivery latency and memory per connection
	$(BIN)/python bench/subscriptions.py

bench-limits: $(STAMP)  ## Print what the request limits cost as documents and variables grow
	$(BIN)/python bench/limits.py

clean:
	rm -rf $(VENV) .pytest_cache
