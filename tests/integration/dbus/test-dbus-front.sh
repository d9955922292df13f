#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The agent's D-Bus front (org.daemoneye.Agent1) on a private system bus with
# the real polkitd and our bus policy, driven with busctl, gdbus and dbus-send
# (and daemoneye-cli when it has its D-Bus commands): every method and
# property of Agent1 and Collector1, the introspection data against
# dbus-interfaces/*.xml, signals, the ObjectManager, polkit (root, nobody,
# nobody with a rule, polkitd gone), malformed calls. TAP output.
#
# Needs root (skipped otherwise), DAEMONEYE_AGENT, DAEMONEYE_PROCMOND;
# optional DAEMONEYE_CLI, DAEMONEYE_POLICY, DAEMONEYE_DBUS_CONF,
# DAEMONEYE_INTERFACES_DIR (defaults: the source tree).
#
# busctl prints only an error's message, so whenever the error *name*
# matters the call is made with gdbus call or dbus-send --print-reply.
set -u
. "$(dirname "$0")/dbus-env.sh"
dbus_env_enter "$@"

: "${DAEMONEYE_AGENT:?DAEMONEYE_AGENT must name the daemoneye-agent binary}"
: "${DAEMONEYE_PROCMOND:?DAEMONEYE_PROCMOND must name the daemoneye-procmond binary}"
"$DAEMONEYE_AGENT" --help 2>&1 | grep -q -- '--bus' ||
        skip_all "$DAEMONEYE_AGENT has no D-Bus front yet (no --bus option)"

dbus_env_setup
# Heartbeats every second: LastHeartbeat moves, and its PropertiesChanged can be seen.
dbus_env_write_agent_config "heartbeat_interval_seconds=1"
dbus_env_start_agent || bail_out "$DAEMONEYE_AGENT has no D-Bus front"

AP=$AGENT_PATH
CP=$(collector_path procmond)
AI=$AGENT_IFACE
CI=$COLLECTOR_IFACE
XML_AGENT=$DAEMONEYE_INTERFACES_DIR/org.daemoneye.Agent1.xml
XML_COLLECTOR=$DAEMONEYE_INTERFACES_DIR/org.daemoneye.Collector1.xml
XML_MEMBERS=$DBUS_ENV_SRCDIR/xml-members.sh
# What a refusal by polkit may be called: ours, or a name that says so.
DENIED='org\.daemoneye\.Error\.PermissionDenied|.*NotAuthorized.*|org\.freedesktop\.DBus\.Error\.InteractiveAuthorizationRequired'

# Calls as root (busctl: values) and with error names (gdbus, dbus-send).
# "--": busctl's getopt would take a negative argument ("x -5") for an option.
rcall() { # PATH INTERFACE METHOD [SIGNATURE ARGS...]
        busctl --system --timeout=30 -- call "$AGENT_NAME" "$@"
}
ncall() { # the same as nobody
        as_nobody busctl --system --timeout=30 -- call "$AGENT_NAME" "$@"
}
gcall() { # PATH INTERFACE.METHOD [GVARIANT ARGS...]
        gdbus call --system --timeout 30 --dest "$AGENT_NAME" --object-path "$1" --method "$2" "${@:3}"
}
ngcall() {
        as_nobody gdbus call --system --timeout 30 --dest "$AGENT_NAME" --object-path "$1" --method "$2" "${@:3}"
}
dsend() { # dbus-send arguments after --dest
        dbus-send --system --print-reply --reply-timeout=30000 --dest="$AGENT_NAME" "$@"
}
agent_answers() {
        pid_alive "$AGENT_PID" &&
                busctl --system --timeout=10 call "$AGENT_NAME" "$AP" org.freedesktop.DBus.Peer Ping
}
still_answers() { # AFTER-WHAT
        check "after $1: the agent still answers (Peer.Ping)" agent_answers
}
cprop() { prop "$CP" "$CI" "$1"; }
procmond_pid_ok() { # PID: a live procmond
        [ "${1:-0}" -gt 0 ] && pid_alive "$1" &&
                [ "$(readlink "/proc/$1/exe")" = "$(readlink -f "$DAEMONEYE_PROCMOND")" ]
}
running_with_new_pid() { # OLD_PID
        local pid
        collector_state_is procmond running || return 1
        pid=$(cprop Pid) || return 1
        [ "$pid" != "$1" ] && procmond_pid_ok "$pid"
}
note_procmond_pid() { # tracks the current procmond for the exit cleanup
        local pid
        pid=$(cprop Pid 2>/dev/null) && [ "$pid" != 0 ] && track_foreign_pid "$pid" "$DAEMONEYE_PROCMOND"
        return 0
}
ensure_running() { # after a test that may have left procmond stopped
        collector_state_is procmond running && return 0
        rcall "$CP" "$CI" Start 'a{sv}' 0 >/dev/null 2>&1 || true
        wait_for 30 collector_state_is procmond running || bail_out "procmond does not run again"
        note_procmond_pid
}

# ================================================================ name and bus policy

check "$AGENT_NAME is owned by root (uid 0)" test "$(owner_uid "$AGENT_NAME")" = 0
check_error "nobody may not own $AGENT_NAME (policy)" 'org\.freedesktop\.DBus\.Error\.AccessDenied' \
        as_nobody dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.RequestName string:"$AGENT_NAME" uint32:4
check "nobody may call Peer.Ping (policy)" \
        as_nobody busctl --system call "$AGENT_NAME" "$AP" org.freedesktop.DBus.Peer Ping
