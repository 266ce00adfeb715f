// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: write-back of small writes.
 *
 * A synchronous swap device has each swap-out wait for its folio, so with
 * 4 KiB folios reclaim would stall one round trip per page. A write of up
 * to RMAI_WB_MAX_PAGES within one VMR is instead copied into preallocated
 * staging pages and completed at once; its RDMA WRITE goes out from them,
 * through the page map (remote.c), which may find nothing to send.
 * Until the memnode has it, its pages stay registered as a write in flight
 * (order.c): writes to them wait, reads of them copy the staged data.
 *
 * Each memnode has its own pool (writeback_mb split evenly), so a memnode
 * that is away holds only its own share. A staged write whose RDMA fails
 * waits on its pool's retry list, still readable, and goes out again after
 * the reconnect; once the memnode is DOWN its data is lost with the rest of
 * the lease, and the write is dropped. When io_timeout passes with the
 * memnode away, the requests waiting for its staged writes fail, and so
 * does any FLUSH (the data is not on the memnode, and may never be).
 *
 * With write-back on, the device has a volatile write cache: a FLUSH
 * completes once every staged write has landed (meanwhile writes go direct,
 * so a flush cannot starve), and FUA writes go direct.
 *
 * Locking: a pool's lock (irqsave) protects its free slots and pages and
 * its retry list; wb->lock the flush waiters.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/slab.h>

#include "rmai.h"

/* --- the pools ---------------------------------------------------------------- */

static struct rmai_wb_slot *rmai_wb_get(struct rmai_wb *wb, struct rmai_wb_pool *pool,
					unsigned int nr_pages)
{
	struct rmai_wb_slot *slot;
	unsigned long flags;
	unsigned int i;

	if (READ_ONCE(wb->flushing))
		return NULL;
	spin_lock_irqsave(&pool->lock, flags);
	slot = list_first_entry_or_null(&pool->free_slots, struct rmai_wb_slot, list);
	if (!slot || pool->nr_free_pages < nr_pages) {
		spin_unlock_irqrestore(&pool->lock, flags);
		return NULL;
	}
	list_del_init(&slot->list);
	for (i = 0; i < nr_pages; i++)
		slot->pages[i] = pool->free_pages[--pool->nr_free_pages];
	slot->nr_pages = nr_pages;
	atomic_set(&slot->pins, 1);
	spin_unlock_irqrestore(&pool->lock, flags);
	return slot;
}

static void rmai_wb_put(struct rmai_wb_slot *slot)
{
	struct rmai_wb_pool *pool = slot->pool;
	unsigned long flags;
	unsigned int i;

	spin_lock_irqsave(&pool->lock, flags);
	for (i = 0; i < slot->nr_pages; i++)
		pool->free_pages[pool->nr_free_pages++] = slot->pages[i];
	slot->nr_pages = 0;
	list_add(&slot->list, &pool->free_slots);
	spin_unlock_irqrestore(&pool->lock, flags);
}

/**
 * rmai_wb_unpin() - a reader is done with a staged copy (or the write is)
 * @slot: a slot pinned by rmai_order_read(), or by being staged
 */
void rmai_wb_unpin(struct rmai_wb_slot *slot)
{
	if (atomic_dec_and_test(&slot->pins))
		rmai_wb_put(slot);
}

/**
 * rmai_wb_copy_out() - serve a read from a staged write
 * @slot: the pinned slot the read lies in
 * @rq: the read
 */
void rmai_wb_copy_out(struct rmai_wb_slot *slot, struct request *rq)
{
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;

	rmai_copy_rq(rq, slot->pages, pos - slot->pos, true);
}

/* Complete the waiting FLUSHes with @status. */
static void rmai_wb_end_flushes(struct rmai_dev *dev, int status)
{
	struct rmai_wb *wb = &dev->wb;
	struct rmai_cmd *cmd, *next;
	unsigned long flags;
	LIST_HEAD(flushes);

	spin_lock_irqsave(&wb->lock, flags);
	list_splice_init(&wb->flushes, &flushes);
	wb->flushing = false;
	spin_unlock_irqrestore(&wb->lock, flags);
	list_for_each_entry_safe(cmd, next, &flushes, wait) {
		list_del_init(&cmd->wait);
		dev->cmd_ops->end(cmd, errno_to_blk_status(status));
	}
}

