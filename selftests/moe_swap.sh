#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rmai-moe, the MoE decode workload, on swap. A small model (8 experts of
# 8 MiB, fp16) decodes in a cgroup whose memory.max holds half of it, with
# zram as the swap device, then with /dev/rmai0 on a memnode (4 KiB folios
# and mTHP 64 KiB): every expert pass must find its weights intact,
# the output digest must equal that of a run without a memory limit, and
# experts must really have come back from swap. The checker must catch one
# flipped weight byte, and the pages rmai remaps instead of sending when
# their fingerprints are sabotaged; a replayed router trace and a weights
# file must work. On rmai, with synchronous swap-in freeing every slot it
# reads, the experts evicted again (clean) must cross the link at most once
# in 20 (the page map remaps them), beyond the first eviction of those that
# were resident when decoding began.
#
# moe_on_swapdev DEV is the backend-neutral part each backend calls.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

require_vm
require_root

MOE=$RMAI_BUILD/rmai-moe
MOE_ARGS=(--experts 8 --expert-mib 8 --dtype fp16 --tokens 32 --seed 3)
MOE_MAX=32M				# half of the 64 MiB of experts
MOE_TMP=$(mktemp -d /tmp/moe_swap.XXXXXX)
trap 'rm -rf "$MOE_TMP"; rmmod rmai 2>/dev/null; memnode_stop "$MN_PORT"' EXIT

# gt0 NUMBER: true when NUMBER (maybe with decimals) is above zero.
gt0() { awk -v v="$1" 'BEGIN { exit !(v > 0) }'; }

# The small model without a memory limit: its output digest is the
# reference the runs under pressure must reproduce. Also saves its trace.
moe_reference() {
	local line
	line=$("$MOE" "${MOE_ARGS[@]}" --write-trace "$MOE_TMP/trace")
	echo "$line"
	[ "$(kv verified "$line")" = 1 ] || fail "reference run not verified" || return 1
	kv output_digest "$line" >"$MOE_TMP/digest"
}

# moe_swap_run DEV [RMAI_MOE_ARGS...]: swapon DEV, decode the small model in
# a cgroup limited to MOE_MAX, swapoff; prints the result line, returns
# rmai-moe's status.
moe_swap_run() {
	local dev=$1 cg line rc
	shift
	mkswap "$dev" >/dev/null || fail "mkswap $dev" || return 2
	swapon "$dev" || fail "swapon $dev" || return 2
	cg=$(cg_create "rmai-moe-$$" "$MOE_MAX") || { swapoff "$dev"; fail "cgroup"; return 2; }
	line=$("$MOE" "${MOE_ARGS[@]}" --cgroup "$cg" "$@")
	rc=$?
	cg_destroy "$cg"
	swapoff "$dev" || fail "swapoff $dev" || return 2
	echo "$line"
	return "$rc"
}

# moe_on_swapdev DEV: the small model under memory pressure on swap device
# DEV. Fails unless every pass verified, the output equals the reference,
# and experts were evicted and loaded back from DEV.
moe_on_swapdev() {
	local line rc
	[ -s "$MOE_TMP/digest" ] || fail "no reference digest" || return 1
	line=$(moe_swap_run "$1" --expect-digest "$(cat "$MOE_TMP/digest")" --table)
	rc=$?
	echo "$line"
	[ "$rc" = 0 ] || fail "rmai-moe exited $rc" || return 1
	[ "$(kv verified "$line")" = 1 ] || fail "outputs not verified" || return 1
	[ "$(kv majflt "$line")" -gt 0 ] || fail "no major faults: nothing came from swap" || return 1
	gt0 "$(kv swapin_mib "$line")" || fail "pswpin did not move" || return 1
	[ "$(kv loads "$line")" -gt 0 ] || fail "no expert was loaded back from swap" || return 1
	if [ "$1" = /dev/rmai0 ]; then
		gt0 "$(kv rmai_read_mib "$line")" || fail "rmai0 read nothing" || return 1
		# What was resident at the start goes out once, the rest never.
		awk -v s="$(kv rmai_sent_mib "$line")" -v i="$(kv swapin_mib "$line")" \
			-v m="${MOE_MAX%M}" 'BEGIN { exit !(s <= m + i / 20) }' ||
			fail "sent $(kv rmai_sent_mib "$line") MiB for $(kv swapin_mib "$line") MiB swapped in: clean pages sent again" ||
			return 1
	fi
}

