// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: the local VMR cache.
 *
 * The device is cut into VMRs (vmr_kb, 64 KiB - 2 MiB, never across a
 * slab). A read smaller than a VMR that misses fetches its whole VMR: its
 * own pages straight into the request (so the miss costs one small round
 * trip), chained with READs of the whole VMR into a cache entry, one per
 * run of remote pages the page map has it in (up to RMAI_VMR_MAX_RUNS;
 * pages of zeros are cleared); later reads in that VMR are memory copies.
 * A read whose own pages are not one run waits for the fetch instead.
 * Requests of a VMR or more, large folios among them, bypass the cache.
 *
 * The cache holds clean data only, equal to remote memory:
 *  - a fetch starts only while no write over its VMR is in flight (order.c),
 *    checked under the shard's lock, with the entry hashed in the same step;
 *  - a write registers its pages first, then a staged write copies its data
 *    into a VALID entry, and any other write or discard drops the entries it
 *    touches; an entry still being fetched is unhashed ("gone"): it serves
 *    the reads that were waiting for it, then is freed.
 *
 * A read that follows a page read before in a cached VMR (sequential)
 * fetches the next VMR of the slab too, once per VMR (readahead): the
 * link then works while the pages before it are consumed, instead of
 * waiting for the miss at its first page.
 *
 * Prefetch has to pay: when less than a quarter of what evicted VMRs
 * brought in was ever read (random access), misses stop fetching whole VMRs
 * but for one in RMAI_PREFETCH_PROBE, which tells when it pays again, and
 * readahead stops.
 *
 * Entries are preallocated at load (cache_mb worth); a shrinker frees clean
 * ones under memory pressure, and the cache grows back only once the
 * shrinker has left it alone for RMAI_CACHE_QUIET: nothing on the I/O path
 * allocates, or undoes the shrinker's work during a swap storm.
 *
 * Locking: the cache is cut into shards (VMR n in shard n % nr_shards), each
 * with its own lock over its hash, LRU, free list and the state, pins and
 * waiters of its entries. A lock is held for list and hash work only:
 * copies happen outside it, with the entry pinned so that it is neither
 * reused nor freed meanwhile. Lock order: a shard's lock, then order.c's.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/slab.h>

#include "compat.h"
#include "rmai.h"

#define RMAI_CACHE_SHARDS	16	/* locks, at most */
#define RMAI_CACHE_QUIET	(10 * HZ) /* no shrinking that long: grow back */
#define RMAI_PREFETCH_CREDIT	8	/* VMRs' worth of prefetch credit, at most */
#define RMAI_PREFETCH_PROBE	16	/* without credit, prefetch 1 miss in 16 */
#define RMAI_EVICT_SCAN		8	/* pinned LRU entries skipped, at most */

static struct rmai_vmr_shard *rmai_shard_of(struct rmai_cache *c, u64 index)
{
	return &c->shards[index % c->nr_shards];
}

static struct hlist_head *rmai_vmr_bucket(struct rmai_vmr_shard *s, u64 index)
{
	return &s->hash[hash_64(index, s->hash_bits)];
}

static struct rmai_vmr *rmai_vmr_lookup(struct rmai_vmr_shard *s, u64 index)
{
	struct rmai_vmr *e;

	hlist_for_each_entry(e, rmai_vmr_bucket(s, index), node)
		if (e->index == index)
			return e;
	return NULL;
}

/* --- entries ------------------------------------------------------------------- */

static void rmai_vmr_run_done(struct rmai_xfer *x, int status);

static void rmai_vmr_free(struct rmai_dev *dev, struct rmai_vmr *e)
{
	unsigned int i;

	for (i = 0; i < dev->vmr_pages; i++)
		if (e->pages[i])
			__free_page(e->pages[i]);
	kfree(e);
}

static struct rmai_vmr *rmai_vmr_alloc(struct rmai_vmr_shard *s, gfp_t gfp)
{
	struct rmai_dev *dev = s->dev;
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
	e->shard = s;
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
	for (i = 0; i < RMAI_VMR_MAX_RUNS; i++) {
		e->runs[i].e = e;
		e->runs[i].xfer.done = rmai_vmr_run_done;
		INIT_LIST_HEAD(&e->runs[i].xfer.backlog);
	}
	return e;
}

