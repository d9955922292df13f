#!/usr/bin/env bash
# Installs the Debian bookworm packages DaemonEye needs to build, test and
# benchmark, and nothing when they are all present already.
set -euo pipefail

packages=(
        # build
        meson ninja-build pkg-config gcc python3 libxml2-utils
        libglib2.0-dev libjson-glib-dev libprotobuf-c-dev protobuf-c-compiler libsystemd-dev
        # the D-Bus front's tests: a private bus, the real polkitd, busctl/gdbus/dbus-send, setpriv/unshare
        dbus-daemon dbus-bin polkitd systemd libglib2.0-bin util-linux
        # sanitizer and fuzz builds
        clang libclang-rt-14-dev
        # benchmark peers (tests/bench)
        mosquitto libmosquitto-dev nats-server libnats-dev
)

missing=()
for p in "${packages[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        [ "$status" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
