#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# daemoneye-cli publish/watch against a real daemoneye-agent listening on a
# socket in a temporary directory. Needs DAEMONEYE_AGENT and DAEMONEYE_CLI
# (set by meson); python3 parses the JSON output.
#
# A watcher's subscription is live only some time after it starts, so no test
# publishes once and hopes: each publishes until the watcher printed
# something (publish_until), and then checks what it printed.
set -eu

AGENT=${DAEMONEYE_AGENT:?DAEMONEYE_AGENT must name the daemoneye-agent binary}
CLI=${DAEMONEYE_CLI:?DAEMONEYE_CLI must name the daemoneye-cli binary}
BULK_LINES=1000000
# Streaming keeps the publisher's peak RSS far below what buffering 1M
# envelopes would take (over 100 MiB).
BULK_MAX_RSS_KIB=$((64 * 1024))
# Under ASan, freed memory sits in a quarantine (256 MiB by default) that says
# nothing about our memory use: shrink it for the publisher, and allow for the
# shadow memory on top.
bulk_env=()
if ldd "$CLI" 2>/dev/null | grep -q libasan; then
        bulk_env=("ASAN_OPTIONS=${ASAN_OPTIONS:-}:quarantine_size_mb=16")
        BULK_MAX_RSS_KIB=$((96 * 1024))
fi

unset DAEMONEYE_SOCKET
tmp=$(mktemp -d)
sock=$tmp/eventbus.sock
agent_pid=
watch_pids=
tests_run=0

cleanup() {
        local status=$? pid
        for pid in $watch_pids $agent_pid; do
                kill "$pid" 2>/dev/null || true
        done
        for pid in $watch_pids $agent_pid; do
                wait "$pid" 2>/dev/null || true
        done
        if [ "$status" -ne 0 ] && [ -s "$tmp/agent.log" ]; then
                echo "# last lines of the agent's log:"
                tail -n 30 "$tmp/agent.log" | sed 's/^/#   /'
        fi
        rm -rf "$tmp"
        exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
        echo "not ok - $*"
        exit 1
}

pass() {
        tests_run=$((tests_run + 1))
        echo "ok $tests_run - $*"
}