/* Add entries to @s up to its share. Return: false when memory ran short. */
static bool rmai_shard_grow(struct rmai_vmr_shard *s, gfp_t gfp)
{
	struct rmai_vmr *e;
	unsigned long flags;

	for (;;) {
		spin_lock_irqsave(&s->lock, flags);
		if (s->nr_entries >= s->max_entries) {
			spin_unlock_irqrestore(&s->lock, flags);
			return true;
		}
		s->nr_entries++;	/* reserve, then allocate unlocked */
		spin_unlock_irqrestore(&s->lock, flags);
		e = rmai_vmr_alloc(s, gfp);
		spin_lock_irqsave(&s->lock, flags);
		if (e)
			list_add(&e->lru, &s->free);
		else
			s->nr_entries--;
		spin_unlock_irqrestore(&s->lock, flags);
		if (!e)
			return false;
	}
}

static void rmai_cache_grow_work(struct work_struct *work)
{
	struct rmai_dev *dev = container_of(to_delayed_work(work), struct rmai_dev,
					    cache.grow_work);
	struct rmai_cache *c = &dev->cache;
	unsigned int noio = memalloc_noio_save();
	unsigned int i;

	for (i = 0; i < c->nr_shards; i++) {
		if (!rmai_shard_grow(&c->shards[i], GFP_NOIO | __GFP_NORETRY | __GFP_NOWARN)) {
			/* Still short of memory: try again after another quiet spell. */
			queue_delayed_work(rmai_wq, &c->grow_work, RMAI_CACHE_QUIET);
			break;
		}
	}
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
	int old, new;

	this_cpu_add(dev->stats->prefetch_used, (u64)used << PAGE_SHIFT);
	this_cpu_add(dev->stats->prefetch_wasted, (u64)(dev->vmr_pages - used) << PAGE_SHIFT);
	old = atomic_read(&dev->cache.credit);
	do {
		new = clamp(old + 4 * used - (int)dev->vmr_pages, -limit, limit);
	} while (!atomic_try_cmpxchg(&dev->cache.credit, &old, new));
}

/* Unhash @e (VALID or FETCHING): free it now, or at its last unpin. */
static void rmai_vmr_drop(struct rmai_vmr_shard *s, struct rmai_vmr *e)
{
	lockdep_assert_held(&s->lock);
	hlist_del_init(&e->node);
	rmai_vmr_account(s->dev, e);
	if (e->pins) {
		list_del_init(&e->lru);
		e->state = RMAI_VMR_GONE;
		return;
	}
	list_move(&e->lru, &s->free);
	e->state = RMAI_VMR_FREE;
}

static void rmai_vmr_unpin(struct rmai_vmr *e)
{
	struct rmai_vmr_shard *s = e->shard;
	unsigned long flags;

	spin_lock_irqsave(&s->lock, flags);
	if (!--e->pins && e->state == RMAI_VMR_GONE) {
		e->state = RMAI_VMR_FREE;
		list_add(&e->lru, &s->free);
	}
	spin_unlock_irqrestore(&s->lock, flags);
}

/* A free entry of @s: from its free list, else its least recently used. */
static struct rmai_vmr *rmai_vmr_get(struct rmai_vmr_shard *s)
{
	struct rmai_vmr *e;
	unsigned int scanned = 0;

	lockdep_assert_held(&s->lock);
	e = list_first_entry_or_null(&s->free, struct rmai_vmr, lru);
	if (e) {
		list_del_init(&e->lru);
		return e;
	}
	list_for_each_entry_reverse(e, &s->lru, lru) {
		if (++scanned > RMAI_EVICT_SCAN)
			break;
		if (e->pins)
			continue;
		rmai_vmr_drop(s, e);
		list_del_init(&e->lru);
		this_cpu_inc(s->dev->stats->evictions);
		return e;
	}
	return NULL;
}

/* --- reads ----------------------------------------------------------------------- */

