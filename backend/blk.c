// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: the blk-mq device. A request lies within one slab (chunk_sectors is
 * the slab size), so it becomes one run of remote memory on one memnode:
 * its pages are DMA-mapped and sent as a chain of RDMA WRITEs or READs of at
 * most max_sge SGEs each, on the data queue of that memnode that serves the
 * request's hardware queue. Only the last work request is signaled; its
 * completion completes the request. Small reads go through the VMR cache
 * (vmr.c) and small writes through write-back (writeback.c) first. Nothing
 * is allocated per request: the scatterlist, SGEs and work requests live in
 * the request's PDU.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/module.h>

#include "compat.h"
#include "rmai.h"

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

/**
 * rmai_cmd_unmap() - unmap a request's pages, if they are mapped
 * @ibdev: the device they were mapped to
 * @rq: the request
 */
void rmai_cmd_unmap(struct ib_device *ibdev, struct request *rq)
{
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);

	if (!cmd->nents)
		return;
	ib_dma_unmap_sg(ibdev, cmd->sgl, cmd->nents, rq_dma_dir(rq));
	cmd->nents = 0;
}

/**
 * rmai_wr_error() - a work request failed: say so, and recover its memnode
 * @wc: its completion
 */
void rmai_wr_error(struct ib_wc *wc)
{
	struct rmai_queue *queue = wc->qp->qp_context;

	if (wc->status != IB_WC_WR_FLUSH_ERR)
		pr_err_ratelimited("memnode %pISpc queue %u: RDMA failed: %s\n",
				   &queue->mn->addr, queue->qid,
				   ib_wc_status_msg(wc->status));
	rmai_memnode_error(queue->mn);
}

/*
 * The completion of an unsignaled work request: only errors get here. Its
 * request completes with the last work request, which is flushed after it.
 */
static void rmai_unsignaled_done(struct ib_cq *cq, struct ib_wc *wc)
{
	rmai_wr_error(wc);
}

static struct ib_cqe rmai_unsignaled_cqe = { .done = rmai_unsignaled_done };

/**
 * rmai_cmd_failed() - a started request did not reach the memnode
 * @cmd: its PDU, nothing mapped or registered
 *
 * It goes back to the queue, to wait for its memnode's recovery, up to
 * RMAI_MAX_RETRIES times; then it fails.
 */
void rmai_cmd_failed(struct rmai_cmd *cmd)
{
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct rmai_dev *dev = rq->q->queuedata;

	if (cmd->retries++ < RMAI_MAX_RETRIES) {
		this_cpu_inc(dev->stats->requeues);
		blk_mq_requeue_request(rq, true);
		return;
	}
	cmd->status = BLK_STS_IOERR;
	blk_mq_complete_request(rq);
}

