# shellcheck shell=bash
# Functions called indirectly (_ns_wait_until) and single-quoted scripts run by
# other shells are intended:
# shellcheck disable=SC2016,SC2317
# Harness for the system test suite (meson test --suite system): boots a real
# systemd as PID 1 of a private PID/mount/cgroup/UTS/IPC/network namespace on an
# overlay of the host's / and drives it from outside with nsenter. The host
# filesystem is the overlay's read-only lower layer; every write of the guest
# (including ns_install's DESTDIR) lands in an upper dir on a private tmpfs that
# is thrown away by ns_poweroff.
#
# Usage (see test-systemd-ns.sh):
#       source "$(dirname "$0")/systemd-ns.sh"
#       ns_isolate "$@"                 # re-exec in a private mount namespace
#       trap ns_poweroff EXIT
#       ns_prepare                      # overlay mounted at $NS_ROOT, not booted
#       ns_install "$build_root"        # optional, before or after boot
#       ns_start                        # boot; $NS_PID = host pid of guest PID 1
#       ns_wait_running 60
#       ns_exec systemctl start foo.service
#       ns_poweroff
# ns_boot = ns_prepare + ns_start. Call ns_prepare/ns_start/ns_boot and
# ns_poweroff from the test's main shell, not from $(...), a pipeline or
# tap_check (which runs its command in a subshell): they set globals.
# ns_exec/ns_exec_as/ns_install are fine anywhere.
#
# TAP: tap_ok, tap_not_ok, tap_skip, tap_diag, tap_check DESC CMD..., tap_bail,
# tap_done (prints the plan; false if anything failed). Keep stdout for TAP:
# harness messages go to stderr.
#
# Knobs (environment, read by ns_prepare/ns_start):
#   NS_TMPDIR         where the temp dir is created (default /var/tmp)
#   NS_TMPFS_SIZE     size of the tmpfs holding upper/work dirs (default 2G)
#   NS_MASK_UNITS     units masked in the guest before boot (default below)
#   NS_MASK_EXTRA     more units to mask, added to NS_MASK_UNITS
#   NS_SHARE_NET=1    share the host's network namespace (default: private, only lo)
#   NS_HOSTNAME       guest hostname (default daemoneye-test)
#   NS_KEEP_LOGS=DIR  ns_poweroff copies the console and the guest journal there
#                     (bootN-console.log, bootN-journal.txt)
#   NS_VERBOSE=1      harness progress messages on stderr
# Globals set: NS_DIR NS_ROOT NS_UPPER NS_CONSOLE NS_CGROUP NS_UNSHARE_PID NS_PID
#              NS_BOOT_SECONDS NS_POWEROFF_SECONDS

NS_GUEST_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Enabled on the host (or pulled in by default on Debian) but useless or slow in
# the guest, or host-global kernel interfaces (debugfs, tracefs); masked via
# /etc/systemd/system/<unit> -> /dev/null in the overlay.
: "${NS_MASK_UNITS:=postgresql.service mosquitto.service nats-server.service \
e2scrub_reap.service e2scrub_all.timer apt-daily.timer apt-daily-upgrade.timer \
dpkg-db-backup.timer fstrim.timer man-db.timer logrotate.timer \
getty@tty1.service console-getty.service serial-getty@.service \
systemd-timesyncd.service systemd-pstore.service remote-fs.target \
cron.service ssh.service \
sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount \
sys-fs-fuse-connections.mount dev-hugepages.mount}"

NS_DIR=
NS_ROOT=
NS_UPPER=
NS_CONSOLE=
NS_CGROUP=
NS_CGROUP_MNT=
NS_UNSHARE_PID=
NS_PID=
NS_CONSOLE_PID=
NS_BOOT_COUNT=0
NS_BOOT_SECONDS=
NS_POWEROFF_SECONDS=
NS_BOOT_START=

# ---------------------------------------------------------------- TAP helpers

TAP_N=0
TAP_FAILED=0

