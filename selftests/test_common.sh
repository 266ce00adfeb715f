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
# goes out as diagnostics; status 0 passes, $ksft_skip skips, others fail.
ktap_test() {
	local name=$1 rc out
	shift
	out=$("$@" 2>&1)
	rc=$?
	[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/# /'
	case $rc in
	0) ktap_result ok "$name" ;;
	"$ksft_skip") ktap_result skip "$name" "${out##*$'\n'}" ;;
	*) ktap_result not-ok "$name" ;;
	esac
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
