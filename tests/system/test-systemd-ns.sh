#!/usr/bin/env bash
# Self-test of the system-test harness (systemd-ns.sh): boots systemd in a
# private namespace on an overlay of /, checks the guest's D-Bus and polkit,
# runs services, installs two small meson projects (before and after boot),
# checks that the host is untouched, powers off and checks that nothing of the
# namespace is left. Also checks that killing the harness' unshare process
# (what meson does on a timeout) takes the whole guest down. Output is TAP.
set -u
# Single-quoted scripts for other shells and indirectly called functions:
# shellcheck disable=SC2016,SC2317

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=systemd-ns.sh
source "$here/systemd-ns.sh"
ns_skip_unless_supported
ns_isolate "$@"

trap ns_poweroff EXIT

# A tiny meson project installing what DaemonEye installs: a unit, a sysusers
# and a tmpfiles snippet, a D-Bus policy and a polkit action.
make_fixture() {
        local name=$1 d=$fixtures/$1
        mkdir -p "$d"
        cat >"$d/meson.build" <<EOF
project('ns-fixture-$name', version : '0')
prefix = get_option('prefix')
install_data('de-selftest-$name.service', install_dir : prefix / 'lib/systemd/system')
install_data('de-selftest-$name.sysusers', rename : 'de-selftest-$name.conf', install_dir : prefix / 'lib/sysusers.d')
install_data('de-selftest-$name.tmpfiles', rename : 'de-selftest-$name.conf', install_dir : prefix / 'lib/tmpfiles.d')
install_data('org.daemoneye.SelfTest.$name.conf', install_dir : prefix / 'share/dbus-1/system.d')
install_data('org.daemoneye.selftest.$name.policy', install_dir : prefix / 'share/polkit-1/actions')
EOF
        cat >"$d/de-selftest-$name.service" <<EOF
[Unit]
Description=DaemonEye harness self-test unit ($name)
[Service]
Type=oneshot
RemainAfterExit=yes
User=de-$name
ExecStart=/bin/sh -c 'echo "unit-$name ran as \$(id -un)"; test -d /run/de-selftest-$name'
EOF
        printf 'u de-%s - "DaemonEye self-test" /nonexistent\n' "$name" >"$d/de-selftest-$name.sysusers"
        printf 'd /run/de-selftest-%s 0750 de-%s de-%s -\n' "$name" "$name" "$name" >"$d/de-selftest-$name.tmpfiles"
        cat >"$d/org.daemoneye.SelfTest.$name.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="root">
    <allow own="org.daemoneye.SelfTest.$name"/>
  </policy>
</busconfig>
EOF
        cat >"$d/org.daemoneye.selftest.$name.policy" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE policyconfig PUBLIC "-//freedesktop//DTD PolicyKit Policy Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/PolicyKit/1/policyconfig.dtd">
<policyconfig>
  <action id="org.daemoneye.selftest.$name">
    <description>DaemonEye harness self-test ($name)</description>
    <message>Authentication is required for the self-test</message>
    <defaults>
      <allow_any>auth_admin</allow_any>
      <allow_inactive>auth_admin</allow_inactive>
      <allow_active>auth_admin</allow_active>
    </defaults>
  </action>
</policyconfig>
EOF
        meson setup --prefix=/usr "$d/build" "$d" >/dev/null
}

# Checks that what fixture NAME installed is live in the guest.
check_fixture() {
        local name=$1 when=$2
        tap_check "$when install: sysusers created de-$name" ns_exec getent passwd "de-$name"
        tap_check "$when install: tmpfiles created /run/de-selftest-$name" \
                ns_exec sh -c "[ \"\$(stat -c %U /run/de-selftest-$name)\" = de-$name ]"
        tap_check "$when install: unit de-selftest-$name.service starts" \
                ns_exec systemctl start "de-selftest-$name.service"
        tap_check "$when install: D-Bus policy lets root own org.daemoneye.SelfTest.$name" \
                ns_exec busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                RequestName su "org.daemoneye.SelfTest.$name" 0
        tap_check "$when install: polkit knows org.daemoneye.selftest.$name" \
                ns_exec pkaction --action-id "org.daemoneye.selftest.$name"
}

# Lines of the guest's journal for UNIT, waiting (up to 10 s) for PATTERN.
journal_has() {
        local unit=$1 pattern=$2
        _jh() {
                ns_exec journalctl --sync >/dev/null 2>&1 || true
                ns_exec journalctl -u "$unit" -o cat --no-pager 2>/dev/null | grep -q -- "$pattern"
        }
        _ns_wait_until 10 _jh || {
                echo "no '$pattern' in the journal of $unit:"
                ns_exec journalctl -u "$unit" --no-pager
                return 1
        }
}

# Host pids whose PID namespace is INODE (a readlink of /proc/PID/ns/pid).
pids_in_ns() {
        local p n
        for p in /proc/[0-9]*; do
                n=$(readlink "$p/ns/pid" 2>/dev/null) || continue
                [ "$n" = "$1" ] && printf '%s ' "${p#/proc/}"
        done
        return 0
}

