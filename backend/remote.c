// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: logical pages sent to, and read from, where the page map
 * (pagemap.c) puts them, so that no clean page crosses the link twice.
 *
 * A transfer of logical pages goes out as runs of remote pages that are
 * contiguous in one slab, one run at a time: an unshared device keeps the
 * identity map, so a request is one run, as before. A READ of pages that
 * hold zeros copies nothing. A WRITE takes the page map's verdict page by
 * page, from each page's fingerprint: pages whose content a remote page of
 * their memnode holds already are remapped and sent nowhere, pages of
 * zeros map to nothing, the others are sent. A WRITE_ZEROES is all zeros.
 *
 * The fingerprint is SipHash-2-4 of the page under two keys drawn at
 * random for each device (128 bits): without the keys, no tenant can make
 * its page collide with another's, and by chance two pages collide once in
 * 2^64 pairs. Pages that are not one whole, aligned local page (O_DIRECT
 * from a buffer at a 512-byte offset) are sent and never remapped to.
 *
 * A run's local pages are a cut of the transfer's scatterlist, undone when
 * the run ends. Nothing here allocates: a write that finds no free remote
 * page in its memnode's zone (every one mapped or in flight) waits on the
 * device's list until a transfer ends.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/highmem.h>
#include <linux/random.h>

#include "rmai.h"

#define RMAI_FREE_BATCH		1024U	/* pages freed under the lock at once */

/**
 * rmai_remote_addr() - where a remote page is
 * @dev: the device
 * @rpn: the remote page
 * @addr: its address on its memnode
 * @rkey: the key of its slab
 */
void rmai_remote_addr(struct rmai_dev *dev, u32 rpn, u64 *addr, u32 *rkey)
{
	unsigned int shift = dev->slab_shift - PAGE_SHIFT;
	const struct rmai_slab *slab = &dev->slabs[rpn >> shift];

	*addr = slab->addr + ((u64)(rpn & ((1U << shift) - 1)) << PAGE_SHIFT);
	*rkey = slab->rkey;
}

/* --- the local pages ------------------------------------------------------- */

/* The entry of @r's pages that holds byte @byte, and @byte's offset in it. */
static struct scatterlist *rmai_remote_sg_find(struct rmai_remote *r, u32 byte, u32 *off)
{
	if (byte < r->sg_byte) {
		r->sg_at = r->sgl;
		r->sg_byte = 0;
	}
	while (byte - r->sg_byte >= r->sg_at->length) {
		r->sg_byte += r->sg_at->length;
		r->sg_at = sg_next(r->sg_at);
	}
	*off = byte - r->sg_byte;
	return r->sg_at;
}

/*
 * The local page that holds all of page @p of @r, or NULL when the page is
 * in pieces or not aligned to a page.
 */
static struct page *rmai_remote_page(struct rmai_remote *r, u32 p)
{
	struct scatterlist *sg;
	u32 off;

	sg = rmai_remote_sg_find(r, p << PAGE_SHIFT, &off);
	if (sg->length - off < PAGE_SIZE || offset_in_page(sg->offset + off))
		return NULL;
	return nth_page(sg_page(sg), (sg->offset + off) >> PAGE_SHIFT);
}

static void rmai_remote_tag(struct rmai_dev *dev, struct page *page, u64 tag[2])
{
	void *data = kmap_local_page(page);

	/* tag_bytes is PAGE_SIZE but in tests: then only the page's last bytes. */
	data += PAGE_SIZE - rmai_cfg.tag_bytes;
	tag[0] = siphash(data, rmai_cfg.tag_bytes, &dev->tag_key[0]);
	tag[1] = siphash(data, rmai_cfg.tag_bytes, &dev->tag_key[1]);
	kunmap_local(data);
}

