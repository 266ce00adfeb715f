// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of memnode/proto.c with the kselftest harness (TAP output).
 * Messages are built as raw little-endian bytes at fixed offsets rather than
 * through the structs, so a mistake in rmai_proto.h or in byte order shows up
 * here instead of being mirrored by the test.
 */
#include <endian.h>
#include <stdint.h>
#include <string.h>

#include "kselftest_harness.h"

#include "proto.h"

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v);
	put16(p + 2, v >> 16);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, v);
	put32(p + 4, v >> 32);
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

/* A valid connect request: queue 3, token 0x1122334455667788, id 0xa0.. */
static void make_cm_req(uint8_t *b, size_t size)
{
	int i;

	memset(b, 0, size);
	put32(b + 0, RMAI_PROTO_MAGIC);
	put16(b + 4, RMAI_PROTO_VERSION);
	put16(b + 6, 3);
	put64(b + 8, 0x1122334455667788ull);
	for (i = 0; i < RMAI_CLIENT_ID_LEN; i++)
		b[16 + i] = 0xa0 + i;
}

/* A valid request of @opcode with seq 0xdeadbeef. */
static void make_msg(uint8_t *b, uint8_t opcode)
{
	memset(b, 0, RMAI_MSG_SIZE);
	put32(b + 0, RMAI_PROTO_MAGIC);
	put16(b + 4, RMAI_PROTO_VERSION);
	b[6] = opcode;
	put16(b + 10, RMAI_MSG_SIZE);
	put32(b + 12, 0xdeadbeef);
	switch (opcode) {
	case RMAI_OP_ALLOC:
		put32(b + 16, 4);		/* count */
		break;
	case RMAI_OP_RELEASE:
		put32(b + 16, 2);		/* count */
		put32(b + 24, 7);		/* index[0] */
		put32(b + 28, 9);		/* index[1] */
		break;
	case RMAI_OP_LIST:
		put32(b + 16, 5);		/* start */
		break;
	}
}

/* ---- connect request ---- */

TEST(cm_req_valid)
{
	uint8_t b[48];
	struct cm_req_info info;
	int i;

	make_cm_req(b, sizeof(b));
	memset(&info, 0x55, sizeof(info));
	ASSERT_EQ(RMAI_OK, proto_check_cm_req(b, sizeof(b), &info));
	EXPECT_EQ(3, info.qid);
	EXPECT_EQ(0x1122334455667788ull, info.token);
	for (i = 0; i < RMAI_CLIENT_ID_LEN; i++)
		EXPECT_EQ(0xa0 + i, info.client_id[i]);
}

TEST(cm_req_new_session)
{
	uint8_t b[48];
	struct cm_req_info info;

	make_cm_req(b, sizeof(b));
	put16(b + 6, 0);
	put64(b + 8, 0);
	ASSERT_EQ(RMAI_OK, proto_check_cm_req(b, sizeof(b), &info));
	EXPECT_EQ(0, info.qid);
	EXPECT_EQ(0, info.token);
}

TEST(cm_req_padding_accepted)
{
	/* rdma_cm hands the 56 bytes of IB private data; one extra byte offset
	 * also proves unaligned input is fine. */
	uint8_t raw[1 + 56];
	uint8_t *b = raw + 1;
	struct cm_req_info info;

	make_cm_req(b, 56);
	memset(b + 48, 0xff, 8);
	ASSERT_EQ(RMAI_OK, proto_check_cm_req(b, 56, &info));
	EXPECT_EQ(0x1122334455667788ull, info.token);
}

TEST(cm_req_short)
{
	uint8_t b[48];
	struct cm_req_info info;
	size_t len;

	make_cm_req(b, sizeof(b));
	for (len = 0; len < sizeof(b); len++)
		EXPECT_EQ(RMAI_E_INVAL, proto_check_cm_req(b, len, &info));
	EXPECT_EQ(RMAI_E_INVAL, proto_check_cm_req(NULL, 0, &info));
}

TEST(cm_req_bad_magic)
{
	uint8_t b[48];
	struct cm_req_info info;

	make_cm_req(b, sizeof(b));
	put32(b, 0x524d4149);		/* "RMAI" big-endian */
	EXPECT_EQ(RMAI_E_INVAL, proto_check_cm_req(b, sizeof(b), &info));
}

