# cohortcast: the few verbs people use. `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash

# The Lambda runtime is python3.13: find one (pyenv's, or on PATH) for the venv and `sam build`.
PYTHON313 ?= $(shell for c in $$HOME/.pyenv/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13 /usr/bin/python3.13 python3.13; do \
	if PYENV_VERSION=$$(basename $$(dirname $$(dirname $$c)) 2>/dev/null) $$c -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then echo $$c; break; fi; done)
VENV := .venv
PY := $(VENV)/bin/python
# Fake credentials: nothing here ever talks to real AWS.
export AWS_DEFAULT_REGION ?= us-east-1
export AWS_ACCESS_KEY_ID ?= testing
export AWS_SECRET_ACCESS_KEY ?= testing
export SAM_CLI_TELEMETRY := 0
export POWERTOOLS_TRACE_DISABLED := 1
SAM_ENV := PATH="$(dir $(PYTHON313)):$(abspath $(VENV))/bin:$$PATH"

.PHONY: run test lint imports unit component integration node-sdks cfn-lint sam-validate checkov build bench soak demo deploy clean browser

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON313)" || { echo "python3.13 not found (install it, e.g. pyenv install 3.13)"; exit 1; }
	$(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

run: $(VENV)/.installed ## start the whole service locally (moto server + HTTP API on :3000)
	$(PY) -m local

test: lint imports cfn-lint sam-validate checkov unit component integration build ## everything CI runs

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The direction of dependencies (pyproject.toml [tool.importlinter], docs/architecture.md).
imports: $(VENV)/.installed
	$(VENV)/bin/lint-imports --no-cache

# Pure logic: no moto, sockets off (tests/unit/conftest.py). Twice, as component: the second run
# moves the wall clock 400 days ahead, so no test passes only on the day it was written.
unit: $(VENV)/.installed browser
	$(PY) -m pytest tests/unit -q -p no:cacheprovider -n 2
	COHORTCAST_TEST_WALL_CLOCK_SHIFT_DAYS=400 $(PY) -m pytest tests/unit -q -p no:cacheprovider -n 2

# Handlers and storage against moto in-process (the `aws` fixture of tests/conftest.py).
component: $(VENV)/.installed
	$(PY) -m pytest tests/component -q -p no:cacheprovider -n 2
	COHORTCAST_TEST_WALL_CLOCK_SHIFT_DAYS=400 $(PY) -m pytest tests/component -q -p no:cacheprovider -n 2

integration: $(VENV)/.installed node-sdks
	$(PY) -m pytest tests/integration -q -p no:cacheprovider

# The Node SDKs the integration tests drive (tests/integration/node), from its lock file.
NODE_SDKS := tests/integration/node
node-sdks: $(NODE_SDKS)/node_modules/.installed
$(NODE_SDKS)/node_modules/.installed: $(NODE_SDKS)/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: the Node SDK test will be skipped"; exit 0; }; \
	cd $(NODE_SDKS) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed

cfn-lint: $(VENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml

# checkov pins boto3==1.35.49 (the project needs boto3>=1.40), so it lives in its own venv.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov

$(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION):
	@test -n "$(PYTHON313)" || { echo "python3.13 not found (install it, e.g. pyenv install 3.13)"; exit 1; }
	$(PYTHON313) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

# Zero failed checks; each suppression is in the resource's Metadata with its reason (docs/operations.md).
# checkov exits 0 when it cannot parse the file, so a parsing error fails here explicitly.
checkov: $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
	@out=$$($(CHECKOV_VENV)/bin/checkov -f template.yaml --compact --quiet --skip-download); rc=$$?; echo "$$out"; \
	if grep -q "Parsing errors" <<< "$$out"; then echo "checkov could not parse template.yaml"; exit 1; fi; exit $$rc

sam-validate: $(VENV)/.installed
	$(SAM_ENV) $(VENV)/bin/sam validate --lint --template template.yaml

build: $(VENV)/.installed ## sam build (python3.13 runtime)
	$(SAM_ENV) $(VENV)/bin/sam build --parallel --template template.yaml

demo: $(VENV)/.installed ## demo users, segments and an announcement on the running `make run` stack
	$(PY) -m local.demo

bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) -m bench

soak: $(VENV)/.installed ## local stack under 10,000 events, a 5,000-row import, an announcement to 500: peak RSS, SIGTERM exit
	$(PY) -m bench.soak

deploy: build
	$(SAM_ENV) $(VENV)/bin/sam deploy --guided

# Headless Chromium for the rendered-email check (Debian package; best effort without root).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: the browser check will be skipped"; }

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .aws-sam .local
