// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of memnode/proto.c: what the memnode accepts and rejects,
 * and the exact bytes it sends.
 */
#include <endian.h>
#include <string.h>

#include "kselftest_harness.h"
#include "proto.h"

static struct rmai_cm_req good_req(void)
{
	struct rmai_cm_req r;

	memset(&r, 0, sizeof(r));
	r.magic = htole32(RMAI_PROTO_MAGIC);
	r.version = htole16(RMAI_PROTO_VERSION);
	r.qid = htole16(3);
	r.token = htole64(0x1122334455667788ull);
	memset(r.client_id, 0x5c, sizeof(r.client_id));
	return r;
}

static struct rmai_msg good_msg(uint8_t opcode)
{
	struct rmai_msg m;

	memset(&m, 0, sizeof(m));
	m.hdr.magic = htole32(RMAI_PROTO_MAGIC);
	m.hdr.version = htole16(RMAI_PROTO_VERSION);
	m.hdr.opcode = opcode;
	m.hdr.length = htole16(RMAI_MSG_SIZE);
	m.hdr.seq = htole32(77);
	if (opcode == RMAI_OP_ALLOC)
		m.alloc.count = htole32(2);
	if (opcode == RMAI_OP_RELEASE)
		m.release.count = htole32(1);
	return m;
}

TEST(cm_req_valid_decoded)
{
	struct rmai_cm_req r = good_req();
	unsigned char padded[56] = { 0 };
	struct cm_req_info info;

	ASSERT_EQ(RMAI_OK, proto_check_cm_req(&r, sizeof(r), &info));
	ASSERT_EQ(3, info.qid);
	ASSERT_EQ(0x1122334455667788ull, info.token);
	ASSERT_EQ(0x5c, info.client_id[15]);
	/* rdma_cm may pad private data: bytes past the struct are ignored. */
	memcpy(padded + 1, &r, sizeof(r));
	padded[sizeof(padded) - 1] = 0xff;
	ASSERT_EQ(RMAI_OK, proto_check_cm_req(padded + 1, sizeof(padded) - 1, &info));
}

TEST(cm_req_rejected)
{
	struct rmai_cm_req r = good_req();
	struct cm_req_info info;

	ASSERT_EQ(RMAI_E_INVAL, proto_check_cm_req(&r, sizeof(r) - 1, &info));
	ASSERT_EQ(RMAI_E_INVAL, proto_check_cm_req(NULL, 0, &info));
	r.magic = htole32(RMAI_PROTO_MAGIC + 1);
	ASSERT_EQ(RMAI_E_INVAL, proto_check_cm_req(&r, sizeof(r), &info));
	r = good_req();
	r.version = htole16(RMAI_PROTO_VERSION + 1);
	ASSERT_EQ(RMAI_E_VERSION, proto_check_cm_req(&r, sizeof(r), &info));
	r = good_req();
	r.reserved1[7] = 1;
	ASSERT_EQ(RMAI_E_INVAL, proto_check_cm_req(&r, sizeof(r), &info));
}

/* The reply's bytes, little-endian at their documented offsets. */
TEST(cm_rep_bytes)
{
	struct rmai_cm_rep rep;
	unsigned char *b = (unsigned char *)&rep;

	memset(&rep, 0xee, sizeof(rep));
	proto_make_cm_rep(&rep, RMAI_E_NOSPC, 0x0102030405060708ull, 64 << 20, 5, 4, 1);
	ASSERT_EQ(0, memcmp(b, "RMAI", 4));
	ASSERT_EQ(RMAI_PROTO_VERSION, b[4]);
	ASSERT_EQ(0, b[5]);
	ASSERT_EQ(RMAI_E_NOSPC, b[6]);
	ASSERT_EQ(0x08, b[8]);
	ASSERT_EQ(0x01, b[15]);
	ASSERT_EQ(0x04, b[16 + 3]);		/* 64 MiB = 0x04000000 */
	ASSERT_EQ(5, b[24]);
	ASSERT_EQ(4, b[28]);
	ASSERT_EQ(1, b[32]);
	for (int i = 36; i < 48; i++)
		ASSERT_EQ(0, b[i]);
}