tap_diag() { local l; while IFS= read -r l; do printf '# %s\n' "$l"; done <<<"$*"; }
tap_ok() { TAP_N=$((TAP_N + 1)); printf 'ok %d - %s\n' "$TAP_N" "$*"; }
tap_not_ok() { TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1)); printf 'not ok %d - %s\n' "$TAP_N" "$*"; }
tap_skip() { TAP_N=$((TAP_N + 1)); printf 'ok %d - %s # SKIP %s\n' "$TAP_N" "$1" "${2:-}"; }
# tap_check DESCRIPTION CMD...: one test point from CMD's exit status; CMD's
# output becomes diagnostics when it fails.
tap_check() {
        local desc=$1 out rc=0
        shift
        out=$("$@" 2>&1) || rc=$?
        if [ "$rc" -eq 0 ]; then
                tap_ok "$desc"
        else
                tap_not_ok "$desc"
                tap_diag "command: $* (exit $rc)"
                [ -z "$out" ] || tap_diag "$out"
        fi
        return "$rc"
}
tap_bail() { printf 'Bail out! %s\n' "$*"; exit 1; }
# tap_done: the plan, and the exit status meson expects.
tap_done() {
        printf '1..%d\n' "$TAP_N"
        [ "$TAP_FAILED" -eq 0 ]
}

# ---------------------------------------------------------------- internals

_ns_log() { [ -z "${NS_VERBOSE:-}" ] || printf 'systemd-ns: %s\n' "$*" >&2; }
_ns_err() { printf 'systemd-ns: %s\n' "$*" >&2; }
_ns_now() { date +%s.%N; }
_ns_elapsed() { awk -v a="$1" -v b="$(_ns_now)" 'BEGIN { printf "%.2f", b - a }'; }