/* Zero pages [@p, @p + @n) of a READ: they hold zeros. */
static void rmai_remote_zero(struct rmai_remote *r, u32 p, u32 n)
{
	u32 byte = p << PAGE_SHIFT, end = (p + n) << PAGE_SHIFT, off, len;
	struct scatterlist *sg;

	while (byte < end) {
		sg = rmai_remote_sg_find(r, byte, &off);
		off += sg->offset;
		len = min3(end - byte, sg->length - (off - sg->offset),
			   (u32)(PAGE_SIZE - offset_in_page(off)));
		memzero_page(nth_page(sg_page(sg), off >> PAGE_SHIFT), offset_in_page(off), len);
		byte += len;
	}
}

/* Cut @r's pages down to those of its planned run, for its transfer. */
static void rmai_remote_cut(struct rmai_remote *r)
{
	u32 first = r->next << PAGE_SHIFT, last = ((r->next + r->run_len) << PAGE_SHIFT) - 1;
	struct scatterlist *a, *b;
	u32 off_a, off_b;

	r->cut_first = NULL;
	r->xfer.sgl = r->sgl;
	r->xfer.nr_sg = r->nr_sg;
	if (!r->next && r->run_len == r->nr_pages)
		return;			/* all of it: nothing to cut */
	b = rmai_remote_sg_find(r, last, &off_b);
	a = rmai_remote_sg_find(r, first, &off_a);
	r->cut_first = a;
	r->cut_last = b;
	r->cut_page = sg_page(a);
	r->cut_offset = a->offset;
	r->cut_length = a->length;
	r->cut_last_length = b->length;
	r->cut_last_end = sg_is_last(b);
	b->length = off_b + 1;
	sg_mark_end(b);
	off_a += a->offset;
	sg_set_page(a, nth_page(sg_page(a), off_a >> PAGE_SHIFT),
		    a->length - (off_a - a->offset), offset_in_page(off_a));
	/* sg_set_page() keeps the end mark; the entries are one array. */
	r->xfer.sgl = a;
	r->xfer.nr_sg = b - a + 1;
	/* The cursor now points into the cut: start the next search over. */
	r->sg_at = r->sgl;
	r->sg_byte = 0;
}

/* Undo rmai_remote_cut(). */
static void rmai_remote_uncut(struct rmai_remote *r)
{
	struct scatterlist *a = r->cut_first, *b = r->cut_last;

	if (!a)
		return;
	b->length = r->cut_last_length;
	if (!r->cut_last_end)
		sg_unmark_end(b);
	sg_set_page(a, r->cut_page, r->cut_length, r->cut_offset);
	r->cut_first = NULL;
	r->sg_at = r->sgl;
	r->sg_byte = 0;
}

/* --- planning -------------------------------------------------------------- */

/* Plan a READ's next run: pin it. */
static void rmai_remote_plan_read(struct rmai_remote *r)
{
	r->run_len = rmai_pm_get_run(&r->dev->pm, r->lpn + r->next, r->nr_pages - r->next,
				     &r->run_rpn);
}

/* The verdict for page @p of a WRITE (@rpn: where to send it). */
static enum rmai_pm_verdict rmai_remote_verdict(struct rmai_remote *r, u32 p, u32 *rpn)
{
	struct rmai_dev *dev = r->dev;
	const u64 *tagp = NULL;
	struct page *page;
	u64 tag[2];

	if (r->zeroes) {
		tagp = dev->pm.zero_tag;
	} else if (rmai_cfg.elide) {
		page = rmai_remote_page(r, p);
		if (page) {
			rmai_remote_tag(dev, page, tag);
			tagp = tag;
		}
	}
	return rmai_pm_write(&dev->pm, r->lpn + p, tagp, rpn);
}

/*
 * Plan a WRITE's next run: take the verdicts from @r->next on, skipping the
 * pages that need no sending, until a page does not extend the run.
 * Return: false when the first page to send found no free remote page.
 */
