#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The man pages, checked against the sources they document (TAP output):
#
#  1. Lint: every page formats without a warning, with `man --warnings`
#     when man(1) is installed, else `groff -man -ww -z`; skipped without
#     either.
#  2. daemoneye.conf(5) has an entry ".BI key= VALUE" under the .SS of its
#     group for every key of daemon/config.c's key table, of the reserved keys
#     of [collector ID] in daemon/config-collector.c, and of procmond's
#     settings schema; the entry says "Default: X" where the source has a
#     plain default and "MIN..MAX" where it has a numeric range; and it
#     documents no key the sources do not have.
#  3. daemoneye-cli(1) has a .TP entry for every command of cli/cli.c's
#     command table (and none the table lacks), and mentions every long
#     option of cli/*.c; daemoneye-agent(8) every option of daemon/main.c;
#     daemoneye-procmond(8) every option of collector-core's dcc_main().
#
# The lists come from the sources with grep and awk, so a new key, command
# or option without documentation fails here.
#
#   test-man-coverage.sh SOURCE_ROOT [MAN_DIR]
set -uo pipefail

src=${1:?usage: test-man-coverage.sh SOURCE_ROOT [MAN_DIR]}
man_dir=${2:-$src/man}
n=0
failed=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
        n=$((n + 1))
        failed=1
        echo "not ok $n - $1"
        shift
        for line in "$@"; do echo "# $line"; done
}
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

for f in "$src/daemon/config.c" "$src/daemon/config-collector.c" "$src/collectors/procmond/procmond-main.c" \
        "$src/collectors/procmond/procmond-engine.h" "$src/cli/cli.c" "$src/daemon/main.c" \
        "$src/collectors/core/dcc-main.c" "$man_dir/daemoneye.conf.5" "$man_dir/daemoneye-cli.1" \
        "$man_dir/daemoneye-agent.8" "$man_dir/daemoneye-procmond.8" "$man_dir/daemoneye-eventbus.7"; do
        [ -r "$f" ] || { echo "Bail out! $f: not readable"; exit 1; }
done

# --- 1. lint ---------------------------------------------------------------
lint=
if command -v man >/dev/null && command -v groff >/dev/null; then
        lint='man'
elif command -v groff >/dev/null; then
        lint='groff'
fi
for page in "$man_dir"/*.[1-8]; do
        name=$(basename "$page")
        case $lint in
        man)
                # No user or locale settings: the same warnings everywhere.
                warnings=$(LC_ALL=C.UTF-8 MANOPT='' MANROFFSEQ='' MANWIDTH=80 \
                        man --warnings -E UTF-8 -l -Tutf8 "$page" 2>&1 >/dev/null)
                ;;
        groff)
                warnings=$(LC_ALL=C.UTF-8 groff -man -ww -z -Tutf8 "$page" 2>&1)
                ;;
        *)
                skip "lint $name" "neither man nor groff is installed"
                continue
                ;;
        esac
        if [ -z "$warnings" ]; then
                ok "lint $name ($lint)"
        else
                mapfile -t lines <<<"$warnings"
                not_ok "lint $name ($lint)" "${lines[@]}"
        fi
done

# --- 2. daemoneye.conf(5) --------------------------------------------------

# The entries of the page: "group key<TAB>text", text with the troff markup
# taken out. An entry is a .TP whose tag is ".B/.BI/.BR key=..."; it ends at
# the next .TP, .PP, .SS or .SH.
conf_entries() {
        awk '
        function flush() {
                if (key != "") print group " " key "\t" text
                key = ""; text = ""
        }
        function plain(s) {
                gsub(/\\f[BIRP]/, "", s); gsub(/\\-/, "-", s); gsub(/\\~/, " ", s)
                gsub(/\\&/, "", s); gsub(/\\\(em/, "-", s); gsub(/\\e/, "\\", s)
                sub(/^\.[A-Z]+ */, "", s); gsub(/"/, "", s)
                return s
        }
        /^\.(SS|SH)/ {
                flush()
                group = ""
                if (/^\.SS/ && match($0, /\[[a-z_]+/)) group = substr($0, RSTART + 1, RLENGTH - 1)
                else if (/^\.SS.*procmond/) group = "procmond"
                next
        }
        /^\.(TP|PP|IP)/ { flush(); tag = /^\.TP/; next }
        tag && /^\.B[IR]? +"?[a-z_]+=/ {
                tag = 0
                k = $0; sub(/^\.B[IR]? +"?/, "", k); sub(/=.*/, "", k)
                key = k; text = ""
                next
        }
        { tag = 0; if (key != "") text = text " " plain($0) }
        END { flush() }
        ' "$man_dir/daemoneye.conf.5"
}

