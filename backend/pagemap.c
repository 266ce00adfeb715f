// SPDX-License-Identifier: GPL-2.0
/*
 * RMAI: the page map, so that no clean page crosses the link twice.
 *
 * Synchronous swap frees a slot as soon as its page is read back, so a page
 * that is evicted again unchanged goes to a new slot, and would be sent
 * again. Instead, each logical page of the device maps to a remote page
 * (l2p), and each remote page knows the keyed fingerprint (tag) of what it
 * holds. A freed logical page lets its remote page go, but the page keeps
 * its content and its tag until it is reused, oldest freed first; a write
 * whose tag some remote page of the same memnode holds is remapped to that
 * page, and sends nothing. Pages of zeros map to nothing at all.
 *
 * A remote page is reused only once no logical page maps to it and no
 * transfer is in flight to or from it (pins), so a read never returns
 * another page's data. A tag is hashed only once its content has landed,
 * and unhashed before the page is written again, so a remap never points
 * at content that is not there yet.
 *
 * The tags come from the caller (a keyed PRF: no tenant can make two pages
 * collide); this file only keeps the books.
 */
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "pagemap.h"

static unsigned int rmai_pm_zone(const struct rmai_pagemap *pm, u32 pn)
{
	return (pn >> pm->slab_page_shift) % pm->nr_zones;
}

static bool rmai_pm_tag_eq(const u64 *a, const u64 *b)
{
	return a[0] == b[0] && a[1] == b[1];
}

/* --- free lists ----------------------------------------------------------- */

static void rmai_pm_free_add(struct rmai_pagemap *pm, u32 rpn)
{
	struct rmai_pm_zone *z = &pm->zones[rmai_pm_zone(pm, rpn)];
	struct rmai_rpage *rp = &pm->rp[rpn];

	rp->fnext = RMAI_PM_NONE;
	rp->fprev = z->tail;
	if (z->tail != RMAI_PM_NONE)
		pm->rp[z->tail].fnext = rpn;
	else
		z->head = rpn;
	z->tail = rpn;
	z->nr_free++;
}

static void rmai_pm_free_del(struct rmai_pagemap *pm, u32 rpn)
{
	struct rmai_pm_zone *z = &pm->zones[rmai_pm_zone(pm, rpn)];
	struct rmai_rpage *rp = &pm->rp[rpn];

	if (rp->fprev != RMAI_PM_NONE)
		pm->rp[rp->fprev].fnext = rp->fnext;
	else
		z->head = rp->fnext;
	if (rp->fnext != RMAI_PM_NONE)
		pm->rp[rp->fnext].fprev = rp->fprev;
	else
		z->tail = rp->fprev;
	rp->fprev = RMAI_PM_NONE;
	rp->fnext = RMAI_PM_NONE;
	z->nr_free--;
}

static bool rmai_pm_is_free(const struct rmai_rpage *rp)
{
	return !rp->refs && !rp->pins;
}

/* --- tags ----------------------------------------------------------------- */

static void rmai_pm_hash_add(struct rmai_pagemap *pm, u32 rpn)
{
	struct rmai_rpage *rp = &pm->rp[rpn];
	u32 *head = &pm->bucket[rp->tag[0] & pm->bucket_mask];

	rp->hnext = *head;
	*head = rpn;
	rp->flags |= RMAI_RP_TAGGED;
}

static void rmai_pm_hash_del(struct rmai_pagemap *pm, u32 rpn)
{
	struct rmai_rpage *rp = &pm->rp[rpn];
	u32 *link = &pm->bucket[rp->tag[0] & pm->bucket_mask];

	while (*link != rpn)
		link = &pm->rp[*link].hnext;
	*link = rp->hnext;
	rp->hnext = RMAI_PM_NONE;
	rp->flags &= ~RMAI_RP_TAGGED;
}

