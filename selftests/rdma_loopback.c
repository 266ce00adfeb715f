// SPDX-License-Identifier: GPL-2.0
/*
 * RDMA round trip over the test network's soft-RoCE device: a server thread
 * exposes a buffer with remote read/write rights and sends its address and
 * key; the client writes a pattern there with RDMA WRITE and reads it back
 * with RDMA READ into another buffer, and the bytes must match exactly.
 *
 * This proves the VM's rxe device, rdma_cm addressing and one-sided verbs,
 * which everything else in RMAI stands on.
 */
#include <netdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include <rdma/rdma_verbs.h>

#include "kselftest_harness.h"

#define SERVER_ADDR	"192.0.2.1"
#define REMOTE_SIZE	(1u << 20)	/* bytes exposed by the server */

/* What the server tells the client, by SEND, after accepting. */
struct remote_buf {
	uint64_t addr;			/* remote address of the buffer */
	uint32_t rkey;			/* remote key for it */
	uint32_t len;			/* its length in bytes */
};

FIXTURE(rdma) {
	struct rdma_cm_id *listen_id;	/* passive side, on an ephemeral port */
	struct rdma_cm_id *srv_id;	/* server end of the connection */
	struct rdma_cm_id *cli_id;	/* client end */
	pthread_t server;		/* accepts one connection */
	int server_err;			/* what the server thread hit */
	void *remote;			/* the server's exposed buffer */
	struct ibv_mr *remote_mr;	/* its registration, remote R/W */
	struct ibv_mr *info_mr;		/* the server's SEND buffer */
	struct remote_buf info;		/* what the server sends */
	char *src, *dst;		/* client buffers, REMOTE_SIZE each */
	struct ibv_mr *src_mr, *dst_mr;	/* their registrations */
	struct remote_buf peer;		/* what the client received */
	struct ibv_mr *peer_mr;		/* the client's RECV buffer */
};

static void init_qp_attr(struct ibv_qp_init_attr *attr)
{
	memset(attr, 0, sizeof(*attr));
	attr->cap.max_send_wr = 8;
	attr->cap.max_recv_wr = 2;
	attr->cap.max_send_sge = 1;
	attr->cap.max_recv_sge = 1;
	attr->sq_sig_all = 1;
}

static void *server_main(void *arg)
{
	struct _test_data_rdma *self = arg;
	struct rdma_conn_param param = {
		.responder_resources = 1,
		.initiator_depth = 1,
	};
	struct ibv_wc wc;

	if (rdma_get_request(self->listen_id, &self->srv_id))
		goto err;
	self->remote_mr = ibv_reg_mr(self->srv_id->pd, self->remote, REMOTE_SIZE,
				     IBV_ACCESS_LOCAL_WRITE |
				     IBV_ACCESS_REMOTE_READ |
				     IBV_ACCESS_REMOTE_WRITE);
	if (!self->remote_mr)
		goto err;
	self->info.addr = (uintptr_t)self->remote;
	self->info.rkey = self->remote_mr->rkey;
	self->info.len = REMOTE_SIZE;
	self->info_mr = rdma_reg_msgs(self->srv_id, &self->info,
				      sizeof(self->info));
	if (!self->info_mr)
		goto err;
	if (rdma_accept(self->srv_id, &param))
		goto err;
	if (rdma_post_send(self->srv_id, NULL, &self->info, sizeof(self->info),
			   self->info_mr, 0))
		goto err;
	if (rdma_get_send_comp(self->srv_id, &wc) <= 0 ||
	    wc.status != IBV_WC_SUCCESS)
		goto err;
	return NULL;
err:
	self->server_err = errno ? errno : EIO;
	return NULL;
}

FIXTURE_SETUP(rdma)
{
	struct rdma_addrinfo hints = { .ai_port_space = RDMA_PS_TCP };
	struct rdma_conn_param param = {
		.responder_resources = 1,
		.initiator_depth = 1,
		.retry_count = 7,
	};
	struct rdma_addrinfo *res;
	struct ibv_qp_init_attr attr;
	struct ibv_device **devs;
	struct ibv_wc wc;
	char port[16];
	int n;

	devs = ibv_get_device_list(&n);
	if (!devs || n == 0) {
		if (devs)
			ibv_free_device_list(devs);
		SKIP(return, "no RDMA device (run in the test VM with --net)");
	}
	ibv_free_device_list(devs);

	self->remote = calloc(1, REMOTE_SIZE);
	self->src = malloc(REMOTE_SIZE);
	self->dst = malloc(REMOTE_SIZE);
	ASSERT_TRUE(self->remote && self->src && self->dst);

	hints.ai_flags = RAI_PASSIVE;
	ASSERT_EQ(0, rdma_getaddrinfo(SERVER_ADDR, "0", &hints, &res));
	init_qp_attr(&attr);
	ASSERT_EQ(0, rdma_create_ep(&self->listen_id, res, NULL, &attr))
		TH_LOG("rdma_create_ep (listen): %s", strerror(errno));
	rdma_freeaddrinfo(res);
	ASSERT_EQ(0, rdma_listen(self->listen_id, 1));
	snprintf(port, sizeof(port), "%u",
		 ntohs(rdma_get_src_port(self->listen_id)));
	ASSERT_EQ(0, pthread_create(&self->server, NULL, server_main, self));

	hints.ai_flags = 0;
	ASSERT_EQ(0, rdma_getaddrinfo(SERVER_ADDR, port, &hints, &res));
	init_qp_attr(&attr);
	ASSERT_EQ(0, rdma_create_ep(&self->cli_id, res, NULL, &attr))
		TH_LOG("rdma_create_ep (client): %s", strerror(errno));
	rdma_freeaddrinfo(res);
	self->src_mr = rdma_reg_msgs(self->cli_id, self->src, REMOTE_SIZE);
	self->dst_mr = rdma_reg_msgs(self->cli_id, self->dst, REMOTE_SIZE);
	self->peer_mr = rdma_reg_msgs(self->cli_id, &self->peer,
				      sizeof(self->peer));
	ASSERT_TRUE(self->src_mr && self->dst_mr && self->peer_mr);
	ASSERT_EQ(0, rdma_post_recv(self->cli_id, NULL, &self->peer,
				    sizeof(self->peer), self->peer_mr));
	ASSERT_EQ(0, rdma_connect(self->cli_id, &param))
		TH_LOG("rdma_connect to %s:%s: %s", SERVER_ADDR, port,
		       strerror(errno));
	ASSERT_EQ(1, rdma_get_recv_comp(self->cli_id, &wc));
	ASSERT_EQ(IBV_WC_SUCCESS, wc.status);
	ASSERT_EQ(0, pthread_join(self->server, NULL));
	self->server = 0;
	ASSERT_EQ(0, self->server_err);
	ASSERT_EQ(REMOTE_SIZE, self->peer.len);
}

