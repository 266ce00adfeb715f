// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: the local VMR cache, and the ordering of writes against reads.
 *
 * The device is cut into VMRs (vmr_kb, 64 KiB - 2 MiB, never across a
 * slab). A read smaller than a VMR that misses fetches its whole VMR: its
 * own pages straight into the request (so the miss costs one small round
 * trip), chained with a READ of the whole VMR into a cache entry; later reads
 * in that VMR are memory copies. Requests of a VMR or more, large folios
 * among them, bypass the cache: one RDMA op each.
 *
 * The cache holds clean data only, and stays coherent through the registry
 * of writes in flight (an interval tree of device pages, dev->cache.writes):
 *  - a write registers its pages before it is posted and unregisters when
 *    the memnode has them; a write that overlaps one in flight, and a read
 *    that overlaps one, wait (BLK_STS_RESOURCE);
 *  - registering a write (or a discard) drops every entry of the VMRs it
 *    touches; an entry still being fetched is unhashed ("orphaned"): it
 *    serves the reads that were waiting for it, then is freed;
 *  - a fetch starts only while no write to its VMR is in flight.
 * So a hashed entry always equals remote memory.
 *
 * Prefetch has to pay: when less than a quarter of what evicted VMRs
 * brought in was ever read (random access), misses stop fetching whole VMRs
 * but for one in RMAI_PREFETCH_PROBE, which tells when it pays again.
 *
 * Entries are preallocated at load (cache_mb worth); a shrinker frees clean
 * ones under memory pressure and a work item grows the cache back (GFP_NOIO)
 * when it runs short. Nothing on the I/O path allocates.
 *
 * Locking: dev->cache.lock (irqsave: taken from queue_rq and from CQ
 * completions) protects the hash, the LRU and free lists, entry states and
 * waiter lists, and the write registry.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/highmem.h>
#include <linux/slab.h>

#include "compat.h"
#include "rmai.h"

#define RMAI_CACHE_GROW_BATCH	16	/* entries the grow work adds at a time */
#define RMAI_PREFETCH_CREDIT	8	/* VMRs' worth of prefetch credit, at most */
#define RMAI_PREFETCH_PROBE	16	/* without credit, prefetch 1 miss in 16 */

static struct hlist_head *rmai_vmr_bucket(struct rmai_cache *c, u64 index)
{
	return &c->hash[hash_64(index, c->hash_bits)];
}

/* The least recently used VALID entry, or NULL. */
static struct rmai_vmr *rmai_vmr_lru_tail(struct rmai_cache *c)
{
	return list_empty(&c->lru) ? NULL : list_last_entry(&c->lru, struct rmai_vmr, lru);
}

static struct rmai_vmr *rmai_vmr_lookup(struct rmai_cache *c, u64 index)
{
	struct rmai_vmr *e;

	hlist_for_each_entry(e, rmai_vmr_bucket(c, index), node)
		if (e->index == index)
			return e;
	return NULL;
}

/* --- entries ---------------------------------------------------------------- */

static void rmai_vmr_free(struct rmai_dev *dev, struct rmai_vmr *e)
{
	unsigned int i;

	for (i = 0; i < dev->vmr_pages; i++)
		if (e->pages[i])
			__free_page(e->pages[i]);
	kfree(e);
}

static struct rmai_vmr *rmai_vmr_alloc(struct rmai_dev *dev, gfp_t gfp)
{
	unsigned int n = dev->vmr_pages, i;
	struct rmai_vmr *e;

	e = kzalloc(struct_size(e, pages, n) +
		    n * (sizeof(struct scatterlist) + sizeof(struct ib_sge)) +
		    dev->wrs_per_vmr * sizeof(struct ib_rdma_wr), gfp);
	if (!e)
		return NULL;
	e->sgl = (struct scatterlist *)(e->pages + n);
	e->sges = (struct ib_sge *)(e->sgl + n);
	e->wrs = (struct ib_rdma_wr *)(e->sges + n);
	e->dev = dev;
	INIT_LIST_HEAD(&e->waiters);
	sg_init_table(e->sgl, n);
	for (i = 0; i < n; i++) {
		e->pages[i] = alloc_page(gfp);
		if (!e->pages[i]) {
			rmai_vmr_free(dev, e);
			return NULL;
		}
		sg_set_page(&e->sgl[i], e->pages[i], PAGE_SIZE, 0);
	}
	return e;
}