static u32 rmai_pm_hash_find(struct rmai_pagemap *pm, const u64 *tag, unsigned int zone)
{
	u32 rpn = pm->bucket[tag[0] & pm->bucket_mask];

	for (; rpn != RMAI_PM_NONE; rpn = pm->rp[rpn].hnext)
		if (rmai_pm_tag_eq(pm->rp[rpn].tag, tag) && rmai_pm_zone(pm, rpn) == zone)
			return rpn;
	return RMAI_PM_NONE;
}

/* --- references ----------------------------------------------------------- */

static void rmai_pm_unref(struct rmai_pagemap *pm, u32 rpn)
{
	struct rmai_rpage *rp = &pm->rp[rpn];

	if (!--rp->refs && !rp->pins)
		rmai_pm_free_add(pm, rpn);
}

static void rmai_pm_unpin(struct rmai_pagemap *pm, u32 rpn)
{
	struct rmai_rpage *rp = &pm->rp[rpn];

	if (!--rp->pins && !rp->refs)
		rmai_pm_free_add(pm, rpn);
}

/*
 * A free page of @zone for logical page @lpn: its own page if that is free
 * and holds nothing that may be written again (so an unshared device keeps
 * the identity map, and reads stay one run), else the page freed longest
 * ago, whose content is the least likely to be written again. Its old
 * content is forgotten. (Taking its own page when that holds content would
 * send that content again when it comes back, which takes another page...)
 */
static u32 rmai_pm_alloc(struct rmai_pagemap *pm, unsigned int zone, u32 lpn)
{
	u32 rpn = lpn;

	if (!rmai_pm_is_free(&pm->rp[rpn]) || (pm->rp[rpn].flags & RMAI_RP_TAGGED))
		rpn = pm->zones[zone].head;
	if (rpn == RMAI_PM_NONE)
		return RMAI_PM_NONE;
	rmai_pm_free_del(pm, rpn);
	if (pm->rp[rpn].flags & RMAI_RP_TAGGED)
		rmai_pm_hash_del(pm, rpn);
	return rpn;
}

/* @rpn, untagged, is about to receive content tagged @tag (or unknown). */
static void rmai_pm_send(struct rmai_pagemap *pm, u32 rpn, const u64 *tag)
{
	struct rmai_rpage *rp = &pm->rp[rpn];

	rp->pins = 1;
	rp->flags &= ~RMAI_RP_PENDING;
	if (!tag)
		return;
	rp->tag[0] = tag[0];
	rp->tag[1] = tag[1];
	rp->flags |= RMAI_RP_PENDING;
}

/**
 * rmai_pm_write() - decide where a write of one logical page goes
 * @pm: the page map
 * @lpn: the logical page
 * @tag: the keyed fingerprint of the new content, or NULL when it is not
 *	known (a page written in pieces): then it is sent, and never remapped
 * @rpn: on RMAI_PM_SEND, the remote page to send it to, pinned until
 *	rmai_pm_written()
 *
 * Return: RMAI_PM_SEND; RMAI_PM_ELIDED or RMAI_PM_ZEROED, when the write
 * is done already; or RMAI_PM_FULL, with nothing changed, when every page
 * of the zone is mapped or in flight (try again after a transfer ends).
 */
