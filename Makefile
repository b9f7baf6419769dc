# failover — developer entry points. `make test` is what CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
PY          := $(VENV)/bin/python
VENV_STAMP  := $(VENV)/.installed
CARGO_LAMBDA_VERSION := 1.9.2

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV_STAMP): tests/emulator/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r tests/emulator/requirements.txt
	touch $@

.PHONY: venv
venv: $(VENV_STAMP) ## Python venv with the pinned emulator (moto)

.PHONY: fmt
fmt: ## Format the code
	cargo fmt --all

.PHONY: lint
lint: ## rustfmt check and clippy -D warnings
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

.PHONY: test
test: venv lint ## Lint, then every test (unit, mocks, emulator integration)
	FAILOVER_REQUIRE_EMULATOR=1 FAILOVER_EMULATOR_PYTHON=$(PY) cargo test --workspace --locked

.PHONY: build
build: ## Release build of both functions (target/release/)
	cargo build --release --locked

.PHONY: emulator
emulator: venv ## Run the emulator in the foreground on 127.0.0.1:5005
	$(PY) tests/emulator/failover_emulator.py --port 5005

$(VENV)/bin/cargo-lambda: $(VENV_STAMP)
	$(VENV)/bin/pip install --quiet cargo-lambda==$(CARGO_LAMBDA_VERSION)

.PHONY: cargo-lambda
cargo-lambda: $(VENV)/bin/cargo-lambda ## cargo-lambda from PyPI, into the venv