/* Copy a read's data out of @e, pinned; note what was used. */
static void rmai_vmr_copy_out(struct rmai_dev *dev, struct rmai_vmr *e, struct rmai_cmd *cmd)
{
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	u32 off = (blk_rq_pos(rq) << SECTOR_SHIFT) & ((1U << dev->vmr_shift) - 1);
	unsigned int p;

	for (p = 0; p < blk_rq_bytes(rq) >> PAGE_SHIFT; p++)
		set_bit((off >> PAGE_SHIFT) + p, e->used);
	rmai_copy_rq(rq, e->pages, off, true);
}

/* The fetch into @e is over, with @status. */
static void rmai_vmr_fetch_done(struct rmai_vmr *e, int status)
{
	struct rmai_vmr_shard *s = e->shard;
	struct rmai_dev *dev = s->dev;
	struct rmai_cmd *cmd, *next;
	unsigned long flags;
	unsigned int i;
	LIST_HEAD(waiters);

	spin_lock_irqsave(&s->lock, flags);
	list_splice_init(&e->waiters, &waiters);
	if (e->state == RMAI_VMR_FETCHING) {
		if (!status) {
			e->state = RMAI_VMR_VALID;
			list_add(&e->lru, &s->lru);
		} else {
			rmai_vmr_drop(s, e);	/* pinned by the fetch: GONE */
		}
	}
	spin_unlock_irqrestore(&s->lock, flags);
	for (i = 0; i < e->nr_runs; i++)
		rmai_remote_put_run(dev, e->runs[i].rpn, e->runs[i].len);

	if (status) {
		if (!list_empty(&waiters))
			dev->cmd_ops->redrive(dev, &waiters);
	} else {
		list_for_each_entry_safe(cmd, next, &waiters, wait) {
			list_del_init(&cmd->wait);
			rmai_vmr_copy_out(dev, e, cmd);
			dev->cmd_ops->end(cmd, BLK_STS_OK);
		}
	}
	rmai_vmr_unpin(e);
}

/* One READ of a fetch is over; the last one ends the fetch. */
static void rmai_vmr_run_done(struct rmai_xfer *x, int status)
{
	struct rmai_vmr *e = container_of(x, struct rmai_vmr_run, xfer)->e;

	if (status)
		WRITE_ONCE(e->status, status);
	if (atomic_dec_and_test(&e->runs_left))
		rmai_vmr_fetch_done(e, READ_ONCE(e->status));
}

/*
 * Plan the fetch of VMR @vmr into @e: its runs of remote pages, pinned.
 * Under the shard's lock: on false, the caller calls rmai_remote_kick()
 * once it holds no lock (the pages it let go may be what a write waits for).
 * Return: false, with nothing pinned, when it has more than
 * RMAI_VMR_MAX_RUNS.
 */
static bool rmai_vmr_plan(struct rmai_dev *dev, struct rmai_vmr *e, u64 vmr)
{
	u32 lpn = vmr << (dev->vmr_shift - PAGE_SHIFT), p, n, rpn;

	e->nr_runs = 0;
	for (p = 0; p < dev->vmr_pages; p += n) {
		n = rmai_pm_get_run(&dev->pm, lpn + p, dev->vmr_pages - p, &rpn);
		if (e->nr_runs == RMAI_VMR_MAX_RUNS) {
			rmai_pm_put_run(&dev->pm, rpn, n);
			while (e->nr_runs--)
				rmai_pm_put_run(&dev->pm, e->runs[e->nr_runs].rpn,
						e->runs[e->nr_runs].len);
			e->nr_runs = 0;
			return false;
		}
		e->runs[e->nr_runs].rpn = rpn;
		e->runs[e->nr_runs].len = n;
		e->runs[e->nr_runs].xfer.sgl = &e->sgl[p];	/* its first page */
		e->nr_runs++;
	}
	return true;
}

/*
 * Send the fetch of @e on @queue, behind @cmd's own READ when it has one:
 * clear the pages of zeros, chain a READ per run.
 */
