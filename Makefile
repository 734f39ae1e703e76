# vpce-gatekeeper — every target bootstraps what it needs on a fresh machine.
#   make demo   the whole flow on an embedded, emulated producer account
#   make check  the inner loop: lint, type check, unit and handler tests
#   make test   lint, type check, tests (+ demo smoke), template checks — what CI runs
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is python3.13: tests run on it and `sam build` needs it on PATH.
PYTHON313 ?= $(shell scripts/find-python313)
VENV  := .venv
TOOLS := .venv-tools
PY    := $(VENV)/bin/python
BIN   := $(VENV)/bin
TBIN  := $(TOOLS)/bin
# checkov pins boto3/networkx against aws-sam-cli's and cfn-lint's: its own venv.
CHECKOV := .venv-checkov
CBIN  := $(CHECKOV)/bin
# What CloudFormation receives: template.yaml after the SAM transform (gitignored).
TRANSFORMED := .aws-sam/template.transformed.json
PY313_DIR = $(dir $(PYTHON313))
export PATH := $(abspath $(BIN)):$(PY313_DIR):$(PATH)
export AWS_SAM_CLI_TELEMETRY := 0
export SAM_CLI_TELEMETRY := 0
# Some machines (this project's dev machine among them) set PYTHONDONTWRITEBYTECODE=1. Every Python
# process here (each test worker, each CLI the tests start, sam, cfn-lint, checkov) then compiles
# what it imports from source, every time: the CLI's imports take 4.3 s from source, 1.9 s from
# bytecode. The venvs and __pycache__ are the project's own (gitignored), so the targets write it.
unexport PYTHONDONTWRITEBYTECODE
ARGS ?=

.PHONY: help python dev tools lint format typecheck unit integration test-py check test demo demo-smoke bench chaos burst docs \
        validate transform build lock layer-requirements service-models deploy destroy e2e pr clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

python:
	@if [ -z "$(PYTHON313)" ]; then \
	  echo "error: python3.13 (the Lambda runtime) was not found. Install it (e.g. 'pyenv install 3.13.0'," >&2; \
	  echo "       or your OS package) so that 'python3.13' is on PATH, or run 'make PYTHON313=/path/to/python3.13 …'." >&2; \
	  exit 1; fi

# uv installs the pinned venvs (a fresh clone's three in 15 s from an empty cache; pip took minutes).
# It is pinned in dev.lock and comes from the dev venv's own pip; the dev venv keeps pip, which sam
# build's layer Makefile calls. Nothing is compiled at install: bytecode is written on first import.
UV := $(BIN)/uv
UV_PIN = $(shell grep -E '^uv==' requirements/dev.lock)
export UV_PYTHON_DOWNLOADS := never

