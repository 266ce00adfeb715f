// SPDX-License-Identifier: GPL-2.0
/*
 * rmai-memnoded: connections and sessions.
 *
 * Queue 0 of a client opens (token 0) or resumes (its token) a session; the
 * session's protection domain holds every queue pair and every slab of that
 * client, so its remote keys mean nothing on anyone else's queues. Queue 0
 * carries control messages (SEND/RECV); data queues (qid > 0) join with the
 * token and carry only the client's one-sided RDMA. When queue 0 goes away
 * the session waits --lease-grace seconds for a resume, then its slabs are
 * deregistered, zeroed and freed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/random.h>

#include "memnode.h"
#include "proto.h"

#define CTRL_DEPTH	RMAI_CTRL_QUEUE_DEPTH	/* receives posted */
/*
 * Send queue of a control queue: one reply per request, twice the request
 * depth because a reply's completion (the client's ACK) may still be on its
 * way when the client, which already has the reply, sends its next request;
 * plus one probe.
 */
#define CTRL_SEND_DEPTH	(2 * CTRL_DEPTH + 1)
#define DATA_CQ_SIZE	2	/* data queues complete nothing of ours */
#define MAX_QID		64	/* data queues per session: the module's at most */
#define MAX_SESSIONS	256	/* leases, connected or in grace */
#define PROBE_INTERVAL	5	/* seconds between probes of a control queue */
#define PROBE_TIMEOUT	15	/* seconds a probe may wait for its ACK */

static const char *hex_id(const uint8_t *id, char *buf)
{
	int i;

	for (i = 0; i < RMAI_CLIENT_ID_LEN; i++)
		sprintf(buf + 2 * i, "%02x", id[i]);
	return buf;
}

/* --- sessions -------------------------------------------------------------- */

static struct session *session_find(struct memnode *mn, uint64_t token,
				    const uint8_t *client_id)
{
	struct session *s;

	for (s = mn->sessions; s; s = s->next)
		if (s->token == token &&
		    !memcmp(s->client_id, client_id, RMAI_CLIENT_ID_LEN))
			return s;
	return NULL;
}

static struct session *session_new(struct memnode *mn, struct ibv_context *verbs,
				   const uint8_t *client_id)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->pd = ibv_alloc_pd(verbs);
	if (!s->pd)
		goto err_free;
	do {
		if (getrandom(&s->token, sizeof(s->token), 0) != sizeof(s->token))
			goto err_pd;
	} while (!s->token);
	memcpy(s->client_id, client_id, RMAI_CLIENT_ID_LEN);
	s->created = time(NULL);
	s->state = SESSION_CONNECTED;
	s->next = mn->sessions;
	mn->sessions = s;
	return s;
err_pd:
	ibv_dealloc_pd(s->pd);
err_free:
	free(s);
	return NULL;
}

static void conn_destroy(struct conn *conn);

/* Reclaim everything of @s: queues first (they use the PD), then slabs. */
static void session_destroy(struct memnode *mn, struct session *s)
{
	struct session **pp;
	uint32_t i;
	char id[2 * RMAI_CLIENT_ID_LEN + 1];

	while (s->conns)
		conn_destroy(s->conns);
	for (i = 0; i < mn->pool.nr_slabs && s->nr_held; i++)
		if (mn->pool.owner[i] == s)
			pool_reclaim(&mn->pool, i);
	ibv_dealloc_pd(s->pd);
	for (pp = &mn->sessions; *pp != s; pp = &(*pp)->next)
		;
	*pp = s->next;
	logmsg(LOG_INFO, "lease of client %s reclaimed, %u slabs free",
	       hex_id(s->client_id, id), mn->pool.nr_free);
	free(s);
}

/**
 * sessions_expire() - reclaim sessions whose grace ended (or all of them).
 */
void sessions_expire(struct memnode *mn, bool all)
{
	struct session *s = mn->sessions, *next;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	for (; s; s = next) {
		next = s->next;
		if (all || (s->state == SESSION_GRACE &&
			    now.tv_sec >= s->grace_end.tv_sec))
			session_destroy(mn, s);
	}
}

