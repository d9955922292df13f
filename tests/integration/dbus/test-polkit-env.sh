#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The D-Bus test harness itself (dbus-env.sh), without the agent: the private
# system bus and its policy, the real polkitd with our actions, the test group
# in the group database, and polkit's answers to root and nobody with and
# without the grant rule. TAP output. Needs root; skipped otherwise.
set -u
. "$(dirname "$0")/dbus-env.sh"
dbus_env_enter "$@"
dbus_env_setup

ACTIONS="org.daemoneye.collector.manage org.daemoneye.collector.configure org.daemoneye.agent.shutdown org.daemoneye.events.subscribe"

# ---------------------------------------------------------------- the bus

check "the test bus answers root" \
        busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetId
check "the test bus answers nobody (uid $NOBODY_UID)" \
        as_nobody busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetId
check "the host's system bus is not used" \
        test "$DBUS_SYSTEM_BUS_ADDRESS" != "unix:path=/run/dbus/system_bus_socket"

# Bus policy (our org.daemoneye.Agent1.conf, included by system-bus.conf).
request_name() { # NAME: RequestName with DO_NOT_QUEUE, by dbus-send for the error name
        dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
                org.freedesktop.DBus.RequestName string:"$1" uint32:4
}
check_error "nobody may not own $AGENT_NAME (bus policy)" 'org\.freedesktop\.DBus\.Error\.AccessDenied' \
        as_nobody bash -c "$(declare -f request_name); request_name $AGENT_NAME"
check_error "nobody may not own $POLKIT_NAME" 'org\.freedesktop\.DBus\.Error\.AccessDenied' \
        as_nobody bash -c "$(declare -f request_name); request_name $POLKIT_NAME"
check "root may own $AGENT_NAME (RequestName → 1, primary owner)" \
        bash -c "$(declare -f request_name); request_name $AGENT_NAME | grep -q 'uint32 1'"
check "root's name went away with its connection" wait_for 5 name_has_no_owner "$AGENT_NAME"
check_error "calls to an unowned $AGENT_NAME are not refused by policy but unknown" \
        'org\.freedesktop\.DBus\.Error\.(ServiceUnknown|NameHasNoOwner)' \
        as_nobody dbus-send --system --print-reply --dest="$AGENT_NAME" "$AGENT_PATH" org.freedesktop.DBus.Peer.Ping

# ---------------------------------------------------------------- polkitd

check "polkitd owns $POLKIT_NAME" name_has_owner "$POLKIT_NAME"
polkitd_uid=$(getent passwd polkitd | cut -d: -f3)
owner=$(owner_uid "$POLKIT_NAME")
if [ -n "$polkitd_uid" ] && [ "$owner" = "$polkitd_uid" ]; then
        ok "polkitd switched to the user polkitd (uid $owner) before taking its name"
elif [ "$owner" = 0 ]; then
        ok "polkitd runs as root (no polkitd user) # its name is owned by uid 0"
else
        not_ok "polkitd's name is owned by uid '$owner'"
fi
for action in $ACTIONS; do
        check "polkitd knows $action (from DAEMONEYE_POLICY)" \
                sh -c "pkaction --action-id $action --verbose | grep -q 'implicit any: *auth_admin'"
done
check "polkitd still knows the host's actions" \
        sh -c 'pkaction | grep -q "^org.freedesktop.policykit.exec$"'

# ---------------------------------------------------------------- group database

check "nobody is in $TEST_GROUP in the group database" \
        sh -c "id -nG nobody | tr ' ' '\n' | grep -qx $TEST_GROUP"
check "a process of nobody's has no supplementary groups (polkit must look the group up)" \
        as_nobody sh -c 'test -z "$(id -G | tr " " "\n" | grep -vx 65534)"'
# Our parent (the test runner) is outside the namespace: none of our mounts is there.
for mp in /usr/share/polkit-1/actions /etc/polkit-1/rules.d /etc/group; do
        check "$mp is mounted over in the namespace" findmnt -n --mountpoint "$mp"
        check "the host (our parent's namespace) does not see the mount on $mp" \
                sh -c "! findmnt -n --task $PPID --mountpoint $mp"
done
check "the host's /etc/group has no $TEST_GROUP" sh -c "! grep -q '^$TEST_GROUP:' /proc/$PPID/root/etc/group"

