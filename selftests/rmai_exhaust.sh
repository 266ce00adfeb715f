#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rmai.ko as the only swap of a machine out of memory: no cgroup, most RAM
# locked away, and a process whose anonymous memory is twice the RAM left,
# so global reclaim swaps it out and back while the memnode connection is
# cut again and again (the admin's disconnect: every reconnect allocates its
# queues while swap waits on them). Every page must come back right, with
# no OOM kill, hang or kernel report.
#
# On the bed (scripts/vm --nodes 2), the memnode on node 1: with the daemon
# in the compute node's own RAM, its kernel allocations for the new queues
# would wait for the very swap-out that waits for them, which no real
# deployment has.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

require_vm
require_root
require_bed 2

PORT=7487
DEV=/dev/rmai0
HEADROOM_MIB=160	# RAM left beside the locked hog
MN=$(bed_addr 1)

THP=/sys/kernel/mm/transparent_hugepage/enabled
thp_was=

mem_available_mib() { awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo; }
lease_id() { on_node 1 memnode_status "$PORT" | sed -n 's/^lease \([0-9a-f]*\):.*/\1/p'; }

hog=
exhaust_through_reconnects() {
	local avail size bg i line rc reconnects
	on_node 1 memnode_start "$PORT" 512M --lease-grace 120 || return 1
	rmai_load memnodes="$MN:$PORT" size=512M keepalive=1 io_timeout=120 ||
		fail "insmod" || return 1
	mkswap "$DEV" >/dev/null && swapon "$DEV" || fail "swapon" || return 1
	# 4 KiB pages only: reclaim then frees small batches. With THPs, kswapd
	# freed (and, under the VM's page_poison, poisoned) batches of 2 MiB
	# folios for 26 s without a break under TCG: a soft lockup.
	echo never >"$THP"
	avail=$(mem_available_mib)
	"$RMAI_BUILD/swap_reload" --size $((avail - HEADROOM_MIB)) --lock >/dev/null 2>/tmp/hog.err &
	hog=$!
	for i in $(seq 600); do
		grep -q locked /tmp/hog.err && break
		kill -0 "$hog" 2>/dev/null || { cat /tmp/hog.err; fail "the hog died"; return 1; }
		sleep 0.2
	done
	size=$((2 * $(mem_available_mib)))
	echo "locked $((avail - HEADROOM_MIB)) MiB; $(mem_available_mib) MiB available; working set $size MiB"
	"$RMAI_BUILD/swap_reload" --size "$size" >/tmp/exhaust.out &
	bg=$!
	for i in $(seq 3); do
		sleep 6
		kill -0 "$bg" 2>/dev/null || break
		"$RMAI_TOP/scripts/vmctl" exec 1 -- "$RMAI_MEMNODED" disconnect "$(lease_id)" \
			--admin-socket "/tmp/memnode-$PORT.sock" >/dev/null || fail "memnode disconnect" || return 1
	done
	# How far it got, for a run that the runner's timeout stops.
	while kill -0 "$bg" 2>/dev/null; do
		sleep 1
		[ $((SECONDS % 30)) = 0 ] || continue
		awk '/^pswp(in|out) / { printf "%s %d MiB  ", $1, $2 / 256 }' /proc/vmstat
		echo "$(mem_available_mib) MiB available"
	done
	wait "$bg"
	rc=$?
	line=$(cat /tmp/exhaust.out)
	echo "$line"
	cat /sys/block/rmai0/rmai/memnodes /sys/block/rmai0/rmai/io_stat
	[ "$rc" = 0 ] || fail "swap_reload exited $rc" || return 1
	[ "$(kv mismatched_pages "$line")" = 0 ] || fail "pages came back wrong" || return 1
	[ "$(kv reload_majflt "$line")" -gt 0 ] || fail "nothing was swapped" || return 1
	reconnects=$(awk '{ print $5 }' /sys/block/rmai0/rmai/memnodes)
	[ "$reconnects" -ge 1 ] || fail "no reconnect under pressure" || return 1
	! dmesg | grep -q "Out of memory" || fail "the OOM killer ran"
}

unloads_clean() {
	[ "$(rmai_rdma_objects)" = 0 ] || fail "RDMA objects left: $(rmai_rdma_objects)" || return 1
	! dmesg | grep -E "rmai.*(BUG|WARNING)"
}

cleanup() {
	[ -z "$hog" ] || kill "$hog" 2>/dev/null
	wait 2>/dev/null
	swapoff "$DEV" 2>/dev/null
	rmmod rmai 2>/dev/null
	on_node 1 memnode_stop "$PORT"
	[ -z "$thp_was" ] || echo "$thp_was" >"$THP"
}

[ -f "$RMAI_KO" ] || { echo "SKIP: $RMAI_KO not built"; exit "$ksft_skip"; }
thp_was=$(sed 's/.*\[\(.*\)\].*/\1/' "$THP")
ktap_print_header
ktap_set_plan 2
# io_timeout is 120 s: a swap-out may wait that long for a reconnect, as
# long as the kernel's hung-task timeout, under which the guest panics.
hung_task_allow 400
trap 'cleanup; hung_task_restore' EXIT
dmesg -C
ktap_test exhaust_through_reconnects exhaust_through_reconnects
cleanup
hog=
ktap_test unloads_clean unloads_clean
ktap_finished