static void rmai_vmr_post(struct rmai_dev *dev, struct rmai_vmr *e, struct rmai_queue *queue,
			  struct rmai_cmd *cmd)
{
	struct rmai_xfer *first = NULL, **link = &first;
	struct ib_rdma_wr *wrs = e->wrs;
	unsigned int i, p, j, runs = 0;

	e->status = 0;
	for (i = 0; i < e->nr_runs; i++)
		runs += e->runs[i].rpn != RMAI_PM_NONE;
	atomic_set(&e->runs_left, runs ?: 1);
	for (i = 0; i < e->nr_runs; i++) {
		struct rmai_vmr_run *run = &e->runs[i];
		struct rmai_xfer *x = &run->xfer;

		p = x->sgl - e->sgl;
		if (run->rpn == RMAI_PM_NONE) {
			for (j = p; j < p + run->len; j++)
				clear_highpage(e->pages[j]);
			continue;
		}
		x->nr_sg = run->len;
		x->sges = &e->sges[p];
		x->wrs = wrs;
		wrs += rmai_xfer_max_wrs(run->len, dev->lim.sge_read);
		rmai_remote_addr(dev, run->rpn, &x->remote_addr, &x->rkey);
		*link = x;
		link = &x->next;
	}
	*link = NULL;
	if (cmd) {
		cmd->where = RMAI_CMD_POSTED;
		rmai_remote_post_chain(&cmd->remote, queue, first);
	} else if (first) {
		rmai_xfer_post(queue, first);
	}
	if (!runs)
		rmai_vmr_fetch_done(e, 0);	/* all zeros */
}

/*
 * A free entry of @s with the fetch of VMR @vmr planned in it (under @s's
 * lock), or NULL: no room, or the VMR in too many pieces, in which case
 * *@kick is set (call rmai_remote_kick() once the lock is dropped).
 */
static struct rmai_vmr *rmai_vmr_get_planned(struct rmai_dev *dev, struct rmai_vmr_shard *s,
					     u64 vmr, bool *kick)
{
	struct rmai_vmr *e = rmai_vmr_get(s);

	if (e && !rmai_vmr_plan(dev, e, vmr)) {
		e->state = RMAI_VMR_FREE;
		list_add(&e->lru, &s->free);
		*kick = true;
		return NULL;
	}
	return e;
}

/* Hash @e, planned, as the fetch of VMR @vmr (under @s's lock). */
static void rmai_vmr_hash_fetch(struct rmai_vmr_shard *s, struct rmai_vmr *e, u64 vmr)
{
	lockdep_assert_held(&s->lock);
	e->index = vmr;
	e->state = RMAI_VMR_FETCHING;
	e->pins = 1;
	e->ahead = false;
	bitmap_zero(e->used, s->dev->vmr_pages);
	hlist_add_head(&e->node, rmai_vmr_bucket(s, vmr));
}

/*
 * Fetch VMR @vmr ahead of a sequential read that is now in the VMR before
 * it, on that read's @queue: only within the same slab (so the same
 * memnode) and the device, while prefetch pays, when it is neither cached
 * nor being fetched, and no write over it is in flight. Its first read then waits for
 * the fetch, or finds it done, instead of starting it: the link works while
 * the pages before are consumed.
 */
static void rmai_vmr_readahead(struct rmai_dev *dev, struct rmai_queue *queue, u64 vmr)
{
	struct rmai_cache *c = &dev->cache;
	u64 pos = vmr << dev->vmr_shift;
	struct rmai_vmr_shard *s;
	struct rmai_vmr *e = NULL;
	unsigned long flags;
	bool kick = false;

	if (pos + (1ULL << dev->vmr_shift) > dev->size ||
	    !(pos & ((1ULL << dev->slab_shift) - 1)) || atomic_read(&c->credit) < 0)
		return;
	s = rmai_shard_of(c, vmr);
	spin_lock_irqsave(&s->lock, flags);
	if (!rmai_vmr_lookup(s, vmr) && !rmai_order_busy(dev, pos, 1U << dev->vmr_shift))
		e = rmai_vmr_get_planned(dev, s, vmr, &kick);
	if (e)
		rmai_vmr_hash_fetch(s, e, vmr);
	spin_unlock_irqrestore(&s->lock, flags);
	if (kick)
		rmai_remote_kick(dev);
	if (!e)
		return;
	this_cpu_inc(dev->stats->readahead);
	rmai_vmr_post(dev, e, queue, NULL);
}

