#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rmai.ko loads, registers its block major, and unloads without a trace,
# repeatedly. Runs on 6.12 and, with RMAI_KO pointing at the 6.1 build, on 6.1.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

require_vm
require_root

load_unload() {
	local before after
	modprobe -a ib_core rdma_cm || fail "modprobe rdma_cm" || return 1
	before=$(grep -c . /proc/modules)
	rmai_load memnodes= || fail "insmod $RMAI_KO" || return 1
	grep -qw rmai /proc/devices || fail "no rmai block major in /proc/devices" || return 1
	grep -q '^rmai ' /proc/modules || fail "rmai not in /proc/modules" || return 1
	rmmod rmai || fail "rmmod rmai" || return 1
	! grep -qw rmai /proc/devices || fail "block major still registered after rmmod" || return 1
	after=$(grep -c . /proc/modules)
	[ "$before" = "$after" ] || fail "modules before $before, after $after"
}

load_unload_cycles() {
	local i
	for i in $(seq 10); do
		load_unload || fail "cycle $i" || return 1
	done
}

# The module's own lines reach the kernel log.
logs_load_and_unload() {
	dmesg -C
	load_unload || return 1
	dmesg | grep -q 'rmai: loaded' || fail "no 'rmai: loaded' in dmesg" || return 1
	dmesg | grep -q 'rmai: unloaded' || fail "no 'rmai: unloaded' in dmesg"
}

[ -f "$RMAI_KO" ] || { echo "SKIP: $RMAI_KO not built"; exit "$ksft_skip"; }
ktap_print_header
ktap_set_plan 3
echo "# module: $RMAI_KO on $(uname -r)"
ktap_test load_unload load_unload
ktap_test load_unload_cycles load_unload_cycles
ktap_test logs_load_and_unload logs_load_and_unload
ktap_finished
