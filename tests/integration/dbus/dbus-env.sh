#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A private system bus with the real polkitd (and optionally daemoneye-agent
# with procmond) for the D-Bus integration tests, in a private mount
# namespace so that nothing of the host's /etc, /usr or /run changes.
#
# Two ways to use it:
#
#   1. A test script sources it and drives it (what test-*.sh do):
#        . "$(dirname "$0")/dbus-env.sh"
#        dbus_env_enter "$@"       # re-executes the script in a private mount namespace
#        dbus_env_setup            # polkit mounts, /etc/group, bus, polkitd
#        dbus_env_start_agent      # optional: agent + procmond, waits until "running"
#        ... checks with ok/not_ok/check/check_error ...
#        tap_finish
#
#   2. As a command: dbus-env.sh [--agent] [--] COMMAND [ARGS...]
#      sets everything up, runs COMMAND with DBUS_SYSTEM_BUS_ADDRESS and
#      DBUS_ENV_* exported (the helper functions are exported to bash children
#      with export -f), and tears it all down; its exit status is COMMAND's.
#      COMMAND stops what it starts itself (start_monitor → stop_monitor PID).
#      E.g.: dbus-env.sh --agent -- bash -c 'as_nobody busctl --system tree org.daemoneye.Agent1'

#
# Inside the namespace (never outside: dbus_env_setup checks it is not in the
# namespace it was started from before it mounts anything):
#   /usr/share/polkit-1/actions  tmpfs: the host's actions + $DAEMONEYE_POLICY
#   /etc/polkit-1/rules.d        tmpfs: empty; grant_rule/revoke_rules write here
#   /etc/group                   bind mount of a copy with group daemoneye-test,
#                                member nobody (polkit's subject.isInGroup() asks
#                                the group database, not the process's groups)
# and in a temporary directory (0755: nobody must reach the bus socket):
#   bus/system_bus_socket, system-bus.conf (generated from the template),
#   dbus-daemon.log, polkitd.log, agent/ (config, broker socket, logs).
#
# Every process started here is recorded and stopped by its pid on exit
# (SIGTERM, a bounded wait, then SIGKILL), also when a test fails.
#
# Environment:
#   DAEMONEYE_POLICY     polkit actions (default: source tree polkit/org.daemoneye.policy)
#   DAEMONEYE_DBUS_CONF  bus policy (default: source tree dbus-interfaces/org.daemoneye.Agent1.conf)
#   DAEMONEYE_AGENT      daemoneye-agent binary (for dbus_env_start_agent)
#   DAEMONEYE_PROCMOND   daemoneye-procmond binary (for dbus_env_start_agent)
#   DAEMONEYE_INTERFACES_DIR  introspection XML (default: source tree dbus-interfaces)
#   POLKITD              polkitd binary (default /usr/lib/polkit-1/polkitd)
#   DBUS_ENV_KEEP=1      keep the temporary directory (its path is printed)
#   DBUS_ENV_VERBOSE=1   polkitd with debug output, agent with --verbose

DBUS_ENV_SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DBUS_ENV_TOPDIR=$(cd "$DBUS_ENV_SRCDIR/../../.." && pwd)
: "${DAEMONEYE_POLICY:=$DBUS_ENV_TOPDIR/polkit/org.daemoneye.policy}"
: "${DAEMONEYE_DBUS_CONF:=$DBUS_ENV_TOPDIR/dbus-interfaces/org.daemoneye.Agent1.conf}"
: "${DAEMONEYE_INTERFACES_DIR:=$DBUS_ENV_TOPDIR/dbus-interfaces}"
export DAEMONEYE_POLICY DAEMONEYE_DBUS_CONF DAEMONEYE_INTERFACES_DIR

POLKITD=${POLKITD:-/usr/lib/polkit-1/polkitd}
NOBODY_UID=65534
NOBODY_GID=65534
TEST_GROUP=daemoneye-test
AGENT_NAME=org.daemoneye.Agent1
AGENT_PATH=/org/daemoneye/Agent1
AGENT_IFACE=org.daemoneye.Agent1
COLLECTOR_IFACE=org.daemoneye.Collector1
POLKIT_NAME=org.freedesktop.PolicyKit1

