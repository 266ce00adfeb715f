#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Every sysfs file the module creates, and every module parameter, has its
# entry in Documentation/ABI/testing/ (the kernel's ABI format), and every
# entry names something that exists; the columns each statistics file
# prints, in backend/sysfs.c's header, are those its entry lists, in order.
# The check must catch an entry taken out and a column added. Run on the
# host by scripts/check.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

ABI=$RMAI_TOP/Documentation/ABI/testing

# The names the code has: sysfs attributes and module parameters.
code_names() {
	sed -n 's/.*&dev_attr_\([a-z_]*\)\.attr.*/block \1/p' "$RMAI_TOP/backend/sysfs.c"
	sed -n 's/^module_param(\([a-z_]*\),.*/module \1/p' "$RMAI_TOP/backend/main.c"
}

# abi_names DIR: the names DIR's entries document.
abi_names() {
	sed -n 's|^What:[[:space:]]*/sys/block/rmai<N>/rmai/\(.*\)|block \1|p' "$1/sysfs-block-rmai"
	sed -n 's|^What:[[:space:]]*/sys/module/rmai/parameters/\(.*\)|module \1|p' "$1/sysfs-module-rmai"
}

# code_columns FILE: the columns of statistics file FILE, from sysfs.c's
# header comment ("name col col", continued on indented lines).
code_columns() {
	awk -v f="$1" '
		/^ \*\// { exit }
		/^ \*   [a-z_]+ / { on = ($2 == f); for (i = 3; i <= NF; i++) if (on) print $i; next }
		/^ \*     +[a-z_]/ { if (on) for (i = 2; i <= NF; i++) print $i; next }
		{ on = 0 }' "$RMAI_TOP/backend/sysfs.c"
}

# abi_columns DIR FILE: the first words of the rows of FILE's table.
abi_columns() {
	awk -v what="/sys/block/rmai<N>/rmai/$2" '
		/^What:/ { on = ($2 == what); rule = 0; next }
		on && /^\t\t=+ / { rule++; next }
		on && rule == 1 && /^\t\t[a-z_]+ / { print $1 }' "$1/sysfs-block-rmai"
}

# check DIR: the docs in DIR against the code.
check() {
	local dir=$1 f bad=0 missing extra
	missing=$(comm -23 <(code_names | sort) <(abi_names "$dir" | sort))
	extra=$(comm -13 <(code_names | sort) <(abi_names "$dir" | sort))
	[ -z "$missing" ] || { echo "not documented: $missing"; bad=1; }
	[ -z "$extra" ] || { echo "documented, not in the code: $extra"; bad=1; }
	for f in io_stat cache_stat remote_stat; do
		[ "$(code_columns "$f")" = "$(abi_columns "$dir" "$f")" ] && continue
		echo "$f: sysfs.c has columns $(code_columns "$f" | tr '\n' ' ')," \
			"the ABI entry $(abi_columns "$dir" "$f" | tr '\n' ' ')"
		bad=1
	done
	for f in "$dir"/sysfs-*; do
		# Each entry: What, Date, KernelVersion, Contact, Description.
		awk '/^What:/ { n++ } /^(Date|KernelVersion|Contact|Description):/ { k[$1]++ }
			END { for (x in k) if (k[x] != n) exit 1; exit !(n && length(k) == 4) }' "$f" ||
			{ echo "$f: an entry lacks Date, KernelVersion, Contact or Description"; bad=1; }
	done
	[ "$bad" = 0 ]
}

documented() {
	[ "$(code_names | wc -l)" -ge 10 ] || fail "found only $(code_names | wc -l) names in the code" ||
		return 1
	[ "$(code_columns cache_stat | wc -l)" = 11 ] ||
		fail "read $(code_columns cache_stat | wc -l) cache_stat columns from sysfs.c, not 11" ||
		return 1
	check "$ABI" || fail "the ABI docs do not match the code"
}

# A copy of the docs with the elide entry taken out, and one with a
# column missing from remote_stat's table: both must fail.
checker_catches_drift() {
	local tmp rc=0
	tmp=$(mktemp -d)
	cp "$ABI"/sysfs-* "$tmp/"
	sed -i '\|^What:.*parameters/elide$|,/^$/d' "$tmp/sysfs-module-rmai"
	if check "$tmp" >/dev/null; then
		fail "an undocumented parameter passed"; rc=1
	fi
	cp "$ABI"/sysfs-* "$tmp/"
	sed -i '/^\t\tzeroed_bytes /d' "$tmp/sysfs-block-rmai"
	if check "$tmp" >/dev/null; then
		fail "a column missing from the docs passed"; rc=1
	fi
	rm -rf "$tmp"
	return "$rc"
}

ktap_print_header
ktap_set_plan 2
ktap_test documented documented
ktap_test checker_catches_drift checker_catches_drift
ktap_finished
