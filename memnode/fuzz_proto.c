// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: whatever bytes arrive as connect private data or as a
 * control message, the checks neither crash nor read past them, and a
 * reply is only ever built from a message they accepted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct cm_req_info info;
	struct rmai_msg req, rep;
	/* An exact-size heap copy, so ASan sees any read past the end. */
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy)
		return 0;
	memcpy(copy, data, len);
	proto_check_cm_req(copy, len, &info);
	if (proto_check_msg(copy, len) == RMAI_OK) {
		if (len != RMAI_MSG_SIZE)
			abort();	/* accepted a message of the wrong size */
		memcpy(&req, copy, sizeof(req));
		proto_init_reply(&rep, &req, RMAI_OK);
		if (!(rep.hdr.opcode & RMAI_OP_REPLY))
			abort();
	}
	free(copy);
	return 0;
}
