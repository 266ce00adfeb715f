/* SPDX-License-Identifier: GPL-2.0 */
/*
 * RMAI: the page map - which remote page holds each logical page of the
 * device, and what each remote page holds (pagemap.c).
 *
 * Pure bookkeeping, with no verbs and no allocation after setup, so that
 * the host can test it (memnode/test_pagemap.c, against kshim/).
 */
#ifndef RMAI_PAGEMAP_H
#define RMAI_PAGEMAP_H

#include <linux/spinlock.h>
#include <linux/types.h>

/* A logical page that holds zeros (never written, freed or discarded). */
#define RMAI_PM_NONE	U32_MAX

/* struct rmai_rpage.flags */
#define RMAI_RP_TAGGED	BIT(0)	/* tag is the landed content's, and hashed */
#define RMAI_RP_PENDING	BIT(1)	/* tag is that of a write in flight to it */
#define RMAI_RP_MOVING	BIT(2)	/* a write in flight to it moves @lpn here */

/**
 * struct rmai_rpage - one 4 KiB page of leased remote memory
 * @tag: keyed fingerprint of its content, while RMAI_RP_TAGGED; of the
 *	content being written to it, while RMAI_RP_PENDING
 * @refs: logical pages mapped to it
 * @pins: transfers in flight to or from it
 * @flags: RMAI_RP_*
 * @hnext: next page in its tag bucket, or RMAI_PM_NONE
 * @fprev: previous page on its zone's free list, or RMAI_PM_NONE
 * @fnext: next page on its zone's free list, or RMAI_PM_NONE
 * @lpn: while RMAI_RP_MOVING (never free then), the logical page whose
 *	write is in flight to it: once that lands, @lpn moves here from @from
 * @from: ... the page @lpn was mapped to when the write began
 *
 * A page is free, and on its zone's free list (oldest freed first), while
 * no logical page maps to it and no transfer uses it. A free page that is
 * still tagged is a candidate: a write of the same content remaps to it
 * instead of sending the content again. A logical page written to a new
 * remote page moves there only once the data has landed: until then it
 * reads what it held, never what the new page held before.
 */
struct rmai_rpage {
	u64 tag[2];
	u32 refs;
	u16 pins;
	u16 flags;
	u32 hnext;
	union {
		struct {
			u32 fprev;
			u32 fnext;
		};
		struct {
			u32 lpn;
			u32 from;
		};
	};
};

/**
 * struct rmai_pm_zone - the free pages of one zone (one memnode's slabs)
 * @head: oldest freed, or RMAI_PM_NONE
 * @tail: newest freed, or RMAI_PM_NONE
 * @nr_free: pages on the list
 */
struct rmai_pm_zone {
	u32 head;
	u32 tail;
	u32 nr_free;
};

/* What rmai_pm_write() decided for one logical page. */
enum rmai_pm_verdict {
	RMAI_PM_SEND,		/* send the content to the remote page given */
	RMAI_PM_ELIDED,		/* mapped to a page that holds it already */
	RMAI_PM_ZEROED,		/* a page of zeros: nothing remote at all */
	RMAI_PM_FULL,		/* no free page in its zone now: try again later */
};

/**
 * struct rmai_pagemap - the page map of a device
 * @lock: guards everything below; taken with IRQs off (swap frees slots
 *	in atomic context, transfers complete in softirq)
 * @l2p: remote page of each logical page, or RMAI_PM_NONE
 * @rp: the remote pages, numbered as the logical ones (page n of slab s
 *	of the device is remote page s * pages per slab + n)
 * @bucket: first page of each tag bucket, or RMAI_PM_NONE
 * @bucket_mask: buckets - 1
 * @zones: free lists, one per memnode
 * @nr_pages: logical pages, and remote pages
 * @slab_page_shift: log2 of the pages per slab
 * @nr_zones: zones; the zone of a page is its slab modulo nr_zones, as the
 *	memnode of a slab is (memnode.c)
 * @zero_tag: the tag of a page of zeros
 */
struct rmai_pagemap {
	spinlock_t lock;	/* see above */
	u32 *l2p;
	struct rmai_rpage *rp;
	u32 *bucket;
	u32 bucket_mask;
	struct rmai_pm_zone *zones;
	u32 nr_pages;
	unsigned int slab_page_shift;
	unsigned int nr_zones;
	u64 zero_tag[2];
};

int rmai_pm_init(struct rmai_pagemap *pm, u32 nr_pages, unsigned int slab_page_shift,
		 unsigned int nr_zones, const u64 zero_tag[2]);
void rmai_pm_exit(struct rmai_pagemap *pm);
u32 rmai_pm_get_run(struct rmai_pagemap *pm, u32 lpn, u32 nr, u32 *rpn);
void rmai_pm_put_run(struct rmai_pagemap *pm, u32 rpn, u32 nr);
enum rmai_pm_verdict rmai_pm_write(struct rmai_pagemap *pm, u32 lpn, const u64 *tag,
				   u32 *rpn);
void rmai_pm_written(struct rmai_pagemap *pm, u32 rpn, u32 nr, bool landed);
void rmai_pm_free(struct rmai_pagemap *pm, u32 lpn, u32 nr);

#endif /* RMAI_PAGEMAP_H */
