// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: write-back of small writes.
 *
 * A synchronous swap device has each swap-out wait for its folio, so with
 * 4 KiB folios reclaim would stall one round trip per page. A write of up
 * to RMAI_WB_MAX_PAGES within one VMR is instead copied into preallocated
 * staging pages and completed at once; its RDMA WRITE goes out from the
 * staging pages. Until the memnode has them, its pages stay registered as a
 * write in flight (vmr.c), so reads and writes of them wait: nobody sees old
 * data. A staged write whose RDMA fails waits on its memnode's retry list
 * and goes out again after the reconnect; it is dropped only when the
 * memnode is DOWN, when every request to it fails anyway.
 *
 * With write-back on, the device has a volatile write cache: a FLUSH
 * completes once every staged write has landed (meanwhile writes go direct,
 * so a flush cannot starve), and FUA writes go direct.
 *
 * Locking: wb->lock (irqsave) protects the free slots and pages, the flush
 * waiters and every memnode's retry list.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/highmem.h>
#include <linux/slab.h>

#include "rmai.h"

/* --- the pool ---------------------------------------------------------------- */

static struct rmai_wb_slot *rmai_wb_get(struct rmai_wb *wb, unsigned int nr_pages)
{
	struct rmai_wb_slot *slot;
	unsigned long flags;
	unsigned int i;

	spin_lock_irqsave(&wb->lock, flags);
	slot = list_first_entry_or_null(&wb->free_slots, struct rmai_wb_slot, list);
	if (!slot || wb->nr_free_pages < nr_pages || wb->flushing) {
		spin_unlock_irqrestore(&wb->lock, flags);
		return NULL;
	}
	list_del_init(&slot->list);
	for (i = 0; i < nr_pages; i++)
		slot->pages[i] = wb->free_pages[--wb->nr_free_pages];
	slot->nr_pages = nr_pages;
	atomic_inc(&wb->in_flight);
	spin_unlock_irqrestore(&wb->lock, flags);
	return slot;
}

/*
 * Return @slot to the pool. When it was the last staged write in flight,
 * complete the flushes that waited for that.
 */
static void rmai_wb_put(struct rmai_wb *wb, struct rmai_wb_slot *slot)
{
	struct rmai_cmd *cmd, *next;
	unsigned long flags;
	LIST_HEAD(flushes);
	unsigned int i;

	spin_lock_irqsave(&wb->lock, flags);
	for (i = 0; i < slot->nr_pages; i++)
		wb->free_pages[wb->nr_free_pages++] = slot->pages[i];
	list_add(&slot->list, &wb->free_slots);
	if (atomic_dec_and_test(&wb->in_flight)) {
		list_splice_init(&wb->flushes, &flushes);
		wb->flushing = false;
	}
	spin_unlock_irqrestore(&wb->lock, flags);
	wake_up_all(&wb->idle);
	list_for_each_entry_safe(cmd, next, &flushes, wait) {
		list_del_init(&cmd->wait);
		blk_mq_complete_request(blk_mq_rq_from_pdu(cmd));
	}
}

/* The staged write is on the memnode, or will never be: let go of it. */
static void rmai_wb_finish(struct rmai_wb_slot *slot)
{
	rmai_write_end(slot->dev, &slot->range);
	rmai_wb_put(&slot->dev->wb, slot);
}

/* --- posting ------------------------------------------------------------------- */

static void rmai_wb_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rmai_wb_slot *slot = container_of(wc->wr_cqe, struct rmai_wb_slot, cqe);
	struct rmai_memnode *mn = slot->queue->mn;
	struct rmai_wb *wb = &slot->dev->wb;
	unsigned long flags;

	ib_dma_unmap_sg(cq->device, slot->sgl, slot->nr_pages, DMA_TO_DEVICE);
	if (likely(wc->status == IB_WC_SUCCESS)) {
		rmai_wb_finish(slot);
		return;
	}
	rmai_wr_error(wc);
	this_cpu_inc(slot->dev->stats->requeues);
	spin_lock_irqsave(&wb->lock, flags);
	if (smp_load_acquire(&mn->state) != RMAI_MN_DOWN) {	/* see rmai_wb_drop() */
		list_add_tail(&slot->list, &mn->wb_retry);
		slot = NULL;
	}
	spin_unlock_irqrestore(&wb->lock, flags);
	if (slot)
		rmai_wb_finish(slot);	/* the lease is gone: so is the data */
}

