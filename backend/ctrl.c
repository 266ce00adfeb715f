// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: the control protocol (rmai_proto.h, memnode/PROTOCOL.md) on queue 0
 * of a memnode: leasing slabs, listing them after a resume, releasing them,
 * keepalives. One request is in flight at a time: a RECV for the reply is
 * posted, then the SEND, and the caller sleeps until both complete. Control
 * traffic happens only at setup, recovery and teardown, and every
 * keepalive seconds: never on the I/O path.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/slab.h>

#include "reply.h"
#include "rmai.h"

static const char * const rmai_status_names[] = {
	[RMAI_OK]		= "ok",
	[RMAI_E_VERSION]	= "protocol version not supported",
	[RMAI_E_INVAL]		= "malformed request",
	[RMAI_E_NOSPC]		= "not enough free slabs",
	[RMAI_E_TOKEN]		= "unknown session or wrong lease token",
	[RMAI_E_BUSY]		= "a limit of the memnode was reached",
	[RMAI_E_NOENT]		= "slab not held by this session",
	[RMAI_E_INTERNAL]	= "memnode-side failure",
};

/**
 * rmai_status_name() - a memnode status for log lines
 * @status: &enum rmai_status as received
 *
 * Return: a constant string, never NULL.
 */
const char *rmai_status_name(unsigned int status)
{
	if (status < ARRAY_SIZE(rmai_status_names))
		return rmai_status_names[status];
	return "unknown status";
}

/**
 * rmai_status_errno() - the errno for a memnode status
 * @status: &enum rmai_status as received
 *
 * Return: 0 for RMAI_OK, else a negative errno; -ESTALE means the lease
 * token was refused, so the lease and its data are gone.
 */
int rmai_status_errno(unsigned int status)
{
	switch (status) {
	case RMAI_OK:
		return 0;
	case RMAI_E_VERSION:
		return -EPROTONOSUPPORT;
	case RMAI_E_NOSPC:
		return -ENOSPC;
	case RMAI_E_TOKEN:
		return -ESTALE;
	case RMAI_E_BUSY:
		return -EBUSY;
	case RMAI_E_NOENT:
		return -ENOENT;
	case RMAI_E_INVAL:
		return -EINVAL;
	default:
		return -EREMOTEIO;
	}
}

static void rmai_ctrl_send_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rmai_ctrl *ctrl = container_of(wc->wr_cqe, struct rmai_ctrl, send_cqe);

	ctrl->send_status = wc->status == IB_WC_SUCCESS ? 0 : -EIO;
	complete(&ctrl->send_done);
}

static void rmai_ctrl_recv_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rmai_ctrl *ctrl = container_of(wc->wr_cqe, struct rmai_ctrl, recv_cqe);

	if (unlikely(wc->status != IB_WC_SUCCESS))
		ctrl->recv_status = -EIO;
	else if (unlikely(wc->byte_len != RMAI_MSG_SIZE))
		ctrl->recv_status = -EPROTO;
	else
		ctrl->recv_status = 0;
	complete(&ctrl->recv_done);
}

/**
 * rmai_ctrl_init() - map the control buffers to the device of queue 0
 * @mn: a memnode whose queue 0 is connected
 *
 * Return: 0 or -ENOMEM.
 */
int rmai_ctrl_init(struct rmai_memnode *mn)
{
	struct rmai_ctrl *ctrl = &mn->ctrl;
	struct ib_device *ibdev = mn->queues[0].cm_id->device;

	ctrl->req_dma = ib_dma_map_single(ibdev, ctrl->req, RMAI_MSG_SIZE,
					  DMA_TO_DEVICE);
	if (ib_dma_mapping_error(ibdev, ctrl->req_dma))
		return -ENOMEM;
	ctrl->rep_dma = ib_dma_map_single(ibdev, ctrl->rep, RMAI_MSG_SIZE,
					  DMA_FROM_DEVICE);
	if (ib_dma_mapping_error(ibdev, ctrl->rep_dma)) {
		ib_dma_unmap_single(ibdev, ctrl->req_dma, RMAI_MSG_SIZE, DMA_TO_DEVICE);
		return -ENOMEM;
	}
	ctrl->send_cqe.done = rmai_ctrl_send_done;
	ctrl->recv_cqe.done = rmai_ctrl_recv_done;
	ctrl->mapped = true;
	return 0;
}

/**
 * rmai_ctrl_exit() - undo rmai_ctrl_init()
 * @mn: a memnode whose queue 0 is stopped but not yet freed
 */