DBUS_ENV_TMP=
DBUS_ENV_PIDS=           # everything started, stopped in reverse order at exit
DBUS_BUS_PID=
POLKITD_PID=
AGENT_PID=
DBUS_ENV_EXTRA_PIDS=     # pids seen by tests (collector processes), checked at exit

# ---------------------------------------------------------------- TAP output

TAP_N=0
TAP_FAILED=0

diag() {
        printf '%s\n' "$@" | sed 's/^/# /'
}

ok() {
        TAP_N=$((TAP_N + 1))
        echo "ok $TAP_N - $*"
}

not_ok() {
        TAP_N=$((TAP_N + 1))
        TAP_FAILED=$((TAP_FAILED + 1))
        echo "not ok $TAP_N - $*"
}

# skip DESCRIPTION REASON
skip() {
        TAP_N=$((TAP_N + 1))
        echo "ok $TAP_N - $1 # SKIP $2"
}

# bail_out MESSAGE: TAP's abort; the EXIT trap still cleans up.
bail_out() {
        echo "Bail out! $*"
        exit 1
}

# tap_finish: the plan (at the end, as TAP allows) and the exit status.
tap_finish() {
        echo "1..$TAP_N"
        [ "$TAP_FAILED" -eq 0 ] || diag "$TAP_FAILED of $TAP_N failed"
        [ "$TAP_FAILED" -eq 0 ]
}

# skip_all REASON: a TAP stream that says the whole file is skipped.
skip_all() {
        echo "1..0 # SKIP $*"
        exit 0
}

# check DESCRIPTION COMMAND...: ok when COMMAND succeeds; else not ok with its output.
# COMMAND's stdout+stderr stay in $DBUS_ENV_TMP/last.out (and in $CHECK_OUT).
check() {
        local what=$1
        shift
        if "$@" >"$DBUS_ENV_TMP/last.out" 2>&1; then
                ok "$what"
        else
                local status=$?
                not_ok "$what"
                diag "command: $*" "exit status: $status"
                sed 's/^/#   /' "$DBUS_ENV_TMP/last.out" | head -n 40
        fi
        CHECK_OUT=$(cat "$DBUS_ENV_TMP/last.out")
}

# check_fails DESCRIPTION COMMAND...: ok when COMMAND fails.
check_fails() {
        local what=$1
        shift
        if "$@" >"$DBUS_ENV_TMP/last.out" 2>&1; then
                not_ok "$what"
                diag "command unexpectedly succeeded: $*"
                sed 's/^/#   /' "$DBUS_ENV_TMP/last.out" | head -n 40
        else
                ok "$what"
        fi
        CHECK_OUT=$(cat "$DBUS_ENV_TMP/last.out")
}

# check_output DESCRIPTION 'REGEX' COMMAND...: ok when COMMAND succeeds and its
# output (stdout+stderr) matches the extended REGEX somewhere.
check_output() {
        local what=$1 want=$2 status=0
        shift 2
        "$@" >"$DBUS_ENV_TMP/last.out" 2>&1 || status=$?
        CHECK_OUT=$(cat "$DBUS_ENV_TMP/last.out")
        if [ "$status" -eq 0 ] && grep -Eq -- "$want" "$DBUS_ENV_TMP/last.out"; then
                ok "$what"
        else
                not_ok "$what"
                diag "command: $*" "exit status: $status; expected output matching: $want"
                sed 's/^/#   /' "$DBUS_ENV_TMP/last.out" | head -n 40
        fi
}

# error_name_of OUTPUT: the D-Bus error name in the output of a failed
# gdbus call ("GDBus.Error:NAME: msg") or dbus-send --print-reply ("Error NAME: msg").
error_name_of() {
        printf '%s\n' "$1" | sed -n -e 's/.*GDBus\.Error:\([A-Za-z0-9_.]*\).*/\1/p' \
                -e 's/^Error \([A-Za-z0-9_.]*\):.*/\1/p' | head -n 1
}