# True while PID exists and is not a zombie.
_ns_alive() {
        local st
        [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
        st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
        [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# _ns_wait_until TIMEOUT CMD...: polls CMD every 0.1 s until it succeeds or
# TIMEOUT seconds pass; CMD returning 2 means give up now.
_ns_wait_until() {
        local deadline r
        deadline=$(awk -v t="$1" -v n="$(_ns_now)" 'BEGIN { printf "%.3f", n + t }')
        shift
        while :; do
                r=0
                "$@" || r=$?
                [ "$r" -eq 0 ] && return 0
                [ "$r" -eq 2 ] && return 1
                awk -v d="$deadline" -v n="$(_ns_now)" 'BEGIN { exit !(n >= d) }' && return 1
                sleep 0.1
        done
}

_ns_require() {
        local c
        for c in unshare nsenter mount umount setpriv findmnt; do
                command -v "$c" >/dev/null || { _ns_err "missing $c (util-linux)"; return 1; }
        done
        [ -x /lib/systemd/systemd ] || { _ns_err "missing /lib/systemd/systemd (package systemd)"; return 1; }
        [ "$(id -u)" -eq 0 ] || { _ns_err "must run as root"; return 1; }
        grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
        grep -qw overlay /proc/filesystems || { _ns_err "kernel has no overlayfs"; return 1; }
}

# A cgroup for the guest, below the test's own cgroup in the cgroup2 hierarchy
# (hybrid hosts have it at /sys/fs/cgroup/unified; pure-v2 hosts at
# /sys/fs/cgroup; mounted privately when missing). The guest gets a cgroup
# namespace rooted there and its own cgroup2 mount, so its systemd manages only
# that subtree.
_ns_setup_cgroup() {
        local mnt self
        mnt=$(findmnt -n -t cgroup2 -o TARGET | head -n 1)
        if [ -z "$mnt" ]; then
                mnt=$NS_DIR/cgroup2
                mkdir -p "$mnt"
                mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$mnt" || return 1
        fi
        NS_CGROUP_MNT=$mnt
        self=$(sed -n 's/^0:://p' /proc/self/cgroup)
        NS_CGROUP=$mnt${self%/}/daemoneye-ns.$$.${NS_DIR##*.}
        _ns_reap_stale_cgroups "$mnt${self%/}"
        mkdir "$NS_CGROUP"
}

# What a SIGKILLed test leaves behind: its empty temp dir (the tmpfs was in
# its private mount namespace) and empty cgroups. Removed once the pid in the
# name is gone; rmdir only ever removes empty directories and cgroups.
_ns_reap_stale() {
        local d pid
        for d in "${NS_TMPDIR:-/var/tmp}"/daemoneye-ns.[0-9]*.*; do
                [ -d "$d" ] || continue
                pid=${d##*/daemoneye-ns.}
                pid=${pid%%.*}
                [ -e "/proc/$pid" ] || rmdir "$d" 2>/dev/null || true
        done
}
_ns_reap_stale_cgroups() {
        local d pid
        for d in "$1"/daemoneye-ns.[0-9]*.*; do
                [ -d "$d" ] || continue
                pid=${d##*/daemoneye-ns.}
                pid=${pid%%.*}
                [ -e "/proc/$pid" ] || find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
        done
}

_ns_cleanup_cgroup() {
        [ -n "$NS_CGROUP" ] && [ -d "$NS_CGROUP" ] || return 0
        # Children first; a cgroup can be removed once its processes are reaped.
        _ns_wait_until 10 sh -c 'find "$1" -depth -type d -exec rmdir {} + 2>/dev/null; ! [ -d "$1" ]' sh "$NS_CGROUP" ||
                _ns_err "could not remove cgroup $NS_CGROUP: $(tr '\n' ' ' <"$NS_CGROUP/cgroup.procs" 2>/dev/null)"
        NS_CGROUP=
}

# The guest's PID 1 (run by unshare inside the new namespaces): stage 1 joins
# the guest cgroup and unshares the cgroup namespace; stage 2 mounts the API
# filesystems into the overlay, makes it the root and execs systemd.
_NS_INIT_SCRIPT='
set -eu
R=$1 CG=$2 CONSOLE=$3 HOSTNAME_=$4 stage=${5:-1}
if [ "$stage" = 1 ]; then
        echo 0 > "$CG/cgroup.procs"
        exec unshare --cgroup -- /bin/bash -c "$BASH_EXECUTION_STRING" "$0" "$R" "$CG" "$CONSOLE" "$HOSTNAME_" 2
fi
mount --make-rprivate /
# /proc of the new PID namespace; /proc/sys read-only so the guest cannot
# change the host kernel (systemd-sysctl, binfmt etc. skip read-only /proc/sys).
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
for p in sys sysrq-trigger; do
        [ -e "$R/proc/$p" ] || continue
        mount --bind "$R/proc/$p" "$R/proc/$p"
        mount -o remount,bind,ro "$R/proc/$p"
done
# sysfs read-only (udev and friends skip it), cgroup2 of the namespace writable.
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup"
# A minimal /dev like systemd-nspawn: no disks, no kmsg, no host ttys.
mount -t tmpfs -o mode=0755,nosuid,strictatime,size=4m tmpfs "$R/dev"
mknod -m 0666 "$R/dev/null" c 1 3
mknod -m 0666 "$R/dev/zero" c 1 5
mknod -m 0666 "$R/dev/full" c 1 7
mknod -m 0666 "$R/dev/random" c 1 8
mknod -m 0666 "$R/dev/urandom" c 1 9
mknod -m 0666 "$R/dev/tty" c 5 0
mkdir -m 0755 "$R/dev/pts"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mkdir -m 1777 "$R/dev/shm"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"
mkdir -m 1777 "$R/dev/mqueue"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
# The console: a pty whose master side the harness copies into console.log
# (systemd and journald only write to a console that is a tty), or the log
# file itself when there is no pty.
touch "$R/dev/console"
mount --bind "$CONSOLE" "$R/dev/console"
mount -t tmpfs -o mode=0755,nosuid,nodev,size=20%,nr_inodes=800k tmpfs "$R/run"
mount -t tmpfs -o mode=1777,nosuid,nodev,size=20%,nr_inodes=1m tmpfs "$R/tmp"
hostname "$HOSTNAME_"
cd "$R"
pivot_root . .
umount -l .
cd /
exec </dev/null >/dev/console 2>&1
# The hard limit systemd hands to services on a real Debian boot (fails
# silently where the harness itself lacks CAP_SYS_RESOURCE; systemd then clamps
# LimitNOFILE= of services to the inherited hard limit).
ulimit -Hn 524288 2>/dev/null || true
# Like nspawn: no changing the host clock or loading kernel modules.
exec setpriv --bounding-set -sys_time,-sys_module,-wake_alarm \
        env -i container=daemoneye-test TERM=dumb SYSTEMD_COLORS=0 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        /lib/systemd/systemd --system --show-status=error --log-color=no
'

# Console copier: opens a pty pair, writes the slave's path to $1 and copies
# whatever is written to the slave into $2 until killed. It keeps the slave
# open itself so that reads block instead of failing between guest writers.
_NS_CONSOLE_PY='
import os, sys
m, s = os.openpty()
with open(sys.argv[1] + ".new", "w") as f:
    f.write(os.ttyname(s) + "\n")
os.rename(sys.argv[1] + ".new", sys.argv[1])
log = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND)
while True:
    try:
        data = os.read(m, 65536)
    except OSError:
        break
    if not data:
        break
    os.write(log, data.replace(b"\r", b""))
'

# ---------------------------------------------------------------- API

# meson's timeout sends SIGTERM to the test's process group (SIGKILL 0.5 s
# later): make the shell exit through its EXIT trap (ns_poweroff) instead of
# dying on the spot, and kill the guest rather than power it off. Keeps traps
# the caller set.
_ns_exit_on_signals() {
        [ -n "$(trap -p TERM)" ] || trap 'NS_FAST_EXIT=1; exit 143' TERM
        [ -n "$(trap -p INT)" ] || trap 'NS_FAST_EXIT=1; exit 130' INT
        [ -n "$(trap -p HUP)" ] || trap 'NS_FAST_EXIT=1; exit 129' HUP
}

# ns_skip_unless_supported: prints a TAP skip plan and exits 0 when the
# harness cannot work here (not root, tools missing, no namespaces/overlayfs).
ns_skip_unless_supported() {
        local why=
        if [ "$(id -u)" -ne 0 ]; then
                why="needs root"
        elif ! command -v unshare >/dev/null || ! command -v nsenter >/dev/null || ! command -v setpriv >/dev/null; then
                why="needs util-linux (unshare, nsenter, setpriv)"
        elif ! [ -x /lib/systemd/systemd ] || ! command -v systemctl >/dev/null; then
                why="needs systemd installed"
        elif ! command -v dbus-daemon >/dev/null; then
                why="needs dbus-daemon (package dbus)"
        elif ! grep -qw overlay /proc/filesystems && ! modprobe overlay 2>/dev/null; then
                why="needs overlayfs"
        elif ! unshare --mount --pid --fork --uts --ipc --net --cgroup true 2>/dev/null; then
                why="cannot create namespaces here"
        fi
        [ -z "$why" ] && return 0
        printf '1..0 # SKIP %s\n' "$why"
        exit 0
}

# ns_isolate "$@": re-executes the calling script in a private mount namespace
# so that the harness' mounts never show up in (or outlive the test in) the
# host's mount table. Call first thing, before any output.
ns_isolate() {
        if [ "${NS_ISOLATED:-}" = "$$" ]; then
                _ns_exit_on_signals
                return 0
        fi
        export NS_ISOLATED=$$
        exec unshare --mount --propagation private -- "${BASH:-bash}" "$0" "$@"
}

# ns_prepare: temp dir on a private tmpfs, overlay of / mounted at $NS_ROOT,
# guest configuration (masks, journald, hostname) written into the overlay.
ns_prepare() {
        _ns_require || return 1
        [ "${NS_ISOLATED:-}" = "$$" ] || _ns_err "warning: not isolated (call ns_isolate); mounts are visible on the host until ns_poweroff"
        _ns_exit_on_signals
        _ns_reap_stale
        # The test's pid in the name: _ns_reap_stale knows when it is stale.
        NS_DIR=$(mktemp -d "${NS_TMPDIR:-/var/tmp}/daemoneye-ns.$$.XXXXXX") || return 1
        # The overlay's upper and work dirs must not be on the lower layer's
        # filesystem (/): a tmpfs is a filesystem of its own and supports
        # everything overlayfs wants of an upper dir (xattrs, whiteouts).
        mount -t tmpfs -o "mode=0700,size=${NS_TMPFS_SIZE:-2G}" daemoneye-ns "$NS_DIR" || return 1
        mkdir -m 0755 "$NS_DIR/upper" "$NS_DIR/root"
        mkdir -m 0700 "$NS_DIR/work"
        NS_UPPER=$NS_DIR/upper
        NS_ROOT=$NS_DIR/root
        # Only the root filesystem is the lower layer; submounts of the host
        # (/proc, /sys, /dev, ...) are replaced with fresh ones by the init.
        mount -t overlay daemoneye-ns -o "lowerdir=/,upperdir=$NS_UPPER,workdir=$NS_DIR/work" "$NS_ROOT" ||
                mount -t overlay daemoneye-ns -o "lowerdir=/,upperdir=$NS_UPPER,workdir=$NS_DIR/work,index=off,redirect_dir=off,metacopy=off" "$NS_ROOT" ||
                mount -t overlay daemoneye-ns -o "lowerdir=/,upperdir=$NS_UPPER,workdir=$NS_DIR/work,userxattr" "$NS_ROOT" || {
                _ns_err "cannot mount an overlay of /"
                return 1
        }
        NS_CONSOLE=$NS_DIR/console.log
        : >"$NS_CONSOLE"

        local u etc=$NS_ROOT/etc
        mkdir -p "$etc/systemd/system" "$etc/systemd/journald.conf.d"
        for u in $NS_MASK_UNITS ${NS_MASK_EXTRA:-}; do
                ln -sfn /dev/null "$etc/systemd/system/$u"
        done
        # Journal in the guest's /run, every line kept (tests grep it), and a copy
        # on the console (a file on the host side) for post-mortems.
        printf '[Journal]\nStorage=volatile\nRateLimitIntervalSec=0\nRateLimitBurst=0\nForwardToConsole=yes\nTTYPath=/dev/console\nMaxLevelConsole=info\n' \
                >"$etc/systemd/journald.conf.d/50-daemoneye-test.conf"
        printf '%s\n' "${NS_HOSTNAME:-daemoneye-test}" >"$etc/hostname"
        _ns_log "prepared $NS_ROOT"
}

# ns_start [TIMEOUT]: boots systemd in the namespaces; returns once the guest's
# PID 1 is systemd (not once boot is finished: see ns_wait_running). Prints the
# guest PID 1's host pid on stderr; also in $NS_PID and $NS_DIR/pid.
ns_start() {
        local timeout=${1:-30}
        [ -n "$NS_ROOT" ] || { _ns_err "ns_start before ns_prepare"; return 1; }
        _ns_setup_cgroup || return 1
        local console=$NS_CONSOLE
        if command -v python3 >/dev/null; then
                python3 -c "$_NS_CONSOLE_PY" "$NS_DIR/console.tty" "$NS_CONSOLE" \
                        </dev/null >/dev/null 2>>"$NS_CONSOLE" &
                NS_CONSOLE_PID=$!
                disown "$NS_CONSOLE_PID"
                if _ns_wait_until 5 test -s "$NS_DIR/console.tty"; then
                        console=$(cat "$NS_DIR/console.tty")
                else
                        _ns_err "no pty for the console; using a plain file"
                fi
        fi
        local ns_flags=(--mount --pid --fork --kill-child --uts --ipc)
        [ "${NS_SHARE_NET:-}" = 1 ] || ns_flags+=(--net)
        NS_BOOT_COUNT=$((NS_BOOT_COUNT + 1))
        NS_BOOT_SECONDS=
        NS_BOOT_START=$(_ns_now)
        # --kill-child: if unshare dies (the test SIGKILLed by meson's
        # timeout), the kernel SIGKILLs the guest's PID 1 and with it the
        # whole namespace. unshare ignores the SIGTERM/SIGINT/SIGHUP sent to
        # the test's process group (systemd resets signal dispositions), so
        # the guest is either powered off or killed by ns_poweroff, which
        # lets unshare reap it.
        (
                trap '' TERM INT HUP
                exec unshare "${ns_flags[@]}" -- /bin/bash -c "$_NS_INIT_SCRIPT" ns-init \
                        "$NS_ROOT" "$NS_CGROUP" "$console" "${NS_HOSTNAME:-daemoneye-test}"
        ) </dev/null >>"$NS_CONSOLE" 2>&1 &
        NS_UNSHARE_PID=$!
        # Not a job of the test's shell: no "Killed" notice when a test kills
        # it on purpose; liveness is checked through /proc.
        disown "$NS_UNSHARE_PID"
        _ns_log "unshare pid $NS_UNSHARE_PID"

        _ns_find_init() {
                _ns_alive "$NS_UNSHARE_PID" || return 2
                local c
                c=$(cat "/proc/$NS_UNSHARE_PID/task/$NS_UNSHARE_PID/children" 2>/dev/null ||
                        pgrep -P "$NS_UNSHARE_PID")
                c=${c%% *}
                [ -n "$c" ] || return 1
                case $(readlink "/proc/$c/exe" 2>/dev/null) in
                */systemd/systemd) ;;
                *) return 1 ;;
                esac
                # systemd is up far enough to be entered once its private
                # socket exists.
                [ -S "/proc/$c/root/run/systemd/private" ] || return 1
                NS_PID=$c
        }
        if ! _ns_wait_until "$timeout" _ns_find_init; then
                _ns_err "guest systemd did not start within ${timeout}s"
                _ns_err "console:"
                tail -n 50 "$NS_CONSOLE" >&2
                return 1
        fi
        printf '%s\n' "$NS_PID" >"$NS_DIR/pid"
        printf 'systemd-ns: booted, guest PID 1 = host pid %s (unshare %s), root %s\n' \
                "$NS_PID" "$NS_UNSHARE_PID" "$NS_ROOT" >&2
}

# ns_boot [TIMEOUT]: ns_prepare + ns_start.
ns_boot() {
        ns_prepare || return 1
        ns_start "${1:-30}"
}

# ns_exec CMD...: runs CMD inside the guest (its namespaces, root and cwd) with
# a clean environment. The process is in the guest's PID namespace but not in
# a cgroup of the guest's systemd (it stays in the caller's cgroup).
ns_exec() {
        [ -n "$NS_PID" ] || { _ns_err "ns_exec: guest not booted"; return 1; }
        local ns=(--mount --pid --uts --ipc --cgroup)
        [ "${NS_SHARE_NET:-}" = 1 ] || ns+=(--net)
        # NS_EXEC_ENV="A=1 B=2" adds variables (split on purpose).
        # shellcheck disable=SC2086
        nsenter --target "$NS_PID" "${ns[@]}" --root --wd -- \
                /usr/bin/env -i PATH="$NS_GUEST_PATH" HOME=/root USER=root LOGNAME=root \
                LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER='' SYSTEMD_COLORS=0 SYSTEMD_LOG_COLOR=0 \
                ${NS_EXEC_ENV:-} "$@"
}

# ns_exec_as USER CMD...: like ns_exec, as USER (uid, gid and supplementary
# groups from the guest's passwd/group; no PAM, no logind session, no
# capabilities). For polkit that is an unprivileged caller without a session.
ns_exec_as() {
        local user=$1 pw gid home
        shift
        pw=$(ns_exec getent passwd "$user") || {
                _ns_err "ns_exec_as: no user $user in the guest"
                return 1
        }
        gid=$(cut -d: -f4 <<<"$pw")
        home=$(cut -d: -f6 <<<"$pw")
        # shellcheck disable=SC2086
        ns_exec setpriv --reuid="$user" --regid="$gid" --init-groups --reset-env -- \
                /usr/bin/env PATH="$NS_GUEST_PATH" HOME="${home:-/}" USER="$user" LOGNAME="$user" \
                LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER='' SYSTEMD_COLORS=0 ${NS_EXEC_ENV:-} "$@"
}

# ns_wait_running TIMEOUT: waits until the guest finished booting. Running or
# degraded is success (failed units are listed for degraded); anything else
# after TIMEOUT seconds fails with diagnostics.
ns_wait_running() {
        local timeout=${1:-60} state=
        _ns_state() {
                _ns_alive "$NS_UNSHARE_PID" || { state=dead; return 0; }
                state=$(ns_exec timeout 2 systemctl is-system-running --wait 2>/dev/null) || true
                case $state in running | degraded) return 0 ;; esac
                return 1
        }
        _ns_wait_until "$timeout" _ns_state || true
        [ -n "$NS_BOOT_START" ] && [ -z "$NS_BOOT_SECONDS" ] && NS_BOOT_SECONDS=$(_ns_elapsed "$NS_BOOT_START")
        case $state in
        running)
                _ns_log "guest running after ${NS_BOOT_SECONDS}s"
                return 0
                ;;
        degraded)
                _ns_err "guest degraded after ${NS_BOOT_SECONDS}s; failed units:"
                ns_exec systemctl --failed --no-legend --plain >&2 || true
                return 0
                ;;
        esac
        [ "$state" = dead ] || state=$(ns_exec timeout 5 systemctl is-system-running 2>/dev/null)
        _ns_err "guest not running after ${timeout}s (state: ${state:-unknown})"
        ns_diagnostics
        return 1
}

