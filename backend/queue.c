// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: one rdma_cm connection to a memnode.
 *
 * The connecting thread runs each step of rdma_cm itself and waits for its
 * event: resolve the address, create the PD, CQ and QP, resolve the route,
 * connect with a &struct rmai_cm_req, then ESTABLISHED (the accept carries
 * a &struct rmai_cm_rep) or REJECTED (the reject carries the memnode's
 * status). So every allocation of a connect happens in the caller's context,
 * under the memalloc_noio scope recovery holds while swap may wait on this
 * memnode; the event handler only records the event and wakes the caller.
 * Once connected, any event that ends the connection calls queue->lost.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <rdma/ib_cm.h>

#include "rmai.h"

#define RMAI_CTRL_SEND_WRS	2	/* one request, and room for a late one */
#define RMAI_CTRL_RECV_WRS	1	/* one reply */
#define RMAI_DRAIN_WRS		1	/* ib_drain_qp() posts one each way */
#define RMAI_DATA_SEND_WRS	512	/* credits of a data queue, at most */
#define RMAI_MAX_RD_ATOMIC	16	/* RDMA READs in flight per QP */

static void rmai_qp_event(struct ib_event *ev, void *context)
{
	struct rmai_queue *queue = context;

	switch (ev->event) {
	case IB_EVENT_COMM_EST:
	case IB_EVENT_SQ_DRAINED:
	case IB_EVENT_QP_LAST_WQE_REACHED:
		break;
	default:
		pr_warn("memnode %pISpc queue %u: QP event %s\n",
			&queue->mn->addr, queue->qid, ib_event_msg(ev->event));
		queue->lost(queue);
	}
}

/* What the device allows, for the limits the queue asks for. */
static int rmai_queue_limits(struct rmai_queue *queue, struct ib_device *ibdev)
{
	const struct ib_device_attr *attrs = &ibdev->attrs;

	/*
	 * READ sinks use the PD's local DMA lkey: iWARP wants a registered
	 * MR with remote write access there (rdma_rw_io_needs_mr()).
	 */
	if (rdma_protocol_iwarp(ibdev, queue->cm_id->port_num)) {
		queue->cm_reason = "iWARP needs registered READ sinks, which rmai does not use";
		return -EOPNOTSUPP;
	}
	if (!queue->qid) {
		queue->lim = (struct rmai_queue_limits){
			.sge_write = 1, .sge_read = 1, .send_wrs = RMAI_CTRL_SEND_WRS,
		};
		return 0;
	}
	queue->lim.sge_write = min_t(unsigned int, attrs->max_send_sge, RMAI_MAX_SGE);
	queue->lim.sge_read = min_t(unsigned int, attrs->max_sge_rd, RMAI_MAX_SGE);
	queue->lim.send_wrs = min_t(unsigned int, attrs->max_qp_wr - RMAI_DRAIN_WRS,
				    RMAI_DATA_SEND_WRS);
	if (!queue->lim.sge_write || !queue->lim.sge_read || queue->lim.send_wrs < 8) {
		queue->cm_reason = "the RDMA device allows too few SGEs or work requests";
		return -EINVAL;
	}
	return 0;
}