# check_error DESCRIPTION 'REGEX' COMMAND...: ok when COMMAND fails with a D-Bus
# error whose name matches the extended REGEX (anchored). COMMAND must be a
# gdbus call or dbus-send --print-reply (busctl prints only the message).
check_error() {
        local what=$1 want=$2 name status=0
        shift 2
        "$@" >"$DBUS_ENV_TMP/last.out" 2>&1 || status=$?
        CHECK_OUT=$(cat "$DBUS_ENV_TMP/last.out")
        name=$(error_name_of "$CHECK_OUT")
        if [ "$status" -ne 0 ] && printf '%s\n' "$name" | grep -Eqx -- "$want"; then
                ok "$what ($name)"
        else
                not_ok "$what"
                diag "command: $*" "exit status: $status; error name '${name}' does not match '$want'"
                sed 's/^/#   /' "$DBUS_ENV_TMP/last.out" | head -n 40
        fi
}

# ---------------------------------------------------------------- helpers

# wait_for TIMEOUT_SECONDS COMMAND...: polls COMMAND every 50 ms until it
# succeeds (0) or TIMEOUT_SECONDS have passed (1). Output of COMMAND is discarded.
# (The timeout comes first so that COMMAND keeps all its arguments as given.)
wait_for() {
        local deadline=$(($(date +%s%N) / 1000000 + ${1%.*} * 1000))
        shift
        while :; do
                "$@" >/dev/null 2>&1 && return 0
                [ $(($(date +%s%N) / 1000000)) -lt "$deadline" ] || return 1
                sleep 0.05
        done
}

# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
        local stat
        stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
        stat=${stat##*) }
        [ "${stat%% *}" != Z ] && [ "${stat%% *}" != X ]
}

pid_gone() {
        ! pid_alive "$1"
}

# stop_pid PID [TIMEOUT]: SIGTERM, waits (bounded) for it to exit, SIGKILL if
# needed; reaps it when it is our child. Returns its exit status when known.
stop_pid() {
        local pid=$1 timeout=${2:-10} status=0
        [ -n "$pid" ] || return 0
        if pid_alive "$pid"; then
                kill -TERM "$pid" 2>/dev/null || true
                if ! wait_for "$timeout" pid_gone "$pid"; then
                        diag "pid $pid did not exit within ${timeout}s of SIGTERM: SIGKILL"
                        kill -KILL "$pid" 2>/dev/null || true
                        wait_for 5 pid_gone "$pid" || true
                fi
        fi
        wait "$pid" 2>/dev/null || status=$?
        return "$status"
}

# forget_pid PID: drops PID from the list stopped at exit (it was stopped already).
forget_pid() {
        local p list=
        for p in $DBUS_ENV_PIDS; do
                [ "$p" = "$1" ] || list="$list $p"
        done
        DBUS_ENV_PIDS=$list
}

# track_pid PID: stopped at exit, last started first.
track_pid() {
        DBUS_ENV_PIDS="$1 $DBUS_ENV_PIDS"
}

# track_foreign_pid PID EXE: a process we did not start ourselves (a collector
# the agent forked): at exit, killed by pid if it still runs EXE.
track_foreign_pid() {
        DBUS_ENV_EXTRA_PIDS="$DBUS_ENV_EXTRA_PIDS $1:$2"
}

dbus_env_cleanup() {
        local status=$? pid entry exe
        trap - EXIT
        for pid in $DBUS_ENV_PIDS; do
                stop_pid "$pid" 15 || true
        done
        # Collectors the agent started: gone with the agent unless it was killed hard.
        for entry in $DBUS_ENV_EXTRA_PIDS; do
                pid=${entry%%:*}
                exe=${entry#*:}
                if pid_alive "$pid" && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$exe")" ]; then
                        diag "collector pid $pid outlived the agent: SIGKILL"
                        kill -KILL "$pid" 2>/dev/null || true
                fi
        done
        if [ -n "$DBUS_ENV_TMP" ] && [ -d "$DBUS_ENV_TMP" ]; then
                if [ "$status" -ne 0 ] || [ "${DBUS_ENV_KEEP:-0}" = 1 ]; then
                        local log
                        for log in dbus-daemon.log polkitd.log agent/agent.log; do
                                [ -s "$DBUS_ENV_TMP/$log" ] || continue
                                diag "last lines of $log:"
                                tail -n 25 "$DBUS_ENV_TMP/$log" | sed 's/^/#   /'
                        done
                fi
                if [ "${DBUS_ENV_KEEP:-0}" = 1 ]; then
                        diag "kept $DBUS_ENV_TMP"
                else
                        rm -rf "$DBUS_ENV_TMP"
                fi
        fi
        exit "$status"
}

