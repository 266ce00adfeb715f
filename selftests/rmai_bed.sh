#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rmai.ko against real faults of a memory node that is another machine (the
# multi-node bed, `scripts/vm --nodes 2`; scripts/vmctl makes the faults):
#  - its link cut under concurrent reads, writes and discards, restored
#    inside the lease grace: requests wait, then every block is right;
#  - its link cut past io_timeout: I/O fails with EIO, a process whose pages
#    are out gets SIGBUS, the kernel stays healthy; once the link is back the
#    device reconnects with its lease and the data is there;
#  - the node killed during swap-in: SIGBUS, no oops; booted again with a
#    fresh daemon, which lost the lease: the device goes down and returns
#    no made-up data, and rmmod works;
#  - the node frozen for 60 s during swap-in: the swap-in waits, then every
#    page comes back right;
#  - while the link is cut, writes staged just before the client noticed are
#    read back from the staging copy, and land after the reconnect;
#  - a direct write that fails for good (io_timeout passes during the cut)
#    leaves no trace: after the reconnect, reads return what the memnode
#    holds, not the write the memnode never got.
# Every check is by content: position-stamped patterns, blk_stress's
# generations, swap_reload's per-page patterns.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

require_vm
require_root
require_bed 2

VMCTL=$RMAI_TOP/scripts/vmctl
PORT=7490
DEV=/dev/rmai0
MNSTATE=/sys/block/rmai0/rmai/memnodes
MN=$(bed_addr 1)
CG=
GO=/tmp/rmai-bed-go

# wait_state STATE SECONDS: until the memnode line shows STATE.
wait_state() {
	local i
	for i in $(seq $(($2 * 5))); do
		grep -q " $1 " "$MNSTATE" && return 0
		sleep 0.2
	done
	fail "memnode state $(cat "$MNSTATE"), not $1 after $2 s"
}

# load GRACE MODULE-PARAM...: a memnode on node 1 (128 MiB, lease grace
# GRACE s) and rmai0 of 32 MiB on it.
load() {
	local grace=$1
	shift
	on_node 1 memnode_start "$PORT" 128M --lease-grace "$grace" || return 1
	rmai_load memnodes="$MN:$PORT" size=32M keepalive=1 "$@" || fail "insmod" || return 1
	wait_state connected 5
}

unload() {
	[ -z "$CG" ] || cg_destroy "$CG"
	CG=
	swapoff "$DEV" 2>/dev/null
	rmai_unload || fail "rmmod" || return 1
	[ "$(rmai_rdma_objects)" = 0 ] || fail "RDMA objects left: $(rmai_rdma_objects)"
}

# swap_out MIB: swapon rmai0, then swap_reload fills MIB in a cgroup held
# to a quarter of it, pages everything out and waits for $GO to reload; its
# pid is $bg, its result line goes to /tmp/reload.out.
swap_out() {
	local i
	rm -f "$GO"
	mkswap "$DEV" >/dev/null && swapon "$DEV" || fail "swapon" || return 1
	CG=$(cg_create "rmai-bed-$$" "$(($1 / 4))M") || fail "cgroup" || return 1
	cg_run "$CG" "$RMAI_BUILD/swap_reload" --size "$1" --pageout --wait "$GO" \
		>/tmp/reload.out 2>/tmp/reload.err &
	bg=$!
	for i in $(seq 600); do
		grep -q "paged out" /tmp/reload.err && return 0
		kill -0 "$bg" 2>/dev/null || break
		sleep 0.2
	done
	cat /tmp/reload.err
	stuck_report
	fail "swap_reload did not page out"
}

# What a swap-out that does not end is waiting for: the device's counters,
# the cgroup's, and the kernel stack of each process in it.
stuck_report() {
	local f p
	for f in io_stat memnodes cache_stat remote_stat; do
		echo "$f: $(tr '\n' ' ' <"/sys/block/rmai0/rmai/$f")"
	done
	echo "memory.current $(cat "$CG/memory.current"); events: $(tr '\n' ' ' <"$CG/memory.events")"
	grep -E '^(pswpin|pswpout) ' /proc/vmstat | tr '\n' ' '
	echo
	while read -r p; do
		echo "pid $p ($(cat "/proc/$p/comm")), state $(awk '{ print $3 }' "/proc/$p/stat"):"
		cat "/proc/$p/stack"
	done <"$CG/cgroup.procs"
}