/**
 * rmai_vmr_read() - serve a read through the cache
 * @dev: the device
 * @queue: the data queue of its memnode and hardware queue; NULL to look
 *	for a cached copy only (the memnode is away)
 * @cmd: a started READ within one VMR, smaller than a VMR, its transfer
 *	set up (rmai_remote_init())
 *
 * Return: RMAI_VMR_SERVED (data copied: end the request), RMAI_VMR_POSTED
 * (it completes later: waiting for a fetch, or with its own READ chained
 * to one) or RMAI_VMR_DIRECT (read it without the cache).
 */
enum rmai_vmr_route rmai_vmr_read(struct rmai_dev *dev, struct rmai_queue *queue,
				  struct rmai_cmd *cmd)
{
	struct rmai_cache *c = &dev->cache;
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	u64 vmr = pos >> dev->vmr_shift, vmr_pos = vmr << dev->vmr_shift;
	u32 vmr_size = 1U << dev->vmr_shift;
	struct rmai_vmr_shard *s = rmai_shard_of(c, vmr);
	u32 page_in_vmr = (pos - vmr_pos) >> PAGE_SHIFT;
	struct rmai_vmr *e;
	unsigned long flags;
	bool own, ahead, kick = false;

	spin_lock_irqsave(&s->lock, flags);
	e = rmai_vmr_lookup(s, vmr);
	if (e && e->state == RMAI_VMR_VALID) {
		e->pins++;
		list_move(&e->lru, &s->lru);
		/* Sequential: it follows a page read before. Once per VMR. */
		ahead = rmai_cfg.readahead && queue && !e->ahead && page_in_vmr &&
			test_bit(page_in_vmr - 1, e->used);
		if (ahead)
			e->ahead = true;
		spin_unlock_irqrestore(&s->lock, flags);
		this_cpu_inc(dev->stats->cache_hits);
		rmai_vmr_copy_out(dev, e, cmd);
		rmai_vmr_unpin(e);
		if (ahead)
			rmai_vmr_readahead(dev, queue, vmr + 1);
		return RMAI_VMR_SERVED;
	}
	if (e) {			/* being fetched: wait for it */
		cmd->where = RMAI_CMD_WAITING;
		list_add_tail(&cmd->wait, &e->waiters);
		spin_unlock_irqrestore(&s->lock, flags);
		this_cpu_inc(dev->stats->cache_hits);
		return RMAI_VMR_POSTED;
	}
	if (!queue) {
		spin_unlock_irqrestore(&s->lock, flags);
		return RMAI_VMR_DIRECT;
	}
	this_cpu_inc(dev->stats->cache_misses);
	e = NULL;
	if ((atomic_read(&c->credit) >= 0 ||
	     !(atomic_inc_return(&c->probe) % RMAI_PREFETCH_PROBE)) &&
	    !rmai_order_busy(dev, vmr_pos, vmr_size))
		e = rmai_vmr_get_planned(dev, s, vmr, &kick);
	/*
	 * Prefetch not paying, a write to the VMR in flight, no room, or the
	 * VMR in too many pieces.
	 */
	if (!e) {
		spin_unlock_irqrestore(&s->lock, flags);
		if (kick)
			rmai_remote_kick(dev);
		return RMAI_VMR_DIRECT;
	}
	own = rmai_remote_one_run(&cmd->remote);
	rmai_vmr_hash_fetch(s, e, vmr);
	if (!own) {
		cmd->where = RMAI_CMD_WAITING;
		list_add_tail(&cmd->wait, &e->waiters);
	}
	spin_unlock_irqrestore(&s->lock, flags);
	if (!own)
		rmai_remote_kick(dev);

	if (own)
		bitmap_set(e->used, page_in_vmr, blk_rq_bytes(rq) >> PAGE_SHIFT);
	rmai_vmr_post(dev, e, queue, own ? cmd : NULL);
	return RMAI_VMR_POSTED;
}

