#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Shared by RMAI's shell selftests: KTAP output, skips, the module under test.
# Source it; it defines functions and sets nothing else.

ksft_pass=0
ksft_skip=4
ksft_fail=1

RMAI_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The module under test; run_tests.sh and scripts/check may point elsewhere
# (the 6.1 build lives in build/6.1/backend/rmai.ko).
RMAI_KO=${RMAI_KO:-$RMAI_TOP/backend/rmai.ko}

ktap_count=0
ktap_failed=0

ktap_print_header() { echo "TAP version 13"; }
ktap_set_plan() { echo "1..$1"; }

ktap_result() {		# ktap_result ok|not-ok|skip NAME [REASON]
	ktap_count=$((ktap_count + 1))
	case $1 in
	ok) echo "ok $ktap_count $2" ;;
	skip) echo "ok $ktap_count $2 # SKIP $3" ;;
	*) echo "not ok $ktap_count $2"; ktap_failed=$((ktap_failed + 1)) ;;
	esac
}

# Run one subtest: ktap_test NAME FUNCTION [ARGS...]. The function's output
# goes out as diagnostics as it comes (a test killed by the runner's timeout
# has said how far it got); status 0 passes, $ksft_skip skips, others fail.
# The function runs in a subshell, as in $(...).
ktap_test() {
	local name=$1 rc last start=$SECONDS
	shift
	last=$(mktemp)
	("$@") 2>&1 | tee "$last" | sed -u 's/^/# /'
	rc=${PIPESTATUS[0]}
	echo "# $name: $((SECONDS - start)) s"
	case $rc in
	0) ktap_result ok "$name" ;;
	"$ksft_skip") ktap_result skip "$name" "$(tail -n 1 "$last")" ;;
	*) ktap_result not-ok "$name" ;;
	esac
	rm -f "$last"
}

ktap_finished() {
	[ "$ktap_failed" = 0 ] && exit "$ksft_pass"
	exit "$ksft_fail"
}

# Fail the calling subtest with a message.
fail() { echo "FAIL: $*"; return 1; }

require_root() {
	[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit "$ksft_skip"; }
}

# True when the test VM runs (scripts/vm sets it): tests that load modules
# must never run on the build machine's own kernel.
require_vm() {
	[ "${RMAI_VM:-}" = 1 ] || {
		echo "SKIP: loads kernel modules: run only in the test VM (scripts/vm)"
		exit "$ksft_skip"
	}
}

# require_bed N: the compute node of a bed of N or more nodes (scripts/vm
# --nodes N), whose memory nodes scripts/vmctl drives.
require_bed() {
	{ [ -n "${RMAI_BED:-}" ] && [ "${RMAI_NODES:-1}" -ge "$1" ]; } || {
		echo "SKIP: needs a bed of $1 nodes: scripts/vm --nodes $1"
		exit "$ksft_skip"
	}
}

# bed_addr NODE: the address of memory node NODE of the bed.
bed_addr() {
	local a
	read -r -a a <<<"$RMAI_MN_ADDRS"
	echo "${a[$1 - 1]}"
}

# on_node NODE FUNCTION [ARGS...]: a function of this file, run on memory
# node NODE of the bed (memnode_start, memnode_stop, memnode_status, ...),
# with MN_ADDR that node's address.
on_node() {
	local k=$1
	shift
	# shellcheck disable=SC2016 # expanded by the node's shell
	"$RMAI_TOP/scripts/vmctl" exec "$k" -- env MN_ADDR="$(bed_addr "$k")" RMAI_MEMNODED="$RMAI_MEMNODED" \
		bash -c '. "$0" && "$@"' "$RMAI_TOP/selftests/test_common.sh" "$@"
}

# --- cgroup v2 and swap ------------------------------------------------------

RMAI_BUILD=${RMAI_BUILD:-$RMAI_TOP/build/selftests}

