# trailkey developer tasks. The end-to-end tests and the demo run the real
# binary against a local moto server, installed into .venv from
# tests/requirements.txt.

PYTHON ?= python3
VENV := .venv

.PHONY: all test demo lint clean $(VENV)

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

clean:
	rm -rf $(VENV)
