#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The RDMA device of a running rmai-memnoded goes away (rdma link del): the
# daemon stops, and exits non-zero, so that a service manager's
# Restart=on-failure brings it back. The soft-RoCE device is put back
# whatever happens: the tests after this one need it.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

require_vm
require_root

PORT=7492

removal_exits_nonzero() {
	local pid i rc=
	"$RMAI_MEMNODED" --listen "$MN_ADDR:$PORT" --size 16M --slab 4M --hugepages off \
		--admin-socket "/tmp/memnode-$PORT.sock" --foreground >/tmp/removal.log 2>&1 &
	pid=$!
	for i in $(seq 100); do
		memnode_status "$PORT" >/dev/null 2>&1 && break
		sleep 0.2
	done
	rdma link del rxe0 || fail "rdma link del" || return 1
	for i in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		cat /tmp/removal.log
		kill -KILL "$pid"
		fail "the daemon did not stop when its device went away"
		return 1
	fi
	wait "$pid"
	rc=$?
	cat /tmp/removal.log
	[ "$rc" = 1 ] || fail "exit status $rc, want 1"
}

cleanup() {
	rdma link show rxe0 >/dev/null 2>&1 || rdma link add rxe0 type rxe netdev rmai0
}

ktap_print_header
ktap_set_plan 1
trap cleanup EXIT
ktap_test removal_exits_nonzero removal_exits_nonzero
ktap_finished
