// SPDX-License-Identifier: GPL-2.0
/*
 * rmai-memnoded: checking and building wire messages. Everything received is
 * copied out with memcpy (it may be unaligned or short) and checked in full
 * before any field is used; see memnode/PROTOCOL.md for the rules.
 */
#include <endian.h>
#include <string.h>

#include "proto.h"

static int zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return 0;
	return 1;
}

enum rmai_status proto_check_cm_req(const void *data, size_t len,
				    struct cm_req_info *info)
{
	struct rmai_cm_req r;

	if (!data || len < sizeof(r))
		return RMAI_E_INVAL;
	memcpy(&r, data, sizeof(r));
	if (le32toh(r.magic) != RMAI_PROTO_MAGIC || !zero(r.reserved1, sizeof(r.reserved1)))
		return RMAI_E_INVAL;
	if (le16toh(r.version) != RMAI_PROTO_VERSION)
		return RMAI_E_VERSION;
	info->qid = le16toh(r.qid);
	info->token = le64toh(r.token);
	memcpy(info->client_id, r.client_id, RMAI_CLIENT_ID_LEN);
	return RMAI_OK;
}

void proto_make_cm_rep(struct rmai_cm_rep *rep, enum rmai_status status,
		       uint64_t token, uint64_t slab_size, uint32_t nr_slabs,
		       uint32_t nr_free, uint32_t nr_held, uint32_t lease_grace,
		       uint32_t liveness)
{
	memset(rep, 0, sizeof(*rep));
	rep->magic = htole32(RMAI_PROTO_MAGIC);
	rep->version = htole16(RMAI_PROTO_VERSION);
	rep->status = htole16(status);
	rep->token = htole64(token);
	rep->slab_size = htole64(slab_size);
	rep->nr_slabs = htole32(nr_slabs);
	rep->nr_free = htole32(nr_free);
	rep->nr_held = htole32(nr_held);
	rep->lease_grace = htole32(lease_grace);
	rep->liveness = htole32(liveness);
}

enum rmai_status proto_check_msg(const void *buf, size_t len)
{
	struct rmai_msg m;
	uint32_t n;

	if (!buf || len != RMAI_MSG_SIZE)
		return RMAI_E_INVAL;
	memcpy(&m, buf, sizeof(m));
	if (le32toh(m.hdr.magic) != RMAI_PROTO_MAGIC ||
	    le16toh(m.hdr.length) != RMAI_MSG_SIZE || m.hdr.status ||
	    m.hdr.reserved0)
		return RMAI_E_INVAL;
	if (le16toh(m.hdr.version) != RMAI_PROTO_VERSION)
		return RMAI_E_VERSION;
	switch (m.hdr.opcode) {
	case RMAI_OP_ALLOC:
		n = le32toh(m.alloc.count);
		return n && n <= RMAI_MSG_MAX_SLABS && !m.alloc.reserved ?
		       RMAI_OK : RMAI_E_INVAL;
	case RMAI_OP_RELEASE:
		n = le32toh(m.release.count);
		return n && n <= RMAI_MSG_MAX_SLABS && !m.release.reserved ?
		       RMAI_OK : RMAI_E_INVAL;
	case RMAI_OP_LIST:
		return m.list.reserved ? RMAI_E_INVAL : RMAI_OK;
	case RMAI_OP_HELLO:
		/* Reserved for authentication: a sender that fills it expects
		 * it checked, and version 1 cannot; refuse rather than ignore. */
		return zero(m.hello.auth, sizeof(m.hello.auth)) ? RMAI_OK : RMAI_E_INVAL;
	case RMAI_OP_KEEPALIVE:
	case RMAI_OP_STATS:
		return RMAI_OK;
	}
	return RMAI_E_INVAL;
}

void proto_init_reply(struct rmai_msg *reply, const struct rmai_msg *req,
		      enum rmai_status status)
{
	/* Read the request first: @reply may be @req itself. */
	uint8_t opcode = req->hdr.opcode;
	__le32 seq = req->hdr.seq;

	memset(reply, 0, sizeof(*reply));
	reply->hdr.magic = htole32(RMAI_PROTO_MAGIC);
	reply->hdr.version = htole16(RMAI_PROTO_VERSION);
	reply->hdr.opcode = opcode | RMAI_OP_REPLY;
	reply->hdr.status = htole16(status);
	reply->hdr.length = htole16(RMAI_MSG_SIZE);
	reply->hdr.seq = seq;
}

const char *proto_status_name(enum rmai_status s)
{
	static const char *const names[] = {
		"OK", "EVERSION", "EINVAL", "ENOSPC",
		"ETOKEN", "EBUSY", "ENOENT", "EINTERNAL",
	};

	return (unsigned int)s < sizeof(names) / sizeof(names[0]) ? names[s] : "UNKNOWN";
}
