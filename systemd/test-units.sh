#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Checks DaemonEye's systemd units with systemd-analyze, without systemd
# running: the units are only loaded, from copies whose ExecStart= points at
# the build's programs (verify insists that they exist and are executable).
#
#   test-units.sh verify   [--man-dir DIR] [--program INSTALLED=BUILT]... UNIT-FILE...
#   test-units.sh security [--man-dir DIR] [--program INSTALLED=BUILT]...
#                          [--max NAME.service=SCORE]... UNIT-FILE...
#   test-units.sh sysusers-tmpfiles SYSUSERS-FILE TMPFILES-FILE
#
# verify: `systemd-analyze verify` must exit 0 and print nothing at all (it
# exits 0 on unknown keys and bad values, which it only warns about).
# Documentation=man:PAGE(N) is looked up in --man-dir (flat NAME.N files),
# so every page a unit names must exist in the tree.
#
# security: prints `systemd-analyze security --offline=yes` of each .service
# and its overall exposure; fails when it is above its --max. A service
# without a --max fails too, so a new unit cannot go unrated.
#
# sysusers-tmpfiles: applies the sysusers.d and tmpfiles.d files to empty
# roots (systemd-sysusers/systemd-tmpfiles --root=, nothing of the host is
# read or written), which must print no warning, and checks the result: the
# user and group daemoneye, /run/daemoneye 0755 and its collectors/ 0700.
#
# Exit 77 (skip) when systemd-analyze is missing or older than systemd 250
# (systemd-sysusers, systemd-tmpfiles, or root for the ownership tmpfiles
# sets, for sysusers-tmpfiles).
set -euo pipefail

mode=${1:?usage: test-units.sh verify|security [OPTIONS] UNIT-FILE...}
shift
man_dir=
programs=()
declare -A max=()
units=()
while [ $# -gt 0 ]; do
        case $1 in
        --man-dir) man_dir=$2; shift 2 ;;
        --program) programs+=("$2"); shift 2 ;;
        --max) max[${2%%=*}]=${2#*=}; shift 2 ;;
        --*) echo "test-units.sh: unknown option $1" >&2; exit 2 ;;
        *) units+=("$1"); shift ;;
        esac