/* --- writes and discards ----------------------------------------------------------- */

/**
 * rmai_vmr_write() - a staged write lands in the cached copy of its VMR
 * @dev: the device
 * @cmd: the WRITE, within one VMR, registered in order.c
 */
void rmai_vmr_write(struct rmai_dev *dev, struct rmai_cmd *cmd)
{
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	u64 vmr = pos >> dev->vmr_shift;
	struct rmai_vmr_shard *s;
	struct rmai_vmr *e;
	unsigned long flags;

	if (!dev->cache.nr_shards)
		return;
	s = rmai_shard_of(&dev->cache, vmr);
	spin_lock_irqsave(&s->lock, flags);
	e = rmai_vmr_lookup(s, vmr);
	if (e && e->state == RMAI_VMR_VALID) {
		e->pins++;
	} else {
		if (e)
			rmai_vmr_drop(s, e);	/* being fetched: stale already */
		e = NULL;
	}
	spin_unlock_irqrestore(&s->lock, flags);
	if (!e)
		return;
	rmai_copy_rq(rq, e->pages, pos & ((1U << dev->vmr_shift) - 1), false);
	rmai_vmr_unpin(e);
}

/* Drop what @s caches of VMRs [@first, @last]. */
static void rmai_shard_drop(struct rmai_vmr_shard *s, u64 first, u64 last, unsigned int stride)
{
	struct hlist_node *tmp;
	struct rmai_vmr *e;
	unsigned long flags;
	unsigned int b;
	u64 vmr;

	spin_lock_irqsave(&s->lock, flags);
	if ((last - first) / stride < (1U << s->hash_bits)) {
		for (vmr = first; vmr <= last; vmr += stride) {
			e = rmai_vmr_lookup(s, vmr);
			if (e)
				rmai_vmr_drop(s, e);
		}
	} else {	/* a large range: walk what is hashed instead */
		for (b = 0; b < (1U << s->hash_bits); b++)
			hlist_for_each_entry_safe(e, tmp, &s->hash[b], node)
				if (e->index >= first && e->index <= last)
					rmai_vmr_drop(s, e);
	}
	spin_unlock_irqrestore(&s->lock, flags);
}

/**
 * rmai_cache_drop() - forget cached copies of [@pos, @pos + @len)
 * @dev: the device
 * @pos: byte offset on the device
 * @len: bytes
 *
 * A direct write, a write of zeroes or a discard: registered writes drop
 * what they touch; a discard of the whole device walks each shard once.
 */
void rmai_cache_drop(struct rmai_dev *dev, u64 pos, u64 len)
{
	struct rmai_cache *c = &dev->cache;
	u64 first = pos >> dev->vmr_shift, last = (pos + len - 1) >> dev->vmr_shift;
	unsigned int i;
	u64 start;

	for (i = 0; i < c->nr_shards && first + i <= last; i++) {
		start = first + i;
		rmai_shard_drop(rmai_shard_of(c, start), start, last, c->nr_shards);
	}
}

/* --- shrinker ----------------------------------------------------------------------- */

static unsigned long rmai_cache_count(struct shrinker *sh, struct shrink_control *sc)
{
	struct rmai_dev *dev = rmai_shrinker_data(sh);
	unsigned long n = 0;
	unsigned int i;

	for (i = 0; i < dev->cache.nr_shards; i++)
		n += READ_ONCE(dev->cache.shards[i].nr_entries);
	return n * dev->vmr_pages;
}