/* Map and post @slot on @queue. Return: 0 or a negative errno. */
static int rmai_wb_post(struct rmai_wb_slot *slot, struct rmai_queue *queue)
{
	struct ib_device *ibdev = queue->cm_id->device;
	int nents, ret;
	int i;

	slot->queue = queue;
	nents = ib_dma_map_sg(ibdev, slot->sgl, slot->nr_pages, DMA_TO_DEVICE);
	if (nents <= 0)
		return -EIO;
	for (i = 0; i < nents; i++) {
		slot->sges[i].addr = sg_dma_address(&slot->sgl[i]);
		slot->sges[i].length = sg_dma_len(&slot->sgl[i]);
		slot->sges[i].lkey = queue->pd->local_dma_lkey;
	}
	rmai_build_wrs(slot->wrs, slot->sges, nents, queue->max_sge, IB_WR_RDMA_WRITE,
		       slot->slab->addr + slot->slab_off, slot->slab->rkey, &slot->cqe);
	ret = ib_post_send(queue->qp, &slot->wrs[0].wr, NULL);
	if (ret)
		ib_dma_unmap_sg(ibdev, slot->sgl, slot->nr_pages, DMA_TO_DEVICE);
	return ret;
}

/**
 * rmai_wb_write() - stage a write and let it complete now
 * @dev: the device
 * @queue: the data queue of its memnode and hardware queue
 * @rq: a started WRITE
 * @slab: its slab
 * @slab_off: its offset in the slab
 *
 * Return: RMAI_SERVED (staged: end the request), RMAI_RETRY (a write to its
 * pages is in flight) or RMAI_DIRECT (too large, FUA, a flush pending or no
 * staging room: write it directly).
 */
enum rmai_route rmai_wb_write(struct rmai_dev *dev, struct rmai_queue *queue,
			      struct request *rq, const struct rmai_slab *slab,
			      u64 slab_off)
{
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	unsigned int nr_pages = blk_rq_bytes(rq) >> PAGE_SHIFT;
	struct rmai_wb_slot *slot;
	struct req_iterator iter;
	struct bio_vec bv;
	u32 off = 0;

	if (!dev->wb.nr_slots || nr_pages > RMAI_WB_MAX_PAGES || (rq->cmd_flags & REQ_FUA) ||
	    (pos >> dev->vmr_shift) != ((pos + blk_rq_bytes(rq) - 1) >> dev->vmr_shift))
		return RMAI_DIRECT;
	slot = rmai_wb_get(&dev->wb, nr_pages);
	if (!slot)
		return RMAI_DIRECT;
	if (!rmai_write_begin(dev, &slot->range, pos, blk_rq_bytes(rq), rq)) {
		rmai_wb_put(&dev->wb, slot);
		return RMAI_RETRY;
	}
	rq_for_each_segment(bv, rq, iter) {
		memcpy_page(slot->pages[off >> PAGE_SHIFT], offset_in_page(off),
			    bv.bv_page, bv.bv_offset, bv.bv_len);
		off += bv.bv_len;
	}
	sg_init_table(slot->sgl, nr_pages);
	for (off = 0; off < nr_pages; off++)
		sg_set_page(&slot->sgl[off], slot->pages[off], PAGE_SIZE, 0);
	slot->slab = slab;
	slot->slab_off = slab_off;
	this_cpu_inc(dev->stats->staged);
	if (rmai_wb_post(slot, queue)) {
		/* The QP is broken: recovery posts it again. */
		spin_lock_irq(&dev->wb.lock);
		list_add_tail(&slot->list, &queue->mn->wb_retry);
		spin_unlock_irq(&dev->wb.lock);
		rmai_memnode_error(queue->mn);
	}
	return RMAI_SERVED;
}

/**
 * rmai_wb_resume() - post again what failed while @mn was away
 * @mn: a memnode that just reconnected, its queues up
 */
