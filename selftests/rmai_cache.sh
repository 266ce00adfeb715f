#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The VMR cache and write-back of rmai.ko: concurrent reads, writes and
# discards on overlapping VMRs return what was written (blk_stress, every
# byte checked) with the cache and write-back on or off and any vmr_kb; the
# same work leaves the same bytes in every configuration; sequential reads
# are served by prefetch; the cache stays within cache_mb, its shrinker
# gives memory back, and reads that miss right after do not take it again:
# the cache grows back only once the pressure is over. Blocks that share
# content (blk_stress --dup, which the page map shares) read back right, and
# the checker catches pages remapped to others when the fingerprint is
# sabotaged (tag_bytes). A sequential pass misses only in its first VMR:
# readahead fetches the next ones before their first read.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

require_vm
require_root

PORT=7485
DEV=/dev/rmai0
CACHE_STAT=/sys/block/rmai0/rmai/cache_stat
REMOTE_STAT=/sys/block/rmai0/rmai/remote_stat

load() {
	rmai_load memnodes="$MN_ADDR:$PORT" size=64M "$@" || fail "insmod $*"
}

# stress PARAM...: blk_stress on a device loaded with PARAM; $STRESS_ARGS
# are blk_stress's own.
stress() {
	local rc elided
	load "$@" || return 1
	# shellcheck disable=SC2086 # the words are arguments
	"$RMAI_BUILD/blk_stress" "$DEV" --mib 16 --threads 4 --seconds 8 --seed 7 ${STRESS_ARGS:-}
	rc=$?
	cat "$CACHE_STAT" "$REMOTE_STAT"
	elided=$(awk '{ print $4 }' "$REMOTE_STAT")
	rmai_unload || fail "rmmod" || return 1
	[ "$rc" = 0 ] || fail "blk_stress exited $rc" || return 1
	# Shared content must have been shared (elided_bytes).
	[[ "${STRESS_ARGS:-}" != *--dup* ]] || [ "$elided" -gt 0 ] ||
		fail "no page was remapped to another holding its content"
}

# Blocks 3 apart share content: the page map shares their remote pages.
stress_shared() {
	STRESS_ARGS="--dup 3" stress "$@" || return 1
}

# The fingerprint cut down to the last byte: pages that differ are remapped
# to each other, and the checker must notice.
checker_catches_bad_remaps() {
	local out rc
	load tag_bytes=1 || return 1
	out=$("$RMAI_BUILD/blk_stress" "$DEV" --mib 4 --threads 2 --seconds 4 --dup 3 2>&1)
	rc=$?
	rmai_unload
	echo "$out" | tail -n 2
	[ "$rc" = 1 ] || fail "blk_stress with tag_bytes=1 exited $rc"
}

# The checker notices a block written behind its back.
checker_catches_bad_data() {
	local out rc
	load || return 1
	out=$("$RMAI_BUILD/blk_stress" "$DEV" --mib 4 --threads 2 --seconds 2 --sabotage 2>&1)
	rc=$?
	rmai_unload
	echo "$out" | tail -n 2
	[ "$rc" = 1 ] || fail "blk_stress --sabotage exited $rc"
}

# One seeded thread leaves the same bytes whatever the configuration.
same_result_in_every_config() {
	local args sum first=""
	for args in "" "vmr_kb=64" "vmr_kb=2048" "cache_mb=0" "writeback_mb=0" \
		    "cache_mb=0 writeback_mb=0" "elide=N" "readahead=N"; do
		# shellcheck disable=SC2086 # the words of $args are parameters
		load $args || return 1
		"$RMAI_BUILD/blk_stress" "$DEV" --mib 8 --threads 1 --ops 1000 --seed 3 ||
			fail "blk_stress with '$args'" || return 1
		sum=$(head -c 8M "$DEV" | sha256sum | cut -c1-16)
		rmai_unload || return 1
		echo "'$args': $sum"
		first=${first:-$sum}
		[ "$sum" = "$first" ] || fail "content differs with '$args'" || return 1
	done
}

# 4 KiB reads in order: one miss per VMR, every other read a hit.
sequential_prefetch() {
	local hits misses
	load vmr_kb=256 || return 1
	pat write "$DEV" 0 16M 5 --direct &&
	pat verify "$DEV" 0 16M 5 --direct --bs 4K || return 1
	hits=$(rmai_cache_stat hits) misses=$(rmai_cache_stat misses)
	cat "$CACHE_STAT"
	rmai_unload
	if [ "$misses" -gt 64 ] || [ "$hits" -lt $((4096 - 64)) ]; then
		fail "$hits hits and $misses misses for 4096 reads of 64 VMRs"
	fi
}

# readahead_pass PARAM...: misses and VMRs read ahead in one sequential
# 4 KiB pass over 64 VMRs (16 of the device's 64 MiB), written before, and
# the slabs the pass crosses, on stdout; the rest on stderr.
readahead_pass() {
	load vmr_kb=256 "$@" >&2 || return 1
	if ! pat write "$DEV" 0 16M 6 --direct >&2 ||
	   ! pat verify "$DEV" 0 16M 6 --direct --bs 4K >&2; then
		rmai_unload >&2
		return 1
	fi
	cat "$CACHE_STAT" >&2
	# The slabs the pass crosses: readahead stays within a slab.
	echo "$(rmai_cache_stat misses) $(rmai_cache_stat readahead_vmrs)" \
		"$(awk '{ n += $4 } END { print int(n * 16 / 64 + 0.999) }' /sys/block/rmai0/rmai/memnodes)"
	rmai_unload >&2
}