static unsigned long rmai_cache_scan(struct shrinker *sh, struct shrink_control *sc)
{
	struct rmai_dev *dev = rmai_shrinker_data(sh);
	struct rmai_cache *c = &dev->cache;
	unsigned long freed = 0, flags;
	struct rmai_vmr_shard *s;
	struct rmai_vmr *e, *prev;
	unsigned int i;
	LIST_HEAD(victims);

	for (i = 0; i < c->nr_shards && freed < sc->nr_to_scan; i++) {
		s = &c->shards[i];
		spin_lock_irqsave(&s->lock, flags);
		while (freed < sc->nr_to_scan &&
		       (e = list_first_entry_or_null(&s->free, struct rmai_vmr, lru))) {
			list_move(&e->lru, &victims);
			s->nr_entries--;
			freed += dev->vmr_pages;
		}
		list_for_each_entry_safe_reverse(e, prev, &s->lru, lru) {
			if (freed >= sc->nr_to_scan)
				break;
			if (e->pins)
				continue;
			rmai_vmr_drop(s, e);
			list_move(&e->lru, &victims);
			s->nr_entries--;
			freed += dev->vmr_pages;
		}
		spin_unlock_irqrestore(&s->lock, flags);
	}
	while ((e = list_first_entry_or_null(&victims, struct rmai_vmr, lru))) {
		list_del(&e->lru);
		rmai_vmr_free(dev, e);
	}
	/* Grow back only once the pressure is over. */
	mod_delayed_work(rmai_wq, &c->grow_work, RMAI_CACHE_QUIET);
	this_cpu_add(dev->stats->shrunk, freed << PAGE_SHIFT);
	return freed ?: SHRINK_STOP;
}

/* --- setup ----------------------------------------------------------------------------- */

/**
 * rmai_cache_init() - cache_mb of preallocated VMRs
 * @dev: a device whose VMR geometry and wrs_per_vmr are set
 *
 * Return: 0 or -ENOMEM.
 */
int rmai_cache_init(struct rmai_dev *dev)
{
	struct rmai_cache *c = &dev->cache;
	unsigned int entries, i;
	struct rmai_vmr_shard *s;

	INIT_DELAYED_WORK(&c->grow_work, rmai_cache_grow_work);
	atomic_set(&c->credit, 0);
	atomic_set(&c->probe, 0);
	entries = ((u64)rmai_cfg.cache_mb << 20) >> dev->vmr_shift;
	if (!entries)
		return 0;
	c->nr_shards = min(entries, RMAI_CACHE_SHARDS);
	c->shards = kcalloc(c->nr_shards, sizeof(*c->shards), GFP_KERNEL);
	if (!c->shards)
		goto out_nomem;
	for (i = 0; i < c->nr_shards; i++) {
		s = &c->shards[i];
		spin_lock_init(&s->lock);
		s->dev = dev;
		INIT_LIST_HEAD(&s->lru);
		INIT_LIST_HEAD(&s->free);
		s->max_entries = entries / c->nr_shards + (i < entries % c->nr_shards);
		s->hash_bits = ilog2(roundup_pow_of_two(max(s->max_entries, 16U)));
		s->hash = kcalloc(1U << s->hash_bits, sizeof(*s->hash), GFP_KERNEL);
		if (!s->hash || !rmai_shard_grow(s, GFP_KERNEL))
			goto out_nomem;
	}
	c->shrinker = rmai_shrinker_create(rmai_cache_count, rmai_cache_scan, dev,
					   "rmai-vmr-%d", dev->id);
	if (!c->shrinker)
		goto out_nomem;
	return 0;

out_nomem:
	rmai_cache_exit(dev);
	return -ENOMEM;
}

/**
 * rmai_cache_exit() - free the cache; no I/O may be left
 * @dev: the device
 */
void rmai_cache_exit(struct rmai_dev *dev)
{
	struct rmai_cache *c = &dev->cache;
	struct rmai_vmr *e, *next;
	struct rmai_vmr_shard *s;
	unsigned int i;

	if (c->shrinker)
		rmai_shrinker_destroy(c->shrinker);
	c->shrinker = NULL;
	cancel_delayed_work_sync(&c->grow_work);
	for (i = 0; c->shards && i < c->nr_shards; i++) {
		s = &c->shards[i];
		list_splice_init(&s->lru, &s->free);
		list_for_each_entry_safe(e, next, &s->free, lru) {
			list_del(&e->lru);
			rmai_vmr_free(dev, e);
		}
		kfree(s->hash);
	}
	kfree(c->shards);
	c->shards = NULL;
	c->nr_shards = 0;
}
