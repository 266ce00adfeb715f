// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: the blk-mq device. A request lies within one slab (chunk_sectors is
 * the slab size), so it becomes one run of remote memory on one memnode:
 * its pages are DMA-mapped and sent as a chain of RDMA WRITEs or READs of at
 * most max_sge SGEs each, on the data queue of that memnode that serves the
 * request's hardware queue. Only the last work request is signaled; its
 * completion completes the request. Nothing is allocated per request: the
 * scatterlist, SGEs and work requests live in the request's PDU.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/module.h>

#include "compat.h"
#include "rmai.h"

/**
 * struct rmai_cmd - per-request state, the blk-mq PDU
 * @cqe: completion of the last (signaled) work request
 * @queue: the queue the request was posted on
 * @nents: DMA-mapped scatterlist entries; 0 when nothing is mapped
 * @retries: requeues after a failed work request
 * @status: the request's result
 * @start_ns: when it was posted, for the latency histogram
 * @wrs: [rmai_dev.wrs_per_cmd] work requests
 * @sges: [RMAI_MAX_SEGMENTS] their SGEs
 * @sgl: [RMAI_MAX_SEGMENTS] the request's pages
 */
struct rmai_cmd {
	struct ib_cqe cqe;
	struct rmai_queue *queue;
	int nents;
	u8 retries;
	blk_status_t status;
	u64 start_ns;
	struct ib_rdma_wr *wrs;
	struct ib_sge *sges;
	struct scatterlist sgl[];
};

static enum rmai_io rmai_io_class(struct request *rq)
{
	switch (req_op(rq)) {
	case REQ_OP_READ:
		return RMAI_IO_READ;
	case REQ_OP_WRITE:
		return RMAI_IO_WRITE;
	case REQ_OP_DISCARD:
		return RMAI_IO_DISCARD;
	case REQ_OP_WRITE_ZEROES:
		return RMAI_IO_WRITE_ZEROES;
	default:
		return RMAI_IO_FLUSH;
	}
}

/* Count a finished request; this_cpu ops are safe from any context. */
static void rmai_account(struct rmai_dev *dev, struct request *rq,
			 blk_status_t status)
{
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);
	enum rmai_io io = rmai_io_class(rq);
	u64 us;
	int b;

	if (unlikely(status)) {
		this_cpu_inc(dev->stats->errors);
		return;
	}
	this_cpu_inc(dev->stats->ops[io]);
	this_cpu_add(dev->stats->bytes[io], blk_rq_bytes(rq));
	if (io != RMAI_IO_READ && io != RMAI_IO_WRITE)
		return;
	us = div_u64(ktime_get_ns() - cmd->start_ns, NSEC_PER_USEC);
	b = us ? min_t(int, ilog2(us) + 1, RMAI_LAT_BUCKETS - 1) : 0;
	this_cpu_inc(dev->stats->lat[io][b]);
}

/* The slab of a request, or NULL when it leaves the device or its slab. */
static struct rmai_slab *rmai_slab_of(struct rmai_dev *dev, u64 pos, u32 len)
{
	u64 slab_mask = (1ULL << dev->slab_shift) - 1;

	if (unlikely(pos + len > dev->size || !len ||
		     (pos & slab_mask) + len > slab_mask + 1))
		return NULL;
	return &dev->slabs[pos >> dev->slab_shift];
}

/*
 * Whether @mn can take a request now: BLK_STS_RESOURCE has blk-mq retry it
 * shortly, while the memnode reconnects and io_timeout has not run out.
 */
static blk_status_t rmai_memnode_ready(struct rmai_memnode *mn)
{
	switch (smp_load_acquire(&mn->state)) {	/* then down_since */
	case RMAI_MN_CONNECTED:
		return BLK_STS_OK;
	case RMAI_MN_RECONNECTING:
		if (time_before(jiffies, READ_ONCE(mn->down_since) + rmai_cfg.io_timeout))
			return BLK_STS_RESOURCE;
		fallthrough;
	default:
		return BLK_STS_IOERR;
	}
}

static void rmai_unmap(struct ib_device *ibdev, struct request *rq)
{
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);

	if (!cmd->nents)
		return;
	ib_dma_unmap_sg(ibdev, cmd->sgl, cmd->nents, rq_dma_dir(rq));
	cmd->nents = 0;
}

/*
 * The completion of an unsignaled work request: only errors get here. The
 * request completes with its last work request, which is flushed after it.
 */
