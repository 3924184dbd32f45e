# trailkey developer tasks. The end-to-end tests and the demo run the real
# binary against a local moto server, installed into .venv from
# tests/requirements.txt.

PYTHON ?= python3
VENV := .venv

.PHONY: all test demo lint fuzz clean $(VENV)

all: test

# `make .venv` builds the venv; the real target is a file inside it, so the
# venv is rebuilt when tests/requirements.txt changes.
$(VENV): $(VENV)/bin/moto_server

$(VENV)/bin/moto_server: tests/requirements.txt
	$(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -q -r tests/requirements.txt
	@touch $@

# Tests find moto_server and fixture.py's python through TRAILKEY_VENV.
test demo: export TRAILKEY_VENV := $(CURDIR)/$(VENV)

test: $(VENV)/bin/moto_server
	cargo test $(CARGO_TEST_ARGS)

demo: $(VENV)/bin/moto_server
	cargo build
	tests/support/demo.sh

lint:
	cargo fmt --check && cargo clippy --all-targets -- -D warnings

# A long fuzz of the config parser and the key-policy normalizer/merger
# (tests/properties.rs), FUZZ_CASES cases per property; not part of `make test`.
# See docs/testing.md.
FUZZ_CASES ?= 200000
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) cargo test --release --test properties

clean:
	rm -rf $(VENV)

# `make bench`: trailkey (release build) against the same job done with the
# pinned AWS CLI, on a local moto server, with and without 50 ms of latency
# per request (tests/bench/, docs/performance.md). The AWS CLI gets its own
# venv so that its botocore does not meet moto's.
BENCH_VENV := .venv-bench
BENCH_RUNS ?= 10
BENCH_DELAY_MS ?= 50
GUARD_TESTS := apply::tests::a_no_op_plan_is_ten_calls_in_two_rounds \
	apply::tests::a_first_apply_with_its_verification_is_eighteen_calls_in_five_rounds

$(BENCH_VENV)/bin/aws: tests/bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV) && $(BENCH_VENV)/bin/pip install -q -r tests/bench/requirements.txt
	@touch $@

bench: $(VENV)/bin/moto_server $(BENCH_VENV)/bin/aws
	cargo build --release
	@mkdir -p target/bench
	@echo "== guard tests: calls and rounds on the fake (paused clock, 50 ms a call)"
	@cargo test --quiet --lib -- --exact --nocapture --test-threads=1 $(GUARD_TESTS) >target/bench/guard.log 2>&1 \
		|| { cat target/bench/guard.log; exit 1; }
	@grep -E 'calls in [0-9]+ rounds' target/bench/guard.log
	@echo "== latency proxy self-test ($(BENCH_DELAY_MS) ms per request)"
	$(VENV)/bin/python tests/bench/latency_proxy.py --self-test --delay-ms $(BENCH_DELAY_MS)
	@echo "== trailkey vs AWS CLI ($(BENCH_RUNS) runs each)"
	$(VENV)/bin/python tests/bench/bench.py --trailkey target/release/trailkey --venv $(VENV) \
		--aws $(BENCH_VENV)/bin/aws --runs $(BENCH_RUNS) --delay-ms $(BENCH_DELAY_MS) \
		--guard-log target/bench/guard.log --json target/bench/bench.json --markdown target/bench/bench.md
	@echo "== trailkey lambda: cold start and warm invocations (release build)"
	TRAILKEY_VENV=$(CURDIR)/$(VENV) cargo test --release --quiet --test lambda \
		lambda_cold_start_and_warm_invocation_times -- --ignored --nocapture
