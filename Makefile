# The two commands a new machine needs are `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench lint schema worker

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Start everything: embedded PostgreSQL + Redis, migrations, demo data, worker, web on :8000.
run: $(STAMP)
	$(BIN)/coremis run

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