$(VENV)/.installed: requirements/dev.lock pyproject.toml | python
	@[ -x $(PY) ] || $(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --no-compile $(UV_PIN)
	$(UV) pip install -q --python $(PY) --upgrade pip -r requirements/dev.lock
	$(UV) pip install -q --python $(PY) --no-deps -e .
	@touch $@

$(TOOLS)/.installed: requirements/tools.lock | python $(VENV)/.installed
	@[ -x $(TBIN)/python ] || $(UV) venv -q --python $(PYTHON313) $(TOOLS)
	$(UV) pip install -q --python $(TBIN)/python -r requirements/tools.lock
	@touch $@

$(CHECKOV)/.installed: requirements/checkov.lock | python $(VENV)/.installed
	@[ -x $(CBIN)/python ] || $(UV) venv -q --python $(PYTHON313) $(CHECKOV)
	$(UV) pip install -q --python $(CBIN)/python -r requirements/checkov.lock
	@touch $@

$(TRANSFORMED): template.yaml ops/gatekeeper_ops/sam_transform.py ops/gatekeeper_ops/stack.py $(TOOLS)/.installed
	PYTHONPATH=ops $(TBIN)/python -m gatekeeper_ops.sam_transform template.yaml $@

dev: $(VENV)/.installed ## create the dev venv (python3.13, pinned deps, the gatekeeper CLI)
tools: $(TOOLS)/.installed ## create the tools venv (aws-sam-cli, cfn-lint, cfn-lint-serverless)
transform: $(TRANSFORMED) ## template.yaml through the SAM transform, offline (.aws-sam/template.transformed.json)

# The architecture's one-page map is .importlinter (layers, boto3 at the edge, the core alone);
# complexity: no function above radon grade C (xenon).
lint: dev ## ruff lint + format check, import-layer contracts, complexity gate
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PYTHONPATH=layers/core:ops:. $(BIN)/lint-imports --no-cache
	$(BIN)/xenon --max-absolute C layers functions ops

format: dev ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: dev ## mypy (strict on the core and the emulator)
	$(BIN)/mypy

unit: dev ## unit tests only (both cores)
	$(BIN)/pytest -n 2 tests/unit

# The integration suites check every AWS call against the transformed template's IAM (tests/iam_contract.py).
integration: dev $(TRANSFORMED) ## integration tests (moto + the PrivateLink emulator, in-process)
	$(BIN)/pytest tests/integration

# Line coverage over everything (pyproject.toml says why not branch), and a stricter gate on the core package (the Lambda layer).
# --dist loadgroup: the modules whose tests share one expensive module fixture (the scripted demo,
# the recipes, the bench stack, the moto server) are marked xdist_group and stay on one worker, so it runs once.
test-py: dev $(TRANSFORMED)
	$(BIN)/pytest -n 2 --dist loadgroup --cov --cov-report=term-missing:skip-covered
	$(BIN)/coverage report --include='layers/core/*' --fail-under=90 > /dev/null \
	  || { $(BIN)/coverage report --include='layers/core/*' | tail -3; echo "core coverage is under 90%"; exit 1; }

layer-requirements: ## regenerate the layer's requirements.txt from runtime.lock
	@grep -E '^[A-Za-z0-9_.-]+(\[[^]]*\])?==' requirements/runtime.lock \
	  | grep -viE '^(boto3|botocore|s3transfer|jmespath|urllib3|python-dateutil|six)==' \
	  > layers/core/requirements.txt
	@echo "layers/core/requirements.txt regenerated from requirements/runtime.lock"

# The functions' clients load botocore models trimmed to the operations the core calls (cold start);
# tests/unit/test_service_models.py fails when they are stale (after `make lock` bumps botocore).
service-models: dev ## regenerate the trimmed botocore models in layers/core/gatekeeper/wiring/service_models
	$(PY) -m gatekeeper_ops.service_models

lock: dev ## re-resolve the pins (needs network to PyPI)
	cd requirements && ../$(BIN)/uv pip compile -q --python-version 3.13 runtime.in -o runtime.lock \
	  && ../$(BIN)/uv pip compile -q --python-version 3.13 dev.in -o dev.lock \
	  && ../$(BIN)/uv pip compile -q --python-version 3.13 tools.in -o tools.lock \
	  && ../$(BIN)/uv pip compile -q --python-version 3.13 checkov.in -o checkov.lock
	$(MAKE) layer-requirements

# cfn-lint sees template.yaml and, since SAM accepts things CloudFormation refuses, what the
# transform makes of it; the serverless rules read the SAM source; checkov the transformed template
# (suppressions, each justified: .checkov.yaml; serverless-rule ones: Metadata cfn-lint in template.yaml).
validate: tools $(CHECKOV)/.installed $(TRANSFORMED) ## cfn-lint (source + transformed), serverless rules, sam validate, checkov
	$(TBIN)/cfn-lint template.yaml
	$(TBIN)/cfn-lint $(TRANSFORMED)
	$(TBIN)/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
	$(TBIN)/sam validate --lint --region us-east-1
	BC_SKIP_MAPPING=TRUE $(CBIN)/checkov --config-file .checkov.yaml -f $(TRANSFORMED)

# The core layer ships bytecode (layers/core/Makefile): Lambda's /opt is read-only, so a module
# without it is compiled on every cold start. The check fails the build if one lacks it.
# sam build expands the template's Fn::ForEach (AWS::LanguageExtensions) to find what to build, and
# needs a value for its collection; the built template keeps the loop, so the deploy's
# EndpointServiceIds makes the per-service resources (this placeholder makes none).
BUILD_SERVICE_IDS := vpce-svc-00000000000000000
build: tools dev ## sam build (python3.13), then check the core layer's bytecode
	$(TBIN)/sam build --region us-east-1 --language-extensions --parameter-overrides EndpointServiceIds=$(BUILD_SERVICE_IDS)
	PYTHONPATH=ops $(PY) -m gatekeeper_ops.layer_bytecode .aws-sam/build/CoreLayer/python

demo: dev ## the whole flow on an embedded emulated AWS (ARGS="--requests 1000", "--keep-running")
	$(BIN)/gatekeeper-demo $(ARGS)

bench: dev ## issue 11's numbers: cold start vs floor, calls per outcome, project vs plain baseline, sweeps, peak RSS
	$(PY) -m tests.perf.bench $(ARGS)

chaos: dev ## fault-injection run: 300 requests at 20 % and 35 % faults (ARGS="--requests 500 --rate 0.5 --seed 7")
	$(PY) -m gatekeeper_ops.chaos $(ARGS)

burst: dev ## N requests within 1 s under EC2's token buckets, Lambda's concurrency in virtual time (ARGS="--requests 1000 --drained --services 3 --seed 7")
	$(PY) -m gatekeeper_ops.burst $(ARGS)

# The CLI reference comes from the CLI's help, the operator guide's recipes from running them on the
# sandbox; tests/unit/test_docs.py fails when the reference is stale or a hand-written page is over budget.
docs: dev ## regenerate docs/cli-reference.md and docs/operator-guide.md (recipes run on the sandbox); page budgets
	$(PY) -m gatekeeper_ops.docgen

demo-smoke: dev ## the scripted demo once; exits 1 if an outcome differs from demo-seed.yaml
	$(BIN)/gatekeeper-demo

# Two cores: the single-threaded steps run two at a time (make -j2; a failure fails the target), then
# pytest on both. --output-sync keeps each step's output together.
PARALLEL := --no-print-directory -j2 --output-sync=target

check: dev ## the inner loop: lint, types, unit and handler tests (under 2 min)
	$(MAKE) $(PARALLEL) lint typecheck unit

# No demo-smoke here: tests/integration/test_demo.py plays the same scripted demo and checks its exit status.
test: dev ## everything CI runs: lint, types, template checks, sam build, then all tests (demo smoke included)
	$(MAKE) $(PARALLEL) lint typecheck validate build
	$(MAKE) --no-print-directory test-py

pr: test ## alias: what CI runs

e2e: dev ## tests against a deployed stack (STACK_NAME, AWS credentials)
	$(BIN)/pytest tests/e2e -m e2e

deploy: build ## sam deploy (CONFIG_ENV=dev|prod)
	$(TBIN)/sam deploy --config-env $${CONFIG_ENV:-default}

destroy: tools ## delete the stack (CONFIG_ENV=dev|prod)
	$(TBIN)/sam delete --config-env $${CONFIG_ENV:-default}

clean: ## remove venvs and build output
	rm -rf $(VENV) $(TOOLS) $(CHECKOV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