/* --- connections ---------------------------------------------------------- */

static struct rmai_msg *recv_buf(struct conn *c, int i) { return &c->msgs[i]; }
static struct rmai_msg *send_buf(struct conn *c, int i) { return &c->msgs[CTRL_DEPTH + i]; }

/* wr_id of control work requests: slot number, with bit 8 for sends. */
#define WR_SEND 0x100
#define WR_PROBE 0x200	/* the liveness probe, see conn_probe() */

static int post_recv(struct conn *c, int slot)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)recv_buf(c, slot),
		.length = RMAI_MSG_SIZE,
		.lkey = c->msgs_mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = slot, .sg_list = &sge, .num_sge = 1 };
	struct ibv_recv_wr *bad;

	return ibv_post_recv(c->id->qp, &wr, &bad);
}

static void conn_unlink(struct conn *conn)
{
	struct conn **pp;

	if (!conn->session)
		return;
	for (pp = &conn->session->conns; *pp && *pp != conn; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = conn->next;
}

/* Undo conn_setup(), in reverse order; also after a partial setup. */
static void conn_release(struct conn *conn)
{
	conn_unlink(conn);
	if (conn->id->qp)
		rdma_destroy_qp(conn->id);
	if (conn->msgs_mr)
		ibv_dereg_mr(conn->msgs_mr);
	free(conn->msgs);
	if (conn->cq)
		ibv_destroy_cq(conn->cq);
	if (conn->channel) {
		loop_del(conn->mn, conn->channel->fd);
		ibv_destroy_comp_channel(conn->channel);
	}
}

static void conn_destroy(struct conn *conn)
{
	conn_release(conn);
	rdma_destroy_id(conn->id);
	free(conn);
}

/* Queue pair, CQ and (control) message buffers of an accepted request. */
static int conn_setup(struct conn *c, struct session *s)
{
	struct ibv_qp_init_attr attr = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_sge = 1, .max_recv_sge = 1 },
	};
	int i;

	if (c->qid == 0) {
		c->channel = ibv_create_comp_channel(c->id->verbs);
		if (!c->channel || loop_add(c->mn, c->channel->fd, c))
			return -1;
		c->cq = ibv_create_cq(c->id->verbs, CTRL_DEPTH + CTRL_SEND_DEPTH, c,
				      c->channel, 0);
		if (!c->cq || ibv_req_notify_cq(c->cq, 0))
			return -1;
		c->msgs = calloc(2 * CTRL_DEPTH, sizeof(*c->msgs));
		if (!c->msgs)
			return -1;
		c->msgs_mr = ibv_reg_mr(s->pd, c->msgs, 2 * CTRL_DEPTH * sizeof(*c->msgs),
					IBV_ACCESS_LOCAL_WRITE);
		if (!c->msgs_mr)
			return -1;
		attr.cap.max_send_wr = CTRL_SEND_DEPTH;
		attr.cap.max_recv_wr = CTRL_DEPTH;
	} else {
		/* Only the client's one-sided work runs here. */
		c->cq = ibv_create_cq(c->id->verbs, DATA_CQ_SIZE, c, NULL, 0);
		if (!c->cq)
			return -1;
		attr.cap.max_send_wr = 1;
		attr.cap.max_recv_wr = 1;
	}
	attr.send_cq = c->cq;
	attr.recv_cq = c->cq;
	if (rdma_create_qp(c->id, s->pd, &attr))
		return -1;
	for (i = 0; c->qid == 0 && i < CTRL_DEPTH; i++)
		if (post_recv(c, i))
			return -1;
	c->session = s;
	c->next = s->conns;
	s->conns = c;
	return 0;
}

static void session_take_over(struct session *s);

static unsigned int sessions_count(const struct memnode *mn)
{
	const struct session *s;
	unsigned int n = 0;

	for (s = mn->sessions; s; s = s->next)
		n++;
	return n;
}

static void conn_close(struct conn *c);
static void session_close_queues(struct session *s);