static void rmai_unsignaled_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rmai_queue *queue = wc->qp->qp_context;

	if (wc->status != IB_WC_WR_FLUSH_ERR)
		pr_err_ratelimited("memnode %pISpc queue %u: RDMA failed: %s\n",
				   &queue->mn->addr, queue->qid,
				   ib_wc_status_msg(wc->status));
	rmai_memnode_error(queue->mn);
}

static struct ib_cqe rmai_unsignaled_cqe = { .done = rmai_unsignaled_done };

static void rmai_rdma_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rmai_cmd *cmd = container_of(wc->wr_cqe, struct rmai_cmd, cqe);
	struct request *rq = blk_mq_rq_from_pdu(cmd);

	/* Unmap here: the queue's teardown waits for this handler, not for ->complete. */
	rmai_unmap(cq->device, rq);
	this_cpu_inc(cmd->queue->mn->dev->stats->finished);
	if (unlikely(wc->status != IB_WC_SUCCESS)) {
		rmai_unsignaled_done(cq, wc);
		/* A retry reaches the memnode again once it is back. */
		if (cmd->retries++ < RMAI_MAX_RETRIES) {
			this_cpu_inc(cmd->queue->mn->dev->stats->requeues);
			blk_mq_requeue_request(rq, true);
			return;
		}
		cmd->status = BLK_STS_IOERR;
	}
	blk_mq_complete_request(rq);
}

static void rmai_complete_rq(struct request *rq)
{
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct rmai_dev *dev = rq->q->queuedata;

	rmai_account(dev, rq, cmd->status);
	blk_mq_end_request(rq, cmd->status);
}

/* SGEs for the request's pages, DMA-mapped to the queue's device. */
static int rmai_map_pages(struct rmai_queue *queue, struct request *rq,
			  struct rmai_cmd *cmd)
{
	struct ib_device *ibdev = queue->cm_id->device;
	struct scatterlist *sg;
	int nr, i;

	nr = blk_rq_map_sg(rq->q, rq, cmd->sgl);
	cmd->nents = ib_dma_map_sg(ibdev, cmd->sgl, nr, rq_dma_dir(rq));
	if (unlikely(cmd->nents <= 0)) {
		cmd->nents = 0;
		return -EIO;
	}
	for_each_sg(cmd->sgl, sg, cmd->nents, i) {
		cmd->sges[i].addr = sg_dma_address(sg);
		cmd->sges[i].length = sg_dma_len(sg);
		cmd->sges[i].lkey = queue->pd->local_dma_lkey;
	}
	return cmd->nents;
}

/* WRITE_ZEROES: one SGE per page, every one the queue's mapped zero page. */
static int rmai_map_zeroes(struct rmai_queue *queue, struct request *rq,
			   struct rmai_cmd *cmd)
{
	int nr = blk_rq_bytes(rq) >> PAGE_SHIFT, i;

	for (i = 0; i < nr; i++) {
		cmd->sges[i].addr = queue->zero_dma;
		cmd->sges[i].length = PAGE_SIZE;
		cmd->sges[i].lkey = queue->pd->local_dma_lkey;
	}
	return nr;
}

/* Chain @nr_sge SGEs into RDMA work requests over one run of remote memory. */
static void rmai_build_wrs(struct rmai_cmd *cmd, enum ib_wr_opcode opcode,
			   int nr_sge, u64 remote_addr, u32 rkey)
{
	unsigned int max_sge = cmd->queue->max_sge;
	struct ib_rdma_wr *wr = cmd->wrs;
	int i, s, n;

	for (s = 0; s < nr_sge; s += n, wr++) {
		n = min_t(int, nr_sge - s, max_sge);
		wr->wr.opcode = opcode;
		wr->wr.sg_list = &cmd->sges[s];
		wr->wr.num_sge = n;
		wr->remote_addr = remote_addr;
		wr->rkey = rkey;
		for (i = s; i < s + n; i++)
			remote_addr += cmd->sges[i].length;
		if (s + n < nr_sge) {
			wr->wr.wr_cqe = &rmai_unsignaled_cqe;
			wr->wr.send_flags = 0;
			wr->wr.next = &wr[1].wr;
		} else {
			wr->wr.wr_cqe = &cmd->cqe;
			wr->wr.send_flags = IB_SEND_SIGNALED;
			wr->wr.next = NULL;
		}
	}
}

