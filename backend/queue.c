// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: one rdma_cm connection to a memnode.
 *
 * A connect runs the rdma_cm state machine from its event handler: address
 * resolved -> PD, CQ and QP created -> route resolved -> connect with a
 * &struct rmai_cm_req -> ESTABLISHED (the accept carries a &struct
 * rmai_cm_rep) or REJECTED (the reject carries the memnode's status). The
 * handler only moves that machine on and completes queue->cm_done, which the
 * connecting thread waits for. Once connected, any event that ends the
 * connection hands the memnode to recovery (memnode.c).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <rdma/ib_cm.h>

#include "rmai.h"

#define RMAI_CTRL_SEND_WRS	2	/* one request, and room for a late one */
#define RMAI_CTRL_RECV_WRS	1	/* one reply */
#define RMAI_DRAIN_WRS		1	/* ib_drain_qp() posts one each way */
#define RMAI_MAX_RD_ATOMIC	16	/* RDMA READs in flight per QP */

/**
 * rmai_queue_send_wrs() - send queue size of @queue
 * @queue: the queue
 *
 * Only the last work request of a data request is signaled, so every work
 * request of every request in flight may occupy the send queue at once.
 *
 * Return: the number of send work requests to size the QP for.
 */
unsigned int rmai_queue_send_wrs(const struct rmai_queue *queue)
{
	const struct rmai_dev *dev = queue->mn->dev;
	unsigned int wb_slots = min(rmai_cfg.writeback_mb << (20 - PAGE_SHIFT),
				    RMAI_WB_MAX_SLOTS);

	if (!queue->qid)
		return RMAI_CTRL_SEND_WRS + RMAI_DRAIN_WRS;
	/* A request may chain a VMR fetch; staged writes outlive requests. */
	return rmai_cfg.queue_depth * (dev->wrs_per_cmd + dev->wrs_per_vmr) +
	       wb_slots * DIV_ROUND_UP(RMAI_WB_MAX_PAGES, dev->max_sge) +
	       RMAI_DRAIN_WRS;
}

static unsigned int rmai_queue_recv_wrs(const struct rmai_queue *queue)
{
	return (queue->qid ? 0 : RMAI_CTRL_RECV_WRS) + RMAI_DRAIN_WRS;
}

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
		rmai_memnode_error(queue->mn);
	}
}

/*
 * Every data queue uses the same SGE count per work request: the request
 * PDU is sized from it when the first queue of the device connects.
 */
static int rmai_queue_pick_sge(struct rmai_queue *queue)
{
	struct rmai_dev *dev = queue->mn->dev;
	unsigned int max_sge = queue->cm_id->device->attrs.max_send_sge;

	if (!queue->qid) {
		queue->max_sge = 1;
		return 0;
	}
	if (!dev->max_sge) {
		dev->max_sge = min(max_sge, RMAI_MAX_SGE);
		dev->wrs_per_cmd = DIV_ROUND_UP(RMAI_MAX_SEGMENTS, dev->max_sge);
		if (rmai_cfg.cache_mb)
			dev->wrs_per_vmr = DIV_ROUND_UP(dev->vmr_pages, dev->max_sge);
	}
	if (max_sge < dev->max_sge) {
		queue->cm_reason = "RDMA device allows fewer SGEs than the other queues";
		return -EINVAL;
	}
	queue->max_sge = dev->max_sge;
	return 0;
}