# Daemons we start get SIGTERM if this shell dies without its EXIT trap (SIGKILL,
# e.g. a test runner's timeout): setpriv sets PR_SET_PDEATHSIG and execs, so
# the pid is the daemon's. (polkitd loses it when it switches to its user; it
# exits anyway when the bus goes.)
DAEMON_PREFIX=(setpriv --pdeathsig=TERM --)

# as_nobody COMMAND...: COMMAND as uid/gid 65534 without supplementary groups
# (polkit finds daemoneye-test in the group database, not in the process),
# without capabilities, from /, with the environment (DBUS_SYSTEM_BUS_ADDRESS) kept.
as_nobody() {
        (cd / && exec setpriv --reuid=$NOBODY_UID --regid=$NOBODY_GID --clear-groups \
                --inh-caps=-all --bounding-set=-all -- "$@")
}

# ---------------------------------------------------------------- bus helpers

# name_has_owner NAME: true when NAME is owned on the test bus.
name_has_owner() {
        busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                NameHasOwner s "$1" 2>/dev/null | grep -qx 'b true'
}

name_has_no_owner() {
        busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                NameHasOwner s "$1" 2>/dev/null | grep -qx 'b false'
}

# owner_uid NAME: the uid of NAME's owner.
owner_uid() {
        busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                GetConnectionUnixUser s "$1" | sed -n 's/^u //p'
}

