# One entry point for newcomers and CI. `make test` and `make demo` install what they need.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
ENV ?= dev
FILES ?=
ARGS ?=
# make demo / make local: the job type of your FILES (dictation or conversation), and the
# local stack's port on 127.0.0.1 (0: any free one).
TYPE ?=
PORT ?= 4577
# make demo / make local: S3 user metadata for the run's uploads (contract 6; invented values
# please). The recipes read them from the environment ("$$AUTHOR"), so spaces and quotes
# in a value survive the shell. A <file>.meta.json sidecar replaces them for its file.
PATIENT ?=
ENCOUNTER ?=
AUTHOR ?=
NOTE_TYPE ?=
DEMO_METADATA = $(if $(PATIENT),--patient-id "$$PATIENT") \
	$(if $(ENCOUNTER),--encounter-id "$$ENCOUNTER") $(if $(AUTHOR),--author "$$AUTHOR") \
	$(if $(NOTE_TYPE),--note-type "$$NOTE_TYPE")
# jsii runs on the Node 22 that package.json pins, and `cdk` is the pinned CLI.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: install lint format typecheck test test-fast synth deploy bench simulate demo clean

CHECKOV_VENV := $(VENV)/checkov

# The handlers' dependencies layer (stacks/function.py::dependencies_layer): wheels for the
# functions' runtime and architecture (stacks/constants.py LAMBDA_RUNTIME, LAMBDA_ARCHITECTURE;
# tests/infra/test_dependencies_layer.py fails if these drift from them), so no Docker.
LAYER_DIR := build/lambda-layer
LAYER_STAMP := build/lambda-layer.installed
LAYER_PYTHON_VERSION := 3.13
LAYER_PLATFORM := manylinux2014_aarch64

install: $(VENV)/.installed node_modules/.installed $(CHECKOV_VENV)/.installed $(LAYER_STAMP)

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-lambda.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --quiet -r requirements-dev.txt
	touch $@

# checkov pins boto3 and packaging to versions that conflict with ours: a venv of its own
# (tests/infra/checkov_runner.py reads this stamp, and builds the venv itself if it is missing).
$(CHECKOV_VENV)/.installed: tests/infra/requirements-checkov.txt
	$(PYTHON) -m venv --clear $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --disable-pip-version-check --quiet -r $<
	cp $< $@

# Cleared first so a package dropped from the file leaves the layer too. No .pyc: /opt is
# read-only in Lambda, and without them the asset (and its hash) is the same on every rebuild.
# The stamp is a copy of the requirements the layer was built from: synth compares them.
# The Makefile is a prerequisite because the platform flags live here.
$(LAYER_STAMP): requirements-lambda.txt Makefile | $(VENV)/.installed
	rm -rf $(LAYER_DIR) $@
	$(BIN)/pip install --disable-pip-version-check --quiet --no-compile \
		--target $(LAYER_DIR)/python --platform $(LAYER_PLATFORM) --implementation cp \
		--python-version $(LAYER_PYTHON_VERSION) --only-binary=:all: -r requirements-lambda.txt
	cp requirements-lambda.txt $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app.py stacks lambdas devkit bench jobctl

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/pytest -n 2

test-fast: install
	$(BIN)/pytest -n 2 -m "not synth"

synth: install
	cdk synth --quiet

# Needs AWS credentials for the environment's account (see README "Deploying"). The outputs
# file is what `python -m jobctl --outputs-file cdk-outputs-$(ENV).json` reads.
deploy: install
	cdk deploy MedicalTranscription-$(ENV) --outputs-file cdk-outputs-$(ENV).json

# Speed and memory figures, then the simulation at scale (about 20 minutes in all).
bench: install
	$(BIN)/python bench/bench.py
	$(BIN)/python bench/simulate.py

# The real pipeline logic at 10,000 and 100,000 files, in virtual time (charts: sim-output/).
simulate: install
	$(BIN)/python bench/simulate.py

demo: install
	$(BIN)/python -m devkit.demo $(if $(TYPE),--type $(TYPE)) $(DEMO_METADATA) $(ARGS) $(FILES)

# The emulator as a server with the pipeline live behind it, until Ctrl-C.
.PHONY: local
local: install
	$(BIN)/python -m devkit.local_stack --port $(PORT) $(if $(TYPE),--type $(TYPE)) \
		$(DEMO_METADATA) $(ARGS) $(FILES)

clean:
	rm -rf build cdk.out .pytest_cache .ruff_cache .mypy_cache demo-output local-stack sim-output