/* The staged write is on the memnode, or never will be: let go of it. */
static void rmai_wb_finish(struct rmai_wb_slot *slot)
{
	struct rmai_dev *dev = slot->pool->dev;
	struct rmai_wb *wb = &dev->wb;

	rmai_order_end(dev, &slot->range);
	atomic_dec(&slot->pool->in_flight);
	if (atomic_dec_and_test(&wb->in_flight)) {
		wake_up_all(&wb->idle);
		rmai_wb_end_flushes(dev, 0);
	}
	rmai_wb_unpin(slot);
}

/* --- posting -------------------------------------------------------------------- */

static void rmai_wb_done(struct rmai_remote *r, int status)
{
	struct rmai_wb_slot *slot = container_of(r, struct rmai_wb_slot, remote);
	struct rmai_wb_pool *pool = slot->pool;
	unsigned long flags;

	if (likely(!status)) {
		rmai_wb_finish(slot);
		return;
	}
	this_cpu_inc(pool->dev->stats->requeues);
	spin_lock_irqsave(&pool->lock, flags);
	if (smp_load_acquire(&pool->mn->state) != RMAI_MN_DOWN) {	/* see rmai_wb_drop() */
		list_add_tail(&slot->list, &pool->retry);
		slot = NULL;
	}
	spin_unlock_irqrestore(&pool->lock, flags);
	if (slot) {			/* the lease is gone: so is the data */
		rmai_remote_abort(&slot->remote);
		rmai_wb_finish(slot);
	}
}

/**
 * rmai_wb_write() - stage a write and let it complete now
 * @dev: the device
 * @queue: the data queue of its memnode and hardware queue
 * @cmd: a started WRITE, its slab set
 *
 * Return: RMAI_WB_STAGED (end the request), RMAI_WB_WAIT (@cmd parked on
 * an overlapping write) or RMAI_WB_DIRECT (too large, FUA, a flush pending
 * or no staging room: write it directly).
 */
enum rmai_wb_route rmai_wb_write(struct rmai_dev *dev, struct rmai_queue *queue,
				 struct rmai_cmd *cmd)
{
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	u32 len = blk_rq_bytes(rq);
	unsigned int nr_pages = len >> PAGE_SHIFT, i;
	struct rmai_wb_slot *slot;

	if (!dev->wb.pools || nr_pages > RMAI_WB_MAX_PAGES || (rq->cmd_flags & REQ_FUA) ||
	    (pos >> dev->vmr_shift) != ((pos + len - 1) >> dev->vmr_shift))
		return RMAI_WB_DIRECT;
	slot = rmai_wb_get(&dev->wb, &dev->wb.pools[cmd->slab->mn->idx], nr_pages);
	if (!slot)
		return RMAI_WB_DIRECT;
	slot->pos = pos;
	if (!rmai_order_begin(dev, &slot->range, pos, len, cmd)) {
		rmai_wb_unpin(slot);
		return RMAI_WB_WAIT;
	}
	rmai_copy_rq(rq, slot->pages, 0, false);
	sg_init_table(slot->sgl, nr_pages);
	for (i = 0; i < nr_pages; i++)
		sg_set_page(&slot->sgl[i], slot->pages[i], PAGE_SIZE, 0);
	slot->remote.nr_sg = nr_pages;
	rmai_remote_init(&slot->remote, dev, pos, len, true, false);
	atomic_inc(&slot->pool->in_flight);
	atomic_inc(&dev->wb.in_flight);
	this_cpu_inc(dev->stats->staged);
	/* It may be over, and @slot reused, before this returns. */
	rmai_remote_start(&slot->remote, queue);
	return RMAI_WB_STAGED;
}

