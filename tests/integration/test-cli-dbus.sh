#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# daemoneye-cli as a D-Bus client: a private dbus-daemon (session-type
# config, reached with --bus-address), the real daemoneye-agent on it with
# procmond (embedded backend), and every D-Bus command's human output, --json
# document and exit code, plus watch's fallback to OpenEventStream when the
# broker socket is missing. The caller is uid 0, which the agent authorizes
# without polkit; an unprivileged caller (setpriv, when available) is refused.
#
# Needs DAEMONEYE_AGENT, DAEMONEYE_CLI and DAEMONEYE_PROCMOND (set by meson),
# dbus-daemon, and python3 to read the JSON.
set -eu

AGENT=${DAEMONEYE_AGENT:?DAEMONEYE_AGENT must name the daemoneye-agent binary}
CLI=${DAEMONEYE_CLI:?DAEMONEYE_CLI must name the daemoneye-cli binary}
PROCMOND=${DAEMONEYE_PROCMOND:?DAEMONEYE_PROCMOND must name the daemoneye-procmond binary}

if ! command -v dbus-daemon >/dev/null || ! command -v python3 >/dev/null; then
        echo "1..0 # SKIP needs dbus-daemon and python3"
        exit 77
fi

unset DAEMONEYE_SOCKET DBUS_SESSION_BUS_ADDRESS
tmp=$(mktemp -d)
bus_pid=
agent_pid=
watch_pid=
tests_run=0

