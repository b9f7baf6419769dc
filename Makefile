# failover — developer entry points. `make test` is what CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The functions, one Lambda each (a crate and a binary of that name): every target below that builds,
# serves, benchmarks or packages them iterates this list. Adding one: CONTRIBUTING.md.
FUNCTIONS   := redis-reconciler bluegreen-rollback
FUNCTION_PACKAGES = $(foreach f,$(FUNCTIONS),-p $(f))

VENV        := .venv
VENV_PY     := $(VENV)/bin/python
# The Python scripts (demo/, bench/, tests/) import the local bed's package, tests/awsbed, through PYTHONPATH.
PY          := env PYTHONPATH=$(CURDIR)/tests $(VENV_PY)
VENV_REQS   := tests/awsbed/requirements.txt
VENV_STAMP  := $(VENV)/.installed
# The linters (cfn-lint, checkov, ruff) live in their own venv: checkov pins boto3 exactly (1.35.x),
# which would downgrade the boto3/botocore that the emulator's moto runs on in .venv.
INFRA_VENV  := infra/.venv
INFRA_STAMP := $(INFRA_VENV)/.installed
CARGO_LAMBDA_VERSION := 1.9.2

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV_STAMP): $(VENV_REQS)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r $(VENV_REQS)
	touch $@

.PHONY: venv
venv: $(VENV_STAMP) ## Python venv for the local bed: the pinned emulator (moto) and pytest

.PHONY: fmt
fmt: ## Format the code
	cargo fmt --all

PY_SOURCES := bench demo infra tests/awsbed tests/local_loop.py .ci/count.py .ci/times.py

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
test: venv redis cargo-lambda lint lint-infra test-emulator ## Lint, then every test (unit, mocks, emulator integration, the local loop)
	FAILOVER_REQUIRE_EMULATOR=1 FAILOVER_REQUIRE_REDIS=1 FAILOVER_EMULATOR_PYTHON=$(CURDIR)/$(VENV_PY) cargo test --workspace --locked
	$(PY) tests/local_loop.py

.PHONY: test-emulator
test-emulator: venv ## The emulator's test suite (pytest, tests/awsbed/tests); non-zero exit on any failure
	$(PY) -m pytest -q -p no:cacheprovider tests/awsbed/tests

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
	cargo build --release --locked $(FUNCTION_PACKAGES)
	cargo build --release --locked -p endpoint-client --example sample-app
	$(PY) demo/drill.py

BENCH_RUNS ?= 20

.PHONY: bench
bench: venv redis cargo-lambda ## Run the drill BENCH_RUNS (20) times; writes p50/p95/max recovery figures into BENCHMARKS.md
	cargo build --release --locked $(FUNCTION_PACKAGES)
	cargo build --release --locked -p endpoint-client --example sample-app
	$(PY) bench/recovery.py $(BENCH_RUNS)

.PHONY: bench-functions
bench-functions: venv ## Cold start, warm CPU, RSS, size and AWS calls of both functions beside a boto3 baseline; rewrites its BENCHMARKS.md section
	cargo build --release --locked $(FUNCTION_PACKAGES)
	$(PY) bench/functions.py

.PHONY: build
build: ## Release build of both functions (target/release/)
	cargo build --release --locked

.PHONY: emulator
emulator: venv ## Run the emulator in the foreground on 127.0.0.1:5005
	$(PY) -m awsbed.emulator --port 5005

$(VENV)/bin/cargo-lambda: $(VENV_STAMP)
	$(VENV)/bin/pip install --quiet cargo-lambda==$(CARGO_LAMBDA_VERSION)

.PHONY: cargo-lambda
cargo-lambda: $(VENV)/bin/cargo-lambda ## cargo-lambda from PyPI, into the venv

# ---- Run both functions by hand against the emulator (README.md, "Run the functions locally") -------
# Three terminals:  make emulator  |  make seed-emulator && make watch  |  make invoke FUNCTION=... EVENT=...
# Everything listens on and talks to 127.0.0.1 only; the SDK gets dummy credentials.
# events/local.env holds the functions' configuration for these runs, once: make reads it here (a
# variable given on the command line wins), tests/local_loop.py reads it too.
include events/local.env
LOCAL_VARS    := $(shell sed -n 's/^\([A-Z_][A-Z0-9_]*\)=.*/\1/p' events/local.env)
EMULATOR_URL  ?= http://127.0.0.1:5005
LAMBDA_PORT   ?= 9000
LOCAL_DIR     := target/local
# Written by make seed-emulator: the emulator's hosted zone for app.example.com.
ZONE_ID_FILE  := $(LOCAL_DIR)/hosted-zone-id
HOSTED_ZONE_ID ?= $(shell cat $(ZONE_ID_FILE) 2>/dev/null)
FUNCTION      ?= redis-reconciler
EVENT_redis-reconciler   := events/redis-reconciler/eventbridge-scheduled.json
EVENT_bluegreen-rollback := events/bluegreen-rollback/command-status.json
EVENT         ?= $(EVENT_$(FUNCTION))
CARGO_LAMBDA  := $(VENV)/bin/cargo-lambda
AWS_LOCAL_ENV := env -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_ENDPOINT_URL='$(EMULATOR_URL)' AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true \
  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

