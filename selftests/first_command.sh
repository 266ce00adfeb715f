#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`, `make bench` and `make check` start on a machine with no
# cache: their first make reads an env file that does not exist yet, then
# scripts/deps writes it, then the build must see it. Here a copy of the
# tree is built through `make prepare` (the first step of demo and bench)
# with an empty cache and a stand-in for scripts/deps that writes the env
# file of the real cache (nothing is downloaded again); twice, as the first
# and the second command. Run on the host by scripts/check.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

CACHE=${RMAI_CACHE:-/var/cache/rmai}
tmp=

setup() {
	tmp=$(mktemp -d /tmp/rmai-first.XXXXXX)
	mkdir -p "$tmp/src"
	(cd "$RMAI_TOP" && git ls-files -co --exclude-standard -z |
		cpio -0 -pdm --quiet "$tmp/src") || return 1
	# The stand-in: what scripts/deps leaves behind, the env file.
	cat >"$tmp/deps" <<EOF
#!/bin/bash
mkdir -p "\$RMAI_CACHE" && cp "$CACHE/env" "\$RMAI_CACHE/env"
EOF
	chmod +x "$tmp/deps"
}

# prepare_builds: make prepare in the copy, with the empty cache.
prepare_builds() {
	local log=$tmp/make.log
	[ ! -e "$tmp/cache/env" ] || fail "the cache is not empty" || return 1
	env -u KSRC -u KDIR make -C "$tmp/src" RMAI_CACHE="$tmp/cache" \
		RMAI_DEPS="$tmp/deps" prepare >"$log" 2>&1 ||
		{ tail -n 20 "$log"; fail "make prepare failed from an empty cache"; return 1; }
	[ -f "$tmp/cache/env" ] || fail "the stand-in deps did not run" || return 1
	[ -f "$tmp/src/backend/rmai.ko" ] || fail "no rmai.ko" || return 1
	[ -x "$tmp/src/build/selftests/memnode_test" ] || fail "no selftests" || return 1
	[ -x "$tmp/src/memnode/rmai-memnoded" ] || fail "no rmai-memnoded"
}

again_builds() {
	env -u KSRC -u KDIR make -C "$tmp/src" RMAI_CACHE="$tmp/cache" \
		RMAI_DEPS="$tmp/deps" prepare >"$tmp/make2.log" 2>&1 ||
		{ tail -n 20 "$tmp/make2.log"; fail "the second make prepare failed"; }
}

cleanup() { [ -z "$tmp" ] || rm -rf "$tmp"; }

[ -f "$CACHE/env" ] || { echo "SKIP: no cache to stand in for: run scripts/deps"; exit "$ksft_skip"; }
trap cleanup EXIT
ktap_print_header
ktap_set_plan 2
setup || { echo "Bail out! cannot copy the tree"; exit "$ksft_fail"; }
ktap_test prepare_from_empty_cache prepare_builds
ktap_test prepare_again again_builds
ktap_finished