# ns_diagnostics: what went wrong, on stderr.
ns_diagnostics() {
        {
                echo "---- console (last 40 lines)"
                tail -n 40 "$NS_CONSOLE" 2>/dev/null
                if [ -n "$NS_PID" ] && _ns_alive "$NS_PID"; then
                        echo "---- systemctl list-jobs"
                        ns_exec timeout 10 systemctl list-jobs --no-pager 2>&1
                        echo "---- systemctl --failed"
                        ns_exec timeout 10 systemctl --failed --no-pager 2>&1
                        echo "---- journal (last 80 lines)"
                        ns_exec timeout 10 journalctl -b --no-pager -n 80 2>&1
                fi
        } >&2
}

# ns_install BUILD_DIR: installs a meson build into the guest. Before boot the
# files simply land in the overlay; after boot, units, sysusers, tmpfiles,
# D-Bus and polkit configuration are reloaded. Configure the build with
# --prefix=/usr --sysconfdir=/etc --localstatedir=/var for the guest's
# systemd, dbus-daemon and polkitd to find what is installed.
ns_install() {
        local build=$1 log f sysusers=() tmpfiles=() polkit=0 dbus=0 units=0
        [ -n "$NS_ROOT" ] || { _ns_err "ns_install before ns_prepare"; return 1; }
        local prefix
        prefix=$(python3 -c 'import json, sys
print(next(o["value"] for o in json.load(open(sys.argv[1])) if o["name"] == "prefix"))' \
                "$build/meson-info/intro-buildoptions.json" 2>/dev/null) || true
        [ -z "$prefix" ] || [ "$prefix" = /usr ] ||
                _ns_err "warning: $build has prefix $prefix; the guest's dbus-daemon and polkitd only read /usr/share (configure with --prefix=/usr --sysconfdir=/etc --localstatedir=/var)"
        meson install -C "$build" --no-rebuild --quiet --destdir "$NS_ROOT" >&2 || return 1
        log=$build/meson-logs/install-log.txt
        if [ -r "$log" ]; then
                while IFS= read -r f; do
                        case $f in '#'*) continue ;; esac
                        f=${f#"$NS_ROOT"}
                        case $f in
                        */sysusers.d/*.conf) sysusers+=("$f") ;;
                        */tmpfiles.d/*.conf) tmpfiles+=("$f") ;;
                        */polkit-1/*) polkit=1 ;;
                        */dbus-1/*) dbus=1 ;;
                        */systemd/system/* | */systemd/system-generators/*) units=1 ;;
                        esac
                done <"$log"
        fi
        _ns_log "installed $build: ${#sysusers[@]} sysusers, ${#tmpfiles[@]} tmpfiles, dbus=$dbus polkit=$polkit units=$units"
        if [ -z "$NS_PID" ]; then
                # Not booted: users now (offline), tmpfiles at boot.
                [ "${#sysusers[@]}" -eq 0 ] || systemd-sysusers --root="$NS_ROOT" "${sysusers[@]/#/$NS_ROOT}" >&2 || return 1
                ldconfig -r "$NS_ROOT" 2>/dev/null || true
                return 0
        fi
        [ "${#sysusers[@]}" -eq 0 ] || ns_exec systemd-sysusers "${sysusers[@]}" >&2 || return 1
        [ "${#tmpfiles[@]}" -eq 0 ] || ns_exec systemd-tmpfiles --create "${tmpfiles[@]}" >&2 || return 1
        ns_exec ldconfig >&2 || true
        ns_exec systemctl daemon-reload >&2 || return 1
        if [ "$dbus" = 1 ] && ns_exec systemctl -q is-active dbus.service; then
                ns_exec busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig >&2 || return 1
        fi
        # polkitd reads actions only when it starts.
        [ "$polkit" = 0 ] || ns_exec systemctl try-restart polkit.service >&2 || return 1
}

# SIGKILL of a namespace's PID 1 kills every process in it; unshare's
# --kill-child does the same when unshare is killed.
# The guest's PID 1 first, so that unshare reaps it and exits by itself (were
# unshare killed first, PID 1 would be left to the host's init to reap).
_ns_kill() {
        if [ -n "$NS_PID" ]; then
                kill -KILL "$NS_PID" 2>/dev/null || true
                _ns_wait_until 5 eval '! _ns_alive "$NS_UNSHARE_PID"' && return 0
        fi
        kill -KILL "$NS_UNSHARE_PID" 2>/dev/null || true
        _ns_wait_until 10 eval '! _ns_alive "$NS_UNSHARE_PID"' || _ns_err "unshare $NS_UNSHARE_PID still alive"
}

# ns_poweroff: powers the guest off and removes everything ns_prepare made.
# Safe to call more than once and from an EXIT trap (keeps the exit status).
ns_poweroff() {
        local rc=$? t0
        if [ -n "$NS_UNSHARE_PID" ]; then
                t0=$(_ns_now)
                if [ -n "${NS_FAST_EXIT:-}" ] || [ -z "$NS_PID" ]; then
                        # Killed by a signal (meson's timeout gives 0.5 s before
                        # SIGKILL) or systemd never came up: no poweroff.
                        _ns_kill
                elif _ns_alive "$NS_UNSHARE_PID"; then
                        if [ -n "${NS_KEEP_LOGS:-}" ]; then
                                mkdir -p "$NS_KEEP_LOGS"
                                ns_exec timeout 20 journalctl -b --no-pager -o short-monotonic \
                                        >"$NS_KEEP_LOGS/boot$NS_BOOT_COUNT-journal.txt" 2>&1 || true
                        fi
                        # --no-block: the reply might not make it before the
                        # manager goes away.
                        ns_exec timeout 10 systemctl --no-block poweroff >/dev/null 2>&1 || true
                        if ! _ns_wait_until "${NS_POWEROFF_TIMEOUT:-30}" eval '! _ns_alive "$NS_UNSHARE_PID"'; then
                                _ns_err "guest did not power off within ${NS_POWEROFF_TIMEOUT:-30}s; killing it"
                                _ns_kill
                        fi
                fi
                NS_POWEROFF_SECONDS=$(_ns_elapsed "$t0")
                _ns_log "powered off in ${NS_POWEROFF_SECONDS}s"
                NS_UNSHARE_PID=
        fi
        if [ -n "$NS_CONSOLE_PID" ]; then
                kill -TERM "$NS_CONSOLE_PID" 2>/dev/null || true
                _ns_wait_until 5 eval '! _ns_alive "$NS_CONSOLE_PID"' || kill -KILL "$NS_CONSOLE_PID" 2>/dev/null || true
                NS_CONSOLE_PID=
        fi
        if [ -n "${NS_KEEP_LOGS:-}" ] && [ -n "$NS_CONSOLE" ] && [ -f "$NS_CONSOLE" ]; then
                mkdir -p "$NS_KEEP_LOGS"
                cp "$NS_CONSOLE" "$NS_KEEP_LOGS/boot$NS_BOOT_COUNT-console.log" || true
        fi
        _ns_cleanup_cgroup
        if [ -n "$NS_DIR" ]; then
                if [ -n "$NS_ROOT" ] && mountpoint -q "$NS_ROOT"; then
                        umount "$NS_ROOT" 2>/dev/null || umount -l "$NS_ROOT" || true
                fi
                if [ -n "$NS_CGROUP_MNT" ] && [ "$NS_CGROUP_MNT" = "$NS_DIR/cgroup2" ]; then
                        umount "$NS_CGROUP_MNT" 2>/dev/null || umount -l "$NS_CGROUP_MNT" || true
                fi
                if mountpoint -q "$NS_DIR"; then
                        umount "$NS_DIR" 2>/dev/null || umount -l "$NS_DIR" || true
                fi
                # Never rm -r: if an unmount failed this would reach the host.
                mountpoint -q "$NS_DIR" || rmdir "$NS_DIR" 2>/dev/null || _ns_err "left $NS_DIR behind"
                NS_DIR='' NS_ROOT='' NS_UPPER='' NS_CONSOLE=''
        fi
        NS_PID=
        return "$rc"
}