static blk_status_t rmai_post(struct rmai_queue *queue, struct request *rq,
			      struct rmai_cmd *cmd, const struct rmai_slab *slab,
			      u64 offset)
{
	enum ib_wr_opcode opcode;
	int nr_sge, ret;

	if (req_op(rq) == REQ_OP_WRITE_ZEROES) {
		nr_sge = rmai_map_zeroes(queue, rq, cmd);
		opcode = IB_WR_RDMA_WRITE;
	} else {
		nr_sge = rmai_map_pages(queue, rq, cmd);
		if (unlikely(nr_sge < 0)) {
			this_cpu_inc(queue->mn->dev->stats->errors);
			return BLK_STS_IOERR;
		}
		opcode = rq_data_dir(rq) == WRITE ? IB_WR_RDMA_WRITE : IB_WR_RDMA_READ;
	}
	cmd->queue = queue;
	rmai_build_wrs(cmd, opcode, nr_sge, slab->addr + offset, slab->rkey);
	cmd->start_ns = ktime_get_ns();
	this_cpu_inc(queue->mn->dev->stats->started);
	ret = ib_post_send(queue->qp, &cmd->wrs[0].wr, NULL);
	if (unlikely(ret)) {
		/* The QP is broken: recover, and retry the request afterwards. */
		this_cpu_inc(queue->mn->dev->stats->finished);
		pr_err_ratelimited("memnode %pISpc queue %u: cannot post (%pe)\n",
				   &queue->mn->addr, queue->qid, ERR_PTR(ret));
		rmai_unmap(queue->cm_id->device, rq);
		rmai_memnode_error(queue->mn);
		return BLK_STS_RESOURCE;
	}
	return BLK_STS_OK;
}

/* FLUSH and DISCARD end here: remote memory has no cache, and no map yet. */
static blk_status_t rmai_end_now(struct rmai_dev *dev, struct request *rq)
{
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);

	blk_mq_start_request(rq);
	cmd->start_ns = ktime_get_ns();
	rmai_account(dev, rq, BLK_STS_OK);
	blk_mq_end_request(rq, BLK_STS_OK);
	return BLK_STS_OK;
}

static blk_status_t rmai_queue_rq(struct blk_mq_hw_ctx *hctx,
				  const struct blk_mq_queue_data *bd)
{
	struct rmai_dev *dev = hctx->queue->queuedata;
	struct request *rq = bd->rq;
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	struct rmai_slab *slab;
	blk_status_t ret;

	if (!(rq->rq_flags & RQF_DONTPREP)) {	/* first dispatch, not a requeue */
		rq->rq_flags |= RQF_DONTPREP;
		cmd->retries = 0;
	}
	cmd->status = BLK_STS_OK;
	switch (req_op(rq)) {
	case REQ_OP_FLUSH:
	case REQ_OP_DISCARD:
		return rmai_end_now(dev, rq);
	case REQ_OP_READ:
	case REQ_OP_WRITE:
	case REQ_OP_WRITE_ZEROES:
		break;
	default:
		return BLK_STS_NOTSUPP;
	}

	slab = rmai_slab_of(dev, pos, blk_rq_bytes(rq));
	if (unlikely(!slab)) {
		pr_err_ratelimited("%s: request at %llu of %u bytes is outside the device or crosses a slab\n",
				   dev->disk->disk_name, pos, blk_rq_bytes(rq));
		this_cpu_inc(dev->stats->errors);
		return BLK_STS_IOERR;
	}
	ret = rmai_memnode_ready(slab->mn);
	if (ret) {
		if (ret == BLK_STS_IOERR)
			this_cpu_inc(dev->stats->errors);
		return ret;
	}
	blk_mq_start_request(rq);
	return rmai_post(&slab->mn->queues[1 + hctx->queue_num], rq, cmd, slab,
			 pos & ((1ULL << dev->slab_shift) - 1));
}

/*
 * A request outlived the block layer's timeout: its memnode is not
 * answering. Recovery flushes the request (which requeues it, or fails it
 * once io_timeout has passed); until then, keep waiting.
 */
static enum blk_eh_timer_return rmai_timeout(struct request *rq)
{
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);

	pr_warn_ratelimited("memnode %pISpc queue %u: request timed out\n",
			    &cmd->queue->mn->addr, cmd->queue->qid);
	rmai_memnode_error(cmd->queue->mn);
	return BLK_EH_RESET_TIMER;
}

static int rmai_init_request(struct blk_mq_tag_set *set, struct request *rq,
			     unsigned int hctx_idx, unsigned int numa_node)
{
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);

	cmd->cqe.done = rmai_rdma_done;
	cmd->sges = (struct ib_sge *)(cmd->sgl + RMAI_MAX_SEGMENTS);
	cmd->wrs = (struct ib_rdma_wr *)(cmd->sges + RMAI_MAX_SEGMENTS);
	sg_init_table(cmd->sgl, RMAI_MAX_SEGMENTS);
	return 0;
}

