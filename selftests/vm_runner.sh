#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Tests of scripts/vm itself, run on the host (each boots a VM): a failing
# command, a guest oops and a guest WARNING must each fail the run with the
# documented status; output and status pass through; the host root stays
# read-only while the repository is writable.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

VM="$RMAI_TOP/scripts/vm"

# expect_status WANT CMD...: run scripts/vm, compare its exit status.
expect_status() {
	local want=$1 got
	shift
	"$VM" --quiet "$@" >/dev/null 2>&1
	got=$?
	[ "$got" = "$want" ] || fail "scripts/vm $* exited $got, want $want"
}

status_and_output_pass_through() {
	local out got
	# shellcheck disable=SC2016 # expanded by the guest's shell
	out=$("$VM" -- 'echo "guest says $((6 * 7))"; exit 7' 2>/dev/null)
	got=$?
	[ "$got" = 7 ] || fail "exit status $got, want 7"
	[ "$out" = "guest says 42" ] || fail "output '$out', want 'guest says 42'"
}

guest_panic_fails() {
	expect_status 125 -- 'echo c >/proc/sysrq-trigger'
}

guest_warning_fails() {
	# A line the kernel log scanner must catch, as a real WARN prints it.
	expect_status 120 -- 'echo "WARNING: CPU: 0 PID: 1 at selftest:1 vm_runner" >/dev/kmsg'
}

hang_times_out() {
	expect_status 124 --timeout 30 -- 'sleep 600'
}

root_ro_repo_rw() {
	local mark="$RMAI_TOP/build/vm-runner-mark.$$"
	mkdir -p "$RMAI_TOP/build"
	rm -f "$mark"
	"$VM" --quiet -- "! touch /usr/rmai-ro-test 2>/dev/null && echo ok >'$mark'" ||
		fail "guest could write the host root, or could not write the repo"
	[ "$(cat "$mark" 2>/dev/null)" = ok ] || fail "guest write to the repo not seen on the host"
	rm -f "$mark"
}

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (qemu, 9p passthrough)"; exit "$ksft_skip"; }
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: no qemu: run scripts/deps"; exit "$ksft_skip"; }

ktap_print_header
ktap_set_plan 5
ktap_test status_and_output_pass_through status_and_output_pass_through
ktap_test guest_panic_fails guest_panic_fails
ktap_test guest_warning_fails guest_warning_fails
ktap_test hang_times_out hang_times_out
ktap_test root_ro_repo_rw root_ro_repo_rw
ktap_finished