/* Post again what failed while @pool's memnode was away. */
static void rmai_wb_resume(struct rmai_wb_pool *pool)
{
	struct rmai_wb_slot *slot;
	unsigned long flags;
	LIST_HEAD(retry);

	spin_lock_irqsave(&pool->lock, flags);
	list_splice_init(&pool->retry, &retry);
	spin_unlock_irqrestore(&pool->lock, flags);
	while ((slot = list_first_entry_or_null(&retry, struct rmai_wb_slot, list))) {
		list_del_init(&slot->list);
		rmai_remote_start(&slot->remote, slot->remote.queue);
	}
}

/**
 * rmai_wb_drop() - forget what failed on @mn, now DOWN: its data is lost
 * @mn: the memnode
 */
void rmai_wb_drop(struct rmai_memnode *mn)
{
	struct rmai_wb_pool *pool;
	struct rmai_wb_slot *slot;
	unsigned long flags;
	LIST_HEAD(dropped);

	if (!mn->dev->wb.pools)
		return;
	pool = &mn->dev->wb.pools[mn->idx];
	spin_lock_irqsave(&pool->lock, flags);
	list_splice_init(&pool->retry, &dropped);
	spin_unlock_irqrestore(&pool->lock, flags);
	while ((slot = list_first_entry_or_null(&dropped, struct rmai_wb_slot, list))) {
		list_del_init(&slot->list);
		rmai_remote_abort(&slot->remote);
		rmai_wb_finish(slot);
	}
}

/**
 * rmai_wb_memnode_changed() - @mn is connected again (post what waits for
 *	it), or DOWN (drop it)
 * @mn: the memnode
 */
void rmai_wb_memnode_changed(struct rmai_memnode *mn)
{
	if (!mn->dev->wb.pools)
		return;
	if (READ_ONCE(mn->state) == RMAI_MN_CONNECTED)
		rmai_wb_resume(&mn->dev->wb.pools[mn->idx]);
	else
		rmai_wb_drop(mn);
}

/**
 * rmai_wb_memnode_expired() - @mn has been away for io_timeout: what waits
 *	for its staged writes fails now, FLUSHes included
 * @mn: the memnode
 */
void rmai_wb_memnode_expired(struct rmai_memnode *mn)
{
	struct rmai_dev *dev = mn->dev;
	struct rmai_wb_pool *pool;
	struct rmai_wb_slot *slot;
	unsigned long flags;
	LIST_HEAD(retry);

	if (!dev->wb.pools)
		return;
	pool = &dev->wb.pools[mn->idx];
	if (!atomic_read(&pool->in_flight))
		return;
	spin_lock_irqsave(&pool->lock, flags);
	list_splice_init(&pool->retry, &retry);
	spin_unlock_irqrestore(&pool->lock, flags);
	list_for_each_entry(slot, &retry, list)
		rmai_order_wake(dev, &slot->range);
	spin_lock_irqsave(&pool->lock, flags);
	list_splice(&retry, &pool->retry);
	spin_unlock_irqrestore(&pool->lock, flags);
	rmai_wb_end_flushes(dev, -EIO);
}

/**
 * rmai_wb_flush() - complete a FLUSH once every staged write has landed
 * @dev: the device
 * @cmd: a started FLUSH
 *
 * Return: true when nothing is staged (end it now); false when it was
 * parked, to end through the device's cmd_ops.
 */
bool rmai_wb_flush(struct rmai_dev *dev, struct rmai_cmd *cmd)
{
	struct rmai_wb *wb = &dev->wb;
	unsigned long flags;
	bool now = true;

	spin_lock_irqsave(&wb->lock, flags);
	if (atomic_read(&wb->in_flight)) {
		wb->flushing = true;
		cmd->where = RMAI_CMD_WAITING;
		list_add_tail(&cmd->wait, &wb->flushes);
		now = false;
	}
	spin_unlock_irqrestore(&wb->lock, flags);
	return now;
}

/**
 * rmai_wb_drain() - wait until no staged write is in flight
 * @dev: the device, its disk deleted
 * @timeout: jiffies to wait at most
 *
 * Return: true when all landed.
 */
