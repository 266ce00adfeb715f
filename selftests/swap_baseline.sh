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

# Pages verified against another seed's pattern must all be reported bad.
checker_catches_bad_data() {
	local line
	line=$("$RMAI_BUILD/swap_reload" --size 4 --check-seed 99)
	[ $? = 1 ] || fail "swap_reload did not fail on wrong data" || return 1
	[ "$(kv mismatched_pages "$line")" = 1024 ] || fail "$line"
}

ktap_print_header
ktap_set_plan 3
zram_up || { echo "SKIP: no zram"; exit "$ksft_skip"; }
ktap_test zram_seq zram_seq
ktap_test zram_random zram_random
zram_down
ktap_test checker_catches_bad_data checker_catches_bad_data
ktap_finished
