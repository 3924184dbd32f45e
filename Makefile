# trailkey developer tasks. The end-to-end tests and the demo run the real
# binary against a local moto server, installed into .venv from
# tests/requirements.txt.

PYTHON ?= python3
VENV := .venv

.PHONY: all test demo lint fuzz clean dist lambda-package lambda-zip bench $(VENV)

all: test

# `make .venv` builds the venv; the real target is a file inside it, so the
# venv is rebuilt when tests/requirements.txt changes.
$(VENV): $(VENV)/bin/moto_server

$(VENV)/bin/moto_server: tests/requirements.txt
	$(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -q -r tests/requirements.txt
	@touch $@

# `make dist`: the release binary with no runtime dependency beyond the kernel,
# packaged for download. On Linux it links glibc statically
# (`+crt-static`, a static-pie binary): no glibc version requirement, no
# shared library, no NSS module; glibc's own files and DNS lookups (built into
# libc since 2.34) read /etc/hosts and /etc/resolv.conf. The flags reach only
# this target: `--target` keeps them off build scripts and proc macros, and
# its own target dir keeps `cargo build` and `make test`'s cache as it is.
# Writes $(DIST_DIR)/trailkey-<version>-<target>.tar.gz and SHA256SUMS.
# tests/e2e/dist.rs runs the binary in an empty chroot (docs/testing.md).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
ifndef DIST_TARGET
DIST_TARGET := $(shell rustc -vV | sed -n 's/^host: //p')
endif
DIST_RUSTFLAGS ?= $(if $(findstring -linux-gnu,$(DIST_TARGET)),-C target-feature=+crt-static)
DIST_BUILD_DIR := $(TARGET_DIR)/dist-build
DIST_DIR := $(TARGET_DIR)/dist
DIST_BIN := $(DIST_BUILD_DIR)/$(DIST_TARGET)/release/trailkey
DIST_MAX_BYTES := 15000000
VERSION = $(shell cargo pkgid | sed 's/.*[#@]//')
DIST_NAME = trailkey-$(VERSION)-$(DIST_TARGET)

# Tests find moto_server and fixture.py's python through TRAILKEY_VENV, and
# the static binary tests/e2e/dist.rs runs in a chroot through TRAILKEY_DIST_BIN.
test demo: export TRAILKEY_VENV := $(CURDIR)/$(VENV)
test: export TRAILKEY_DIST_BIN := $(abspath $(DIST_BIN))
# Threads per test binary. The end-to-end tests (tests/e2e/, one binary) spend
# most of their time waiting on moto, on propagation windows and on the
# binary, so more of them than cores keeps the cores busy (docs/testing.md has
# the measurements). `cargo test` alone uses one thread per core.
TEST_THREADS ?= 8
test: export RUST_TEST_THREADS := $(TEST_THREADS)

# `make test` does not build the static binary (`make dist`: about 2 minutes
# after a change to trailkey's own code, 7 from nothing): tests/e2e/dist.rs checks
# it in a chroot when `make dist` has built it from this same source, and says
# NOT RUN otherwise. `.ci/run` runs `make dist` first, and with CI set a check
# that cannot run fails.
test: $(VENV)/bin/moto_server
	cargo test --workspace $(CARGO_TEST_ARGS)

dist:
	RUSTFLAGS="$(DIST_RUSTFLAGS)" cargo build --release --locked \
		--target $(DIST_TARGET) --target-dir $(DIST_BUILD_DIR)
	@size=$$(wc -c <$(DIST_BIN) | tr -d ' '); echo "$(DIST_BIN): $$size bytes"; \
		[ "$$size" -le $(DIST_MAX_BYTES) ] || { echo "over $(DIST_MAX_BYTES) bytes" >&2; exit 1; }
	@case "$(DIST_TARGET)" in *-linux-*) \
		file $(DIST_BIN); \
		file $(DIST_BIN) | grep -q 'static' || { echo "not statically linked" >&2; exit 1; };; \
	esac
	rm -rf $(DIST_DIR)/$(DIST_NAME) && mkdir -p $(DIST_DIR)/$(DIST_NAME)
	cp $(DIST_BIN) README.md LICENSE-APACHE LICENSE-MIT $(DIST_DIR)/$(DIST_NAME)/
	tar -C $(DIST_DIR) -czf $(DIST_DIR)/$(DIST_NAME).tar.gz $(DIST_NAME)
	rm -rf $(DIST_DIR)/$(DIST_NAME)
	cd $(DIST_DIR) && { command -v sha256sum >/dev/null && sha256sum $(DIST_NAME).tar.gz || shasum -a 256 $(DIST_NAME).tar.gz; } >SHA256SUMS
	@cat $(DIST_DIR)/SHA256SUMS