# The link is cut for 10 s while 2 threads read, write and discard 8 MiB
# (keepalives notice, the queues go, the reconnect waits for the link):
# not one request fails, and no block is wrong.
cut_within_grace() {
	local rc
	load 120 io_timeout=60 || return 1
	pat write "$DEV" 0 32M 1 --direct || return 1
	"$RMAI_BUILD/blk_stress" "$DEV" --mib 8 --threads 2 --seconds 25 &
	bg=$!
	sleep 4
	"$VMCTL" cut 1 || return 1
	sleep 10
	"$VMCTL" restore 1 || return 1
	wait "$bg"
	rc=$?
	cat "$MNSTATE" /sys/block/rmai0/rmai/io_stat
	[ "$rc" = 0 ] || fail "I/O across the cut failed (blk_stress $rc)" || return 1
	pat verify "$DEV" 8M 24M 1 --direct || return 1
	wait_state connected 60 || return 1
	[ "$(rmai_io_stat errors)" = 0 ] || fail "errors counted" || return 1
	unload
}

# The link is cut for longer than io_timeout under a process whose pages
# are on the memnode: its swap-in fails and it gets SIGBUS; direct I/O
# fails with EIO. The link comes back inside the lease grace: the device
# reconnects with its token and serves the data written before.
cut_past_io_timeout() {
	local rc out
	load 120 io_timeout=5 || return 1
	swap_out 24 || return 1
	"$VMCTL" cut 1 || return 1
	wait_state reconnecting 20 || return 1
	sleep 7		# past io_timeout
	touch "$GO"
	wait "$bg"
	rc=$?
	[ "$rc" = 135 ] || fail "the swapped process: status $rc, want SIGBUS (135): $(cat /tmp/reload.out)" || return 1
	out=$(timeout 60 "$RMAI_BUILD/blkpat" verify "$DEV" 16M 1M 1 --direct 2>&1)
	[ $? = 2 ] && grep -q "Input/output error" <<<"$out" || fail "direct read: $out" || return 1
	[ "$(rmai_io_stat errors)" -gt 0 ] || fail "no error counted" || return 1
	swapoff "$DEV" || fail "swapoff" || return 1
	"$VMCTL" restore 1 || return 1
	wait_state connected 90 || return 1
	dmesg | grep -q "reconnected after .*lease of 8 slabs resumed" ||
		fail "no resume line in the log" || return 1
	pat write "$DEV" 0 32M 2 --direct && pat verify "$DEV" 0 32M 2 --direct || return 1
	unload
}

# The memory node dies during a swap-in: the process gets SIGBUS once
# io_timeout passes. The node boots again and a new daemon starts, without
# the lease: the device goes down, every read fails, rmmod works.
killed_then_booted() {
	local rc out
	load 120 io_timeout=10 || return 1
	swap_out 32 || return 1
	touch "$GO"
	sleep 0.5
	"$VMCTL" kill 1 || return 1
	wait "$bg"
	rc=$?
	[ "$rc" = 135 ] || fail "the swapping process: status $rc, want SIGBUS (135): $(cat /tmp/reload.out)" || return 1
	swapoff "$DEV" || fail "swapoff" || return 1
	"$VMCTL" boot 1 || return 1
	on_node 1 memnode_start "$PORT" 128M || return 1
	wait_state down 90 || return 1
	dmesg | grep -q "our lease is gone" || fail "no lease-lost line" || return 1
	out=$(timeout 60 "$RMAI_BUILD/blkpat" verify "$DEV" 0 1M 1 --direct 2>&1)
	[ $? = 2 ] && grep -q "Input/output error" <<<"$out" || fail "read after the lease was lost: $out" || return 1
	unload
}