# prop OBJECT INTERFACE NAME: the value of a property as busctl prints it,
# without the type ("running", not 's "running"'), quotes removed for strings.
prop() {
        local out
        out=$(busctl --system get-property "$AGENT_NAME" "$1" "$2" "$3") || return 1
        out=${out#* }
        out=${out#\"}
        printf '%s\n' "${out%\"}"
}

collector_path() {
        # sd_bus_path_encode(): every byte but [A-Za-z0-9] (and a leading digit) is _XX
        # (ASCII is enough: collector ids are [A-Za-z0-9_-]).
        local id=$1 out='' c i
        for ((i = 0; i < ${#id}; i++)); do
                c=${id:i:1}
                if [[ $c == [A-Za-z] || ($c == [0-9] && $i -gt 0) ]]; then
                        out+=$c
                else
                        out+=$(printf '_%02x' "'$c")
                fi
        done
        printf '%s/collector/%s\n' "$AGENT_PATH" "$out"
}

# collector_state_is ID STATE
collector_state_is() {
        [ "$(prop "$(collector_path "$1")" "$COLLECTOR_IFACE" State 2>/dev/null)" = "$2" ]
}

# start_monitor OUTFILE [NAME]: busctl monitor (one JSON object a line) of the
# traffic from and to NAME (default org.daemoneye.Agent1) into OUTFILE; returns
# once the monitor is attached (BecomeMonitor answered). Sets MONITOR_PID.
start_monitor() {
        local out=$1 name=${2:-$AGENT_NAME}
        : >"$out"
        busctl --system monitor --json=short "$name" >"$out" 2>"$out.err" </dev/null &
        MONITOR_PID=$!
        track_pid "$MONITOR_PID"
        wait_for 10 grep -q 'Monitoring bus message stream' "$out.err"
}

stop_monitor() {
        stop_pid "$1" 5 || true
        forget_pid "$1"
}

# ---------------------------------------------------------------- polkit rules

# pk_nobody_check ACTION: pkcheck for a process of nobody's (the sh that execs
# pkcheck: its pid is $$ there). Its status: 0 authorized, 1 not authorized,
# 2 authorized after authentication (no agent here: refused), other: error.
pk_nobody_check() {
        as_nobody sh -c 'exec pkcheck --action-id "$1" --process $$' sh "$1" >/dev/null 2>&1
}

# pk_nobody_refused ACTION: polkit answered, and the answer is no.
pk_nobody_refused() {
        local status=0
        pk_nobody_check "$1" || status=$?
        [ "$status" = 1 ] || [ "$status" = 2 ]
}

# The rules directory is only ever written when it is our tmpfs, in our namespace.
dbus_env_assert_rules_dir() {
        dbus_env_assert_private
        [ "$(findmnt -n -o SOURCE --mountpoint /etc/polkit-1/rules.d 2>/dev/null)" = daemoneye-test-rules ] ||
                bail_out "/etc/polkit-1/rules.d is not the test tmpfs: refusing to write there"
}

# grant_rule [GROUP]: a rules file giving every org.daemoneye.* action to
# members of GROUP (default daemoneye-test); waits until polkitd applies it
# (it reloads rules.d on inotify events: no restart needed).
grant_rule() {
        local group=${1:-$TEST_GROUP}
        dbus_env_assert_rules_dir
        write_rule 50-daemoneye-test.rules <<RULES
// Written by tests/integration/dbus/dbus-env.sh (private mount namespace).
polkit.addRule(function(action, subject) {
    if (action.id.indexOf("org.daemoneye.") == 0 && subject.isInGroup("$group"))
        return polkit.Result.YES;
});
RULES
        [ -z "$POLKITD_PID" ] || [ "$group" != "$TEST_GROUP" ] ||
                wait_for 15 pk_nobody_check org.daemoneye.collector.manage
}

# write_rule NAME: a rules file NAME from stdin (polkit loads it asynchronously;
# the caller waits for its effect).
write_rule() {
        dbus_env_assert_rules_dir
        cat >"/etc/polkit-1/rules.d/.$1.tmp"
        chmod 0644 "/etc/polkit-1/rules.d/.$1.tmp"
        mv "/etc/polkit-1/rules.d/.$1.tmp" "/etc/polkit-1/rules.d/$1"
}

# revoke_rules: removes every test rule; waits until nobody is refused again.
revoke_rules() {
        dbus_env_assert_rules_dir
        rm -f /etc/polkit-1/rules.d/*.rules
        [ -z "$POLKITD_PID" ] || wait_for 15 pk_nobody_refused org.daemoneye.collector.manage
}

# ---------------------------------------------------------------- setup

# dbus_env_enter ARGS...: re-executes the calling script in a private mount
# namespace (once); returns there. Skips the test (TAP) when that is impossible.
dbus_env_enter() {
        if [ "${DBUS_ENV_IN_NAMESPACE:-}" = 1 ]; then
                return 0
        fi
        [ "$(id -u)" = 0 ] || skip_all "needs root (mount namespace, polkitd, setpriv)"
        local tool
        for tool in unshare setpriv dbus-daemon busctl gdbus dbus-send pkcheck xmllint; do
                command -v "$tool" >/dev/null || skip_all "$tool is not installed"
        done
        [ -x "$POLKITD" ] || skip_all "$POLKITD is not installed (Debian: polkitd)"
        DBUS_ENV_IN_NAMESPACE=1 DBUS_ENV_PARENT_MNTNS=$(readlink /proc/self/ns/mnt) \
                exec unshare --mount --propagation private -- "$BASH" "$0" "$@"
        skip_all "unshare --mount failed"
}

dbus_env_assert_private() {
        [ "${DBUS_ENV_IN_NAMESPACE:-}" = 1 ] && [ -n "${DBUS_ENV_PARENT_MNTNS:-}" ] &&
                [ "$(readlink /proc/self/ns/mnt)" != "$DBUS_ENV_PARENT_MNTNS" ] ||
                bail_out "not in a private mount namespace: refusing to mount over system paths"
}

# dbus_env_setup: temp dir, exit trap, polkit mounts, /etc/group, bus, polkitd.
dbus_env_setup() {
        dbus_env_assert_private
        DBUS_ENV_TMP=$(mktemp -d /tmp/daemoneye-dbus.XXXXXX)
        chmod 0755 "$DBUS_ENV_TMP"
        trap dbus_env_cleanup EXIT
        trap 'exit 130' INT TERM HUP
        dbus_env_mount_polkit
        dbus_env_mount_group
        dbus_env_start_bus
        dbus_env_start_polkitd
}

# (a) our actions where polkitd reads them, (b) an empty rules.d for test rules.
dbus_env_mount_polkit() {
        local staging=$DBUS_ENV_TMP/polkit-actions
        [ -r "$DAEMONEYE_POLICY" ] || bail_out "DAEMONEYE_POLICY=$DAEMONEYE_POLICY: not readable"
        [ -d /usr/share/polkit-1/actions ] && [ -d /etc/polkit-1/rules.d ] ||
                bail_out "/usr/share/polkit-1/actions or /etc/polkit-1/rules.d missing (polkitd not installed?)"
        mkdir "$staging"
        cp /usr/share/polkit-1/actions/*.policy "$staging/" 2>/dev/null || true
        cp "$DAEMONEYE_POLICY" "$staging/org.daemoneye.policy"
        mount -t tmpfs -o mode=0755,size=8m daemoneye-test-actions /usr/share/polkit-1/actions ||
                bail_out "cannot mount a tmpfs on /usr/share/polkit-1/actions"
        cp "$staging"/*.policy /usr/share/polkit-1/actions/
        chmod 0644 /usr/share/polkit-1/actions/*.policy
        mount -t tmpfs -o mode=0755,size=1m daemoneye-test-rules /etc/polkit-1/rules.d ||
                bail_out "cannot mount a tmpfs on /etc/polkit-1/rules.d"
}

# (c) group daemoneye-test with member nobody, in a copy of /etc/group.
dbus_env_mount_group() {
        local gid=64000
        while getent group "$gid" >/dev/null || awk -F: -v g="$gid" '$3 == g { f = 1 } END { exit !f }' /etc/group; do
                gid=$((gid + 1))
        done
        grep -v "^$TEST_GROUP:" /etc/group >"$DBUS_ENV_TMP/group"
        echo "$TEST_GROUP:x:$gid:nobody" >>"$DBUS_ENV_TMP/group"
        chmod 0644 "$DBUS_ENV_TMP/group"
        mount --bind "$DBUS_ENV_TMP/group" /etc/group || bail_out "cannot bind-mount /etc/group"
        id -nG nobody | grep -qw "$TEST_GROUP" || bail_out "nobody is not in $TEST_GROUP after the bind mount"
}

# (d) the private system bus: dbus-daemon in the foreground (-nofork, its pid is
# ours to stop), ready once it printed its address (it prints after listening).
dbus_env_start_bus() {
        local dir=$DBUS_ENV_TMP/bus
        mkdir -m 0755 "$dir"
        [ -r "$DAEMONEYE_DBUS_CONF" ] || bail_out "DAEMONEYE_DBUS_CONF=$DAEMONEYE_DBUS_CONF: not readable"
        sed -e "s|@BUS_SOCKET@|$dir/system_bus_socket|g" \
                -e "s|@DAEMONEYE_DBUS_CONF@|$DAEMONEYE_DBUS_CONF|g" \
                "$DBUS_ENV_SRCDIR/system-bus.conf" >"$DBUS_ENV_TMP/system-bus.conf"
        # "Failed to set fd limit to 65536: Operation not permitted" in the log is
        # harmless: a root dbus-daemon raises RLIMIT_NOFILE, which needs
        # CAP_SYS_RESOURCE when the hard limit is lower (containers).
        "${DAEMON_PREFIX[@]}" dbus-daemon --config-file="$DBUS_ENV_TMP/system-bus.conf" --nofork --nopidfile --nosyslog \
                --print-address=1 >"$DBUS_ENV_TMP/bus.address" 2>"$DBUS_ENV_TMP/dbus-daemon.log" &
        DBUS_BUS_PID=$!
        track_pid "$DBUS_BUS_PID"
        wait_for 10 test -s "$DBUS_ENV_TMP/bus.address" ||
                bail_out "dbus-daemon did not print its address: $(cat "$DBUS_ENV_TMP/dbus-daemon.log")"
        DBUS_SYSTEM_BUS_ADDRESS=$(head -n 1 "$DBUS_ENV_TMP/bus.address")
        export DBUS_SYSTEM_BUS_ADDRESS
        # Not the host's bus by accident: no session bus, no systemd.
        unset DBUS_SESSION_BUS_ADDRESS
        wait_for 10 busctl --system call org.freedesktop.DBus /org/freedesktop/DBus \
                org.freedesktop.DBus GetId ||
                bail_out "the test bus at $DBUS_SYSTEM_BUS_ADDRESS does not answer"
        diag "system bus: $DBUS_SYSTEM_BUS_ADDRESS (dbus-daemon pid $DBUS_BUS_PID)"
}

# (e) the real polkitd: started as root, it switches to the user polkitd
# itself, then owns org.freedesktop.PolicyKit1.
dbus_env_start_polkitd() {
        local args=(--no-debug)
        [ "${DBUS_ENV_VERBOSE:-0}" = 1 ] && args=()
        [ -z "$POLKITD_PID" ] || bail_out "polkitd already runs (pid $POLKITD_PID)"
        "${DAEMON_PREFIX[@]}" "$POLKITD" "${args[@]}" >>"$DBUS_ENV_TMP/polkitd.log" 2>&1 </dev/null &
        POLKITD_PID=$!
        track_pid "$POLKITD_PID"
        wait_for 20 dbus_env_polkitd_ready ||
                bail_out "polkitd (pid $POLKITD_PID) did not take $POLKIT_NAME"
        pid_alive "$POLKITD_PID" || bail_out "polkitd exited"
        diag "polkitd: pid $POLKITD_PID, owns $POLKIT_NAME"
}

dbus_env_polkitd_ready() {
        pid_alive "$POLKITD_PID" || return 0 # fail fast; the caller checks
        name_has_owner "$POLKIT_NAME"
}

dbus_env_stop_polkitd() {
        [ -n "$POLKITD_PID" ] || return 0
        stop_pid "$POLKITD_PID" 10 || true
        forget_pid "$POLKITD_PID"
        POLKITD_PID=
        wait_for 10 name_has_no_owner "$POLKIT_NAME"
}

# ---------------------------------------------------------------- the agent

# dbus_env_agent_bus_args: how this agent is told to use the test bus, or
# nothing (status 1) when it has no D-Bus front.
dbus_env_agent_bus_args() {
        local help
        help=$("$DAEMONEYE_AGENT" --help 2>&1) || true
        if printf '%s\n' "$help" | grep -q -- '--bus-address'; then
                echo "--bus-address=$DBUS_SYSTEM_BUS_ADDRESS"
        elif printf '%s\n' "$help" | grep -q -- '--bus'; then
                echo "--bus=system"
        else
                return 1
        fi
}

# dbus_env_write_agent_config [PROCMOND_LINES [EXTRA_GROUPS]]: writes
# $DBUS_ENV_TMP/agent/daemoneye.conf (atomically, for reloads) with procmond on
# the embedded backend (as scripts/run-local.sh), PROCMOND_LINES added to its
# group, and EXTRA_GROUPS at the end. $DBUS_ENV_TMP/agent/collectors holds sockets.
dbus_env_write_agent_config() {
        local dir=$DBUS_ENV_TMP/agent
        mkdir -p "$dir/collectors"
        cat >"$dir/daemoneye.conf.tmp" <<CONF
# Generated by tests/integration/dbus/dbus-env.sh
[broker]
socket_path=$dir/eventbus.sock

[rpc]
audit_log_path=$dir/audit.log

[process_manager]
backend=embedded
restart_backoff_seconds=1

[collector procmond]
type=procmond
exec=$DAEMONEYE_PROCMOND
socket=$dir/collectors/procmond.sock
autostart=true
scan_interval_ms=500
batch_size=100
CONF
        [ -z "${1:-}" ] || printf '%s\n' "$1" >>"$dir/daemoneye.conf.tmp"
        [ -z "${2:-}" ] || printf '\n%s\n' "$2" >>"$dir/daemoneye.conf.tmp"
        mv "$dir/daemoneye.conf.tmp" "$dir/daemoneye.conf"
}

# (f) dbus_env_start_agent: the agent on the test bus with procmond; waits
# until it owns org.daemoneye.Agent1 and procmond is "running". Returns 1
# (without starting anything) when the agent has no D-Bus front yet.
dbus_env_start_agent() {
        local busarg
        : "${DAEMONEYE_AGENT:?DAEMONEYE_AGENT must name the daemoneye-agent binary}"
        : "${DAEMONEYE_PROCMOND:?DAEMONEYE_PROCMOND must name the daemoneye-procmond binary}"
        busarg=$(dbus_env_agent_bus_args) || return 1
        [ -f "$DBUS_ENV_TMP/agent/daemoneye.conf" ] || dbus_env_write_agent_config
        local verbose=()
        [ "${DBUS_ENV_VERBOSE:-0}" = 1 ] && verbose=(--verbose)
        "${DAEMON_PREFIX[@]}" "$DAEMONEYE_AGENT" --config "$DBUS_ENV_TMP/agent/daemoneye.conf" "$busarg" "${verbose[@]}" \
                >>"$DBUS_ENV_TMP/agent/agent.log" 2>&1 </dev/null &
        AGENT_PID=$!
        track_pid "$AGENT_PID"
        wait_for 20 dbus_env_agent_ready "$AGENT_PID" ||
                bail_out "the agent (pid $AGENT_PID) did not take $AGENT_NAME"
        pid_alive "$AGENT_PID" || bail_out "the agent exited: $(tail -n 5 "$DBUS_ENV_TMP/agent/agent.log")"
        wait_for 30 collector_state_is procmond running ||
                bail_out "procmond is not running: State=$(prop "$(collector_path procmond)" "$COLLECTOR_IFACE" State 2>&1)"
        local pid
        pid=$(prop "$(collector_path procmond)" "$COLLECTOR_IFACE" Pid) &&
                track_foreign_pid "$pid" "$DAEMONEYE_PROCMOND"
        diag "agent: pid $AGENT_PID ($busarg), procmond pid ${pid:-?}"
}

dbus_env_agent_ready() {
        pid_alive "$1" || return 0 # fail fast; the caller checks
        name_has_owner "$AGENT_NAME"
}

# dbus_env_stop_agent: SIGTERM (as systemd stops it), bounded wait; its exit status.
dbus_env_stop_agent() {
        local status=0
        [ -n "$AGENT_PID" ] || return 0
        stop_pid "$AGENT_PID" 20 || status=$?
        forget_pid "$AGENT_PID"
        AGENT_PID=
        return "$status"
}

# ---------------------------------------------------------------- as a command

dbus_env_main() {
        local with_agent=0
        while [ $# -gt 0 ]; do
                case $1 in
                --agent) with_agent=1 ;;
                --) shift; break ;;
                -*) echo "usage: $0 [--agent] [--] COMMAND [ARGS...]" >&2; exit 2 ;;
                *) break ;;
                esac
                shift
        done
        [ $# -gt 0 ] || { echo "usage: $0 [--agent] [--] COMMAND [ARGS...]" >&2; exit 2; }
        dbus_env_enter --agent-flag="$with_agent" -- "$@"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
        set -u
        if [ "${DBUS_ENV_IN_NAMESPACE:-}" != 1 ]; then
                dbus_env_main "$@"
        fi
        # In the namespace: "--agent-flag=N -- COMMAND..."
        with_agent=${1#--agent-flag=}
        shift 2
        dbus_env_setup
        if [ "$with_agent" = 1 ]; then
                dbus_env_start_agent || bail_out "$DAEMONEYE_AGENT has no D-Bus front (--bus/--bus-address)"
        fi
        export DBUS_ENV_TMP POLKITD_PID AGENT_PID NOBODY_UID NOBODY_GID TEST_GROUP \
                AGENT_NAME AGENT_PATH AGENT_IFACE COLLECTOR_IFACE POLKIT_NAME
        export -f as_nobody wait_for pid_alive pid_gone name_has_owner name_has_no_owner owner_uid \
                prop collector_path collector_state_is start_monitor stop_monitor pk_nobody_check pk_nobody_refused grant_rule write_rule revoke_rules \
                diag bail_out dbus_env_assert_private dbus_env_assert_rules_dir track_pid forget_pid stop_pid
        status=0
        "$@" || status=$?
        exit "$status"
fi