/* Add up to @n entries, within cache_mb. Return: how many were added. */
static unsigned int rmai_cache_grow(struct rmai_dev *dev, unsigned int n, gfp_t gfp)
{
	struct rmai_cache *c = &dev->cache;
	struct rmai_vmr *e;
	unsigned long flags;
	unsigned int added = 0;

	while (added < n) {
		spin_lock_irqsave(&c->lock, flags);
		if (c->nr_entries >= c->max_entries) {
			spin_unlock_irqrestore(&c->lock, flags);
			break;
		}
		c->nr_entries++;	/* reserve, then allocate unlocked */
		spin_unlock_irqrestore(&c->lock, flags);
		e = rmai_vmr_alloc(dev, gfp);
		spin_lock_irqsave(&c->lock, flags);
		if (e)
			list_add(&e->lru, &c->free);
		else
			c->nr_entries--;
		spin_unlock_irqrestore(&c->lock, flags);
		if (!e)
			break;
		added++;
	}
	return added;
}

static void rmai_cache_grow_work(struct work_struct *work)
{
	struct rmai_dev *dev = container_of(work, struct rmai_dev, cache.grow_work);
	unsigned int noio = memalloc_noio_save();

	rmai_cache_grow(dev, RMAI_CACHE_GROW_BATCH,
			GFP_NOIO | __GFP_NORETRY | __GFP_NOWARN);
	memalloc_noio_restore(noio);
}

/*
 * How much of what @e prefetched was read, when it leaves the cache. The
 * same feeds the prefetch credit: it grows when a quarter or more of a VMR
 * was read, and shrinks otherwise.
 */
static void rmai_vmr_account(struct rmai_dev *dev, struct rmai_vmr *e)
{
	int used = bitmap_weight(e->used, dev->vmr_pages);
	int limit = RMAI_PREFETCH_CREDIT * dev->vmr_pages;

	this_cpu_add(dev->stats->prefetch_used, (u64)used << PAGE_SHIFT);
	this_cpu_add(dev->stats->prefetch_wasted,
		     (u64)(dev->vmr_pages - used) << PAGE_SHIFT);
	dev->cache.credit = clamp(dev->cache.credit + 4 * used - (int)dev->vmr_pages,
				  -limit, limit);
}

/* Take @e out of the hash; a VALID one goes to the free list at once. */
static void rmai_vmr_drop(struct rmai_cache *c, struct rmai_vmr *e)
{
	struct rmai_dev *dev = container_of(c, struct rmai_dev, cache);

	lockdep_assert_held(&c->lock);
	hlist_del_init(&e->node);
	rmai_vmr_account(dev, e);
	if (e->state == RMAI_VMR_FETCHING) {
		e->state = RMAI_VMR_ORPHAN;	/* freed when its fetch lands */
		return;
	}
	list_move(&e->lru, &c->free);
	e->state = RMAI_VMR_FREE;
}

/* A free entry: from the free list, else the least recently used. */
static struct rmai_vmr *rmai_vmr_get(struct rmai_dev *dev)
{
	struct rmai_cache *c = &dev->cache;
	struct rmai_vmr *e;

	lockdep_assert_held(&c->lock);
	if (c->nr_entries < c->max_entries)
		queue_work(rmai_wq, &c->grow_work);
	e = list_first_entry_or_null(&c->free, struct rmai_vmr, lru);
	if (!e) {
		e = rmai_vmr_lru_tail(c);
		if (!e)
			return NULL;
		rmai_vmr_drop(c, e);
		this_cpu_inc(dev->stats->evictions);
	}
	list_del_init(&e->lru);
	return e;
}

/* --- the write registry ------------------------------------------------------ */

static bool rmai_overlaps(struct rmai_cache *c, u64 first, u64 last)
{
	return interval_tree_iter_first(&c->writes, first, last);
}