TEST(msg_every_request_accepted)
{
	static const uint8_t ops[] = { RMAI_OP_HELLO, RMAI_OP_ALLOC, RMAI_OP_RELEASE,
		RMAI_OP_LIST, RMAI_OP_KEEPALIVE, RMAI_OP_STATS };
	struct rmai_msg m;

	for (size_t i = 0; i < sizeof(ops); i++) {
		m = good_msg(ops[i]);
		ASSERT_EQ(RMAI_OK, proto_check_msg(&m, sizeof(m))) TH_LOG("opcode %u", ops[i]);
	}
}

TEST(msg_rejected)
{
	struct rmai_msg m = good_msg(RMAI_OP_STATS);

	ASSERT_EQ(RMAI_E_INVAL, proto_check_msg(&m, sizeof(m) - 1));
	ASSERT_EQ(RMAI_E_INVAL, proto_check_msg(&m, 100));
	m.hdr.magic = 0;
	ASSERT_EQ(RMAI_E_INVAL, proto_check_msg(&m, sizeof(m)));
	m = good_msg(RMAI_OP_STATS);
	m.hdr.version = htole16(2);
	ASSERT_EQ(RMAI_E_VERSION, proto_check_msg(&m, sizeof(m)));
	m = good_msg(RMAI_OP_STATS);
	m.hdr.opcode |= RMAI_OP_REPLY;
	ASSERT_EQ(RMAI_E_INVAL, proto_check_msg(&m, sizeof(m)));
	m = good_msg(99);
	ASSERT_EQ(RMAI_E_INVAL, proto_check_msg(&m, sizeof(m)));
	m = good_msg(RMAI_OP_STATS);
	m.hdr.status = htole16(1);
	ASSERT_EQ(RMAI_E_INVAL, proto_check_msg(&m, sizeof(m)));
	m = good_msg(RMAI_OP_STATS);
	m.hdr.length = htole16(255);
	ASSERT_EQ(RMAI_E_INVAL, proto_check_msg(&m, sizeof(m)));
	m = good_msg(RMAI_OP_STATS);
	m.hdr.reserved0 = 1;
	ASSERT_EQ(RMAI_E_INVAL, proto_check_msg(&m, sizeof(m)));
}

TEST(msg_counts_bounded)
{
	struct rmai_msg m = good_msg(RMAI_OP_ALLOC);

	m.alloc.count = 0;
	ASSERT_EQ(RMAI_E_INVAL, proto_check_msg(&m, sizeof(m)));
	m.alloc.count = htole32(RMAI_MSG_MAX_SLABS + 1);
	ASSERT_EQ(RMAI_E_INVAL, proto_check_msg(&m, sizeof(m)));
	m.alloc.count = htole32(RMAI_MSG_MAX_SLABS);
	ASSERT_EQ(RMAI_OK, proto_check_msg(&m, sizeof(m)));
	m = good_msg(RMAI_OP_RELEASE);
	m.release.count = 0;
	ASSERT_EQ(RMAI_E_INVAL, proto_check_msg(&m, sizeof(m)));
	m.release.count = htole32(RMAI_MSG_MAX_SLABS + 1);
	ASSERT_EQ(RMAI_E_INVAL, proto_check_msg(&m, sizeof(m)));
	m.release.count = htole32(0xffffffff);
	ASSERT_EQ(RMAI_E_INVAL, proto_check_msg(&m, sizeof(m)));
}

TEST(reply_echoes_and_zeroes)
{
	struct rmai_msg req = good_msg(RMAI_OP_LIST), rep;

	memset(&rep, 0xab, sizeof(rep));
	proto_init_reply(&rep, &req, RMAI_E_NOENT);
	ASSERT_EQ(RMAI_OP_LIST | RMAI_OP_REPLY, rep.hdr.opcode);
	ASSERT_EQ(77, le32toh(rep.hdr.seq));
	ASSERT_EQ(RMAI_E_NOENT, le16toh(rep.hdr.status));
	ASSERT_EQ(RMAI_MSG_SIZE, le16toh(rep.hdr.length));
	ASSERT_EQ(RMAI_PROTO_MAGIC, le32toh(rep.hdr.magic));
	for (size_t i = 0; i < sizeof(rep.raw); i++)
		ASSERT_EQ(0, rep.raw[i]);
}

TEST(status_names)
{
	ASSERT_STREQ("OK", proto_status_name(RMAI_OK));
	ASSERT_STREQ("EINTERNAL", proto_status_name(RMAI_E_INTERNAL));
	ASSERT_STREQ("E?", proto_status_name((enum rmai_status)1000));
}

TEST_HARNESS_MAIN
