#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# An unmodified inference engine on rmai: llama.cpp (through node-llama-cpp)
# decodes a generated Mixture-of-Experts model whose weights sit in
# anonymous memory, first without a limit (the reference token ids), then in
# a cgroup whose memory.max holds about half the model, with /dev/rmai0 as
# the only swap: the experts go to the memnode and come back while it
# decodes. The second run must reproduce the reference token for token, and
# must have swapped. Skips only where node or node-llama-cpp is missing.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

require_vm
require_root

PORT=7491
DEV=/dev/rmai0
GEN=$RMAI_TOP/selftests/gguf_moe.py
RUN=$RMAI_TOP/selftests/llama/llama_moe.mjs
NM=${RMAI_LLAMA_NODE_MODULES:-${RMAI_CACHE:-/var/cache/rmai}/node/node_modules}
MODEL=/tmp/llama-swap.gguf
MODEL_MIB=48
TOKENS=48
CG=

# The runner's words for the model, in or out of a cgroup.
LLAMA=(node "$RUN" --node-modules "$NM" --model "$MODEL" --threads 1 --tokens "$TOKENS")
pswpin() { awk '$1 == "pswpin" { print $2 }' /proc/vmstat; }

# The reference run's line is kept in $REF (ktap_test runs each test in a
# subshell).
REF=/tmp/llama-ref.line
reference_run() {
	local line
	python3 "$GEN" --experts 8 --experts-used 2 --layers 4 --embd 256 \
		--size-mib "$MODEL_MIB" --seed 11 --out "$MODEL" >/dev/null || fail "gguf_moe.py" || return 1
	line=$("${LLAMA[@]}" 2>/tmp/llama-ref.err) || { tail -n 5 /tmp/llama-ref.err; fail "reference run"; return 1; }
	echo "$line" | tee "$REF"
	[ -n "$(kv digest "$line")" ] || fail "no digest in '$line'"
}

decode_on_rmai() {
	local line rc in0 max ref base
	ref=$(kv digest "$(cat "$REF" 2>/dev/null)")
	base=$(kv rss_anon_before_load_kib "$(cat "$REF" 2>/dev/null)")
	[ -n "$ref" ] && [ -n "$base" ] || fail "no reference" || return 1
	memnode_start "$PORT" 256M || return 1
	rmai_load memnodes="$MN_ADDR:$PORT" size=128M || fail "insmod" || return 1
	mkswap "$DEV" >/dev/null && swapon "$DEV" || fail "swapon" || return 1
	# The engine's own memory, and half the model.
	max=$(( (base >> 10) + MODEL_MIB / 2 + 8 ))
	CG=$(cg_create "llama-swap-$$" "${max}M") || fail "cgroup" || return 1
	in0=$(pswpin)
	line=$(cg_run "$CG" "${LLAMA[@]}" --expect-digest "$ref" 2>/tmp/llama-swap.err)
	rc=$?
	echo "memory.max ${max} MiB: $line"
	echo "swapped in: $(( ($(pswpin) - in0) * 4 / 1024 )) MiB; io_stat: $(cat /sys/block/rmai0/rmai/io_stat)"
	[ "$rc" = 0 ] || { tail -n 5 /tmp/llama-swap.err; fail "the run under memory.max: exit $rc"; return 1; }
	[ "$(kv digest "$line")" = "$ref" ] || fail "other tokens than the reference" || return 1
	[ "$(pswpin)" -gt "$in0" ] || fail "nothing was swapped in" || return 1
	[ "$(kv majflt "$line")" -gt 0 ] 2>/dev/null ||
		fail "the decode waited for no swap-in: majflt=$(kv majflt "$line")" || return 1
	[ "$(rmai_io_stat errors)" = 0 ] || fail "rmai0 counted errors"
}

cleanup() {
	[ -z "$CG" ] || cg_destroy "$CG"
	swapoff "$DEV" 2>/dev/null
	rmmod rmai 2>/dev/null
	memnode_stop "$PORT"
	rm -f "$MODEL" "$REF"
}

[ -f "$RMAI_KO" ] || { echo "SKIP: $RMAI_KO not built"; exit "$ksft_skip"; }
command -v node >/dev/null || { echo "SKIP: node is not installed"; exit "$ksft_skip"; }
[ -f "$NM/node-llama-cpp/package.json" ] || {
	echo "SKIP: node-llama-cpp is not installed in $NM: run scripts/deps"
	exit "$ksft_skip"
}
ktap_print_header
ktap_set_plan 2
trap cleanup EXIT
ktap_test reference_run reference_run
ktap_test decode_on_rmai decode_on_rmai
ktap_finished
