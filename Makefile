# failover — developer entry points. `make test` is what CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
PY          := $(VENV)/bin/python
VENV_STAMP  := $(VENV)/.installed
# The linters (cfn-lint, checkov, ruff) live in their own venv: checkov pins boto3 exactly (1.35.x),
# which would downgrade the boto3/botocore that the emulator's moto runs on in .venv.
INFRA_VENV  := infra/.venv
INFRA_STAMP := $(INFRA_VENV)/.installed
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

PY_SOURCES := demo infra tests/emulator

.PHONY: lint
lint: $(INFRA_STAMP) ## rustfmt check, clippy -D warnings, ruff check and ruff format --check (ruff.toml)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	$(INFRA_VENV)/bin/ruff check $(PY_SOURCES)
	$(INFRA_VENV)/bin/ruff format --check $(PY_SOURCES)

# Debian's redis-server, for the drill and the Redis tests (root, as on CI; use sudo elsewhere).
.PHONY: redis
redis: ## Install Debian's redis-server if missing
	@command -v redis-server >/dev/null || { apt-get update && apt-get install -y redis-server; }

.PHONY: test
test: venv redis lint lint-infra test-emulator ## Lint, then every test (unit, mocks, emulator integration)
	FAILOVER_REQUIRE_EMULATOR=1 FAILOVER_REQUIRE_REDIS=1 FAILOVER_EMULATOR_PYTHON=$(CURDIR)/$(PY) cargo test --workspace --locked

.PHONY: test-emulator
test-emulator: venv ## Self-check of the emulator (tests/emulator/selftest.py); non-zero exit on any failure
	$(PY) tests/emulator/selftest.py

# ---- Coverage-guided fuzzing (not part of make test: it needs the nightly toolchain) -----------
# Each target runs FUZZ_SECONDS, starting from the sample events in events/ (or fuzz/seeds/ for
# the configuration targets) copied into fuzz/corpus/<target>/; libFuzzer keeps what it finds.
FUZZ_SECONDS     ?= 60
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_TARGETS     := reconciler_event rollback_event reconciler_config rollback_config

