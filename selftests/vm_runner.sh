#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Tests of scripts/vm itself, run on the host (each boots a VM): a failing
# command, a guest oops and a guest WARNING must each fail the run with the
# documented status; output and status pass through; the host root stays
# read-only while the repository is writable. The accelerator probe falls
# back to TCG, with one line saying why, when KVM aborts or hangs, and uses
# a KVM that works. A memory node's kernel trouble fails a multi-node run
# (the bed's controls are checked by selftests/bed_check.sh, in the
# vm-nodes step).

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
	local err got
	# A line the kernel log scanner must catch, as a real WARN prints it,
	# then more than the 60 lines of the log's tail that scripts/vm shows:
	# the report itself must still be shown, as the first one.
	# shellcheck disable=SC2016 # expanded by the guest's shell
	err=$("$VM" --quiet -- 'echo "WARNING: CPU: 0 PID: 1 at selftest:1 vm_runner" >/dev/kmsg
		for i in $(seq 80); do echo "vm_runner filler $i" >/dev/kmsg; done' 2>&1 >/dev/null)
	got=$?
	[ "$got" = 120 ] || fail "exited $got, want 120" || return 1
	printf '%s\n' "$err" | sed -n '/^vm: --- the first report/,/^vm: --- end of the first/p' |
		grep -q 'WARNING: CPU: 0 PID: 1 at selftest:1 vm_runner' ||
		fail "the first report is not shown" || return 1
}

hang_times_out() {
	expect_status 124 --timeout 30 -- 'sleep 600'
}

root_ro_repo_rw() {
	local mark="$RMAI_TOP/build/vm-runner-mark.$$"
	mkdir -p "$RMAI_TOP/build"
	rm -f "$mark"
	"$VM" --quiet -- "! touch /usr/rmai-ro-test 2>/dev/null && echo ok >'$mark'" ||
		fail "guest could write the host root, or could not write the repo" || return 1
	[ "$(cat "$mark" 2>/dev/null)" = ok ] || { rm -f "$mark"; fail "guest write to the repo not seen on the host"; return 1; }
	rm -f "$mark"
}

# --- the accelerator probe, with stand-ins for QEMU --------------------------
#
# A stand-in gets QEMU's arguments; with "-accel kvm" it fails the way this
# machine's QEMU does (abort on MSR 0x10a), hangs, or runs the guest under
# TCG as a KVM that works would. Each logs its KVM starts.

standin() {	# standin NAME abort|hang|works: prints its path
	local f=$tmp/$1
	cat >"$f" <<EOF
#!/bin/bash
kvm=0
for a in "\$@"; do [ "\$a" = kvm ] && kvm=1; done
if [ \$kvm = 1 ]; then
	echo kvm >>"$tmp/$1.log"
	case $2 in
	abort)	echo "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69" >&2
		echo "qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion failed." >&2
		kill -ABRT \$\$ ;;
	hang)	exec sleep 600 ;;
	esac
	args=()
	for a in "\$@"; do
		case \$a in kvm) a=tcg ;; host) a=max ;; esac
		args+=("\$a")
	done
	set -- "\${args[@]}"
fi
exec qemu-system-x86_64 "\$@"
EOF
	chmod +x "$f"
	echo "$f"
}

# vm_with QEMU [ENV=VALUE...] VM-ARGS...: scripts/vm with that QEMU, a
# usable stand-in for /dev/kvm and a verdict cache of its own; its stderr
# goes to $tmp/err, its stdout to $tmp/out, and it returns its status.
vm_with() {
	local q=$1 envs=()
	shift
	while [[ $1 == RMAI_*=* ]]; do envs+=("$1"); shift; done
	env RMAI_QEMU="$q" RMAI_VM_KVM_DEV="$tmp/kvm" RMAI_VM_ACCEL_CACHE="$tmp/accel" \
		RMAI_VM_DEBUG=0 RMAI_VM_PROBE_TIMEOUT=5 ${envs[@]+"${envs[@]}"} \
		"$VM" "$@" >"$tmp/out" 2>"$tmp/err"
}

fallback_lines() { grep -c '^vm: using TCG, not KVM: ' "$tmp/err"; }