cli() {
        "$CLI" --socket "$sock" "$@"
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 20 ms.
wait_for() {
        local tries=$(($1 * 50)) what=$2
        shift 2
        until "$@"; do
                tries=$((tries - 1))
                [ "$tries" -gt 0 ] || fail "timed out waiting for $what"
                sleep 0.02
        done
}

# start_watch OUTFILE GLOBAL-OPTION... watch ARGS...: a watcher in the
# background whose stdout is a pipe, not a file, so its flushing is that of a
# real pipeline; sets $watch_pid.
start_watch() {
        local out=$1
        shift
        mkfifo "$out.fifo"
        cat "$out.fifo" >"$out" &
        echo $! >"$out.reader-pid"
        "$CLI" "$@" >"$out.fifo" 2>"$out.err" &
        watch_pid=$!
        echo "$watch_pid" >"$out.pid"
        watch_pids="$watch_pids $watch_pid $(cat "$out.reader-pid")"
}

# finish_watch OUTFILE: waits for that watcher and its reader; it must exit 0.
finish_watch() {
        local out=$1 status=0
        wait "$(cat "$out.pid")" || status=$?
        [ "$status" -eq 0 ] || fail "watch exited $status: $(cat "$out.err")"
        wait "$(cat "$out.reader-pid")"
}

# publish_until FILE COMMAND...: runs COMMAND (a publication) until FILE is not empty.
publish_until() {
        local file=$1 tries=500
        shift
        while [ ! -s "$file" ]; do
                "$@"
                tries=$((tries - 1))
                [ "$tries" -gt 0 ] || fail "nothing arrived in $(basename "$file") after 500 publications"
                sleep 0.02
        done
}

# expect_exit CODE DESCRIPTION COMMAND...: COMMAND must exit CODE with one "daemoneye-cli: " line on stderr.
expect_exit() {
        local code=$1 what=$2 status=0
        shift 2
        "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
        [ "$status" -eq "$code" ] || fail "$what: exit $status, expected $code: $(cat "$tmp/err")"
        if [ "$code" -ne 0 ]; then
                if [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -q '^daemoneye-cli: ' "$tmp/err"; then
                        fail "$what: stderr is not one 'daemoneye-cli: …' line: $(cat "$tmp/err")"
                fi
        fi
}

is_socket() {
        kill -0 "$agent_pid" 2>/dev/null || fail "daemoneye-agent exited: $(tail -n 5 "$tmp/agent.log")"
        [ -S "$sock" ]
}

cat >"$tmp/daemoneye.conf" <<EOF
[broker]
socket_path=$sock
# Room for the whole bulk run, and a loud failure instead of silent drops.
message_buffer_size=2000000
drop_policy=disconnect
EOF

"$AGENT" --config "$tmp/daemoneye.conf" >"$tmp/agent.log" 2>&1 &
agent_pid=$!
wait_for 20 "the agent's socket $sock" is_socket
pass "agent listens on $sock"

# --- usage, --help, --version, exit codes ------------------------------------

expect_exit 0 "--version" "$CLI" --version
grep -q '^daemoneye-cli [0-9]' "$tmp/out" || fail "--version printed: $(cat "$tmp/out")"
for args in "--help" "publish --help" "watch --help"; do
        # shellcheck disable=SC2086 # split on purpose
        expect_exit 0 "$args" "$CLI" $args
        grep -q 'Usage:' "$tmp/out" || fail "$args printed no usage"
done
pass "--version and --help"

expect_exit 2 "wildcard topic" cli publish 'events.#' --data x
grep -q "events\.#" "$tmp/err" || fail "wildcard topic: the message does not name the topic: $(cat "$tmp/err")"
expect_exit 2 "invalid topic" cli publish 'events..x' --data x
expect_exit 2 "unknown option" cli publish events.x --no-such-option
expect_exit 2 "unknown global option" "$CLI" --no-such-option watch x
expect_exit 2 "unknown command" cli frobnicate
expect_exit 2 "no command" "$CLI"
expect_exit 2 "invalid pattern" cli watch 'events.#.x'
expect_exit 2 "--data with --lines" cli publish events.x --data x --lines
expect_exit 2 "bad --tag" cli publish events.x --data x --tag novalue
expect_exit 2 "bad --type" cli publish events.x --data x --type rpc
pass "usage errors exit 2"

expect_exit 4 "missing socket" "$CLI" --socket "$tmp/absent.sock" publish events.x --data x
grep -q 'is daemoneye-agent running?' "$tmp/err" || fail "missing socket: $(cat "$tmp/err")"
expect_exit 4 "missing socket (watch)" env DAEMONEYE_SOCKET="$tmp/absent.sock" "$CLI" watch 'events.#'
: >"$tmp/not-listening.sock.txt"
expect_exit 4 "socket path not a socket" "$CLI" --socket "$tmp/not-listening.sock.txt" watch 'events.#'
pass "agent not running exits 4"

# An unprivileged user may not use the root-owned 0660 socket.
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null &&
        setpriv --reuid=65534 --regid=65534 --clear-groups "$CLI" --version >/dev/null 2>&1; then
        chmod 0711 "$tmp"
        expect_exit 3 "permission denied" setpriv --reuid=65534 --regid=65534 --clear-groups \
                "$CLI" --socket "$sock" publish events.x --data x
        chmod 0700 "$tmp"
        pass "EACCES on the socket exits 3"
else
        echo "ok - # SKIP EACCES test: needs root and setpriv"
fi

# --- publish and watch -------------------------------------------------------

# The socket from --config, as an administrator would find it.
start_watch "$tmp/w1" --config "$tmp/daemoneye.conf" watch 'events.#' --count 1
publish_until "$tmp/w1" cli publish events.process.lifecycle --data hi
finish_watch "$tmp/w1"
[ "$(cat "$tmp/w1")" = "events.process.lifecycle hi" ] || fail "watch --count 1 printed: $(cat "$tmp/w1")"
pass "watch --count 1 prints 'TOPIC PAYLOAD' and exits 0"

expect_exit 0 "publish --json" cli --json publish events.json.nobody --data x
python3 -c 'import json, sys; assert json.load(sys.stdin) == {"published": 1}' <"$tmp/out" ||
        fail "publish --json printed: $(cat "$tmp/out")"
pass "publish --json prints {\"published\": 1}"

start_watch "$tmp/w2" --socket "$sock" watch --json 'events.process.+' --count 1
publish_until "$tmp/w2" cli publish events.process.metadata --data 'héllo wörld' --type control \
        --payload-type daemoneye.test.Greeting --tag host=alpha --tag stage=2 --parent parent-42
finish_watch "$tmp/w2"
python3 - "$tmp/w2" <<'PY' || fail "watch --json printed: $(cat "$tmp/w2")"
import json, sys, time, uuid
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert len(lines) == 1, lines
m = json.loads(lines[0])
assert m["topic"] == "events.process.metadata", m
assert m["message_type"] == "control", m
assert m["payload"] == "héllo wörld", m
assert "payload_base64" not in m, m
assert m["payload_type"] == "daemoneye.test.Greeting", m
assert m["sender"].startswith("daemoneye-cli-"), m
assert abs(m["timestamp_us"] / 1e6 - time.time()) < 60, m
c = m["correlation"]
uuid.UUID(c["correlation_id"])
assert c["parent_correlation_id"] == "parent-42", c
assert c["root_correlation_id"], c
assert c["sequence_number"] == 1, c
assert c["workflow_stage"] == "", c
assert c["tags"] == {"host": "alpha", "stage": "2"}, c
PY
pass "watch --json prints every envelope field"

# Payloads that are not one line of text are shown as base64 (here read from stdin as one message).
printf '\000\001\002\377' >"$tmp/binary"
start_watch "$tmp/w3" --socket "$sock" watch 'bin.#' --count 1
publish_binary() {
        cli publish bin.data <"$tmp/binary"
}
publish_until "$tmp/w3" publish_binary
finish_watch "$tmp/w3"
[ "$(cat "$tmp/w3")" = "bin.data base64:AAEC/w==" ] || fail "binary payload printed as: $(cat "$tmp/w3")"

start_watch "$tmp/w4" --socket "$sock" --json watch 'bin.#' --count 1
publish_until "$tmp/w4" publish_binary
finish_watch "$tmp/w4"
python3 -c 'import json, sys; m = json.load(sys.stdin); assert m["payload_base64"] == "AAEC/w==" and "payload" not in m, m' \
        <"$tmp/w4" || fail "binary payload in JSON: $(cat "$tmp/w4")"

printf 'two\nlines' >"$tmp/two-lines"
start_watch "$tmp/w5" --socket "$sock" watch 'text.#' --count 2
publish_until "$tmp/w5" cli publish text.tab --data "$(printf 'a\tb')"
cli publish text.lines <"$tmp/two-lines"
finish_watch "$tmp/w5"
if [ "$(tail -n 1 "$tmp/w5")" != "text.lines base64:$(base64 <"$tmp/two-lines")" ] ||
        [ "$(head -n 1 "$tmp/w5")" != "$(printf 'text.tab a\tb')" ]; then
        fail "text payloads printed as: $(cat "$tmp/w5")"
fi
pass "payloads that are not one line of text are shown as base64"

# Several patterns, overlapping ones included: each matching message once,
# others not at all; SIGTERM ends the watcher with exit 0 after printing all.
start_watch "$tmp/w6" --socket "$sock" watch 'multi.a' 'multi.b.+' 'multi.#' 'multi.a'
publish_until "$tmp/w6" cli publish multi.ready --data r
for m in multi.a:A multi.b.x:B other.x:X multi.c.d.e:C multi.b.x.y:D multi.end:end; do
        cli publish "${m%%:*}" --data "${m#*:}"
done
last_line_is() {
        [ "$(tail -n 1 "$1")" = "$2" ]
}
wait_for 10 "the last message in the watcher's output" last_line_is "$tmp/w6" "multi.end end"
kill -TERM "$(cat "$tmp/w6.pid")"
finish_watch "$tmp/w6"
expected=$(printf '%s\n' "multi.a A" "multi.b.x B" "multi.c.d.e C" "multi.b.x.y D" "multi.end end")
[ "$(grep -v '^multi.ready ' "$tmp/w6")" = "$expected" ] || fail "several patterns printed: $(cat "$tmp/w6")"
pass "watch with several overlapping patterns prints each message once; SIGTERM exits 0"

# A line that cannot fit in a frame stops --lines with exit 1, naming the line.
long_line_input() {
        echo short
        head -c 2000000 /dev/zero | tr '\0' x
        echo
        echo after
}
long_line_input >"$tmp/long-lines"
publish_long_lines() {
        cli publish big.x --lines <"$tmp/long-lines"
}
expect_exit 1 "over-long line" publish_long_lines
grep -q 'line 2 is longer than' "$tmp/err" || fail "over-long line: $(cat "$tmp/err")"
pass "publish --lines refuses a line longer than a frame, naming it"

# A reader that goes away (| head -n 1): watch notices at its next write and exits 0 quietly.
is_running() {
        [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat"
}
mkfifo "$tmp/w8.fifo"
head -n 1 "$tmp/w8.fifo" >"$tmp/w8" &
watch_pids="$watch_pids $!"
cli watch 'pipe.#' >"$tmp/w8.fifo" 2>"$tmp/w8.err" &
watch_pid=$!
watch_pids="$watch_pids $watch_pid"
publish_until "$tmp/w8" cli publish pipe.x --data first
tries=500
while is_running "$watch_pid"; do
        cli publish pipe.x --data more
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || fail "watch kept running after its reader exited"
        sleep 0.02
done
status=0
wait "$watch_pid" || status=$?
if [ "$status" -ne 0 ] || [ -s "$tmp/w8.err" ]; then
        fail "watch | head -n 1: exit $status, stderr: $(cat "$tmp/w8.err")"
fi
[ "$(cat "$tmp/w8")" = "pipe.x first" ] || fail "watch | head -n 1 printed: $(cat "$tmp/w8")"
pass "watch exits 0 quietly when its reader goes away (EPIPE)"

# --- 1M lines: streaming, order, memory ------------------------------------------

start_watch "$tmp/bulk" --socket "$sock" watch 'bulk.#'
publish_until "$tmp/bulk" cli publish bulk.ready --data ready
start_ns=$(date +%s%N)
if [ -x /usr/bin/time ]; then
        seq "$BULK_LINES" | env "${bulk_env[@]}" /usr/bin/time -v -o "$tmp/bulk.time" "$CLI" --socket "$sock" \
                publish bulk.data --lines || fail "publish --lines failed"
        rss_kib=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$tmp/bulk.time")
else
        # Without GNU time: sample the kernel's high-water mark (VmHWM) while it runs.
        seq "$BULK_LINES" | env "${bulk_env[@]}" "$CLI" --socket "$sock" publish bulk.data --lines &
        publisher=$!
        rss_kib=0
        while hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$publisher/status" 2>/dev/null) && [ -n "$hwm" ]; do
                [ "$hwm" -le "$rss_kib" ] || rss_kib=$hwm
                sleep 0.05
        done
        wait "$publisher" || fail "publish --lines failed"
fi
publish_ms=$((($(date +%s%N) - start_ns) / 1000000))
wait_for 60 "line $BULK_LINES in the watcher's output" last_line_is "$tmp/bulk" "bulk.data $BULK_LINES"
total_ms=$((($(date +%s%N) - start_ns) / 1000000))
# SIGINT as from Ctrl-C: everything printed before it still reaches the reader.
kill -INT "$(cat "$tmp/bulk.pid")"
finish_watch "$tmp/bulk"
grep '^bulk.data ' "$tmp/bulk" | awk -v n="$BULK_LINES" '
        $2 != NR { printf "# line %d is \"%s\"\n", NR, $0; bad = 1; exit 1 }
        END { if (!bad && NR != n) { printf "# %d lines, expected %d\n", NR, n; exit 1 } }' ||
        fail "the $BULK_LINES lines did not arrive complete and in order"
echo "# $BULK_LINES lines: published in ${publish_ms} ms, all received after ${total_ms} ms; publisher peak RSS ${rss_kib} KiB"
if [ "$rss_kib" -le 0 ] || [ "$rss_kib" -ge "$BULK_MAX_RSS_KIB" ]; then
        fail "publisher peak RSS ${rss_kib} KiB, expected under ${BULK_MAX_RSS_KIB} KiB: not streaming"
fi
pass "publish --lines streams $BULK_LINES lines, all received in order, publisher RSS ${rss_kib} KiB"

# --- the broker going away ---------------------------------------------------------

start_watch "$tmp/w7" --socket "$sock" watch 'gone.#'
publish_until "$tmp/w7" cli publish gone.ready --data r
kill -TERM "$agent_pid"
wait "$agent_pid" || true
agent_pid=
status=0
wait "$(cat "$tmp/w7.pid")" || status=$?
[ "$status" -eq 1 ] || fail "watch exited $status when the broker went away, expected 1"
grep -q '^daemoneye-cli: ' "$tmp/w7.err" || fail "watch said nothing when the broker went away"
pass "watch exits 1 with a message when the broker closes the connection"

echo "1..$tests_run"