# The fingerprint cut down to the last byte of each page: pages that differ
# are remapped to each other, and the checker must say so (or the program,
# whose other pages are hit too, crash).
moe_catches_bad_remaps() {
	local line rc
	rmai_load memnodes="$MN_ADDR:$MN_PORT" size=128M tag_bytes=1 || return 1
	line=$(moe_swap_run /dev/rmai0 --expect-digest "$(cat "$MOE_TMP/digest")" 2>/dev/null)
	rc=$?
	rmai_unload
	echo "$line"
	[ "$rc" -ge 128 ] && return 0
	[ "$rc" = 1 ] || fail "rmai-moe exited $rc, not 1, with pages remapped to others" || return 1
	[ "$(kv bad_passes "$line")" -gt 0 ] || fail "no bad pass reported"
}

# moe_catches_corruption DEV: one weight byte flipped after the checksums
# were taken, then swapped out and back with the rest: the run must fail
# and name the expert that was hit.
moe_catches_corruption() {
	local line rc
	line=$(moe_swap_run "$1" --corrupt-for-test)
	rc=$?
	echo "$line"
	[ "$rc" = 1 ] || fail "rmai-moe exited $rc, not 1, on a flipped byte" || return 1
	[ "$(kv bad_passes "$line")" -gt 0 ] || fail "no bad pass reported" || return 1
	[ "$(kv first_bad_expert "$line")" = "$(kv corrupt_expert "$line")" ] ||
		fail "the bad expert is not the corrupted one"
}

# The trace the reference wrote, replayed: the same output.
moe_trace_replay() {
	local line
	line=$("$MOE" "${MOE_ARGS[@]}" --trace "$MOE_TMP/trace" \
		--expect-digest "$(cat "$MOE_TMP/digest")")
	echo "$line"
	[ "$(kv verified "$line")" = 1 ] || fail "replayed trace gave another output"
}

# Weights from a file (4 experts of 256 x 512 fp16): loaded, verified, and
# the same output twice; a file of the wrong size is a usage error.
moe_weights_file() {
	local w=$MOE_TMP/weights args line1 line2
	args=(--experts 4 --hidden 256 --ffn 512 --dtype fp16 --tokens 8 --weights "$w")
	head -c $((4 * 3 * 256 * 512 * 2)) /dev/urandom >"$w"
	line1=$("$MOE" "${args[@]}") || fail "rmai-moe exited $? on a weights file" || return 1
	line2=$("$MOE" "${args[@]}") || fail "rmai-moe exited $? on the second run" || return 1
	echo "$line1"
	[ "$(kv output_digest "$line1")" = "$(kv output_digest "$line2")" ] ||
		fail "two runs on the same weights differ" || return 1
	truncate -s -1 "$w"
	"$MOE" "${args[@]}" >/dev/null 2>&1
	[ $? = 2 ] || fail "a short weights file was not refused"
}

MN_PORT=7486

rmai_up() {
	memnode_start "$MN_PORT" 160M >/dev/null &&
		rmai_load memnodes="$MN_ADDR:$MN_PORT" size=128M
}

moe_on_rmai_mthp64k() {
	local rc
	mthp 64
	moe_on_swapdev /dev/rmai0
	rc=$?
	mthp off
	return "$rc"
}

zram_up() {
	modprobe zram num_devices=1 || return 1
	echo 128M >/sys/block/zram0/disksize
}

zram_down() {
	echo 1 >/sys/block/zram0/reset
	rmmod zram
}

[ -x "$MOE" ] || { echo "$MOE not built: make selftests"; exit "$ksft_fail"; }
ktap_print_header
ktap_set_plan 9
ktap_test reference moe_reference
ktap_test trace_replay moe_trace_replay
ktap_test weights_file moe_weights_file
if zram_up; then
	ktap_test zram moe_on_swapdev /dev/zram0
	ktap_test zram_catches_corruption moe_catches_corruption /dev/zram0
	zram_down
else
	ktap_result skip zram "no zram"
	ktap_result skip zram_catches_corruption "no zram"
fi
if [ -f "$RMAI_KO" ] && rdma link show 2>/dev/null | grep -q rxe && rmai_up; then
	ktap_test rmai moe_on_swapdev /dev/rmai0
	ktap_test rmai_mthp64k moe_on_rmai_mthp64k
	ktap_test rmai_catches_corruption moe_catches_corruption /dev/rmai0
	rmai_unload
	ktap_test rmai_catches_bad_remaps moe_catches_bad_remaps
	memnode_stop "$MN_PORT"
else
	for t in rmai rmai_mthp64k rmai_catches_corruption rmai_catches_bad_remaps; do
		ktap_result skip "$t" "no rmai.ko or no RDMA device (run with scripts/vm --net)"
	done
fi
ktap_finished