check "nobody may Introspect (policy)" \
        as_nobody busctl --system call "$AGENT_NAME" "$AP" org.freedesktop.DBus.Introspectable Introspect
check_output "nobody may read properties (policy)" '^s "' \
        as_nobody busctl --system get-property "$AGENT_NAME" "$AP" "$AI" Version
check_error "nobody may not call an interface the policy does not list" \
        'org\.freedesktop\.DBus\.Error\.AccessDenied' \
        as_nobody dbus-send --system --print-reply --dest="$AGENT_NAME" "$AP" org.daemoneye.NotAnInterface.Method

# ================================================================ introspection against our XML

introspect_to() { # PATH FILE
        busctl --system --xml-interface introspect "$AGENT_NAME" "$1" >"$2"
}
compare_members() { # WHAT LIVE_XML OUR_XML INTERFACE [--names]
        local what=$1 live=$2 ours=$3 iface=$4 names=${5:-}
        if "$XML_MEMBERS" $names "$ours" "$iface" >"$DBUS_ENV_TMP/want.members" 2>&1 &&
                "$XML_MEMBERS" $names "$live" "$iface" >"$DBUS_ENV_TMP/got.members" 2>&1 &&
                diff -u "$DBUS_ENV_TMP/want.members" "$DBUS_ENV_TMP/got.members" >"$DBUS_ENV_TMP/members.diff"; then
                ok "$what"
        else
                not_ok "$what"
                diag "--- $(basename "$ours")  +++ Introspect"
                sed 's/^/#   /' "$DBUS_ENV_TMP/members.diff" "$DBUS_ENV_TMP/got.members" | head -n 60
        fi
}

if introspect_to "$AP" "$DBUS_ENV_TMP/agent.xml" && introspect_to "$CP" "$DBUS_ENV_TMP/collector.xml"; then
        ok "Introspect of $AP and $CP"
        compare_members "Introspect of $AP: $AI has exactly the members (signatures, access, EmitsChangedSignal) of org.daemoneye.Agent1.xml" \
                "$DBUS_ENV_TMP/agent.xml" "$XML_AGENT" "$AI"
        compare_members "... and the argument names of org.daemoneye.Agent1.xml" \
                "$DBUS_ENV_TMP/agent.xml" "$XML_AGENT" "$AI" --names
        compare_members "Introspect of $CP: $CI has exactly the members of org.daemoneye.Collector1.xml" \
                "$DBUS_ENV_TMP/collector.xml" "$XML_COLLECTOR" "$CI"
        compare_members "... and the argument names of org.daemoneye.Collector1.xml" \
                "$DBUS_ENV_TMP/collector.xml" "$XML_COLLECTOR" "$CI" --names
        check_output "$AP has $AI and org.freedesktop.DBus.ObjectManager, and no other own interface" \
                "^org.daemoneye.Agent1 org.freedesktop.DBus.Introspectable org.freedesktop.DBus.ObjectManager org.freedesktop.DBus.Peer org.freedesktop.DBus.Properties\$" \
                sh -c "'$XML_MEMBERS' --interfaces '$DBUS_ENV_TMP/agent.xml' | paste -sd ' '"
        check_output "$CP has $CI and the standard interfaces only" \
                "^org.daemoneye.Collector1 org.freedesktop.DBus.Introspectable org.freedesktop.DBus.Peer org.freedesktop.DBus.Properties\$" \
                sh -c "'$XML_MEMBERS' --interfaces '$DBUS_ENV_TMP/collector.xml' | paste -sd ' '"
        check_output "$AP lists the child node collector" '<node name="collector"' cat "$DBUS_ENV_TMP/agent.xml"
        check_output "gdbus introspect agrees ($CI on $CP)" 'interface org\.daemoneye\.Collector1' \
                gdbus introspect --system --dest "$AGENT_NAME" --object-path "$CP"
else
        not_ok "Introspect of $AP and $CP"
fi

# ================================================================ Agent1 properties

version=$("$DAEMONEYE_AGENT" --version | awk '{print $NF}')
check_output "Agent1.Version is s, the agent's --version ($version)" "^s \"$version\"\$" \
        busctl --system get-property "$AGENT_NAME" "$AP" "$AI" Version
check_output "Agent1.State is s \"running\"" '^s "running"$' \
        busctl --system get-property "$AGENT_NAME" "$AP" "$AI" State
check_output "Agent1.BrokerSocket is s, names the configured socket" "^s \".*$DBUS_ENV_TMP/agent/eventbus.sock" \
        busctl --system get-property "$AGENT_NAME" "$AP" "$AI" BrokerSocket
now_us=$(($(date +%s%N) / 1000))
start_time=$(prop "$AP" "$AI" StartTime)
check_output "Agent1.StartTime is t" '^t [0-9]+$' busctl --system get-property "$AGENT_NAME" "$AP" "$AI" StartTime
check "Agent1.StartTime is in microseconds since the epoch, in the last 10 minutes ($start_time)" \
        test "${start_time:-0}" -gt $((now_us - 600000000)) -a "${start_time:-0}" -le "$now_us"
check_output "Agent1.ConnectedClients is u" '^u [0-9]+$' \
        busctl --system get-property "$AGENT_NAME" "$AP" "$AI" ConnectedClients
check_output "Agent1.MessagesRouted is t" '^t [0-9]+$' \
        busctl --system get-property "$AGENT_NAME" "$AP" "$AI" MessagesRouted