static void rmai_rdma_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rmai_cmd *cmd = container_of(wc->wr_cqe, struct rmai_cmd, cqe);
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct rmai_dev *dev = rq->q->queuedata;

	/* Unmap here: the queue's teardown waits for this handler, not for ->complete. */
	rmai_cmd_unmap(cq->device, rq);
	this_cpu_inc(dev->stats->finished);
	if (cmd->registered) {
		rmai_write_end(dev, &cmd->range);
		cmd->registered = false;
	}
	if (unlikely(wc->status != IB_WC_SUCCESS)) {
		rmai_wr_error(wc);
		rmai_cmd_failed(cmd);	/* a retry reaches the memnode once it is back */
		return;
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

/**
 * rmai_build_wrs() - chain SGEs into RDMA work requests over one remote run
 * @wrs: room for DIV_ROUND_UP(@nr_sge, @max_sge) work requests
 * @sges: the local side
 * @nr_sge: entries in @sges
 * @max_sge: SGEs per work request
 * @opcode: IB_WR_RDMA_READ or IB_WR_RDMA_WRITE
 * @remote_addr: where the run starts on the memnode
 * @rkey: its remote key
 * @cqe: completion of the last work request, the only signaled one
 *
 * Return: the last work request, whose next is NULL.
 */
struct ib_rdma_wr *rmai_build_wrs(struct ib_rdma_wr *wrs, struct ib_sge *sges,
				  int nr_sge, unsigned int max_sge,
				  enum ib_wr_opcode opcode, u64 remote_addr,
				  u32 rkey, struct ib_cqe *cqe)
{
	struct ib_rdma_wr *wr = wrs;
	int i, s, n;

	for (s = 0; ; s += n, wr++) {
		n = min_t(int, nr_sge - s, max_sge);
		wr->wr.opcode = opcode;
		wr->wr.sg_list = &sges[s];
		wr->wr.num_sge = n;
		wr->remote_addr = remote_addr;
		wr->rkey = rkey;
		if (s + n == nr_sge)
			break;
		for (i = s; i < s + n; i++)
			remote_addr += sges[i].length;
		wr->wr.wr_cqe = &rmai_unsignaled_cqe;
		wr->wr.send_flags = 0;
		wr->wr.next = &wr[1].wr;
	}
	wr->wr.wr_cqe = cqe;
	wr->wr.send_flags = IB_SEND_SIGNALED;
	wr->wr.next = NULL;
	return wr;
}

/**
 * rmai_cmd_prepare() - map a request and build its work requests
 * @queue: the queue it goes on
 * @rq: a started READ, WRITE or WRITE_ZEROES
 * @remote_addr: where its data lives on the memnode
 * @rkey: the remote key there
 * @last: set to its last work request, to chain more behind it
 *
 * Return: 0, or -EIO when its pages cannot be mapped.
 */
int rmai_cmd_prepare(struct rmai_queue *queue, struct request *rq,
		     u64 remote_addr, u32 rkey, struct ib_rdma_wr **last)
{
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);
	enum ib_wr_opcode opcode;
	int nr_sge;

	cmd->queue = queue;
	if (req_op(rq) == REQ_OP_WRITE_ZEROES) {
		nr_sge = rmai_map_zeroes(queue, rq, cmd);
		opcode = IB_WR_RDMA_WRITE;
	} else {
		nr_sge = rmai_map_pages(queue, rq, cmd);
		if (unlikely(nr_sge < 0))
			return nr_sge;
		opcode = rq_data_dir(rq) == WRITE ? IB_WR_RDMA_WRITE : IB_WR_RDMA_READ;
	}
	*last = rmai_build_wrs(cmd->wrs, cmd->sges, nr_sge, queue->max_sge, opcode,
			       remote_addr, rkey, &cmd->cqe);
	return 0;
}

/**
 * rmai_cmd_post() - post a prepared request's work requests (and any chained
 *	behind them)
 * @queue: its queue
 * @rq: the request
 *
 * On failure the QP is broken: its memnode goes to recovery; the caller
 * unmaps and retries the request later.
 *
 * Return: 0 or a negative errno.
 */
int rmai_cmd_post(struct rmai_queue *queue, struct request *rq)
{
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);
	int ret;

	this_cpu_inc(queue->mn->dev->stats->started);
	ret = ib_post_send(queue->qp, &cmd->wrs[0].wr, NULL);
	if (unlikely(ret)) {
		this_cpu_inc(queue->mn->dev->stats->finished);
		pr_err_ratelimited("memnode %pISpc queue %u: cannot post (%pe)\n",
				   &queue->mn->addr, queue->qid, ERR_PTR(ret));
		rmai_memnode_error(queue->mn);
	}
	return ret;
}