/* Copy between a request's pages and @e, which holds the request's VMR. */
static void rmai_vmr_copy(struct rmai_dev *dev, struct rmai_vmr *e,
			  struct request *rq, bool to_rq)
{
	u32 off = (blk_rq_pos(rq) << SECTOR_SHIFT) & ((1U << dev->vmr_shift) - 1);
	struct req_iterator iter;
	struct page *page;
	struct bio_vec bv;
	u32 done, n;

	rq_for_each_segment(bv, rq, iter) {
		for (done = 0; done < bv.bv_len; done += n, off += n) {
			n = min_t(u32, bv.bv_len - done, PAGE_SIZE - offset_in_page(off));
			page = e->pages[off >> PAGE_SHIFT];
			if (to_rq)
				memcpy_page(bv.bv_page, bv.bv_offset + done,
					    page, offset_in_page(off), n);
			else
				memcpy_page(page, offset_in_page(off),
					    bv.bv_page, bv.bv_offset + done, n);
		}
	}
}

/*
 * A write of [@pos, @pos + @len) begins: a cached VMR that a WRITE @rq
 * smaller than a VMR lands in takes its data, so that swap-outs into a VMR
 * being read back do not throw the prefetch away; otherwise (WRITE_ZEROES,
 * large writes, discards: @rq NULL) the entries it touches are dropped.
 */
static void rmai_invalidate(struct rmai_dev *dev, u64 pos, u64 len,
			    struct request *rq)
{
	struct rmai_cache *c = &dev->cache;
	u64 vmr, last = (pos + len - 1) >> dev->vmr_shift;
	struct rmai_vmr *e;

	if (!c->max_entries)
		return;
	for (vmr = pos >> dev->vmr_shift; vmr <= last; vmr++) {
		e = rmai_vmr_lookup(c, vmr);
		if (!e)
			continue;
		if (e->state == RMAI_VMR_VALID && rq && req_op(rq) == REQ_OP_WRITE &&
		    len < (1U << dev->vmr_shift) && pos >> dev->vmr_shift == last)
			rmai_vmr_copy(dev, e, rq, false);
		else
			rmai_vmr_drop(c, e);
	}
}

/**
 * rmai_write_begin() - register a write of [@pos, @pos + @len) in flight
 * @dev: the device
 * @range: the write's registry node, owned by the caller until the end
 * @pos: byte offset on the device
 * @len: bytes
 * @rq: the request carrying the data
 *
 * Return: false, registering nothing, when a write to any of those pages is
 * already in flight: the caller retries later.
 */
bool rmai_write_begin(struct rmai_dev *dev, struct interval_tree_node *range,
		      u64 pos, u64 len, struct request *rq)
{
	struct rmai_cache *c = &dev->cache;
	unsigned long flags;
	bool ok;

	range->start = pos >> PAGE_SHIFT;
	range->last = (pos + len - 1) >> PAGE_SHIFT;
	spin_lock_irqsave(&c->lock, flags);
	ok = !rmai_overlaps(c, range->start, range->last);
	if (ok) {
		interval_tree_insert(range, &c->writes);
		rmai_invalidate(dev, pos, len, rq);
	}
	spin_unlock_irqrestore(&c->lock, flags);
	return ok;
}

/**
 * rmai_write_end() - the write registered with @range reached the memnode
 * @dev: the device
 * @range: as given to rmai_write_begin()
 */
void rmai_write_end(struct rmai_dev *dev, struct interval_tree_node *range)
{
	unsigned long flags;

	spin_lock_irqsave(&dev->cache.lock, flags);
	interval_tree_remove(range, &dev->cache.writes);
	spin_unlock_irqrestore(&dev->cache.lock, flags);
}

/**
 * rmai_write_pending() - is a write to [@pos, @pos + @len) in flight?
 * @dev: the device
 * @pos: byte offset on the device
 * @len: bytes
 *
 * Return: true when a read of that range must wait.
 */
bool rmai_write_pending(struct rmai_dev *dev, u64 pos, u64 len)
{
	unsigned long flags;
	bool busy;

	spin_lock_irqsave(&dev->cache.lock, flags);
	busy = rmai_overlaps(&dev->cache, pos >> PAGE_SHIFT, (pos + len - 1) >> PAGE_SHIFT);
	spin_unlock_irqrestore(&dev->cache.lock, flags);
	return busy;
}

