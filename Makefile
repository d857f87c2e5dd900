# Two commands do all set-up on a fresh machine: `make run` and `make test`.
# Both create .venv and install when it is missing or a requirements file changed.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AWS_DEFAULT_REGION ?= us-east-1
STAGE ?= dev

.PHONY: run test test-unit test-integration test-e2e lint format openapi rotate-keys package \
	reconcile payments-dlq payments-redrive migrate restore-drill bench clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

run: $(STAMP)  ## start the whole platform locally on embedded AWS (moto) and print its URLs
	$(BIN)/python -m chalicelib.local.stack

CHECKOV_STAMP := .venv-checkov/.installed
$(CHECKOV_STAMP): requirements-checkov.txt
	@test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $(CHECKOV_STAMP)

test: $(STAMP) $(CHECKOV_STAMP)  ## every test: unit, integration (moto), end-to-end (local stack)
	$(BIN)/python -m pytest

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

test-e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff check --fix .

openapi: $(STAMP)  ## regenerate docs/openapi.yaml from the routes and their models
	$(BIN)/python -m chalicelib.apispec > docs/openapi.yaml

rotate-keys: $(STAMP)  ## STAGE=dev: add a new JWT signing key (the old one still verifies)
	STAGE=$(STAGE) $(BIN)/python -m chalicelib.accounts.keys rotate

package: $(STAMP)  ## STAGE=dev: the SAM template + zip for `aws cloudformation deploy`, in build/STAGE
	$(BIN)/python infra/package.py $(STAGE) build/$(STAGE)

AHEAD ?= 0
reconcile: $(STAMP)  ## repair pending orders from Stripe (local stack, or STAGE=...); AHEAD=40 skips the 35-minute wait locally
	$(BIN)/python -m chalicelib.local.ops reconcile --ahead $(AHEAD)

payments-dlq: $(STAMP)  ## list the payments dead-letter queue (local stack, or STAGE=...)
	$(BIN)/python -m chalicelib.local.ops dlq list payments

payments-redrive: $(STAMP)  ## move the payments dead letters back to their queue
	$(BIN)/python -m chalicelib.local.ops dlq redrive payments

migrate: $(STAMP)  ## run pending data migrations (local stack, or STAGE=...); DRY_RUN=1 only counts
	$(BIN)/python -m chalicelib.local.ops migrate $(if $(DRY_RUN),--dry-run,)

restore-drill: $(STAMP)  ## back up every table on moto, restore it, compare item by item
	$(BIN)/python infra/restore_drill.py

bench: $(STAMP)  ## cold start, round trips, warm overhead, scale, cost, package size -> docs/BENCHMARKS.md
	$(BIN)/python bench/run.py $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

.PHONY: smoke rollback

smoke: $(STAMP)  ## URL=https://<api>/api: health, catalog, keys and an auth round trip against a stage (no URL: the running `make run` stack)
	$(BIN)/python -m chalicelib.local.smoke $(URL)

rollback:  ## STAGE=prod: point every function's `live` alias back at the version live before; DRY_RUN=1 only shows, FUNCTION=APIHandler only that one
	infra/rollback.sh --stage $(STAGE) $(if $(DRY_RUN),--dry-run,) $(if $(FUNCTION),--function $(FUNCTION),)
