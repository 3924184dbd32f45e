#!/usr/bin/env bash
# A walk through trailkey against a local AWS emulator (moto): plan, apply,
# plan again, a change made behind trailkey's back, and the repair.
#
# Run it with `make demo` (builds the venv and the binary first). Nothing here
# talks to real AWS: every call goes to a moto server on 127.0.0.1 that this
# script starts and stops, with dummy credentials.
#
# Environment: TRAILKEY_VENV (default: <repo>/.venv), TRAILKEY_BIN (default:
# <repo>/target/debug/trailkey).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${TRAILKEY_VENV:-$ROOT/.venv}"
TRAILKEY="${TRAILKEY_BIN:-$ROOT/target/debug/trailkey}"
PYTHON="$VENV/bin/python"
FIXTURE="$ROOT/tests/testkit/fixture.py"

if [[ -t 1 ]]; then BOLD=$'\033[1m' RED=$'\033[31m' PLAIN=$'\033[0m'; else BOLD="" RED="" PLAIN=""; fi
heading() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$PLAIN"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[[ -x "$VENV/bin/moto_server" ]] || die "no moto in $VENV: run 'make .venv' (or 'make demo')"
[[ -x "$TRAILKEY" ]] || die "no trailkey binary at $TRAILKEY: run 'cargo build' (or 'make demo')"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/trailkey-demo.XXXXXX")"
MOTO_PID=""
cleanup() {
    if [[ -n "$MOTO_PID" ]]; then
        kill "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- moto server
heading "Starting a local AWS emulator (moto)"
PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
MOTO_RECORDER_FILEPATH="$WORK/moto_recording" \
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
ENDPOINT="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
    if "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "$ENDPOINT/moto-api/" 2>/dev/null; then
        break
    fi
    kill -0 "$MOTO_PID" 2>/dev/null || { cat "$WORK/moto.log" >&2; die "moto_server exited"; }
    sleep 0.2
done
"$PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "$ENDPOINT/moto-api/" 2>/dev/null || { cat "$WORK/moto.log" >&2; die "moto_server did not answer on $ENDPOINT"; }
note "moto is listening on $ENDPOINT"

# Point every AWS client (trailkey's SDK and the fixture) at moto, with dummy
# credentials, and keep any real AWS profile or credentials file out of it.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_REGION
export AWS_ENDPOINT_URL="$ENDPOINT"
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE="$WORK/no-aws-config"
export AWS_SHARED_CREDENTIALS_FILE="$WORK/no-aws-credentials"

# ----------------------------------------------------------------------- seed
heading "Creating an organization, its accounts and an unencrypted organization trail"
CONFIG="$WORK/trailkey.toml"
"$PYTHON" "$FIXTURE" seed >"$WORK/seed.json"
seed_field() { "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$WORK/seed.json" "$1"; }
SECURITY_TOOLING="$(seed_field security_tooling_account)"
TRAIL="$(seed_field trail_name)"
note "management account:       $(seed_field management_account)"
note "Security Tooling account:  $SECURITY_TOOLING"
note "Log Archive account:       $(seed_field log_archive_account)"
note "trail:                     $(seed_field trail_arn)"
note "log bucket:                $(seed_field bucket)"
# ---------------------------------------------------------------------- steps
FAILURES=0
# run_step EXPECTED_EXIT_CODE WHAT_IT_SHOWS -- COMMAND...
run_step() {
    local expected="$1" title="$2"
    shift 3
    heading "$title"
    local shown=() arg
    for arg in "$@"; do
        case "$arg" in
            "$TRAILKEY") shown+=(trailkey) ;;
            "$PYTHON") ;;
            "$FIXTURE") shown+=(fixture.py) ;;
            *) shown+=("$arg") ;;
        esac
    done
    printf '    $ %s\n\n' "${shown[*]}"
    local code=0
    "$@" || code=$?
    if [[ "$code" == "$expected" ]]; then
        printf '\n    exit code %s, as expected\n' "$code"
    else
        printf '\n    %sexit code %s, expected %s%s\n' "$RED" "$code" "$expected" "$PLAIN"
        FAILURES=$((FAILURES + 1))
    fi
}

run_step 0 "0. Init: read the organization and write a config ($CONFIG)" \
    -- "$TRAILKEY" -c "$CONFIG" init
heading "The config init wrote"
sed 's/^/    /' "$CONFIG"
run_step 2 "1. Plan: the key, alias, policy and rotation are missing, the trail is unencrypted (exit 2 = changes)" \
    -- "$TRAILKEY" -c "$CONFIG" plan --detailed-exitcode
run_step 0 "2. Apply: create the key in Security Tooling and point the trail at it" \
    -- "$TRAILKEY" -c "$CONFIG" apply --auto-approve
run_step 0 "3. Plan again: nothing left to do (exit 0 = no changes)" \
    -- "$TRAILKEY" -c "$CONFIG" plan --detailed-exitcode
run_step 0 "4. Someone removes the trail's encryption behind trailkey's back" \
    -- "$PYTHON" "$FIXTURE" drift trail-unencrypt --security-tooling "$SECURITY_TOOLING" --trail "$TRAIL"
run_step 2 "5. Plan: trailkey notices the drift (exit 2)" \
    -- "$TRAILKEY" -c "$CONFIG" plan --detailed-exitcode
run_step 0 "6. Apply: repair it" \
    -- "$TRAILKEY" -c "$CONFIG" apply --auto-approve
run_step 0 "7. Plan: in line again (exit 0)" \
    -- "$TRAILKEY" -c "$CONFIG" plan --detailed-exitcode

# -------------------------------------------------------------------- summary
heading "What is in the accounts now"
"$PYTHON" "$FIXTURE" state --security-tooling "$SECURITY_TOOLING" --trail "$TRAIL" >"$WORK/state.json"
"$PYTHON" - "$WORK/state.json" "$RED" "$PLAIN" <<'PY' || FAILURES=$((FAILURES + 1))
import json
import sys

state = json.load(open(sys.argv[1]))
trail = state["trail"] or {}
by_id = {key["key_id"]: key for key in state["keys"]}
for alias in state["aliases"]:
    key = by_id.get(alias["target_key_id"], {})
    print(f"    alias:            {alias['name']} -> {key.get('arn', alias['target_key_id'])}")
    print(f"    key state:        {key.get('key_state')}")
    print(f"    rotation enabled: {key.get('rotation_enabled')}")
if not state["aliases"]:
    print("    alias:            (none)")
print(f"    trail:            {trail.get('arn')}")
print(f"    trail KmsKeyId:   {trail.get('kms_key_id') or '(not encrypted)'}")
if trail.get("kms_key_id") not in {key["arn"] for key in state["keys"]}:
    red, plain = sys.argv[2:4]
    print(f"    {red}the trail does not point at a key ARN of the Security Tooling account{plain}")
    sys.exit(1)
PY

heading "Done"
if [[ "$FAILURES" -ne 0 ]]; then
    note "$FAILURES step(s) did not end as expected"
    exit 1
fi
note "every step ended as expected"
