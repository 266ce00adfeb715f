#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rmai-memnoded under valgrind while clients connect, resume, send garbage,
# refuse the accept, exit or get killed mid-request, and while the daemon is
# signalled: any memory error or definite leak makes the daemon exit 99,
# which memnode_test reports as a failure.

# shellcheck source=selftests/test_common.sh
. "$(dirname "$0")/test_common.sh"

require_vm
command -v valgrind >/dev/null || { echo "SKIP: no valgrind"; exit "$ksft_skip"; }

wrapper=$(mktemp /tmp/memnoded-vg.XXXXXX)
log=$(mktemp /tmp/memnoded-vg-log.XXXXXX)
cat >"$wrapper" <<EOT
#!/bin/sh
exec valgrind -q --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --log-file=$log.%p \
	$RMAI_TOP/memnode/rmai-memnoded "\$@"
EOT
chmod +x "$wrapper"
RMAI_MEMNODED=$wrapper "$RMAI_BUILD/memnode_test" \
	-r memnode.isolation -r memnode.resume_with_token \
	-r memnode.garbage_closes_only_sender -r memnode.data_queue_joins_session \
	-r memnode.rejected_accept_leaves_nothing -r memnode.clients_die \
	-r memnode.signals
rc=$?
cat "$log".* 2>/dev/null | grep -E 'ERROR SUMMARY|definitely|Invalid|uninitialised' | sed 's/^/# valgrind: /'
rm -f "$wrapper" "$log"*
exit $rc
