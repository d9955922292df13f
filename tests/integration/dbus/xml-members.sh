#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# xml-members.sh [--names] FILE INTERFACE
# xml-members.sh --interfaces FILE
#
# The members of INTERFACE in the D-Bus introspection XML FILE, one per line,
# sorted, in a form that does not depend on how the XML is written (attribute
# order, quoting, whitespace, comments, defaults), so that our
# dbus-interfaces/*.xml and what a running service answers to Introspect can
# be compared with diff:
#   method NAME in:s out:a{sv}
#   signal NAME s s
#   property NAME TYPE ACCESS emits=true|false|const|invalidates
# With --names, arguments are TYPE:NAME (in:s:pattern). --interfaces lists
# the interfaces of the object (one name a line, sorted).
# Needs only xmllint (libxml2-utils); the external DTD is never loaded.
set -eu

names=0
if [ "${1:-}" = --interfaces ]; then
        xmllint --nonet --xpath '/node/interface/@name' "$2" 2>/dev/null |
                sed -e 's/name="\([^"]*\)"/\1\n/g' | sed -e 's/^ *//' -e '/^$/d' | LC_ALL=C sort
        exit 0
fi
if [ "${1:-}" = --names ]; then
        names=1
        shift
fi
[ $# -eq 2 ] || { echo "usage: $0 [--names] FILE INTERFACE | --interfaces FILE" >&2; exit 2; }
file=$1
iface=$2
xmllint --nonet --noout "$file" || { echo "$0: $file: not well-formed XML" >&2; exit 1; }

q() { # XPATH: its string value
        xmllint --nonet --xpath "$1" "$file" 2>/dev/null || true
}

base="/node/interface[@name='$iface']"
[ "$(q "count($base)")" = 1 ] || { echo "$0: $file: no interface $iface" >&2; exit 1; }

{
        for kind in method signal; do
                n=$(q "count($base/$kind)")
                i=1
                while [ "$i" -le "$n" ]; do
                        m="$base/$kind[$i]"
                        line="$kind $(q "string($m/@name)")"
                        na=$(q "count($m/arg)")
                        j=1
                        while [ "$j" -le "$na" ]; do
                                a="$m/arg[$j]"
                                t=$(q "string($a/@type)")
                                if [ "$kind" = method ]; then
                                        d=$(q "string($a/@direction)")
                                        t="${d:-in}:$t"
                                fi
                                [ "$names" = 0 ] || t="$t:$(q "string($a/@name)")"
                                line="$line $t"
                                j=$((j + 1))
                        done
                        echo "$line"
                        i=$((i + 1))
                done
        done
        n=$(q "count($base/property)")
        i=1
        while [ "$i" -le "$n" ]; do
                p="$base/property[$i]"
                emits=$(q "string($p/annotation[@name='org.freedesktop.DBus.Property.EmitsChangedSignal']/@value)")
                [ -n "$emits" ] ||
                        emits=$(q "string($base/annotation[@name='org.freedesktop.DBus.Property.EmitsChangedSignal']/@value)")
                echo "property $(q "string($p/@name)") $(q "string($p/@type)") $(q "string($p/@access)") emits=${emits:-true}"
                i=$((i + 1))
        done
} | LC_ALL=C sort