check_output "Agent1 GetAll has the six properties" \
        '^a\{sv\} 6 ' rcall "$AP" org.freedesktop.DBus.Properties GetAll s "$AI"
for p in Version State BrokerSocket StartTime ConnectedClients MessagesRouted; do
        printf '%s\n' "$CHECK_OUT" | grep -q "\"$p\"" || not_ok "Agent1 GetAll lacks $p"
done
check_output "gdbus reads Agent1.State as nobody" "<'running'>" \
        as_nobody gdbus call --system --dest "$AGENT_NAME" --object-path "$AP" \
        --method org.freedesktop.DBus.Properties.Get "$AI" State

# ================================================================ Agent1 methods (root)

check_output "ListCollectors: a(sso) with (procmond, running, $CP)" \
        "^a\\(sso\\) 1 \"procmond\" \"running\" \"$CP\"\$" rcall "$AP" "$AI" ListCollectors
check_output "GetHealth: (s, a{sv}) with a status of healthy/degraded/unhealthy" \
        '^sa\{sv\} "(healthy|degraded|unhealthy)" [0-9]+' rcall "$AP" "$AI" GetHealth
health_out=$CHECK_OUT
n_checks=$(printf '%s\n' "$health_out" | awk '{print $3}')
if [ "${n_checks:-0}" -gt 0 ]; then
        n_dicts=$(printf '%s\n' "$health_out" | grep -o '" a{sv} ' | wc -l)
        n_status=$(printf '%s\n' "$health_out" | grep -o '"status" s "' | wc -l)
        n_message=$(printf '%s\n' "$health_out" | grep -o '"message" s "' | wc -l)
        if [ "$n_dicts" -eq "$n_checks" ] && [ "$n_status" -ge "$n_checks" ] && [ "$n_message" -ge "$n_checks" ]; then
                ok "GetHealth: each of the $n_checks checks is name → a{sv}{status s, message s}"
        else
                not_ok "GetHealth: each of the $n_checks checks is name → a{sv}{status s, message s}"
                diag "$health_out"
        fi
else
        not_ok "GetHealth names no check"
fi
check_output "GetHealth (gdbus, nobody): the same shape" "^\\('(healthy|degraded|unhealthy)', \\{'" \
        ngcall "$AP" "$AI.GetHealth"
check_output "GetMetrics: a{sv} with the collectors' metrics" '^a\{sv\} [1-9][0-9]* .*"collectors" aa\{sv\} 1 .*"procmond"' \
        rcall "$AP" "$AI" GetMetrics
check_output "OpenEventStream('events.#') as root: a Unix fd (h)" '^h [0-9]+$' \
        rcall "$AP" "$AI" OpenEventStream s 'events.#'
check_output "OpenEventStream (gdbus): a handle" '^\(handle 0,\)' gcall "$AP" "$AI.OpenEventStream" "'events.process.#'"
still_answers "OpenEventStream"

# ================================================================ Collector1 properties

check_output "Collector1.Id is s \"procmond\"" '^s "procmond"$' busctl --system get-property "$AGENT_NAME" "$CP" "$CI" Id
check_output "Collector1.Type is s \"procmond\"" '^s "procmond"$' busctl --system get-property "$AGENT_NAME" "$CP" "$CI" Type
check_output "Collector1.State is s \"running\"" '^s "running"$' busctl --system get-property "$AGENT_NAME" "$CP" "$CI" State
check_output "Collector1.Health is s healthy/degraded/unhealthy/unknown" '^s "(healthy|degraded|unhealthy|unknown)"$' \
        busctl --system get-property "$AGENT_NAME" "$CP" "$CI" Health
check_output "Collector1.Pid is u" '^u [1-9][0-9]*$' busctl --system get-property "$AGENT_NAME" "$CP" "$CI" Pid
pid1=$(cprop Pid)
check "Collector1.Pid ($pid1) is a live daemoneye-procmond" procmond_pid_ok "$pid1"
note_procmond_pid
check_output "Collector1.RestartCount is u" '^u [0-9]+$' busctl --system get-property "$AGENT_NAME" "$CP" "$CI" RestartCount
check_output "Collector1.Uptime is t" '^t [0-9]+$' busctl --system get-property "$AGENT_NAME" "$CP" "$CI" Uptime
uptime_above() { [ "$(cprop Uptime)" -gt "$1" ]; }
check "Collector1.Uptime grows while it runs" wait_for 5 uptime_above "$(cprop Uptime)"
check_output "Collector1.EventsPublished is t" '^t [0-9]+$' \
        busctl --system get-property "$AGENT_NAME" "$CP" "$CI" EventsPublished
heartbeat_seen() { [ "$(cprop LastHeartbeat)" != 0 ]; }
check "Collector1.LastHeartbeat becomes non-zero (heartbeat_interval_seconds=1)" wait_for 15 heartbeat_seen
check_output "Collector1.LastHeartbeat is t, microseconds since the epoch" '^t 1[0-9]{15}$' \
        busctl --system get-property "$AGENT_NAME" "$CP" "$CI" LastHeartbeat
check_output "Collector1.Unit is s, empty with the embedded backend" '^s ""$' \
        busctl --system get-property "$AGENT_NAME" "$CP" "$CI" Unit
check_output "Collector1 GetAll has the ten properties" '^a\{sv\} 10 ' \
        rcall "$CP" org.freedesktop.DBus.Properties GetAll s "$CI"
check_output "Collector1 GetAll as nobody" '^a\{sv\} 10 ' \
        ncall "$CP" org.freedesktop.DBus.Properties GetAll s "$CI"