/**
 * rmai_cache_discard() - forget cached copies of a discarded range
 * @dev: the device
 * @pos: byte offset on the device
 * @len: bytes
 */
void rmai_cache_discard(struct rmai_dev *dev, u64 pos, u64 len)
{
	unsigned long flags;

	spin_lock_irqsave(&dev->cache.lock, flags);
	rmai_invalidate(dev, pos, len, NULL);
	spin_unlock_irqrestore(&dev->cache.lock, flags);
}

/* --- reads ------------------------------------------------------------------- */

/* Copy a read's data out of @e, which holds its VMR; note what was used. */
static void rmai_vmr_copy_out(struct rmai_dev *dev, struct rmai_vmr *e,
			      struct request *rq)
{
	u32 off = (blk_rq_pos(rq) << SECTOR_SHIFT) & ((1U << dev->vmr_shift) - 1);

	bitmap_set(e->used, off >> PAGE_SHIFT, blk_rq_bytes(rq) >> PAGE_SHIFT);
	rmai_vmr_copy(dev, e, rq, true);
}

static void rmai_vmr_fetch_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rmai_vmr *e = container_of(wc->wr_cqe, struct rmai_vmr, cqe);
	struct rmai_dev *dev = e->dev;
	struct rmai_cache *c = &dev->cache;
	bool ok = wc->status == IB_WC_SUCCESS;
	struct rmai_cmd *cmd, *next;
	unsigned long flags;
	LIST_HEAD(waiters);

	ib_dma_unmap_sg(cq->device, e->sgl, dev->vmr_pages, DMA_FROM_DEVICE);
	if (!ok)
		rmai_wr_error(wc);
	spin_lock_irqsave(&c->lock, flags);
	list_splice_init(&e->waiters, &waiters);
	if (ok)
		list_for_each_entry(cmd, &waiters, wait)
			rmai_vmr_copy_out(dev, e, blk_mq_rq_from_pdu(cmd));
	if (ok && e->state == RMAI_VMR_FETCHING) {
		e->state = RMAI_VMR_VALID;
		list_add(&e->lru, &c->lru);
	} else {
		if (e->state == RMAI_VMR_FETCHING) {	/* failed */
			hlist_del_init(&e->node);
			rmai_vmr_account(dev, e);
		}
		e->state = RMAI_VMR_FREE;
		list_add(&e->lru, &c->free);
	}
	spin_unlock_irqrestore(&c->lock, flags);

	list_for_each_entry_safe(cmd, next, &waiters, wait) {
		list_del_init(&cmd->wait);
		if (ok)
			blk_mq_complete_request(blk_mq_rq_from_pdu(cmd));
		else
			rmai_cmd_failed(cmd);
	}
}

/*
 * A miss: post the request's own pages (at @slab_off) and, chained behind
 * them, a READ of the whole VMR into @e (the request is @vmr_off into it).
 * The request completes with its own pages.
 */