static bool rmai_remote_plan_write(struct rmai_remote *r)
{
	struct rmai_dev *dev = r->dev;
	u32 slab_pages = 1U << (dev->slab_shift - PAGE_SHIFT);
	enum rmai_pm_verdict v;
	u32 p, rpn;

	r->run_len = 0;
	while ((p = r->next + r->run_len) < r->nr_pages) {
		if (r->carry != RMAI_PM_FULL) {
			v = r->carry;
			rpn = r->carry_rpn;
			r->carry = RMAI_PM_FULL;
		} else {
			v = rmai_remote_verdict(r, p, &rpn);
		}
		if (v == RMAI_PM_FULL)
			return r->run_len;
		if (v == RMAI_PM_SEND && !r->run_len) {
			r->run_rpn = rpn;
			r->run_len = 1;
			continue;
		}
		if (v == RMAI_PM_SEND && rpn == r->run_rpn + r->run_len && rpn % slab_pages) {
			r->run_len++;
			continue;
		}
		if (r->run_len) {	/* this page does not extend the run */
			r->carry = v;
			r->carry_rpn = rpn;
			return true;
		}
		/* Remapped or zeros: done already. */
		if (v == RMAI_PM_ELIDED)
			this_cpu_add(dev->stats->elided_bytes, PAGE_SIZE);
		else
			this_cpu_add(dev->stats->zeroed_bytes, PAGE_SIZE);
		r->next++;
	}
	return true;
}

/* --- the runs -------------------------------------------------------------- */

static void rmai_remote_step(struct rmai_remote *r);

/**
 * rmai_remote_kick() - remote pages may have been freed: transfers that
 *	waited for one try again
 * @dev: the device
 *
 * Pairs with the barrier in rmai_remote_wait(): either the waiter saw the
 * page freed, or this sees the waiter. A waiter may complete here, and its
 * completion take any lock of the stages above: call it holding none.
 */
void rmai_remote_kick(struct rmai_dev *dev)
{
	struct rmai_remote *r, *t;
	unsigned long flags;
	LIST_HEAD(waiting);

	smp_mb();	/* the pages freed, before reading the waiters */
	if (!atomic_read(&dev->remote_waiters))
		return;
	spin_lock_irqsave(&dev->remote_wait_lock, flags);
	list_for_each_entry(r, &dev->remote_wait, wait)
		atomic_dec(&dev->remote_waiters);
	list_splice_init(&dev->remote_wait, &waiting);
	spin_unlock_irqrestore(&dev->remote_wait_lock, flags);
	list_for_each_entry_safe(r, t, &waiting, wait) {
		list_del_init(&r->wait);
		rmai_remote_step(r);
	}
}

/**
 * rmai_remote_put_run() - a read of remote pages is over: let go of them
 * @dev: the device
 * @rpn: the first, RMAI_PM_NONE for none
 * @nr: how many
 */
void rmai_remote_put_run(struct rmai_dev *dev, u32 rpn, u32 nr)
{
	rmai_pm_put_run(&dev->pm, rpn, nr);
	rmai_remote_kick(dev);
}

/* The run of @r is over, with the data there (@ok) or not. */
static void rmai_remote_run_over(struct rmai_remote *r, bool ok)
{
	struct rmai_dev *dev = r->dev;

	if (r->write)
		rmai_pm_written(&dev->pm, r->run_rpn, r->run_len, ok);
	else
		rmai_pm_put_run(&dev->pm, r->run_rpn, r->run_len);
	r->run_len = 0;
	rmai_remote_kick(dev);
}

static void rmai_remote_xfer_done(struct rmai_xfer *x, int status)
{
	struct rmai_remote *r = container_of(x, struct rmai_remote, xfer);

	rmai_remote_uncut(r);
	if (unlikely(status)) {
		r->done(r, status);	/* the run stays planned */
		return;
	}
	if (r->write)
		this_cpu_add(r->dev->stats->sent_bytes, r->run_len << PAGE_SHIFT);
	else
		this_cpu_add(r->dev->stats->fetched_bytes, r->run_len << PAGE_SHIFT);
	r->next += r->run_len;
	rmai_remote_run_over(r, true);
	rmai_remote_step(r);
}