.PHONY: fuzz
fuzz: ## Fuzz event classification and configuration parsing of both functions, FUZZ_SECONDS each (nightly)
	@cargo +nightly --version >/dev/null 2>&1 || { echo "make fuzz needs the nightly toolchain: rustup toolchain install nightly"; exit 1; }
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version $(CARGO_FUZZ_VERSION)
	@for t in $(FUZZ_TARGETS); do mkdir -p fuzz/corpus/$$t; done
	cp events/redis-reconciler/*.json fuzz/corpus/reconciler_event/
	cp events/bluegreen-rollback/*.json fuzz/corpus/rollback_event/
	cp fuzz/seeds/reconciler_config/* fuzz/corpus/reconciler_config/
	cp fuzz/seeds/rollback_config/* fuzz/corpus/rollback_config/
	@mkdir -p fuzz/logs; for t in $(FUZZ_TARGETS); do \
	  echo "== $$t ($(FUZZ_SECONDS) s; log in fuzz/logs/$$t.log)"; \
	  (cd fuzz && cargo +nightly fuzz run $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048) \
	    > fuzz/logs/$$t.log 2>&1 || { tail -n 40 fuzz/logs/$$t.log; echo "FUZZ FAILED: $$t (crash input in fuzz/artifacts/$$t/)"; exit 1; }; \
	  grep -E '^Done [0-9]+ runs' fuzz/logs/$$t.log; ls fuzz/corpus/$$t | wc -l | sed 's/^/  corpus files: /'; \
	done

.PHONY: demo
demo: venv redis cargo-lambda ## The failover drill: real Redis dies, parameter moves, app recovers, green rolls back
	cargo build --release --locked -p redis-reconciler -p bluegreen-rollback
	cargo build --release --locked -p endpoint-client --example sample-app
	$(PY) demo/drill.py

.PHONY: bench
bench: venv redis cargo-lambda ## Run the drill 5 times; recovery figures for BENCHMARKS.md
	cargo build --release --locked -p redis-reconciler -p bluegreen-rollback
	cargo build --release --locked -p endpoint-client --example sample-app
	$(PY) demo/bench.py 5

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

# ---- Infrastructure: infra/template.yaml (AWS SAM) -------------------------------------------------
# (INFRA_VENV, the linters' venv, is defined at the top: `lint` needs it too.)
TEMPLATE    := infra/template.yaml
# checkov works offline: --skip-download and BC_SKIP_MAPPING=TRUE each stop its download of guidelines
# and platform configuration (without them it looks the platform up; with them it opens no socket).
CHECKOV_OFFLINE := BC_SKIP_MAPPING=TRUE CKV_GITHUB_CONFIG_FETCH_DATA=False

$(INFRA_STAMP): infra/requirements.txt
	python3 -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install --quiet --upgrade pip
	$(INFRA_VENV)/bin/pip install --quiet -r infra/requirements.txt
	touch $@

.PHONY: infra-venv
infra-venv: $(INFRA_STAMP) ## Venv with the pinned linters (infra/requirements.txt: cfn-lint, checkov, ruff)

.PHONY: lint-infra
lint-infra: $(INFRA_STAMP) ## cfn-lint (no errors or warnings), checkov, and infra/check_template.py (and its self-test) on the SAM template
	$(INFRA_VENV)/bin/cfn-lint $(TEMPLATE)
	env $(CHECKOV_OFFLINE) $(INFRA_VENV)/bin/checkov --quiet --compact --framework cloudformation --skip-download -f $(TEMPLATE)
	$(INFRA_VENV)/bin/python infra/check_template.py
	$(INFRA_VENV)/bin/python infra/check_template.py --self-test

# ---- Package and deploy ----------------------------------------------------------------------------
# cargo-lambda cross-compiles with zig (PyPI's ziglang, a dependency of cargo-lambda, found through the
# venv's python) and needs the Rust standard library of the target, which rustup adds once.
LAMBDA_ARCH        ?= arm64
PACKAGE_TARGET_DIR ?= target/package
PACKAGE_DIR        ?= $(PACKAGE_TARGET_DIR)/lambda
RUST_TARGET_arm64  := aarch64-unknown-linux-gnu
RUST_TARGET_x86_64 := x86_64-unknown-linux-gnu
SAM                ?= sam
SAM_DEPLOY_FLAGS   ?= --guided

.PHONY: package
package: cargo-lambda ## Deployable zips of both functions for arm64 (LAMBDA_ARCH): target/package/lambda/<function>/bootstrap.zip
	@test -n '$(RUST_TARGET_$(LAMBDA_ARCH))' || { echo "LAMBDA_ARCH must be arm64 or x86_64"; exit 1; }
	rustup target list --installed | grep -qx '$(RUST_TARGET_$(LAMBDA_ARCH))' || rustup target add '$(RUST_TARGET_$(LAMBDA_ARCH))'
	PATH='$(CURDIR)/$(VENV)/bin':"$$PATH" CARGO_TARGET_DIR='$(PACKAGE_TARGET_DIR)' \
	  $(CARGO_LAMBDA) lambda build --release --$(subst _,-,$(LAMBDA_ARCH)) --output-format zip --locked \
	  --package redis-reconciler --package bluegreen-rollback --lambda-dir '$(PACKAGE_DIR)'
	@ls -l $(PACKAGE_DIR)/redis-reconciler/bootstrap.zip $(PACKAGE_DIR)/bluegreen-rollback/bootstrap.zip

.PHONY: deploy
deploy: cargo-lambda ## sam build && sam deploy --guided from infra/ (needs AWS credentials and the SAM CLI: pip install aws-sam-cli)
	@command -v $(SAM) >/dev/null 2>&1 || { \
	  echo "The AWS SAM CLI ('$(SAM)') is not installed. It is on PyPI as aws-sam-cli, e.g.:"; \
	  echo "  python3 -m venv ~/.venvs/sam && ~/.venvs/sam/bin/pip install aws-sam-cli"; \
	  echo "  make deploy SAM=~/.venvs/sam/bin/sam"; \
	  exit 1; }
	cd infra && SAM_CLI_BETA_RUST_CARGO_LAMBDA=1 PATH='$(CURDIR)/$(VENV)/bin':"$$PATH" $(SAM) build
	cd infra && $(SAM) deploy $(SAM_DEPLOY_FLAGS)