# ================================================================ Collector1 methods (root)

check_output "HealthCheck: (s status, a{sv} details)" '^sa\{sv\} "(healthy|degraded|unhealthy|unknown)" [0-9]+' \
        rcall "$CP" "$CI" HealthCheck
check_output "HealthCheck as nobody (read-only: no polkit)" '^sa\{sv\} "' ncall "$CP" "$CI" HealthCheck
check_output "GetCapabilities: a{sv} with operations" '^a\{sv\} [1-9][0-9]* .*"operations" as [1-9]' \
        rcall "$CP" "$CI" GetCapabilities
check_output "GetCapabilities as nobody" '^a\{sv\} [1-9]' ncall "$CP" "$CI" GetCapabilities

upd() { # CALLER(rcall|ncall) CHANGES... -- OPTIONS...: UpdateConfig with busctl's a{sv} syntax
        local caller=$1
        shift
        "$caller" "$CP" "$CI" UpdateConfig 'a{sv}a{sv}' "$@"
}
check_output "UpdateConfig validate_only: validated_only true, nothing rejected" \
        '"validated_only" b true' upd rcall 1 scan_interval_ms x 750 1 validate_only b true
printf '%s\n' "$CHECK_OUT" | grep -q '"rejected" a{ss} 0' && ok "... rejected is empty" ||
        { not_ok "... rejected is empty"; diag "$CHECK_OUT"; }
shape_ok=1
for field in '"applied" as ' '"skipped" a{ss} ' '"rejected" a{ss} ' '"restart_required" b ' \
        '"validated_only" b ' '"rolled_back" b '; do
        printf '%s\n' "$CHECK_OUT" | grep -qF -- "$field" || { shape_ok=0; diag "no $field"; }
done
[ "$shape_ok" = 1 ] &&
        ok "UpdateConfig result: applied as, skipped a{ss}, rejected a{ss}, restart_required/validated_only/rolled_back b" ||
        { not_ok "UpdateConfig result: applied as, skipped a{ss}, rejected a{ss}, restart_required/validated_only/rolled_back b"; diag "$CHECK_OUT"; }
check_output "UpdateConfig scan_interval_ms=750: applied" '"applied" as [1-9][0-9]* [^a]*"scan_interval_ms"' \
        upd rcall 2 scan_interval_ms x 750 batch_size x 100 0
printf '%s\n' "$CHECK_OUT" | grep -q '"validated_only" b false' && ok "... validated_only false" ||
        { not_ok "... validated_only false"; diag "$CHECK_OUT"; }

# A bad value is rejected in the result (and not applied), or the call fails
# with InvalidArgs. gdbus: the error name is printed.
bad_value() { # DESCRIPTION KEY CHANGES-GVARIANT [OPTIONS-GVARIANT]
        local what=$1 key=$2 status=0 name opts=${4:-}
        [ -n "$opts" ] || opts='@a{sv} {}'
        gcall "$CP" "$CI.UpdateConfig" "$3" "$opts" >"$DBUS_ENV_TMP/last.out" 2>&1 || status=$?
        CHECK_OUT=$(cat "$DBUS_ENV_TMP/last.out")
        name=$(error_name_of "$CHECK_OUT")
        if [ "$status" -eq 0 ] && grep -Eq "'(rejected|skipped)': <\{[^}]*'$key'" "$DBUS_ENV_TMP/last.out" &&
                ! grep -Eq "'applied': <\[[^]]*'$key'" "$DBUS_ENV_TMP/last.out"; then
                ok "$what: rejected in the result"
        elif [ "$status" -ne 0 ] && printf '%s\n' "$name" | grep -Eqx '(org\.daemoneye|org\.freedesktop\.DBus)\.Error\.InvalidArgs' &&
                grep -q "$key" "$DBUS_ENV_TMP/last.out"; then
                ok "$what: refused with $name naming $key"
        else
                not_ok "$what: rejected"
                diag "$CHECK_OUT"
        fi
}
bad_value "UpdateConfig scan_interval_ms=-5" scan_interval_ms "{'scan_interval_ms': <int64 -5>}"
bad_value "UpdateConfig scan_interval_ms=-5, validate_only" scan_interval_ms "{'scan_interval_ms': <int64 -5>}" "{'validate_only': <true>}"
bad_value "UpdateConfig scan_interval_ms='fast'" scan_interval_ms "{'scan_interval_ms': <'fast'>}"
bad_value "UpdateConfig batch_size='x' with a valid scan_interval_ms" batch_size \
        "{'scan_interval_ms': <600>, 'batch_size': <'x'>}"
bad_value "UpdateConfig of an unknown setting" no_such_setting "{'no_such_setting': <1>}"
check_output "busctl: UpdateConfig scan_interval_ms=-5 is refused by the agent, not by busctl's option parser" \
        '^Call failed: .*scan_interval_ms' sh -c "! busctl --system -- call $AGENT_NAME $CP $CI UpdateConfig 'a{sv}a{sv}' 1 scan_interval_ms x -5 0 2>&1"
still_answers "bad config values"
check "procmond still runs after the rejected values" collector_state_is procmond running
check_error "UpdateConfig with no changes: InvalidArgs" '(org\.daemoneye|org\.freedesktop\.DBus)\.Error\.InvalidArgs' \
        gcall "$CP" "$CI.UpdateConfig" "@a{sv} {}" "@a{sv} {}"
