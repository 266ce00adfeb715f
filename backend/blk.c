// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: the blk-mq device, and the route of each request through the stages
 * below it.
 *
 * A request lies within one slab (chunk_sectors is the slab size), so all
 * of it lives on one memnode, and goes through the page map (remote.c) on
 * that memnode's data queue for the request's hardware queue. On its way:
 *  - READ: a staged write it lies in serves it (order.c, writeback.c); a
 *    write in flight over it makes it wait; the VMR cache serves it or
 *    fetches its VMR (vmr.c); else it is read directly;
 *  - WRITE: write-back stages it and ends it at once; else it registers its
 *    pages (waiting for an overlapping write) and is written directly;
 *  - WRITE_ZEROES maps its pages to nothing, as DISCARD does, which also
 *    drops cached copies; swap's freed slots go the same way; FLUSH waits
 *    for the staged writes to land.
 * A request that has to wait is parked on what it waits for (a write in
 * flight, a VMR fetch, its memnode's reconnect, the staged writes) and
 * driven again from the top once that is over; nothing returns
 * BLK_STS_RESOURCE, so one waiting request never holds up the others of
 * its hardware queue. A request to a memnode that is away waits until it is
 * back, or fails once io_timeout has passed since it was lost.
 *
 * Nothing is allocated per request: the scatterlist, SGEs and work requests
 * live in the request's PDU.
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
static void rmai_account(struct rmai_dev *dev, struct request *rq, blk_status_t status)
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

/**
 * rmai_blk_end() - end a started request, from any context
 * @cmd: its PDU, no longer parked or posted anywhere
 * @status: its result
 */
static void rmai_blk_end(struct rmai_cmd *cmd, blk_status_t status)
{
	cmd->status = status;
	cmd->where = RMAI_CMD_IDLE;
	blk_mq_complete_request(blk_mq_rq_from_pdu(cmd));
}

static void rmai_complete_rq(struct request *rq)
{
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);

	rmai_account(cmd->dev, rq, cmd->status);
	blk_mq_end_request(rq, cmd->status);
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

static void rmai_cmd_dispatch(struct rmai_cmd *cmd);
static void rmai_blk_redrive(struct rmai_dev *dev, struct list_head *cmds);

/*
 * Park @cmd until its memnode is back (rmai_blk_memnode_changed()) or has
 * been away too long (rmai_blk_memnode_expired()). The state is checked
 * again under the lock that those take: a memnode that came back in
 * between sends the request on at once.
 */
static void rmai_blk_park(struct rmai_cmd *cmd)
{
	struct rmai_dev *dev = cmd->dev;
	struct rmai_memnode *mn = cmd->slab->mn;
	unsigned long flags;
	bool parked;

	spin_lock_irqsave(&dev->waiting_lock, flags);
	parked = rmai_memnode_ready(mn) == RMAI_MN_WAIT;
	if (parked) {
		cmd->where = RMAI_CMD_WAITING;
		list_add_tail(&cmd->wait, &dev->waiting[mn->idx]);
	}
	spin_unlock_irqrestore(&dev->waiting_lock, flags);
	if (!parked)
		rmai_cmd_dispatch(cmd);
}

/* Drive again the requests parked on @mn. */
static void rmai_blk_unpark(struct rmai_memnode *mn)
{
	struct rmai_dev *dev = mn->dev;
	unsigned long flags;
	LIST_HEAD(cmds);

	spin_lock_irqsave(&dev->waiting_lock, flags);
	list_splice_init(&dev->waiting[mn->idx], &cmds);
	spin_unlock_irqrestore(&dev->waiting_lock, flags);
	rmai_blk_redrive(dev, &cmds);
}

/**
 * rmai_blk_memnode_changed() - @mn is connected again, or DOWN: what waited
 *	for it goes on, or fails
 * @mn: the memnode
 */
void rmai_blk_memnode_changed(struct rmai_memnode *mn)
{
	rmai_blk_unpark(mn);
}

/**
 * rmai_blk_memnode_expired() - @mn has been away for io_timeout: what waits
 *	for it fails
 * @mn: the memnode
 */
void rmai_blk_memnode_expired(struct rmai_memnode *mn)
{
	rmai_blk_unpark(mn);
}

/**
 * rmai_blk_redrive() - drive requests that waited through their route again
 * @dev: the device
 * @cmds: their PDUs, linked by &rmai_cmd.wait; emptied
 *
 * From any context: the route never sleeps.
 */
static void rmai_blk_redrive(struct rmai_dev *dev, struct list_head *cmds)
{
	struct rmai_cmd *cmd, *next;

	list_for_each_entry_safe(cmd, next, cmds, wait) {
		list_del_init(&cmd->wait);
		cmd->where = RMAI_CMD_IDLE;
		this_cpu_inc(dev->stats->requeues);
		rmai_cmd_dispatch(cmd);
	}
}

const struct rmai_cmd_ops rmai_blk_cmd_ops = {
	.end		= rmai_blk_end,
	.redrive	= rmai_blk_redrive,
};

/* --- the route ------------------------------------------------------------ */

/* End @cmd, done or failed for good, its write no longer in flight. */
static void rmai_cmd_finish(struct rmai_cmd *cmd, blk_status_t status)
{
	if (status)
		rmai_remote_abort(&cmd->remote);
	if (cmd->registered) {
		cmd->registered = false;
		rmai_order_end(cmd->dev, &cmd->range);
	}
	rmai_blk_end(cmd, status);
}

/* All of a READ, WRITE or WRITE_ZEROES was transferred, or a run failed. */
static void rmai_cmd_remote_done(struct rmai_remote *r, int status)
{
	struct rmai_cmd *cmd = container_of(r, struct rmai_cmd, remote);

	cmd->where = RMAI_CMD_IDLE;
	if (status == -EREMOTEIO) {
		/*
		 * The queue broke: the memnode is being recovered. A write
		 * goes on with the run that failed; a read starts over.
		 */
		if (!r->write)
			rmai_remote_rewind(r);
		rmai_cmd_dispatch(cmd);
		return;
	}
	rmai_cmd_finish(cmd, status ? BLK_STS_IOERR : BLK_STS_OK);
}

/* Send @cmd through the page map to the memnode. */
static void rmai_cmd_start(struct rmai_cmd *cmd, struct rmai_queue *queue)
{
	cmd->where = RMAI_CMD_POSTED;
	rmai_remote_start(&cmd->remote, queue);
}

static void rmai_cmd_read(struct rmai_cmd *cmd, struct request *rq, u64 pos)
{
	struct rmai_dev *dev = cmd->dev;
	struct rmai_memnode *mn = cmd->slab->mn;
	u32 len = blk_rq_bytes(rq);
	/* Within one VMR, smaller than it, and the VMR all on the device. */
	bool cacheable = dev->cache.nr_shards && len < (1U << dev->vmr_shift) &&
			 !((pos ^ (pos + len - 1)) >> dev->vmr_shift) &&
			 (pos | ((1ULL << dev->vmr_shift) - 1)) < dev->size;
	struct rmai_queue *queue = NULL;
	struct rmai_wb_slot *slot;

	switch (rmai_order_read(dev, pos, len, cmd, &slot)) {
	case RMAI_ORDER_STAGED:
		rmai_wb_copy_out(slot, rq);
		rmai_wb_unpin(slot);
		this_cpu_inc(dev->stats->staged_reads);
		rmai_blk_end(cmd, BLK_STS_OK);
		return;
	case RMAI_ORDER_WAIT:
		return;
	case RMAI_ORDER_CLEAR:
		break;
	}
	switch (rmai_memnode_ready(mn)) {
	case RMAI_MN_FAIL:
		rmai_cmd_finish(cmd, BLK_STS_IOERR);
		return;
	case RMAI_MN_WAIT:
		/* A cached copy serves it while the memnode is away. */
		switch (cacheable ? rmai_vmr_read(dev, NULL, cmd) : RMAI_VMR_DIRECT) {
		case RMAI_VMR_SERVED:
			rmai_blk_end(cmd, BLK_STS_OK);
			break;
		case RMAI_VMR_POSTED:
			break;
		case RMAI_VMR_DIRECT:
			rmai_blk_park(cmd);
			break;
		}
		return;
	case RMAI_MN_GO:
		queue = &mn->queues[1 + cmd->hctx];
		break;
	}
	if (cacheable) {
		switch (rmai_vmr_read(dev, queue, cmd)) {
		case RMAI_VMR_SERVED:
			rmai_blk_end(cmd, BLK_STS_OK);
			return;
		case RMAI_VMR_POSTED:
			return;
		case RMAI_VMR_DIRECT:
			break;
		}
	}
	rmai_cmd_start(cmd, queue);
}

static void rmai_cmd_write(struct rmai_cmd *cmd, struct request *rq, u64 pos)
{
	struct rmai_dev *dev = cmd->dev;
	struct rmai_memnode *mn = cmd->slab->mn;
	struct rmai_queue *queue;

	switch (rmai_memnode_ready(mn)) {
	case RMAI_MN_FAIL:
		rmai_cmd_finish(cmd, BLK_STS_IOERR);
		return;
	case RMAI_MN_WAIT:
		rmai_blk_park(cmd);
		return;
	case RMAI_MN_GO:
		break;
	}
	queue = &mn->queues[1 + cmd->hctx];
	if (cmd->registered) {
		/* Its run failed when the queue broke: send it again. */
		rmai_cmd_start(cmd, queue);
		return;
	}
	if (req_op(rq) == REQ_OP_WRITE) {
		switch (rmai_wb_write(dev, queue, cmd)) {
		case RMAI_WB_STAGED:
			rmai_vmr_write(dev, cmd);
			rmai_blk_end(cmd, BLK_STS_OK);
			return;
		case RMAI_WB_WAIT:
			return;
		case RMAI_WB_DIRECT:
			break;
		}
	}
	if (!rmai_order_begin(dev, &cmd->range, pos, blk_rq_bytes(rq), cmd))
		return;
	cmd->registered = true;
	if (dev->cache.nr_shards)
		rmai_cache_drop(dev, pos, blk_rq_bytes(rq));
	rmai_cmd_start(cmd, queue);
}

/* Send a started READ, WRITE or WRITE_ZEROES on its way, or on again. */
static void rmai_cmd_dispatch(struct rmai_cmd *cmd)
{
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;

	if (req_op(rq) == REQ_OP_READ)
		rmai_cmd_read(cmd, rq, pos);
	else
		rmai_cmd_write(cmd, rq, pos);
}

/*
 * The transfer of a new request: its pages. It holds nothing yet, so that a
 * request failed before it was sent lets nothing go.
 */
static void rmai_cmd_prepare(struct rmai_cmd *cmd, struct request *rq, u64 pos)
{
	struct rmai_remote *r = &cmd->remote;
	bool zeroes = req_op(rq) == REQ_OP_WRITE_ZEROES;

	r->xfer.nents = 0;
	r->nr_sg = zeroes ? 0 : blk_rq_map_sg(rq->q, rq, cmd->sgl);
	rmai_remote_init(r, cmd->dev, pos, blk_rq_bytes(rq), req_op(rq) != REQ_OP_READ, zeroes);
}

/* A DISCARD frees whole pages of the device; false when it is out of it. */
static bool rmai_blk_discard(struct rmai_dev *dev, u64 pos, u32 len)
{
	if (unlikely(pos + len > dev->size || !PAGE_ALIGNED(pos) || !PAGE_ALIGNED(len))) {
		pr_err_ratelimited("%s: discard at %llu of %u bytes is not whole pages of the device\n",
				   dev->disk->disk_name, pos, len);
		return false;
	}
	rmai_remote_freed(dev, pos >> PAGE_SHIFT, len >> PAGE_SHIFT);
	return true;
}

static blk_status_t rmai_queue_rq(struct blk_mq_hw_ctx *hctx,
				  const struct blk_mq_queue_data *bd)
{
	struct rmai_dev *dev = hctx->queue->queuedata;
	struct request *rq = bd->rq;
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	struct rmai_slab *slab = NULL;

	switch (req_op(rq)) {
	case REQ_OP_READ:
	case REQ_OP_WRITE:
	case REQ_OP_WRITE_ZEROES:
		slab = rmai_slab_of(dev, pos, blk_rq_bytes(rq));
		if (unlikely(!slab)) {
			pr_err_ratelimited("%s: request at %llu of %u bytes is outside the device or crosses a slab\n",
					   dev->disk->disk_name, pos, blk_rq_bytes(rq));
			this_cpu_inc(dev->stats->errors);
			return BLK_STS_IOERR;
		}
		break;
	case REQ_OP_FLUSH:
	case REQ_OP_DISCARD:
		break;
	default:
		return BLK_STS_NOTSUPP;
	}

	cmd->dev = dev;
	cmd->slab = slab;
	cmd->hctx = hctx->queue_num;
	cmd->status = BLK_STS_OK;
	cmd->where = RMAI_CMD_IDLE;
	cmd->registered = false;
	cmd->start_ns = ktime_get_ns();
	blk_mq_start_request(rq);

	switch (req_op(rq)) {
	case REQ_OP_FLUSH:
		if (rmai_wb_flush(dev, cmd))
			rmai_blk_end(cmd, BLK_STS_OK);
		break;
	case REQ_OP_DISCARD:
		if (unlikely(!rmai_blk_discard(dev, pos, blk_rq_bytes(rq)))) {
			rmai_blk_end(cmd, BLK_STS_IOERR);
			break;
		}
		if (dev->cache.nr_shards)
			rmai_cache_drop(dev, pos, blk_rq_bytes(rq));
		rmai_blk_end(cmd, BLK_STS_OK);
		break;
	default:
		rmai_cmd_prepare(cmd, rq, pos);
		rmai_cmd_dispatch(cmd);
		break;
	}
	return BLK_STS_OK;
}

/*
 * A request outlived the block layer's timeout (io_timeout). Posted, its
 * memnode is not answering: recovery flushes it (and it waits for the
 * reconnect, or fails once io_timeout passed since the memnode was lost).
 * Parked, what it waits for is bounded already. Either way, keep waiting.
 */
static enum blk_eh_timer_return rmai_timeout(struct request *rq)
{
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct rmai_queue *queue = READ_ONCE(cmd->remote.xfer.queue);

	if (READ_ONCE(cmd->where) == RMAI_CMD_POSTED && queue) {
		pr_warn_ratelimited("memnode %pISpc queue %u: request timed out\n",
				    &queue->mn->addr, queue->qid);
		rmai_memnode_error(queue->mn);
	}
	return BLK_EH_RESET_TIMER;
}

static int rmai_init_request(struct blk_mq_tag_set *set, struct request *rq,
			     unsigned int hctx_idx, unsigned int numa_node)
{
	struct rmai_dev *dev = set->driver_data;
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);

	INIT_LIST_HEAD(&cmd->wait);
	INIT_LIST_HEAD(&cmd->remote.wait);
	INIT_LIST_HEAD(&cmd->remote.xfer.backlog);
	cmd->remote.sgl = cmd->sgl;
	cmd->remote.done = rmai_cmd_remote_done;
	cmd->remote.xfer.sges = (struct ib_sge *)(cmd->sgl + RMAI_MAX_SEGMENTS);
	cmd->remote.xfer.wrs = (struct ib_rdma_wr *)(cmd->remote.xfer.sges + RMAI_MAX_SEGMENTS);
	sg_init_table(cmd->sgl, RMAI_MAX_SEGMENTS);
	cmd->dev = dev;
	return 0;
}