enum rmai_pm_verdict rmai_pm_write(struct rmai_pagemap *pm, u32 lpn, const u64 *tag,
				   u32 *rpn)
{
	unsigned int zone = rmai_pm_zone(pm, lpn);
	enum rmai_pm_verdict verdict;
	u32 old, new = RMAI_PM_NONE;
	unsigned long flags;

	spin_lock_irqsave(&pm->lock, flags);
	old = pm->l2p[lpn];
	if (tag && rmai_pm_tag_eq(tag, pm->zero_tag)) {
		verdict = RMAI_PM_ZEROED;
		goto remap;
	}
	if (tag) {
		new = rmai_pm_hash_find(pm, tag, zone);
		if (new != RMAI_PM_NONE) {
			verdict = RMAI_PM_ELIDED;
			if (new == old)
				goto out;
			if (rmai_pm_is_free(&pm->rp[new]))
				rmai_pm_free_del(pm, new);
			pm->rp[new].refs++;
			goto remap;
		}
	}
	verdict = RMAI_PM_SEND;
	if (old != RMAI_PM_NONE && pm->rp[old].refs == 1 && !pm->rp[old].pins) {
		/* Its own page, used by nobody else: overwrite it in place. */
		if (pm->rp[old].flags & RMAI_RP_TAGGED)
			rmai_pm_hash_del(pm, old);
		rmai_pm_send(pm, old, tag);
		*rpn = old;
		goto out;
	}
	new = rmai_pm_alloc(pm, zone, lpn);
	if (new == RMAI_PM_NONE) {
		verdict = RMAI_PM_FULL;
		goto out;
	}
	/* @lpn moves to @new when the data lands (rmai_pm_written()). */
	rmai_pm_send(pm, new, tag);
	pm->rp[new].flags |= RMAI_RP_MOVING;
	pm->rp[new].lpn = lpn;
	pm->rp[new].from = old;
	*rpn = new;
	goto out;
remap:
	pm->l2p[lpn] = new;
	if (old != RMAI_PM_NONE)
		rmai_pm_unref(pm, old);
out:
	spin_unlock_irqrestore(&pm->lock, flags);
	return verdict;
}

/**
 * rmai_pm_written() - writes that rmai_pm_write() sent have ended
 * @pm: the page map
 * @rpn: the first remote page they went to
 * @nr: pages, from @rpn on
 * @landed: the content is there (else the pages hold something unknown,
 *	and are never remapped to; a logical page that was to move to a new
 *	page stays where it was, one written in place holds something unknown)
 */
void rmai_pm_written(struct rmai_pagemap *pm, u32 rpn, u32 nr, bool landed)
{
	unsigned long flags;
	u32 i;

	spin_lock_irqsave(&pm->lock, flags);
	for (i = rpn; i < rpn + nr; i++) {
		struct rmai_rpage *rp = &pm->rp[i];

		if (landed && (rp->flags & RMAI_RP_PENDING))
			rmai_pm_hash_add(pm, i);
		/*
		 * Move the logical page here, unless it was freed (or freed
		 * and written again by a remap) meanwhile; a write that
		 * failed leaves it where it was.
		 */
		if ((rp->flags & RMAI_RP_MOVING) && landed && pm->l2p[rp->lpn] == rp->from) {
			pm->l2p[rp->lpn] = i;
			rp->refs++;
			if (rp->from != RMAI_PM_NONE)
				rmai_pm_unref(pm, rp->from);
		}
		rp->flags &= ~(RMAI_RP_PENDING | RMAI_RP_MOVING);
		rmai_pm_unpin(pm, i);
	}
	spin_unlock_irqrestore(&pm->lock, flags);
}

/**
 * rmai_pm_get_run() - where the logical pages from @lpn are, as one run
 * @pm: the page map
 * @lpn: the first logical page
 * @nr: pages wanted, at least 1
 * @rpn: the first remote page, or RMAI_PM_NONE if they hold zeros
 *
 * The run is the longest prefix of the @nr pages that is contiguous in one
 * slab, or that holds zeros; its remote pages are pinned until
 * rmai_pm_put_run().
 *
 * Return: the pages in the run.
 */
u32 rmai_pm_get_run(struct rmai_pagemap *pm, u32 lpn, u32 nr, u32 *rpn)
{
	unsigned long flags;
	u32 first, n;

	spin_lock_irqsave(&pm->lock, flags);
	first = pm->l2p[lpn];
	for (n = 1; n < nr; n++) {
		u32 next = pm->l2p[lpn + n];

		if (first == RMAI_PM_NONE ? next != RMAI_PM_NONE :
		    next != first + n || !((first + n) & ((1U << pm->slab_page_shift) - 1)))
			break;
	}
	if (first != RMAI_PM_NONE) {
		u32 i;

		for (i = 0; i < n; i++)
			pm->rp[first + i].pins++;
	}
	spin_unlock_irqrestore(&pm->lock, flags);
	*rpn = first;
	return n;
}