/* Protection domain, CQ and QP on the device the address resolved to. */
static int rmai_queue_create_ib(struct rmai_queue *queue)
{
	struct ib_device *ibdev = queue->cm_id->device;
	struct ib_qp_init_attr attr = {};
	unsigned int send_wrs, recv_wrs;
	int ret;

	ret = rmai_queue_pick_sge(queue);
	if (ret)
		return ret;
	send_wrs = rmai_queue_send_wrs(queue);
	recv_wrs = rmai_queue_recv_wrs(queue);
	if (send_wrs > ibdev->attrs.max_qp_wr) {
		queue->cm_reason = "queue_depth needs more work requests than the RDMA device has";
		return -EINVAL;
	}

	queue->pd = ib_alloc_pd(ibdev, 0);
	if (IS_ERR(queue->pd)) {
		ret = PTR_ERR(queue->pd);
		queue->pd = NULL;
		return ret;
	}

	queue->cq_size = send_wrs + recv_wrs;
	queue->cq = ib_cq_pool_get(ibdev, queue->cq_size, queue->qid, IB_POLL_SOFTIRQ);
	if (IS_ERR(queue->cq)) {
		ret = PTR_ERR(queue->cq);
		queue->cq = NULL;
		return ret;
	}

	attr.event_handler = rmai_qp_event;
	attr.qp_context = queue;
	attr.cap.max_send_wr = send_wrs;
	attr.cap.max_recv_wr = recv_wrs;
	attr.cap.max_send_sge = queue->max_sge;
	attr.cap.max_recv_sge = 1;
	attr.sq_sig_type = IB_SIGNAL_REQ_WR;
	attr.qp_type = IB_QPT_RC;
	attr.send_cq = queue->cq;
	attr.recv_cq = queue->cq;
	ret = rdma_create_qp(queue->cm_id, queue->pd, &attr);
	if (ret)
		return ret;
	queue->qp = queue->cm_id->qp;

	if (queue->qid) {
		queue->zero_dma = ib_dma_map_page(ibdev, ZERO_PAGE(0), 0, PAGE_SIZE,
						  DMA_TO_DEVICE);
		if (ib_dma_mapping_error(ibdev, queue->zero_dma)) {
			queue->zero_dma = 0;
			return -ENOMEM;
		}
	}
	return 0;
}

static int rmai_queue_addr_resolved(struct rmai_queue *queue)
{
	int ret;

	ret = rmai_queue_create_ib(queue);
	if (ret)
		return ret;
	return rdma_resolve_route(queue->cm_id,
				  jiffies_to_msecs(rmai_cfg.connect_timeout));
}

static int rmai_queue_route_resolved(struct rmai_queue *queue)
{
	struct rmai_memnode *mn = queue->mn;
	struct rmai_cm_req req = {
		.magic = cpu_to_le32(RMAI_PROTO_MAGIC),
		.version = cpu_to_le16(RMAI_PROTO_VERSION),
		.qid = cpu_to_le16(queue->qid),
		.token = cpu_to_le64(mn->token),
	};
	struct rdma_conn_param param = {
		.private_data = &req,
		.private_data_len = sizeof(req),
		.flow_control = 1,
		.retry_count = 7,
		.rnr_retry_count = 7,
	};

	memcpy(req.client_id, mn->dev->client_id, sizeof(req.client_id));
	/* Data queues issue RDMA READs: ask the memnode to serve some at once. */
	if (queue->qid)
		param.initiator_depth = min_t(u32, RMAI_MAX_RD_ATOMIC,
					      queue->cm_id->device->attrs.max_qp_init_rd_atom);
	return rdma_connect_locked(queue->cm_id, &param);
}

static int rmai_queue_established(struct rmai_queue *queue,
				  const struct rdma_conn_param *conn)
{
	const struct rmai_cm_rep *rep = conn->private_data;

	if (!rep || conn->private_data_len < sizeof(*rep) ||
	    le32_to_cpu(rep->magic) != RMAI_PROTO_MAGIC ||
	    le16_to_cpu(rep->version) != RMAI_PROTO_VERSION) {
		queue->cm_reason = "the accept is not an RMAI reply";
		return -EPROTO;
	}
	memcpy(&queue->rep, rep, sizeof(*rep));
	return 0;
}

static int rmai_queue_rejected(struct rmai_queue *queue,
			       struct rdma_cm_event *ev)
{
	const struct rmai_cm_rep *rep;
	u8 len = 0;

	rep = rdma_consumer_reject_data(queue->cm_id, ev, &len);
	if (rep && len >= sizeof(*rep) &&
	    le32_to_cpu(rep->magic) == RMAI_PROTO_MAGIC) {
		queue->cm_reason = rmai_status_name(le16_to_cpu(rep->status));
		return rmai_status_errno(le16_to_cpu(rep->status));
	}
	if (ev->status == IB_CM_REJ_INVALID_SERVICE_ID)
		queue->cm_reason = "nothing listens there (is rmai-memnoded running?)";
	else
		queue->cm_reason = rdma_reject_msg(queue->cm_id, ev->status);
	return -ECONNREFUSED;
}