# What the sources define: "group key<TAB>default<TAB>min..max" (empty when
# not a plain value).
source_keys() {
        # config.c: the key table, one {...} per key (some span two lines).
        sed -n '/^static const KeySpec key_specs\[\] = {/,/^};/p' "$src/daemon/config.c" | tr -s '[:space:]' ' ' |
                grep -oE '\{"[a-z_]+", "[a-z_]+", KEY_[A-Z_]+, [A-Z]+\([a-z_]+\)(, *[0-9]+, *[0-9]+)?\}' |
                sed -E 's/^\{"([a-z_]+)", "([a-z_]+)", KEY_([A-Z_]+), [A-Z]+\([a-z_]+\)(, *([0-9]+), *([0-9]+))?\}$/\1 \2 \3 \5 \6/' |
                while read -r group key type min max; do
                        range=
                        [ "$type" = UINT ] && range="$min..$max"
                        printf '%s %s\t%s\t%s\n' "$group" "$key" \
                                "$(config_default "$group" "$key")" "$range"
                done
        # config-collector.c: the reserved keys parse_key() knows.
        grep -oE 'g_str_equal\(key, "[a-z_]+"\)' "$src/daemon/config-collector.c" |
                sed -E 's/.*"([a-z_]+)".*/\1/' | sort -u |
                while read -r key; do
                        printf 'collector %s\t%s\t%s\n' "$key" "$(collector_default "$key")" \
                                "$(collector_range "$key")"
                done
        # procmond's schema, one {...} per key.
        sed -n '/^static const DccConfigKey procmond_schema\[\] = {/,/^};/p' \
                "$src/collectors/procmond/procmond-main.c" | tr -s '[:space:]' ' ' |
                grep -oE '\{\.key = "[^}]*\}' |
                while read -r entry; do
                        key=$(field "$entry" key)
                        def=$(field "$entry" default_value)
                        min=$(field "$entry" min.u)
                        max=$(field "$entry" max.u)
                        range=
                        [ -n "$max" ] && range="$(resolve "${min:-0}")..$(resolve "$max")"
                        printf 'procmond %s\t%s\t%s\n' "$key" "$def" "$range"
                done
}

# config_new_default()'s plain values: numbers and booleans.
config_default() {
        sed -n "/config->$1 = (/,/};/p" "$src/daemon/config.c" |
                sed -nE "s/^[[:space:]]*\\.$2 = ([0-9]+|TRUE|FALSE),.*/\\1/p" | head -n 1 |
                sed 's/TRUE/true/; s/FALSE/false/'
}

# collector_config_new()'s plain values.
collector_default() {
        sed -n '/^static CollectorConfig \*collector_config_new/,/^}/p' "$src/daemon/config-collector.c" |
                sed -nE "s/^[[:space:]]*collector->$1 = ([0-9]+|TRUE|FALSE);.*/\\1/p" | head -n 1 |
                sed 's/TRUE/true/; s/FALSE/false/'
}

# parse_uint(file, group, key, value, MIN, MAX, &c-><key>, error) in parse_key().
collector_range() {
        local min max
        read -r min max < <(tr -s '[:space:]' ' ' <"$src/daemon/config-collector.c" |
                grep -oE "parse_uint\\(file, group, key, value, *[A-Z0-9_]+, *[A-Z0-9_]+, *&c->$1," |
                sed -E 's/.*value, *([A-Z0-9_]+), *([A-Z0-9_]+),.*/\1 \2/')
        [ -n "${max:-}" ] && echo "$(resolve "$min")..$(resolve "$max")"
}

