// SPDX-License-Identifier: GPL-2.0
/*
 * bad_memnode - a memnode that lies, for the module's tests: it speaks the
 * protocol of rmai_proto.h, and answers wrongly in one chosen way.
 *
 *   bad_memnode --listen ADDR:PORT --mode MODE [--proto VERSION]
 *
 * MODE: ok (behaves: 4 slabs of 4 MiB), slab-huge (the accept says slabs
 * of 1 PiB), free-over (more free slabs than the pool has), alloc-dup
 * (an ALLOC reply lists one slab twice), alloc-range (a slab index past the
 * pool), alloc-count (more slabs than asked for), bad-seq (the HELLO reply
 * has another sequence number), stall (HELLO is never answered).
 * It serves one client at a time, forever; rmai_blk.sh loads rmai.ko
 * against it and wants a clean refusal for every mode but ok. --proto
 * answers in another protocol version (1: a module from before version 2,
 * to show that it trusted these replies).
 */
#include <endian.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rdma/rdma_cma.h>
#include <rdma/rdma_verbs.h>

#include "rmai_proto.h"

#define SLAB		(4u << 20)
#define NR_SLABS	4

enum mode { OK, SLAB_HUGE, FREE_OVER, ALLOC_DUP, ALLOC_RANGE, ALLOC_COUNT, BAD_SEQ, STALL };

static const char * const mode_names[] = {
	"ok", "slab-huge", "free-over", "alloc-dup", "alloc-range", "alloc-count",
	"bad-seq", "stall",
};

static enum mode mode;
static uint16_t proto = RMAI_PROTO_VERSION;
static char *pool;			/* NR_SLABS * SLAB, registered per client */

static void make_rep(struct rmai_cm_rep *rep, uint16_t status)
{
	memset(rep, 0, sizeof(*rep));
	rep->magic = htole32(RMAI_PROTO_MAGIC);
	rep->version = htole16(proto);
	rep->status = htole16(status);
	rep->token = htole64(0x1234);
	rep->slab_size = htole64(mode == SLAB_HUGE ? 1ULL << 50 : SLAB);
	rep->nr_slabs = htole32(NR_SLABS);
	rep->nr_free = htole32(mode == FREE_OVER ? NR_SLABS + 1 : NR_SLABS);
	if (proto >= 2) {
		rep->lease_grace = htole32(30);
		rep->liveness = htole32(20);
	}
}

/* The control queue of one client: answer until it goes. */
static void *serve_ctrl(void *arg)
{
	struct rdma_cm_id *id = arg;
	struct rmai_msg *req = calloc(2, sizeof(*req)), *rep = req + 1;
	struct ibv_mr *mr = rdma_reg_msgs(id, req, 2 * sizeof(*req)), *pool_mr;
	struct ibv_wc wc;
	uint32_t i, n, next = 0;

	pool_mr = ibv_reg_mr(id->pd, pool, (size_t)NR_SLABS * SLAB, IBV_ACCESS_LOCAL_WRITE |
			     IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE);
	if (!mr || !pool_mr)
		goto out;
	for (;;) {
		if (rdma_post_recv(id, NULL, req, sizeof(*req), mr) ||
		    rdma_get_recv_comp(id, &wc) <= 0 || wc.status != IBV_WC_SUCCESS)
			break;
		memset(rep, 0, sizeof(*rep));
		rep->hdr = req->hdr;
		rep->hdr.opcode |= RMAI_OP_REPLY;
		if (req->hdr.opcode == RMAI_OP_HELLO) {
			if (mode == STALL)
				continue;
			if (mode == BAD_SEQ)
				rep->hdr.seq = htole32(le32toh(req->hdr.seq) + 1);
		} else if (req->hdr.opcode == RMAI_OP_ALLOC) {
			n = le32toh(req->alloc.count);
			rep->slabs.count = htole32(mode == ALLOC_COUNT ? n + 1 : n);
			for (i = 0; i < n + (mode == ALLOC_COUNT) && i < RMAI_MSG_MAX_SLABS; i++) {
				uint32_t index = next++ % NR_SLABS;

				if (mode == ALLOC_DUP && i)
					index = next - 2;
				if (mode == ALLOC_RANGE)
					index += NR_SLABS;
				rep->slabs.desc[i].addr = htole64((uintptr_t)pool + (uint64_t)(index % NR_SLABS) * SLAB);
				rep->slabs.desc[i].rkey = htole32(pool_mr->rkey);
				rep->slabs.desc[i].index = htole32(index);
			}
			rep->slabs.total = htole32(next);
		}
		if (rdma_post_send(id, NULL, rep, sizeof(*rep), mr, 0) ||
		    rdma_get_send_comp(id, &wc) <= 0)
			break;
	}
out:
	if (pool_mr)
		ibv_dereg_mr(pool_mr);
	if (mr)
		rdma_dereg_mr(mr);
	free(req);
	rdma_disconnect(id);
	rdma_destroy_ep(id);
	return NULL;
}

int main(int argc, char **argv)
{
	struct rdma_addrinfo hints = { .ai_flags = RAI_PASSIVE, .ai_port_space = RDMA_PS_TCP };
	struct ibv_qp_init_attr attr = {
		.cap = { .max_send_wr = 4, .max_recv_wr = 4, .max_send_sge = 1, .max_recv_sge = 1 },
		.sq_sig_all = 1,
	};
	struct rdma_cm_id *listen_id, *id;
	struct rdma_addrinfo *res;
	char *addr = NULL, *port;
	int i;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--listen")) {
			addr = argv[i + 1];
		} else if (!strcmp(argv[i], "--proto")) {
			proto = atoi(argv[i + 1]);
		} else if (!strcmp(argv[i], "--mode")) {
			for (mode = 0; mode < sizeof(mode_names) / sizeof(*mode_names); mode++)
				if (!strcmp(argv[i + 1], mode_names[mode]))
					break;
			if (mode == sizeof(mode_names) / sizeof(*mode_names))
				goto usage;
		} else {
			goto usage;
		}
	}
	if (i != argc || !addr || !(port = strrchr(addr, ':')))
		goto usage;
	*port++ = '\0';
	pool = calloc(NR_SLABS, SLAB);
	if (!pool || rdma_getaddrinfo(addr, port, &hints, &res) ||
	    rdma_create_ep(&listen_id, res, NULL, &attr) || rdma_listen(listen_id, 4)) {
		perror("bad_memnode: listen");
		return 1;
	}
	fprintf(stderr, "bad_memnode: %s on %s:%s\n", mode_names[mode], addr, port);
	for (;;) {
		const struct rmai_cm_req *req;
		struct rmai_cm_rep rep;
		struct rdma_conn_param param = { .responder_resources = 1, .rnr_retry_count = 7 };
		pthread_t t;
		uint16_t qid;

		if (rdma_get_request(listen_id, &id))
			continue;
		req = id->event->param.conn.private_data;
		qid = req ? le16toh(req->qid) : 0;
		make_rep(&rep, RMAI_OK);
		param.private_data = &rep;
		param.private_data_len = sizeof(rep);
		if (rdma_accept(id, &param)) {
			rdma_destroy_ep(id);
			continue;
		}
		if (qid == 0 && !pthread_create(&t, NULL, serve_ctrl, id))
			pthread_detach(t);
	}
usage:
	fprintf(stderr, "usage: bad_memnode --listen ADDR:PORT --mode ok|slab-huge|free-over|alloc-dup|alloc-range|alloc-count|bad-seq|stall [--proto VERSION]\n");
	return 2;
}
