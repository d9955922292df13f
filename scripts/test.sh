#!/usr/bin/env bash
# The README's test command: installs what is missing, builds with -Werror and
# runs the whole suite three times: a plain build, an ASan+UBSan build, and a
# clang libFuzzer build for the fuzz smoke runs. Prints one closing line
# "N passed, N failed" over all of them; exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

jobs=$(nproc)
passed=0
failed=0
status=0

count_results() {
        # meson writes one JSON object per test to testlog.json
        python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
ok = bad = 0
with open(sys.argv[1]) as f:
    for line in f:
        r = json.loads(line)
        if r.get("result") in ("OK", "EXPECTEDFAIL", "SKIP"):
            ok += 1
        else:
            bad += 1
print(ok, bad)
PY
}

run_suite() {
        local dir=$1; shift
        local setup_args=("$@")
        if [ -d "$dir" ]; then
                meson setup --reconfigure "$dir" "${setup_args[@]}" >/dev/null
        else
                meson setup "$dir" "${setup_args[@]}" >/dev/null
        fi
        ninja -C "$dir" -j "$jobs"
        local rc=0
        meson test -C "$dir" --print-errorlogs --num-processes "$jobs" ${SUITES:-} || rc=$?
        read -r ok bad < <(count_results "$dir")
        passed=$((passed + ok))
        failed=$((failed + bad))
        [ $rc -eq 0 ] || status=1
}

# The system suite needs a prefix /usr build; it runs once, in build-system below.
echo "== plain build (-Werror)"
SUITES="--no-suite system" run_suite build -Dwerror=true

echo "== ASan + UBSan build"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
SUITES="--no-suite system" run_suite build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false

echo "== system tests (a real systemd booted in a namespace on an overlay of /; prefix /usr build)"
DAEMONEYE_SYSTEM_TESTS=require SUITES="--suite system" run_suite build-system -Dwerror=true \
        --prefix=/usr --sysconfdir=/etc --localstatedir=/var -Dbenchmarks=false

echo "== clang libFuzzer build (fuzz smoke runs)"
CC=clang SUITES="--suite fuzz" run_suite build-fuzz -Dwerror=true -Dfuzzing=true \
        -Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=false

echo
echo "$passed passed, $failed failed"
exit $status
