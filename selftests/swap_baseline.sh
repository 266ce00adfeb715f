#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The swap test bed itself, on a device known to be good (zram): a working
# set three times the cgroup's memory.max goes to swap and comes back intact,
# in order and at random; and the checker does catch wrong data. The rmai
# swap tests use the same swap_roundtrip with /dev/rmai0.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

require_vm
require_root

zram_up() {
	modprobe zram num_devices=1 || return 1
	echo 256M >/sys/block/zram0/disksize
}

zram_down() {
	echo 1 >/sys/block/zram0/reset
	rmmod zram
}

zram_seq() { swap_roundtrip /dev/zram0 96 32M --order seq; }
zram_random() { swap_roundtrip /dev/zram0 96 32M --order random --seed 7; }

# A test that fails half-way leaves its process in the cgroup, its pages
# out: cg_destroy kills it and removes the cgroup, so that swapoff does not
# fault those pages back in against the cgroup's limit (an OOM loop).
cgroup_left_clean() {
	local cg pid i
	mkswap /dev/zram0 >/dev/null && swapon /dev/zram0 || fail "swapon" || return 1
	cg=$(cg_create "rmai-left-$$" 8M) || fail "cgroup" || return 1
	cg_run "$cg" "$RMAI_BUILD/swap_reload" --size 32 --pageout --wait /nonexistent \
		>/dev/null 2>/tmp/left.err &
	pid=$!
	for i in $(seq 300); do
		grep -q "paged out" /tmp/left.err && break
		sleep 0.2
	done
	grep -q "paged out" /tmp/left.err || fail "did not page out" || return 1
	cg_destroy "$cg"
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid"
		wait "$pid"
		cg_destroy "$cg"
		swapoff /dev/zram0
		fail "the process left in $cg was not killed"
		return 1
	fi
	wait "$pid"
	[ ! -d "$cg" ] || fail "$cg is still there" || return 1
	swapoff /dev/zram0 || fail "swapoff"
}

# Pages verified against another seed's pattern must all be reported bad.
checker_catches_bad_data() {
	local line
	line=$("$RMAI_BUILD/swap_reload" --size 4 --check-seed 99)
	[ $? = 1 ] || fail "swap_reload did not fail on wrong data" || return 1
	[ "$(kv mismatched_pages "$line")" = 1024 ] || fail "$line"
}

ktap_print_header
ktap_set_plan 4
zram_up || { echo "SKIP: no zram"; exit "$ksft_skip"; }
ktap_test zram_seq zram_seq
ktap_test zram_random zram_random
ktap_test cgroup_left_clean cgroup_left_clean
zram_down
ktap_test checker_catches_bad_data checker_catches_bad_data
ktap_finished
