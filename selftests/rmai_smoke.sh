#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The smoke test, run on every kernel (6.1 too): load rmai.ko on a memnode,
# swap to it and back with every page checked, unload without a trace.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

require_vm
require_root

PORT=7484

load() {
	memnode_start "$PORT" 128M || return 1
	rmai_load memnodes="$MN_ADDR:$PORT" size=64M || fail "insmod" || return 1
	[ -b /dev/rmai0 ] || fail "no /dev/rmai0"
}

swap() { swap_roundtrip /dev/rmai0 48 16M --order random --seed 5; }

unload() {
	rmai_unload || fail "rmmod" || return 1
	memnode_stop "$PORT"
	[ "$(rmai_rdma_objects)" = 0 ] || fail "RDMA objects left: $(rmai_rdma_objects)"
}

cleanup() {
	swapoff /dev/rmai0 2>/dev/null
	rmmod rmai 2>/dev/null
	memnode_stop "$PORT"
}

[ -f "$RMAI_KO" ] || { echo "SKIP: $RMAI_KO not built"; exit "$ksft_skip"; }
ktap_print_header
ktap_set_plan 3
echo "# module: $RMAI_KO on $(uname -r)"
trap cleanup EXIT
ktap_test load load
ktap_test swap swap
ktap_test unload unload
ktap_finished
