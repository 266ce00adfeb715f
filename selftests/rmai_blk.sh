#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rmai.ko as a block device on a real memnode over soft-RoCE: module
# parameters, what reads and writes return (by content: position-stamped
# patterns, from page-aligned and unaligned buffers), the device's edges, discard and write-zeroes, statistics, swap,
# unloading while in use, and leaks over load/unload cycles. Recovery from a
# lost memnode is in rmai_recovery.sh.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

require_vm
require_root

PORT=7481			# the memnode most tests use: 256 MiB
SMALL_PORT=7482			# one with room for 8 slabs only
LIAR_PORT=7489			# bad_memnode
SIZE_MIB=64			# /dev/rmai0: 16 slabs of 4 MiB
DEV=/dev/rmai0

# refused EXPECTED_LOG PARAM...: insmod must fail, log a line with EXPECTED_LOG
# and leave nothing loaded; a hang counts as a failure too.
refused() {
	local want=$1 out
	shift
	dmesg -C
	modprobe -a ib_core rdma_cm || return 1
	if out=$(timeout 120 insmod "$RMAI_KO" "$@" 2>&1); then
		rmai_unload
		fail "insmod $* succeeded"
		return 1
	fi
	echo "insmod $*: ${out##*: }"
	dmesg | grep "rmai: " | grep -qF "$want" ||
		fail "no 'rmai: $want' in the log: $(dmesg | grep 'rmai:')" || return 1
	! grep -q '^rmai ' /proc/modules || fail "module left loaded" || return 1
	[ ! -e "$DEV" ] || fail "$DEV left behind"
}

bad_params() {
	local mn=memnodes=$MN_ADDR:$PORT
	refused "size=12Q: not a size" "$mn" size=12Q &&
	refused "size=1000: not a size" "$mn" size=1000 &&
	refused "size=: required with memnodes=" "$mn" &&
	refused "size=64M: needs memnodes=" size=64M &&
	refused "memnodes=: 'nowhere:1' is not ADDR[:PORT]" memnodes=nowhere:1 size=64M &&
	refused "memnodes=: '192.0.2.1:99999' is not" memnodes=192.0.2.1:99999 size=64M &&
	refused "memnodes=: '[::1' is not" "memnodes=[::1" size=64M &&
	refused "queue_depth=0: must be 4..1024" "$mn" size=64M queue_depth=0 &&
	refused "io_timeout=0: must be" "$mn" size=64M io_timeout=0
}

# Nobody listens, or nobody answers: load fails in bounded time, cleanly.
no_memnode() {
	refused "cannot connect queue 0: nothing listens there" \
		memnodes="$MN_ADDR:7999" size=64M || return 1
	refused "cannot connect queue 0" memnodes=192.0.2.99 size=64M \
		connect_timeout=2 || return 1
	[ "$(rmai_rdma_objects)" = 0 ] || fail "RDMA objects left: $(rmai_rdma_objects)"
}

# A memnode without room: ENOSPC, a clear line, and its slabs all free again.
memnode_full() {
	memnode_start "$SMALL_PORT" 32M || return 1
	refused "has 8 free slabs of 4 MiB, 16 needed" \
		memnodes="$MN_ADDR:$SMALL_PORT" size=64M
	local rc=$?
	memnode_status "$SMALL_PORT" | grep -q "free 32 MiB" ||
		fail "memnode still lends slabs: $(memnode_status "$SMALL_PORT")" || rc=1
	memnode_stop "$SMALL_PORT"
	return "$rc"
}

# A memnode that lies (selftests/bad_memnode.c): each lie is refused with
# a line naming it, leaving nothing behind; the same program telling the
# truth gives a working device, so the refusals are the lies' doing.
lying_memnode() {
	local mode want pid rc=0
	for mode in ok slab-huge free-over alloc-dup alloc-range alloc-count bad-seq stall; do
		# RMAI_TEST_PROTO=1: a module of protocol 1 (to show what it trusted)
		"$RMAI_BUILD/bad_memnode" --listen "$MN_ADDR:$LIAR_PORT" --mode "$mode" \
			${RMAI_TEST_PROTO:+--proto "$RMAI_TEST_PROTO"} 2>>/tmp/bad_memnode.log &
		pid=$!
		sleep 1
		case $mode in
		ok)
			rmai_load memnodes="$MN_ADDR:$LIAR_PORT" size=8M || fail "insmod against the honest one" || rc=1
			if [ "$rc" = 0 ]; then
				pat write "$DEV" 0 8M 9 --direct && pat verify "$DEV" 0 8M 9 --direct || rc=1
				rmai_unload || rc=1
			fi ;;
		slab-huge | free-over) want="the accept has a field out of range" ;;
		alloc-dup) want="the reply lists a slab twice" ;;
		alloc-range) want="a slab of the reply is out of range" ;;
		alloc-count) want="the reply lists more slabs than asked for" ;;
		bad-seq) want="malformed reply" ;;
		stall) want="HELLO failed" ;;
		esac
		[ "$mode" = ok ] || refused "$want" memnodes="$MN_ADDR:$LIAR_PORT" size=8M || rc=1
		kill "$pid"
		wait "$pid" 2>/dev/null
		[ "$(rmai_rdma_objects)" = 0 ] || fail "$mode: RDMA objects left" || rc=1
		[ "$rc" = 0 ] || { fail "mode $mode"; return 1; }
	done
}