static const struct blk_mq_ops rmai_mq_ops = {
	.queue_rq	= rmai_queue_rq,
	.complete	= rmai_complete_rq,
	.timeout	= rmai_timeout,
	.init_request	= rmai_init_request,
};

static const struct block_device_operations rmai_fops = {
	.owner		= THIS_MODULE,
};

/* The same, but telling 6.1's swap that the disk is synchronous (compat.h). */
static const struct block_device_operations rmai_sync_fops = {
	.owner		= THIS_MODULE,
	RMAI_FOPS_SYNCHRONOUS
};

/**
 * rmai_blk_alloc() - the tag set and the disk, not yet added
 * @dev: a device whose memnodes are connected and slabs leased
 *
 * Return: 0 or a negative errno, with nothing left allocated.
 */
int rmai_blk_alloc(struct rmai_dev *dev)
{
	struct blk_mq_tag_set *set = &dev->tag_set;
	struct queue_limits lim = {
		.logical_block_size	= RMAI_BLOCK_SIZE,
		.physical_block_size	= RMAI_BLOCK_SIZE,
		.io_min			= RMAI_BLOCK_SIZE,
		.max_hw_sectors		= RMAI_MAX_IO_BYTES >> SECTOR_SHIFT,
		.chunk_sectors		= 1U << (dev->slab_shift - SECTOR_SHIFT),
		.max_segments		= RMAI_MAX_SEGMENTS,
		.max_segment_size	= UINT_MAX,
		.max_hw_discard_sectors	= UINT_MAX,
		.discard_granularity	= RMAI_BLOCK_SIZE,
		.max_write_zeroes_sectors = RMAI_MAX_SEGMENTS << (PAGE_SHIFT - SECTOR_SHIFT),
	};
	struct gendisk *disk;
	int ret;

	set->ops = &rmai_mq_ops;
	set->nr_hw_queues = rmai_cfg.nr_queues;
	set->queue_depth = rmai_cfg.queue_depth;
	set->numa_node = NUMA_NO_NODE;
	set->cmd_size = sizeof(struct rmai_cmd) +
			RMAI_MAX_SEGMENTS * (sizeof(struct scatterlist) +
					     sizeof(struct ib_sge)) +
			dev->wrs_per_cmd * sizeof(struct ib_rdma_wr);
	set->timeout = rmai_cfg.io_timeout;
	set->flags = BLK_MQ_F_SHOULD_MERGE;
	set->driver_data = dev;
	ret = blk_mq_alloc_tag_set(set);
	if (ret)
		return ret;

	disk = rmai_alloc_disk(set, &lim, rmai_cfg.synchronous, dev);
	if (IS_ERR(disk)) {
		ret = PTR_ERR(disk);
		goto out_free_tag_set;
	}
	disk->major = rmai_major;
	disk->first_minor = dev->id;
	disk->minors = 1;
	disk->flags |= GENHD_FL_NO_PART;
	disk->fops = rmai_cfg.synchronous ? &rmai_sync_fops : &rmai_fops;
	disk->private_data = dev;
	snprintf(disk->disk_name, DISK_NAME_LEN, "rmai%d", dev->id);
	set_capacity(disk, dev->size >> SECTOR_SHIFT);
	dev->disk = disk;
	return 0;

out_free_tag_set:
	blk_mq_free_tag_set(set);
	return ret;
}

/**
 * rmai_blk_add() - make /dev/rmaiN visible, with its sysfs files
 * @dev: a device from rmai_blk_alloc() whose memnodes are live
 *
 * Return: 0 or a negative errno.
 */
int rmai_blk_add(struct rmai_dev *dev)
{
	return device_add_disk(NULL, dev->disk, rmai_disk_groups);
}

/**
 * rmai_blk_del() - undo rmai_blk_add(): no I/O is left when it returns
 * @dev: the device
 */
void rmai_blk_del(struct rmai_dev *dev)
{
	del_gendisk(dev->disk);
}

/**
 * rmai_blk_free() - undo rmai_blk_alloc()
 * @dev: the device
 */
void rmai_blk_free(struct rmai_dev *dev)
{
	put_disk(dev->disk);
	dev->disk = NULL;
	blk_mq_free_tag_set(&dev->tag_set);
}

/**
 * rmai_blk_kick() - dispatch requests that wait for a memnode now
 * @dev: the device, after one of its memnodes changed state
 */
void rmai_blk_kick(struct rmai_dev *dev)
{
	blk_mq_kick_requeue_list(dev->disk->queue);
	blk_mq_run_hw_queues(dev->disk->queue, true);
}