check_error "UpdateConfig with an unknown option: InvalidArgs" '(org\.daemoneye|org\.freedesktop\.DBus)\.Error\.InvalidArgs' \
        gcall "$CP" "$CI.UpdateConfig" "{'batch_size': <100>}" "{'no_such_option': <true>}"
check_error "UpdateConfig with a non-scalar value (as): InvalidArgs" '(org\.daemoneye|org\.freedesktop\.DBus)\.Error\.InvalidArgs' \
        gcall "$CP" "$CI.UpdateConfig" "{'batch_size': <['a', 'b']>}" "@a{sv} {}"
still_answers "refused UpdateConfig calls"

# Pause / Resume
check "Pause (root)" rcall "$CP" "$CI" Pause
check "... State becomes paused" wait_for 15 collector_state_is procmond paused
check "Resume (root)" rcall "$CP" "$CI" Resume
check "... State becomes running" wait_for 15 collector_state_is procmond running

# Restart, watched by busctl monitor: PropertiesChanged and CollectorStateChanged.
mon=$DBUS_ENV_TMP/restart.monitor
if start_monitor "$mon"; then
        ok "busctl monitor attached"
else
        not_ok "busctl monitor attached"
fi
old_pid=$(cprop Pid)
old_restarts=$(cprop RestartCount)
check "Restart({}) (root)" rcall "$CP" "$CI" Restart 'a{sv}' 0
check "... procmond runs again with a new pid" wait_for 30 running_with_new_pid "$old_pid"
new_pid=$(cprop Pid)
note_procmond_pid
check "... the old process ($old_pid) is gone" wait_for 10 pid_gone "$old_pid"
pc_on_cp() { # a line of the monitor: PropertiesChanged on $CP containing the JSON fragment $1
        grep '"member":"PropertiesChanged"' "$mon" | grep "\"path\":\"$CP\"" | grep -qF -- "$1"
}
check "... PropertiesChanged announced the new Pid ($new_pid)" \
        wait_for 10 pc_on_cp "\"Pid\":{\"type\":\"u\",\"data\":$new_pid}"
check "... PropertiesChanged announced Pid 0 or a State other than running in between" \
        sh -c "grep '\"member\":\"PropertiesChanged\"' '$mon' | grep -q -e '\"Pid\":{\"type\":\"u\",\"data\":0}' \
               -e '\"State\":{\"type\":\"s\",\"data\":\"\(stopping\|stopped\|starting\)\"}'"
check "... PropertiesChanged announced State running at the end" \
        wait_for 10 pc_on_cp '"State":{"type":"s","data":"running"}'
check "... CollectorStateChanged(procmond, …) was emitted on $AP" \
        sh -c "grep '\"member\":\"CollectorStateChanged\"' '$mon' | grep -q '\"data\":\[\"procmond\",'"
check_output "... a requested Restart leaves RestartCount at $old_restarts (it counts automatic restarts)" \
        "^u $old_restarts\$" busctl --system get-property "$AGENT_NAME" "$CP" "$CI" RestartCount
# An automatic restart: procmond killed, the agent starts it again after restart_backoff_seconds=1.
crash_pid=$(cprop Pid)
check "SIGKILL to procmond ($crash_pid)" kill -KILL "$crash_pid"
check "... procmond runs again with a new pid (automatic restart)" wait_for 30 running_with_new_pid "$crash_pid"
note_procmond_pid
new_restarts=$((old_restarts + 1))
check_output "... RestartCount is $new_restarts" "^u $new_restarts\$" \
        busctl --system get-property "$AGENT_NAME" "$CP" "$CI" RestartCount
check "... RestartCount $old_restarts → $new_restarts was announced" \
        wait_for 10 pc_on_cp "\"RestartCount\":{\"type\":\"u\",\"data\":$new_restarts}"
check "... LastHeartbeat changes are announced too" \
        wait_for 10 pc_on_cp '"LastHeartbeat":{"type":"t"'
stop_monitor "$MONITOR_PID"

# Stop / Start
old_pid=$(cprop Pid)
check "Stop(true) (root)" rcall "$CP" "$CI" Stop b true
check "... State becomes stopped" wait_for 30 collector_state_is procmond stopped
check_output "... Pid is 0" '^u 0$' busctl --system get-property "$AGENT_NAME" "$CP" "$CI" Pid
check "... the process ($old_pid) is gone" wait_for 10 pid_gone "$old_pid"
status=0
gcall "$CP" "$CI.Stop" true >"$DBUS_ENV_TMP/last.out" 2>&1 || status=$?
name=$(error_name_of "$(cat "$DBUS_ENV_TMP/last.out")")
if [ "$status" = 0 ] || [ "$name" = org.daemoneye.Error.InvalidOperation ]; then
        ok "Stop when already stopped: succeeds or InvalidOperation (${name:-succeeded})"
else
        not_ok "Stop when already stopped: succeeds or InvalidOperation"
        diag "$(cat "$DBUS_ENV_TMP/last.out")"
fi
check "... still stopped" collector_state_is procmond stopped
check_error "Pause while stopped: InvalidOperation" 'org\.daemoneye\.Error\.InvalidOperation' gcall "$CP" "$CI.Pause"
check_error "UpdateConfig while stopped: InvalidOperation" 'org\.daemoneye\.Error\.InvalidOperation' \
        gcall "$CP" "$CI.UpdateConfig" "{'batch_size': <100>}" "@a{sv} {}"