.PHONY: seed-emulator
seed-emulator: venv ## Groups orders, sessions and a hosted zone with app.example.com blue/green (STATE=published, FAILOVER=orders, WEIGHTS=75/25, SHOW="/app/orders/redis ...")
	@mkdir -p $(LOCAL_DIR)
	$(PY) -m awsbed.seed --endpoint-url $(EMULATOR_URL) --zone-id-file $(ZONE_ID_FILE) \
	  $(if $(STATE),--state $(STATE)) $(if $(FAILOVER),--failover $(FAILOVER)) \
	  $(if $(WEIGHTS),--weights $(WEIGHTS)) $(if $(SHOW),--show $(SHOW))

.PHONY: watch
watch: cargo-lambda ## Build, then serve both functions with cargo lambda watch on 127.0.0.1:$(LAMBDA_PORT), SDK pointed at the emulator (settings: events/local.env)
	@test -n '$(HOSTED_ZONE_ID)' || echo "note: HOSTED_ZONE_ID is unset (run make seed-emulator first, or pass HOSTED_ZONE_ID=...); bluegreen-rollback will answer every invoke with that configuration error"
	@echo "== building both functions as cargo lambda watch runs them (dev profile), so the first invoke does not wait for a compile"
	for f in $(FUNCTIONS); do cargo build --locked --bin $$f || exit; done
	@echo "== serving $(FUNCTIONS) on 127.0.0.1:$(LAMBDA_PORT) (Ctrl-C stops); AWS calls go to $(EMULATOR_URL)"
	@echo "   HOSTED_ZONE_ID=$(HOSTED_ZONE_ID) $(foreach v,$(LOCAL_VARS),$(v)=$($(v)))"
	$(AWS_LOCAL_ENV) HOSTED_ZONE_ID='$(HOSTED_ZONE_ID)' $(foreach v,$(LOCAL_VARS),$(v)='$($(v))') \
	  $(CARGO_LAMBDA) lambda watch --invoke-address 127.0.0.1 --invoke-port $(LAMBDA_PORT)

.PHONY: invoke
invoke: cargo-lambda ## Send EVENT (a file) to FUNCTION (redis-reconciler or bluegreen-rollback) served by make watch
	@case ' $(FUNCTIONS) ' in *' $(FUNCTION) '*) ;; *) echo "FUNCTION=$(FUNCTION): expected one of: $(FUNCTIONS)"; exit 2;; esac
	@test -f '$(EVENT)' || { echo "EVENT=$(EVENT): no such file (the samples are in events/$(FUNCTION)/)"; exit 2; }
	@(exec 3<>/dev/tcp/127.0.0.1/$(LAMBDA_PORT)) 2>/dev/null || { echo "nothing listens on 127.0.0.1:$(LAMBDA_PORT): start make watch first"; exit 2; }
	$(CARGO_LAMBDA) lambda invoke $(FUNCTION) --invoke-address 127.0.0.1 --invoke-port $(LAMBDA_PORT) --data-file $(EVENT)

.PHONY: test-local-loop
test-local-loop: venv cargo-lambda ## Run README.md's local commands as printed, and every sample event against events/README.md
	$(PY) tests/local_loop.py

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
infra-venv: $(INFRA_STAMP) ## Venv with the pinned linters (infra/requirements.txt: cfn-lint, checkov, parliament, ruff)

# The AWS SAM CLI, pinned in infra/sam-requirements.txt, in a venv of its own: its boto3 and cfn-lint pins
# clash with checkov's. SAM_QUIET keeps it off the network where nothing needs the network: no telemetry,
# and a state directory of its own (SAM_APP_DIR, read through __SAM_CLI_APP_DIR instead of ~/.aws-sam)
# whose last version check is dated 2100; otherwise validate and build ask PyPI for a newer release
# once a week. SAM_VALIDATE also gives dummy credentials: `sam validate` needs none, but a region.
SAM_VENV     := infra/.sam-venv
SAM_STAMP    := $(SAM_VENV)/.installed
SAM_APP_DIR  := $(SAM_VENV)/state
SAM_QUIET    := SAM_CLI_TELEMETRY=0 __SAM_CLI_APP_DIR='$(CURDIR)/$(SAM_APP_DIR)'
SAM_VALIDATE := env -u AWS_PROFILE -u AWS_SESSION_TOKEN $(SAM_QUIET) AWS_ACCESS_KEY_ID=dummy AWS_SECRET_ACCESS_KEY=dummy \
  $(SAM_VENV)/bin/sam validate --region us-east-1 -t $(TEMPLATE)

$(SAM_STAMP): infra/sam-requirements.txt
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r infra/sam-requirements.txt
	mkdir -p $(SAM_APP_DIR)
	echo '{"lastVersionCheck": 4102444800.0, "telemetryEnabled": false}' > $(SAM_APP_DIR)/metadata.json
	touch $@

.PHONY: sam-venv
sam-venv: $(SAM_STAMP) ## Venv with the pinned AWS SAM CLI (infra/sam-requirements.txt) for lint-infra, sam-build and deploy

