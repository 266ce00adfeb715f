// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for memnode/proto.c, built with
 * -fsanitize=fuzzer,address,undefined. Each input is used twice: as connect
 * private data and as a control message. The input buffer is exactly @size
 * bytes, so ASan catches any read past the length the checkers were given.
 *
 * Built with -DFUZZ_GEN_CORPUS (plain cc, no libFuzzer) the same file is a
 * tiny generator of a seed corpus of valid messages: `gen DIR`.
 */
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#ifndef FUZZ_GEN_CORPUS

/* Abort so the fuzzer records the input when an invariant breaks. */
#define FUZZ_ASSERT(cond) do { if (!(cond)) abort(); } while (0)

static void fuzz_cm_req(const uint8_t *data, size_t size)
{
	struct cm_req_info info;
	enum rmai_status st = proto_check_cm_req(data, size, &info);

	FUZZ_ASSERT(st == RMAI_OK || st == RMAI_E_INVAL ||
		    st == RMAI_E_VERSION);
	if (st == RMAI_OK) {
		/* Accepting means the contract's preconditions held. */
		FUZZ_ASSERT(size >= sizeof(struct rmai_cm_req));
		FUZZ_ASSERT(!memcmp(info.client_id, data + 16,
				    RMAI_CLIENT_ID_LEN));
	}
}

static void fuzz_msg(const uint8_t *data, size_t size)
{
	struct rmai_msg req, reply;
	enum rmai_status st = proto_check_msg(data, size);

	FUZZ_ASSERT(st == RMAI_OK || st == RMAI_E_INVAL ||
		    st == RMAI_E_VERSION);
	if (st != RMAI_OK)
		return;
	FUZZ_ASSERT(size == RMAI_MSG_SIZE);
	memcpy(&req, data, sizeof(req));
	FUZZ_ASSERT(!(req.hdr.opcode & RMAI_OP_REPLY));
	if (req.hdr.opcode == RMAI_OP_HELLO) {
		static const uint8_t none[RMAI_AUTH_LEN];

		FUZZ_ASSERT(!memcmp(req.hello.auth, none, sizeof(none)));
	}

	proto_init_reply(&reply, &req, RMAI_OK);
	FUZZ_ASSERT(reply.hdr.opcode == (req.hdr.opcode | RMAI_OP_REPLY));
	FUZZ_ASSERT(reply.hdr.seq == req.hdr.seq);
	/* A reply is never a valid request: the peer can't echo us forever. */
	FUZZ_ASSERT(proto_check_msg(&reply, sizeof(reply)) == RMAI_E_INVAL);
	/* And in place, as the daemon may do. */
	proto_init_reply(&req, &req, RMAI_E_NOENT);
	FUZZ_ASSERT(!memcmp(&req.hdr.seq, &reply.hdr.seq, sizeof(req.hdr.seq)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_cm_req(data, size);
	fuzz_msg(data, size);
	return 0;
}

#else /* FUZZ_GEN_CORPUS */

#include <stdio.h>

static int write_seed(const char *dir, const char *name, const void *p,
		      size_t len)
{
	char path[4096];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f) {
		perror(path);
		return -1;
	}
	ok = fwrite(p, 1, len, f) == len;
	if (fclose(f) || !ok) {
		perror(path);
		return -1;
	}
	return 0;
}

static void seed_msg(struct rmai_msg *m, uint8_t opcode)
{
	memset(m, 0, sizeof(*m));
	m->hdr.magic = htole32(RMAI_PROTO_MAGIC);
	m->hdr.version = htole16(RMAI_PROTO_VERSION);
	m->hdr.opcode = opcode;
	m->hdr.length = htole16(RMAI_MSG_SIZE);
	m->hdr.seq = htole32(opcode * 1000u);
}

int main(int argc, char **argv)
{
	struct rmai_cm_req req;
	struct rmai_msg m;
	char name[32];
	int op, err = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}

	memset(&req, 0, sizeof(req));
	req.magic = htole32(RMAI_PROTO_MAGIC);
	req.version = htole16(RMAI_PROTO_VERSION);
	memset(req.client_id, 0x5a, sizeof(req.client_id));
	err |= write_seed(argv[1], "cm_req_new", &req, sizeof(req));
	req.qid = htole16(2);
	req.token = htole64(0x0123456789abcdefull);
	err |= write_seed(argv[1], "cm_req_join", &req, sizeof(req));

	for (op = RMAI_OP_HELLO; op <= RMAI_OP_STATS; op++) {
		seed_msg(&m, op);
		if (op == RMAI_OP_ALLOC)
			m.alloc.count = htole32(RMAI_MSG_MAX_SLABS);
		if (op == RMAI_OP_RELEASE) {
			m.release.count = htole32(2);
			m.release.index[0] = htole32(3);
			m.release.index[1] = htole32(4);
		}
		if (op == RMAI_OP_LIST)
			m.list.start = htole32(1);
		if (proto_check_msg(&m, sizeof(m)) != RMAI_OK) {
			fprintf(stderr, "seed for opcode %d is invalid\n", op);
			err = -1;
		}
		snprintf(name, sizeof(name), "msg_op%d", op);
		err |= write_seed(argv[1], name, &m, sizeof(m));
	}
	return err ? 1 : 0;
}

#endif /* FUZZ_GEN_CORPUS */