kvm_abort_falls_back() {
	local q
	q=$(standin qemu-abort abort)
	rm -f "$tmp/accel"
	# shellcheck disable=SC2016 # expanded by the guest's shell
	vm_with "$q" -- 'echo "up $((6 * 7))"' || { fail "status $?: $(cat "$tmp/err")"; return 1; }
	[ "$(cat "$tmp/out")" = "up 42" ] || fail "output: $(cat "$tmp/out")" || return 1
	[ "$(fallback_lines)" = 1 ] || fail "want one fallback line: $(cat "$tmp/err")" || return 1
	grep -q 'failed to set MSR 0x10a' "$tmp/err" || fail "no reason: $(cat "$tmp/err")" || return 1
	# Again: the verdict comes from the cache, and still says why.
	vm_with "$q" -- true || fail "second run: status $?" || return 1
	[ "$(wc -l <"$tmp/qemu-abort.log")" = 1 ] || fail "probed $(wc -l <"$tmp/qemu-abort.log") times" || return 1
	grep -q 'probed earlier this boot' "$tmp/err" || fail "cached verdict: $(cat "$tmp/err")"
}

kvm_hang_falls_back() {
	local q
	q=$(standin qemu-hang hang)
	rm -f "$tmp/accel"
	vm_with "$q" -- true || { fail "status $?: $(cat "$tmp/err")"; return 1; }
	{ [ "$(fallback_lines)" = 1 ] && grep -q 'printed nothing in 5 s' "$tmp/err"; } ||
		fail "fallback line: $(cat "$tmp/err")"
}

kvm_that_works_is_used() {
	local q
	q=$(standin qemu-works works)
	rm -f "$tmp/accel"
	# This "KVM" is TCG underneath: give its probe guest the time TCG needs
	# on a loaded machine (a real KVM prints the token in well under 1 s).
	vm_with "$q" RMAI_VM_PROBE_TIMEOUT=60 --accel || fail "--accel: status $?" || return 1
	[ "$(cat "$tmp/out")" = kvm ] || fail "--accel says '$(cat "$tmp/out")': $(cat "$tmp/err")" || return 1
	vm_with "$q" -- true || fail "status $?" || return 1
	[ "$(fallback_lines)" = 0 ] || fail "fell back: $(cat "$tmp/err")" || return 1
	# The probe, then the VM itself.
	[ "$(wc -l <"$tmp/qemu-works.log")" = 2 ] || fail "KVM starts: $(wc -l <"$tmp/qemu-works.log")"
}

accel_forced() {
	local q
	q=$(standin qemu-forced abort)
	rm -f "$tmp/accel"
	vm_with "$q" RMAI_VM_ACCEL=tcg -- true || fail "RMAI_VM_ACCEL=tcg: status $?" || return 1
	[ ! -e "$tmp/qemu-forced.log" ] || fail "probed although TCG was forced" || return 1
	[ "$(fallback_lines)" = 0 ] || fail "forced TCG is no fallback: $(cat "$tmp/err")" || return 1
	vm_with "$q" RMAI_VM_ACCEL=kvm -- true
	[ $? = 125 ] || fail "RMAI_VM_ACCEL=kvm on a broken KVM: want 125" || return 1
	vm_with "$q" RMAI_VM_ACCEL=fast -- true
	[ $? = 125 ] && grep -q 'RMAI_VM_ACCEL=fast: must be kvm, tcg or auto' "$tmp/err" ||
		fail "a bad RMAI_VM_ACCEL: $(cat "$tmp/err")" || return 1
	vm_with "$q" RMAI_VM_KVM_DEV=/nonexistent -- true || fail "no KVM device: status $?" || return 1
	grep -q '^vm: using TCG, not KVM: /nonexistent is not usable$' "$tmp/err" ||
		fail "no KVM device: $(cat "$tmp/err")"
}

# --- several nodes ---------------------------------------------------------------

# A memory node's kernel WARNING fails the run, as node 0's does.
bed_node_warning_fails() {
	expect_status 120 --nodes 2 -- \
		'scripts/vmctl exec 1 -- "echo \"WARNING: CPU: 0 PID: 1 at selftest:1 bed\" >/dev/kmsg"'
}

cleanup() { [ -z "$tmp" ] || rm -rf "$tmp"; }

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (qemu, 9p passthrough)"; exit "$ksft_skip"; }
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: no qemu: run scripts/deps"; exit "$ksft_skip"; }

tmp=$(mktemp -d /tmp/rmai-vm-runner.XXXXXX)
touch "$tmp/kvm"
trap cleanup EXIT
ktap_print_header
ktap_set_plan 10
ktap_test status_and_output_pass_through status_and_output_pass_through
ktap_test guest_panic_fails guest_panic_fails
ktap_test guest_warning_fails guest_warning_fails
ktap_test hang_times_out hang_times_out
ktap_test root_ro_repo_rw root_ro_repo_rw
ktap_test kvm_abort_falls_back kvm_abort_falls_back
ktap_test kvm_hang_falls_back kvm_hang_falls_back
ktap_test kvm_that_works_is_used kvm_that_works_is_used
ktap_test accel_forced accel_forced
ktap_test bed_node_warning_fails bed_node_warning_fails
ktap_finished