marker=daemoneye-ns-selftest-$$-$RANDOM

# ---------------------------------------------------------------- boot
if ! ns_prepare >&2; then
        tap_not_ok "overlay of / prepared"
        tap_done
        exit 1
fi
tap_ok "overlay of / prepared at $NS_ROOT"
# On the harness' private tmpfs: gone with the test's mount namespace.
fixtures=$NS_DIR/fixtures
if ! make_fixture pre >&2 || ! make_fixture post >&2; then
        tap_bail "cannot set up the fixture meson projects (meson missing?)"
fi
tap_check "install before boot (fixture 'pre')" ns_install "$fixtures/pre/build"

if ns_start 30 >&2; then
        tap_ok "systemd started as PID 1 of the namespace (host pid $NS_PID)"
else
        tap_not_ok "systemd started as PID 1 of the namespace"
        tap_done
        exit 1
fi
guest_pidns=$(readlink "/proc/$NS_PID/ns/pid")
tap_check "guest PID namespace differs from the test's" \
        test "$guest_pidns" != "$(readlink /proc/self/ns/pid)"
tap_check "guest sees systemd as its PID 1" ns_exec sh -c '[ "$(cat /proc/1/comm)" = systemd ]'

if ns_wait_running 60 2>/dev/null; then
        state=$(ns_exec systemctl is-system-running 2>/dev/null)
        if [ "$state" = running ]; then
                tap_ok "system is running (boot took ${NS_BOOT_SECONDS}s)"
        else
                tap_not_ok "system is running (state $state)"
                tap_diag "$(ns_exec systemctl --failed --no-legend 2>&1)"
        fi
else
        tap_not_ok "system finished booting"
        tap_diag "$(ns_diagnostics 2>&1)"
        tap_done
        exit 1
fi
tap_diag "boot: ${NS_BOOT_SECONDS}s from unshare to is-system-running=running"

# ---------------------------------------------------------------- isolation
tap_check "guest hostname is ${NS_HOSTNAME:-daemoneye-test}, host's unchanged" \
        sh -c '[ "$1" = "$2" ] && [ "$(hostname)" != "$1" ]' sh "$(ns_exec hostname)" "${NS_HOSTNAME:-daemoneye-test}"
tap_check "guest has its own cgroup subtree managed by its systemd" \
        test -d "$NS_CGROUP/init.scope" -a -d "$NS_CGROUP/system.slice"
tap_check "guest /proc/sys is read-only" ns_exec sh -c '! touch /proc/sys/kernel/hostname 2>/dev/null && findmnt -n -o OPTIONS /proc/sys | grep -q "^ro"'
tap_check "guest /sys is read-only" ns_exec sh -c 'findmnt -n -o OPTIONS /sys | grep -q "^ro"'
tap_check "systemd-detect-virt says container" ns_exec sh -c '[ "$(systemd-detect-virt --container)" != none ]'

# ---------------------------------------------------------------- D-Bus, polkit
tap_check "guest dbus.service is active" ns_exec systemctl is-active dbus.service
tap_check "busctl list shows org.freedesktop.DBus and systemd1" \
        ns_exec sh -c 'busctl list --no-pager --no-legend | grep -q "^org.freedesktop.DBus " && busctl list --no-pager --no-legend | grep -q "^org.freedesktop.systemd1 "'
tap_check "polkit is D-Bus activatable and comes up" \
        ns_exec busctl introspect --no-pager org.freedesktop.PolicyKit1 /org/freedesktop/PolicyKit1/Authority
tap_check "polkit.service is active" ns_exec systemctl is-active polkit.service
tap_check "useradd in the guest" ns_exec useradd --create-home --user-group de-user
out=$(ns_exec_as de-user busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
        org.freedesktop.systemd1.Manager StartUnit ss systemd-tmpfiles-clean.service replace 2>&1)
if [[ $out == *"Interactive authentication required"* ]]; then
        tap_ok "polkit denies an unprivileged user (StartUnit: interactive authentication required)"
else
        tap_not_ok "polkit denies an unprivileged user"
        tap_diag "$out"
fi
out=$(ns_exec_as de-user sh -c 'exec pkcheck --action-id org.daemoneye.selftest.pre --process $$' 2>&1)
rc=$?
if [ "$rc" -eq 2 ]; then
        tap_ok "pkcheck as an unprivileged user: authentication required for an installed action"
else
        tap_not_ok "pkcheck as an unprivileged user (exit $rc, expected 2)"
        tap_diag "$out"
fi
tap_check "pkcheck as root is authorized" \
        ns_exec sh -c 'exec pkcheck --action-id org.daemoneye.selftest.pre --process $$'

# ---------------------------------------------------------------- services
tap_check "transient service via systemd-run --wait" \
        ns_exec systemd-run --quiet --unit=hello-ns --wait -p StandardOutput=journal \
        /bin/sh -c "echo hello-$marker"
