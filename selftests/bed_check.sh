#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The multi-node bed's own controls, checked from its compute node (run by
# vm_runner.sh under `scripts/vm --nodes 3`): commands on each memory node,
# RDMA over each link, and each fault: a cut link, a frozen node, a killed
# node booted again, every one ending with RDMA working again.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

require_vm
require_bed 3

VMCTL=$RMAI_TOP/scripts/vmctl
read -r -a MN <<<"$RMAI_MN_ADDRS"

# rdma_ok NODE: an rdma_cm connection and RDMA to NODE's rping server.
rdma_ok() {
	timeout 60 rping -c -a "${MN[$1 - 1]}" -C 2 -S 4096 >/dev/null 2>&1
}

# rping_server NODE: a persistent rping server there, once it listens. The
# server starts in the background and takes a while to listen (0.6 s on a
# warm node, more after a boot), and a client that comes earlier is refused.
# shellcheck disable=SC2016 # the loop is expanded on the node
rping_server() {
	"$VMCTL" exec "$1" -- "rping -s -P -a ${MN[$1 - 1]} >/dev/null 2>&1 &" &&
	"$VMCTL" exec "$1" -- 'for i in $(seq 150); do
		rdma res show cm_id | grep -q "state LISTEN .* comm rping" && exit 0
		sleep 0.2
	done; echo "rping is not listening after 30 s"; exit 1'
}

exec_passes_through() {
	local k out
	for k in 1 2; do
		out=$("$VMCTL" exec "$k" -- 'ip -4 -o addr show eth0; exit 7')
		[ $? = 7 ] || fail "node $k: exec status, want 7" || return 1
		grep -q "inet ${MN[$k - 1]}/26" <<<"$out" || fail "node $k: address: $out" || return 1
		out=$("$VMCTL" exec "$k" -- printf '%s|' 'two words' "\$x")
		[ "$out" = "two words|\$x|" ] || fail "node $k: argument words: '$out'" || return 1
	done
}

rdma_on_each_link() {
	rping_server 1 && rping_server 2 || return 1
	rdma_ok 1 || fail "no RDMA to node 1" || return 1
	rdma_ok 2 || fail "no RDMA to node 2"
}

cut_and_restore() {
	"$VMCTL" cut 1 || return 1
	! timeout 15 rping -c -a "${MN[0]}" -C 1 >/dev/null 2>&1 || fail "RDMA to node 1 while cut" || return 1
	rdma_ok 2 || fail "node 2 lost its link when node 1 was cut" || return 1
	! "$VMCTL" cut 1 2>/dev/null || fail "a second cut succeeded" || return 1
	"$VMCTL" restore 1 || return 1
	rdma_ok 1 || fail "no RDMA to node 1 after the restore"
}

freeze_and_thaw() {
	local t
	"$VMCTL" freeze 2 || return 1
	[ "$("$VMCTL" state 2)" = frozen ] || fail "state $("$VMCTL" state 2)" || return 1
	t=$SECONDS
	"$VMCTL" exec 2 -- true 2>/dev/null
	[ $? = 255 ] && [ $((SECONDS - t)) -lt 10 ] || fail "exec on a frozen node" || return 1
	! timeout 15 rping -c -a "${MN[1]}" -C 1 >/dev/null 2>&1 || fail "RDMA to a frozen node" || return 1
	"$VMCTL" thaw 2 || return 1
	rdma_ok 2 || fail "no RDMA to node 2 after the thaw"
}

kill_and_boot() {
	local out
	"$VMCTL" kill 2 || return 1
	[ "$("$VMCTL" state 2)" = dead ] || fail "state $("$VMCTL" state 2)" || return 1
	"$VMCTL" exec 2 -- true 2>/dev/null
	[ $? = 255 ] || fail "exec on a dead node" || return 1
	! "$VMCTL" freeze 2 2>/dev/null || fail "froze a dead node" || return 1
	"$VMCTL" boot 2 || return 1
	out=$("$VMCTL" exec 2 -- cat /proc/uptime) || fail "exec after the boot" || return 1
	echo "node 2 up again, uptime ${out%% *} s"
	rping_server 2 && rdma_ok 2 || fail "no RDMA to node 2 after the boot" || return 1
	rdma_ok 1 || fail "node 1 lost its link"
}

bad_requests() {
	local out
	out=$("$VMCTL" cut 5 2>&1)
	[ $? = 2 ] && grep -q "no memory node '5'" <<<"$out" || fail "cut 5: $out" || return 1
	out=$("$VMCTL" thaw 1 2>&1)
	[ $? = 1 ] && grep -q "cannot thaw node 1: it is running" <<<"$out" || fail "thaw 1: $out" || return 1
	out=$("$VMCTL" frobnicate 1 2>&1)
	[ $? = 2 ] || fail "an unknown verb: $out"
}

ktap_print_header
ktap_set_plan 6
ktap_test exec_passes_through exec_passes_through
ktap_test rdma_on_each_link rdma_on_each_link
ktap_test cut_and_restore cut_and_restore
ktap_test freeze_and_thaw freeze_and_thaw
ktap_test kill_and_boot kill_and_boot
ktap_test bad_requests bad_requests
ktap_finished