# A device of 64 MiB + 4 KiB ends in a partial VMR: reads there go around
# the cache (a fetch, or a readahead from the VMR before, would read past
# the page map: it was cached, and read ahead, before the fix), and the
# data reads back right.
partial_last_vmr() {
	local last first
	rmai_load memnodes="$MN_ADDR:$PORT" size=65540K vmr_kb=256 || fail "insmod" || return 1
	if ! pat write "$DEV" 0 65540K 8 --direct ||
	   ! pat verify "$DEV" 64M 4K 8 --direct --bs 4K; then
		rmai_unload
		fail "the last page did not read back"
		return 1
	fi
	last=$(rmai_cache_stat misses)
	pat verify "$DEV" 0 4K 8 --direct --bs 4K || { rmai_unload; fail "page 0"; return 1; }
	first=$(rmai_cache_stat misses)
	# A sequential pass into the end: readahead stops before the partial VMR.
	pat verify "$DEV" 60M 4100K 8 --direct --bs 4K || { rmai_unload; fail "the end"; return 1; }
	cat "$CACHE_STAT"
	rmai_unload || return 1
	[ "$last" = 0 ] || fail "the partial VMR was looked up in the cache ($last misses)" || return 1
	[ "$first" = 1 ] || fail "a read of page 0 made $first misses, not 1"
}

# Readahead fetches each VMR before its first read, so that only the first
# VMR of each slab misses; without it, the first read of every VMR misses.
sequential_readahead() {
	local on off
	on=$(readahead_pass) || return 1
	off=$(readahead_pass readahead=N) || return 1
	echo "readahead=Y: misses, VMRs read ahead, slabs: $on; readahead=N: $off"
	# shellcheck disable=SC2086 # three numbers each
	set -- $on $off
	if [ "$1" -gt "$3" ] || [ "$2" -lt $((64 - $3)) ]; then
		fail "$1 misses and $2 VMRs read ahead over $3 slabs with readahead=Y"
		return 1
	fi
	if [ "$4" -lt 60 ] || [ "$5" != 0 ]; then
		fail "$4 misses and $5 VMRs read ahead with readahead=N"
	fi
}

# Reads over four times cache_mb: the cache fills to its bound, never past
# it; the shrinker empties it; misses right after leave it empty (no
# allocation on the I/O path), and it grows back once the shrinker has left
# it alone for a while (10 s).
bound_and_shrinker() {
	local max i now shrunk
	load cache_mb=4 vmr_kb=64 || return 1
	max=$(rmai_cache_stat cache_max_bytes)
	[ "$max" = $((4 << 20)) ] || fail "cache_max_bytes $max" || return 1
	pat write "$DEV" 0 16M 6 --direct || return 1
	for i in 0 4 8 12; do
		pat verify "$DEV" "${i}M" 4M 6 --direct --bs 4K || return 1
		now=$(rmai_cache_stat cache_bytes)
		[ "$now" -le "$max" ] || fail "cache holds $now > $max bytes" || return 1
	done
	[ "$(rmai_cache_stat evictions)" -gt 0 ] || fail "nothing evicted" || return 1
	echo 2 >/proc/sys/vm/drop_caches	# shrink_slab(): every shrinker
	shrunk=$(rmai_cache_stat shrunk)
	now=$(rmai_cache_stat cache_bytes)
	echo "after drop_caches: $now bytes cached, $shrunk shrunk"
	if [ "$shrunk" = 0 ] || [ "$now" -ge "$max" ]; then
		fail "the shrinker freed nothing"
		return 1
	fi
	pat verify "$DEV" 0 4M 6 --direct --bs 4K || return 1
	[ "$(rmai_cache_stat cache_bytes)" -le "$now" ] ||
		fail "misses grew the cache back under pressure: $(rmai_cache_stat cache_bytes) bytes" || return 1
	for i in $(seq 60); do
		[ "$(rmai_cache_stat cache_bytes)" -gt "$now" ] && break
		sleep 1
	done
	[ "$(rmai_cache_stat cache_bytes)" -gt "$now" ] || fail "the cache did not grow back" || return 1
	pat verify "$DEV" 0 4M 6 --direct --bs 4K || return 1
	rmai_unload
}

cleanup() {
	rmmod rmai 2>/dev/null
	memnode_stop "$PORT"
}

[ -f "$RMAI_KO" ] || { echo "SKIP: $RMAI_KO not built"; exit "$ksft_skip"; }
ktap_print_header
ktap_set_plan 16
trap cleanup EXIT
memnode_start "$PORT" 128M || exit "$ksft_fail"
ktap_test stress_defaults stress
ktap_test stress_vmr_64k stress vmr_kb=64
ktap_test stress_vmr_2m stress vmr_kb=2048
ktap_test stress_no_cache stress cache_mb=0
ktap_test stress_no_writeback stress writeback_mb=0
ktap_test stress_neither stress cache_mb=0 writeback_mb=0
ktap_test stress_shared stress_shared
ktap_test stress_shared_no_cache stress_shared cache_mb=0 writeback_mb=0
ktap_test checker_catches_bad_data checker_catches_bad_data
ktap_test checker_catches_bad_remaps checker_catches_bad_remaps
ktap_test same_result_in_every_config same_result_in_every_config
ktap_test sequential_prefetch sequential_prefetch
ktap_test sequential_readahead sequential_readahead
ktap_test partial_last_vmr partial_last_vmr
ktap_test bound_and_shrinker bound_and_shrinker
ktap_test log_is_clean bash -c '! dmesg | grep -E "rmai.*(BUG|WARNING)"'
ktap_finished
