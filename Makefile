# The two commands a new machine needs are `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench lint schema worker

$(STAMP): pyproject.toml
	@echo "coremis: creating the environment ($(VENV))..."
	@$(PY) -m venv $(VENV)
	@echo "coremis: installing the dependencies (the first time takes a few minutes)..."
	@$(BIN)/pip install -qq --disable-pip-version-check --upgrade pip
	@$(BIN)/pip install -qq --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

## Start everything: embedded PostgreSQL + Redis, migrations, demo data, worker, web on :8000
## (ARGS="--port 8400" for another port; coremis run --help lists the options).
run: $(STAMP)
	$(BIN)/coremis run $(ARGS)

## Run the whole test suite against embedded PostgreSQL + Redis (or DATABASE_URL / REDIS_URL).
test: $(STAMP)
	$(BIN)/coremis services -- $(BIN)/pytest $(ARGS)

## Run the benchmark suite; prints a table and writes bench/RESULTS.md.
bench: $(STAMP)
	$(BIN)/coremis services -- $(BIN)/python -m bench $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

## Rewrite the committed GraphQL schema after an intended API change.
schema: $(STAMP)
	$(BIN)/coremis services -- $(BIN)/python manage.py print_schema --out schema.graphql
