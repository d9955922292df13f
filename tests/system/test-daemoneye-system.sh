#!/usr/bin/env bash
# Single-quoted scripts for other shells and indirectly called functions:
# shellcheck disable=SC2016,SC2317
# DaemonEye under a real systemd (meson test --suite system): boots systemd in
# a private namespace on an overlay of / (systemd-ns.sh), installs the build
# given as $1 into it as a package would be installed on a running system,
# and drives everything with the administrator's own tools only: systemctl,
# busctl, journalctl, pkcheck, daemoneye-cli.
#
#   1. the .socket units listen;
#   2. a D-Bus call to org.daemoneye.Agent1 activates daemoneye-agent.service
#      (Type=notify: READY=1, STATUS=);
#   3. systemctl status and the journal's structured fields (CORRELATION_ID=,
#      COLLECTOR_ID=...), the audit log file;
#   4. daemoneye-cli collectors/health/restart/stop/start/config, checked
#      against systemd's view of daemoneye-procmond.service (the agent's
#      systemd backend: StartUnit, MainPID, ActiveState, StopUnit);
#   5. polkit: an unprivileged user may read but not manage;
#   6. SIGKILL of the collector: the agent restarts it (RestartCount);
#   7. the watchdog: a stalled agent (DAEMONEYE_DEBUG_STALL=1 + SIGUSR2) is
#      killed and restarted by systemd (WatchdogSec=, Restart=on-failure);
#   8. systemctl stop leaves no process behind;
#   9. activated again, then a poweroff with everything running: the agent
#      stops procmond through systemd before dbus.service goes, no timeout;
#      nothing of the guest is left on the host.
#
# Usage: test-daemoneye-system.sh BUILD_DIR. Output is TAP.
#
# The build must be configured with --prefix=/usr --sysconfdir=/etc
# --localstatedir=/var (the guest's systemd, dbus-daemon and polkitd only look
# there), and the test must run as root: otherwise it is skipped (a TAP skip,
# exit 0), so that ordinary build dirs (prefix /usr/local) pass. With
# DAEMONEYE_SYSTEM_TESTS=require in the environment a reason to skip is a
# failure instead: for the CI step that configures a build for this test.
#
# Knobs: NS_KEEP_LOGS=DIR keeps the guest's console and journal (see
# systemd-ns.sh); DAEMONEYE_SYSTEM_WAIT=SECONDS, the timeout of each wait for
# a state (default 30).
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=systemd-ns.sh
source "$here/systemd-ns.sh"

# ---------------------------------------------------------------- can it run?

skip_all() {
        if [ "${DAEMONEYE_SYSTEM_TESTS:-}" = require ]; then
                printf 'Bail out! cannot run: %s (and DAEMONEYE_SYSTEM_TESTS=require)\n' "$1"
                exit 1
        fi
        printf '1..0 # SKIP %s\n' "$1"
        exit 0
}

build=${1:-}
if [ -z "$build" ] || ! [ -d "$build" ]; then
        printf 'Bail out! usage: %s BUILD_DIR (a configured and built meson build dir)\n' "$0"
        exit 1
fi
build=$(cd "$build" && pwd)

# ns_skip_unless_supported prints the TAP skip line and exits: in a subshell,
# its output is the reason (root, util-linux, systemd, dbus, overlayfs, namespaces).
why=$(ns_skip_unless_supported)
[ -z "$why" ] || skip_all "${why#1..0 # SKIP }"
command -v python3 >/dev/null || skip_all "needs python3 (reads the build's options, parses the journal)"