bool rmai_wb_drain(struct rmai_dev *dev, unsigned long timeout)
{
	return wait_event_timeout(dev->wb.idle, !atomic_read(&dev->wb.in_flight), timeout);
}

/* --- setup ------------------------------------------------------------------------ */

static void rmai_wb_pool_exit(struct rmai_wb_pool *pool)
{
	while (pool->nr_free_pages)
		__free_page(pool->free_pages[--pool->nr_free_pages]);
	kvfree(pool->free_pages);
	kvfree(pool->slots);
}

static int rmai_wb_pool_init(struct rmai_dev *dev, struct rmai_wb_pool *pool,
			     struct rmai_memnode *mn, unsigned int nr_pages)
{
	unsigned int i;
	struct page *page;

	pool->dev = dev;
	pool->mn = mn;
	spin_lock_init(&pool->lock);
	INIT_LIST_HEAD(&pool->free_slots);
	INIT_LIST_HEAD(&pool->retry);
	pool->nr_slots = min(nr_pages, RMAI_WB_MAX_SLOTS);
	pool->free_pages = kvcalloc(nr_pages, sizeof(*pool->free_pages), GFP_KERNEL);
	pool->slots = kvcalloc(pool->nr_slots, sizeof(*pool->slots), GFP_KERNEL);
	if (!pool->free_pages || !pool->slots)
		return -ENOMEM;
	for (i = 0; i < nr_pages; i++) {
		page = alloc_page(GFP_KERNEL);
		if (!page)
			return -ENOMEM;
		pool->free_pages[pool->nr_free_pages++] = page;
	}
	pool->nr_pages = nr_pages;
	for (i = 0; i < pool->nr_slots; i++) {
		struct rmai_wb_slot *slot = &pool->slots[i];

		slot->pool = pool;
		slot->range.staged = slot;
		slot->remote.done = rmai_wb_done;
		slot->remote.sgl = slot->sgl;
		slot->remote.xfer.sges = slot->sges;
		slot->remote.xfer.wrs = slot->wrs;
		INIT_LIST_HEAD(&slot->remote.wait);
		INIT_LIST_HEAD(&slot->remote.xfer.backlog);
		list_add_tail(&slot->list, &pool->free_slots);
	}
	return 0;
}

/**
 * rmai_wb_init() - preallocate writeback_mb of staging pages, a pool per
 *	memnode
 * @dev: the device, its memnodes connected
 *
 * Return: 0 or -ENOMEM.
 */
int rmai_wb_init(struct rmai_dev *dev)
{
	struct rmai_wb *wb = &dev->wb;
	unsigned int nr_pages, i;
	int ret;

	spin_lock_init(&wb->lock);
	INIT_LIST_HEAD(&wb->flushes);
	init_waitqueue_head(&wb->idle);
	nr_pages = (rmai_cfg.writeback_mb << (20 - PAGE_SHIFT)) / dev->nr_memnodes;
	if (!nr_pages)
		return 0;
	wb->pools = kcalloc(dev->nr_memnodes, sizeof(*wb->pools), GFP_KERNEL);
	if (!wb->pools)
		return -ENOMEM;
	for (i = 0; i < dev->nr_memnodes; i++) {
		ret = rmai_wb_pool_init(dev, &wb->pools[i], &dev->memnodes[i],
					max(nr_pages, RMAI_WB_MAX_PAGES));
		if (ret) {
			rmai_wb_exit(dev);
			return ret;
		}
	}
	return 0;
}

/**
 * rmai_wb_exit() - free the staging pools; nothing may be in flight
 * @dev: the device
 */
void rmai_wb_exit(struct rmai_dev *dev)
{
	unsigned int i;

	if (!dev->wb.pools)
		return;
	for (i = 0; i < dev->nr_memnodes; i++)
		rmai_wb_pool_exit(&dev->wb.pools[i]);
	kfree(dev->wb.pools);
	dev->wb.pools = NULL;
}
