#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rmai.ko when its memnode goes away: requests wait while it reconnects and
# resumes the lease with its token, data intact; they fail after io_timeout
# while it stays away; and when the memnode comes back without the lease,
# the device fails every request instead of returning wrong data. A request
# waiting for one memnode holds up no request to another; reconnect attempts
# stay inside the lease grace the memnode announced, and a memnode that
# never answers again goes down once its lease is surely gone (rmmod then
# works). Also: the data path does not need the memnode's CPU.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

require_vm
require_root

PORT=7483
PORT2=7484
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

# Two memnodes on one hardware queue; one is cut off and cannot come back
# (its daemon stopped). A read of its slab waits; a read of the other's
# slab, queued behind it, completes at once, while the first still waits;
# then the stopped memnode comes back and the waiting read returns its data.
no_head_of_line() {
	local bg rc sick_pid
	memnode_start "$PORT" 64M --lease-grace 120 || return 1
	memnode_start "$PORT2" 64M --lease-grace 120 || return 1
	rmai_load memnodes="$MN_ADDR:$PORT,$MN_ADDR:$PORT2" size=32M nr_queues=1 \
		keepalive=1 io_timeout=120 cache_mb=0 || fail "insmod" || return 1
	# Slabs of 4 MiB alternate: 0-4M on the first memnode, 4-8M on the second.
	pat write "$DEV" 0 8M 11 --direct || return 1
	sick_pid=$(cat "/tmp/memnode-$PORT.pid")
	"$RMAI_MEMNODED" disconnect "$(lease_id)" --admin-socket "/tmp/memnode-$PORT.sock" ||
		fail "memnode disconnect" || return 1
	kill -STOP "$sick_pid"
	wait_state reconnecting 20 || { kill -CONT "$sick_pid"; return 1; }
	pat verify "$DEV" 0 1M 11 --direct &
	bg=$!
	sleep 1
	pat verify "$DEV" 4M 4M 11 --direct
	rc=$?
	kill -0 "$bg" 2>/dev/null
	local waiting=$?
	kill -CONT "$sick_pid"
	wait "$bg" || fail "the waiting read failed after the reconnect" || return 1
	[ "$rc" = 0 ] || fail "the read of the healthy memnode failed" || return 1
	[ "$waiting" = 0 ] || fail "the healthy read waited for the sick one" || return 1
	unload
	memnode_stop "$PORT2"
}

# A memnode whose daemon died and never comes back: every reconnect attempt
# is at most a quarter of its grace (8 s) from the last, and once the lease
# is surely gone (grace + its 20 s liveness), the memnode is down, without
# an answer from anybody; rmmod does not wait for it.
attempts_inside_grace() {
	local max
	dmesg -C	# only this test's attempts count
	memnode_start "$PORT" 64M --lease-grace 8 || return 1
	rmai_load memnodes="$MN_ADDR:$PORT" size=16M keepalive=1 io_timeout=5 ||
		fail "insmod" || return 1
	pat write "$DEV" 0 1M 12 --direct || return 1
	memnode_stop "$PORT" KILL
	wait_state down 90 || return 1
	dmesg | grep -q "unreachable for longer than it keeps a lease" ||
		fail "no lease-gone line" || return 1
	max=$(dmesg | sed -n 's/.*reconnect attempt [0-9]* failed.*next in \([0-9]*\) ms/\1/p' |
	      sort -n | tail -n 1)
	echo "longest wait between attempts: ${max:-?} ms"
	[ -n "$max" ] && [ "$max" -le 2000 ] || fail "an attempt $max ms after the last (grace 8 s)" || return 1
	timeout 60 rmmod rmai || fail "rmmod" || return 1
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
	kill -CONT "$(cat "/tmp/memnode-$PORT.pid" 2>/dev/null)" 2>/dev/null
	memnode_stop "$PORT"
	memnode_stop "$PORT2"
}

[ -f "$RMAI_KO" ] || { echo "SKIP: $RMAI_KO not built"; exit "$ksft_skip"; }
ktap_print_header
ktap_set_plan 6
trap cleanup EXIT
dmesg -C
ktap_test disconnect_resume disconnect_resume
cleanup
ktap_test memnode_lost memnode_lost
cleanup
ktap_test memnode_cpu_not_needed memnode_cpu_not_needed
cleanup
ktap_test no_head_of_line no_head_of_line
cleanup
ktap_test attempts_inside_grace attempts_inside_grace
cleanup
ktap_test log_is_clean bash -c '! dmesg | grep -E "rmai.*(BUG|WARNING)"'
ktap_finished