# The memory node is frozen for 60 s in the middle of a swap-in: the
# swap-in waits (io_timeout is longer), then every page is right.
frozen_60s() {
	local rc
	load 240 io_timeout=200 || return 1
	swap_out 24 || return 1
	touch "$GO"
	sleep 0.5
	"$VMCTL" freeze 1 || return 1
	sleep 60
	"$VMCTL" thaw 1 || return 1
	wait "$bg"
	rc=$?
	cat /tmp/reload.out "$MNSTATE"
	[ "$rc" = 0 ] || fail "swap_reload: status $rc" || return 1
	[ "$(kv mismatched_pages "$(cat /tmp/reload.out)")" = 0 ] || fail "pages came back wrong" || return 1
	wait_state connected 60 || return 1
	unload
}

# Writes staged as the link goes (the client has not noticed yet) stay
# readable from their staging copy while it is cut, then land.
staged_reads_during_cut() {
	local staged
	load 120 io_timeout=60 || return 1
	pat write "$DEV" 0 1M 1 --direct || return 1
	"$VMCTL" cut 1 || return 1
	# (no fsync: a FLUSH waits for the staged write, which cannot land yet)
	pat write "$DEV" 0 64K 7 --direct --bs 64K --no-fsync || return 1
	staged=$(rmai_cache_stat staged_reads)
	pat verify "$DEV" 0 64K 7 --direct || fail "the staged data, read during the cut" || return 1
	[ "$(rmai_cache_stat staged_reads)" -gt "$staged" ] || fail "not read from staging" || return 1
	"$VMCTL" restore 1 || return 1
	wait_state connected 90 || return 1
	pat verify "$DEV" 0 64K 7 --direct && pat verify "$DEV" 64K 960K 1 --direct || return 1
	unload
}

# A direct write into a cached VMR is posted as the link goes, and fails
# once io_timeout passes; after the reconnect the VMR reads back as the
# memnode holds it.
failed_write_leaves_no_trace() {
	local out
	load 120 io_timeout=5 writeback_mb=0 || return 1
	pat write "$DEV" 0 1M 1 --direct || return 1
	pat verify "$DEV" 0 4K 1 --direct || return 1		# caches the VMR
	"$VMCTL" cut 1 || return 1
	out=$(timeout 120 "$RMAI_BUILD/blkpat" write "$DEV" 4K 4K 9 --direct 2>&1)
	[ $? = 2 ] || fail "the write during the cut: $out" || return 1
	"$VMCTL" restore 1 || return 1
	wait_state connected 90 || return 1
	pat verify "$DEV" 0 256K 1 --direct --bs 4K || fail "reads after the failed write" || return 1
	unload
}

cleanup() {
	[ -z "$CG" ] || cg_destroy "$CG"
	CG=
	swapoff "$DEV" 2>/dev/null
	rmmod rmai 2>/dev/null
	case $("$VMCTL" state 1) in
	frozen) "$VMCTL" thaw 1 ;;
	dead) "$VMCTL" boot 1 ;;
	esac
	"$VMCTL" restore 1 2>/dev/null	# when a test left it cut
	on_node 1 memnode_stop "$PORT"
}

[ -f "$RMAI_KO" ] || { echo "SKIP: $RMAI_KO not built"; exit "$ksft_skip"; }
ktap_print_header
ktap_set_plan 7
# frozen_60s blocks swap-in for 60 s and the reconnect after it, with
# io_timeout 200 s: under a loaded TCG host that wait can pass the kernel's
# 120 s hung-task timeout, and the guest panics. A hang longer than the
# longest io_timeout here plus its reconnect still does.
hung_task_allow 400
trap 'cleanup; hung_task_restore' EXIT
dmesg -C
ktap_test cut_within_grace cut_within_grace
cleanup
ktap_test cut_past_io_timeout cut_past_io_timeout
cleanup
ktap_test killed_then_booted killed_then_booted
cleanup
ktap_test frozen_60s frozen_60s
cleanup
ktap_test staged_reads_during_cut staged_reads_during_cut
cleanup
ktap_test failed_write_leaves_no_trace failed_write_leaves_no_trace
cleanup
ktap_test log_is_clean bash -c '! dmesg | grep -E "rmai.*(BUG|WARNING)"'
ktap_finished