# The directories the build installs to: the guest's systemd, dbus-daemon
# and polkitd, and the agent's default config path, want /usr, /etc, /var.
dirs=$(python3 -c 'import json, sys
opts = {o["name"]: o["value"] for o in json.load(open(sys.argv[1]))}
print(opts.get("prefix", "?"), opts.get("sysconfdir", "?"), opts.get("localstatedir", "?"))' \
        "$build/meson-info/intro-buildoptions.json" 2>/dev/null) ||
        skip_all "$build is not a configured meson build dir"
read -r prefix sysconfdir localstatedir <<<"$dirs"
if [ "$prefix" != /usr ] || [ "$sysconfdir" != /etc ] || [ "$localstatedir" != /var ]; then
        skip_all "$build installs to prefix $prefix, sysconfdir $sysconfdir, localstatedir $localstatedir; this test needs a build configured with --prefix=/usr --sysconfdir=/etc --localstatedir=/var (see tests/system/meson.build)"
fi

ns_isolate "$@"
# Step 9 reads the guest's console after the poweroff: ns_poweroff copies it
# into NS_KEEP_LOGS, a temp dir of ours unless the caller asked for one.
own_logs=
if [ -z "${NS_KEEP_LOGS:-}" ]; then
        own_logs=$(mktemp -d "${TMPDIR:-/tmp}/daemoneye-system.XXXXXX") || tap_bail "mktemp failed"
        NS_KEEP_LOGS=$own_logs
fi
trap 'ns_poweroff; [ -z "$own_logs" ] || rm -rf "$own_logs"' EXIT

# ---------------------------------------------------------------- helpers

WAIT=${DAEMONEYE_SYSTEM_WAIT:-30}
AGENT=org.daemoneye.Agent1
AGENT_PATH=/org/daemoneye/Agent1
COLLECTOR_PATH=/org/daemoneye/Agent1/collector/procmond
AGENT_UNIT=daemoneye-agent.service
PROCMOND_UNIT=daemoneye-procmond.service
UNITS=(daemoneye-agent.service daemoneye-procmond.service daemoneye-eventbus.socket daemoneye-procmond.socket)
TEST_USER=de-systest
marker=daemoneye-system-test-$$-$RANDOM
declare -A timing=()
test_start=$(_ns_now)

# unit_prop UNIT PROPERTY: the property's value as systemctl show prints it.
unit_prop() { ns_exec systemctl show -p "$2" --value "$1"; }

# coll_prop PROPERTY: procmond's org.daemoneye.Collector1 property, without
# busctl's type and quotes.
coll_prop() {
        local out
        out=$(ns_exec busctl get-property "$AGENT" "$COLLECTOR_PATH" org.daemoneye.Collector1 "$1") || return 1
        out=${out#* }
        out=${out#\"}
        printf '%s\n' "${out%\"}"
}

# True once procmond runs under the agent and systemd agrees: Collector1
# State running, its Pid the unit's MainPID, the unit active. Sets C_PID.
C_PID=
collector_settled() {
        local state pid main active
        state=$(coll_prop State 2>/dev/null) && [ "$state" = running ] || return 1
        pid=$(coll_prop Pid 2>/dev/null) && [ -n "$pid" ] && [ "$pid" != 0 ] || return 1
        main=$(unit_prop "$PROCMOND_UNIT" MainPID 2>/dev/null) && [ "$main" = "$pid" ] || return 1
        active=$(unit_prop "$PROCMOND_UNIT" ActiveState 2>/dev/null) && [ "$active" = active ] || return 1
        C_PID=$pid
}

# What the agent, procmond and their units look like, for diagnostics.
describe() {
        local p
        echo "Collector1:$(for p in State Health Pid RestartCount Unit; do printf ' %s=%s' "$p" "$(coll_prop "$p" 2>&1)"; done)"
        for p in "${UNITS[@]}"; do
                echo "$p: $(ns_exec systemctl show -p ActiveState,SubState,MainPID,Result,NRestarts "$p" 2>&1 | tr '\n' ' ')"
        done
        echo "agent StatusText: $(unit_prop "$AGENT_UNIT" StatusText 2>&1)"
        echo "---- journal of the agent and procmond (last 25 lines)"
        ns_exec journalctl --no-pager -n 25 -o short-monotonic -u "$AGENT_UNIT" -u "$PROCMOND_UNIT" 2>&1
}

# wait_check DESCRIPTION CMD...: one test point, CMD polled until it succeeds
# or $WAIT seconds pass; on failure the state of everything as diagnostics.
wait_check() {
        local desc=$1
        shift
        if _ns_wait_until "$WAIT" "$@"; then
                tap_ok "$desc"
        else
                tap_not_ok "$desc"
                tap_diag "waited ${WAIT}s for: $*"
                tap_diag "$(describe)"
                return 1
        fi
}

# journal_has UNIT PATTERN [SINCE]: PATTERN (grep -E) in UNIT's journal.
journal_has() {
        ns_exec journalctl --sync >/dev/null 2>&1 || true
        ns_exec journalctl --no-pager -o cat -u "$1" ${3:+--since "$3"} 2>/dev/null | grep -qE -- "$2"
}

# audit_entry OPERATION SINCE: "CORRELATION_ID AUDIT_ACTOR" of the agent's
# first audit entry (MESSAGE_ID=48e5127a...) for an RPC OPERATION to procmond
# since SINCE, with its other fields (COLLECTOR_ID, RPC_STATUS, DURATION_US).
AUDIT_PY='
import json, re, sys
uuid = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
for line in sys.stdin:
    e = json.loads(line)
    if (e.get("MESSAGE_ID") == "48e5127ad4ec4d1c93a6cc46dcf2b754" and e.get("RPC_OPERATION") == sys.argv[1]
            and e.get("COLLECTOR_ID") == "procmond" and uuid.match(str(e.get("CORRELATION_ID", "")))
            and e.get("RPC_STATUS") == "success" and str(e.get("DURATION_US", "")).isdigit()):
        print(e["CORRELATION_ID"], e.get("AUDIT_ACTOR", ""))
        sys.exit(0)
sys.exit(1)
'
audit_entry() {
        ns_exec journalctl --sync >/dev/null 2>&1 || true
        ns_exec journalctl --no-pager -o json -u "$AGENT_UNIT" --since "$2" 2>/dev/null | python3 -c "$AUDIT_PY" "$1"
}

# The guest's clock, to the microsecond, as journalctl --since wants it.
guest_now() { ns_exec date '+%Y-%m-%d %H:%M:%S.%6N'; }

# Host pids whose PID namespace is INODE (a readlink of /proc/PID/ns/pid).
pids_in_ns() {
        local p n
        for p in /proc/[0-9]*; do
                n=$(readlink "$p/ns/pid" 2>/dev/null) || continue
                [ "$n" = "$1" ] && printf '%s ' "${p#/proc/}"
        done
        return 0
}

# Daemoneye processes in the guest (ps there), as "PID COMM" lines.
guest_daemoneye_processes() { ns_exec ps -e -o pid=,comm= | awk '$2 ~ /^daemoneye-/'; }

# run_cli VAR ARGS...: daemoneye-cli ARGS in the guest as root; output in
# $VAR, exit status returned.
run_cli() {
        local __var=$1 __out __rc=0
        shift
        __out=$(ns_exec daemoneye-cli "$@" 2>&1) || __rc=$?
        printf -v "$__var" '%s' "$__out"
        return "$__rc"
}

# cli_check DESCRIPTION PATTERN ARGS...: daemoneye-cli ARGS exits 0 and
# prints a line matching PATTERN (grep -E).
cli_check() {
        local desc=$1 pattern=$2 out rc=0
        shift 2
        run_cli out "$@" || rc=$?
        if [ "$rc" -eq 0 ] && grep -qE -- "$pattern" <<<"$out"; then
                tap_ok "$desc"
        else
                tap_not_ok "$desc"
                tap_diag "daemoneye-cli $* (exit $rc; expected 0 and /$pattern/):"
                tap_diag "$out"
        fi
        LAST_CLI_OUT=$out
        return "$rc"
}

# ---------------------------------------------------------------- boot, install

ns_prepare >&2 || tap_bail "cannot prepare the overlay of /"
ns_start 30 >&2 || tap_bail "systemd did not start in the namespace"
if ns_wait_running 60 >&2; then
        tap_ok "guest systemd booted (${NS_BOOT_SECONDS}s)"
else
        tap_bail "the guest did not finish booting"
fi
timing[boot]=$NS_BOOT_SECONDS
guest_pidns=$(readlink "/proc/$NS_PID/ns/pid")

# Installed on the running system, as a package would be: sysusers,
# tmpfiles, daemon-reload, D-Bus ReloadConfig, polkitd restart.
t=$(_ns_now)
if out=$(ns_install "$build" 2>&1); then
        tap_ok "meson install into the running guest (sysusers, tmpfiles, units, D-Bus, polkit reloaded)"
else
        tap_diag "$out"
        tap_bail "meson install into the guest failed"
fi
timing[install]=$(_ns_elapsed "$t")
tap_check "user daemoneye exists (sysusers.d)" ns_exec getent passwd daemoneye
tap_check "/run/daemoneye 0755 and its collectors/ 0700 (tmpfiles.d)" ns_exec sh -c \
        '[ "$(stat -c "%a %U" /run/daemoneye /run/daemoneye/collectors | tr "\n" " ")" = "755 root 700 root " ]'
tap_check "org.daemoneye.Agent1 is D-Bus activatable" ns_exec sh -c \
        'busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ListActivatableNames | grep -q "\"org.daemoneye.Agent1\""'

ns_exec sh -c 'mkdir -p /etc/daemoneye && cat >/etc/daemoneye/daemoneye.conf' <<EOF
# $marker
[rpc]
audit_log_path=/var/log/daemoneye/audit.log

[process_manager]
# auto: the systemd backend, since systemd runs the guest
backend=auto
# the automatic restart of step 6 comes 1 s after the kill
restart_backoff_seconds=1

[collector procmond]
type=procmond
EOF
tap_check "daemoneye-agent --check-config accepts /etc/daemoneye/daemoneye.conf" \
        ns_exec daemoneye-agent --check-config

# ---------------------------------------------------------------- 1. sockets

tap_check "systemctl start daemoneye-eventbus.socket daemoneye-procmond.socket" \
        ns_exec systemctl start daemoneye-eventbus.socket daemoneye-procmond.socket
for s in daemoneye-eventbus.socket daemoneye-procmond.socket; do
        state=$(ns_exec systemctl show -p ActiveState,SubState --value "$s" | tr '\n' ' ')
        if [ "$state" = "active listening " ]; then
                tap_ok "$s is active (listening)"
        else
                tap_not_ok "$s is active (listening): $state"
                tap_diag "$(ns_exec systemctl status --no-pager "$s" 2>&1)"
        fi
done
tap_check "sockets: eventbus.sock 0660 root:daemoneye, collectors/procmond.sock 0600 root:root" ns_exec sh -c \
        '[ "$(stat -c "%F %a %U:%G" /run/daemoneye/eventbus.sock /run/daemoneye/collectors/procmond.sock | tr "\n" " ")" = "socket 660 root:daemoneye socket 600 root:root " ]'
tap_check "$AGENT_UNIT and $PROCMOND_UNIT are not running yet" ns_exec sh -c \
        "! systemctl -q is-active $AGENT_UNIT && ! systemctl -q is-active $PROCMOND_UNIT"

# ---------------------------------------------------------------- 2. D-Bus activation

t=$(_ns_now)
if out=$(ns_exec busctl call "$AGENT" "$AGENT_PATH" "$AGENT" GetHealth 2>&1); then
        timing[activation]=$(_ns_elapsed "$t")
        tap_ok "busctl call $AGENT GetHealth answered (activation took ${timing[activation]}s)"
else
        tap_not_ok "busctl call $AGENT GetHealth"
        tap_diag "$out"
        tap_diag "$(describe)"
fi
# dbus-daemon says so in its journal (dbus-broker, where dbus.service is an
# alias of dbus-broker.service, words it differently).
if [ "$(unit_prop dbus.service Id)" = dbus.service ]; then
        wait_check "the call started $AGENT_UNIT through D-Bus activation (dbus-daemon: Activating via systemd)" \
                journal_has dbus.service "Activating via systemd: service name='$AGENT' unit='$AGENT_UNIT'"
else
        tap_skip "the call started $AGENT_UNIT through D-Bus activation" "the bus is not dbus-daemon"
fi
agent_ready() { [ "$(ns_exec systemctl show -p ActiveState,SubState --value "$AGENT_UNIT" | tr '\n' ' ')" = "active running " ]; }
agent_ok=0
wait_check "$AGENT_UNIT is active (running): Type=notify READY=1 reached" agent_ready && agent_ok=1
status_text=$(unit_prop "$AGENT_UNIT" StatusText)
if [[ $status_text =~ ^[0-9]+\ of\ 1\ collectors\ running\;\ broker\ on\ /run/daemoneye/eventbus\.sock ]]; then
        tap_ok "StatusText is the agent's STATUS= line: $status_text"
else
        tap_not_ok "StatusText is the agent's STATUS= line"
        tap_diag "StatusText=$status_text"
fi
status_all_running() { [[ $(unit_prop "$AGENT_UNIT" StatusText) == "1 of 1 collectors running;"* ]]; }
t=$(_ns_now)
wait_check "StatusText becomes \"1 of 1 collectors running; ...\"" status_all_running
wait_check "procmond runs as $PROCMOND_UNIT (Collector1 Pid = the unit's MainPID)" collector_settled
timing[first_collector]=$(_ns_elapsed "$t")
tap_check "the agent runs without capabilities" ns_exec sh -c \
        "grep -q '^CapEff:[[:space:]]*0*\$' /proc/\$(systemctl show -p MainPID --value $AGENT_UNIT)/status"
tap_check "procmond runs as daemoneye with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH only" ns_exec sh -c \
        "p=\$(systemctl show -p MainPID --value $PROCMOND_UNIT); [ \"\$(stat -c %U /proc/\$p)\" = daemoneye ] && grep -q '^CapEff:[[:space:]]*0*80004\$' /proc/\$p/status"

# ---------------------------------------------------------------- 3. status, journal

step3_status_journal() {
        agent_pid=$(unit_prop "$AGENT_UNIT" MainPID)
        out=$(ns_exec systemctl status --no-pager --full "$AGENT_UNIT" 2>&1)
        rc=$?
        missing=
        for want in "Active: active (running)" "TriggeredBy: ● daemoneye-eventbus.socket" \
                "Main PID: $agent_pid (daemoneye-agent)" 'Status: "1 of 1 collectors running; broker on /run/daemoneye/eventbus.sock'; do
                grep -qF -- "$want" <<<"$out" || missing+="[$want] "
        done
        grep -qiE '^\s*warning' <<<"$out" && missing+="[no warnings] "
        if [ "$rc" -eq 0 ] && [ -z "$missing" ]; then
                tap_ok "systemctl status $AGENT_UNIT: active (running), triggered by the socket, main pid, status line"
        else
                tap_not_ok "systemctl status $AGENT_UNIT (exit $rc) lacks: $missing"
                tap_diag "$out"
        fi

        since=$(guest_now)
        cli_check "daemoneye-cli health procmond" '^procmond: healthy' health procmond
        correlation_id=
        find_correlation_id() {
                local entry
                entry=$(audit_entry health-check "$since") || return 1
                correlation_id=${entry%% *}
        }
        if _ns_wait_until 10 find_correlation_id; then
                tap_ok "journalctl -o json: audit entry with CORRELATION_ID=$correlation_id COLLECTOR_ID=procmond RPC_OPERATION=health-check RPC_STATUS= DURATION_US="
                tap_check "journalctl CORRELATION_ID=$correlation_id finds the RPC's lines" ns_exec sh -c \
                        "[ \$(journalctl --no-pager -o cat CORRELATION_ID=$correlation_id | wc -l) -ge 1 ]"
                tap_check "the audit log file /var/log/daemoneye/audit.log has it too (mode 0600)" ns_exec sh -c \
                        "grep -qF '\"correlation_id\":\"$correlation_id\"' /var/log/daemoneye/audit.log && [ \"\$(stat -c %a /var/log/daemoneye/audit.log)\" = 600 ]"
        else
                tap_not_ok "journalctl -o json: an entry with CORRELATION_ID, COLLECTOR_ID=procmond, RPC_OPERATION=health-check"
                tap_diag "$(ns_exec journalctl --no-pager -o json -u "$AGENT_UNIT" --since "$since" 2>&1 | tail -n 5)"
                tap_skip "journalctl CORRELATION_ID= match" "no correlation id found"
                tap_skip "the audit log file has the RPC" "no correlation id found"
        fi
}

# ---------------------------------------------------------------- 4. daemoneye-cli

step4_cli() {
        cli_check "daemoneye-cli collectors lists procmond running" '^procmond +procmond +running ' collectors
        cli_check "daemoneye-cli --json collectors: unit daemoneye-procmond.service" \
                '"unit":"daemoneye-procmond\.service"' --json collectors
        cli_check "daemoneye-cli health: healthy" '^Health: healthy' health

        collector_settled
        pid_before=$C_PID
        t=$(_ns_now)
        if cli_check "daemoneye-cli restart procmond" '^procmond: running \(pid [0-9]+\)' restart procmond; then
                timing[restart]=$(_ns_elapsed "$t")
        fi
        cli_pid=$(sed -n 's/^procmond: running (pid \([0-9]*\)).*/\1/p' <<<"$LAST_CLI_OUT")
        if collector_settled && [ "$C_PID" != "$pid_before" ] && [ "$C_PID" = "$cli_pid" ]; then
                tap_ok "after restart: new pid $C_PID (was $pid_before) = MainPID of $PROCMOND_UNIT = Collector1 Pid"
        else
                tap_not_ok "after restart: a new pid, MainPID = Collector1 Pid (was $pid_before, cli said $cli_pid, now ${C_PID})"
                tap_diag "$(describe)"
        fi

        t=$(_ns_now)
        cli_check "daemoneye-cli stop procmond" '^procmond: stopped' stop procmond && timing[stop]=$(_ns_elapsed "$t")
        procmond_stopped() {
                [ "$(unit_prop "$PROCMOND_UNIT" ActiveState)" = inactive ] && [ "$(coll_prop State)" = stopped ] &&
                        [ "$(coll_prop Pid)" = 0 ]
        }
        wait_check "$PROCMOND_UNIT inactive, Collector1 State stopped, Pid 0" procmond_stopped
        tap_check "the stop was graceful (unit Result=success, exit status 0)" ns_exec sh -c \
                "[ \"\$(systemctl show -p Result,ExecMainStatus --value $PROCMOND_UNIT | tr '\n' ' ')\" = 'success 0 ' ]"
        tap_check "daemoneye-procmond.socket still listening" ns_exec sh -c \
                '[ "$(systemctl show -p SubState --value daemoneye-procmond.socket)" = listening ]'
        t=$(_ns_now)
        cli_check "daemoneye-cli start procmond" '^procmond: running \(pid [0-9]+\)' start procmond && timing[start]=$(_ns_elapsed "$t")
        wait_check "$PROCMOND_UNIT active again, MainPID = Collector1 Pid" collector_settled
        cli_check "daemoneye-cli config procmond scan_interval_ms=750" '^scan_interval_ms +applied' \
                config procmond scan_interval_ms=750
        # Out of the schema's range (10..3600000): refused by procmond, nothing applied.
        run_cli out config procmond scan_interval_ms=5
        rc=$?
        # Exit status 2: "a value the agent calls invalid" (daemoneye-cli(1)).
        if [ "$rc" -eq 2 ] && grep -q 'scan_interval_ms: 5 is out of range 10\.\.3600000' <<<"$out"; then
                tap_ok "daemoneye-cli config procmond scan_interval_ms=5 is rejected with the range (exit 2)"
        else
                tap_not_ok "daemoneye-cli config procmond scan_interval_ms=5 is rejected with the range (exit $rc, expected 2)"
                tap_diag "$out"
        fi
}

# ---------------------------------------------------------------- 5. polkit

step5_polkit() {
        collector_settled
        pid_before=$C_PID
        if ns_exec useradd --user-group --create-home "$TEST_USER" >&2; then
                tap_ok "useradd $TEST_USER in the guest"
        else
                tap_not_ok "useradd $TEST_USER in the guest"
        fi
        out=$(ns_exec_as "$TEST_USER" daemoneye-cli --no-ask-password stop procmond 2>&1)
        rc=$?
        if [ "$rc" -eq 3 ]; then
                tap_ok "as $TEST_USER: daemoneye-cli --no-ask-password stop procmond exits 3 (not authorized)"
        else
                tap_not_ok "as $TEST_USER: daemoneye-cli --no-ask-password stop procmond exits 3, not $rc"
                tap_diag "$out"
        fi
        if collector_settled && [ "$C_PID" = "$pid_before" ]; then
                tap_ok "procmond still runs, same pid $C_PID"
        else
                tap_not_ok "procmond still runs with pid $pid_before"
                tap_diag "$(describe)"
        fi
        tap_check "the agent logged the refusal" journal_has "$AGENT_UNIT" \
                'org\.daemoneye\.Collector1\.Stop from .* refused: not authorized for org\.daemoneye\.collector\.manage'
        if ns_exec sh -c 'command -v pkcheck' >/dev/null; then
                out=$(ns_exec_as "$TEST_USER" sh -c 'exec pkcheck --action-id org.daemoneye.collector.manage --process $$' 2>&1)
                rc=$?
                # 1: not authorized, 2: authentication would be needed.
                if [ "$rc" -eq 1 ] || [ "$rc" -eq 2 ]; then
                        tap_ok "as $TEST_USER: pkcheck org.daemoneye.collector.manage is denied (exit $rc)"
                else
                        tap_not_ok "as $TEST_USER: pkcheck org.daemoneye.collector.manage is denied (exit $rc)"
                        tap_diag "$out"
                fi
                tap_check "as root: pkcheck org.daemoneye.collector.manage is authorized (the action is installed)" \
                        ns_exec sh -c 'exec pkcheck --action-id org.daemoneye.collector.manage --process $$'
        else
                tap_skip "pkcheck as an unprivileged user" "no pkcheck in the guest"
                tap_skip "pkcheck as root" "no pkcheck in the guest"
        fi
        user_cli() {
                local out rc=0
                out=$(ns_exec_as "$TEST_USER" daemoneye-cli "$@" 2>&1) || rc=$?
                [ "$rc" -eq 0 ] || printf 'exit %s\n%s\n' "$rc" "$out"
                return "$rc"
        }
        tap_check "as $TEST_USER: daemoneye-cli health (read-only) works" user_cli health
        tap_check "as $TEST_USER: daemoneye-cli collectors (read-only) works" user_cli collectors
}

# ---------------------------------------------------------------- 6. SIGKILL of the collector

step6_kill_collector() {
        collector_settled
        pid_before=$C_PID
        restarts_before=$(coll_prop RestartCount)
        since=$(guest_now)
        t=$(_ns_now)
        tap_check "systemctl kill -s KILL $PROCMOND_UNIT" ns_exec systemctl kill -s KILL "$PROCMOND_UNIT"
        restarted_by_agent() {
                collector_settled && [ "$C_PID" != "$pid_before" ] &&
                        [ "$(coll_prop RestartCount)" = $((restarts_before + 1)) ]
        }
        if wait_check "the agent restarts procmond: new MainPID, RestartCount $restarts_before -> $((restarts_before + 1))" \
                restarted_by_agent; then
                timing[kill_to_running]=$(_ns_elapsed "$t")
                tap_diag "procmond pid $pid_before -> $C_PID in ${timing[kill_to_running]}s (restart_backoff_seconds=1)"
        fi
        tap_check "the agent saw the SIGKILL" journal_has "$AGENT_UNIT" "pid $pid_before was killed by signal 9" "$since"
        # The automatic restart is the agent's own doing: its audit entry
        # must not name the last D-Bus caller who started procmond (step 4).
        entry=$(audit_entry start "$since")
        if [ "${entry#* }" = daemoneye-agent ]; then
                tap_ok "the automatic restart is audited with actor daemoneye-agent"
        else
                tap_not_ok "the automatic restart is audited with actor daemoneye-agent, not '${entry#* }'"
                tap_diag "$(ns_exec journalctl --no-pager -o cat -u "$AGENT_UNIT" MESSAGE_ID=48e5127ad4ec4d1c93a6cc46dcf2b754 --since "$since" 2>&1)"
        fi
        tap_check "the restart was the agent's, not systemd's (NRestarts of $PROCMOND_UNIT is 0)" ns_exec sh -c \
                "[ \"\$(systemctl show -p NRestarts --value $PROCMOND_UNIT)\" = 0 ]"
}

# ---------------------------------------------------------------- 7. watchdog

step7_watchdog() {
        mkdir -p "$NS_ROOT/etc/systemd/system/$AGENT_UNIT.d"
        printf '[Service]\nEnvironment=DAEMONEYE_DEBUG_STALL=1\nWatchdogSec=2\n' \
                >"$NS_ROOT/etc/systemd/system/$AGENT_UNIT.d/50-system-test-watchdog.conf"
        restart_agent() { ns_exec systemctl daemon-reload && ns_exec systemctl restart "$AGENT_UNIT"; }
        tap_check "drop-in DAEMONEYE_DEBUG_STALL=1 WatchdogSec=2; daemon-reload; restart $AGENT_UNIT" restart_agent
        tap_check "$AGENT_UNIT has WatchdogUSec=2s and the environment" ns_exec sh -c \
                "[ \"\$(systemctl show -p WatchdogUSec --value $AGENT_UNIT)\" = 2s ] && systemctl show -p Environment --value $AGENT_UNIT | grep -q DAEMONEYE_DEBUG_STALL=1"
        # The stall must come once the new agent has its collector connected (else
        # it stalls before connecting, and the next agent finds procmond waiting).
        wait_check "procmond runs under the restarted agent" collector_settled
        agent_pid=$(unit_prop "$AGENT_UNIT" MainPID)
        nrestarts=$(unit_prop "$AGENT_UNIT" NRestarts)
        pid_before=$C_PID
        since=$(guest_now)
        t=$(_ns_now)
        tap_check "systemctl kill -s USR2 --kill-whom=main $AGENT_UNIT" \
                ns_exec systemctl kill -s USR2 --kill-whom=main "$AGENT_UNIT"
        tap_check "the agent blocks its loop" journal_has "$AGENT_UNIT" "SIGUSR2 with DAEMONEYE_DEBUG_STALL=1: blocking the main loop" "$since"
        agent_restarted() {
                [ "$(unit_prop "$AGENT_UNIT" NRestarts)" = $((nrestarts + 1)) ] || return 1
                local pid
                pid=$(unit_prop "$AGENT_UNIT" MainPID)
                [ "$pid" != 0 ] && [ "$pid" != "$agent_pid" ] && agent_ready
        }
        if wait_check "systemd's watchdog restarted the agent: NRestarts $nrestarts -> $((nrestarts + 1)), new MainPID, active" \
                agent_restarted; then
                timing[stall_to_restart]=$(_ns_elapsed "$t")
        fi
        tap_check "journal: Watchdog timeout" journal_has "$AGENT_UNIT" "Watchdog timeout" "$since"
        answers() { ns_exec busctl call "$AGENT" "$AGENT_PATH" "$AGENT" GetHealth >/dev/null 2>&1; }
        wait_check "the new agent answers on the bus" answers && timing[stall_to_answer]=$(_ns_elapsed "$t")
        restarted_collector() { collector_settled && [ "$C_PID" != "$pid_before" ]; }
        wait_check "the new agent runs procmond again (the old one left with its agent)" restarted_collector &&
                timing[stall_to_collector]=$(_ns_elapsed "$t")
        tap_check "the old procmond ended on the lost connection (exit 4 counts as success)" \
                journal_has "$PROCMOND_UNIT" "lost the broker connection" "$since"
}

# ---------------------------------------------------------------- 3.-7.

if [ "$agent_ok" = 1 ]; then
        step3_status_journal
        step4_cli
        step5_polkit
        step6_kill_collector
        step7_watchdog
else
        tap_not_ok "steps 3-7 (status, journal, daemoneye-cli, polkit, collector restart, watchdog): the agent never ran"
fi

# ---------------------------------------------------------------- 8. stop everything

since=$(guest_now)
t=$(_ns_now)
tap_check "systemctl stop ${UNITS[*]}" ns_exec systemctl stop "${UNITS[@]}"
timing[stop_all]=$(_ns_elapsed "$t")
all_inactive() {
        local u s
        for u in "${UNITS[@]}"; do
                s=$(unit_prop "$u" ActiveState)
                [ "$s" = inactive ] || { echo "$u: $s"; return 1; }
        done
}
tap_check "all four units inactive (none failed)" all_inactive
no_processes() {
        local left
        left=$(guest_daemoneye_processes)
        [ -z "$left" ] || { echo "$left"; return 1; }
}
wait_check "no daemoneye process left in the guest (ps)" no_processes
tap_check "the sockets were removed (RemoveOnStop=yes)" ns_exec sh -c \
        '! [ -e /run/daemoneye/eventbus.sock ] && ! [ -e /run/daemoneye/collectors/procmond.sock ]'
tap_check "the agent stopped procmond gracefully on its way out" \
        journal_has "$AGENT_UNIT" "shutting down: collectors stopped" "$since"

# Optional: the exposure scores systemd gives the installed units.
if out=$(ns_exec systemd-analyze security --no-pager "$AGENT_UNIT" "$PROCMOND_UNIT" 2>&1); then
        tap_diag "$(grep 'Overall exposure level' <<<"$out")"
fi

# ---------------------------------------------------------------- 9. power off with DaemonEye running

# What an enabled DaemonEye meets at every shutdown: systemd stops the agent,
# procmond, dbus and the rest in one transaction. The agent stops its
# collectors through systemd on the system bus, so it must be stopped before
# dbus.service (ordering), and the poweroff must not wait for a timeout.
tap_check "D-Bus activation again after the stop" \
        ns_exec busctl call "$AGENT" "$AGENT_PATH" "$AGENT" GetHealth
wait_check "procmond runs again" collector_settled
agent_pid=$(unit_prop "$AGENT_UNIT" MainPID)
dir=$NS_DIR cg=$NS_CGROUP unshare_pid=$NS_UNSHARE_PID boot=$NS_BOOT_COUNT
ns_poweroff
timing[poweroff]=$NS_POWEROFF_SECONDS
console=$NS_KEEP_LOGS/boot$boot-console.log
if awk -v s="$NS_POWEROFF_SECONDS" 'BEGIN { exit !(s < 15) }'; then
        tap_ok "poweroff with the agent and procmond running took ${NS_POWEROFF_SECONDS}s"
else
        tap_not_ok "poweroff with the agent and procmond running took ${NS_POWEROFF_SECONDS}s (15 s at most; 30 s: the harness killed the guest)"
fi
# The journal's lines as forwarded to the console (journald outlives both).
shutdown_log=$(sed -n '/System is powering down/,$p' "$console" 2>/dev/null | grep -E '^\[ *[0-9.]+\] ')
line_of() { grep -nF -- "$1" <<<"$shutdown_log" | head -n 1 | cut -d: -f1; }
agent_gone=$(line_of "systemd[1]: daemoneye-agent.service: Deactivated successfully.")
dbus_gone=$(line_of "systemd[1]: Stopped dbus.service")
if [ -n "$agent_gone" ] && { [ -z "$dbus_gone" ] || [ "$agent_gone" -lt "$dbus_gone" ]; }; then
        tap_ok "at shutdown the agent is stopped before dbus.service"
else
        tap_not_ok "at shutdown the agent is stopped before dbus.service (line ${agent_gone:-none} vs ${dbus_gone:-none} of the shutdown log)"
        tap_diag "$(grep -E 'daemoneye|dbus' <<<"$shutdown_log" | head -n 40)"
fi
if grep -qF "daemoneye-agent[$agent_pid]: stopped" <<<"$shutdown_log" &&
        ! grep -qE "daemoneye-agent\[$agent_pid\]: collector procmond: (StopUnit|KillUnit|.* still running)" <<<"$shutdown_log"; then
        tap_ok "at shutdown the agent stopped procmond through systemd and exited cleanly"
else
        tap_not_ok "at shutdown the agent stopped procmond through systemd and exited cleanly"
        tap_diag "$(grep -F "daemoneye-agent[$agent_pid]" <<<"$shutdown_log" | head -n 20)"
fi

# ---------------------------------------------------------------- host

tap_check "poweroff: the guest is gone" sh -c "! kill -0 $unshare_pid 2>/dev/null"
left=$(pids_in_ns "$guest_pidns")
tap_check "poweroff: no process left in the guest's PID namespace" test -z "$left"
[ -z "$left" ] || tap_diag "left: $(ps -o pid,comm -p "${left// /,}" 2>&1)"
tap_check "poweroff: temp dir and mounts gone" \
        sh -c '! [ -e "$1" ] && ! grep -qF " $1" /proc/self/mountinfo' sh "$dir"
tap_check "poweroff: guest cgroup removed" test ! -e "$cg"
tap_check "host untouched: no $TEST_USER user, no test config in /etc/daemoneye" \
        sh -c '! grep -q "^$1:" /etc/passwd && ! grep -qsF "$2" /etc/daemoneye/daemoneye.conf' sh "$TEST_USER" "$marker"

timing[total]=$(_ns_elapsed "$test_start")
for k in boot install activation first_collector restart stop start kill_to_running \
        stall_to_restart stall_to_answer stall_to_collector stop_all poweroff total; do
        [ -z "${timing[$k]:-}" ] || tap_diag "timing: $k ${timing[$k]}s"
done
tap_done