check "Start({}) (root)" rcall "$CP" "$CI" Start 'a{sv}' 0
check "... runs again with a new pid" wait_for 30 running_with_new_pid "$old_pid"
note_procmond_pid
old_pid=$(cprop Pid)
check "Stop(false) (root, not graceful)" rcall "$CP" "$CI" Stop b false
check "... State becomes stopped" wait_for 30 collector_state_is procmond stopped
check "... the process is gone" wait_for 10 pid_gone "$old_pid"
ensure_running

# ================================================================ nobody without a rule

check "nobody reads Agent1 GetAll" ncall "$AP" org.freedesktop.DBus.Properties GetAll s "$AI"
check "nobody calls ListCollectors" ncall "$AP" "$AI" ListCollectors
check "nobody calls GetHealth" ncall "$AP" "$AI" GetHealth
check "nobody calls GetMetrics" ncall "$AP" "$AI" GetMetrics
check "nobody calls GetManagedObjects" ncall "$AP" org.freedesktop.DBus.ObjectManager GetManagedObjects
pid_before=$(cprop Pid)
check_error "nobody: Stop is refused" "$DENIED" ngcall "$CP" "$CI.Stop" true
check_error "nobody: Start is refused" "$DENIED" ngcall "$CP" "$CI.Start" "@a{sv} {}"
check_error "nobody: Restart is refused" "$DENIED" ngcall "$CP" "$CI.Restart" "@a{sv} {}"
check_error "nobody: Pause is refused" "$DENIED" ngcall "$CP" "$CI.Pause"
check_error "nobody: Resume is refused" "$DENIED" ngcall "$CP" "$CI.Resume"
check_error "nobody: UpdateConfig is refused" "$DENIED" \
        ngcall "$CP" "$CI.UpdateConfig" "{'scan_interval_ms': <1000>}" "@a{sv} {}"
check_error "nobody: Collector1.Shutdown is refused" "$DENIED" \
        ngcall "$CP" "$CI.Shutdown" graceful 1000 test
check_error "nobody: OpenEventStream is refused" "$DENIED" ngcall "$AP" "$AI.OpenEventStream" "'events.#'"
check_error "nobody: Reload is refused" "$DENIED" ngcall "$AP" "$AI.Reload"
check_error "nobody: Agent1.Shutdown is refused" "$DENIED" ngcall "$AP" "$AI.Shutdown"
check_error "nobody: Stop via dbus-send is refused" "$DENIED" \
        as_nobody dbus-send --system --print-reply --dest="$AGENT_NAME" "$CP" "$CI.Stop" boolean:true
still_answers "the refused calls"
check "... procmond was not touched (same pid $pid_before)" test "$(cprop Pid)" = "$pid_before"
check "... still running" collector_state_is procmond running

# ================================================================ nobody with the grant rule

if grant_rule; then
        ok "grant_rule: polkit authorizes nobody (group $TEST_GROUP)"
        check "nobody with the rule: Pause" ncall "$CP" "$CI" Pause
        check "... paused" wait_for 15 collector_state_is procmond paused
        check "nobody with the rule: Resume" ncall "$CP" "$CI" Resume
        check "... running" wait_for 15 collector_state_is procmond running
        check_output "nobody with the rule: UpdateConfig applies" '"applied" as [1-9][0-9]* [^a]*"scan_interval_ms"' \
                upd ncall 1 scan_interval_ms x 500 0
        check_output "nobody with the rule: OpenEventStream" '^h [0-9]+$' ncall "$AP" "$AI" OpenEventStream s 'events.#'
        old_pid=$(cprop Pid)
        check "nobody with the rule: Stop" ncall "$CP" "$CI" Stop b true
        check "... stopped" wait_for 30 collector_state_is procmond stopped
        check "nobody with the rule: Start" ncall "$CP" "$CI" Start 'a{sv}' 0
        check "... running with a new pid" wait_for 30 running_with_new_pid "$old_pid"
        note_procmond_pid
        check "revoke_rules" revoke_rules
        check_error "after revoke_rules: nobody's Stop is refused again (no cached verdict)" "$DENIED" \
                ngcall "$CP" "$CI.Stop" true
        check "... still running" collector_state_is procmond running
else
        not_ok "grant_rule: polkit authorizes nobody (group $TEST_GROUP)"
fi
ensure_running

# ================================================================ malformed calls

check_error "Stop with a string instead of b: InvalidArgs" 'org\.freedesktop\.DBus\.Error\.InvalidArgs' \
        dsend "$CP" "$CI.Stop" string:yes
still_answers "Stop(s)"
check_error "Stop with no argument: InvalidArgs" 'org\.freedesktop\.DBus\.Error\.InvalidArgs' dsend "$CP" "$CI.Stop"
still_answers "Stop()"
check_error "Start with a{ss} instead of a{sv}: InvalidArgs" 'org\.freedesktop\.DBus\.Error\.InvalidArgs' \
        dsend "$CP" "$CI.Start" dict:string:string:a,b
still_answers "Start(a{ss})"
check_error "Start with an unknown option: InvalidArgs" '(org\.daemoneye|org\.freedesktop\.DBus)\.Error\.InvalidArgs' \
        gcall "$CP" "$CI.Start" "{'bogus': <1>}"
still_answers "Start({bogus})"
check_error "UpdateConfig with one argument: InvalidArgs" 'org\.freedesktop\.DBus\.Error\.InvalidArgs' \
        dsend "$CP" "$CI.UpdateConfig" dict:string:string:scan_interval_ms,5
still_answers "UpdateConfig(a{ss})"
check_error "Collector1.Shutdown with a bad type: InvalidArgs" '(org\.daemoneye|org\.freedesktop\.DBus)\.Error\.InvalidArgs' \
        dsend "$CP" "$CI.Shutdown" string:sideways uint32:1000 string:test