TEST(cm_req_wrong_version)
{
	uint8_t b[48];
	struct cm_req_info info;

	make_cm_req(b, sizeof(b));
	put16(b + 4, RMAI_PROTO_VERSION + 1);
	EXPECT_EQ(RMAI_E_VERSION, proto_check_cm_req(b, sizeof(b), &info));
	put16(b + 4, 0);
	EXPECT_EQ(RMAI_E_VERSION, proto_check_cm_req(b, sizeof(b), &info));
}

TEST(cm_req_reserved_nonzero)
{
	uint8_t b[48];
	struct cm_req_info info;
	int i;

	for (i = 32; i < 48; i++) {
		make_cm_req(b, sizeof(b));
		b[i] = 1;
		EXPECT_EQ(RMAI_E_INVAL,
			  proto_check_cm_req(b, sizeof(b), &info));
	}
}

/* ---- connect reply ---- */

TEST(cm_rep_bytes)
{
	struct rmai_cm_rep rep;
	uint8_t b[48];
	int i;

	memset(&rep, 0xcc, sizeof(rep));
	proto_make_cm_rep(&rep, RMAI_OK, 0x0102030405060708ull, 1ull << 30,
			  1000, 900, 0x11223344, 30, 20);
	memcpy(b, &rep, sizeof(b));
	/* "RMAI" in byte order, then version 2 */
	EXPECT_EQ('R', b[0]);
	EXPECT_EQ('M', b[1]);
	EXPECT_EQ('A', b[2]);
	EXPECT_EQ('I', b[3]);
	EXPECT_EQ(2, b[4]);
	EXPECT_EQ(0, b[5]);
	EXPECT_EQ(0, get_le(b + 6, 2));			/* status */
	for (i = 0; i < 8; i++)				/* token, LSB first */
		EXPECT_EQ(8 - i, b[8 + i]);
	EXPECT_EQ(0, b[16]);				/* slab_size = 1 GiB */
	EXPECT_EQ(0, b[17]);
	EXPECT_EQ(0, b[18]);
	EXPECT_EQ(0x40, b[19]);
	EXPECT_EQ(1ull << 30, get_le(b + 16, 8));
	EXPECT_EQ(1000, get_le(b + 24, 4));		/* nr_slabs */
	EXPECT_EQ(900, get_le(b + 28, 4));		/* nr_free */
	EXPECT_EQ(0x44, b[32]);				/* nr_held */
	EXPECT_EQ(0x33, b[33]);
	EXPECT_EQ(0x22, b[34]);
	EXPECT_EQ(0x11, b[35]);
	EXPECT_EQ(30, get_le(b + 36, 4));		/* lease_grace */
	EXPECT_EQ(20, get_le(b + 40, 4));		/* liveness */
	for (i = 44; i < 48; i++)			/* reserved */
		EXPECT_EQ(0, b[i]);
}

TEST(cm_rep_reject)
{
	struct rmai_cm_rep rep;
	uint8_t b[48];

	proto_make_cm_rep(&rep, RMAI_E_BUSY, 0, 0, 0, 0, 0, 0, 0);
	memcpy(b, &rep, sizeof(b));
	EXPECT_EQ(RMAI_PROTO_MAGIC, get_le(b, 4));
	EXPECT_EQ(RMAI_E_BUSY, b[6]);
	EXPECT_EQ(0, b[7]);
}

/* ---- control messages ---- */

TEST(msg_every_opcode_valid)
{
	uint8_t raw[1 + RMAI_MSG_SIZE];
	uint8_t *b = raw + 1;		/* unaligned on purpose */
	int op;

	for (op = RMAI_OP_HELLO; op <= RMAI_OP_STATS; op++) {
		make_msg(b, op);
		EXPECT_EQ(RMAI_OK, proto_check_msg(b, RMAI_MSG_SIZE))
			TH_LOG("opcode %d", op);
	}
}