static const struct blk_mq_ops rmai_mq_ops = {
	.queue_rq	= rmai_queue_rq,
	.complete	= rmai_complete_rq,
	.timeout	= rmai_timeout,
	.init_request	= rmai_init_request,
};

/*
 * Swap freed a slot (in atomic context): its page holds nothing now, and
 * its remote page may be remapped to, or reused.
 */
static void rmai_swap_slot_free_notify(struct block_device *bdev, unsigned long offset)
{
	struct rmai_dev *dev = bdev->bd_disk->private_data;

	if (likely(offset < dev->size >> PAGE_SHIFT))
		rmai_remote_freed(dev, offset, 1);
}

static const struct block_device_operations rmai_fops = {
	.owner			= THIS_MODULE,
	.swap_slot_free_notify	= rmai_swap_slot_free_notify,
};

/* The same, but telling 6.1's swap that the disk is synchronous (compat.h). */
static const struct block_device_operations rmai_sync_fops = {
	.owner			= THIS_MODULE,
	.swap_slot_free_notify	= rmai_swap_slot_free_notify,
	RMAI_FOPS_SYNCHRONOUS
};

/**
 * rmai_blk_alloc() - the tag set and the disk, not yet added
 * @dev: a device whose memnodes are connected, slabs leased, write-back
 *	and cache set up
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
	unsigned int i;
	struct gendisk *disk;
	int ret;

	dev->waiting = kcalloc(dev->nr_memnodes, sizeof(*dev->waiting), GFP_KERNEL);
	if (!dev->waiting)
		return -ENOMEM;
	for (i = 0; i < dev->nr_memnodes; i++)
		INIT_LIST_HEAD(&dev->waiting[i]);
	spin_lock_init(&dev->waiting_lock);

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
		goto out_free_waiting;

	disk = rmai_alloc_disk(set, &lim, rmai_cfg.synchronous, dev->wb.pools, dev);
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
out_free_waiting:
	kfree(dev->waiting);
	dev->waiting = NULL;
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
 * rmai_blk_del() - undo rmai_blk_add(): no request is left when it returns
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
	kfree(dev->waiting);
	dev->waiting = NULL;
}