demo: $(VENV)/bin/moto_server
	cargo build
	tests/testkit/demo.sh

# `make lambda-package LAMBDA_CONFIG=path/to/trailkey.toml`: the deployment
# package of docs/examples/lambda/template.yaml, a zip with the static binary
# as `bootstrap` (mode 755) and the config as `trailkey.toml` at its root, with
# fixed timestamps. The config is checked with `trailkey validate` first.
# `lambda-zip` packages LAMBDA_BIN without building it (tests/e2e/dist.rs uses it).
LAMBDA_CONFIG ?= trailkey.toml
LAMBDA_BIN ?= $(DIST_BIN)
LAMBDA_ZIP ?= $(DIST_DIR)/trailkey-lambda-$(VERSION)-$(DIST_TARGET).zip

define LAMBDA_ZIP_PY
import sys, zipfile
binary, config, out = sys.argv[1:4]
with zipfile.ZipFile(out, "w") as z:
    for path, name, mode in ((binary, "bootstrap", 0o755), (config, "trailkey.toml", 0o644)):
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(path, "rb") as f:
            z.writestr(info, f.read())
print(out)
endef
export LAMBDA_ZIP_PY

lambda-package: dist lambda-zip

lambda-zip:
	$(LAMBDA_BIN) -c $(LAMBDA_CONFIG) validate >/dev/null
	@mkdir -p $(dir $(LAMBDA_ZIP))
	@$(PYTHON) -c "$$LAMBDA_ZIP_PY" $(LAMBDA_BIN) $(LAMBDA_CONFIG) $(LAMBDA_ZIP)

# `make lint`: rustfmt and clippy, then the GitHub Actions workflows (the
# repository's own and the example) against the workflow schema and zizmor's
# security audit, and the Lambda templates through cfn-lint, offline, from the
# pinned tools in .venv-lint: as written, then the main template once more for
# each mode (each KeyAccount in the management account, and RunFrom=SecurityTooling)
# with example values for its required parameters, so that cfn-lint checks each
# mode's resources and policies with the conditions resolved.
LINT_VENV := .venv-lint
WORKFLOWS := .github/workflows/ci.yml .github/workflows/release.yml docs/examples/github-actions.yml \
	docs/examples/github-actions-approve.yml
TEMPLATES := docs/examples/lambda/template.yaml docs/examples/lambda/security-tooling-forwarder.yaml \
	docs/examples/lambda/management-forwarder.yaml
TEMPLATE_EXAMPLE := CodeBucket=trailkey-code CodeKey=trailkey-lambda.zip \
	TrailBucket=aws-controltower-logs-222222222222-us-east-1 \
	SecurityToolingAccountId=111111111111 LogArchiveAccountId=222222222222
TEMPLATE_MODES := KeyAccount=SecurityTooling KeyAccount=Management \
	KeyAccount=SecurityTooling,RunFrom=SecurityTooling,ManagementAccountId=333333333333

$(LINT_VENV)/bin/zizmor: tests/lint-requirements.txt
	$(PYTHON) -m venv $(LINT_VENV) && $(LINT_VENV)/bin/pip install -q -r tests/lint-requirements.txt
	@touch $@

lint: $(LINT_VENV)/bin/zizmor
	cargo fmt --all --check && cargo clippy --workspace --all-targets -- -D warnings
	$(LINT_VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	$(LINT_VENV)/bin/zizmor --offline $(WORKFLOWS)
	$(LINT_VENV)/bin/cfn-lint $(TEMPLATES)
	for mode in $(TEMPLATE_MODES); do \
	  $(LINT_VENV)/bin/cfn-lint --parameters $$(echo $$mode | tr , ' ') $(TEMPLATE_EXAMPLE) \
	    -- docs/examples/lambda/template.yaml || exit 1; \
	done

# A long fuzz of the config parser and the key-policy normalizer/merger
# (tests/properties.rs), FUZZ_CASES cases per property; not part of `make test`.
# See docs/testing.md.
FUZZ_CASES ?= 200000
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) cargo test --release --test properties

