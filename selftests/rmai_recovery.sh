#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rmai.ko when its memnode goes away: requests wait while it reconnects and
# resumes the lease with its token, data intact; they fail after io_timeout
# while it stays away; and when the memnode comes back without the lease,
# the device fails every request instead of returning wrong data. Also: the
# data path does not need the memnode's CPU.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

require_vm
require_root

PORT=7483
DEV=/dev/rmai0
MNSTATE=/sys/block/rmai0/rmai/memnodes

# The client id of the one lease the memnode holds.
lease_id() { memnode_status "$PORT" | sed -n 's/^lease \([0-9a-f]*\):.*/\1/p'; }

# wait_state STATE SECONDS: until the memnode line shows STATE.
wait_state() {
	local i
	for i in $(seq $(($2 * 5))); do
		grep -q " $1 " "$MNSTATE" && return 0
		sleep 0.2
	done
	fail "memnode state $(cat "$MNSTATE"), not $1 after $2 s"
}

load() {
	memnode_start "$PORT" 128M --lease-grace 60 || return 1
	rmai_load memnodes="$MN_ADDR:$PORT" size=32M keepalive=1 io_timeout=20 "$@" ||
		fail "insmod" || return 1
	pat write "$DEV" 0 32M 1 --direct
}

unload() {
	rmai_unload || fail "rmmod" || return 1
	memnode_stop "$PORT"
	[ "$(rmai_rdma_objects)" = 0 ] || fail "RDMA objects left: $(rmai_rdma_objects)"
}

# The admin cuts the client off while reads, writes and discards run (so
# staged writes fail and go out again after the reconnect): the I/O waits,
# the client reconnects with its token, every byte is still right.
disconnect_resume() {
	local bg rc
	load || return 1
	"$RMAI_BUILD/blk_stress" "$DEV" --mib 8 --threads 2 --seconds 12 &
	bg=$!
	sleep 3
	"$RMAI_MEMNODED" disconnect "$(lease_id)" --admin-socket "/tmp/memnode-$PORT.sock" ||
		fail "memnode disconnect" || return 1
	wait "$bg"
	rc=$?
	cat "$MNSTATE" /sys/block/rmai0/rmai/io_stat
	[ "$rc" = 0 ] || fail "I/O across the reconnect failed" || return 1
	pat verify "$DEV" 8M 24M 1 --direct || return 1
	wait_state connected 30 || return 1
	grep -q "connected 8 1$" "$MNSTATE" || fail "no reconnect counted" || return 1
	pat write "$DEV" 0 32M 2 --direct && pat verify "$DEV" 0 32M 2 --direct || return 1
	dmesg | grep -q "reconnected after .*lease of 8 slabs resumed" ||
		fail "no reconnect line in the log" || return 1
	[ "$(rmai_io_stat errors)" = 0 ] || fail "errors counted" || return 1
	unload
}

# The memnode dies: requests fail after io_timeout; when a new memnode comes
# up on the same address, it does not know the lease: the device goes down
# and keeps failing requests rather than read a fresh, empty slab.
memnode_lost() {
	local out
	load io_timeout=3 || return 1
	memnode_stop "$PORT" KILL
	wait_state reconnecting 20 || return 1
	out=$(timeout 120 "$RMAI_BUILD/blkpat" verify "$DEV" 0 1M 1 --direct 2>&1)
	[ $? = 2 ] && grep -q "Input/output error" <<<"$out" ||
		fail "read while the memnode is away: $out" || return 1
	[ "$(rmai_io_stat errors)" -gt 0 ] || fail "no error counted" || return 1
	memnode_start "$PORT" 128M || return 1
	wait_state down 60 || return 1
	dmesg | grep -q "our lease is gone" || fail "no lease-lost line" || return 1
	out=$(timeout 120 "$RMAI_BUILD/blkpat" verify "$DEV" 0 1M 1 --direct 2>&1)
	[ $? = 2 ] || fail "read after the lease was lost: $out" || return 1
	unload
}

# One-sided RDMA needs nothing from the memnode's CPU: with the daemon
# stopped (and keepalives off, which would need it), I/O goes on.
memnode_cpu_not_needed() {
	local pid rc
	load keepalive=0 || return 1
	pid=$(cat "/tmp/memnode-$PORT.pid")
	kill -STOP "$pid"
	pat write "$DEV" 0 32M 3 --direct && pat verify "$DEV" 0 32M 3 --direct
	rc=$?
	kill -CONT "$pid"
	[ "$rc" = 0 ] || fail "I/O with the memnode stopped" || return 1
	grep -q " connected " "$MNSTATE" || fail "state $(cat "$MNSTATE")" || return 1
	unload
}

cleanup() {
	rmmod rmai 2>/dev/null
	memnode_stop "$PORT"
}

[ -f "$RMAI_KO" ] || { echo "SKIP: $RMAI_KO not built"; exit "$ksft_skip"; }
ktap_print_header
ktap_set_plan 4
trap cleanup EXIT
dmesg -C
ktap_test disconnect_resume disconnect_resume
cleanup
ktap_test memnode_lost memnode_lost
cleanup
ktap_test memnode_cpu_not_needed memnode_cpu_not_needed
cleanup
ktap_test log_is_clean bash -c '! dmesg | grep -E "rmai.*(BUG|WARNING)"'
ktap_finished