# ---------------------------------------------------------------- polkit's answers

pk_status() { # USER ACTION: pkcheck's exit status for a process of USER's
        local status=0
        if [ "$1" = root ]; then
                sh -c 'exec pkcheck --action-id "$1" --process $$' sh "$2" >/dev/null 2>&1 || status=$?
        else
                pk_nobody_check "$2" || status=$?
        fi
        echo "$status"
}

for action in $ACTIONS; do
        s=$(pk_status root "$action")
        [ "$s" = 0 ] && ok "root is authorized for $action" || not_ok "root is authorized for $action (pkcheck: $s)"
done
check "no rules in /etc/polkit-1/rules.d" sh -c '! ls /etc/polkit-1/rules.d/*.rules'
for action in $ACTIONS; do
        s=$(pk_status nobody "$action")
        case $s in
        1 | 2) ok "nobody is not authorized for $action without a rule (pkcheck: $s)" ;;
        *) not_ok "nobody is not authorized for $action without a rule (pkcheck: $s)" ;;
        esac
done

polkitd_before=$POLKITD_PID
if grant_rule; then
        ok "grant_rule: polkitd applied the rule (inotify, no restart)"
else
        not_ok "grant_rule: polkitd applied the rule (inotify, no restart)"
fi
check "polkitd was not restarted for it" test "$POLKITD_PID" = "$polkitd_before"
check "polkitd is still running" pid_alive "$POLKITD_PID"
for action in $ACTIONS; do
        s=$(pk_status nobody "$action")
        [ "$s" = 0 ] && ok "nobody is authorized for $action with the rule" ||
                not_ok "nobody is authorized for $action with the rule (pkcheck: $s)"
done
s=$(pk_status nobody org.freedesktop.policykit.exec)
case $s in
1 | 2) ok "the rule grants nothing outside org.daemoneye.* (pkcheck: $s)" ;;
*) not_ok "the rule grants nothing outside org.daemoneye.* (pkcheck: $s)" ;;
esac

if revoke_rules; then
        ok "revoke_rules: nobody is refused again"
else
        not_ok "revoke_rules: nobody is refused again"
fi
s=$(pk_status nobody org.daemoneye.collector.manage)
case $s in
1 | 2) ok "nobody is not authorized after revoke_rules (pkcheck: $s)" ;;
*) not_ok "nobody is not authorized after revoke_rules (pkcheck: $s)" ;;
esac

# A rule for another group, with a marker (events.subscribe for the user nobody)
# that tells when polkitd has loaded it: no fixed sleep.
write_rule 50-daemoneye-other-group.rules <<'RULES'
polkit.addRule(function(action, subject) {
    if (action.id.indexOf("org.daemoneye.") == 0 && subject.isInGroup("nosuchgroup-daemoneye"))
        return polkit.Result.YES;
    if (action.id == "org.daemoneye.events.subscribe" && subject.user == "nobody")
        return polkit.Result.YES;
});
RULES
check "a rule for another group: polkitd loaded it (the marker action is granted)" \
        wait_for 15 pk_nobody_check org.daemoneye.events.subscribe
s=$(pk_status nobody org.daemoneye.collector.manage)
case $s in
1 | 2) ok "a rule for another group does not authorize nobody (pkcheck: $s)" ;;
*) not_ok "a rule for another group does not authorize nobody (pkcheck: $s)" ;;
esac
revoke_rules

# ---------------------------------------------------------------- polkitd stopped and restarted

grant_rule
dbus_env_stop_polkitd
check "polkitd stopped: its name is gone" name_has_no_owner "$POLKIT_NAME"
s=$(pk_status nobody org.daemoneye.collector.manage)
[ "$s" != 0 ] && ok "polkitd stopped: pkcheck does not authorize nobody (pkcheck: $s)" ||
        not_ok "polkitd stopped: pkcheck does not authorize nobody"
dbus_env_start_polkitd
check "polkitd restarted: owns $POLKIT_NAME again" name_has_owner "$POLKIT_NAME"
s=$(pk_status nobody org.daemoneye.collector.manage)
[ "$s" = 0 ] && ok "polkitd restarted: reads the rule in place (nobody authorized)" ||
        not_ok "polkitd restarted: reads the rule in place (pkcheck: $s)"
revoke_rules

tap_finish