FIXTURE_TEARDOWN(rdma)
{
	if (self->server)
		pthread_cancel(self->server);
	/*
	 * No rdma_disconnect(): on synchronous ids it waits for the peer's
	 * reply, which this same thread would have to send. Destroying the
	 * ids disconnects them in the kernel.
	 */
	if (self->cli_id) {
		if (self->peer_mr)
			rdma_dereg_mr(self->peer_mr);
		if (self->dst_mr)
			rdma_dereg_mr(self->dst_mr);
		if (self->src_mr)
			rdma_dereg_mr(self->src_mr);
		rdma_destroy_ep(self->cli_id);
	}
	if (self->srv_id) {
		if (self->info_mr)
			rdma_dereg_mr(self->info_mr);
		if (self->remote_mr)
			ibv_dereg_mr(self->remote_mr);
		rdma_destroy_ep(self->srv_id);
	}
	if (self->listen_id)
		rdma_destroy_ep(self->listen_id);
	free(self->dst);
	free(self->src);
	free(self->remote);
}

/* Deterministic bytes that differ per seed and per position. */
static void fill_pattern(char *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (char)x;
	}
}

/* Offset of the first differing byte, or -1 when equal. */
static long first_mismatch(const char *a, const char *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (a[i] != b[i])
			return (long)i;
	return -1;
}

/* RDMA WRITE @len bytes at remote offset @off, READ them back, compare. */
static void round_trip(struct _test_data_rdma *self, size_t off, size_t len,
		       uint64_t seed, struct __test_metadata *_metadata)
{
	uint64_t raddr = self->peer.addr + off;
	struct ibv_wc wc;

	fill_pattern(self->src, len, seed);
	memset(self->dst, 0xa5, len);
	ASSERT_EQ(0, rdma_post_write(self->cli_id, NULL, self->src, len,
				     self->src_mr, 0, raddr, self->peer.rkey));
	ASSERT_EQ(1, rdma_get_send_comp(self->cli_id, &wc));
	ASSERT_EQ(IBV_WC_SUCCESS, wc.status);
	ASSERT_EQ(0, rdma_post_read(self->cli_id, NULL, self->dst, len,
				    self->dst_mr, 0, raddr, self->peer.rkey));
	ASSERT_EQ(1, rdma_get_send_comp(self->cli_id, &wc));
	ASSERT_EQ(IBV_WC_SUCCESS, wc.status);
	ASSERT_EQ(-1, first_mismatch(self->src, self->dst, len));
	/* And the server's memory holds the pattern, not just our copy. */
	ASSERT_EQ(-1, first_mismatch(self->src, (char *)self->remote + off, len));
}

TEST_F(rdma, write_read_4k)
{
	round_trip(self, 0, 4096, 1, _metadata);
}

TEST_F(rdma, write_read_1m)
{
	round_trip(self, 0, REMOTE_SIZE, 2, _metadata);
}

TEST_F(rdma, write_read_unaligned)
{
	round_trip(self, 4093, 65537, 3, _metadata);
	round_trip(self, REMOTE_SIZE - 3, 3, 4, _metadata);
}

/* A wrong remote key must fail with a remote access error, moving no data. */
TEST_F(rdma, bad_rkey_refused)
{
	struct ibv_wc wc;

	memset(self->dst, 0x5a, 4096);
	fill_pattern(self->remote, 4096, 5);
	ASSERT_EQ(0, rdma_post_read(self->cli_id, NULL, self->dst, 4096,
				    self->dst_mr, 0, self->peer.addr,
				    self->peer.rkey ^ 0x00ffff00));
	ASSERT_EQ(1, rdma_get_send_comp(self->cli_id, &wc));
	ASSERT_EQ(IBV_WC_REM_ACCESS_ERR, wc.status);
	ASSERT_EQ((char)0x5a, self->dst[0]);
	ASSERT_EQ((char)0x5a, self->dst[4095]);
}

TEST_HARNESS_MAIN