cleanup() {
        local status=$? pid
        for pid in $watch_pid $agent_pid; do
                kill "$pid" 2>/dev/null || true
        done
        for pid in $watch_pid $agent_pid; do
                wait "$pid" 2>/dev/null || true
        done
        # Last: the agent leaves the bus cleanly before the bus goes.
        if [ -n "$bus_pid" ]; then
                kill "$bus_pid" 2>/dev/null || true
                wait "$bus_pid" 2>/dev/null || true
        fi
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

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 50 ms.
wait_for() {
        local tries=$(($1 * 20)) what=$2
        shift 2
        until "$@"; do
                tries=$((tries - 1))
                [ "$tries" -gt 0 ] || fail "timed out waiting for $what"
                sleep 0.05
        done
}

# expect_exit CODE DESCRIPTION COMMAND...: stdout in $tmp/out, stderr in
# $tmp/err; a failure says why in exactly one "daemoneye-cli: " line.
expect_exit() {
        local code=$1 what=$2 status=0
        shift 2
        "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
        [ "$status" -eq "$code" ] || fail "$what: exit $status, expected $code: $(cat "$tmp/err")"
        if [ "$code" -ne 0 ]; then
                if [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -q '^daemoneye-cli: ' "$tmp/err"; then
                        fail "$what: stderr is not one 'daemoneye-cli: …' line: $(cat "$tmp/err")"
                fi
        elif [ -s "$tmp/err" ]; then
                fail "$what: succeeded but wrote to stderr: $(cat "$tmp/err")"
        fi
}

# expect_out DESCRIPTION EXTENDED-REGEX: a line of $tmp/out matches.
expect_out() {
        grep -Eq -- "$2" "$tmp/out" || fail "$1: no line matches '$2' in: $(cat "$tmp/out")"
}

# expect_json DESCRIPTION PYTHON-EXPRESSION: $tmp/out is exactly one JSON
# document (json.load refuses trailing data), and the expression on it, d, holds.
expect_json() {
        python3 - "$tmp/out" "$2" <<'PY' || fail "$1: '$2' does not hold for: $(head -c 2000 "$tmp/out")"
import json, sys
with open(sys.argv[1]) as f:
    d = json.load(f)
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}

cli() {
        "$CLI" --bus-address="$bus_address" "$@"
}

# --- the bus -----------------------------------------------------------------

# A session-type bus any local user may connect to, so that an unprivileged
# caller reaches the agent and is refused by it, not by the bus.
cat >"$tmp/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$tmp/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
dbus-daemon --config-file="$tmp/bus.conf" --nofork --nopidfile --print-address=3 3>"$tmp/bus.address" \
        2>"$tmp/bus.log" &
bus_pid=$!
wait_for 10 "dbus-daemon to listen" test -s "$tmp/bus.address"
bus_address=$(head -n 1 "$tmp/bus.address")

cat >"$tmp/daemoneye.conf" <<EOF
[broker]
socket_path=$tmp/eventbus.sock

[rpc]
audit_log_path=$tmp/audit.log

[collector procmond]
type=procmond
exec=$PROCMOND
socket=$tmp/collectors/procmond.sock
autostart=true
scan_interval_ms=200
batch_size=100
enable_hash_verification=false
EOF
mkdir -p "$tmp/collectors"

# --- without an agent ----------------------------------------------------------

expect_exit 4 "status, no agent on the bus" cli status
grep -q 'not running' "$tmp/err" || fail "no agent: the message does not say so: $(cat "$tmp/err")"
expect_exit 4 "collectors --json, no agent" cli collectors --json
[ ! -s "$tmp/out" ] || fail "collectors --json printed something without an agent: $(cat "$tmp/out")"
expect_exit 4 "start, no agent" cli start procmond
expect_exit 4 "shutdown, no agent" cli shutdown
expect_exit 4 "no bus at that address" "$CLI" --bus-address="unix:path=$tmp/absent-bus.sock" status
expect_exit 4 "no system bus" env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$tmp/absent-bus.sock" "$CLI" status
expect_exit 4 "watch: no socket, no agent on the bus" cli --socket "$tmp/eventbus.sock" watch 'events.#'
pass "no agent exits 4"

# Refused before anything is sent: no bus needed.
expect_exit 2 "start without ID" cli start
expect_exit 2 "health with two IDs" cli health a b
expect_exit 2 "status with an argument" cli status extra
expect_exit 2 "config without settings" cli config procmond
expect_exit 2 "config, not KEY=VALUE" cli config procmond novalue
expect_exit 2 "config, a key twice" cli config procmond a=1 a=2
expect_exit 2 "config, integer out of range" cli config procmond a=99999999999999999999
expect_exit 2 "shutdown options without ID" cli shutdown --emergency
expect_exit 2 "shutdown, negative timeout" cli shutdown procmond --timeout -5
expect_exit 2 "metrics, two formats" cli metrics --json --prometheus
expect_exit 2 "unknown option" cli collectors --bogus
expect_exit 2 "empty bus address" "$CLI" --bus-address= status
pass "usage errors exit 2"

# --- with the agent ------------------------------------------------------------

"$AGENT" --bus-address="$bus_address" --config "$tmp/daemoneye.conf" >"$tmp/agent.log" 2>&1 &
agent_pid=$!

procmond_running() {
        kill -0 "$agent_pid" 2>/dev/null || fail "daemoneye-agent exited: $(tail -n 5 "$tmp/agent.log")"
        cli collectors --json >"$tmp/out" 2>/dev/null &&
                python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d and d[0]["state"] == "running" and d[0]["pid"] > 0 else 1)' "$tmp/out"
}
wait_for 60 "procmond to run under the agent" procmond_running

# status
expect_exit 0 "status" cli status
expect_out "status" '^Version: +[0-9]'
expect_out "status" '^State: +running$'
expect_out "status" '^Health: +(healthy|degraded|unhealthy)$'
expect_out "status" "^Broker socket: +$tmp/eventbus.sock\$"
expect_out "status" '^Collectors: +1 configured, 1 running$'
expect_out "status" '^Started: +[0-9]{4}-[0-9]{2}-[0-9]{2} .*\(up '
expect_exit 0 "status --json" cli status --json
expect_json "status --json" "d['state'] == 'running' and d['version'] and d['collectors'] == 1 and d['collectors_running'] == 1 and d['health'] in ('healthy', 'degraded', 'unhealthy') and d['start_time'] > 0 and d['broker_socket'].endswith('eventbus.sock') and isinstance(d['messages_routed'], int)"
pass "status"

# collectors
expect_exit 0 "collectors" cli collectors
expect_out "collectors" '^ID +TYPE +STATE +HEALTH +PID +RESTARTS +UPTIME +LAST-HEARTBEAT$'
expect_out "collectors" '^procmond +procmond +running +[a-z]+ +[0-9]+ +[0-9]+ +'
expect_exit 0 "collectors --json" cli collectors --json
expect_json "collectors --json" "len(d) == 1 and d[0]['id'] == 'procmond' and d[0]['type'] == 'procmond' and d[0]['state'] == 'running' and d[0]['pid'] > 0 and d[0]['path'].startswith('/org/daemoneye/Agent1/collector/') and {'health', 'restart_count', 'uptime', 'last_heartbeat', 'events_published'} <= set(d[0])"
pass "collectors"

# health
expect_exit 0 "health" cli health
expect_out "health" '^Health: (healthy|degraded|unhealthy)$'
expect_out "health" '^CHECK +STATUS +MESSAGE$'
expect_out "health" '^broker +(ok|warning|critical) '
expect_exit 0 "health --json" cli health --json
expect_json "health --json" "d['status'] in ('healthy', 'degraded', 'unhealthy') and all(d['checks'][c]['status'] in ('ok', 'warning', 'critical') for c in ('broker', 'rpc', 'collectors', 'buffers', 'errors'))"
expect_exit 0 "health procmond" cli health procmond
expect_out "health procmond" '^procmond: (healthy|degraded|unhealthy|unknown)$'
expect_out "health procmond" '^COMPONENT +STATUS +MESSAGE$'
expect_exit 0 "health procmond --json" cli health procmond --json
expect_json "health procmond --json" "d['id'] == 'procmond' and d['status'] in ('healthy', 'degraded', 'unhealthy', 'unknown') and isinstance(d['details']['components'], list) and isinstance(d['details']['metrics'], dict)"
pass "health"

# capabilities
expect_exit 0 "capabilities" cli capabilities procmond
expect_out "capabilities" '^Capabilities of procmond:$'
expect_out "capabilities" '^Event types: +.*events\.process\.lifecycle'
expect_out "capabilities" '^Max concurrent requests: +[0-9]+$'
expect_exit 0 "capabilities --json" cli capabilities procmond --json
expect_json "capabilities --json" "d['id'] == 'procmond' and 'events.process.lifecycle' in d['event_types'] and isinstance(d['operations'], list) and d['timeout_max_ms'] >= d['timeout_min_ms']"
pass "capabilities"

# metrics
expect_exit 0 "metrics" cli metrics
expect_out "metrics" '^Messages: +[0-9]+ published, [0-9]+ delivered, [0-9]+ dropped$'
expect_out "metrics" '^COLLECTOR +STATE +RESTARTS +EVENTS$'
expect_exit 0 "metrics --json" cli metrics --json
expect_json "metrics --json" "isinstance(d['published'], int) and isinstance(d['topics'], dict) and d['collectors'][0]['id'] == 'procmond'"
expect_exit 0 "metrics --prometheus" cli metrics --prometheus
python3 - "$tmp/out" <<'PY' || fail "metrics --prometheus is not valid exposition text: $(head -c 2000 "$tmp/out")"
import re, sys
sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? (?:[-+]?[0-9.eE+-]+|NaN|[-+]Inf)$')
declared, seen_done = set(), set()
current = None
lines = open(sys.argv[1]).read().splitlines()
for line in lines:
    if line.startswith('# TYPE '):
        name, kind = line[7:].split(' ')
        assert kind in ('counter', 'gauge') and name not in declared, line
        declared.add(name)
        current = name
        continue
    assert sample.match(line), line
    # Every sample sits under its own family's TYPE line.
    assert re.split(r'[{ ]', line, 1)[0] == current, line
text = '\n'.join(lines)
assert '# TYPE daemoneye_published counter' in text
assert re.search(r'^daemoneye_collector_info\{collector="procmond",.*state="running".*\} 1$', text, re.M)
assert re.search(r'^daemoneye_topic_published\{topic="[^"]+"\} [0-9]+$', text, re.M)
PY
pass "metrics"

# lifecycle actions, each reported from the properties read afterwards
expect_exit 0 "stop" cli stop procmond
expect_out "stop" '^procmond: stopped$'
expect_exit 0 "collectors after stop" cli collectors --json
expect_json "collectors after stop" "d[0]['state'] == 'stopped' and d[0]['pid'] == 0"
expect_exit 0 "start" cli start procmond
expect_out "start" '^procmond: running \(pid [1-9][0-9]*\)$'
expect_exit 0 "pause" cli pause procmond
expect_out "pause" '^procmond: paused \(pid [1-9][0-9]*\)$'
expect_exit 0 "resume" cli resume procmond
expect_out "resume" '^procmond: running \(pid [1-9][0-9]*\)$'
expect_exit 0 "restart --json" cli restart procmond --json
expect_json "restart --json" "d['action'] == 'restart' and d['id'] == 'procmond' and d['state'] == 'running' and d['pid'] > 0"
pass "start, stop, pause, resume, restart"

# config
expect_exit 0 "config" cli config procmond scan_interval_ms=300
expect_out "config" '^procmond: configuration updated$'
expect_out "config" '^scan_interval_ms +applied'
expect_exit 0 "config, same value --json" cli config procmond scan_interval_ms=300 --json
expect_json "config, same value --json" "d['id'] == 'procmond' and 'scan_interval_ms' in d['skipped'] and d['applied'] == [] and d['rejected'] == {} and d['validated_only'] is False"
expect_exit 0 "config --validate-only" cli config procmond scan_interval_ms=400 --validate-only --json
expect_json "config --validate-only" "d['validated_only'] is True"
expect_exit 0 "config --no-rollback" cli config procmond scan_interval_ms=200 --no-rollback
# A key the collector rejects: exit 1 when the agent returns the rejection as
# a result, 2 when it answers org.daemoneye.Error.InvalidArgs; either way the
# reason is on stderr.
status=0
cli config procmond no_such_key=1 >"$tmp/out" 2>"$tmp/err" || status=$?
[ "$status" -eq 1 ] || [ "$status" -eq 2 ] || fail "rejected key: exit $status: $(cat "$tmp/err")"
grep -q 'no_such_key' "$tmp/err" || fail "rejected key: stderr does not name it: $(cat "$tmp/err")"
pass "config"

# unknown collector
for command in "start nosuch" "stop nosuch" "health nosuch" "capabilities nosuch" "config nosuch a=1" \
        "shutdown nosuch"; do
        # shellcheck disable=SC2086
        expect_exit 1 "$command" cli $command
        grep -q "no collector 'nosuch' (collectors: procmond)" "$tmp/err" ||
                fail "$command: the message does not name the collectors: $(cat "$tmp/err")"
done
expect_exit 1 "start nosuch --json" cli start nosuch --json
[ ! -s "$tmp/out" ] || fail "a failed command printed JSON: $(cat "$tmp/out")"
pass "unknown collector exits 1"

# The agent's own argument checks: org.daemoneye.Error.InvalidArgs exits 2.
expect_exit 2 "shutdown, reason too long" cli shutdown procmond --reason "$(printf 'x%.0s' $(seq 1 2000))"
pass "InvalidArgs from the agent exits 2"

# shutdown of one collector
expect_exit 0 "shutdown procmond" cli shutdown procmond --timeout 5000 --reason "integration test"
expect_out "shutdown procmond" '^procmond: stopped$'
expect_exit 0 "start after shutdown" cli start procmond
expect_exit 0 "shutdown procmond --emergency --json" cli shutdown procmond --emergency --json
expect_json "shutdown --emergency --json" "d['action'] == 'shutdown' and d['state'] == 'stopped'"
expect_exit 0 "start after emergency shutdown" cli start procmond --json
expect_json "start --json" "d['action'] == 'start' and d['state'] == 'running'"
pass "shutdown ID"

# reload
expect_exit 0 "reload" cli reload
expect_out "reload" '^daemoneye-agent: configuration reloaded$'
expect_exit 0 "reload --json" cli reload --json
expect_json "reload --json" "d == {'action': 'reload'}"
pass "reload"

# watch without the broker socket: one OpenEventStream per pattern. procmond
# reports processes starting and exiting, so start some until one is seen.
watch_until_output() {
        local out=$1 tries=400
        shift
        "$@" >"$out" 2>"$tmp/watch.err" &
        watch_pid=$!
        while kill -0 "$watch_pid" 2>/dev/null; do
                tries=$((tries - 1))
                [ "$tries" -gt 0 ] || fail "watch printed nothing: $(cat "$tmp/watch.err")"
                /bin/true
                sleep 0.05
        done
        wait "$watch_pid" || fail "watch failed: $(cat "$tmp/watch.err")"
        watch_pid=
}
watch_until_output "$tmp/watch.out" cli --socket "$tmp/absent.sock" watch --count 2 'control.#' 'events.process.#'
[ "$(wc -l <"$tmp/watch.out")" -eq 2 ] || fail "watch --count 2 printed: $(cat "$tmp/watch.out")"
grep -Evq '^(events\.process\.|control\.)' "$tmp/watch.out" && fail "watch printed other topics: $(cat "$tmp/watch.out")"
watch_until_output "$tmp/out" cli --socket "$tmp/absent.sock" watch --json --count 1 'events.process.#'
expect_json "watch --json over D-Bus" "d['topic'].startswith('events.process.') and d['sender'] == 'procmond'"
expect_exit 2 "watch over D-Bus, pattern the agent refuses" cli --socket "$tmp/absent.sock" watch 'response.#'
pass "watch falls back to OpenEventStream"

# An unprivileged caller may read but not act (no polkit here: the agent refuses).
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null &&
        setpriv --reuid=65534 --regid=65534 --clear-groups "$CLI" --version >/dev/null 2>&1; then
        chmod 0711 "$tmp"
        nobody() {
                setpriv --reuid=65534 --regid=65534 --clear-groups "$CLI" --bus-address="$bus_address" "$@"
        }
        expect_exit 0 "status as nobody" nobody status
        expect_exit 3 "stop as nobody" nobody --no-ask-password stop procmond
        expect_exit 3 "shutdown as nobody" nobody shutdown
        expect_exit 3 "watch over D-Bus as nobody" nobody --socket "$tmp/absent.sock" watch 'events.#'
        chmod 0700 "$tmp"
        kill -0 "$agent_pid" || fail "the agent exited after refusing nobody"
        pass "not authorized exits 3"
else
        echo "ok - # SKIP not-authorized test: needs root and setpriv"
fi

# shutdown of the agent, last
expect_exit 0 "shutdown" cli shutdown
expect_out "shutdown" '^daemoneye-agent: shutting down$'
wait_for 30 "the agent to exit" eval '! kill -0 "$agent_pid" 2>/dev/null'
wait "$agent_pid" || fail "the agent exited with status $?"
agent_pid=
expect_exit 4 "status after shutdown" cli status
pass "shutdown"

echo "1..$tests_run"