done
[ ${#units[@]} -gt 0 ] || { echo "test-units.sh: no files given" >&2; exit 2; }

if [ "$mode" = sysusers-tmpfiles ]; then
        [ ${#units[@]} -eq 2 ] || { echo "test-units.sh: sysusers-tmpfiles SYSUSERS TMPFILES" >&2; exit 2; }
        for tool in systemd-sysusers systemd-tmpfiles; do
                command -v $tool >/dev/null || { echo "$tool not found: skipped"; exit 77; }
        done
        if [ "$(id -u)" -ne 0 ]; then
                echo "not root: systemd-tmpfiles cannot give root the directories; skipped"
                exit 77
        fi
        # Absolute: both tools take a relative file name as relative to --root.
        units=("$(realpath "${units[0]}")" "$(realpath "${units[1]}")")
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
        mkdir -p "$tmp/sysusers/etc" "$tmp/tmpfiles"
        failed=0
        # Only "Creating group/user ..." is expected on stderr.
        out=$(systemd-sysusers --root="$tmp/sysusers" "${units[0]}" 2>&1) || { echo "$out"; exit 1; }
        printf '%s\n' "$out"
        if grep -v '^Creating \(group\|user\) ' <<<"$out" | grep -q .; then
                echo "FAIL systemd-sysusers printed warnings"
                failed=1
        fi
        passwd=$(grep '^daemoneye:' "$tmp/sysusers/etc/passwd" || true)
        group=$(grep '^daemoneye:' "$tmp/sysusers/etc/group" || true)
        echo "passwd: $passwd"
        echo "group:  $group"
        gid=$(cut -d: -f4 <<<"$passwd")
        if [ -z "$passwd" ] || [ -z "$group" ] || [ "$gid" != "$(cut -d: -f3 <<<"$group")" ]; then
                echo "FAIL no user daemoneye whose primary group is daemoneye"
                failed=1
        fi
        case $passwd in
        */nologin) ;;
        *) echo "FAIL daemoneye can log in"; failed=1 ;;
        esac
        out=$(systemd-tmpfiles --root="$tmp/tmpfiles" --create "${units[1]}" 2>&1) || { echo "$out"; exit 1; }
        if [ -n "$out" ]; then
                printf '%s\n' "$out"
                echo "FAIL systemd-tmpfiles printed warnings"
                failed=1
        fi
        for expect in "run/daemoneye 755 root root" "run/daemoneye/collectors 700 root root" \
                "var/log/daemoneye 750 root root"; do
                read -r path mode owner group_ <<<"$expect"
                got=$(stat -c '%a %U %G' "$tmp/tmpfiles/$path" 2>/dev/null || echo missing)
                if [ "$got" = "$mode $owner $group_" ]; then
                        echo "ok   /$path: $got"
                else
                        echo "FAIL /$path: $got, expected $mode $owner $group_"
                        failed=1
                fi
        done
        exit $failed
fi

analyze=$(command -v systemd-analyze || true)
if [ -z "$analyze" ]; then
        echo "systemd-analyze not found: skipped"
        exit 77
fi
version=$("$analyze" --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
echo "systemd-analyze of systemd ${version:-?}"
# security --offline=, verify --recursive-errors= came with systemd 250.
if [ -z "$version" ] || [ "$version" -lt 250 ]; then
        echo "systemd older than 250: skipped"
        exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/units" "$tmp/man"

# The units, with installed program paths replaced by the build's.
for unit in "${units[@]}"; do
        out=$tmp/units/$(basename "$unit")
        cp "$unit" "$out"
        for pair in "${programs[@]}"; do
                installed=${pair%%=*}
                built=${pair#*=}
                [ -x "$built" ] || { echo "$built: not built" >&2; exit 1; }
                # The installed path as a regular expression, then as a whole word.
                installed_re=$(printf '%s' "$installed" | sed 's/[][\\.*^$|]/\\&/g')
                sed -i "s|$installed_re\\b|$built|g" "$out"
        done
done

# man(1) wants MANPATH/manN/NAME.N.
if [ -n "$man_dir" ]; then
        for page in "$man_dir"/*.[1-8]; do
                [ -e "$page" ] || continue
                section=${page##*.}
                mkdir -p "$tmp/man/man$section"
                cp "$page" "$tmp/man/man$section/"
        done
fi
# Only our pages, and no user configuration of man to depend on.
export MANPATH=$tmp/man
export MANOPT='' MANPAGER=cat PAGER=cat SYSTEMD_PAGER=cat SYSTEMD_COLORS=0 LC_ALL=C.UTF-8
# Nothing from the environment the units are not loaded from.
unset SYSTEMD_UNIT_PATH

case $mode in
verify)
        status=0
        # Documentation=man: pages are checked with man(1), when there is one.
        check_man=yes
        if ! command -v man >/dev/null; then
                echo "man(1) not found: Documentation= not checked"
                check_man=no
        fi
        out=$("$analyze" verify --man=$check_man --generators=no --recursive-errors=yes \
                "$tmp"/units/*.service "$tmp"/units/*.socket 2>&1) || status=$?
        if [ $status -ne 0 ] || [ -n "$out" ]; then
                printf '%s\n' "$out" | sed "s|$tmp/units/||g"
                echo "systemd-analyze verify: exit status $status, and the warnings above" >&2
                exit 1
        fi
        echo "systemd-analyze verify: $(cd "$tmp/units" && echo *): clean"
        ;;
security)
        failed=0
        for unit in "$tmp"/units/*.service; do
                name=$(basename "$unit")
                status=0
                report=$("$analyze" security --offline=yes --no-pager "$unit" 2>&1) || status=$?
                printf '%s\n' "$report" | sed "s|$tmp/units/||g"
                score=$(printf '%s\n' "$report" | sed -n "s/^.*Overall exposure level for $name: \\([0-9.]*\\) .*/\\1/p")
                if [ $status -ne 0 ] || [ -z "$score" ]; then
                        echo "FAIL $name: no exposure level (systemd-analyze exit status $status)"
                        failed=1
                        continue
                fi
                limit=${max[$name]:-}
                if [ -z "$limit" ]; then
                        echo "FAIL $name: exposure $score, but the test sets no limit for it"
                        failed=1
                elif awk -v s="$score" -v m="$limit" 'BEGIN { exit !(s > m) }'; then
                        echo "FAIL $name: exposure $score is above its limit $limit"
                        failed=1
                else
                        echo "ok   $name: exposure $score (limit $limit)"
                fi
        done
        exit $failed
        ;;
*)
        echo "test-units.sh: unknown mode $mode" >&2
        exit 2
        ;;
esac