/* Close @s's queue @qid, if it has one: the client replaces it. */
static void session_close_qid(struct session *s, uint16_t qid)
{
	struct conn *c;

	for (c = s->conns; c; c = c->next)
		if (c->qid == qid && !c->closed)
			conn_close(c);
}

static void reject(struct rdma_cm_id *id, enum rmai_status status)
{
	struct rmai_cm_rep rep;

	proto_make_cm_rep(&rep, status, 0, 0, 0, 0, 0, 0, 0);
	rdma_reject(id, &rep, sizeof(rep));
}

/*
 * A connect request: find or open the session, build the queue, accept.
 * Returns non-zero when @id was rejected and must be destroyed.
 */
static int on_connect_request(struct memnode *mn, struct rdma_cm_event *ev)
{
	struct rdma_cm_id *id = ev->id;
	const struct rdma_conn_param *req = &ev->param.conn;
	struct rdma_conn_param param = { 0 };
	struct ibv_device_attr dev;
	enum rmai_status st;
	struct cm_req_info info;
	struct session *s = NULL;
	struct rmai_cm_rep rep;
	struct conn *c;
	char hex[2 * RMAI_CLIENT_ID_LEN + 1];
	bool opened = false;

	st = proto_check_cm_req(req->private_data, req->private_data_len, &info);
	if (st != RMAI_OK) {
		mn->proto_errors++;
		logmsg(LOG_WARNING, "connect request refused: %s", proto_status_name(st));
		reject(id, st);
		return -1;
	}
	if (info.token)
		s = session_find(mn, info.token, info.client_id);
	if (info.qid > MAX_QID) {
		st = RMAI_E_INVAL;
	} else if (info.qid == 0) {
		if (info.token && !s)
			st = RMAI_E_TOKEN;
		else if (!s && sessions_count(mn) >= MAX_SESSIONS)
			st = RMAI_E_BUSY;
		else if (s && s->state == SESSION_CONNECTED)
			session_take_over(s);
		else if (s)
			session_close_queues(s);	/* data queues left from before */
	} else if (!s || s->state != SESSION_CONNECTED) {
		st = RMAI_E_TOKEN;	/* data queues join a live session */
	} else {
		/* One queue per qid: a client opens a qid again only after losing it. */
		session_close_qid(s, info.qid);
	}
	if (st != RMAI_OK) {
		logmsg(LOG_WARNING, "client %s queue %u refused: %s",
		       hex_id(info.client_id, hex), info.qid, proto_status_name(st));
		reject(id, st);
		return -1;
	}
	if (!s) {
		s = session_new(mn, id->verbs, info.client_id);
		if (!s)
			goto err_reject;
		opened = true;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto err_session;
	c->mn = mn;
	c->id = id;
	c->qid = info.qid;
	id->context = c;
	if (conn_setup(c, s))
		goto err_conn;
	if (ibv_query_device(id->verbs, &dev))
		goto err_conn;
	/*
	 * Serve the client's RDMA READs: as many as it asks, within the
	 * device. The request event's fields are already from our side:
	 * responder_resources there is the client's initiator depth.
	 */
	param.responder_resources = req->responder_resources < dev.max_qp_rd_atom ?
				    req->responder_resources : dev.max_qp_rd_atom;
	param.initiator_depth = 0;	/* the memnode never reads remotely */
	param.rnr_retry_count = 7;
	proto_make_cm_rep(&rep, RMAI_OK, s->token, mn->pool.slab_size,
			  mn->pool.nr_slabs, mn->pool.nr_free, s->nr_held,
			  mn->lease_grace, PROBE_INTERVAL + PROBE_TIMEOUT);
	param.private_data = &rep;
	param.private_data_len = sizeof(rep);
	if (rdma_accept(id, &param))
		goto err_conn;
	if (info.qid == 0) {
		s->state = SESSION_CONNECTED;
		s->ctrl = c;
		logmsg(LOG_INFO, "client %s %s, holds %u slabs", hex_id(s->client_id, hex),
		       opened ? "connected" : "resumed its lease", s->nr_held);
	}
	return 0;

err_conn:
	id->context = NULL;
	conn_release(c);	/* the caller destroys the rejected id */
	free(c);
err_session:
	if (opened)
		session_destroy(mn, s);
err_reject:
	logmsg(LOG_ERR, "cannot accept queue %u: %s", info.qid, strerror(errno));
	reject(id, RMAI_E_INTERNAL);
	return -1;
}

/*
 * The control queue of @c's session is gone (closed by us, or by the peer):
 * the lease now waits --lease-grace seconds for a resume. Called as soon as
 * we close it, since the DISCONNECTED event waits for the peer's reply.
 */
static void ctrl_lost(struct memnode *mn, struct conn *c)
{
	struct session *s = c->session;
	char hex[2 * RMAI_CLIENT_ID_LEN + 1];

	if (!s || s->ctrl != c)
		return;
	s->ctrl = NULL;
	s->state = SESSION_GRACE;
	clock_gettime(CLOCK_MONOTONIC, &s->grace_end);
	s->grace_end.tv_sec += mn->lease_grace;
	logmsg(LOG_INFO, "client %s disconnected; its %u slabs are kept %u s",
	       hex_id(s->client_id, hex), s->nr_held, mn->lease_grace);
}

/* We end @c: its QP stops at once; the conn goes with the CM event. */
static void conn_close(struct conn *c)
{
	c->closed = true;
	rdma_disconnect(c->id);
	ctrl_lost(c->mn, c);
}

/* Close every queue of @s; the lease goes to grace. */
static void session_close_queues(struct session *s)
{
	struct conn *c;

	for (c = s->conns; c; c = c->next)
		conn_close(c);
}

/*
 * A control queue arrives with the token of a session we still think
 * connected: the client lost its queues without our noticing (a network
 * cut, where its disconnect never arrived) and comes back. The token proves
 * it is the owner, so its old queues are closed and the resume goes ahead,
 * instead of refusing it until the liveness probe notices.
 */
static void session_take_over(struct session *s)
{
	char hex[2 * RMAI_CLIENT_ID_LEN + 1];

	logmsg(LOG_INFO, "client %s resumes over queues it lost; closing them",
	       hex_id(s->client_id, hex));
	session_close_queues(s);
}

/**
 * session_disconnect() - close the queues of the client @hex_client_id
 * (admin "disconnect"): its lease goes to grace, and the client resumes it
 * by reconnecting. Return: 0, or -1 when no connected client has that id.
 */
int session_disconnect(struct memnode *mn, const char *hex_client_id)
{
	char hex[2 * RMAI_CLIENT_ID_LEN + 1];
	struct session *s;

	if (!hex_client_id || !*hex_client_id)
		return -1;
	for (s = mn->sessions; s; s = s->next) {
		if (s->state != SESSION_CONNECTED ||
		    strcmp(hex_id(s->client_id, hex), hex_client_id))
			continue;
		logmsg(LOG_INFO, "client %s disconnected by the admin", hex);
		session_close_queues(s);
		return 0;
	}
	return -1;
}

/* A queue went away: data queues just go; queue 0 starts the grace period. */
static void on_disconnect(struct memnode *mn, struct conn *c)
{
	ctrl_lost(mn, c);
	conn_destroy(c);
}

/**
 * cm_handle_events() - drain the rdma_cm channel (it is non-blocking).
 */
void cm_handle_events(struct memnode *mn)
{
	struct rdma_cm_event *ev;

	while (!rdma_get_cm_event(mn->cm_channel, &ev)) {
		struct rdma_cm_id *id = ev->id;
		struct conn *c = id->context;
		enum rdma_cm_event_type type = ev->event;
		int destroy = 0;

		switch (type) {
		case RDMA_CM_EVENT_CONNECT_REQUEST:
			destroy = on_connect_request(mn, ev);
			break;
		case RDMA_CM_EVENT_ESTABLISHED:
			if (c)
				c->established = true;
			break;
		case RDMA_CM_EVENT_DISCONNECTED:
			if (c)
				rdma_disconnect(id);
			/* fall through */
		case RDMA_CM_EVENT_CONNECT_ERROR:
		case RDMA_CM_EVENT_UNREACHABLE:
		case RDMA_CM_EVENT_REJECTED:	/* the client refused our accept */
		case RDMA_CM_EVENT_TIMEWAIT_EXIT:
			break;
		case RDMA_CM_EVENT_DEVICE_REMOVAL:
			logmsg(LOG_ERR, "RDMA device removed; stopping");
			mn->stop = true;
			mn->failed = true;	/* exit non-zero: a service manager restarts us */
			break;
		default:
			break;
		}
		rdma_ack_cm_event(ev);
		if (destroy) {
			rdma_destroy_id(id);
		} else if (c && (type == RDMA_CM_EVENT_DISCONNECTED ||
				 type == RDMA_CM_EVENT_CONNECT_ERROR ||
				 type == RDMA_CM_EVENT_UNREACHABLE ||
				 type == RDMA_CM_EVENT_REJECTED)) {
			on_disconnect(mn, c);
		}
	}
}

/* --- control messages ------------------------------------------------------ */

static void fill_stats(struct memnode *mn, struct session *s, struct rmai_msg *r)
{
	uint32_t n = 0;
	struct session *t;

	for (t = mn->sessions; t; t = t->next)
		n++;
	r->stats.slab_size = htole64(mn->pool.slab_size);
	r->stats.nr_slabs = htole32(mn->pool.nr_slabs);
	r->stats.nr_free = htole32(mn->pool.nr_free);
	r->stats.nr_held = htole32(s->nr_held);
	r->stats.nr_sessions = htole32(n);
	r->stats.proto_errors = htole64(mn->proto_errors);
}

static void fill_desc(struct memnode *mn, uint32_t i, struct rmai_slab_desc *d)
{
	d->addr = htole64((uintptr_t)(mn->pool.base + (uint64_t)i * mn->pool.slab_size));
	d->rkey = htole32(mn->pool.mr[i]->rkey);
	d->index = htole32(i);
}

static enum rmai_status do_alloc(struct memnode *mn, struct session *s,
				 uint32_t count, struct rmai_msg *r)
{
	uint32_t got[RMAI_MSG_MAX_SLABS], i, n;
	int ret;

	if (count > mn->pool.nr_free)
		return RMAI_E_NOSPC;
	for (n = 0; n < count; n++) {
		ret = pool_grant(&mn->pool, s, &got[n]);
		if (ret) {
			while (n--)
				pool_reclaim(&mn->pool, got[n]);
			return ret == -ENOSPC ? RMAI_E_NOSPC : RMAI_E_INTERNAL;
		}
	}
	for (i = 0; i < count; i++)
		fill_desc(mn, got[i], &r->slabs.desc[i]);
	r->slabs.count = htole32(count);
	r->slabs.total = htole32(s->nr_held);
	return RMAI_OK;
}

static enum rmai_status do_release(struct memnode *mn, struct session *s,
				   const struct rmai_msg *m)
{
	uint32_t count = le32toh(m->release.count), i, idx;

	for (i = 0; i < count; i++) {	/* all or nothing */
		idx = le32toh(m->release.index[i]);
		if (idx >= mn->pool.nr_slabs || mn->pool.owner[idx] != s)
			return RMAI_E_NOENT;
	}
	for (i = 0; i < count; i++) {
		idx = le32toh(m->release.index[i]);
		if (mn->pool.owner[idx] == s)	/* an index may repeat */
			pool_reclaim(&mn->pool, idx);
	}
	return RMAI_OK;
}

static void do_list(struct memnode *mn, struct session *s, uint32_t start,
		    struct rmai_msg *r)
{
	uint32_t i, seen = 0, n = 0;

	for (i = 0; i < mn->pool.nr_slabs && n < RMAI_MSG_MAX_SLABS; i++) {
		if (mn->pool.owner[i] != s || seen++ < start)
			continue;
		fill_desc(mn, i, &r->slabs.desc[n++]);
	}
	r->slabs.count = htole32(n);
	r->slabs.total = htole32(s->nr_held);
}

static void log_lease(struct memnode *mn, struct session *s, const char *what,
		      uint32_t count)
{
	char hex[2 * RMAI_CLIENT_ID_LEN + 1];

	logmsg(LOG_INFO, "client %s %s %u slabs, holds %u, %u free",
	       hex_id(s->client_id, hex), what, count, s->nr_held, mn->pool.nr_free);
}

static void handle_msg(struct conn *c, int slot, uint32_t len)
{
	struct memnode *mn = c->mn;
	const struct rmai_msg *m = recv_buf(c, slot);
	struct rmai_msg *r = send_buf(c, slot);
	struct ibv_sge sge = {
		.addr = (uintptr_t)r, .length = RMAI_MSG_SIZE, .lkey = c->msgs_mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = WR_SEND | slot, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
	};
	struct ibv_send_wr *bad;
	enum rmai_status st;

	st = proto_check_msg(m, len);	/* a short SEND is malformed */
	proto_init_reply(r, m, st);
	if (st != RMAI_OK) {
		mn->proto_errors++;
		logmsg(LOG_WARNING, "bad control message (opcode %u): %s; closing that connection",
		       m->hdr.opcode, proto_status_name(st));
		c->closing = true;
	} else {
		switch (m->hdr.opcode) {
		case RMAI_OP_HELLO:
		case RMAI_OP_STATS:
			fill_stats(mn, c->session, r);
			break;
		case RMAI_OP_ALLOC:
			st = do_alloc(mn, c->session, le32toh(m->alloc.count), r);
			if (st == RMAI_OK)
				log_lease(mn, c->session, "leased", le32toh(m->alloc.count));
			break;
		case RMAI_OP_RELEASE:
			st = do_release(mn, c->session, m);
			if (st == RMAI_OK)
				log_lease(mn, c->session, "released", le32toh(m->release.count));
			break;
		case RMAI_OP_LIST:
			do_list(mn, c->session, le32toh(m->list.start), r);
			break;
		case RMAI_OP_KEEPALIVE:
			break;
		}
		r->hdr.status = htole16(st);
	}
	if (!c->closing && post_recv(c, slot))
		c->closing = true;
	if (ibv_post_send(c->id->qp, &wr, &bad))
		conn_close(c);
}

/**
 * conn_handle_cq() - control queue completions: re-arm, then drain.
 */
void conn_handle_cq(struct conn *c)
{
	struct ibv_cq *cq;
	struct ibv_wc wc;
	void *ctx;

	if (ibv_get_cq_event(c->channel, &cq, &ctx))
		return;
	ibv_ack_cq_events(cq, 1);
	if (ibv_req_notify_cq(cq, 0))
		goto disconnect;
	while (ibv_poll_cq(cq, 1, &wc) == 1) {
		if (wc.status != IBV_WC_SUCCESS) {
			/* A receive fails when the client sent what it may
			 * not, such as a message over RMAI_MSG_SIZE. */
			if (!(wc.wr_id & (WR_SEND | WR_PROBE)) &&
			    wc.status != IBV_WC_WR_FLUSH_ERR)
				c->mn->proto_errors++;
			if (wc.status != IBV_WC_WR_FLUSH_ERR)
				logmsg(LOG_WARNING, "control queue: %s",
				       ibv_wc_status_str(wc.status));
			goto disconnect;
		}
		if (wc.wr_id == WR_PROBE) {
			c->probing = false;
			continue;
		}
		if (wc.wr_id & WR_SEND) {
			if (c->closing)
				goto disconnect;
			continue;
		}
		handle_msg(c, wc.wr_id, wc.byte_len);
	}
	return;
disconnect:
	conn_close(c);
}

/*
 * conn_probe() - is the client of control queue @c still there? The memnode
 * sends nothing unasked, so a client that vanished without a disconnect (its
 * node crashed or was cut off) would hold its lease forever. A zero-length
 * RDMA WRITE needs no remote key (IBTA C9-88) and the client sees nothing of
 * it, but when nobody acknowledges it the queue pair's retries run out and
 * the completion fails; or, where retries never run out (rxe takes a retry
 * count of 7 as infinite), it is still pending PROBE_TIMEOUT seconds later.
 * Either way the queue is closed and the lease goes to grace.
 */
static void conn_probe(struct conn *c)
{
	struct ibv_send_wr wr = {
		.wr_id = WR_PROBE, .opcode = IBV_WR_RDMA_WRITE,
		.send_flags = IBV_SEND_SIGNALED,
	};
	struct ibv_send_wr *bad;
	char hex[2 * RMAI_CLIENT_ID_LEN + 1];

	if (!c->established || c->closing)
		return;
	if (c->probing) {
		if (c->mn->ticks - c->probe_tick < PROBE_TIMEOUT)
			return;
		logmsg(LOG_WARNING, "client %s does not answer; closing its control queue",
		       hex_id(c->session->client_id, hex));
		conn_close(c);
		return;
	}
	if (ibv_post_send(c->id->qp, &wr, &bad)) {
		conn_close(c);
		return;
	}
	c->probing = true;
	c->probe_tick = c->mn->ticks;
}

/**
 * sessions_tick() - once a second: reclaim expired leases, probe clients.
 */
void sessions_tick(struct memnode *mn)
{
	struct session *s;

	sessions_expire(mn, false);
	if (++mn->ticks % PROBE_INTERVAL)
		return;
	for (s = mn->sessions; s; s = s->next)
		if (s->ctrl)
			conn_probe(s->ctrl);
}

/* --- listening ------------------------------------------------------------- */

/**
 * cm_listen() - bind and listen on @addr:@port.
 * Return: 0, or -1 with @err set to a reason a user can act on.
 */
int cm_listen(struct memnode *mn, const char *addr, const char *port,
	      char *err, size_t errlen)
{
	struct rdma_addrinfo hints = {
		.ai_flags = RAI_PASSIVE | RAI_NUMERICHOST,
		.ai_port_space = RDMA_PS_TCP,
	};
	struct rdma_addrinfo *res;
	struct ibv_device **devs;
	int n, ret;

	devs = ibv_get_device_list(&n);
	if (devs)
		ibv_free_device_list(devs);
	if (!devs || !n) {
		snprintf(err, errlen, "no RDMA device found (load a NIC driver, or rdma_rxe for soft-RoCE)");
		return -1;
	}
	ret = rdma_getaddrinfo(addr, port, &hints, &res);
	if (ret) {
		snprintf(err, errlen, "bad listen address %s:%s", addr, port);
		return -1;
	}
	mn->cm_channel = rdma_create_event_channel();
	if (!mn->cm_channel)
		goto err_res;
	/* No context: ids of connect requests inherit it, conns set their own. */
	if (rdma_create_id(mn->cm_channel, &mn->listen_id, NULL, RDMA_PS_TCP))
		goto err_channel;
	if (rdma_bind_addr(mn->listen_id, res->ai_src_addr)) {
		snprintf(err, errlen, "cannot listen on %s:%s: %s%s", addr, port,
			 strerror(errno), errno == EADDRINUSE ? " (port in use)" :
			 errno == EADDRNOTAVAIL || errno == ENODEV ?
			 " (no RDMA device has that address)" : "");
		goto err_id_set;
	}
	if (rdma_listen(mn->listen_id, 64))
		goto err_id;
	rdma_freeaddrinfo(res);
	return 0;
err_id:
	snprintf(err, errlen, "cannot listen on %s:%s: %s", addr, port, strerror(errno));
err_id_set:
	rdma_destroy_id(mn->listen_id);
	mn->listen_id = NULL;
	rdma_destroy_event_channel(mn->cm_channel);
	mn->cm_channel = NULL;
	rdma_freeaddrinfo(res);
	return -1;
err_channel:
	rdma_destroy_event_channel(mn->cm_channel);
	mn->cm_channel = NULL;
err_res:
	snprintf(err, errlen, "rdma_cm: %s", strerror(errno));
	rdma_freeaddrinfo(res);
	return -1;
}

/* cm_shutdown() - every session and queue, then the listener. */
void cm_shutdown(struct memnode *mn)
{
	sessions_expire(mn, true);
	if (mn->listen_id)
		rdma_destroy_id(mn->listen_id);
	if (mn->cm_channel)
		rdma_destroy_event_channel(mn->cm_channel);
}