TEST(msg_count_limits_valid)
{
	uint8_t b[RMAI_MSG_SIZE];

	make_msg(b, RMAI_OP_ALLOC);
	put32(b + 16, 1);
	EXPECT_EQ(RMAI_OK, proto_check_msg(b, sizeof(b)));
	put32(b + 16, RMAI_MSG_MAX_SLABS);
	EXPECT_EQ(RMAI_OK, proto_check_msg(b, sizeof(b)));
	make_msg(b, RMAI_OP_RELEASE);
	put32(b + 16, 1);
	EXPECT_EQ(RMAI_OK, proto_check_msg(b, sizeof(b)));
	put32(b + 16, RMAI_MSG_MAX_SLABS);
	EXPECT_EQ(RMAI_OK, proto_check_msg(b, sizeof(b)));
}

TEST(msg_wrong_length)
{
	uint8_t b[RMAI_MSG_SIZE + 1];

	make_msg(b, RMAI_OP_KEEPALIVE);
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, 0));
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, 16));
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, RMAI_MSG_SIZE - 1));
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, RMAI_MSG_SIZE + 1));
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(NULL, RMAI_MSG_SIZE));
	/* the length field too */
	put16(b + 10, RMAI_MSG_SIZE - 1);
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, RMAI_MSG_SIZE));
	put16(b + 10, 0);
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, RMAI_MSG_SIZE));
}

TEST(msg_bad_magic)
{
	uint8_t b[RMAI_MSG_SIZE];

	make_msg(b, RMAI_OP_HELLO);
	b[3] ^= 0x20;
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)));
}

TEST(msg_wrong_version)
{
	uint8_t b[RMAI_MSG_SIZE];

	make_msg(b, RMAI_OP_HELLO);
	put16(b + 4, RMAI_PROTO_VERSION + 1);
	EXPECT_EQ(RMAI_E_VERSION, proto_check_msg(b, sizeof(b)));
	put16(b + 4, 1);		/* version 1 clients are refused */
	EXPECT_EQ(RMAI_E_VERSION, proto_check_msg(b, sizeof(b)));
	put16(b + 4, RMAI_PROTO_VERSION << 8);	/* big-endian */
	EXPECT_EQ(RMAI_E_VERSION, proto_check_msg(b, sizeof(b)));
}

TEST(msg_reply_bit)
{
	uint8_t b[RMAI_MSG_SIZE];
	int op;

	for (op = RMAI_OP_HELLO; op <= RMAI_OP_STATS; op++) {
		make_msg(b, op);
		b[6] |= RMAI_OP_REPLY;
		EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)))
			TH_LOG("opcode %d", op);
	}
}

TEST(msg_unknown_opcode)
{
	uint8_t b[RMAI_MSG_SIZE];
	static const uint8_t bad[] = { 0, RMAI_OP_STATS + 1, 0x7f, 0xff };
	size_t i;

	for (i = 0; i < sizeof(bad); i++) {
		make_msg(b, bad[i]);
		EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)))
			TH_LOG("opcode %d", bad[i]);
	}
}

TEST(msg_status_nonzero)
{
	uint8_t b[RMAI_MSG_SIZE];

	make_msg(b, RMAI_OP_STATS);
	put16(b + 8, RMAI_E_INVAL);
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)));
	put16(b + 8, 0x100);		/* high byte alone */
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)));
}

TEST(msg_reserved_nonzero)
{
	uint8_t b[RMAI_MSG_SIZE];

	make_msg(b, RMAI_OP_KEEPALIVE);
	b[7] = 1;				/* hdr.reserved0 */
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)));
	make_msg(b, RMAI_OP_ALLOC);
	b[23] = 1;				/* alloc.reserved */
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)));
	make_msg(b, RMAI_OP_RELEASE);
	b[20] = 1;				/* release.reserved */
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)));
	make_msg(b, RMAI_OP_LIST);
	b[21] = 1;				/* list.reserved */
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)));
	make_msg(b, RMAI_OP_HELLO);
	b[16 + 31] = 1;				/* hello.auth, last byte */
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)));
	make_msg(b, RMAI_OP_HELLO);
	b[16] = 0x80;				/* hello.auth, first byte */
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)));
}

TEST(msg_alloc_count)
{
	uint8_t b[RMAI_MSG_SIZE];

	make_msg(b, RMAI_OP_ALLOC);
	put32(b + 16, 0);
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)));
	put32(b + 16, RMAI_MSG_MAX_SLABS + 1);
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)));
	put32(b + 16, 0x01000001);	/* 1 if read big-endian */
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)));
	put32(b + 16, 0xffffffff);
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)));
}