/* A request straight to the memnode: one chain of RDMA work requests. */
static blk_status_t rmai_direct(struct rmai_dev *dev, struct rmai_queue *queue,
				struct request *rq, const struct rmai_slab *slab,
				u64 slab_off)
{
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	struct ib_rdma_wr *last;

	if (req_op(rq) == REQ_OP_READ) {
		if (rmai_write_pending(dev, pos, blk_rq_bytes(rq)))
			return BLK_STS_RESOURCE;
	} else {
		if (!rmai_write_begin(dev, &cmd->range, pos, blk_rq_bytes(rq), rq))
			return BLK_STS_RESOURCE;
		cmd->registered = true;
	}
	if (rmai_cmd_prepare(queue, rq, slab->addr + slab_off, slab->rkey, &last))
		goto out_error;
	if (rmai_cmd_post(queue, rq))
		goto out_retry;
	return BLK_STS_OK;

out_retry:
	rmai_cmd_unmap(queue->cm_id->device, rq);
	if (cmd->registered)
		rmai_write_end(dev, &cmd->range);
	cmd->registered = false;
	return BLK_STS_RESOURCE;
out_error:
	if (cmd->registered)
		rmai_write_end(dev, &cmd->range);
	cmd->registered = false;
	this_cpu_inc(dev->stats->errors);
	return BLK_STS_IOERR;
}

/* End a request served without RDMA (a cache hit, a staged write, ...). */
static blk_status_t rmai_end_now(struct rmai_dev *dev, struct request *rq)
{
	rmai_account(dev, rq, BLK_STS_OK);
	blk_mq_end_request(rq, BLK_STS_OK);
	return BLK_STS_OK;
}

/* READ and WRITE: the cache or write-back when they take it, else direct. */
static blk_status_t rmai_rw(struct rmai_dev *dev, struct rmai_queue *queue,
			    struct request *rq, const struct rmai_slab *slab,
			    u64 slab_off)
{
	enum rmai_route route = RMAI_DIRECT;

	if (req_op(rq) == REQ_OP_READ) {
		if (dev->cache.max_entries &&
		    blk_rq_bytes(rq) < (1U << dev->vmr_shift) &&
		    !((slab_off ^ (slab_off + blk_rq_bytes(rq) - 1)) >> dev->vmr_shift))
			route = rmai_vmr_read(dev, queue, rq, slab, slab_off);
	} else if (req_op(rq) == REQ_OP_WRITE) {
		route = rmai_wb_write(dev, queue, rq, slab, slab_off);
	}
	switch (route) {
	case RMAI_SERVED:
		return rmai_end_now(dev, rq);
	case RMAI_POSTED:
		return BLK_STS_OK;
	case RMAI_RETRY:
		return BLK_STS_RESOURCE;
	default:
		return rmai_direct(dev, queue, rq, slab, slab_off);
	}
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
	cmd->queue = NULL;
	cmd->start_ns = ktime_get_ns();
	switch (req_op(rq)) {
	case REQ_OP_FLUSH:
		blk_mq_start_request(rq);
		if (rmai_wb_flush(dev, rq) == RMAI_POSTED)
			return BLK_STS_OK;
		return rmai_end_now(dev, rq);
	case REQ_OP_DISCARD:
		blk_mq_start_request(rq);
		rmai_cache_discard(dev, pos, blk_rq_bytes(rq));
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
	return rmai_rw(dev, &slab->mn->queues[1 + hctx->queue_num], rq, slab,
		       pos & ((1ULL << dev->slab_shift) - 1));
}

/*
 * A request outlived the block layer's timeout: its memnode is not
 * answering (a read waiting for a VMR fetch has the fetch's queue). Recovery
 * flushes the request (which requeues it, or fails it once io_timeout has
 * passed); until then, keep waiting.
 */
static enum blk_eh_timer_return rmai_timeout(struct request *rq)
{
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);

	if (!cmd->queue)	/* a FLUSH waiting for staged writes */
		return BLK_EH_RESET_TIMER;
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
	INIT_LIST_HEAD(&cmd->wait);
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

	disk = rmai_alloc_disk(set, &lim, rmai_cfg.synchronous, dev->wb.nr_slots, dev);
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