void rmai_wb_resume(struct rmai_memnode *mn)
{
	struct rmai_wb *wb = &mn->dev->wb;
	struct rmai_wb_slot *slot;
	LIST_HEAD(retry);

	spin_lock_irq(&wb->lock);
	list_splice_init(&mn->wb_retry, &retry);
	spin_unlock_irq(&wb->lock);
	while ((slot = list_first_entry_or_null(&retry, struct rmai_wb_slot, list))) {
		list_del_init(&slot->list);
		if (rmai_wb_post(slot, slot->queue)) {
			spin_lock_irq(&wb->lock);
			list_add_tail(&slot->list, &mn->wb_retry);
			list_splice_tail_init(&retry, &mn->wb_retry);
			spin_unlock_irq(&wb->lock);
			rmai_memnode_error(mn);
			return;
		}
	}
}

/**
 * rmai_wb_drop() - forget what failed on @mn, now DOWN: its data is lost
 * @mn: the memnode
 */
void rmai_wb_drop(struct rmai_memnode *mn)
{
	struct rmai_wb *wb = &mn->dev->wb;
	struct rmai_wb_slot *slot;
	LIST_HEAD(dropped);

	spin_lock_irq(&wb->lock);
	list_splice_init(&mn->wb_retry, &dropped);
	spin_unlock_irq(&wb->lock);
	while ((slot = list_first_entry_or_null(&dropped, struct rmai_wb_slot, list))) {
		list_del_init(&slot->list);
		rmai_wb_finish(slot);
	}
}

/**
 * rmai_wb_flush() - complete a FLUSH once every staged write has landed
 * @dev: the device
 * @rq: a started FLUSH
 *
 * Return: RMAI_SERVED (nothing staged: end it now) or RMAI_POSTED (it
 * completes with the last staged write).
 */
enum rmai_route rmai_wb_flush(struct rmai_dev *dev, struct request *rq)
{
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct rmai_wb *wb = &dev->wb;
	unsigned long flags;
	enum rmai_route route = RMAI_SERVED;

	spin_lock_irqsave(&wb->lock, flags);
	if (atomic_read(&wb->in_flight)) {
		wb->flushing = true;
		list_add_tail(&cmd->wait, &wb->flushes);
		route = RMAI_POSTED;
	}
	spin_unlock_irqrestore(&wb->lock, flags);
	return route;
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

/* --- setup ---------------------------------------------------------------------- */

/**
 * rmai_wb_init() - preallocate writeback_mb of staging pages
 * @dev: the device
 *
 * Return: 0 or -ENOMEM.
 */
int rmai_wb_init(struct rmai_dev *dev)
{
	struct rmai_wb *wb = &dev->wb;
	unsigned int nr_pages = rmai_cfg.writeback_mb << (20 - PAGE_SHIFT), i;
	struct page *page;

	spin_lock_init(&wb->lock);
	INIT_LIST_HEAD(&wb->free_slots);
	INIT_LIST_HEAD(&wb->flushes);
	init_waitqueue_head(&wb->idle);
	if (!nr_pages)
		return 0;
	wb->free_pages = kvcalloc(nr_pages, sizeof(*wb->free_pages), GFP_KERNEL);
	wb->slots = kvcalloc(min(nr_pages, RMAI_WB_MAX_SLOTS), sizeof(*wb->slots),
			     GFP_KERNEL);
	if (!wb->free_pages || !wb->slots)
		goto out_free;
	for (i = 0; i < nr_pages; i++) {
		page = alloc_page(GFP_KERNEL);
		if (!page)
			goto out_free;
		wb->free_pages[wb->nr_free_pages++] = page;
	}
	wb->nr_slots = min(nr_pages, RMAI_WB_MAX_SLOTS);
	for (i = 0; i < wb->nr_slots; i++) {
		wb->slots[i].dev = dev;
		wb->slots[i].cqe.done = rmai_wb_done;
		list_add_tail(&wb->slots[i].list, &wb->free_slots);
	}
	return 0;

out_free:
	rmai_wb_exit(dev);
	return -ENOMEM;
}

/**
 * rmai_wb_exit() - free the staging pool; nothing may be in flight
 * @dev: the device
 */
void rmai_wb_exit(struct rmai_dev *dev)
{
	struct rmai_wb *wb = &dev->wb;

	while (wb->nr_free_pages)
		__free_page(wb->free_pages[--wb->nr_free_pages]);
	kvfree(wb->free_pages);
	kvfree(wb->slots);
	wb->free_pages = NULL;
	wb->slots = NULL;
	wb->nr_slots = 0;
}
