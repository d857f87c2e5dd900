# Two commands do all set-up on a fresh machine: `make run` and `make test`.
# Both build .venv from the lock files (exact versions, hashes checked) when it is missing or
# a lock changed; `make lock` re-pins the locks from the ranges in requirements*.txt.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AWS_DEFAULT_REGION ?= us-east-1
STAGE ?= dev

.PHONY: run test test-unit test-integration test-e2e lint format openapi rotate-keys package \
	reconcile payments-dlq payments-redrive dlq dlq-redrive migrate restore-drill bench clean lock doctor

# The functions run on Lambda's python3.11 and the locks are resolved for it.
define check_python
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { \
	  echo "make: Python 3.11 is needed (the Lambda runtime and the lock files are 3.11), but" \
	    "PYTHON='$(PYTHON)' is $$($(PYTHON) --version 2>/dev/null || echo 'not a Python that runs')." \
	    "Install python3.11, or run make PYTHON=/path/to/python3.11." >&2; exit 1; }
endef

# Locked installs only: every file's hash is checked, wheels only (a source build would fetch
# its build tools unchecked), no dependency the lock does not name. A venv is rebuilt, not
# patched, when its lock changes, so it never holds a package the lock has dropped.
PIP_INSTALL := -m pip install --quiet --disable-pip-version-check --require-hashes \
	--only-binary :all: --no-deps

# $(call locked_venv,DIR,LOCK): DIR built anew from LOCK, stamped DIR/.installed.
define locked_venv
	$(check_python)
	rm -rf $(1)
	$(PYTHON) -m venv $(1)
	$(1)/bin/python $(PIP_INSTALL) -r $(2)
	$(1)/bin/python -m pip check --disable-pip-version-check
	@touch $(1)/.installed
endef

$(STAMP): requirements.lock requirements-dev.lock
	$(call locked_venv,$(VENV),requirements-dev.lock)

run: $(STAMP)  ## start the whole platform locally on embedded AWS (moto) and print its URLs
	$(BIN)/python -m devstack.stack

CHECKOV_STAMP := .venv-checkov/.installed
$(CHECKOV_STAMP): requirements-checkov.lock
	$(call locked_venv,.venv-checkov,requirements-checkov.lock)

# LocalStack's S3, which checks SigV4 signatures, expiry and POST policies where moto checks
# nothing, for the end-to-end tests of presigned requests (tests/e2e/test_real_s3.py).
LOCALSTACK_STAMP := .venv-localstack/.installed
$(LOCALSTACK_STAMP): requirements-localstack.lock
	$(call locked_venv,.venv-localstack,requirements-localstack.lock)

test: $(STAMP) $(CHECKOV_STAMP) $(LOCALSTACK_STAMP)  ## every test: unit, integration (moto), end-to-end (local stack, LocalStack's S3)
	$(BIN)/python -m pytest

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

test-e2e: $(STAMP) $(LOCALSTACK_STAMP)
	$(BIN)/python -m pytest tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff check --fix .

openapi: $(STAMP)  ## regenerate docs/openapi.yaml from the routes and their models
	$(BIN)/python -m devstack.openapi > docs/openapi.yaml

rotate-keys: $(STAMP)  ## STAGE=dev: add a new JWT signing key (the old one still verifies)
	STAGE=$(STAGE) $(BIN)/python -m devstack.keys rotate

package: $(STAMP)  ## STAGE=dev: the SAM template + zip for `aws cloudformation deploy`, in build/STAGE
	$(BIN)/python infra/package.py $(STAGE) build/$(STAGE)

AHEAD ?= 0
reconcile: $(STAMP)  ## check every derived view against its source of truth and repair it: pending orders from Stripe, the outbox, entitlements, sales counts, search and cards (local stack, or STAGE=...); AHEAD=40 skips the 35-minute wait
	$(BIN)/python -m devstack.ops reconcile --ahead $(AHEAD)

payments-dlq: $(STAMP)  ## list the payments dead-letter queue (local stack, or STAGE=...)
	$(BIN)/python -m devstack.ops dlq list payments

payments-redrive: $(STAMP)  ## move the payments dead letters back to their queue
	$(BIN)/python -m devstack.ops dlq redrive payments

QUEUE ?= payments
dlq: $(STAMP)  ## QUEUE=payments|analytics|upload_events: list that dead-letter queue
	$(BIN)/python -m devstack.ops dlq list $(QUEUE)

dlq-redrive: $(STAMP)  ## QUEUE=...: move its dead letters back (upload_events: invoke the function again with each event)
	$(BIN)/python -m devstack.ops dlq redrive $(QUEUE)

migrate: $(STAMP)  ## run pending data migrations (local stack, or STAGE=...); DRY_RUN=1 only counts
	$(BIN)/python -m devstack.ops migrate $(if $(DRY_RUN),--dry-run,)

restore-drill: $(STAMP)  ## back up every table on moto, restore it, compare item by item
	$(BIN)/python infra/restore_drill.py

bench: $(STAMP)  ## cold start, round trips, warm overhead, scale, cost, package size -> docs/BENCHMARKS.md
	$(BIN)/python bench/run.py $(if $(QUICK),--quick,)

# pip-compile keeps every pin the ranges still allow; UPGRADE=1 takes the newest they allow.
# The dev lock is constrained by the function's, so tests run the versions that are deployed.
COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/python -m piptools compile --quiet \
	--generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
	$(if $(UPGRADE),--upgrade,)
lock: $(STAMP)  ## re-pin requirements*.lock from the ranges in requirements*.txt (UPGRADE=1: newest allowed)
	$(COMPILE) -o requirements.lock requirements.txt
	$(COMPILE) -c requirements.lock -o requirements-dev.lock requirements-dev.txt
	$(COMPILE) -o requirements-checkov.lock requirements-checkov.txt
	$(COMPILE) -o requirements-localstack.lock requirements-localstack.txt

doctor:  ## what this machine has for make run / make test, in plain words (needs only python3)
	@PYTHON="$(PYTHON)" $(or $(shell command -v python3),$(PYTHON)) infra/doctor.py

clean:
	rm -rf $(VENV) .venv-checkov .venv-localstack .pytest_cache .ruff_cache .mypy_cache

.PHONY: smoke rollback

smoke: $(STAMP)  ## URL=https://<api>/api: health, catalog, keys and an auth round trip against a stage (no URL: the running `make run` stack)
	$(BIN)/python -m devstack.smoke $(URL)

rollback:  ## STAGE=prod: point every function's `live` alias back at the version live before; DRY_RUN=1 only shows, FUNCTION=APIHandler only that one
	infra/rollback.sh --stage $(STAGE) $(if $(DRY_RUN),--dry-run,) $(if $(FUNCTION),--function $(FUNCTION),)