void rmai_ctrl_exit(struct rmai_memnode *mn)
{
	struct rmai_ctrl *ctrl = &mn->ctrl;
	struct ib_device *ibdev = mn->queues[0].cm_id->device;

	if (!ctrl->mapped)
		return;
	ib_dma_unmap_single(ibdev, ctrl->rep_dma, RMAI_MSG_SIZE, DMA_FROM_DEVICE);
	ib_dma_unmap_single(ibdev, ctrl->req_dma, RMAI_MSG_SIZE, DMA_TO_DEVICE);
	ctrl->mapped = false;
}

/* A request body starts zeroed: reserved fields must be zero on the wire. */
static struct rmai_msg *rmai_ctrl_new(struct rmai_memnode *mn)
{
	lockdep_assert_held(&mn->ctrl.lock);
	memset(mn->ctrl.req, 0, RMAI_MSG_SIZE);
	return mn->ctrl.req;
}

/*
 * Send the request in ctrl->req with @opcode and wait for its reply in
 * ctrl->rep. Any failure but a status in the reply leaves the connection
 * unusable; the caller hands the memnode to recovery.
 */
static int rmai_ctrl_exchange(struct rmai_memnode *mn, u8 opcode)
{
	struct rmai_ctrl *ctrl = &mn->ctrl;
	struct rmai_queue *queue = &mn->queues[0];
	struct ib_device *ibdev = queue->cm_id->device;
	struct rmai_msg_hdr *req = &ctrl->req->hdr;
	const struct rmai_msg_hdr *rep = &ctrl->rep->hdr;
	struct ib_sge send_sge = {
		.addr = ctrl->req_dma, .length = RMAI_MSG_SIZE,
		.lkey = queue->pd->local_dma_lkey,
	};
	struct ib_sge recv_sge = {
		.addr = ctrl->rep_dma, .length = RMAI_MSG_SIZE,
		.lkey = queue->pd->local_dma_lkey,
	};
	struct ib_send_wr send_wr = {
		.wr_cqe = &ctrl->send_cqe, .sg_list = &send_sge, .num_sge = 1,
		.opcode = IB_WR_SEND, .send_flags = IB_SEND_SIGNALED,
	};
	struct ib_recv_wr recv_wr = {
		.wr_cqe = &ctrl->recv_cqe, .sg_list = &recv_sge, .num_sge = 1,
	};
	unsigned long timeout = msecs_to_jiffies(RMAI_CTRL_TIMEOUT_MS);
	int ret;

	lockdep_assert_held(&ctrl->lock);
	req->magic = cpu_to_le32(RMAI_PROTO_MAGIC);
	req->version = cpu_to_le16(RMAI_PROTO_VERSION);
	req->opcode = opcode;
	req->length = cpu_to_le16(RMAI_MSG_SIZE);
	req->seq = cpu_to_le32(++ctrl->seq);

	reinit_completion(&ctrl->send_done);
	reinit_completion(&ctrl->recv_done);
	ib_dma_sync_single_for_device(ibdev, ctrl->rep_dma, RMAI_MSG_SIZE,
				      DMA_FROM_DEVICE);
	ret = ib_post_recv(queue->qp, &recv_wr, NULL);
	if (ret)
		return ret;
	ib_dma_sync_single_for_device(ibdev, ctrl->req_dma, RMAI_MSG_SIZE,
				      DMA_TO_DEVICE);
	ret = ib_post_send(queue->qp, &send_wr, NULL);
	if (ret)
		return ret;
	if (!wait_for_completion_timeout(&ctrl->send_done, timeout) ||
	    !wait_for_completion_timeout(&ctrl->recv_done, timeout))
		return -ETIMEDOUT;
	if (ctrl->send_status)
		return ctrl->send_status;
	if (ctrl->recv_status)
		return ctrl->recv_status;
	ib_dma_sync_single_for_cpu(ibdev, ctrl->rep_dma, RMAI_MSG_SIZE,
				   DMA_FROM_DEVICE);
	if (le32_to_cpu(rep->magic) != RMAI_PROTO_MAGIC ||
	    le16_to_cpu(rep->version) != RMAI_PROTO_VERSION ||
	    rep->opcode != (opcode | RMAI_OP_REPLY) ||
	    le32_to_cpu(rep->seq) != ctrl->seq ||
	    le16_to_cpu(rep->length) != RMAI_MSG_SIZE) {
		pr_err("memnode %pISpc: malformed reply to opcode %u\n",
		       &mn->addr, opcode);
		return -EPROTO;
	}
	return rmai_status_errno(le16_to_cpu(rep->status));
}