check "... procmond still runs" collector_state_is procmond running
check_error "Collector1.Shutdown with missing arguments: InvalidArgs" 'org\.freedesktop\.DBus\.Error\.InvalidArgs' \
        dsend "$CP" "$CI.Shutdown" string:graceful
still_answers "Collector1.Shutdown(s)"
check_error "OpenEventStream with an invalid pattern: InvalidArgs" '(org\.daemoneye|org\.freedesktop\.DBus)\.Error\.InvalidArgs' \
        dsend "$AP" "$AI.OpenEventStream" string:events..process
check_error "OpenEventStream with an int: InvalidArgs" 'org\.freedesktop\.DBus\.Error\.InvalidArgs' \
        dsend "$AP" "$AI.OpenEventStream" int32:5
check_error "Reload with an argument: InvalidArgs" 'org\.freedesktop\.DBus\.Error\.InvalidArgs' \
        dsend "$AP" "$AI.Reload" string:now
still_answers "OpenEventStream/Reload with bad arguments"
check_error "an unknown collector path: UnknownObject or NotFound" \
        'org\.freedesktop\.DBus\.Error\.UnknownObject|org\.daemoneye\.Error\.NotFound' \
        dsend "$(collector_path nosuch)" "$CI.HealthCheck"
check_error "Stop on an unknown collector path: UnknownObject or NotFound" \
        'org\.freedesktop\.DBus\.Error\.UnknownObject|org\.daemoneye\.Error\.NotFound' \
        dsend "$(collector_path nosuch)" "$CI.Stop" boolean:true
check_error "a property of an unknown collector path" \
        'org\.freedesktop\.DBus\.Error\.(UnknownObject|UnknownInterface)|org\.daemoneye\.Error\.NotFound' \
        dsend "$(collector_path nosuch)" org.freedesktop.DBus.Properties.Get string:"$CI" string:State
check_error "a badly escaped collector path (procmond_zz)" \
        'org\.freedesktop\.DBus\.Error\.UnknownObject|org\.daemoneye\.Error\.NotFound' \
        dsend "$AP/collector/procmond_zz" "$CI.HealthCheck"
check_error "an unknown method: UnknownMethod" 'org\.freedesktop\.DBus\.Error\.UnknownMethod' \
        dsend "$AP" "$AI.NoSuchMethod"
check_error "an unknown property: UnknownProperty or InvalidArgs" \
        'org\.freedesktop\.DBus\.Error\.(UnknownProperty|InvalidArgs)' \
        dsend "$AP" org.freedesktop.DBus.Properties.Get string:"$AI" string:NoSuchProperty
check_error "setting a read-only property: PropertyReadOnly" \
        'org\.freedesktop\.DBus\.Error\.(PropertyReadOnly|AccessDenied)' \
        dsend "$CP" org.freedesktop.DBus.Properties.Set string:"$CI" string:State variant:string:stopped
check "... the State did not change" collector_state_is procmond running
still_answers "the malformed calls"
check "the agent's process is the one started ($AGENT_PID)" pid_alive "$AGENT_PID"

# ================================================================ ObjectManager, InterfacesAdded/Removed

check_output "GetManagedObjects has $CP with $CI and its properties" \
        "\"$CP\" [0-9]+ .*\"$CI\" 10 .*\"Id\" s \"procmond\"" rcall "$AP" org.freedesktop.DBus.ObjectManager GetManagedObjects
check_output "GetManagedObjects (gdbus, nobody)" "'$CP': \\{.*'$CI': \\{[^}]*'Id': <'procmond'>" \
        ngcall "$AP" org.freedesktop.DBus.ObjectManager.GetManagedObjects

B_ID=procmond-b
BP=$(collector_path "$B_ID")
mon=$DBUS_ENV_TMP/reload.monitor
start_monitor "$mon" || not_ok "busctl monitor attached (reload)"
dbus_env_write_agent_config "heartbeat_interval_seconds=1" "[collector $B_ID]
type=procmond
exec=$DAEMONEYE_PROCMOND
socket=$DBUS_ENV_TMP/agent/collectors/$B_ID.sock
autostart=false"
check "Reload (root) after adding [collector $B_ID]" rcall "$AP" "$AI" Reload
check "... InterfacesAdded for $BP (sd_bus_path_encode: '-' is _2d)" \
        wait_for 15 sh -c "grep '\"member\":\"InterfacesAdded\"' '$mon' | grep -qF '\"$BP\"'"
check_output "... its Id is $B_ID" "^s \"$B_ID\"\$" busctl --system get-property "$AGENT_NAME" "$BP" "$CI" Id
check_output "... ListCollectors has both" "\"$B_ID\" \"stopped\" \"$BP\"" rcall "$AP" "$AI" ListCollectors
check_output "... GetManagedObjects has both" "\"$BP\"" rcall "$AP" org.freedesktop.DBus.ObjectManager GetManagedObjects
check_output "... Agent1.State is running after the reload" '^s "running"$' \
        busctl --system get-property "$AGENT_NAME" "$AP" "$AI" State
dbus_env_write_agent_config "heartbeat_interval_seconds=1"
check "Reload (root) after removing it" rcall "$AP" "$AI" Reload
check "... InterfacesRemoved for $BP" \
        wait_for 15 sh -c "grep '\"member\":\"InterfacesRemoved\"' '$mon' | grep -qF '\"$BP\"'"