clean:
	rm -rf $(VENV) $(LINT_VENV)

# `make bench`: trailkey (release build) against the same job done with the
# pinned AWS CLI, on a local moto server, with and without 50 ms of latency
# per request (tests/bench/, docs/performance.md). The AWS CLI gets its own
# venv so that its botocore does not meet moto's.
BENCH_VENV := .venv-bench
BENCH_RUNS ?= 10
BENCH_DELAY_MS ?= 50
GUARD_TESTS := reconcile::tests::rounds::a_no_op_plan_is_ten_calls_in_two_rounds \
	reconcile::tests::rounds::a_first_apply_with_its_verification_is_eighteen_calls_in_five_rounds \
	lambda::handler_tests::a_warm_lambda_invocation_on_a_converged_setup_is_seven_calls_in_one_round \
	lambda::warm_tests::a_warm_repair_of_the_trail_is_thirteen_calls_in_two_rounds \
	lambda::warm_tests::a_warm_repair_of_the_key_is_fourteen_calls_in_two_rounds \
	lambda::warm_tests::a_delegated_administrators_warm_invocation_is_eight_calls_in_one_round \
	reconcile::tests::landing_zone::a_no_op_plan_costs_three_calls_more_and_no_round_more \
	reconcile::tests::delegated::a_delegated_administrators_no_op_plan_is_ten_calls_in_two_rounds_without_assume_role \
	reconcile::tests::delegated::without_the_account_in_the_credentials_the_management_accounts_role_waits_for_sts

$(BENCH_VENV)/bin/aws: tests/bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV) && $(BENCH_VENV)/bin/pip install -q -r tests/bench/requirements.txt
	@touch $@

# `make bench BENCH_DIST=1` times the static binary of `make dist` instead.
BENCH_TRAILKEY := $(if $(BENCH_DIST),$(DIST_BIN),target/release/trailkey)

bench: $(VENV)/bin/moto_server $(BENCH_VENV)/bin/aws
	$(if $(BENCH_DIST),$(MAKE) dist,cargo build --release)
	@mkdir -p target/bench
	@echo "== guard tests: calls and rounds on the fake (paused clock, 50 ms a call)"
	@cargo test --quiet --lib -- --exact --nocapture --test-threads=1 $(GUARD_TESTS) >target/bench/guard.log 2>&1 \
		|| { cat target/bench/guard.log; exit 1; }
	@grep -E 'calls in [0-9]+ rounds' target/bench/guard.log
	@echo "== latency proxy self-test ($(BENCH_DELAY_MS) ms per request)"
	$(VENV)/bin/python tests/bench/latency_proxy.py --self-test --delay-ms $(BENCH_DELAY_MS)
	@echo "== trailkey vs AWS CLI ($(BENCH_RUNS) runs each)"
	$(VENV)/bin/python tests/bench/bench.py --trailkey $(BENCH_TRAILKEY) --venv $(VENV) \
		--aws $(BENCH_VENV)/bin/aws --runs $(BENCH_RUNS) --delay-ms $(BENCH_DELAY_MS) \
		--guard-log target/bench/guard.log --json target/bench/bench.json --markdown target/bench/bench.md
	@echo "== trailkey lambda: cold start and warm invocations (release build)"
	TRAILKEY_VENV=$(CURDIR)/$(VENV) cargo test --release --quiet --test e2e \
		lambda::lambda_cold_start_and_warm_invocation_times -- --ignored --nocapture
	@echo "== the no-op plan by who runs: the management account or Security Tooling, credentials naming their account or not"
	TRAILKEY_VENV=$(CURDIR)/$(VENV) cargo test --release --quiet --test e2e \
		delegated::no_op_plan_times_by_who_runs_and_what_the_credentials_say -- --ignored --nocapture