/* Post the planned run of @r. */
static void rmai_remote_post(struct rmai_remote *r)
{
	rmai_remote_cut(r);
	rmai_remote_addr(r->dev, r->run_rpn, &r->xfer.remote_addr, &r->xfer.rkey);
	r->xfer.next = NULL;
	r->sent = true;
	rmai_xfer_post(r->queue, &r->xfer);
}

/*
 * Plan @r's next run of a WRITE, or wait on the device's list when no
 * remote page is free. Return: true when planned (perhaps nothing left to
 * send), false when it waits.
 */
static bool rmai_remote_wait(struct rmai_remote *r)
{
	struct rmai_dev *dev = r->dev;
	unsigned long flags;
	bool planned;

	if (rmai_remote_plan_write(r))
		return true;
	spin_lock_irqsave(&dev->remote_wait_lock, flags);
	atomic_inc(&dev->remote_waiters);
	smp_mb__after_atomic();	/* a waiter, before looking for a free page */
	planned = rmai_remote_plan_write(r);
	if (planned)
		atomic_dec(&dev->remote_waiters);
	else
		list_add_tail(&r->wait, &dev->remote_wait);
	spin_unlock_irqrestore(&dev->remote_wait_lock, flags);
	return planned;
}

/* Plan and post the next run of @r, or finish it. */
static void rmai_remote_step(struct rmai_remote *r)
{
	while (r->next < r->nr_pages) {
		if (r->write) {
			if (!rmai_remote_wait(r))
				return;		/* rmai_remote_kick() goes on */
			if (r->run_len) {
				rmai_remote_post(r);
				return;
			}
			continue;		/* the rest needed no sending */
		}
		rmai_remote_plan_read(r);
		if (r->run_rpn != RMAI_PM_NONE) {
			rmai_remote_post(r);
			return;
		}
		rmai_remote_zero(r, r->next, r->run_len);
		r->next += r->run_len;
		r->run_len = 0;
	}
	if (r->write && !r->zeroes && !r->sent)
		this_cpu_inc(r->dev->stats->elided_writes);
	r->done(r, 0);
}

/**
 * rmai_remote_init() - a transfer of [@pos, @pos + @len), not yet started
 * @r: its state; @r->sgl, @r->nr_sg, @r->done, @r->xfer.sges and
 *	@r->xfer.wrs are the caller's to set
 * @dev: the device
 * @pos: the first byte, page aligned
 * @len: bytes, whole pages
 * @write: a WRITE, else a READ
 * @zeroes: a WRITE_ZEROES
 */
void rmai_remote_init(struct rmai_remote *r, struct rmai_dev *dev, u64 pos, u32 len,
		      bool write, bool zeroes)
{
	INIT_LIST_HEAD(&r->wait);
	r->dev = dev;
	r->lpn = pos >> PAGE_SHIFT;
	r->nr_pages = len >> PAGE_SHIFT;
	r->next = 0;
	r->run_len = 0;
	r->carry = RMAI_PM_FULL;
	r->write = write;
	r->zeroes = zeroes;
	r->sg_at = r->sgl;
	r->sg_byte = 0;
	r->cut_first = NULL;
	r->sent = false;
	r->xfer.write = write;
	r->xfer.done = rmai_remote_xfer_done;
}

/**
 * rmai_remote_start() - start @r, or go on after its run failed
 * @r: from rmai_remote_init()
 * @queue: the data queue to send it on
 *
 * @r->done() is called once it is over; it may be before this returns.
 */
void rmai_remote_start(struct rmai_remote *r, struct rmai_queue *queue)
{
	r->queue = queue;
	if (r->run_len)
		rmai_remote_post(r);
	else
		rmai_remote_step(r);
}

/**
 * rmai_remote_one_run() - plan all of a READ as one run, if it is one
 * @r: from rmai_remote_init(), not started
 *
 * From under a lock of the cache: on false, the caller calls
 * rmai_remote_kick() once it holds none.
 *
 * Return: true with the run planned (pinned), for rmai_remote_post_chain();
 * false with nothing planned.
 */