check_error "... its object is gone" 'org\.freedesktop\.DBus\.Error\.UnknownObject|org\.daemoneye\.Error\.NotFound' \
        dsend "$BP" "$CI.HealthCheck"
check "... procmond was not disturbed" collector_state_is procmond running
stop_monitor "$MONITOR_PID"
# A configuration the agent refuses: Reload fails (ExecutionError), the agent keeps the old one.
cp "$DBUS_ENV_TMP/agent/daemoneye.conf" "$DBUS_ENV_TMP/agent/good.conf"
printf '[process_manager]\nbackend=no-such-backend\n' >>"$DBUS_ENV_TMP/agent/daemoneye.conf"
check_error "Reload of a bad configuration fails" 'org\.daemoneye\.Error\.[A-Za-z]+' dsend "$AP" "$AI.Reload"
mv "$DBUS_ENV_TMP/agent/good.conf" "$DBUS_ENV_TMP/agent/daemoneye.conf"
still_answers "the refused reload"
check "... procmond still runs" collector_state_is procmond running

# ================================================================ daemoneye-cli over D-Bus

if [ -n "${DAEMONEYE_CLI:-}" ] && "$DAEMONEYE_CLI" collectors --help >/dev/null 2>&1; then
        cli() { "$DAEMONEYE_CLI" "$@"; }
        check_output "daemoneye-cli collectors lists procmond" 'procmond' cli collectors
        check_output "daemoneye-cli collectors --json" '"procmond"' cli collectors --json
        check_output "daemoneye-cli status" 'running' cli status
        check "daemoneye-cli health procmond" cli health procmond
        check "daemoneye-cli capabilities procmond" cli capabilities procmond
        check "daemoneye-cli metrics" cli metrics
        status=0
        as_nobody "$DAEMONEYE_CLI" stop --no-ask-password procmond >"$DBUS_ENV_TMP/last.out" 2>&1 || status=$?
        [ "$status" = 3 ] && ok "daemoneye-cli stop as nobody: not authorized (exit 3)" ||
                { not_ok "daemoneye-cli stop as nobody: not authorized (exit 3, got $status)"; diag "$(cat "$DBUS_ENV_TMP/last.out")"; }
        check "daemoneye-cli pause procmond (root)" cli pause procmond
        check "... paused" wait_for 15 collector_state_is procmond paused
        check "daemoneye-cli resume procmond (root)" cli resume procmond
        check "... running" wait_for 15 collector_state_is procmond running
        check_fails "daemoneye-cli stop nosuch fails" cli stop nosuch
        ensure_running
else
        skip "daemoneye-cli over D-Bus" "DAEMONEYE_CLI unset or without D-Bus commands ('collectors --help' fails)"
fi

# ================================================================ Collector1.Shutdown (root)

old_pid=$(cprop Pid)
check "Collector1.Shutdown('graceful', 5000, 'test') (root)" rcall "$CP" "$CI" Shutdown sus graceful 5000 "integration test"
check "... the process ($old_pid) exits" wait_for 15 pid_gone "$old_pid"
left_running() { # OLD_PID: stopped, or running again as another process
        local state pid
        state=$(cprop State) && pid=$(cprop Pid) || return 1
        [ "$state" = stopped ] || { [ "$pid" != "$1" ] && [ "$pid" != 0 ]; }
}
check "... State is stopped (or it was restarted with a new pid)" wait_for 15 left_running "$old_pid"
ensure_running

# ================================================================ polkitd gone: fail closed

grant_rule >/dev/null || not_ok "grant_rule before stopping polkitd"
dbus_env_stop_polkitd
check "polkitd stopped ($POLKIT_NAME has no owner)" name_has_no_owner "$POLKIT_NAME"
check_error "polkitd gone: nobody's Stop fails closed (even with the grant rule in place)" \
        'org\.daemoneye\.Error\.PermissionDenied' ngcall "$CP" "$CI.Stop" true
check "... procmond still runs" collector_state_is procmond running
check_error "polkitd gone: nobody's UpdateConfig fails closed" 'org\.daemoneye\.Error\.PermissionDenied' \
        ngcall "$CP" "$CI.UpdateConfig" "{'scan_interval_ms': <1000>}" "@a{sv} {}"
check "polkitd gone: nobody still reads properties" ncall "$CP" org.freedesktop.DBus.Properties GetAll s "$CI"
old_pid=$(cprop Pid)
check "polkitd gone: root's Stop works (uid 0 needs no polkit)" rcall "$CP" "$CI" Stop b true
check "... stopped" wait_for 30 collector_state_is procmond stopped
check "polkitd gone: root's Start works" rcall "$CP" "$CI" Start 'a{sv}' 0
check "... running again" wait_for 30 running_with_new_pid "$old_pid"
note_procmond_pid
still_answers "polkitd's absence"

# ================================================================ Agent1.Shutdown (root): last

procmond_pid=$(cprop Pid)
check "Agent1.Shutdown (root)" rcall "$AP" "$AI" Shutdown
check "... $AGENT_NAME is released" wait_for 30 name_has_no_owner "$AGENT_NAME"
check "... the agent exits" wait_for 30 pid_gone "$AGENT_PID"
status=0
wait "$AGENT_PID" 2>/dev/null || status=$?
check "... with status 0" test "$status" = 0
forget_pid "$AGENT_PID"
AGENT_PID=
check "... procmond ($procmond_pid) was stopped with it" wait_for 10 pid_gone "$procmond_pid"

tap_finish