/* Protection domain, CQ and QP on the device the address resolved to. */
static int rmai_queue_create_ib(struct rmai_queue *queue)
{
	struct ib_device *ibdev = queue->cm_id->device;
	unsigned int recv_wrs = (queue->qid ? 0 : RMAI_CTRL_RECV_WRS) + RMAI_DRAIN_WRS;
	struct ib_qp_init_attr attr = {};
	int ret;

	ret = rmai_queue_limits(queue, ibdev);
	if (ret)
		return ret;
	queue->credits = queue->lim.send_wrs;

	queue->pd = ib_alloc_pd(ibdev, 0);
	if (IS_ERR(queue->pd)) {
		ret = PTR_ERR(queue->pd);
		queue->pd = NULL;
		return ret;
	}
	queue->cq_size = queue->lim.send_wrs + RMAI_DRAIN_WRS + recv_wrs;
	queue->cq = ib_cq_pool_get(ibdev, queue->cq_size, queue->qid, IB_POLL_SOFTIRQ);
	if (IS_ERR(queue->cq)) {
		ret = PTR_ERR(queue->cq);
		queue->cq = NULL;
		return ret;
	}
	attr.event_handler = rmai_qp_event;
	attr.qp_context = queue;
	attr.cap.max_send_wr = queue->lim.send_wrs + RMAI_DRAIN_WRS;
	attr.cap.max_recv_wr = recv_wrs;
	attr.cap.max_send_sge = max(queue->lim.sge_write, queue->lim.sge_read);
	attr.cap.max_recv_sge = 1;
	attr.sq_sig_type = IB_SIGNAL_REQ_WR;
	attr.qp_type = IB_QPT_RC;
	attr.send_cq = queue->cq;
	attr.recv_cq = queue->cq;
	ret = rdma_create_qp(queue->cm_id, queue->pd, &attr);
	if (ret)
		return ret;
	queue->qp = queue->cm_id->qp;
	return 0;
}

/* A reject: the memnode's status, or why nobody answered. */
static void rmai_queue_rejected(struct rmai_queue *queue, struct rdma_cm_event *ev)
{
	const struct rmai_cm_rep *rep;
	u8 len = 0;

	rep = rdma_consumer_reject_data(queue->cm_id, ev, &len);
	if (rep && len >= sizeof(*rep) && le32_to_cpu(rep->magic) == RMAI_PROTO_MAGIC) {
		memcpy(&queue->rep, rep, sizeof(*rep));
		queue->rep_len = sizeof(*rep);
		return;
	}
	if (ev->status == IB_CM_REJ_INVALID_SERVICE_ID)
		queue->cm_reason = "nothing listens there (is rmai-memnoded running?)";
	else
		queue->cm_reason = rdma_reject_msg(queue->cm_id, ev->status);
}

static int rmai_cm_handler(struct rdma_cm_id *cm_id, struct rdma_cm_event *ev)
{
	struct rmai_queue *queue = cm_id->context;

	if (queue->connected) {
		/* Whatever comes now ends the connection: recovery tears it down. */
		if (ev->event != RDMA_CM_EVENT_ESTABLISHED)
			queue->lost(queue);
		return 0;
	}
	queue->cm_event = ev->event;
	queue->cm_status = ev->status;
	switch (ev->event) {
	case RDMA_CM_EVENT_ESTABLISHED:
		queue->rep_len = min_t(u8, ev->param.conn.private_data_len, sizeof(queue->rep));
		if (ev->param.conn.private_data)
			memcpy(&queue->rep, ev->param.conn.private_data, queue->rep_len);
		queue->connected = true;
		break;
	case RDMA_CM_EVENT_REJECTED:
		rmai_queue_rejected(queue, ev);
		break;
	default:
		break;
	}
	complete(&queue->cm_done);
	return 0;
}

/*
 * Wait for the event of one connect step; anything but @want fails it.
 * Return: 0 or a negative errno, with queue->cm_reason set.
 */
static int rmai_queue_wait(struct rmai_queue *queue, enum rdma_cm_event_type want,
			   unsigned long timeout)
{
	if (!wait_for_completion_timeout(&queue->cm_done, timeout)) {
		queue->cm_reason = "timed out";
		return -ETIMEDOUT;
	}
	reinit_completion(&queue->cm_done);
	if (queue->cm_event == want)
		return 0;
	if (queue->cm_event == RDMA_CM_EVENT_REJECTED)
		return queue->rep_len ? -EREMOTEIO : -ECONNREFUSED;
	queue->cm_reason = rdma_event_msg(queue->cm_event);
	return queue->cm_status < 0 ? queue->cm_status : -EHOSTUNREACH;
}

/**
 * rmai_queue_connect() - connect @queue to a memnode
 * @queue: the queue, torn down (no cm_id), its @mn, @qid and @lost set
 * @addr: the memnode's address
 * @req: the connect request's private data
 * @timeout: jiffies each step may take
 *
 * On success @queue->rep holds the accept's private data (@rep_len bytes)
 * for the caller to check; on a reject by the memnode, -EREMOTEIO with its
 * reply in @queue->rep. Otherwise @queue->cm_reason says why, for the
 * caller's log line. Anything created is released on failure.
 *
 * Return: 0 or a negative errno.
 */
