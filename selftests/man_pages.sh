#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The man pages format without a warning (groff -ww), rmai(4) documents
# every module parameter, and rmai-memnoded(8) every option and command its
# --help lists. The check must catch an entry taken out of each. Run on
# the host by scripts/check, after the daemon is built.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

MAN=$RMAI_TOP/man
DAEMON=$RMAI_TOP/memnode/rmai-memnoded

params() { sed -n 's/^module_param(\([a-z_]*\),.*/\1/p' "$RMAI_TOP/backend/main.c"; }

# The long options and the commands of the daemon's --help.
daemon_words() {
	"$DAEMON" --help 2>&1 | grep -o -- '--[a-z-]*' | sort -u
	"$DAEMON" --help 2>&1 | sed -n 's/^ *\(usage: \)\{0,1\}rmai-memnoded \([a-z]\+\) .*/\2/p'
}

# check_module PAGE: every parameter has its tagged paragraph (.BI or .BR
# NAME=).
check_module() {
	local p bad=0
	for p in $(params); do
		grep -q "^\.B[IR] $p=" "$1" || { echo "$1: no entry for $p="; bad=1; }
	done
	[ "$bad" = 0 ]
}

# check_daemon PAGE: every option and command of --help heads a tagged
# paragraph of PAGE (the first word of the .B, .BI or .BR line after a
# .TP), roff escapes undone.
check_daemon() {
	local w bad=0 text
	text=$(sed 's/\\-/-/g' "$1" | awk 'tp { print } { tp = ($0 == ".TP") }')
	for w in $(daemon_words); do
		grep -q -E -- "^\.B[IR]? +$w( |$)" <<<"$text" || { echo "$1: no entry for $w"; bad=1; }
	done
	[ "$bad" = 0 ]
}

formats_clean() {
	local f out bad=0
	for f in "$MAN"/*.[0-9]; do
		out=$(groff -man -ww -z "$f" 2>&1)
		[ -z "$out" ] || { echo "$f: $out"; bad=1; }
	done
	[ "$bad" = 0 ] || fail "groff warned"
}

documented() {
	[ -x "$DAEMON" ] || fail "$DAEMON not built (make memnode)" || return 1
	[ "$(params | wc -l)" -ge 14 ] || fail "found only $(params | wc -l) parameters" || return 1
	[ "$(daemon_words | wc -l)" -ge 10 ] ||
		fail "found only $(daemon_words | wc -l) options and commands in --help" || return 1
	check_module "$MAN/rmai.4" || fail "rmai(4) lacks parameters" || return 1
	check_daemon "$MAN/rmai-memnoded.8" || fail "rmai-memnoded(8) lacks options"
}

checker_catches_missing() {
	local tmp rc=0
	tmp=$(mktemp -d)
	sed '/^\.BI tag_bytes=/,/^\.TP/d' "$MAN/rmai.4" >"$tmp/rmai.4"
	check_module "$tmp/rmai.4" >/dev/null && { fail "a missing parameter passed"; rc=1; }
	sed '/^\.BI \\-\\-slab /,/^\.TP/d' "$MAN/rmai-memnoded.8" >"$tmp/rmai-memnoded.8"
	check_daemon "$tmp/rmai-memnoded.8" >/dev/null && { fail "a missing option passed"; rc=1; }
	sed '/^\.BI disconnect /,/^\.SH/{/^\.SH/!d}' "$MAN/rmai-memnoded.8" >"$tmp/rmai-memnoded.8"
	check_daemon "$tmp/rmai-memnoded.8" >/dev/null && { fail "a missing command passed"; rc=1; }
	rm -rf "$tmp"
	return "$rc"
}

ktap_print_header
ktap_set_plan 3
ktap_test formats_clean formats_clean
ktap_test documented documented
ktap_test checker_catches_missing checker_catches_missing
ktap_finished
