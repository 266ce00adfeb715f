#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run RMAI's selftests inside the test VM and print kselftest TAP:
#   run_tests.sh [TEST...]     default: every test of `make -C selftests list`
# Each test's own TAP is nested behind "# "; its exit status decides its
# top-level line (0 ok, 4 skip, anything else not ok). A test is stopped after
# the timeout in ./settings.

dir=$(cd "$(dirname "$0")" && pwd)
# RMAI_TEST_TIMEOUT overrides it (the debug-kernel tier runs ~15 times slower).
timeout=${RMAI_TEST_TIMEOUT:-$(sed -n 's/^timeout=//p' "$dir/settings")}

if [ $# -gt 0 ]; then
	mapfile -t tests < <(realpath -- "$@")
else
	mapfile -t tests < <(make -s -C "$dir" list)
fi
if [ ${#tests[@]} = 0 ]; then
	echo "run_tests.sh: no tests to run" >&2
	exit 1
fi

echo "TAP version 13"
echo "1..${#tests[@]}"
n=0 failed=0
for t in "${tests[@]}"; do
	n=$((n + 1))
	name=$(basename "$t")
	echo "# selftests: rmai: $name"
	if [ ! -x "$t" ]; then
		echo "not ok $n selftests: rmai: $name # not built"
		failed=1
		continue
	fi
	start=$SECONDS
	(cd "$dir" && timeout -k 10 "$timeout" "$t") 2>&1 | sed -u 's/^/# /'
	rc=${PIPESTATUS[0]}
	echo "# $name: $((SECONDS - start)) s"
	case $rc in
	0) echo "ok $n selftests: rmai: $name" ;;
	4) echo "ok $n selftests: rmai: $name # SKIP" ;;
	124) echo "not ok $n selftests: rmai: $name # TIMEOUT ${timeout}s"; failed=1 ;;
	*) echo "not ok $n selftests: rmai: $name # exit=$rc"; failed=1 ;;
	esac
done
exit $failed