static enum rmai_route rmai_vmr_fetch(struct rmai_dev *dev, struct rmai_queue *queue,
				      struct request *rq, struct rmai_vmr *e,
				      const struct rmai_slab *slab, u64 slab_off,
				      u32 vmr_off)
{
	struct ib_device *ibdev = queue->cm_id->device;
	struct rmai_cache *c = &dev->cache;
	struct ib_rdma_wr *last;
	struct rmai_cmd *w, *next;
	unsigned long flags;
	LIST_HEAD(waiters);
	int i, ret;

	ret = rmai_cmd_prepare(queue, rq, slab->addr + slab_off, slab->rkey, &last);
	if (ret)
		goto out_drop;
	e->cqe.done = rmai_vmr_fetch_done;
	ret = ib_dma_map_sg(ibdev, e->sgl, dev->vmr_pages, DMA_FROM_DEVICE);
	if (ret <= 0) {
		ret = -EIO;
		goto out_unmap_cmd;
	}
	for (i = 0; i < ret; i++) {
		e->sges[i].addr = sg_dma_address(&e->sgl[i]);
		e->sges[i].length = sg_dma_len(&e->sgl[i]);
		e->sges[i].lkey = queue->pd->local_dma_lkey;
	}
	rmai_build_wrs(e->wrs, e->sges, ret, queue->max_sge, IB_WR_RDMA_READ,
		       slab->addr + slab_off - vmr_off, slab->rkey, &e->cqe);
	last->wr.next = &e->wrs[0].wr;
	ret = rmai_cmd_post(queue, rq);
	if (ret)
		goto out_unmap_vmr;
	return RMAI_POSTED;

out_unmap_vmr:
	ib_dma_unmap_sg(ibdev, e->sgl, dev->vmr_pages, DMA_FROM_DEVICE);
out_unmap_cmd:
	rmai_cmd_unmap(ibdev, rq);
out_drop:
	spin_lock_irqsave(&c->lock, flags);
	list_splice_init(&e->waiters, &waiters);
	if (e->state == RMAI_VMR_FETCHING)
		hlist_del_init(&e->node);
	e->state = RMAI_VMR_FREE;
	list_add(&e->lru, &c->free);
	spin_unlock_irqrestore(&c->lock, flags);
	list_for_each_entry_safe(w, next, &waiters, wait) {
		list_del_init(&w->wait);
		rmai_cmd_failed(w);
	}
	return RMAI_RETRY;
}

/**
 * rmai_vmr_read() - serve a read through the cache
 * @dev: the device
 * @queue: the data queue of the request's memnode and hardware queue
 * @rq: a started READ within one VMR, smaller than a VMR
 * @slab: its slab
 * @slab_off: the request's offset in the slab
 *
 * Return: RMAI_SERVED (data copied, end the request), RMAI_POSTED (it
 * completes later: as a waiter of a fetch, or through its own RDMA),
 * RMAI_RETRY (a write to its pages is in flight) or RMAI_DIRECT (read it
 * without the cache).
 */
enum rmai_route rmai_vmr_read(struct rmai_dev *dev, struct rmai_queue *queue,
			      struct request *rq, const struct rmai_slab *slab,
			      u64 slab_off)
{
	struct rmai_cache *c = &dev->cache;
	struct rmai_cmd *cmd = blk_mq_rq_to_pdu(rq);
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	u64 vmr = pos >> dev->vmr_shift, vmr_pos = vmr << dev->vmr_shift;
	u32 vmr_size = 1U << dev->vmr_shift;
	struct rmai_vmr *e;
	unsigned long flags;

	spin_lock_irqsave(&c->lock, flags);
	if (rmai_overlaps(c, pos >> PAGE_SHIFT, (pos + blk_rq_bytes(rq) - 1) >> PAGE_SHIFT)) {
		spin_unlock_irqrestore(&c->lock, flags);
		return RMAI_RETRY;
	}
	e = rmai_vmr_lookup(c, vmr);
	if (e && e->state == RMAI_VMR_VALID) {
		rmai_vmr_copy_out(dev, e, rq);
		list_move(&e->lru, &c->lru);
		spin_unlock_irqrestore(&c->lock, flags);
		this_cpu_inc(dev->stats->cache_hits);
		return RMAI_SERVED;
	}
	if (e) {			/* being fetched: wait for it */
		cmd->queue = e->queue;
		list_add_tail(&cmd->wait, &e->waiters);
		spin_unlock_irqrestore(&c->lock, flags);
		this_cpu_inc(dev->stats->cache_hits);
		return RMAI_POSTED;
	}
	this_cpu_inc(dev->stats->cache_misses);
	e = NULL;
	if ((c->credit >= 0 || !(++c->probe % RMAI_PREFETCH_PROBE)) &&
	    !rmai_overlaps(c, vmr_pos >> PAGE_SHIFT, (vmr_pos + vmr_size - 1) >> PAGE_SHIFT))
		e = rmai_vmr_get(dev);
	if (!e) {	/* prefetch not paying, a write to the VMR in flight, or no room */
		spin_unlock_irqrestore(&c->lock, flags);
		return RMAI_DIRECT;
	}
	e->index = vmr;
	e->queue = queue;
	e->state = RMAI_VMR_FETCHING;
	bitmap_zero(e->used, dev->vmr_pages);
	bitmap_set(e->used, (pos - vmr_pos) >> PAGE_SHIFT, blk_rq_bytes(rq) >> PAGE_SHIFT);
	hlist_add_head(&e->node, rmai_vmr_bucket(c, vmr));
	spin_unlock_irqrestore(&c->lock, flags);
	return rmai_vmr_fetch(dev, queue, rq, e, slab, slab_off, pos - vmr_pos);
}