tap_check "journalctl -u hello-ns shows its output" journal_has hello-ns.service "hello-$marker"
cat >"$NS_ROOT/etc/systemd/system/hello-file.service" <<EOF
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo file-$marker; echo $marker > /etc/$marker; echo $marker > /tmp/$marker; echo $marker > /var/tmp/$marker'
EOF
reload_and_start() { ns_exec systemctl daemon-reload && ns_exec systemctl start "$1"; }
tap_check "unit file written into the overlay starts after daemon-reload" reload_and_start hello-file.service
tap_check "journalctl -u hello-file shows its output" journal_has hello-file.service "file-$marker"
# The sandboxing DaemonEye's units use must work in the guest (mount, IPC,
# UTS and network namespaces, seccomp, BPF for IPAddressDeny, procfs
# subset=pid).
cat >"$NS_ROOT/etc/systemd/system/hello-sandboxed.service" <<EOF
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo sandboxed-$marker; test ! -w /usr; test ! -e /dev/vda; test ! -e /proc/sys'
RuntimeDirectory=hello-sandboxed
LogsDirectory=hello-sandboxed
LimitNOFILE=65536
UMask=0077
CapabilityBoundingSet=
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateNetwork=yes
IPAddressDeny=any
PrivateIPC=yes
ProtectHostname=yes
ProtectClock=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectProc=invisible
ProcSubset=pid
RestrictAddressFamilies=AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
EOF
tap_check "a unit sandboxed like DaemonEye's (ProtectSystem=strict, PrivateDevices, ProtectProc, seccomp...) runs" \
        reload_and_start hello-sandboxed.service
tap_check "journalctl -u hello-sandboxed shows its output" journal_has hello-sandboxed.service "sandboxed-$marker"
fails() { ! "$@"; }
tap_check "without a D-Bus policy root may not own org.daemoneye.SelfTest.none" \
        fails ns_exec busctl call org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus RequestName su org.daemoneye.SelfTest.none 0
check_fixture pre "pre-boot"
tap_check "install after boot (fixture 'post')" ns_install "$fixtures/post/build"
check_fixture post "post-boot"

# ---------------------------------------------------------------- host untouched
ns_exec sh -c "echo $marker > /root/$marker" >/dev/null 2>&1
tap_check "guest wrote its markers (/etc, /tmp, /var/tmp, /root)" \
        ns_exec sh -c "test -f /etc/$marker -a -f /tmp/$marker -a -f /var/tmp/$marker -a -f /root/$marker"
tap_check "guest's /etc and /var writes land in the overlay's upper dir" \
        test -f "$NS_UPPER/etc/$marker" -a -f "$NS_UPPER/var/tmp/$marker"
tap_check "host has none of the markers" \
        sh -c '! ls -d /etc/"$1" /tmp/"$1" /var/tmp/"$1" /root/"$1" 2>/dev/null' sh "$marker"
tap_check "host has no de-pre/de-post/de-user users and no fixture files" \
        sh -c '! grep -qE "^de-(pre|post|user):" /etc/passwd && ! ls /usr/lib/systemd/system/de-selftest-* /usr/share/polkit-1/actions/org.daemoneye.selftest.* 2>/dev/null'

# ---------------------------------------------------------------- poweroff
dir=$NS_DIR cg=$NS_CGROUP unshare_pid=$NS_UNSHARE_PID
ns_poweroff
tap_check "poweroff: unshare process exited (took ${NS_POWEROFF_SECONDS}s)" sh -c "! kill -0 $unshare_pid 2>/dev/null"
tap_diag "poweroff: ${NS_POWEROFF_SECONDS}s from systemctl poweroff to the unshare process' exit"
left=$(pids_in_ns "$guest_pidns")
tap_check "poweroff: no process left in the guest's PID namespace" test -z "$left"
[ -z "$left" ] || tap_diag "left: $(ps -o pid,comm -p "${left// /,}" 2>&1)"
tap_check "poweroff: temp dir and mounts gone" \
        sh -c '! [ -e "$1" ] && ! grep -qF " $1" /proc/self/mountinfo' sh "$dir"
tap_check "poweroff: guest cgroup removed" test ! -e "$cg"

# ---------------------------------------------------------------- killed harness
# meson kills a test's process group on timeout: unshare --kill-child must take
# the guest down with it.
if ns_boot 30 2>/dev/null && ns_wait_running 60 2>/dev/null; then
        tap_ok "second boot"
        guest_pidns=$(readlink "/proc/$NS_PID/ns/pid") dir=$NS_DIR
        kill -KILL "$NS_UNSHARE_PID"
        tap_check "SIGKILL of unshare empties the guest's PID namespace" \
                _ns_wait_until 10 eval '[ -z "$(pids_in_ns "$guest_pidns")" ]'
        ns_poweroff
        tap_check "cleanup after a kill: temp dir and mounts gone" \
                sh -c '! [ -e "$1" ] && ! grep -qF " $1" /proc/self/mountinfo' sh "$dir"
else
        tap_not_ok "second boot"
        tap_diag "$(ns_diagnostics 2>&1)"
fi

tap_done