load() {
	rmai_load memnodes="$MN_ADDR:$PORT" size="${SIZE_MIB}M" || fail "insmod" || return 1
	[ -b "$DEV" ] || fail "no block device $DEV" || return 1
	grep -q "connected 16 0" /sys/block/rmai0/rmai/memnodes ||
		fail "memnodes: $(cat /sys/block/rmai0/rmai/memnodes)" || return 1
	[ "$(blockdev --getsize64 "$DEV")" = $((SIZE_MIB << 20)) ] ||
		fail "size $(blockdev --getsize64 "$DEV")" || return 1
	[ "$(cat /sys/block/rmai0/queue/max_hw_sectors_kb)" -ge 2048 ] ||
		fail "max_hw_sectors_kb below 2 MiB" || return 1
	[ "$(cat /sys/block/rmai0/queue/rotational)" = 0 ] || fail "rotational"
}

# Whole device in 1 MiB direct I/O, read back direct and through the page
# cache; then 4 KiB and 2 MiB writes across slab boundaries.
read_write() {
	local slab=$((4 << 20))
	pat write "$DEV" 0 "${SIZE_MIB}M" 1 --direct || return 1
	pat verify "$DEV" 0 "${SIZE_MIB}M" 1 --direct || return 1
	echo 3 >/proc/sys/vm/drop_caches
	pat verify "$DEV" 0 "${SIZE_MIB}M" 1 --bs 4K || return 1
	pat write "$DEV" $((slab - 65536)) 128K 2 --direct --bs 4K || return 1
	pat write "$DEV" $((3 * slab - (1 << 20))) 2M 3 --direct --bs 2M || return 1
	pat verify "$DEV" 0 $((slab - 65536)) 1 --direct &&
	pat verify "$DEV" $((slab - 65536)) 128K 2 --direct &&
	pat verify "$DEV" $((slab + 65536)) $((2 * slab - (1 << 20) - 65536)) 1 --direct &&
	pat verify "$DEV" $((3 * slab - (1 << 20))) 2M 3 --direct &&
	pat verify "$DEV" $((3 * slab + (1 << 20))) $(((SIZE_MIB << 20) - 3 * slab - (1 << 20))) 1 --direct
}

# The pattern checker itself: another seed must not verify.
# O_DIRECT from buffers that start 512, 1536 or 3584 bytes into a page
# (the queue's DMA alignment is 511): each bio_vec then straddles pages, and
# every copy (staging, cache) must cut it at page boundaries. Written in 8
# KiB and 64 KiB pieces (staged), 1 MiB (direct), read back in pieces of
# other sizes and offsets (cached and direct), every block by content.
unaligned_buffers() {
	local o seed=20
	for o in 512 1536 3584; do
		seed=$((seed + 1))
		pat write "$DEV" 0 8M "$seed" --direct --bs 8K --buf-offset "$o" || return 1
		pat write "$DEV" 8M 8M "$seed" --direct --bs 64K --buf-offset "$o" || return 1
		pat write "$DEV" 16M 8M "$seed" --direct --bs 1M --buf-offset "$o" || return 1
		pat verify "$DEV" 0 24M "$seed" --direct --bs 12K --buf-offset $((4096 - o)) || return 1
		pat verify "$DEV" 0 24M "$seed" --direct --bs 1M --buf-offset "$o" || return 1
		pat verify "$DEV" 0 24M "$seed" --direct || return 1
	done
}

