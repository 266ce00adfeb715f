/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rmai-memnoded: checking and building wire messages (backend/rmai_proto.h).
 * Pure functions with no verbs or I/O, so they are unit-tested and fuzzed on
 * the host (memnode/test_proto.c, memnode/fuzz_proto.c).
 */
#ifndef RMAI_MEMNODE_PROTO_H
#define RMAI_MEMNODE_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "rmai_proto.h"

/* A connect request, checked and in host byte order. */
struct cm_req_info {
	uint16_t qid;				/* 0: control queue */
	uint64_t token;				/* 0: open a new session */
	uint8_t client_id[RMAI_CLIENT_ID_LEN];	/* the client's identity */
};

/*
 * proto_check_cm_req() - check connect private data of @len bytes.
 * rdma_cm may pad private data, so @len >= sizeof(struct rmai_cm_req) is
 * accepted and the bytes past the struct are ignored. Returns RMAI_OK and
 * fills @info, or RMAI_E_INVAL (short, bad magic, non-zero reserved bytes)
 * or RMAI_E_VERSION (other protocol version).
 */
enum rmai_status proto_check_cm_req(const void *data, size_t len,
				    struct cm_req_info *info);

/*
 * proto_make_cm_rep() - the accept (status RMAI_OK) or reject private data;
 * @lease_grace and @liveness in seconds (a lease outlives its client's last
 * contact by at most their sum).
 */
void proto_make_cm_rep(struct rmai_cm_rep *rep, enum rmai_status status,
		       uint64_t token, uint64_t slab_size, uint32_t nr_slabs,
		       uint32_t nr_free, uint32_t nr_held, uint32_t lease_grace,
		       uint32_t liveness);

/*
 * proto_check_msg() - check a received control request of @len bytes.
 * Requires len == RMAI_MSG_SIZE, magic, version, length field, a known
 * request opcode (RMAI_OP_REPLY clear), zero status and reserved fields, and
 * per opcode: HELLO auth all zero (reserved); ALLOC count
 * 1..RMAI_MSG_MAX_SLABS; RELEASE count 1..RMAI_MSG_MAX_SLABS.
 * Returns RMAI_OK, RMAI_E_VERSION or RMAI_E_INVAL.
 */
enum rmai_status proto_check_msg(const void *buf, size_t len);

/*
 * proto_init_reply() - start the reply to @req: whole message zeroed,
 * header filled (opcode | RMAI_OP_REPLY, req's seq, @status). When @req
 * failed proto_check_msg() its opcode/seq are still echoed as received.
 */
void proto_init_reply(struct rmai_msg *reply, const struct rmai_msg *req,
		      enum rmai_status status);

/* proto_status_name() - "OK", "EINVAL", ... for logs; never NULL. */
const char *proto_status_name(enum rmai_status status);

#endif /* RMAI_MEMNODE_PROTO_H */