# cg_create NAME MEMORY_MAX: a memory-limited cgroup; prints its path.
cg_create() {
	local cg=/sys/fs/cgroup/$1
	echo +memory >/sys/fs/cgroup/cgroup.subtree_control || return 1
	mkdir -p "$cg" && echo "$2" >"$cg/memory.max" || return 1
	echo "$cg"
}

# "${CG_EXEC[@]}" CGROUP CMD...: a command line that runs CMD inside CGROUP,
# for launchers that take a program (perf record --).
# shellcheck disable=SC2016 # for the inner shell
CG_EXEC=(bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _)

# cg_run CGROUP CMD...: run CMD inside CGROUP.
cg_run() { "${CG_EXEC[@]}" "$@"; }

# cg_destroy CGROUP: kill what still runs in it, then remove it (a process
# left there keeps its pages charged, and swapoff would fault them back in
# against the cgroup's limit).
cg_destroy() {
	local i
	[ -d "$1" ] || return 0
	echo 1 >"$1/cgroup.kill" 2>/dev/null
	for i in $(seq 100); do
		[ -s "$1/cgroup.procs" ] || break
		sleep 0.1
	done
	rmdir "$1" 2>/dev/null || true
}

# hung_task_allow SECONDS: tasks may block that long before the kernel's
# hung-task detector reports them (and scripts/vm's guests panic): for
# tests whose faults block swap on purpose for as long as their io_timeout,
# longer than the kernel's 120 s. hung_task_restore puts it back.
HUNG_TASK=/proc/sys/kernel/hung_task_timeout_secs
hung_task_old=
hung_task_allow() {
	[ -w "$HUNG_TASK" ] || return 0
	hung_task_old=$(cat "$HUNG_TASK")
	[ "$hung_task_old" = 0 ] || [ "$hung_task_old" -ge "$1" ] || echo "$1" >"$HUNG_TASK"
}
hung_task_restore() {
	[ -z "$hung_task_old" ] || echo "$hung_task_old" >"$HUNG_TASK"
}

# kv KEY LINE: the value of KEY=value in a swap_reload result line.
kv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# mthp SIZE_KB|off: anonymous mTHP folios of that one size with defrag
# "always", or 4 KiB folios only with defrag back to what it was before the
# first "mthp SIZE_KB". Under memory.max, Debian's "madvise" charges a large
# folio without direct reclaim (the engines do not madvise); the charge fails
# at the limit and the kernel falls back to 4 KiB pages, at the first touch
# and at swap-in.
mthp() {
	local thp=/sys/kernel/mm/transparent_hugepage d
	for d in "$thp"/hugepages-*kB; do echo never 2>/dev/null >"$d/enabled"; done
	if [ "$1" = off ]; then
		[ -z "${mthp_saved_defrag:-}" ] || echo "$mthp_saved_defrag" >"$thp/defrag"
		return
	fi
	[ -w "$thp/hugepages-${1}kB/enabled" ] ||
		{ echo "no $1 KiB mTHP in $(uname -r)" >&2; return 1; }
	[ -n "${mthp_saved_defrag:-}" ] ||
		mthp_saved_defrag=$(sed 's/.*\[\(.*\)\].*/\1/' "$thp/defrag")
	echo always >"$thp/hugepages-${1}kB/enabled" && echo always >"$thp/defrag"
}

# swap_roundtrip DEV SIZE_MIB MAX SWAP_RELOAD_ARGS...: swapon DEV, write
# SIZE_MIB of checksummed pages in a cgroup limited to MAX, push them out,
# reload and verify every byte. Fails on any mismatch or when nothing was
# reloaded from swap; prints swap_reload's line.
swap_roundtrip() {
	local dev=$1 size=$2 max=$3 cg line rc
	shift 3
	mkswap "$dev" >/dev/null || fail "mkswap $dev" || return 1
	swapon "$dev" || fail "swapon $dev" || return 1
	cg=$(cg_create "rmai-test-$$" "$max") || { swapoff "$dev"; fail "cgroup"; return 1; }
	line=$(cg_run "$cg" "$RMAI_BUILD/swap_reload" --size "$size" --pageout "$@")
	rc=$?
	cg_destroy "$cg"
	swapoff "$dev" || fail "swapoff $dev" || return 1
	echo "$line"
	[ $rc = 0 ] || fail "swap_reload exited $rc" || return 1
	[ "$(kv mismatched_pages "$line")" = 0 ] || fail "pages came back wrong" || return 1
	[ "$(kv reload_majflt "$line")" -gt 0 ] || fail "no major faults: nothing was swapped" || return 1
}