checker_catches_bad_data() {
	pat write "$DEV" 0 1M 4 --direct || return 1
	out=$(pat verify "$DEV" 0 1M 5 --direct)
	[ $? = 1 ] || fail "verify with the wrong seed passed" || return 1
	grep -q "256 bad blocks of 256" <<<"$out" || fail "$out"
}

# Past the end: ENOSPC for writes, EOF for reads, a write across the end cut
# at the end, and no request beyond it reaches the driver.
beyond_end() {
	local end=$((SIZE_MIB << 20)) errors out
	errors=$(rmai_io_stat errors)
	pat write "$DEV" $((end - 8192)) 8K 6 --direct || return 1
	out=$(dd if=/dev/zero of="$DEV" bs=4k seek=$((end / 4096)) count=1 oflag=direct 2>&1)
	grep -q "No space left on device" <<<"$out" || fail "write past the end: $out" || return 1
	[ "$(dd if="$DEV" bs=4k skip=$((end / 4096)) count=1 iflag=direct 2>/dev/null | wc -c)" = 0 ] ||
		fail "read past the end returned data" || return 1
	dd if=/dev/zero of="$DEV" bs=8k seek=$((end - 4096)) count=1 oflag=direct,seek_bytes 2>/dev/null
	pat verify "$DEV" $((end - 8192)) 4K 6 --direct || return 1
	pat zero "$DEV" $((end - 4096)) 4K 0 --direct || fail "last block not written" || return 1
	[ "$(rmai_io_stat errors)" = "$errors" ] || fail "errors counted"
}

write_zeroes() {
	local wz
	wz=$(rmai_io_stat write_zeroes)
	pat write "$DEV" 0 8M 7 --direct || return 1
	blkdiscard -z -o 1M -l 6M "$DEV" || fail "blkdiscard -z" || return 1
	pat zero "$DEV" 1M 6M 0 --direct || fail "not zero" || return 1
	pat verify "$DEV" 0 1M 7 --direct && pat verify "$DEV" 7M 1M 7 --direct || return 1
	[ "$(rmai_io_stat write_zeroes)" -gt "$wz" ] || fail "no WRITE_ZEROES request"
}

# Discard succeeds and is counted; the range is usable afterwards.
discard() {
	local d
	d=$(rmai_io_stat discards)
	blkdiscard -o 8M -l 8M "$DEV" || fail "blkdiscard" || return 1
	[ "$(rmai_io_stat discards)" -gt "$d" ] || fail "no DISCARD request" || return 1
	pat write "$DEV" 8M 8M 8 --direct && pat verify "$DEV" 8M 8M 8 --direct
}

# Counters move by exactly what was done; nothing stays in flight.
stats() {
	local r w rb wb lat0 lat1
	r=$(rmai_io_stat reads) w=$(rmai_io_stat writes)
	rb=$(rmai_io_stat read_bytes) wb=$(rmai_io_stat write_bytes)
	lat0=$(awk '{ n += $2 + $3 } END { print n }' /sys/block/rmai0/rmai/latency_us)
	pat write "$DEV" 0 192K 9 --direct --bs 64K || return 1
	pat verify "$DEV" 0 40K 9 --direct --bs 4K || return 1
	lat1=$(awk '{ n += $2 + $3 } END { print n }' /sys/block/rmai0/rmai/latency_us)
	cat /sys/block/rmai0/rmai/io_stat
	[ $(($(rmai_io_stat reads) - r)) = 10 ] || fail "reads" || return 1
	[ $(($(rmai_io_stat writes) - w)) = 3 ] || fail "writes" || return 1
	[ $(($(rmai_io_stat read_bytes) - rb)) = 40960 ] || fail "read_bytes" || return 1
	[ $(($(rmai_io_stat write_bytes) - wb)) = 196608 ] || fail "write_bytes" || return 1
	[ $((lat1 - lat0)) = 13 ] || fail "latency_us counted $((lat1 - lat0))" || return 1
	[ "$(rmai_io_stat in_flight)" = 0 ] || fail "in_flight"
}

swap() { swap_roundtrip "$DEV" 48 16M --order random --seed 11; }