TEST(msg_release_count)
{
	uint8_t b[RMAI_MSG_SIZE];

	make_msg(b, RMAI_OP_RELEASE);
	put32(b + 16, 0);
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)));
	put32(b + 16, RMAI_MSG_MAX_SLABS + 1);
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)));
	put32(b + 16, 0x80000001);
	EXPECT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)));
}

/* ---- replies ---- */

TEST(init_reply)
{
	uint8_t b[RMAI_MSG_SIZE];
	struct rmai_msg req, reply;
	int i;

	make_msg(b, RMAI_OP_RELEASE);
	memcpy(&req, b, sizeof(req));
	memset(&reply, 0xcc, sizeof(reply));
	proto_init_reply(&reply, &req, RMAI_E_NOENT);
	memcpy(b, &reply, sizeof(b));
	EXPECT_EQ(RMAI_PROTO_MAGIC, get_le(b, 4));
	EXPECT_EQ(RMAI_PROTO_VERSION, get_le(b + 4, 2));
	EXPECT_EQ(RMAI_OP_RELEASE | RMAI_OP_REPLY, b[6]);
	EXPECT_EQ(0, b[7]);
	EXPECT_EQ(RMAI_E_NOENT, get_le(b + 8, 2));
	EXPECT_EQ(RMAI_MSG_SIZE, get_le(b + 10, 2));
	EXPECT_EQ(0xdeadbeef, get_le(b + 12, 4));
	for (i = 16; i < RMAI_MSG_SIZE; i++)
		EXPECT_EQ(0, b[i]);
}

TEST(init_reply_in_place)
{
	uint8_t b[RMAI_MSG_SIZE];
	struct rmai_msg msg;
	int i;

	make_msg(b, RMAI_OP_ALLOC);
	memcpy(&msg, b, sizeof(msg));
	proto_init_reply(&msg, &msg, RMAI_OK);
	memcpy(b, &msg, sizeof(b));
	EXPECT_EQ(RMAI_OP_ALLOC | RMAI_OP_REPLY, b[6]);
	EXPECT_EQ(0, get_le(b + 8, 2));
	EXPECT_EQ(0xdeadbeef, get_le(b + 12, 4));
	for (i = 16; i < RMAI_MSG_SIZE; i++)
		EXPECT_EQ(0, b[i]);
}

TEST(init_reply_to_bad_request)
{
	/* A rejected request still gets its opcode and seq echoed. */
	uint8_t b[RMAI_MSG_SIZE];
	struct rmai_msg req, reply;

	make_msg(b, 0x42);
	put32(b, 0);				/* bad magic too */
	put32(b + 12, 77);
	ASSERT_EQ(RMAI_E_INVAL, proto_check_msg(b, sizeof(b)));
	memcpy(&req, b, sizeof(req));
	proto_init_reply(&reply, &req, RMAI_E_INVAL);
	memcpy(b, &reply, sizeof(b));
	EXPECT_EQ(RMAI_PROTO_MAGIC, get_le(b, 4));
	EXPECT_EQ(0x42 | RMAI_OP_REPLY, b[6]);
	EXPECT_EQ(RMAI_E_INVAL, get_le(b + 8, 2));
	EXPECT_EQ(77, get_le(b + 12, 4));
}

TEST(status_names)
{
	EXPECT_STREQ("OK", proto_status_name(RMAI_OK));
	EXPECT_STREQ("EVERSION", proto_status_name(RMAI_E_VERSION));
	EXPECT_STREQ("EINVAL", proto_status_name(RMAI_E_INVAL));
	EXPECT_STREQ("ENOSPC", proto_status_name(RMAI_E_NOSPC));
	EXPECT_STREQ("ETOKEN", proto_status_name(RMAI_E_TOKEN));
	EXPECT_STREQ("EBUSY", proto_status_name(RMAI_E_BUSY));
	EXPECT_STREQ("ENOENT", proto_status_name(RMAI_E_NOENT));
	EXPECT_STREQ("EINTERNAL", proto_status_name(RMAI_E_INTERNAL));
	EXPECT_STREQ("UNKNOWN", proto_status_name((enum rmai_status)99));
	EXPECT_STREQ("UNKNOWN", proto_status_name((enum rmai_status)-1));
}

TEST_HARNESS_MAIN
