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
	FAILOVER_REQUIRE_EMULATOR=1 FAILOVER_EMULATOR_PYTHON=$(CURDIR)/$(PY) cargo test --workspace --locked

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

# ---- Run redis-reconciler by hand against the emulator -------------------------------------
# Three terminals:  make emulator  |  make seed-emulator && make watch-reconciler  |  make invoke-reconciler
# Everything listens on and talks to 127.0.0.1 only; the SDK gets dummy credentials.
EMULATOR_URL  ?= http://127.0.0.1:5005
REDIS_TARGETS ?= orders=/app/orders/redis,sessions=/app/sessions/redis
EVENT         ?= events/redis-reconciler/eventbridge-scheduled.json
LAMBDA_PORT   ?= 9000
CARGO_LAMBDA  := $(VENV)/bin/cargo-lambda

.PHONY: seed-emulator
seed-emulator: venv ## Create groups orders, sessions in the emulator (FAILOVER=orders: fail one over; SHOW="/app/orders/redis ...": print parameters)
	$(PY) tests/emulator/seed.py --endpoint-url $(EMULATOR_URL) $(if $(FAILOVER),--failover $(FAILOVER)) $(if $(SHOW),--show $(SHOW))

.PHONY: watch-reconciler
watch-reconciler: cargo-lambda ## cargo lambda watch on 127.0.0.1:9000 (LAMBDA_PORT), AWS SDK pointed at the emulator (EMULATOR_URL, REDIS_TARGETS)
	env -u AWS_PROFILE -u AWS_SESSION_TOKEN \
	  AWS_ENDPOINT_URL='$(EMULATOR_URL)' AWS_REGION=us-east-1 \
	  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
	  AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
	  REDIS_TARGETS='$(REDIS_TARGETS)' \
	  $(CARGO_LAMBDA) lambda watch --invoke-address 127.0.0.1 --invoke-port $(LAMBDA_PORT)

.PHONY: invoke-reconciler
invoke-reconciler: cargo-lambda ## Send EVENT (default: the EventBridge schedule) to the watched redis-reconciler
	$(CARGO_LAMBDA) lambda invoke redis-reconciler --invoke-address 127.0.0.1 --invoke-port $(LAMBDA_PORT) --data-file $(EVENT)