# Large folios come back whole: with 1 MiB mTHP a reload takes one major
# fault per folio, against one per page with 4 KiB folios, from the same
# device in the same run. It needs defrag "always" (with "madvise", and no
# MADV_HUGEPAGE, a folio is charged to the cgroup without direct reclaim,
# which fails at memory.max, and the kernel falls back to 4 KiB pages, at
# the first touch and again at swap-in) and synchronous=Y (6.12 swaps large
# folios in on the synchronous path only).
large_folio_swapin() {
	local l4k l1m f4k f1m rc=0
	[ -w /sys/kernel/mm/transparent_hugepage/hugepages-1024kB/enabled ] ||
		{ echo "no 1 MiB mTHP in $(uname -r)"; return "$ksft_skip"; }
	mthp off
	l4k=$(swap_roundtrip "$DEV" 32 12M --order seq --seed 12) || rc=1
	mthp 1024 || rc=1
	l1m=$(swap_roundtrip "$DEV" 32 12M --order seq --seed 13) || rc=1
	mthp off
	echo "4 KiB: $l4k"
	echo "1 MiB: $l1m"
	[ "$rc" = 0 ] || return 1
	f4k=$(kv reload_majflt "$l4k") f1m=$(kv reload_majflt "$l1m")
	[ "$((f1m * 50))" -le "$f4k" ] ||
		fail "1 MiB folios took $f1m major faults, 4 KiB ones $f4k: not 50 times fewer"
}

# rmmod must refuse while swap holds the device.
rmmod_while_swapped_on() {
	local rc=0
	mkswap "$DEV" >/dev/null && swapon "$DEV" || fail "swapon" || return 1
	rmmod rmai 2>/dev/null && fail "rmmod succeeded under swapon" && rc=1
	swapoff "$DEV" || fail "swapoff" || rc=1
	[ -b "$DEV" ] || fail "device gone" || rc=1
	return "$rc"
}

# Unload releases the lease at once and leaves no RDMA object behind.
unload() {
	rmai_unload || fail "rmmod" || return 1
	[ ! -e "$DEV" ] || fail "$DEV still there" || return 1
	memnode_status "$PORT" | grep -q "free 256 MiB" ||
		fail "slabs not released: $(memnode_status "$PORT")" || return 1
	[ "$(rmai_rdma_objects)" = 0 ] || fail "RDMA objects left: $(rmai_rdma_objects)"
}

kernel_mem_kb() {
	awk '/^(SUnreclaim|Percpu|VmallocUsed):/ { n += $2 } END { print n }' /proc/meminfo
}

# Load, use and unload again and again: no RDMA objects, no kernel memory
# left behind (a leaked tag set alone would be ~1 MiB a cycle).
load_unload_cycles() {
	local i before after
	for i in 1 2 3 4 5 6 7; do
		[ "$i" = 3 ] && before=$(kernel_mem_kb)
		rmai_load memnodes="$MN_ADDR:$PORT" size="${SIZE_MIB}M" || fail "load $i" || return 1
		pat write "$DEV" 0 4M "$i" --direct && pat verify "$DEV" 0 4M "$i" --direct || return 1
		rmai_unload || fail "unload $i" || return 1
	done
	after=$(kernel_mem_kb)
	echo "kernel memory: $before kB before cycles 3-7, $after kB after"
	[ "$(rmai_rdma_objects)" = 0 ] || fail "RDMA objects left: $(rmai_rdma_objects)" || return 1
	[ $((after - before)) -lt 2048 ] || fail "kernel memory grew by $((after - before)) kB"
}

cleanup() {
	swapoff "$DEV" 2>/dev/null
	rmmod rmai 2>/dev/null
	memnode_stop "$PORT"
	memnode_stop "$SMALL_PORT"
}

[ -f "$RMAI_KO" ] || { echo "SKIP: $RMAI_KO not built"; exit "$ksft_skip"; }
ktap_print_header
ktap_set_plan 18
trap cleanup EXIT
memnode_start "$PORT" 256M || exit "$ksft_fail"
ktap_test bad_params bad_params
ktap_test no_memnode no_memnode
ktap_test memnode_full memnode_full
ktap_test lying_memnode lying_memnode
ktap_test load load
if [ -b "$DEV" ]; then
	ktap_test read_write read_write
	ktap_test unaligned_buffers unaligned_buffers
	ktap_test checker_catches_bad_data checker_catches_bad_data
	ktap_test beyond_end beyond_end
	ktap_test write_zeroes write_zeroes
	ktap_test discard discard
	ktap_test stats stats
	ktap_test swap swap
	ktap_test large_folio_swapin large_folio_swapin
	ktap_test rmmod_while_swapped_on rmmod_while_swapped_on
	ktap_test unload unload
fi
ktap_test load_unload_cycles load_unload_cycles
ktap_test log_is_clean bash -c '! dmesg | grep -E "rmai.*(BUG|WARNING)"'
ktap_finished