int rmai_queue_connect(struct rmai_queue *queue, const struct sockaddr *addr,
		       const struct rmai_cm_req *req, unsigned long timeout)
{
	struct rdma_conn_param param = {
		.private_data = req,
		.private_data_len = sizeof(*req),
		.flow_control = 1,
		.retry_count = 7,
		.rnr_retry_count = 7,
	};
	unsigned int ms = jiffies_to_msecs(timeout);
	int ret;

	init_completion(&queue->cm_done);
	spin_lock_init(&queue->post_lock);
	INIT_LIST_HEAD(&queue->backlog);
	queue->cm_reason = NULL;
	queue->rep_len = 0;
	queue->connected = false;
	queue->cm_id = rdma_create_id(&init_net, rmai_cm_handler, queue,
				      RDMA_PS_TCP, IB_QPT_RC);
	if (IS_ERR(queue->cm_id)) {
		ret = PTR_ERR(queue->cm_id);
		queue->cm_id = NULL;
		return ret;
	}
	ret = rdma_resolve_addr(queue->cm_id, NULL, (struct sockaddr *)addr, ms);
	if (ret) {
		queue->cm_reason = "no RDMA device can reach that address";
		goto out_free;
	}
	ret = rmai_queue_wait(queue, RDMA_CM_EVENT_ADDR_RESOLVED, timeout + HZ);
	if (ret)
		goto out_free;
	ret = rmai_queue_create_ib(queue);
	if (ret)
		goto out_free;
	ret = rdma_resolve_route(queue->cm_id, ms);
	if (ret)
		goto out_free;
	ret = rmai_queue_wait(queue, RDMA_CM_EVENT_ROUTE_RESOLVED, timeout + HZ);
	if (ret)
		goto out_free;
	/* Data queues issue RDMA READs: ask the memnode to serve some at once. */
	if (queue->qid)
		param.initiator_depth = min_t(u32, RMAI_MAX_RD_ATOMIC,
					      queue->cm_id->device->attrs.max_qp_init_rd_atom);
	ret = rdma_connect(queue->cm_id, &param);
	if (ret)
		goto out_free;
	ret = rmai_queue_wait(queue, RDMA_CM_EVENT_ESTABLISHED, timeout);
	if (ret)
		goto out_free;
	queue->live = true;
	return 0;

out_free:
	rmai_queue_free(queue);
	return ret;
}

/**
 * rmai_queue_stop() - disconnect @queue and flush its work
 * @queue: the queue
 *
 * When this returns, every work request posted on @queue has completed
 * (flushed ones with an error status), its completion handlers ran, and the
 * transfers still waiting for credits were failed.
 */
void rmai_queue_stop(struct rmai_queue *queue)
{
	if (!queue->cm_id)
		return;
	rmai_xfer_stop(queue);
	rdma_disconnect(queue->cm_id);
	if (queue->qp) {
		ib_drain_qp(queue->qp);
		rmai_xfer_flush(queue);
	}
}

/**
 * rmai_queue_free() - release everything rmai_queue_connect() created
 * @queue: the queue, stopped or never connected
 *
 * In the reverse order of creation: the QP, the CQ and the PD, then the
 * cm_id (whose handler may run until then, and touches none of them).
 */
void rmai_queue_free(struct rmai_queue *queue)
{
	if (!queue->cm_id)
		return;
	if (queue->qp)
		rdma_destroy_qp(queue->cm_id);
	queue->qp = NULL;
	if (queue->cq)
		ib_cq_pool_put(queue->cq, queue->cq_size);
	queue->cq = NULL;
	if (queue->pd)
		ib_dealloc_pd(queue->pd);
	queue->pd = NULL;
	rdma_destroy_id(queue->cm_id);
	queue->cm_id = NULL;
	queue->connected = false;
}
