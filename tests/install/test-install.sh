#!/usr/bin/env bash
# Installs the build into a temp DESTDIR and builds a third-party program from
# the installed headers and daemoneye-eventbus.pc alone, then runs it against
# the built agent: what a collector author outside this tree would do.
set -euo pipefail

build_root=$1
source_dir=$2
tmp=$(mktemp -d)
agent_pid=
cleanup() {
        if [ -n "$agent_pid" ]; then
                kill "$agent_pid" 2>/dev/null || true
                wait "$agent_pid" 2>/dev/null || true
        fi
        rm -rf "$tmp"
}
trap cleanup EXIT

meson install -C "$build_root" --no-rebuild --quiet --destdir "$tmp/root" >/dev/null

pc=$(find "$tmp/root" -name daemoneye-eventbus.pc | head -n 1)
[ -n "$pc" ] || { echo "daemoneye-eventbus.pc was not installed" >&2; exit 1; }
# Point the .pc file's prefix into the DESTDIR; a sysroot or --define-variable
# would move glib's paths too.
mkdir "$tmp/pc"
sed "s|^prefix=|prefix=$tmp/root|" "$pc" > "$tmp/pc/daemoneye-eventbus.pc"
export PKG_CONFIG_PATH=$tmp/pc
# shellcheck disable=SC2046
${CC:-cc} ${EXTRA_CFLAGS:-} -std=gnu11 -Wall -Werror -o "$tmp/third-party" "$source_dir/third-party.c" \
        $(pkg-config --cflags --libs daemoneye-eventbus)

lib=$(dirname "$(find "$tmp/root" -name 'libdaemoneye-eventbus.so.0' | head -n 1)")
agent=$(find "$tmp/root" -name daemoneye-agent -type f | head -n 1)
printf '[broker]\nsocket_path=%s/eventbus.sock\n' "$tmp" > "$tmp/daemoneye.conf"
"$agent" --config "$tmp/daemoneye.conf" 2>"$tmp/agent.log" &
agent_pid=$!
for _ in $(seq 1 100); do
        [ -S "$tmp/eventbus.sock" ] && break
        sleep 0.05
done
[ -S "$tmp/eventbus.sock" ] || { echo "agent did not listen:" >&2; cat "$tmp/agent.log" >&2; exit 1; }

LD_LIBRARY_PATH=$lib "$tmp/third-party" "$tmp/eventbus.sock"
echo "installed library, header and pkg-config file work for a third-party program"