static int rmai_cm_handler(struct rdma_cm_id *cm_id, struct rdma_cm_event *ev)
{
	struct rmai_queue *queue = cm_id->context;
	int cm_error = 0;

	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		cm_error = rmai_queue_addr_resolved(queue);
		break;
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		cm_error = rmai_queue_route_resolved(queue);
		break;
	case RDMA_CM_EVENT_ESTABLISHED:
		queue->cm_error = rmai_queue_established(queue, &ev->param.conn);
		complete(&queue->cm_done);
		return 0;
	case RDMA_CM_EVENT_REJECTED:
		cm_error = rmai_queue_rejected(queue, ev);
		break;
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
	case RDMA_CM_EVENT_CONNECT_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
		queue->cm_reason = rdma_event_msg(ev->event);
		cm_error = ev->status < 0 ? ev->status : -EHOSTUNREACH;
		break;
	case RDMA_CM_EVENT_DISCONNECTED:
	case RDMA_CM_EVENT_ADDR_CHANGE:
	case RDMA_CM_EVENT_TIMEWAIT_EXIT:
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		/* Recovery tears the queue down from its own work item. */
		rmai_memnode_error(queue->mn);
		break;
	default:
		pr_warn("memnode %pISpc queue %u: unexpected CM event %s\n",
			&queue->mn->addr, queue->qid, rdma_event_msg(ev->event));
		rmai_memnode_error(queue->mn);
		break;
	}
	if (cm_error) {
		queue->cm_error = cm_error;
		complete(&queue->cm_done);
	}
	return 0;
}

/**
 * rmai_queue_connect() - connect @queue to its memnode
 * @queue: the queue, torn down (no cm_id)
 *
 * Presents the memnode's lease token (0 opens a new session on queue 0).
 * On failure @queue->cm_reason says why, for the caller's log line, and
 * everything created is released.
 *
 * Return: 0, or a negative errno (-ESTALE: the lease token was refused).
 */
int rmai_queue_connect(struct rmai_queue *queue)
{
	struct rmai_memnode *mn = queue->mn;
	long left;
	int ret;

	init_completion(&queue->cm_done);
	queue->cm_error = 0;
	queue->cm_reason = NULL;
	queue->cm_id = rdma_create_id(&init_net, rmai_cm_handler, queue,
				      RDMA_PS_TCP, IB_QPT_RC);
	if (IS_ERR(queue->cm_id)) {
		ret = PTR_ERR(queue->cm_id);
		queue->cm_id = NULL;
		return ret;
	}
	ret = rdma_resolve_addr(queue->cm_id, NULL, (struct sockaddr *)&mn->addr,
				jiffies_to_msecs(rmai_cfg.connect_timeout));
	if (ret) {
		queue->cm_reason = "no RDMA device can reach that address";
		goto out_free;
	}
	left = wait_for_completion_timeout(&queue->cm_done,
					   rmai_cfg.connect_timeout);
	if (!left) {
		queue->cm_reason = "timed out";
		ret = -ETIMEDOUT;
		goto out_free;
	}
	ret = queue->cm_error;
	if (ret)
		goto out_free;
	return 0;

out_free:
	rmai_queue_free(queue);
	return ret;
}

/**
 * rmai_queue_stop() - disconnect @queue and flush its work requests
 * @queue: the queue
 *
 * When this returns, every work request posted on @queue has completed
 * (flushed ones with an error status), and its completion handler ran.
 */
void rmai_queue_stop(struct rmai_queue *queue)
{
	if (!queue->cm_id)
		return;
	rdma_disconnect(queue->cm_id);
	if (queue->qp)
		ib_drain_qp(queue->qp);
}

/**
 * rmai_queue_free() - release everything rmai_queue_connect() created
 * @queue: the queue, stopped or never connected
 *
 * The cm_id goes first, so that its handler no longer runs, then the
 * verbs objects in the reverse order of their creation.
 */
void rmai_queue_free(struct rmai_queue *queue)
{
	struct ib_device *ibdev;

	if (!queue->cm_id)
		return;
	ibdev = queue->cm_id->device;
	rdma_destroy_id(queue->cm_id);
	queue->cm_id = NULL;
	if (queue->zero_dma)
		ib_dma_unmap_page(ibdev, queue->zero_dma, PAGE_SIZE, DMA_TO_DEVICE);
	queue->zero_dma = 0;
	if (queue->qp)
		ib_destroy_qp(queue->qp);
	queue->qp = NULL;
	if (queue->cq)
		ib_cq_pool_put(queue->cq, queue->cq_size);
	queue->cq = NULL;
	if (queue->pd)
		ib_dealloc_pd(queue->pd);
	queue->pd = NULL;
}