bool rmai_remote_one_run(struct rmai_remote *r)
{
	rmai_remote_plan_read(r);
	if (r->run_len == r->nr_pages && r->run_rpn != RMAI_PM_NONE)
		return true;
	rmai_pm_put_run(&r->dev->pm, r->run_rpn, r->run_len);
	r->run_len = 0;
	return false;
}

/**
 * rmai_remote_post_chain() - post the run rmai_remote_one_run() planned,
 *	with another transfer chained behind it
 * @r: the READ
 * @queue: the data queue
 * @next: a transfer of the caller's, completed on its own
 */
void rmai_remote_post_chain(struct rmai_remote *r, struct rmai_queue *queue,
			    struct rmai_xfer *next)
{
	r->queue = queue;
	rmai_remote_cut(r);
	rmai_remote_addr(r->dev, r->run_rpn, &r->xfer.remote_addr, &r->xfer.rkey);
	r->xfer.next = next;
	rmai_xfer_post(queue, &r->xfer);
}

/**
 * rmai_remote_abort() - give up on what is left of @r
 * @r: not in flight: never started, over, or its run failed
 *
 * Pages of a WRITE that were planned and not sent hold something unknown.
 */
void rmai_remote_abort(struct rmai_remote *r)
{
	struct rmai_dev *dev = r->dev;
	unsigned long flags;

	if (!list_empty_careful(&r->wait)) {
		spin_lock_irqsave(&dev->remote_wait_lock, flags);
		if (!list_empty(&r->wait)) {
			list_del_init(&r->wait);
			atomic_dec(&dev->remote_waiters);
		}
		spin_unlock_irqrestore(&dev->remote_wait_lock, flags);
	}
	if (r->run_len)
		rmai_remote_run_over(r, false);
	if (r->carry == RMAI_PM_SEND)
		rmai_pm_written(&dev->pm, r->carry_rpn, 1, false);
	r->carry = RMAI_PM_FULL;
}

/**
 * rmai_remote_rewind() - give up on what is left of a READ, and start it
 *	over from its first page at the next rmai_remote_start()
 * @r: a READ, not in flight
 */
void rmai_remote_rewind(struct rmai_remote *r)
{
	rmai_remote_abort(r);
	r->next = 0;
}

/**
 * rmai_remote_freed() - logical pages are free: they hold zeros now
 * @dev: the device
 * @lpn: the first
 * @nr: how many
 *
 * From any context (swap frees slots with a spinlock held).
 */
void rmai_remote_freed(struct rmai_dev *dev, u32 lpn, u32 nr)
{
	u32 n;

	this_cpu_add(dev->stats->freed_pages, nr);
	/* A DISCARD of the whole device must not hold the lock that long. */
	for (; nr; lpn += n, nr -= n) {
		n = min(nr, RMAI_FREE_BATCH);
		rmai_pm_free(&dev->pm, lpn, n);
	}
	rmai_remote_kick(dev);
}

/**
 * rmai_remote_dev_init() - the page map of a device, all zeros, and the
 *	keys of its fingerprints
 * @dev: the device, its slabs leased
 *
 * Return: 0 or -ENOMEM.
 */
int rmai_remote_dev_init(struct rmai_dev *dev)
{
	u64 zero_tag[2];

	INIT_LIST_HEAD(&dev->remote_wait);
	spin_lock_init(&dev->remote_wait_lock);
	atomic_set(&dev->remote_waiters, 0);
	get_random_bytes(dev->tag_key, sizeof(dev->tag_key));
	rmai_remote_tag(dev, ZERO_PAGE(0), zero_tag);
	return rmai_pm_init(&dev->pm, dev->size >> PAGE_SHIFT, dev->slab_shift - PAGE_SHIFT,
			    dev->nr_memnodes, zero_tag);
}

/**
 * rmai_remote_dev_exit() - undo rmai_remote_dev_init()
 * @dev: the device, nothing in flight
 */
void rmai_remote_dev_exit(struct rmai_dev *dev)
{
	rmai_pm_exit(&dev->pm);
	memzero_explicit(dev->tag_key, sizeof(dev->tag_key));
}