# --- rmai.ko and a memnode ---------------------------------------------------

RMAI_MEMNODED=${RMAI_MEMNODED:-$RMAI_TOP/memnode/rmai-memnoded}
MN_ADDR=${MN_ADDR:-192.0.2.1}

# memnode_start PORT SIZE [ARGS...]: rmai-memnoded on $MN_ADDR:PORT with
# 4 MiB slabs, its log in /tmp/memnode-PORT.log; returns once it answers.
memnode_start() {
	local port=$1 size=$2 i
	shift 2
	"$RMAI_MEMNODED" --listen "$MN_ADDR:$port" --size "$size" --slab 4M \
		--admin-socket "/tmp/memnode-$port.sock" --foreground "$@" \
		>>"/tmp/memnode-$port.log" 2>&1 &
	echo $! >"/tmp/memnode-$port.pid"
	for i in $(seq 150); do
		memnode_status "$port" >/dev/null 2>&1 && return 0
		kill -0 "$(cat "/tmp/memnode-$port.pid")" 2>/dev/null || break
		sleep 0.2
	done
	cat "/tmp/memnode-$port.log"
	fail "rmai-memnoded on port $port did not come up"
}

memnode_status() { "$RMAI_MEMNODED" status --admin-socket "/tmp/memnode-$1.sock" "${@:2}"; }

# memnode_stop PORT [SIGNAL]: stop it and wait until it is gone.
memnode_stop() {
	local pid i
	pid=$(cat "/tmp/memnode-$1.pid" 2>/dev/null) || return 0
	kill "-${2:-TERM}" "$pid" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	rm -f "/tmp/memnode-$1.pid"
}

# rmai_load PARAM...: insmod the module under test (its RDMA dependencies
# first: insmod does not resolve them). rmai_unload undoes it.
rmai_load() { modprobe -a ib_core rdma_cm && insmod "$RMAI_KO" "$@"; }
rmai_unload() { rmmod rmai; }

# pat write|verify|zero DEV OFFSET LEN SEED [...]: selftests/blkpat.c
pat() { "$RMAI_BUILD/blkpat" "$@"; }

# column FILE NAME COLUMN_NAMES...: the column called NAME of the one-line
# statistics file FILE, whose columns are named by COLUMN_NAMES.
column() {
	local file=$1 name=$2 i=0 n
	shift 2
	for n in "$@"; do
		i=$((i + 1))
		[ "$n" = "$name" ] || continue
		awk -v c=$i '{ print $c }' "$file"
		return
	done
	echo "column: $file has no column '$name'" >&2
	return 1
}

# rmai_io_stat FIELD, rmai_cache_stat FIELD: columns of rmai0's statistics.
rmai_io_stat() {
	column /sys/block/rmai0/rmai/io_stat "$1" reads writes discards \
		write_zeroes flushes read_bytes write_bytes errors requeues in_flight
}
rmai_cache_stat() {
	column /sys/block/rmai0/rmai/cache_stat "$1" hits misses evictions \
		prefetch_used prefetch_wasted shrunk cache_bytes cache_max_bytes staged_writes \
		staged_reads readahead_vmrs
}

# The number of kernel-owned RDMA objects of rmai (PDs are its own, QPs and
# cm_ids are created through rdma_cm): none may be left after an unload.
rmai_rdma_objects() {
	{
		rdma resource show pd | grep -c 'comm \[rmai\]'
		rdma resource show qp | grep -c 'comm \[rdma_cm\]'
		rdma resource show cm_id | grep -vc ' pid '
	} | awk '{ n += $1 } END { print n }'
}