# .NAME = "value" or .NAME = VALUE of a schema entry.
field() {
        local name=${2//./\\.}
        printf '%s\n' "$1" | sed -nE "s/.*\\.$name = (\"([^\"]*)\"|([A-Za-z0-9_]+)).*/\\2\\3/p"
}

# A number, or a #define of the procmond or collector config sources.
resolve() {
        if [[ $1 =~ ^[0-9]+$ ]]; then
                echo "$1"
                return
        fi
        sed -nE "s/^#define $1 ([0-9]+)\$/\\1/p" "$src/collectors/procmond/procmond-engine.h" \
                "$src/collectors/procmond/procmond-main.c" "$src/daemon/config-collector.c" | head -n 1
}

documented=$(conf_entries)
sources=$(source_keys)
if [ -z "$sources" ] || [ "$(printf '%s\n' "$sources" | wc -l)" -lt 20 ]; then
        echo "Bail out! could not extract the configuration keys from the sources (found: $sources)"
        exit 1
fi
while IFS=$'\t' read -r id def range; do
        text=$(printf '%s\n' "$documented" | awk -F '\t' -v id="$id" '$1 == id { print $2; exit }')
        problems=()
        if ! printf '%s\n' "$documented" | cut -f1 | grep -qxF "$id"; then
                problems+=("no entry \".BI ${id#* }= ...\" under .SS \"[${id%% *}...]\" in daemoneye.conf.5")
        else
                # Whole numbers: "Default: 5" must not pass for "Default: 50".
                if [ -n "$def" ] && ! grep -qE "Default: ${def}([^0-9]|\$)" <<<"$text"; then
                        problems+=("the entry does not say \"Default: $def\" (the source's default)")
                fi
                if [ -n "$range" ] && ! grep -qE "(^|[^0-9])${range//./\\.}([^0-9]|\$)" <<<"$text"; then
                        problems+=("the entry does not give the range \"$range\" (the source's)")
                fi
        fi
        if [ ${#problems[@]} -eq 0 ]; then
                ok "daemoneye.conf.5: [$id]"
        else
                not_ok "daemoneye.conf.5: [$id]" "${problems[@]}"
        fi
done <<<"$sources"
stale=$(comm -23 <(printf '%s\n' "$documented" | cut -f1 | sort -u) <(printf '%s\n' "$sources" | cut -f1 | sort -u))
if [ -z "$stale" ]; then
        ok "daemoneye.conf.5 documents no key the sources lack"
else
        mapfile -t lines <<<"$stale"
        not_ok "daemoneye.conf.5 documents no key the sources lack" "${lines[@]/#/not in the sources: }"
fi

# --- 3. commands and options -----------------------------------------------

# The tags of the .TP entries of a page's COMMANDS section: their first word.
page_commands() {
        awk '
        /^\.SH/ { in_commands = ($0 ~ /COMMANDS/); next }
        in_commands && /^\.TP/ { tag = 1; next }
        in_commands && tag {
                tag = 0
                line = $0; sub(/^\.[A-Z]+ +/, "", line); gsub(/"/, "", line)
                if (match(line, /^[a-z][a-z-]*/)) print substr(line, 1, RLENGTH)
                next
        }
        ' "$1" | sort -u
}

commands=$(sed -n '/^static const CliCommand cli_commands\[\] = {/,/^};/p' "$src/cli/cli.c" |
        sed -nE 's/^[[:space:]]*\{"([a-z][a-z-]*)", "[^"]*", cli_[a-z_]+\},?.*/\1/p' | sort -u)
if [ -z "$commands" ]; then
        echo "Bail out! no command table in cli/cli.c"
        exit 1
fi
documented_commands=$(page_commands "$man_dir/daemoneye-cli.1")
for command in $commands; do
        if grep -qxF "$command" <<<"$documented_commands"; then
                ok "daemoneye-cli.1: command $command"
        else
                not_ok "daemoneye-cli.1: command $command" \
                        "no .TP entry for \"$command\" under COMMANDS in daemoneye-cli.1"
        fi
done
stale=$(comm -23 <(printf '%s\n' "$documented_commands") <(printf '%s\n' "$commands"))
if [ -z "$stale" ]; then
        ok "daemoneye-cli.1 documents no command cli/cli.c lacks"
else
        mapfile -t lines <<<"$stale"
        not_ok "daemoneye-cli.1 documents no command cli/cli.c lacks" "${lines[@]/#/not in cli.c: }"
fi

# Long options of GOptionEntry tables: {"name", 'c' or 0, flags, G_OPTION_ARG_...
long_options() {
        cat "$@" | tr -s '[:space:]' ' ' |
                grep -oE "\\{\"[a-z][a-z-]*\", *('.'|0), *[A-Z0-9_| ]+, *G_OPTION_ARG_" |
                sed -E 's/^\{"([a-z-]+)".*/\1/' | sort -u
}

check_options() {
        local page=$1
        shift
        local option escaped
        for option in $(long_options "$@"); do
                escaped='\-\-'${option//-/\\-}
                if grep -qF -- "$escaped" "$man_dir/$page"; then
                        ok "$page: option --$option"
                else
                        not_ok "$page: option --$option" "\"$escaped\" does not occur in $page"
                fi
        done
}

cli_sources=()
for f in "$src"/cli/*.c; do
        case $(basename "$f") in test-*) continue ;; esac
        cli_sources+=("$f")
done
check_options daemoneye-cli.1 "${cli_sources[@]}"
check_options daemoneye-agent.8 "$src/daemon/main.c"
check_options daemoneye-procmond.8 "$src/collectors/core/dcc-main.c"

echo "1..$n"
exit $failed
