#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# llama.cpp on a generated Mixture-of-Experts model, on the host: no VM, no
# module, no root. selftests/gguf_moe.py must write a byte-identical file
# for the same arguments, another for another seed, and about the size
# --size-mib asks for; selftests/llama/llama_moe.mjs must decode it into
# the same token ids twice, with more than 3 distinct ids in 32, with the
# weights copied into anonymous memory (RssAnon grows by 90% of the file or
# more), and must fail on a wrong --expect-digest and on bad usage. A q8_0
# model must load and decode too. Skips without node or node-llama-cpp
# (scripts/deps installs it into $RMAI_CACHE/node).
#
# RMAI_LLAMA_NODE_MODULES names another node_modules directory.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

GEN=$RMAI_TOP/selftests/gguf_moe.py
RUN=$RMAI_TOP/selftests/llama/llama_moe.mjs
NM=${RMAI_LLAMA_NODE_MODULES:-${RMAI_CACHE:-/var/cache/rmai}/node/node_modules}
GEN_ARGS=(--experts 8 --experts-used 2 --layers 2 --embd 256 --size-mib 24)
TOKENS=32

command -v node >/dev/null || { echo "SKIP: node is not installed"; exit "$ksft_skip"; }
[ -f "$NM/node-llama-cpp/package.json" ] || {
	echo "SKIP: node-llama-cpp is not installed in $NM: run scripts/deps"
	exit "$ksft_skip"
}
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit "$ksft_skip"; }

T=$(mktemp -d /tmp/llama_host_test.XXXXXX)
trap 'rm -rf "$T"' EXIT

gen() { python3 "$GEN" "$@"; }
run() { node "$RUN" --node-modules "$NM" --threads 1 --tokens "$TOKENS" "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

same_args_same_bytes() {
	gen "${GEN_ARGS[@]}" --seed 7 --out "$T/a.gguf" || fail "gguf_moe.py exited $?" || return 1
	gen "${GEN_ARGS[@]}" --seed 7 --out "$T/b.gguf" >/dev/null || fail "gguf_moe.py exited $?" || return 1
	cmp "$T/a.gguf" "$T/b.gguf" || fail "two files from the same arguments differ" || return 1
	echo "sha256 $(sha "$T/a.gguf")"
}

other_seed_other_bytes() {
	gen "${GEN_ARGS[@]}" --seed 8 --out "$T/c.gguf" >/dev/null || fail "gguf_moe.py exited $?" || return 1
	[ "$(sha "$T/a.gguf")" != "$(sha "$T/c.gguf")" ] || fail "seeds 7 and 8 gave the same file" || return 1
	[ "$(stat -c %s "$T/a.gguf")" = "$(stat -c %s "$T/c.gguf")" ] || fail "seeds changed the size" || return 1
}

size_mib_is_about_right() {
	local bytes want=$((24 << 20))
	bytes=$(stat -c %s "$T/a.gguf") || return 1
	echo "--size-mib 24: $bytes bytes"
	if [ "$bytes" -lt $((want * 9 / 10)) ] || [ "$bytes" -gt $((want * 11 / 10)) ]; then
		fail "$bytes bytes is not within 10% of $want"
	fi
}

# Both runs' lines go to $T/run1 and $T/run2 for the checks after this one.
decode_is_reproducible() {
	local l1 l2
	l1=$(run --model "$T/a.gguf") || fail "llama_moe.mjs exited $?" || return 1
	echo "$l1" | tee "$T/run1"
	l2=$(run --model "$T/a.gguf") || fail "llama_moe.mjs exited $?" || return 1
	echo "$l2" | tee "$T/run2"
	[ "$(kv tokens "$l1")" = "$TOKENS" ] || fail "decoded $(kv tokens "$l1") tokens" || return 1
	[ -n "$(kv digest "$l1")" ] || fail "no digest" || return 1
	[ "$(kv digest "$l1")" = "$(kv digest "$l2")" ] || fail "two runs decoded different tokens" || return 1
}

tokens_are_varied() {
	local l d
	l=$(cat "$T/run1" 2>/dev/null) || fail "no decode to look at" || return 1
	d=$(kv distinct "$l")
	[ "${d:-0}" -gt 3 ] || fail "only ${d:-0} distinct token ids in $TOKENS" || return 1
	echo "$d distinct token ids in $TOKENS"
}

weights_in_anonymous_memory() {
	local l grew file
	l=$(cat "$T/run1" 2>/dev/null) || fail "no decode to look at" || return 1
	grew=$(($(kv rss_anon_start_kib "$l") - $(kv rss_anon_before_load_kib "$l")))
	file=$(($(kv file_bytes "$l") / 1024))
	echo "RssAnon grew by $grew KiB loading a file of $file KiB"
	[ "$grew" -ge $((file * 9 / 10)) ] || fail "RssAnon grew by less than 90% of the file" || return 1
}

expect_digest_is_checked() {
	local good rc out
	good=$(kv digest "$(cat "$T/run1" 2>/dev/null)")
	[ -n "$good" ] || fail "no digest to check against" || return 1
	out=$(run --model "$T/a.gguf" --expect-digest "$good" 2>/dev/null) || fail "right digest: exited $?" || return 1
	[ "$(kv digest_ok "$out")" = 1 ] || fail "right digest: digest_ok=$(kv digest_ok "$out")" || return 1
	run --model "$T/a.gguf" --expect-digest 0123456789abcdef >/dev/null 2>"$T/err"
	rc=$?
	cat "$T/err"
	[ "$rc" = 1 ] || fail "wrong digest: exited $rc, want 1" || return 1
	grep -q "not the expected 0123456789abcdef" "$T/err" || fail "wrong digest: no message" || return 1
}

bad_usage_exits_2() {
	local args rc
	for args in "" "--model $T/a.gguf --tokens 0" "--model $T/a.gguf --bogus" \
		    "--model $T/none.gguf" "--model $T/a.gguf --expect-digest xyz"; do
		# shellcheck disable=SC2086 # word splitting of the arguments is wanted
		node "$RUN" --node-modules "$NM" $args >/dev/null 2>"$T/err"
		rc=$?
		[ "$rc" = 2 ] || fail "'$args' exited $rc, want 2" || return 1
		[ "$(wc -l <"$T/err")" = 1 ] || fail "'$args': not one line: $(cat "$T/err")" || return 1
	done
}

q8_0_loads_and_decodes() {
	local l
	gen --experts 8 --layers 2 --embd 256 --ffn 256 --dtype q8_0 --out "$T/q.gguf" || fail "gguf_moe.py exited $?" || return 1
	l=$(run --model "$T/q.gguf") || fail "llama_moe.mjs exited $?" || return 1
	echo "$l"
	[ "$(kv distinct "$l")" -gt 3 ] || fail "only $(kv distinct "$l") distinct token ids" || return 1
}

ktap_print_header
ktap_set_plan 9
ktap_test same_args_same_bytes same_args_same_bytes
ktap_test other_seed_other_bytes other_seed_other_bytes
ktap_test size_mib_is_about_right size_mib_is_about_right
ktap_test decode_is_reproducible decode_is_reproducible
ktap_test tokens_are_varied tokens_are_varied
ktap_test weights_in_anonymous_memory weights_in_anonymous_memory
ktap_test expect_digest_is_checked expect_digest_is_checked
ktap_test bad_usage_exits_2 bad_usage_exits_2
ktap_test q8_0_loads_and_decodes q8_0_loads_and_decodes
ktap_finished