/**
 * rmai_pm_put_run() - undo rmai_pm_get_run()
 * @pm: the page map
 * @rpn: the first remote page it gave (RMAI_PM_NONE: nothing to do)
 * @nr: the pages it gave
 */
void rmai_pm_put_run(struct rmai_pagemap *pm, u32 rpn, u32 nr)
{
	unsigned long flags;
	u32 i;

	if (rpn == RMAI_PM_NONE)
		return;
	spin_lock_irqsave(&pm->lock, flags);
	for (i = 0; i < nr; i++)
		rmai_pm_unpin(pm, rpn + i);
	spin_unlock_irqrestore(&pm->lock, flags);
}

/**
 * rmai_pm_free() - logical pages are free (a swap slot, a DISCARD): they
 *	hold zeros from now on, and their remote pages may be reused
 * @pm: the page map
 * @lpn: the first
 * @nr: how many
 *
 * From any context.
 */
void rmai_pm_free(struct rmai_pagemap *pm, u32 lpn, u32 nr)
{
	unsigned long flags;
	u32 i;

	spin_lock_irqsave(&pm->lock, flags);
	for (i = lpn; i < lpn + nr; i++) {
		if (pm->l2p[i] == RMAI_PM_NONE)
			continue;
		rmai_pm_unref(pm, pm->l2p[i]);
		pm->l2p[i] = RMAI_PM_NONE;
	}
	spin_unlock_irqrestore(&pm->lock, flags);
}

/**
 * rmai_pm_init() - a page map of zeros: every remote page free
 * @pm: the page map
 * @nr_pages: pages of the device
 * @slab_page_shift: log2 of the pages per slab
 * @nr_zones: memnodes; slab s lives on memnode s % @nr_zones
 * @zero_tag: the tag of a page of zeros
 *
 * Return: 0 or -ENOMEM, with nothing allocated.
 */
int rmai_pm_init(struct rmai_pagemap *pm, u32 nr_pages, unsigned int slab_page_shift,
		 unsigned int nr_zones, const u64 zero_tag[2])
{
	u32 nr_buckets = roundup_pow_of_two(nr_pages);
	u32 i;

	memset(pm, 0, sizeof(*pm));
	spin_lock_init(&pm->lock);
	pm->nr_pages = nr_pages;
	pm->slab_page_shift = slab_page_shift;
	pm->nr_zones = nr_zones;
	pm->zero_tag[0] = zero_tag[0];
	pm->zero_tag[1] = zero_tag[1];
	pm->bucket_mask = nr_buckets - 1;
	pm->l2p = kvmalloc_array(nr_pages, sizeof(*pm->l2p), GFP_KERNEL);
	pm->rp = kvcalloc(nr_pages, sizeof(*pm->rp), GFP_KERNEL);
	pm->bucket = kvmalloc_array(nr_buckets, sizeof(*pm->bucket), GFP_KERNEL);
	pm->zones = kcalloc(nr_zones, sizeof(*pm->zones), GFP_KERNEL);
	if (!pm->l2p || !pm->rp || !pm->bucket || !pm->zones) {
		rmai_pm_exit(pm);
		return -ENOMEM;
	}
	memset(pm->l2p, 0xff, nr_pages * sizeof(*pm->l2p));
	memset(pm->bucket, 0xff, nr_buckets * sizeof(*pm->bucket));
	for (i = 0; i < nr_zones; i++) {
		pm->zones[i].head = RMAI_PM_NONE;
		pm->zones[i].tail = RMAI_PM_NONE;
	}
	for (i = 0; i < nr_pages; i++) {
		pm->rp[i].hnext = RMAI_PM_NONE;
		rmai_pm_free_add(pm, i);
	}
	return 0;
}

/**
 * rmai_pm_exit() - free what rmai_pm_init() allocated
 * @pm: the page map
 */
void rmai_pm_exit(struct rmai_pagemap *pm)
{
	kfree(pm->zones);
	kvfree(pm->bucket);
	kvfree(pm->rp);
	kvfree(pm->l2p);
	pm->zones = NULL;
	pm->bucket = NULL;
	pm->rp = NULL;
	pm->l2p = NULL;
}