/**
 * rmai_ctrl_hello() - the first message of a session
 * @mn: the memnode, queue 0 connected
 *
 * Return: 0 or a negative errno.
 */
int rmai_ctrl_hello(struct rmai_memnode *mn)
{
	int ret;

	mutex_lock(&mn->ctrl.lock);
	rmai_ctrl_new(mn);	/* auth: reserved, zero */
	ret = rmai_ctrl_exchange(mn, RMAI_OP_HELLO);
	mutex_unlock(&mn->ctrl.lock);
	return ret;
}

/* The slab descriptors of a reply, checked against @max and the pool. */
static int rmai_ctrl_copy_slabs(struct rmai_memnode *mn, u32 max, u32 *count,
				struct rmai_slab_info *desc)
{
	struct rmai_accept acc = { .slab_size = mn->slab_size, .nr_slabs = mn->pool_slabs };
	const char *why;
	int ret;

	ret = rmai_check_slabs(mn->ctrl.rep, max, &acc, desc, count, &why);
	if (ret)
		pr_err("memnode %pISpc: %s\n", &mn->addr, why);
	return ret;
}

/**
 * rmai_ctrl_alloc() - lease @count more slabs
 * @mn: the memnode
 * @count: 1..RMAI_MSG_MAX_SLABS
 * @desc: filled with the @count new slabs
 *
 * Return: 0, -ENOSPC when the memnode has too few free slabs, or another
 * negative errno.
 */
int rmai_ctrl_alloc(struct rmai_memnode *mn, u32 count,
		    struct rmai_slab_info *desc)
{
	struct rmai_msg *req;
	u32 got;
	int ret;

	mutex_lock(&mn->ctrl.lock);
	req = rmai_ctrl_new(mn);
	req->alloc.count = cpu_to_le32(count);
	ret = rmai_ctrl_exchange(mn, RMAI_OP_ALLOC);
	if (!ret)
		ret = rmai_ctrl_copy_slabs(mn, count, &got, desc);
	if (!ret && got != count)
		ret = -EPROTO;
	mutex_unlock(&mn->ctrl.lock);
	return ret;
}

/**
 * rmai_ctrl_release() - give slabs back to the memnode
 * @mn: the memnode
 * @count: 1..RMAI_MSG_MAX_SLABS
 * @index: the memnode's numbers of the slabs
 *
 * Return: 0 or a negative errno.
 */
int rmai_ctrl_release(struct rmai_memnode *mn, u32 count, const u32 *index)
{
	struct rmai_msg *req;
	u32 i;
	int ret;

	mutex_lock(&mn->ctrl.lock);
	req = rmai_ctrl_new(mn);
	req->release.count = cpu_to_le32(count);
	for (i = 0; i < count; i++)
		req->release.index[i] = cpu_to_le32(index[i]);
	ret = rmai_ctrl_exchange(mn, RMAI_OP_RELEASE);
	mutex_unlock(&mn->ctrl.lock);
	return ret;
}

/**
 * rmai_ctrl_list() - the slabs this session holds, from the @start-th on
 * @mn: the memnode
 * @start: how many to skip
 * @total: set to the number of slabs held
 * @count: set to the number of entries in @desc (0..RMAI_MSG_MAX_SLABS)
 * @desc: filled with up to RMAI_MSG_MAX_SLABS descriptors
 *
 * Return: 0 or a negative errno.
 */
int rmai_ctrl_list(struct rmai_memnode *mn, u32 start, u32 *total,
		   u32 *count, struct rmai_slab_info *desc)
{
	struct rmai_msg *req;
	int ret;

	mutex_lock(&mn->ctrl.lock);
	req = rmai_ctrl_new(mn);
	req->list.start = cpu_to_le32(start);
	ret = rmai_ctrl_exchange(mn, RMAI_OP_LIST);
	if (!ret) {
		*total = le32_to_cpu(mn->ctrl.rep->slabs.total);
		ret = rmai_ctrl_copy_slabs(mn, RMAI_MSG_MAX_SLABS, count, desc);
	}
	mutex_unlock(&mn->ctrl.lock);
	return ret;
}

/**
 * rmai_ctrl_keepalive() - prove the memnode and the path to it are alive
 * @mn: the memnode
 *
 * Return: 0 or a negative errno.
 */
int rmai_ctrl_keepalive(struct rmai_memnode *mn)
{
	int ret;

	mutex_lock(&mn->ctrl.lock);
	rmai_ctrl_new(mn);
	ret = rmai_ctrl_exchange(mn, RMAI_OP_KEEPALIVE);
	mutex_unlock(&mn->ctrl.lock);
	return ret;
}