.PHONY: lint-infra
lint-infra: $(INFRA_STAMP) $(SAM_STAMP) ## cfn-lint (no errors or warnings), checkov, sam validate (with and without --lint), infra/check_template.py and infra/check_policies.py (parliament; each with its self-test) on the SAM template
	$(INFRA_VENV)/bin/cfn-lint $(TEMPLATE)
	env $(CHECKOV_OFFLINE) $(INFRA_VENV)/bin/checkov --quiet --compact --framework cloudformation --skip-download -f $(TEMPLATE)
	$(SAM_VALIDATE)
	$(SAM_VALIDATE) --lint
	$(INFRA_VENV)/bin/python infra/check_template.py
	$(INFRA_VENV)/bin/python infra/check_template.py --self-test
	$(INFRA_VENV)/bin/python infra/check_policies.py
	$(INFRA_VENV)/bin/python infra/check_policies.py --self-test

# ---- Package and deploy ----------------------------------------------------------------------------
# cargo-lambda cross-compiles with zig (PyPI's ziglang, a dependency of cargo-lambda, found through the
# venv's python) and needs the Rust standard library of the target, which rustup adds once.
LAMBDA_ARCH        ?= arm64
PACKAGE_TARGET_DIR ?= target/package
PACKAGE_DIR        ?= $(PACKAGE_TARGET_DIR)/lambda
RUST_TARGET_arm64  := aarch64-unknown-linux-gnu
RUST_TARGET_x86_64 := x86_64-unknown-linux-gnu
SAM                ?= $(CURDIR)/$(SAM_VENV)/bin/sam
SAM_DEPLOY_FLAGS   ?= --guided
SAM_BUILD_FLAGS    ?=
# sam build runs `cargo lambda build` in each function's crate directory, one function after the other;
# both share this target directory (its own, like make package's, so it neither waits on nor disturbs
# cargo test in target/).
SAM_TARGET_DIR     ?= target/sam
# sam build compiles for the template's Architectures (arm64 in both functions; LAMBDA_ARCH does not
# apply to it): read here only to add the matching Rust target.
SAM_ARCH            = $(shell sed -n 's/^ *Architectures: *\[ *\([a-z0-9_]*\) *\] *$$/\1/p' $(TEMPLATE) | sort -u)

.PHONY: package
package: cargo-lambda ## Deployable zips of both functions for arm64 (LAMBDA_ARCH): target/package/lambda/<function>/bootstrap.zip
	@test -n '$(RUST_TARGET_$(LAMBDA_ARCH))' || { echo "LAMBDA_ARCH must be arm64 or x86_64"; exit 1; }
	rustup target list --installed | grep -qx '$(RUST_TARGET_$(LAMBDA_ARCH))' || rustup target add '$(RUST_TARGET_$(LAMBDA_ARCH))'
	PATH='$(CURDIR)/$(VENV)/bin':"$$PATH" CARGO_TARGET_DIR='$(PACKAGE_TARGET_DIR)' \
	  $(CARGO_LAMBDA) lambda build --release --$(subst _,-,$(LAMBDA_ARCH)) --output-format zip --locked \
	  $(foreach f,$(FUNCTIONS),--package $(f)) --lambda-dir '$(PACKAGE_DIR)'
	@ls -l $(foreach f,$(FUNCTIONS),$(PACKAGE_DIR)/$(f)/bootstrap.zip)

.PHONY: sam-build
sam-build: cargo-lambda $(if $(filter $(CURDIR)/$(SAM_VENV)/bin/sam,$(SAM)),$(SAM_STAMP)) ## sam build in infra/, as make deploy runs it: both functions for the template's architecture into infra/.aws-sam/build (slow, not in make test)
	@command -v '$(SAM)' >/dev/null 2>&1 || { echo "SAM='$(SAM)' is not an executable; leave SAM unset for the pinned infra/.sam-venv/bin/sam"; exit 1; }
	@test -n '$(RUST_TARGET_$(SAM_ARCH))' || { echo "$(TEMPLATE): expected one Architectures value, arm64 or x86_64, for both functions; found '$(SAM_ARCH)'"; exit 1; }
	rustup target list --installed | grep -qx '$(RUST_TARGET_$(SAM_ARCH))' || rustup target add '$(RUST_TARGET_$(SAM_ARCH))'
	cd infra && env $(SAM_QUIET) SAM_CLI_BETA_RUST_CARGO_LAMBDA=1 CARGO_TARGET_DIR='$(CURDIR)/$(SAM_TARGET_DIR)' \
	  PATH='$(CURDIR)/$(VENV)/bin':"$$PATH" '$(SAM)' build $(SAM_BUILD_FLAGS)
	@ls -l infra/.aws-sam/build/RedisReconcilerFunction/bootstrap infra/.aws-sam/build/BluegreenRollbackFunction/bootstrap

.PHONY: deploy
deploy: sam-build ## make sam-build, then sam deploy --guided from infra/ (needs AWS credentials; SAM_DEPLOY_FLAGS)
	cd infra && '$(SAM)' deploy $(SAM_DEPLOY_FLAGS)