/* --- shrinker ------------------------------------------------------------------ */

static unsigned long rmai_cache_count(struct shrinker *s, struct shrink_control *sc)
{
	struct rmai_dev *dev = rmai_shrinker_data(s);

	return (unsigned long)READ_ONCE(dev->cache.nr_entries) * dev->vmr_pages;
}

static unsigned long rmai_cache_scan(struct shrinker *s, struct shrink_control *sc)
{
	struct rmai_dev *dev = rmai_shrinker_data(s);
	struct rmai_cache *c = &dev->cache;
	unsigned long freed = 0, flags;
	struct rmai_vmr *e;
	LIST_HEAD(victims);

	spin_lock_irqsave(&c->lock, flags);
	while (freed < sc->nr_to_scan) {
		e = list_first_entry_or_null(&c->free, struct rmai_vmr, lru);
		if (!e) {
			e = rmai_vmr_lru_tail(c);
			if (!e)
				break;
			rmai_vmr_drop(c, e);
		}
		list_move(&e->lru, &victims);
		c->nr_entries--;
		freed += dev->vmr_pages;
	}
	spin_unlock_irqrestore(&c->lock, flags);
	while ((e = list_first_entry_or_null(&victims, struct rmai_vmr, lru))) {
		list_del(&e->lru);
		rmai_vmr_free(dev, e);
	}
	this_cpu_add(dev->stats->shrunk, freed << PAGE_SHIFT);
	return freed ?: SHRINK_STOP;
}

/* --- setup ------------------------------------------------------------------- */

/**
 * rmai_cache_init() - the write registry, and cache_mb of preallocated VMRs
 * @dev: a device whose VMR geometry and wrs_per_vmr are set
 *
 * Return: 0 or -ENOMEM.
 */
int rmai_cache_init(struct rmai_dev *dev)
{
	struct rmai_cache *c = &dev->cache;
	unsigned int buckets;

	spin_lock_init(&c->lock);
	c->writes = RB_ROOT_CACHED;
	INIT_LIST_HEAD(&c->lru);
	INIT_LIST_HEAD(&c->free);
	INIT_WORK(&c->grow_work, rmai_cache_grow_work);
	c->max_entries = ((u64)rmai_cfg.cache_mb << 20) >> dev->vmr_shift;
	if (!c->max_entries)
		return 0;
	buckets = roundup_pow_of_two(max(c->max_entries, 64U));
	c->hash_bits = ilog2(buckets);
	c->hash = kvcalloc(buckets, sizeof(*c->hash), GFP_KERNEL);
	if (!c->hash)
		return -ENOMEM;
	if (rmai_cache_grow(dev, c->max_entries, GFP_KERNEL) < c->max_entries) {
		rmai_cache_exit(dev);
		return -ENOMEM;
	}
	c->shrinker = rmai_shrinker_create(rmai_cache_count, rmai_cache_scan, dev,
					   "rmai-vmr-%d", dev->id);
	if (!c->shrinker) {
		rmai_cache_exit(dev);
		return -ENOMEM;
	}
	return 0;
}

/**
 * rmai_cache_exit() - free the cache; no I/O may be left
 * @dev: the device
 */
void rmai_cache_exit(struct rmai_dev *dev)
{
	struct rmai_cache *c = &dev->cache;
	struct rmai_vmr *e, *next;

	if (c->shrinker)
		rmai_shrinker_destroy(c->shrinker);
	c->shrinker = NULL;
	cancel_work_sync(&c->grow_work);
	list_splice_init(&c->lru, &c->free);
	list_for_each_entry_safe(e, next, &c->free, lru) {
		list_del(&e->lru);
		rmai_vmr_free(dev, e);
	}
	c->nr_entries = 0;
	kvfree(c->hash);
	c->hash = NULL;
}
